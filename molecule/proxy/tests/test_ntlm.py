"""client_proxy with auth ntlm (issue 15 item 4) against the second Squid doing NTLM on 8082 (prepare.yml; Squid's
fake NTLM helper): the local hop (cntlm, netreach-proxy-hop.service) authenticates as CORP\\alice, every layer
points at http://127.0.0.1:3130 without credentials, and the password lives nowhere but the hop's 0600 file (as
its NTLMv2 hash). A login shell's curl, a systemd service, git, pip and the tunnel ntlm443 go through the hop; the
NTLM Squid's access.log shows the user. Runs first (test_ntlm < test_proxy): it puts converge's Basic
declaration back at the end, which takes the hop away again."""
from __future__ import annotations

import json

import audit
import labtest
import pytest
from squidlab import (CONVERGED, NTLM_LOG, PASSWORD, PIP, REPO_PAGE, THROUGH_SQUID, USER, client, lab_host, run_module,
                      squid_entries, squid_log_lines, through_proxy, wait_for_entry)

# Squid's fake NTLM helper sends a challenge without target information, to which cntlm cannot answer with NTLMv2
# ("No target info block"): the NTLM2 session response, from the NT hash.
NTLM = dict(CONVERGED, http_proxy="http://proxy-proxy:8082", https_proxy="http://proxy-proxy:8082", auth="ntlm",
            ntlm_auth="NTLM2SR")
HOP = "http://127.0.0.1:3130"
HOP_UNIT = "netreach-proxy-hop.service"
HOP_CONFIG = "/etc/netreach/proxy-hop/cntlm.conf"


@pytest.fixture(scope="module")
def ntlm():
    """client_proxy with auth ntlm for this module's tests; converge's Basic declaration put back afterwards."""
    result = run_module("client_proxy", **NTLM)
    try:
        assert not result.get("failed") and result["changed"], result
        assert PASSWORD not in json.dumps(result)
        again = run_module("client_proxy", **NTLM)
        assert not again.get("failed") and again["changed"] is False, again
        journal = f"journalctl -u {HOP_UNIT} -n 30 --no-pager"
        assert labtest.wait_until(lambda: client().run("ss -Hltn 'sport = :3130'").stdout.strip() != "", 20) \
            is not None, client().run(journal).stdout
        yield result
    finally:
        back = run_module("client_proxy", **CONVERGED)
        assert not back.get("failed"), back
        assert not client().file(HOP_CONFIG).exists and not client().file(f"/etc/systemd/system/{HOP_UNIT}").exists


# What access.log shows for CORP\\alice: Squid 5's ntlm_fake_auth reads the domain and user name that cntlm sends
# in UTF-16 as if they were ASCII, so it reports their first letters (measured: "C\\a"). A real NTLM helper
# reports CORP\\alice.
FAKE_HELPER_USER = USER.split("\\")[0][0] + "\\" + USER.split("\\")[1][0]


def ntlm_user(entry: dict) -> bool:
    return entry["user"] == FAKE_HELPER_USER


def through_ntlm(command: str, url: str, name: str, method: str = "GET", login: bool = False) -> str:
    start = squid_log_lines(NTLM_LOG)
    out = through_proxy(command, url, method=method, login=login, user=None, log=NTLM_LOG)
    entries = [entry for entry in squid_entries(start, NTLM_LOG) if entry["url"].startswith(url)]
    assert entries and all(ntlm_user(entry) for entry in entries if entry["status"].endswith("/200")), entries
    THROUGH_SQUID[f"{name} (NTLM hop)"] = [entry["line"] for entry in entries]
    return out


def test_the_hop_is_a_hardened_unit_of_its_own_user_on_loopback(ntlm):
    host = client()
    assert host.service(HOP_UNIT).is_running and host.service(HOP_UNIT).is_enabled
    props = dict(line.split("=", 1) for line in host.check_output(
        f"systemctl show -p User -p NoNewPrivileges -p ProtectSystem -p ProtectHome -p PrivateTmp "
        f"-p CapabilityBoundingSet {HOP_UNIT}").splitlines())
    assert props["User"] == "netreach-proxy-hop" and props["NoNewPrivileges"] == "yes"
    assert props["ProtectSystem"] == "strict" and props["ProtectHome"] == "yes" and props["PrivateTmp"] == "yes"
    assert props["CapabilityBoundingSet"] in ("", "0")
    listening = host.check_output("ss -Hltn 'sport = :3130'")
    assert listening.split()[3] == "127.0.0.1:3130", listening
    assert set(host.check_output("ps -o user:32= -C cntlm").split()) == {"netreach-proxy-hop"}


