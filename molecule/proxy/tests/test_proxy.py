"""netreach.tunnels.client_proxy and client_session proven by the clients themselves.

The client sits on "corp"; the repo (apt, git, pip over HTTP; sshd) on "inside"; tinyproxy on the proxy is the
only way between them. No test sets a proxy variable: each client finds the proxy where converge.yml had the
modules write it, and tinyproxy's access log shows every request. The last test removes everything with
state=absent and shows the clients fail again while files that are not ours stay as they were.
"""
from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import time
import zipfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

import jsonschema
import labtest
import pytest
from testinfra.host import Host

PROXY_LOG = "/var/log/tinyproxy/tinyproxy.log"
REPO_PAGE = "netreach lab repo"
CACHE = Path(os.environ.get("HOME", "/root")) / ".cache" / "netreach-tunnels" / "proxy-scenario"
OUR_FILES = [
    "/etc/profile.d/netreach-proxy.sh", "/etc/systemd/system.conf.d/netreach-proxy.conf",
    "/etc/apt/apt.conf.d/80netreach-proxy", "/etc/systemd/system/docker.service.d/netreach-proxy.conf",
    "/etc/gitconfig", "/etc/pip.conf", "/etc/npmrc", "/etc/sudoers.d/netreach-proxy",
    "/etc/thunderbird/policies/policies.json",
]
PIP = "python3 /opt/pip.whl/pip"


lab_host = labtest.host


def client() -> Host:
    return lab_host("client")


def proxy_log_lines() -> int:
    return int(lab_host("proxy").check_output(f"wc -l < {PROXY_LOG}"))


def proxy_log_since(start: int) -> str:
    return lab_host("proxy").check_output(f"tail -n +{start + 1} {PROXY_LOG}")


def through_proxy(command: str, expect_in_log: str, login: bool = False) -> str:
    """Run COMMAND on the client (in a clean login shell if LOGIN) and show it went through tinyproxy."""
    start = proxy_log_lines()
    if login:
        command = f"env -i HOME=/root TERM=dumb bash -lc {quote(command)}"
    result = client().run(command)
    assert result.rc == 0, f"{command} failed ({result.rc}):\n{result.stdout}\n{result.stderr}"
    log = proxy_log_since(start)
    assert expect_in_log in log, f"tinyproxy did not log {expect_in_log!r} for {command}; its log:\n{log}"
    return result.stdout


def quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def run_module(module: str, *flags: str, **args) -> dict:
    """Run a module of ours on the client from the controller, as a user would ad hoc; the host's result."""
    env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    completed = subprocess.run(
        ["ansible", labtest.container("client"), "-i", os.environ["MOLECULE_INVENTORY_FILE"], *flags,
         "-m", f"netreach.tunnels.{module}", "-a", json.dumps(args)],
        capture_output=True, text=True, timeout=180, check=False, env=env,
    )
    start = completed.stdout.find("\n{")
    assert start >= 0, f"ansible printed no JSON result: {completed.stdout}{completed.stderr}"
    document, _ = json.JSONDecoder().raw_decode(completed.stdout[start + 1:])
    return document["plays"][0]["tasks"][0]["hosts"][labtest.container("client")]


# --- the proxy at every layer ----------------------------------------------------------------------------

def test_the_client_cannot_reach_the_repo_without_the_proxy():
    result = client().run("curl -sS --noproxy '*' --max-time 5 http://proxy-repo/")
    assert result.rc != 0, "the client reached the repo directly: the lab does not prove anything"


def test_login_shell_curl_uses_the_environment():
    out = through_proxy("curl -sSf --max-time 10 http://proxy-repo/", "GET http://proxy-repo/ ", login=True)
    assert REPO_PAGE in out


def test_a_systemd_service_sees_the_proxy():
    out = through_proxy("systemd-run --wait --pipe --quiet curl -sSf --max-time 10 http://proxy-repo/index.html",
                        "GET http://proxy-repo/index.html")
    assert REPO_PAGE in out


def test_apt_update_and_download_from_the_inside_repo():
    through_proxy("apt-get update", "GET http://proxy-repo/apt/")
    client().run("rm -f /tmp/netreach-hello_1.0_all.deb")
    through_proxy("cd /tmp && apt-get download netreach-hello", "netreach-hello_1.0_all.deb")
    assert client().file("/tmp/netreach-hello_1.0_all.deb").exists


