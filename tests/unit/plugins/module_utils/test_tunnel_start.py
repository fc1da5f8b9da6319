"""The tunnel starter (tunnel-start): its backoff, its connection attempts, its hand-over to ssh, and that what it
prints on a failure is ssh's own line, which tunnel_info's cause reads."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from ansible_collections.netreach.tunnels.plugins.module_utils import _tunnel_causes as causes
from ansible_collections.netreach.tunnels.plugins.module_utils import _tunnel_start as start
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_info import session_since, unit_restarts

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


# --- supervision: the attempts of one start, with fakes for the clock, the connection and ssh -------------------


class FakeHost:
    """A clock that the waits and the children advance, a connector and a spawner that record what the supervisor
    did; each child "runs" for the next of LENGTHS seconds (None: the connection is refused instead)."""

    def __init__(self, lengths: list, stop_after: int | None = None):
        self.lengths, self.now, self.events = list(lengths), 1000.0, []
        self.stop_after = stop_after if stop_after is not None else len(lengths)
        self.supervisor = None

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.events.append(("wait", int(seconds)))  # the jitter: below a second
        self.now += seconds

    def connector(self, host, port, timeout, family):
        if self.lengths[0] is None:
            self.lengths.pop(0)
            self.tick()
            raise start.Failure(f"ssh: connect to host {host} port {port}: Connection refused")
        return "socket", 1

    def spawner(self, command, sock, keepalive):
        self.events.append(("ssh", sock, keepalive))
        return 4242

    def waiter(self, pid, _flags):
        assert pid == 4242 and self.supervisor.child == pid
        self.now += self.lengths.pop(0)
        self.tick()
        return pid, 9  # killed by SIGKILL

    def tick(self):
        self.stop_after -= 1
        if self.stop_after <= 0:
            self.supervisor.on_signal(start._signal.SIGTERM)  # a stop while a child runs: forwarded, then ends


def supervise(tmp_path, lengths, direct=True, stop_after=None, state=None, monkeypatch=None):
    options, command = start.parse_args(["--delay", "1", "--max-delay", "30", "--gate", "15",
                                         *(["--connect", "bastion", "22"] if direct else []), "--", "/usr/bin/ssh"])
    host = FakeHost(lengths, stop_after)
    supervisor = start.Supervisor(options, command, str(tmp_path), "inv1", clock=host.clock, wall=lambda: 1.7e9,
                                  sleep=host.sleep, connector=host.connector, spawner=host.spawner, waiter=host.waiter,
                                  reaper=lambda pid: host.events.append(("reaped", pid)))
    host.supervisor = supervisor
    kills = []
    if monkeypatch:
        monkeypatch.setattr(start.os, "kill", lambda pid, signum: kills.append((pid, signum)))
    assert supervisor.run(state or {}) == 0
    return host, kills


def test_a_killed_session_is_followed_by_ssh_at_once_in_the_same_process(tmp_path, capfd, monkeypatch):
    # Sessions of an hour, each killed: every next attempt starts without a wait, on a new connection.
    host, kills = supervise(tmp_path, [3600, 3600, 3600], monkeypatch=monkeypatch)
    assert host.events == [("ssh", "socket", True), ("reaped", 4242)] * 3
    assert kills == [(4242, start._signal.SIGTERM)]  # the stop went to the child; no mark after it
    marks = capfd.readouterr().err.splitlines()
    assert marks == [f"{start.RESTART_MARK} (ssh ended by signal 9)"] * 2
    # Two attempts after the first: two restarts, kept in the state for tunnel_info and the metrics.
    assert start.parse_state((tmp_path / "state").read_text()) == {"failures": "1", "restarts": "2"}


def test_quick_failures_back_off_as_unit_restarts_did(tmp_path, monkeypatch):
    host, _kills = supervise(tmp_path, [3600, 0.2, 0.2, 0.2, 0.2, 20, 0.2], monkeypatch=monkeypatch)
    waits = [event[1] for event in host.events if event[0] == "wait"]
    # The same waits as run_attempts gives for a unit restart per attempt: 0, 0, 1, 2, 4, 8, then a session.
    assert waits == [1, 2, 4, 8] and sum(1 for event in host.events if event[0] == "ssh") == 7
    assert start.restarts_in(start.parse_state((tmp_path / "state").read_text())) == 6


def test_a_refused_connection_is_an_attempt_that_failed_and_prints_ssh_line(tmp_path, capfd, monkeypatch):
    host, _kills = supervise(tmp_path, [3600, None, None, 3600], monkeypatch=monkeypatch)
    assert [event[0] for event in host.events] == ["ssh", "reaped", "wait", "wait", "ssh", "reaped"]
    err = capfd.readouterr().err.splitlines()
    assert err == [f"{start.RESTART_MARK} (ssh ended by signal 9)",
                   "ssh: connect to host bastion port 22: Connection refused",
                   f"{start.RESTART_MARK} (the connection failed)",
                   "ssh: connect to host bastion port 22: Connection refused",
                   f"{start.RESTART_MARK} (the connection failed)"]
    # What tunnel_info reads of it: each attempt on its own, the refusal its cause.
    assert causes.diagnose(err[1:2], healthy=False).cause == "connection_refused"


def test_the_restart_count_goes_on_from_the_state_of_an_earlier_start(tmp_path, monkeypatch):
    # systemd restarted the starter (it was killed): its count goes on, systemd's NRestarts counts that one.
    supervise(tmp_path, [3600, 3600], state={"failures": "0", "restarts": "7"}, monkeypatch=monkeypatch)
    assert start.parse_state((tmp_path / "state").read_text())["restarts"] == "8"
    supervise(tmp_path, [3600], state={"restarts": "-3"}, monkeypatch=monkeypatch)
    assert start.parse_state((tmp_path / "state").read_text())["restarts"] == "0"


def test_the_state_file_is_readable_by_the_metrics_whatever_the_units_umask(tmp_path):
    # The unit's UMask is 0077; the metrics program reads the file as a root without CAP_DAC_OVERRIDE (a
    # container's), so a 0600 file of the tunnel's user read as no restarts at all.
    old = os.umask(0o077)
    try:
        start.write_state(str(tmp_path), {"failures": 1, "restarts": 3})
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "state").st_mode & 0o777 == 0o644
    assert start.parse_state((tmp_path / "state").read_text())["restarts"] == "3"


def test_without_connect_ssh_gets_no_socket(tmp_path, monkeypatch):
    host, _kills = supervise(tmp_path, [3600], direct=False, monkeypatch=monkeypatch)
    assert host.events == [("ssh", None, True), ("reaped", 4242)]


def test_a_stop_while_it_waits_ends_it_without_ssh(tmp_path):
    options, command = start.parse_args(["--delay", "5", "--", "/usr/bin/ssh"])
    supervisor = start.Supervisor(options, command, str(tmp_path), "inv1", connector=None, spawner=None, waiter=None)

    def sleep(_seconds):
        supervisor.on_signal(start._signal.SIGTERM)  # no child: the signal ends the wait and the starter

    supervisor.sleep = sleep
    assert supervisor.run({"failures": "4"}) == 0
    assert start.parse_state((tmp_path / "state").read_text()) == {"failures": "4", "restarts": "0"}


def test_a_hangup_goes_to_ssh_and_never_stops_the_starter(monkeypatch):
    options, command = start.parse_args(["--", "/usr/bin/ssh"])
    supervisor = start.Supervisor(options, command, None, None)
    kills = []
    monkeypatch.setattr(start.os, "kill", lambda pid, signum: kills.append((pid, signum)))
    supervisor.on_signal(start._signal.SIGHUP)  # no child yet: nothing to do
    supervisor.child = 77
    supervisor.on_signal(start._signal.SIGHUP)
    assert kills == [(77, start._signal.SIGHUP)] and not supervisor.stopping


# --- the program: real processes, the hand-over to the command, signals ----------------------------------------


def program(args: list[str], runtime, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-I", "-S", PROGRAM, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={"RUNTIME_DIRECTORY": str(runtime), "INVOCATION_ID": "abc123", **(env or {})})


def stop(process: subprocess.Popen) -> tuple[int, str, str]:
    process.send_signal(start._signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    return process.returncode, out, err


def wait_for(predicate, timeout: float = 10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("timed out")


def counted(runtime) -> int:
    """The restarts the running starter's state file holds (0 before it wrote one)."""
    return start.restarts_in(start.read_state(str(runtime)))