def test_the_password_lives_only_in_the_hops_0600_file_and_only_as_its_hash(ntlm):
    host = client()
    config = host.file(HOP_CONFIG)
    assert config.mode == 0o600 and config.user == "netreach-proxy-hop"
    assert host.file("/etc/netreach/proxy-hop").mode == 0o700
    text = host.check_output(f"cat {HOP_CONFIG}")
    spellings = audit.spellings(PASSWORD)
    assert not any(spelling in text for spelling in spellings)
    digest = next(line.split()[1] for line in text.splitlines() if line.startswith("PassNT "))
    assert "Auth NTLM2SR" in text
    # No spelling of the password, nor its hash, in the layers, the process list (cntlm's command line among it)
    # or the journal.
    needles = {spelling: "the password" for spelling in spellings} | {digest: "the hop's NT hash"}
    files = host.check_output("cat /etc/environment /etc/profile.d/netreach-proxy.sh "
                              "/etc/systemd/system.conf.d/netreach-proxy.conf /etc/apt/apt.conf.d/80netreach-proxy "
                              "/etc/gitconfig /etc/pip.conf /etc/npmrc /etc/wgetrc")
    leaks = audit.find_leaks(files, needles, "the layers client_proxy wrote")
    leaks += audit.find_leaks(host.check_output("ps -eww -o user=,pid=,args="), needles, "the process list")
    leaks += audit.find_leaks(host.check_output("journalctl --no-pager -a -o verbose"), needles, "the journal")
    assert not leaks, "\n".join(leaks)
    assert "alice" not in files and f"http_proxy={HOP}" in files
    cmdline = host.check_output("ps -ww -o args= -C cntlm")
    assert cmdline.split() == ["/usr/sbin/cntlm", "-f", "-c", HOP_CONFIG], cmdline


def test_every_layer_points_at_the_hop_without_credentials(ntlm):
    host = client()
    env = host.check_output("env -i HOME=/root bash -lc 'printenv http_proxy https_proxy HTTP_PROXY'").split()
    assert env == [HOP, HOP, HOP]
    assert host.check_output("git config --system --get http.proxy").strip() == HOP
    assert f"global.proxy='{HOP}'" in host.check_output("pip3 config list")
    apt = [line for line in host.check_output("apt-config dump").splitlines() if line.startswith("Acquire::http::Proxy ")]
    assert apt and all(HOP in line and "alice" not in line for line in apt), apt


def test_login_shell_curl_through_the_hop(ntlm):
    assert REPO_PAGE in through_ntlm("curl -sSf --max-time 10 http://proxy-repo/", "http://proxy-repo/", "login shell curl",
                                     login=True)


def test_a_systemd_service_through_the_hop(ntlm):
    out = through_ntlm("systemd-run --wait --pipe --quiet curl -sSf --max-time 10 http://proxy-repo/index.html",
                       "http://proxy-repo/index.html", "systemd service")
    assert REPO_PAGE in out


def test_git_and_pip_through_the_hop(ntlm):
    host = client()
    host.run("rm -rf /tmp/xn /tmp/pipdln")
    through_ntlm("git clone -q http://proxy-repo/x.git /tmp/xn", "http://proxy-repo/x.git/info/refs", "git")
    assert "netreach lab git repository" in host.file("/tmp/xn/README").content_string
    through_ntlm(f"{PIP} download --no-deps --disable-pip-version-check --trusted-host proxy-repo "
                 "--index-url http://proxy-repo/simple/ -d /tmp/pipdln netreach-hello",
                 "http://proxy-repo/simple/netreach-hello/", "pip")
    assert host.file("/tmp/pipdln/netreach_hello-1.0-py3-none-any.whl").exists


def test_a_tunnel_through_the_hop_to_443(ntlm):
    """ntlm443 (molecule.yml) has proxy.auth ntlm: its proxy is the hop, and its files hold no credentials."""
    host = client()
    forward = "curl -sSf --max-time 5 http://127.0.0.1:12444/"
    host.run("systemctl restart netreach-tunnel@ntlm443")
    waited = labtest.wait_until(lambda: host.run(forward).rc == 0, 60)
    assert waited is not None, host.run("journalctl -u netreach-tunnel@ntlm443 -n 20 --no-pager").stdout
    assert REPO_PAGE in host.check_output(forward)
    config = host.check_output("cat /etc/netreach/tunnels/ntlm443/ssh_config")
    assert "127.0.0.1 3130" in config or "127.0.0.1:3130" in config, config
    assert not host.file("/etc/netreach/tunnels/ntlm443/proxy_auth").exists
    # Squid writes a CONNECT when it closes.
    start = squid_log_lines(NTLM_LOG)
    host.check_output("systemctl restart netreach-tunnel@ntlm443")
    found = wait_for_entry(start, "CONNECT", "proxy-repo:443", None, timeout=20, log=NTLM_LOG)
    assert found and all(ntlm_user(entry) for entry in found), squid_entries(start, NTLM_LOG)
    THROUGH_SQUID["tunnel ntlm443 (NTLM hop)"] = [found[0]["line"]]


def test_the_ntlm_squid_refuses_a_client_without_the_hop(ntlm):
    done = client().run("curl -sS --noproxy '' -x http://proxy-proxy:8082 -o /dev/null -w '%{http_code}' "
                        "http://proxy-repo/")
    assert done.stdout == "407", done.stdout + done.stderr
    assert "NTLM" in lab_host("proxy").check_output("cat /etc/squid/netreach-lab-ntlm.conf")
