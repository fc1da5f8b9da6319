"""Why a tunnel is down, from recorded ssh and proxy helper output (OpenSSH 9.2 of bookworm, 10.0 of trixie)."""
from __future__ import annotations

import json
import pathlib

import pytest

from ansible_collections.netreach.tunnels.plugins.module_utils import _tunnel_causes as causes
from ansible_collections.netreach.tunnels.plugins.module_utils import _tunnel_start as start

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
EXPECTED = {
    "hostkey_mismatch": ("host_key_mismatch", "Host key for 127.0.0.1 has changed and you have requested strict checking."),
    "hostkey_unknown": ("host_key_unknown", "No ED25519 host key is known for 127.0.0.1 and you have requested strict checking."),
    "permission_denied": ("permission_denied", "tunnel@127.0.0.1: Permission denied (publickey,password)."),
    "remote_forward_refused": ("remote_forward_refused", "Error: remote port forwarding failed for listen port 17999"),
    "connection_refused": ("connection_refused", "ssh: connect to host 127.0.0.1 port 2222: Connection refused"),
    "name_unresolved": ("name_unresolved",
                        "ssh: Could not resolve hostname nosuch.invalid: Temporary failure in name resolution"),
    "proxy_refused": ("proxy_refused", "proxy-connect: the proxy refused CONNECT 127.0.0.1:22: HTTP/1.1 403 Access violation"),
    "proxy_down": ("proxy_unreachable", "proxy-connect: cannot reach the proxy 127.0.0.1:8889: Connection refused"),
}
# Recorded in the tunnel_security lab (docker's DNS, an address of the corp network nobody holds).
LAB_LINES = {
    "ssh: Could not resolve hostname nosuch-host.invalid: Name or service not known": "name_unresolved",
    "ssh: connect to host 172.20.0.250 port 22: Connection timed out": "connection_timed_out",
    "ssh: connect to host 172.20.0.250 port 22: No route to host": "connection_timed_out",
    "ssh: connect to host tunnel_security-bastion port 2222: Connection refused": "connection_refused",
}


def recorded(release: str) -> dict[tuple[str, str], list[str]]:
    sections: dict[tuple[str, str], list[str]] = {}
    current = None
    for line in (FIXTURES / f"ssh_failures_{release}.txt").read_text().splitlines():
        if line.startswith("#"):
            continue
        if line.startswith("=== "):
            current = tuple(line.split()[1:3])
            sections[current] = []
        elif current:
            sections[current].append(line)
    return sections


@pytest.mark.parametrize("release", ["bookworm", "trixie"])
@pytest.mark.parametrize("verbosity", ["plain", "-v"])
@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_each_recorded_failure_has_its_cause_and_line(release, verbosity, case):
    diagnosis = causes.diagnose(recorded(release)[(case, verbosity)], healthy=False)
    assert (diagnosis.cause, diagnosis.last_error) == EXPECTED[case]
    assert not any(line.startswith(("debug1:", "kex_exchange", "Connection closed")) for line in diagnosis.warnings)


@pytest.mark.parametrize("release", ["bookworm", "trixie"])
@pytest.mark.parametrize("verbosity", ["plain", "-v"])
def test_a_healthy_tunnel_has_no_error_and_its_ipv6_bind_failure_is_a_warning(release, verbosity):
    diagnosis = causes.diagnose(recorded(release)[("bind_ipv6_healthy", verbosity)], healthy=True)
    assert (diagnosis.cause, diagnosis.last_error) == ("", "")
    assert diagnosis.warnings == ["bind [::1]:12345: Cannot assign requested address"]


def test_the_same_bind_failure_stays_a_warning_beside_a_real_cause():
    lines = ["bind [::1]:12345: Cannot assign requested address", "Timeout, server bastion not responding."]
    diagnosis = causes.diagnose(lines, healthy=False)
    assert diagnosis.cause == "connection_lost" and diagnosis.warnings == [lines[0]]


@pytest.mark.parametrize(("line", "kind"), sorted(LAB_LINES.items()))
def test_lines_recorded_in_the_lab(line, kind):
    assert causes.classify(line) == kind


