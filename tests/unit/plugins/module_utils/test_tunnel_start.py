"""The tunnel starter (tunnel-start): its backoff, its connection attempts, its hand-over to ssh, and that what it
prints on a failure is ssh's own line, which tunnel_info's cause reads."""
from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time

import pytest

from ansible_collections.netreach.tunnels.plugins.module_utils import _tunnel_causes as causes
from ansible_collections.netreach.tunnels.plugins.module_utils import _tunnel_start as start
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_info import session_since

PROGRAM = start.__file__


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- backoff: the same sequence the shell helper of earlier releases gave --------------------------------------


def run_attempts(lengths: list[float], gate: float = 15, delay: float = 1, max_delay: float = 30) -> list[float]:
    """The wait before each start, when attempt i lasts LENGTHS[i] seconds (None: failed in the starter)."""
    state, clock, waits = {}, 1000.0, []
    for length in lengths:
        failures = start.failures_before(state, clock, gate)
        waits.append(start.backoff(failures, delay, max_delay))
        clock += waits[-1]
        if length is None:
            state = {"failures": failures + 1}
        else:
            state = {"failures": failures, "started": clock}
            clock += length
        clock += 0.1  # RestartSec
    return waits


def test_first_start_and_the_first_retry_after_a_session_are_immediate():
    assert run_attempts([3600, 0.2, 0.2]) == [0, 0, 1]


def test_quick_failures_double_up_to_the_maximum():
    assert run_attempts([0.2] * 9, max_delay=30) == [0, 0, 1, 2, 4, 8, 16, 30, 30]


def test_a_failure_in_the_starter_counts_like_a_quick_ssh_failure():
    assert run_attempts([3600, None, None, None]) == run_attempts([3600, 0.2, 0.2, 0.2]) == [0, 0, 1, 2]


def test_a_session_that_outlived_the_gate_resets_the_backoff():
    assert run_attempts([0.2, 0.2, 0.2, 0.2, 20, 0.2]) == [0, 0, 1, 2, 4, 0]


@pytest.mark.parametrize("state", [{"failures": "x"}, {"failures": "2", "started": "later"}, {}])
def test_a_state_it_cannot_read_starts_at_once(state):
    assert start.backoff(start.failures_before(state, 10.0, 15), 1, 30) == 0


# --- the connection -------------------------------------------------------------------------------------------


def test_connects_at_once_to_a_listening_port():
    with socket.create_server(("127.0.0.1", 0)) as server:
        sock, attempts = start.connect("127.0.0.1", server.getsockname()[1], timeout=2)
        try:
            assert attempts == 1 and sock.getpeername() == server.getsockname()
        finally:
            sock.close()


def test_a_refusal_ends_the_start_with_ssh_own_line():
    port = closed_port()
    with pytest.raises(start.Failure) as failure:
        start.connect("127.0.0.1", port, timeout=2)
    line = str(failure.value)
    # ssh 9.2 and 10.0 print exactly this (tests/unit/.../fixtures/ssh_failures_*.txt, case connection_refused).
    assert line == f"ssh: connect to host 127.0.0.1 port {port}: Connection refused"
    assert causes.diagnose([line], healthy=False).cause == "connection_refused"


@pytest.mark.parametrize(("error", "text"), [
    (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), "Name or service not known"),
    (socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"), "Temporary failure in name resolution"),
    (OSError(5, "Input/output error"), "Input/output error"),
])
def test_a_name_that_does_not_resolve_is_ssh_own_line_never_a_traceback(monkeypatch, error, text):
    def fail(*_args, **_kwargs):
        raise error
    monkeypatch.setattr(start._socket, "getaddrinfo", fail)
    with pytest.raises(start.Failure) as failure:
        start.connect("nosuch-host.invalid", 22, timeout=1)
    assert str(failure.value) == f"ssh: Could not resolve hostname nosuch-host.invalid: {text}"
    assert causes.classify(str(failure.value)) == "name_unresolved"