def test_git_clone_over_dumb_http():
    client().run("rm -rf /tmp/x")
    through_proxy("git clone -q http://proxy-repo/x.git /tmp/x", "GET http://proxy-repo/x.git/info/refs")
    assert "netreach lab git repository" in client().file("/tmp/x/README").content_string


def test_pip_download_from_the_inside_index():
    client().run("rm -rf /tmp/pipdl")
    through_proxy(f"{PIP} download --no-deps --disable-pip-version-check --trusted-host proxy-repo "
                  "--index-url http://proxy-repo/simple/ -d /tmp/pipdl netreach-hello",
                  "GET http://proxy-repo/simple/netreach-hello/")
    assert client().file("/tmp/pipdl/netreach_hello-1.0-py3-none-any.whl").exists


def test_wget_uses_wgetrc():
    out = through_proxy("wget -q -O - http://proxy-repo/index.html", "GET http://proxy-repo/index.html")
    assert REPO_PAGE in out


def test_sudo_keeps_the_proxy_variables():
    out = client().check_output("env -i HOME=/root bash -lc 'sudo -u nobody env' | grep -c '^http_proxy=http://proxy-proxy:8080$'")
    assert out.strip() == "1"


def test_the_socks_forward_is_in_the_environment_and_no_proxy_is_normalised():
    env = client().check_output("env -i HOME=/root bash -lc env")
    assert "all_proxy=socks5h://127.0.0.1:3128" in env and "NO_PROXY=localhost,127.0.0.1,::1,.corp.example,10.0.0.0/8" in env


# --- Firefox ESR and Thunderbird policies ------------------------------------------------------------------

# Debian package -> (its omni.ja holding the policy engine, its omni.ja holding the policy schema, the file it reads).
APPS = {
    "firefox-esr": ("./usr/lib/firefox-esr/omni.ja", "./usr/lib/firefox-esr/browser/omni.ja",
                    "/etc/firefox/policies/policies.json"),
    # /usr/lib/thunderbird/omni.ja is a symbolic link to this file.
    "thunderbird": ("./usr/share/thunderbird/omni.ja", "./usr/share/thunderbird/omni.ja",
                    "/etc/thunderbird/policies/policies.json"),
}


@functools.cache
def package_file(package: str, member: str, path: str) -> bytes:
    """PATH inside the omni.ja MEMBER of Debian's PACKAGE, downloaded once into the controller's cache with apt;
    nothing of it is kept in the repository."""
    CACHE.mkdir(parents=True, exist_ok=True)
    debs = sorted(CACHE.glob(f"{package}_*.deb"))
    if not debs:
        download = ["apt-get", "download", package]
        if subprocess.run(download, cwd=CACHE, capture_output=True, timeout=300, check=False).returncode != 0:
            # A machine whose apt lists were never fetched (host-setup.sh found every package installed).
            subprocess.run(["apt-get", "update", "-q"], check=True, capture_output=True, timeout=300)
            subprocess.run(download, cwd=CACHE, check=True, capture_output=True, timeout=300)
        debs = sorted(CACHE.glob(f"{package}_*.deb"))
    omni = CACHE / (package + "_" + member.strip("./").replace("/", "_"))
    if not omni.exists() or omni.stat().st_size == 0 or omni.stat().st_mtime < debs[-1].stat().st_mtime:
        tar = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(debs[-1])], check=True, capture_output=True).stdout
        content = subprocess.run(["tar", "-x", "-O", member], input=tar, check=True, capture_output=True).stdout
        assert content, f"{member} of {debs[-1].name} is empty (a symbolic link?)"
        omni.write_bytes(content)
    with zipfile.ZipFile(omni) as archive:
        return archive.read(path)


def policy_schema(package: str) -> dict:
    return json.loads(package_file(package, APPS[package][1], "modules/policies/policies-schema.json"))