def children(pid: int) -> list[int]:
    done = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    return [int(word) for word in done.stdout.split()]


def test_the_connected_socket_becomes_the_command_stdin_and_stdout(tmp_path):
    # The command talks to the server over its stdin/stdout, notes the answer and stays (a session).
    out = tmp_path / "answer"
    child = ("import os, sys, time; os.write(1, b'hello from the command'); "
             f"open({str(out)!r}, 'wb').write(os.read(0, 100)); time.sleep(60)")
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        answered = {}

        def serve():
            conn, _address = server.accept()
            with conn:
                answered["got"] = conn.recv(100)
                conn.sendall(b"hello from the server")
                time.sleep(1)

        thread = threading.Thread(target=serve)
        thread.start()
        process = program(["--gate", "15", "--connect", "127.0.0.1", str(port), "--connect-timeout", "5", "--",
                           sys.executable, "-c", child], tmp_path)
        wait_for(lambda: out.exists() and out.read_bytes())
        thread.join(10)
        text = (tmp_path / "state").read_text()
        ssh = children(process.pid)
        code, _out, err = stop(process)
    assert answered["got"] == b"hello from the command" and out.read_bytes() == b"hello from the server"
    state = start.parse_state(text)
    assert state["failures"] == "0" and state["invocation"] == "abc123" and state["restarts"] == "0"
    assert session_since(text, "abc123") == (True, float(state["since"]))
    # Stopped: the stop went to the command too, the starter exited 0 and printed nothing of its own.
    assert code == 0 and err == "" and len(ssh) == 1 and not children(process.pid)
    assert session_since((tmp_path / "state").read_text(), "abc123") == (True, None)


