"""Helpers of the proxy scenario's suites: the lab's hosts, Squid's access.log, running a module of ours ad hoc.

Squid logs every request with the user it authenticated; through_proxy() runs a client and shows Squid served it as
the declared user. THROUGH_SQUID gathers what each client did, for the closing summary (test_zz_absent.py).
"""
from __future__ import annotations

import json
import os
import re
import subprocess

import labtest
from testinfra.host import Host

SQUID_LOG = "/var/log/squid/access.log"
# The second Squid's, doing NTLM on 8082 (prepare.yml).
NTLM_LOG = "/var/log/squid/ntlm-access.log"
REPO_PAGE = "netreach lab repo"
OUR_FILES = [
    "/etc/profile.d/netreach-proxy.sh", "/etc/systemd/system.conf.d/netreach-proxy.conf",
    "/etc/apt/apt.conf.d/80netreach-proxy", "/etc/systemd/system/docker.service.d/netreach-proxy.conf",
    "/etc/gitconfig", "/etc/pip.conf", "/etc/npmrc", "/etc/sudoers.d/netreach-proxy",
    "/etc/thunderbird/policies/policies.json",
]
PIP = "python3 -m pip"
NPM = "npm --no-update-notifier --no-audit --no-fund --registry http://proxy-repo/npm/"
# The corporate account (molecule.yml's proxy_lab_user and proxy_lab_password).
USER = "CORP\\alice"
PASSWORD = 'Pct%41 @:#;"/&?x'
# client_proxy as converge.yml declares it (Basic authentication as USER), to put back after an ad hoc change.
CONVERGED = {"http_proxy": "http://proxy-proxy:8080", "https_proxy": "http://proxy-proxy:8080",
             "username": USER, "password": PASSWORD,
             "socks_proxy": "socks5h://127.0.0.1:3128", "no_proxy": ["localhost", "127.0.0.1", "::1", ".corp.example", "10.0.0.0/8"],
             "browser_locked": True}
# Requests each client made through Squid as USER, for the closing summary.
THROUGH_SQUID: dict[str, list[str]] = {}


lab_host = labtest.host


def client() -> Host:
    return lab_host("client")


def squid_log_lines(log: str = SQUID_LOG) -> int:
    return int(lab_host("proxy").check_output(f"touch {log} && wc -l < {log}"))


def squid_user(field: str) -> str:
    """The user as access.log shows it: Squid's %[un writes a backslash (and a quote) escaped by a backslash."""
    return re.sub(r"\\(.)", r"\1", field)


def squid_entries(start: int, log: str = SQUID_LOG) -> list[dict]:
    """Squid's access.log after line START, in its native format: time elapsed client code/status bytes method
    URL user hierarchy type."""
    entries = []
    for line in lab_host("proxy").check_output(f"tail -n +{start + 1} {log}").splitlines():
        fields = line.split()
        if len(fields) >= 8:
            entries.append({"status": fields[3], "method": fields[5], "url": fields[6], "user": squid_user(fields[7]),
                            "line": line})
    return entries


def wait_for_entry(start: int, method: str, url: str, user: str | None, timeout: float = 10,
                   log: str = SQUID_LOG) -> list[dict]:
    """Squid's entries for METHOD URL... since START, waited for: Squid writes a CONNECT only when the tunnel
    closes. USER None: any user."""
    def matching() -> list[dict]:
        return [entry for entry in squid_entries(start, log) if entry["method"] == method and entry["url"].startswith(url)
                and re.search(r"/(2\d\d)$", entry["status"]) and (user is None or entry["user"] == user)]
    labtest.wait_until(lambda: bool(matching()), timeout)
    return matching()


def through_proxy(command: str, url: str, method: str = "GET", login: bool = False, user: str | None = USER,
                  name: str | None = None, log: str = SQUID_LOG) -> str:
    """Run COMMAND on the client (in a clean login shell if LOGIN) and show Squid served METHOD URL... to it as
    USER (in LOG: the NTLM Squid's is NTLM_LOG)."""
    start = squid_log_lines(log)
    if login:
        command = f"env -i HOME=/root TERM=dumb bash -lc {quote(command)}"
    result = client().run(command)
    assert result.rc == 0, f"{command} failed ({result.rc}):\n{result.stdout}\n{result.stderr}"
    found = wait_for_entry(start, method, url, user, log=log)
    lines = "\n".join(entry["line"] for entry in squid_entries(start, log))
    assert found, f"Squid did not log {method} {url} as {user!r} for {command}; its log:\n{lines}"
    if name:
        THROUGH_SQUID.setdefault(name, []).extend(entry["line"] for entry in squid_entries(start, log))
    return result.stdout


def quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def run_module(module: str, *flags: str, on: str = "client", **args) -> dict:
    """Run a module of ours on the lab host ON (the client) from the controller, as a user would ad hoc; the
    host's result."""
    env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    completed = subprocess.run(
        ["ansible", labtest.container(on), "-i", os.environ["MOLECULE_INVENTORY_FILE"], *flags,
         "-m", f"netreach.tunnels.{module}", "-a", json.dumps(args)],
        capture_output=True, text=True, timeout=180, check=False, env=env,
    )
    start = completed.stdout.find("\n{")
    assert start >= 0, f"ansible printed no JSON result: {completed.stdout}{completed.stderr}"
    document, _ = json.JSONDecoder().raw_decode(completed.stdout[start + 1:])
    return document["plays"][0]["tasks"][0]["hosts"][labtest.container(on)]


def on_client(argv: list[str], stdin: str, user: str = "root") -> subprocess.CompletedProcess:
    """ARGV on the client with STDIN, through docker exec: a secret on stdin is on no command line and in no log."""
    return subprocess.run(["docker", "exec", "-i", "-u", user, labtest.container("client"), *argv], input=stdin,
                          capture_output=True, text=True, timeout=180, check=False)
