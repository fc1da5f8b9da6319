"""Seed S1's path through a stock Squid (issue 15 item 3): the repo's sshd listens on 22 and 443 through
tunnel_server ports; the client's tunnel squid443 reaches it with CONNECT proxy-repo:443 as CORP\\alice, the key
pinned as [proxy-repo]:443; the same tunnel to 22 is refused by Squid's stock policy with its 403; a reload of sshd
for a port change leaves the established tunnel as it was."""
from __future__ import annotations

import re

from squidlab import PASSWORD, REPO_PAGE, THROUGH_SQUID, USER, client, lab_host, run_module, squid_entries, \
    squid_log_lines, wait_for_entry

import labtest

FORWARD = "curl -sSf --max-time 5 http://127.0.0.1:12443/"
PROXY = {"type": "http", "host": "proxy-proxy", "port": 8080, "username": USER, "password": PASSWORD}
TUNNEL_DEFAULTS = {"user": "tunnel", "run_as": "netreach-tunnel", "restart_delay": 1, "restart_max_delay": 10}


def wait_for_the_forward(timeout: float = 60) -> None:
    waited = labtest.wait_until(lambda: client().run(FORWARD).rc == 0, timeout)
    journal = client().run("journalctl -u netreach-tunnel@squid443 -n 20 --no-pager").stdout
    assert waited is not None, f"no page through the tunnel squid443 within {timeout} s:\n{journal}"


def listening(port: int) -> bool:
    return bool(lab_host("repo").run(f"ss -Hltn 'sport = :{port}'").stdout.strip())


def sshd_ports(ports: list[int]) -> dict:
    """tunnel_server on the repo, ad hoc, changing only sshd's ports (other clients' entries are kept)."""
    return run_module("tunnel_server", on="repo", accounts=["tunnel"], managed_clients=[], ports=ports)


def state(unit: str, host) -> tuple[str, ...]:
    shown = tuple(host.check_output(f"systemctl show -p MainPID -p NRestarts --value {unit}").split())
    if unit.startswith("netreach-tunnel@"):
        # The tunnel's starter (MainPID) runs ssh again itself, without a unit restart: its ssh child is the session.
        shown += tuple(host.check_output(f"pgrep -P {shown[0]} -x ssh || true").split())
    return shown


def test_sshd_listens_on_22_and_443_and_the_tunnel_pins_the_443_entry():
    assert listening(22) and listening(443)
    text = client().file("/etc/netreach/tunnels/squid443/known_hosts").content_string
    assert re.search(r"^\[proxy-repo\]:443 ssh-ed25519 ", text, re.M), text
    assert not re.search(r"^proxy-repo ", text, re.M), text


def test_the_tunnel_through_squid_to_443_carries_traffic():
    wait_for_the_forward()
    assert REPO_PAGE in client().check_output(FORWARD)


def test_the_same_tunnel_to_22_is_refused_by_squids_stock_policy_with_403():
    key = lab_host("repo").check_output("cat /etc/ssh/ssh_host_ed25519_key.pub").split()
    start = squid_log_lines()
    declared = dict(TUNNEL_DEFAULTS, name="squid22", server="proxy-repo", port=22, proxy=PROXY,
                    local_forwards=["12422:localhost:80"], known_hosts=[f"proxy-repo {key[0]} {key[1]}"])
    try:
        assert not run_module("ssh_tunnel", **declared).get("failed")

        def denied() -> list[dict]:
            return [entry for entry in squid_entries(start) if entry["method"] == "CONNECT"
                    and entry["url"] == "proxy-repo:22" and entry["status"].endswith("/403")]
        assert labtest.wait_until(lambda: bool(denied()), 30) is not None, \
            "Squid logged no 403 for CONNECT proxy-repo:22:\n" + "\n".join(e["line"] for e in squid_entries(start))
        journal = "journalctl -u netreach-tunnel@squid22 --no-pager"
        assert labtest.wait_until(lambda: "refused CONNECT proxy-repo:22: HTTP/1.1 403" in
                                  client().check_output(journal), 20) is not None, client().check_output(journal)
        assert client().run("curl -sS --max-time 5 http://127.0.0.1:12422/").rc != 0
        THROUGH_SQUID["tunnel to sshd:22 (refused, 403)"] = [denied()[0]["line"]]
    finally:
        run_module("ssh_tunnel", name="squid22", state="absent", remove_key=True, run_as="netreach-tunnel")


def test_a_reload_for_new_ports_keeps_the_established_tunnel_and_sshd():
    """tunnel_server changes the ports: sshd -t, then a reload (sshd's main process stays; its sessions too). The
    tunnel's ssh process on the client and its session on the server are the same before and after."""
    repo, host = lab_host("repo"), client()
    wait_for_the_forward()
    sshd_before = state("ssh", repo)
    tunnel_before = state("netreach-tunnel@squid443", host)
    sessions_before = set(repo.check_output("pgrep -u tunnel -x sshd || true").split())
    assert sessions_before, "no sshd session of the tunnel account on the repo"
    changed = sshd_ports([22, 443, 2222])
    try:
        assert changed["changed"] and changed["sshd_reloaded"], changed
        assert labtest.wait_until(lambda: listening(2222), 10) is not None, "sshd did not start listening on 2222"
        assert listening(443) and listening(22)
        assert state("ssh", repo)[0] == sshd_before[0], "sshd was restarted, not reloaded"
        assert state("netreach-tunnel@squid443", host) == tunnel_before, "the tunnel reconnected"
        assert sessions_before <= set(repo.check_output("pgrep -u tunnel -x sshd || true").split()), \
            "the tunnel's session on the server did not survive the reload"
        assert REPO_PAGE in host.check_output(FORWARD)
    finally:
        restored = sshd_ports([22, 443])
    assert restored["changed"] and not sshd_ports([22, 443])["changed"]
    assert labtest.wait_until(lambda: not listening(2222), 10) is not None
    assert state("netreach-tunnel@squid443", host) == tunnel_before and REPO_PAGE in host.check_output(FORWARD)
    # Squid writes a CONNECT when it closes: restart the tunnel and find it there as CORP\alice.
    start = squid_log_lines()
    host.check_output("systemctl restart netreach-tunnel@squid443")
    found = wait_for_entry(start, "CONNECT", "proxy-repo:443", USER, timeout=20)
    assert found, "\n".join(entry["line"] for entry in squid_entries(start))
    THROUGH_SQUID["tunnel to sshd:443 (ssh_tunnel)"] = [found[0]["line"]]
    wait_for_the_forward()