@pytest.mark.parametrize("package", sorted(APPS))
def test_each_application_reads_the_system_policies_file_we_write(package):
    """Firefox and Thunderbird read SysConfD/policies/policies.json (SysConfD = /etc/ + the application name in lower
    case) when built with MOZ_SYSTEM_POLICIES; the package's own AppConstants give the name and say whether."""
    engine = APPS[package][0]
    constants = package_file(package, engine, "modules/AppConstants.sys.mjs").decode()
    parent = package_file(package, engine, "modules/EnterprisePoliciesParent.sys.mjs").decode()
    assert re.search(r"MOZ_SYSTEM_POLICIES:\s*true", constants)
    assert 'Services.dirsvc.get("SysConfD"' in parent and 'systemConfigFile.append("policies")' in parent
    name = re.search(r'MOZ_APP_BASENAME:\s*"([^"]+)"', constants).group(1)
    assert f"/etc/{name.lower()}/policies/policies.json" == APPS[package][2]
    assert client().file(APPS[package][2]).exists


def validate_policies(document: dict, package: str = "firefox-esr") -> None:
    """Validate like Firefox does: each policy against its schema, properties the schema does not name rejected."""

    def closed(node):
        if isinstance(node, dict):
            node = {key: closed(value) for key, value in node.items()}
            if node.get("type") == "object" and "properties" in node and "additionalProperties" not in node \
                    and "patternProperties" not in node:
                node["additionalProperties"] = False
        elif isinstance(node, list):
            node = [closed(item) for item in node]
        return node

    strict = closed(policy_schema(package))
    validator = jsonschema.validators.validator_for(strict)(strict)
    errors = sorted(validator.iter_errors(document["policies"]), key=str)
    assert not errors, "\n".join(error.message for error in errors)


@pytest.mark.parametrize(("path", "schema_of"), [
    ("/etc/firefox/policies/policies.json", "firefox-esr"),
    ("/etc/thunderbird/policies/policies.json", "firefox-esr"),
    ("/etc/thunderbird/policies/policies.json", "thunderbird"),
])
def test_policies_validate_against_the_shipped_schema(path, schema_of):
    document = json.loads(client().file(path).content_string)
    validate_policies(document, schema_of)
    proxy = document["policies"]["Proxy"]
    assert proxy["Mode"] == "manual" and proxy["Locked"] is True
    assert proxy["HTTPProxy"] == "proxy-proxy:8080" and proxy["SOCKSProxy"] == "127.0.0.1:3128"
    assert proxy["SOCKSVersion"] == 5 and proxy["UseProxyForDNS"] is True
    assert proxy["Passthrough"] == "localhost, 127.0.0.1, ::1, .corp.example, 10.0.0.0/8"


def test_the_schema_check_rejects_a_bad_proxy_policy():
    with pytest.raises(AssertionError):
        validate_policies({"policies": {"Proxy": {"Mode": "manual", "SOCKSVersion": 6}}})
    with pytest.raises(AssertionError):
        validate_policies({"policies": {"Proxy": {"Mode": "manual", "HTTPProxyHost": "x:1"}}})


def test_other_policies_are_kept():
    document = json.loads(client().file("/etc/firefox/policies/policies.json").content_string)
    assert document["policies"]["DisableTelemetry"] is True


# --- sessions ----------------------------------------------------------------------------------------------

def test_plain_ssh_name_logs_in_through_the_proxy():
    out = through_proxy("ssh -o BatchMode=yes repo-via-proxy hostname", "CONNECT proxy-repo:22")
    assert out.strip() == "proxy-repo"


def test_plain_ssh_name_logs_in_through_the_tunnel_host_and_opens_its_socks_forward():
    assert client().check_output("ssh -o BatchMode=yes repo-via-tunnel hostname").strip() == "proxy-repo"
    command = ("ssh -o BatchMode=yes -f -o ExitOnForwardFailure=yes repo-via-tunnel sleep 15 && "
               "curl -sSf --max-time 10 --socks5-hostname 127.0.0.1:3129 http://proxy-repo/")
    assert REPO_PAGE in client().check_output(command)


def repo_host_key_fingerprint() -> str:
    out = lab_host("repo").check_output("ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub")
    return out.split()[1]


def test_putty_session_file_is_named_the_way_putty_escapes_it():
    assert client().file("/root/.putty/sessions/repo%20news").mode == 0o600
    assert client().file("/root/.putty/sessions/other").exists


