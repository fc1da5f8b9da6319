"""Last in the scenario: the summary of what each client did through Squid, bad input, check mode with a password,
and state=absent taking everything away (the clients fail again; files that are not ours stay as they were)."""
from __future__ import annotations

import json

import pytest
from squidlab import OUR_FILES, PIP, THROUGH_SQUID, client, run_module, squid_user


def test_summary_of_the_clients_through_squid():
    """Printed for the closing note: Squid's access.log lines per client (run after the client tests)."""
    print("\nSquid access.log lines per client:")
    for name, lines in THROUGH_SQUID.items():
        users = sorted({squid_user(line.split()[7]) for line in lines if len(line.split()) > 7})
        print(f"  {name}: {len(lines)} line(s), users {users}; e.g. {lines[-1] if lines else ''}")
    assert THROUGH_SQUID


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
        ("client_session", {"name": "x", "host": "proxy-repo", "format": "putty",
                            "known_hosts": ["proxy-repo ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHo3AHjIuHszXOGnyGddz/nLsSXEp4d+j5UqpEw1cdwr\n"
                                            "evil ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHo3AHjIuHszXOGnyGddz/nLsSXEp4d+j5UqpEw1cdwr"]},
         "known_hosts[0]"),
        ("client_session", {"name": "x", "host": "proxy-repo", "format": "openssh",
                            "known_hosts": ["@cert-authority * ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHo3AHjIuHszXOGnyGddz/nLsSXEp4d+j5UqpEw1cdwr"]},
         "known_hosts[0]"),
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