def test_a_killed_command_runs_again_at_once_under_the_same_starter(tmp_path):
    process = program(["--gate", "0.2", "--", "/bin/sleep", "60"], tmp_path)
    try:
        first = wait_for(lambda: children(process.pid))[0]
        time.sleep(0.3)  # a session: longer than the gate
        killed = time.monotonic()
        os.kill(first, start._signal.SIGKILL)
        second = wait_for(lambda: [pid for pid in children(process.pid) if pid != first])[0]
        took = time.monotonic() - killed
        assert process.poll() is None and second != first
        assert took < 1.0, f"the next ssh came {took:.2f} s after the kill"
        wait_for(lambda: "since" in start.read_state(str(tmp_path)))
        assert counted(tmp_path) == 1
        # A hangup goes to the command (which ends on it) and never stops the starter: the next one follows.
        os.kill(process.pid, start._signal.SIGHUP)
        third = wait_for(lambda: [pid for pid in children(process.pid) if pid not in (first, second)])[0]
        assert third and process.poll() is None
    finally:
        code, _out, err = stop(process)
    assert code == 0
    assert err.splitlines()[:2] == [f"{start.RESTART_MARK} (sleep ended by signal 9)",
                                    f"{start.RESTART_MARK} (sleep ended by signal 1)"]


def test_what_a_killed_command_left_in_its_group_goes_with_it(tmp_path):
    # As a ProxyJump's ssh outlives a killed ssh: the command's own child, in the command's process group.
    left = tmp_path / "left"
    process = program(["--delay", "5", "--", "/bin/sh", "-c", f"sleep 60 & echo $! > {left}; wait"], tmp_path)
    try:
        shell = wait_for(lambda: children(process.pid))[0]
        sleeper = int(wait_for(lambda: left.exists() and left.read_text().strip()))
        os.kill(shell, start._signal.SIGKILL)
        wait_for(lambda: not os.path.exists(f"/proc/{sleeper}") or
                 open(f"/proc/{sleeper}/stat").read().split()[2] == "Z")
    finally:
        stop(process)


def test_a_refused_start_prints_ssh_line_and_counts_the_failure(tmp_path):
    port = closed_port()
    (tmp_path / "state").write_text("failures=3\n")
    process = program(["--delay", "0.01", "--max-delay", "0.01", "--connect", "127.0.0.1", str(port), "--",
                       "/bin/true"], tmp_path)
    wait_for(lambda: counted(tmp_path) >= 1)
    code, _out, err = stop(process)
    assert code == 0
    assert err.splitlines()[:2] == [f"ssh: connect to host 127.0.0.1 port {port}: Connection refused",
                                    f"{start.RESTART_MARK} (the connection failed)"]
    assert int(start.parse_state((tmp_path / "state").read_text())["failures"]) >= 4


def test_without_connect_it_only_backs_off_then_runs_the_command(tmp_path):
    process = program(["--", sys.executable, "-c", "import os; print(os.environ['INVOCATION_ID'], flush=True)"],
                      tmp_path)
    wait_for(lambda: counted(tmp_path) >= 2)  # the second attempt after the third began: two commands ran
    code, out, _err = stop(process)
    assert code == 0 and out.splitlines()[:2] == ["abc123", "abc123"]


def test_a_command_that_cannot_run_is_one_line_each_attempt(tmp_path):
    process = program(["--", "/nonexistent/ssh"], tmp_path)
    wait_for(lambda: counted(tmp_path) >= 1)
    code, _out, err = stop(process)
    assert code == 0 and "Traceback" not in err
    assert err.splitlines()[:2] == ["tunnel-start: cannot run /nonexistent/ssh: No such file or directory",
                                    f"{start.RESTART_MARK} (ssh exited with status 255)"]


@pytest.mark.parametrize("args", [[], ["--", ], ["--bogus", "1", "--", "x"], ["--connect", "h", "--", "x"],
                                  ["--family", "ipx", "--", "x"], ["--delay", "soon", "--", "x"],
                                  ["--connect", "h", "22x", "--", "x"]])
def test_bad_arguments_are_one_line(tmp_path, args):
    done = subprocess.run([sys.executable, "-I", "-S", PROGRAM, *args], capture_output=True, text=True, timeout=30,
                          check=False, env={"RUNTIME_DIRECTORY": str(tmp_path)})
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


@pytest.mark.parametrize(("n_restarts", "text", "expected"), [
    ("3", None, 3),  # a unit of an earlier release: systemd's count only
    ("1", "failures=0 restarts=5\n", 6),  # the starter ran ssh again 5 times, systemd restarted the starter once
    ("", "restarts=x\n", 0),
    ("2", "restarts=-4\n", 2),
])
def test_restarts_are_systemd_s_and_the_starter_s(n_restarts, text, expected):
    assert unit_restarts(n_restarts, text) == expected