def test_plink_load_logs_in_through_the_proxy():
    fingerprint = repo_host_key_fingerprint()
    out = through_proxy(f"plink -load 'repo news' -batch -hostkey {fingerprint} hostname", "CONNECT proxy-repo:22")
    assert out.strip() == "proxy-repo"


def test_plink_opens_the_d3128_forward_of_the_session():
    fingerprint = repo_host_key_fingerprint()
    host = client()
    host.run("rm -f /tmp/plink.pid")
    host.check_output(f"setsid sh -c 'echo $$ > /tmp/plink.pid; exec timeout 60 plink -load \"repo news\" -batch "
                      f"-hostkey {fingerprint} -N' >/tmp/plink.log 2>&1 < /dev/null &")
    try:
        deadline = time.monotonic() + 20
        result = None
        while time.monotonic() < deadline:
            result = host.run("curl -sSf --max-time 5 --socks5-hostname 127.0.0.1:3128 http://proxy-repo/")
            if result.rc == 0:
                break
            time.sleep(0.5)
        assert result is not None and REPO_PAGE in result.stdout, \
            f"no page through plink's D3128: {result and result.stderr}\n{host.run('cat /tmp/plink.log').stdout}"
    finally:
        host.run("test -s /tmp/plink.pid && kill -- -$(cat /tmp/plink.pid)")


def test_winscp_ini_keeps_other_sections_and_carries_the_documented_keys():
    text = client().file("/root/WinSCP.ini").content_string
    assert text.startswith("[Configuration\\Interface]\r\nRandomSeedFile=%25APPDATA%25%5Cwinscp.rnd\r\n"
                           "[Sessions\\other%20site]\r\nHostName=other.example.org\r\n")
    section = text.split("[Sessions\\corp/repo%20site]\r\n", 1)[1]
    keys = dict(line.split("=", 1) for line in section.split("\r\n") if "=" in line)
    assert keys == {"HostName": "proxy-repo", "PortNumber": "22", "UserName": "lab", "FSProtocol": "2",
                    "ProxyMethod": "3", "ProxyHost": "proxy-proxy", "ProxyPort": "8080", "Tunnel": "1",
                    "TunnelHostName": "proxy-proxy", "TunnelPortNumber": "22", "TunnelUserName": "lab"}


# --- credentials ------------------------------------------------------------------------------------------

AUTH_LOG = "/var/log/tinyproxy/auth.log"
# The account of the lab's authenticating tinyproxy (port 8081); tinyproxy allows no URL delimiters in a password,
# so their percent-encoding is proven by the unit tests (round trip through urlsplit).
AUTH = {"username": "corp.alice", "password": "Pa55-w0rd_x.y"}
CONVERGED = {"http_proxy": "http://proxy-proxy:8080", "https_proxy": "http://proxy-proxy:8080",
             "socks_proxy": "socks5h://127.0.0.1:3128", "no_proxy": ["localhost", "127.0.0.1", "::1", ".corp.example", "10.0.0.0/8"],
             "browser_locked": True}