def test_a_proxy_refusal_comes_before_what_ssh_says_about_it():
    lines = ["proxy-connect: the proxy refused CONNECT bastion:22: HTTP/1.1 403 Forbidden",
             "kex_exchange_identification: Connection closed by remote host", "Connection closed by UNKNOWN port 65535"]
    assert causes.diagnose(lines, healthy=False).last_error == lines[0]
    assert causes.diagnose(lines[1:], healthy=False).cause == "connection_closed"


def test_unknown_failures_fall_back_to_the_last_failure_looking_line():
    diagnosis = causes.diagnose(["something odd", "mux_client: could not do the thing"], healthy=False)
    assert (diagnosis.cause, diagnosis.last_error) == ("other", "mux_client: could not do the thing")
    assert causes.diagnose(["all quiet"], healthy=False).cause == ""


def entry(invocation: str, message, transport: str = "stdout") -> str:
    return json.dumps({"_TRANSPORT": transport, "_SYSTEMD_INVOCATION_ID": invocation, "MESSAGE": message})


JOURNAL = "\n".join([
    entry("a", "Started netreach-tunnel@web.service - netreach SSH tunnel web to bastion.", "journal"),
    entry("a", "ssh: connect to host bastion port 22: Connection refused"),
    entry("a", "netreach-tunnel@web.service: Failed with result 'exit-code'.", "journal"),
    entry("b", "bind [::1]:12380: Cannot assign requested address"),
    entry("b", list(b"Host key verification failed.\xff")),
    entry("b", "netreach-tunnel@web.service: Main process exited, code=exited, status=255/EXCEPTION", "journal"),
    "not json",
])


def test_the_last_start_that_printed_anything_is_diagnosed_never_systemds_lines():
    assert causes.attempts(JOURNAL)[0] == ("a", ["ssh: connect to host bastion port 22: Connection refused"])
    # Waiting out its backoff (invocation c printed nothing yet): the start before it says why.
    diagnosis = causes.tunnel_diagnosis(JOURNAL, "c", healthy=False)
    assert diagnosis.cause == "host_key_rejected" and diagnosis.last_error.startswith("Host key verification failed.")
    assert diagnosis.warnings == ["bind [::1]:12380: Cannot assign requested address"]


def test_a_healthy_tunnel_reads_only_its_current_start():
    assert causes.tunnel_diagnosis(JOURNAL, "c", healthy=True) == causes.Diagnosis()
    healthy = causes.tunnel_diagnosis(JOURNAL, "a", healthy=True)
    assert healthy.cause == "" and healthy.last_error == "" and healthy.warnings
    assert causes.tunnel_diagnosis("", "a", healthy=False) == causes.Diagnosis()


SUPERVISED = "\n".join([
    entry("s", "ssh: connect to host bastion port 22: Connection refused"),
    entry("s", f"{start.RESTART_MARK} (the connection failed)"),
    entry("s", "Host key verification failed."),
    entry("s", f"{start.RESTART_MARK} (ssh exited with status 255)"),
])


def test_the_starter_marks_split_one_start_into_its_attempts():
    # One start of the unit, three attempts of its starter: the last (after the last mark) printed nothing yet.
    assert causes.attempts(SUPERVISED) == [("s", ["ssh: connect to host bastion port 22: Connection refused"]),
                                           ("s", ["Host key verification failed."]), ("s", [])]
    # Waiting out the backoff: the attempt before says why, not the first failure of the start.
    diagnosis = causes.tunnel_diagnosis(SUPERVISED, "s", healthy=False)
    assert (diagnosis.cause, diagnosis.last_error) == ("host_key_rejected", "Host key verification failed.")
    # Up again in the same start: the failures of its earlier attempts are no warnings of the session.
    assert causes.tunnel_diagnosis(SUPERVISED, "s", healthy=True) == causes.Diagnosis()
    healthy = causes.tunnel_diagnosis(SUPERVISED + "\n" + entry("s", "Warning: remote port forwarding failed for "
                                                                     "listen port 2222"), "s", healthy=True)
    assert healthy.warnings == ["Warning: remote port forwarding failed for listen port 2222"]