def test_a_silent_path_is_reported_once_and_used_as_soon_as_it_answers(capfd):
    """A listener whose accept queue is full drops SYNs, as a black hole does; freed, the next attempt connects."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        fillers = [socket.socket() for _filler in range(3)]
        for filler in fillers:
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
        time.sleep(0.2)
        got: dict = {}

        def attempt():
            began = time.monotonic()
            got["sock"], got["attempts"] = start.connect("127.0.0.1", port, timeout=0.5, interval=0.05)
            got["seconds"] = time.monotonic() - began

        thread = threading.Thread(target=attempt)
        thread.start()
        time.sleep(1.2)
        assert thread.is_alive(), "connected through a full accept queue: the test's black hole leaks"
        server.settimeout(0.5)
        freed = time.monotonic()
        accepted = []
        while thread.is_alive() and time.monotonic() - freed < 5:
            try:
                accepted.append(server.accept()[0])
            except socket.timeout:
                pass
        thread.join(5)
        for sock in accepted + fillers:
            sock.close()
    got["sock"].close()
    assert got["attempts"] > 10 and got["seconds"] >= 1.2
    assert time.monotonic() - freed < 2, "the freed path was not used at once"
    printed = capfd.readouterr().err.splitlines()
    assert printed == [f"ssh: connect to host 127.0.0.1 port {port}: Connection timed out"]
    assert causes.diagnose(printed, healthy=False).cause == "connection_timed_out"


# --- the program: hand-over to the command, state, failure ----------------------------------------------------


def run_program(args: list[str], runtime, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-I", "-S", PROGRAM, *args], capture_output=True, text=True, timeout=30, check=False,
                          env={"RUNTIME_DIRECTORY": str(runtime), "INVOCATION_ID": "abc123", **(env or {})})


def test_the_connected_socket_becomes_the_command_stdin_and_stdout(tmp_path):
    child = ("import os, sys; os.write(1, b'hello from the command'); "
             "sys.stderr.write(os.read(0, 100).decode())")
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        answered = {}

        def serve():
            conn, _address = server.accept()
            with conn:
                answered["got"] = conn.recv(100)
                conn.sendall(b"hello from the server")

        thread = threading.Thread(target=serve)
        thread.start()
        done = run_program(["--gate", "15", "--connect", "127.0.0.1", str(port), "--connect-timeout", "5", "--",
                            sys.executable, "-c", child], tmp_path)
        thread.join(10)
    assert done.returncode == 0, done.stderr
    assert answered["got"] == b"hello from the command" and done.stderr == "hello from the server"
    text = (tmp_path / "state").read_text()
    state = start.parse_state(text)
    assert state["failures"] == "0" and state["invocation"] == "abc123"
    assert session_since(text, "abc123") == (True, float(state["since"]))


def test_a_refused_start_prints_ssh_line_exits_255_and_counts_the_failure(tmp_path):
    port = closed_port()
    (tmp_path / "state").write_text("failures=3\n")
    done = run_program(["--delay", "0", "--max-delay", "0", "--connect", "127.0.0.1", str(port), "--",
                        "/bin/true"], tmp_path)
    assert done.returncode == 255
    assert done.stderr == f"ssh: connect to host 127.0.0.1 port {port}: Connection refused\n"
    assert (tmp_path / "state").read_text() == "failures=4\n"


def test_without_connect_it_only_backs_off_then_runs_the_command(tmp_path):
    done = run_program(["--", sys.executable, "-c", "import os; print(os.environ['INVOCATION_ID'])"], tmp_path)
    assert (done.returncode, done.stdout) == (0, "abc123\n")


def test_a_command_that_cannot_run_is_one_line(tmp_path):
    done = run_program(["--", "/nonexistent/ssh"], tmp_path)
    assert done.returncode == 255 and done.stderr == "tunnel-start: cannot run /nonexistent/ssh: No such file or directory\n"
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("args", [[], ["--", ], ["--bogus", "1", "--", "x"], ["--connect", "h", "--", "x"],
                                  ["--family", "ipx", "--", "x"], ["--delay", "soon", "--", "x"],
                                  ["--connect", "h", "22x", "--", "x"]])
def test_bad_arguments_are_one_line(tmp_path, args):
    done = run_program(args, tmp_path)
    assert done.returncode != 0 and done.stderr.startswith("tunnel-start: ") and "Traceback" not in done.stderr


# --- what tunnel_info reads of it -----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    (None, (False, None)),  # no starter (a unit of an earlier release): the unit's own timestamps
    ("garbage", (False, None)),
    ("failures=1\n", (True, None)),  # this start has not handed over yet
    ("failures=0 started=12.5 since=1700000000.5 invocation=old\n", (True, None)),  # an earlier start's session
    ("failures=0 started=12.5 since=1700000000.5 invocation=now\n", (True, 1700000000.5)),
    ("failures=0 started=12.5 since=soon invocation=now\n", (True, None)),
])
def test_session_since_reads_only_this_start_hand_over(text, expected):
    assert session_since(text, "now") == expected