def test_credentials_reach_an_authenticating_proxy_intact_and_their_files_are_0600():
    host = client()
    denied = host.run("curl -sS -o /dev/null -w '%{http_code}' -x http://corp.alice:wrong@proxy-proxy:8081 http://proxy-repo/")
    # tinyproxy 1.11 answers a wrong password with 401 (not 407).
    assert denied.stdout in ("401", "407"), f"the authenticating proxy did not refuse a wrong password: {denied.stdout}"
    targets = ["environment", "systemd", "apt", "git", "pip", "wget"]
    result = run_module("client_proxy", http_proxy="http://proxy-proxy:8081", https_proxy="http://proxy-proxy:8081",
                        targets=targets, **AUTH)
    try:
        assert result.get("changed") is True, result
        assert AUTH["password"] not in json.dumps(result)
        for path in ("/etc/environment", "/etc/profile.d/netreach-proxy.sh", "/etc/systemd/system.conf.d/netreach-proxy.conf",
                     "/etc/apt/apt.conf.d/80netreach-proxy", "/etc/gitconfig", "/etc/pip.conf", "/etc/wgetrc"):
            assert host.file(path).mode == 0o600, f"{path} holds the password but is {oct(host.file(path).mode)}"
        commands = {
            "login shell curl": "env -i HOME=/root bash -lc 'curl -sSf --max-time 10 http://proxy-repo/'",
            "systemd service": "systemd-run --wait --pipe --quiet curl -sSf --max-time 10 http://proxy-repo/",
            "apt-get update": "apt-get update",
            "git clone": "rm -rf /tmp/xa && git clone -q http://proxy-repo/x.git /tmp/xa",
            "pip download": f"rm -rf /tmp/pa && {PIP} download --no-deps --disable-pip-version-check "
                            "--trusted-host proxy-repo --index-url http://proxy-repo/simple/ -d /tmp/pa netreach-hello",
            "wget": "wget -q -O /dev/null http://proxy-repo/index.html",
        }
        proxy = lab_host("proxy")
        for name, command in commands.items():
            start = int(proxy.check_output(f"wc -l < {AUTH_LOG}"))
            run = host.run(command)
            log = proxy.check_output(f"tail -n +{start + 1} {AUTH_LOG}")
            assert run.rc == 0, f"{name} failed through the authenticating proxy: {run.stdout}{run.stderr}\n{log}"
            assert "GET http://proxy-repo/" in log, f"{name}: the authenticating proxy did not log it:\n{log}"
    finally:
        restored = run_module("client_proxy", **CONVERGED)
        assert not restored.get("failed"), restored


# Every URL-special character, a space and a percent-encoding lookalike: systemd expands specifiers in
# DefaultEnvironment=, so the percent-encoded password's "%" must reach it doubled, or systemd drops http_proxy.
# tinyproxy takes no such password for Basic authentication, so the proxy on 8080 (which asks for none) carries the
# request; what is proven is the environment every service gets, and that the URL built from it works.
HOSTILE_PASSWORD = 'Pct%41 @:#;"/&?x'


def test_a_password_with_every_url_special_character_reaches_a_systemd_services_environment():
    host = client()
    result = run_module("client_proxy", http_proxy="http://proxy-proxy:8080", https_proxy="http://proxy-proxy:8080",
                        targets=["systemd", "apt", "git"], username="CORP\\alice", password=HOSTILE_PASSWORD)
    try:
        # The module's own read-backs (systemctl show-environment, apt-config dump, git config) passed.
        assert result.get("changed") is True and not result.get("failed"), result
        env = host.check_output("systemd-run --wait --pipe --quiet env")
        proxies = dict(line.split("=", 1) for line in env.splitlines() if line.lower().startswith(("http_", "https_")))
        assert set(proxies) >= {"http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"}, sorted(proxies)
        url = urlsplit(proxies["http_proxy"])
        assert unquote(url.password) == HOSTILE_PASSWORD and unquote(url.username) == "CORP\\alice"
        assert (url.hostname, url.port) == ("proxy-proxy", 8080)
        out = through_proxy("systemd-run --wait --pipe --quiet curl -sSf --max-time 10 http://proxy-repo/index.html",
                            "GET http://proxy-repo/index.html")
        assert REPO_PAGE in out
    finally:
        restored = run_module("client_proxy", **CONVERGED)
        assert not restored.get("failed"), restored


def test_a_layer_its_consumer_sees_otherwise_fails_naming_the_layer():
    """No silent success: a later apt.conf.d file of someone else overrides our proxy; apt-config dump shows it."""
    host = client()
    host.check_output("printf 'Acquire::http::Proxy \"http://elsewhere:3128\";\\n' > /etc/apt/apt.conf.d/99zz-lab-other")
    try:
        result = run_module("client_proxy", **CONVERGED)
        assert result.get("failed") and result.get("field") == "apt", result
        assert "Acquire::http::Proxy is 'http://elsewhere:3128'" in result["msg"], result["msg"]
    finally:
        host.check_output("rm -f /etc/apt/apt.conf.d/99zz-lab-other")
    assert not run_module("client_proxy", **CONVERGED).get("failed")


# --- bad input and state=absent (last: it takes everything away) -------------------------------------------

SNAPSHOT = "find /etc /root -xdev -newer /root/not-ours.sha256 -type f 2>/dev/null | sort | xargs -r sha256sum"


@pytest.mark.parametrize(
    ("module", "args", "field"),
    [
        ("client_proxy", {"http_proxy": "ftp://proxy-proxy:8080"}, "http_proxy"),
        ("client_proxy", {"http_proxy": "http://proxy-proxy:8080", "no_proxy": ["a b\nHTTP_PROXY=x"]}, "no_proxy[0]"),
        ("client_proxy", {"http_proxy": "http://proxy-proxy:8080\nexport X=1"}, "http_proxy"),
        ("client_session", {"name": "bad\nname", "host": "proxy-repo", "format": "putty"}, "name"),
        ("client_session", {"name": "x", "host": "proxy-repo -oProxyCommand=sh", "format": "openssh"}, "host"),
        ("client_session", {"name": "../../../etc/passwd", "state": "absent", "format": "openssh"}, "name"),
    ],
)
def test_bad_input_fails_naming_the_field_and_changes_nothing(module, args, field):
    before = client().check_output(SNAPSHOT)
    result = run_module(module, **args)
    assert result.get("failed"), result
    assert field in result["msg"], result["msg"]
    assert client().check_output(SNAPSHOT) == before


def test_check_mode_with_a_password_shows_a_masked_diff_and_changes_nothing():
    password = "s3cr@t:pass/word"
    before = client().check_output(SNAPSHOT)
    result = run_module("client_proxy", "--check", "--diff", http_proxy="http://proxy-proxy:8080",
                        username="corp\\alice", password=password, targets=["environment", "apt", "pip"])
    assert result["changed"] is True, result
    shown = json.dumps(result)
    assert password not in shown and "s3cr%40t%3Apass%2Fword" not in shown, shown
    diffs = result["diff"] if isinstance(result["diff"], list) else [result["diff"]]
    assert any("********" in diff["after"] for diff in diffs), diffs
    assert client().check_output(SNAPSHOT) == before


def test_state_absent_removes_what_we_wrote_and_the_clients_fail_again():
    host = client()
    result = run_module("client_proxy", state="absent")
    assert result["changed"] is True, result
    for session in (dict(name="repo-via-proxy", format="openssh"), dict(name="repo-via-tunnel", format="openssh"),
                    dict(name="repo news", format="putty"), dict(name="corp/repo site", format="winscp", path="/root/WinSCP.ini")):
        assert run_module("client_session", state="absent", **session)["changed"] is True
    again = run_module("client_proxy", state="absent")
    assert again["changed"] is False, again
    for path in OUR_FILES + ["/root/.putty/sessions/repo%20news", "/root/.putty/netreach-repo%20news.reg",
                             "/root/.ssh/config.d/netreach-repo-via-proxy.conf", "/root/.ssh/config"]:
        assert not host.file(path).exists, f"{path} is still there"
    # Files that are not ours are byte for byte what they were before converge.
    check = host.run("sha256sum -c /root/not-ours.sha256")
    assert check.rc == 0, check.stdout + check.stderr
    failures = {
        "login shell curl": "env -i HOME=/root bash -lc 'curl -sS --max-time 5 http://proxy-repo/'",
        "systemd service": "systemd-run --wait --pipe --quiet curl -sS --max-time 5 http://proxy-repo/",
        "apt-get update": "apt-get -o Acquire::http::Timeout=5 update 2>&1 | grep -q '^Err' && exit 1 || exit 0",
        "git clone": "rm -rf /tmp/y && timeout 20 git clone -q http://proxy-repo/x.git /tmp/y",
        "pip download": f"timeout 30 {PIP} download --no-deps --retries 0 --timeout 5 --trusted-host proxy-repo "
                        "--index-url http://proxy-repo/simple/ -d /tmp/pipdl2 netreach-hello",
        "wget": "wget -q -T 5 -t 1 -O - http://proxy-repo/index.html",
        "ssh NAME": "ssh -o BatchMode=yes -o ConnectTimeout=5 repo-via-proxy true",
    }
    for name, command in failures.items():
        assert host.run(command).rc != 0, f"{name} still reaches the repo after state=absent"
