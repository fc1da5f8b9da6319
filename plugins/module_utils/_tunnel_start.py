# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: the tunnel starter, a program of its own. Not a public API.
# ssh_tunnel installs this very file as /usr/local/lib/netreach/tunnel-start (_tunnel_helpers.program_text); a
# tunnel's unit runs it as its ExecStart: `python3 -I -S tunnel-start OPTIONS -- COMMAND...`, and it stays the unit's
# main process: it runs COMMAND (ssh or autossh) as its child and runs it again whenever it ends.
"""netreach tunnel starter: the tunnel's supervisor. The restart backoff and the tunnel's TCP connection, then ssh as
its child, again and again.

Supervision: COMMAND runs as a child; when it ends, the next attempt starts at once (through the backoff), in the
same process: a killed session costs a fork and ssh's handshake, not a stop and start of the unit (its sandbox,
Python's start). SIGTERM and SIGINT stop it: they go to the child, and it exits 0 once the child is gone; SIGHUP goes
to the child only (ssh ends on it, and the next attempt follows). It ends on its own only when asked to stop, or on
bad arguments; systemd's Restart= stays the outer net for a starter that is killed. Every attempt after the first
adds one to "restarts" in the state file, which tunnel_info and the metrics add to systemd's NRestarts; each ended
attempt prints RESTART_MARK, where _tunnel_causes splits the unit's journal into attempts.

Backoff (--delay, --max-delay, --gate): state lives in the unit's RuntimeDirectory (kept across restarts, dropped by
a stop). An attempt after a session that lasted --gate seconds is immediate, and so is the next; quick failures in a
row then wait --delay, doubling up to --max-delay, plus up to a second of jitter. It prints nothing while it waits:
the journal lines of an attempt are its failure's (_tunnel_causes reads them).

Connection (--connect HOST PORT, a direct tunnel only): a new non-blocking connect every 0.25 s (one SYN, each given
--connect-timeout) until one completes, so a path that comes back is used within a quarter of a second, without an
ssh handshake per try. The socket becomes ssh's stdin and stdout (`ssh -o ProxyCommand=-`): ssh then owns the
connection itself, nothing relays it. A refusal ends the attempt (the next one follows through the backoff); silence,
"no route" and "network unreachable" do not: after --connect-timeout it says so once and keeps trying. Failures are
printed in ssh's own words ("ssh: connect to host H port P: Connection refused", "ssh: Could not resolve hostname
H: ...") so the tunnel's cause reads the same whoever connected.
"""

from __future__ import annotations

# _socket, _signal and select.poll, not socket, signal and selectors: they are what those wrap, and the wrappers' own
# imports (enum, selectors, collections) cost every start about 15 ms of a loaded client's time.
import _signal
import _socket
import errno
import os
import select
import sys
import time

INTERVAL = 0.25
EXIT_FAILURE = 255  # ssh's own exit status for a connection that failed
STATE_FILE = "state"
STATE_MODE = 0o644
FAMILIES = {"any": _socket.AF_UNSPEC, "inet": _socket.AF_INET, "inet6": _socket.AF_INET6}
# The answers that end a start: the host is there and refuses the port. Silence, "no route" and "network
# unreachable" are a path that may come back: keep trying.
REFUSALS = {errno.ECONNREFUSED}
# The line an ended attempt prints (with how it ended): _tunnel_causes starts a new attempt of the unit after it.
RESTART_MARK = "tunnel-start: next attempt"
STOP_SIGNALS = (_signal.SIGTERM, _signal.SIGINT)
FORWARDED = STOP_SIGNALS + (_signal.SIGHUP,)


class Failure(Exception):
    """A start that ends here, with ssh's line for it."""


def say(line: str) -> None:
    """One line to the unit's journal (stderr, unbuffered: exec follows)."""
    os.write(2, (line + "\n").encode(errors="replace"))


# --- backoff --------------------------------------------------------------------------------------------------


def parse_state(text: str) -> dict:
    """The state file: KEY=VALUE words on one line (json would cost every start the import of re)."""
    state = {}
    for word in text.split():
        key, sep, value = word.partition("=")
        if sep:
            state[key] = value
    return state


def format_state(state: dict) -> str:
    return " ".join(f"{key}={value}" for key, value in state.items() if value is not None) + "\n"


def read_state(directory: str | None) -> dict:
    if not directory:
        return {}
    try:
        with open(os.path.join(directory, STATE_FILE), encoding="utf-8") as handle:
            return parse_state(handle.read())
    except (OSError, ValueError):
        return {}


def write_state(directory: str | None, state: dict) -> None:
    """STATE replaced in one rename; a state that cannot be written costs the backoff, never the tunnel."""
    if not directory:
        return
    path = os.path.join(directory, STATE_FILE)
    try:
        with open(path + ".new", "w", encoding="utf-8") as handle:
            # Readable by all (the unit's UMask is 0077): the metrics program reads it as root without
            # CAP_DAC_OVERRIDE, which a container's root lacks. It holds counts and times, no secret.
            os.fchmod(handle.fileno(), STATE_MODE)
            handle.write(format_state(state))
        os.replace(path + ".new", path)
    except OSError:
        pass


def restarts_in(state: dict) -> int:
    """The restarts the starter counted (attempts after the first of each start); 0 for a state without them."""
    try:
        return max(0, int(state.get("restarts", 0)))
    except (TypeError, ValueError):
        return 0


def failures_before(state: dict, now: float, gate: float) -> int:
    """Quick failures in a row, counting the attempt that just ended: 1 after a session that lasted GATE seconds (its
    start's monotonic time is STATE's "started"), one more after a quick one; an attempt that failed here, before
    ssh, counted itself (no "started")."""
    try:
        failures = int(state.get("failures", 0))
        started = state.get("started")
        started = None if started is None else float(started)
    except (TypeError, ValueError):
        return 0
    if started is None:
        return failures
    return 1 if now - started >= gate else failures + 1


def backoff(failures: int, delay: float, max_delay: float) -> float:
    """Seconds to wait before this start (without the jitter): none for the first two, then DELAY doubling."""
    if failures <= 1:
        return 0.0
    return float(min(delay * 2 ** min(failures - 2, 32), max_delay))


def jitter() -> float:
    return int.from_bytes(os.urandom(2), "big") % 1000 / 1000


# --- the first connection -------------------------------------------------------------------------------------


def resolve(host: str, port: int, family: int) -> list[tuple[int, tuple]]:
    try:
        found = _socket.getaddrinfo(host, port, family, _socket.SOCK_STREAM)
    except _socket.gaierror as exc:
        raise Failure(f"ssh: Could not resolve hostname {host}: {exc.strerror}") from None
    except OSError as exc:  # EAI_SYSTEM: Python raises the errno
        raise Failure(f"ssh: Could not resolve hostname {host}: {exc.strerror or exc}") from None
    return [(info[0], info[4]) for info in found]


def connect(host: str, port: int, timeout: float, family: int = _socket.AF_UNSPEC, interval: float = INTERVAL,
            clock=time.monotonic) -> tuple[_socket.socket, int]:
    """A connected socket to HOST PORT and the number of connects it took; Failure when every address refused.

    Every INTERVAL seconds a new non-blocking connect (the next address in turn); each pending one is given TIMEOUT
    seconds. After TIMEOUT seconds without a connection it prints ssh's line for the last error (timed out, no
    route, unreachable) once and goes on."""
    addresses = resolve(host, port, family)
    poller = select.poll()
    pending: dict[int, tuple[_socket.socket, float, int]] = {}  # fd -> (socket, opened at, address index)
    refused: dict[int, int] = {}  # address index -> errno of its refusal
    last_error, attempts, warned = errno.ETIMEDOUT, 0, False
    start = next_try = clock()

    def take(fd: int) -> tuple[_socket.socket, int]:
        sock, _opened, index = pending.pop(fd)
        poller.unregister(fd)
        return sock, index

    try:
        while True:
            now = clock()
            if now >= next_try:
                index = attempts % len(addresses)
                sock_family, address = addresses[index]
                attempts += 1
                next_try = now + interval
                try:
                    sock = _socket.socket(sock_family, _socket.SOCK_STREAM)
                except OSError as exc:
                    last_error = exc.errno or last_error
                    continue
                sock.setblocking(False)
                code = sock.connect_ex(address)
                if code == 0:
                    return sock, attempts
                if code in (errno.EINPROGRESS, errno.EAGAIN):
                    pending[sock.fileno()] = (sock, now, index)
                    poller.register(sock.fileno(), select.POLLOUT)
                else:
                    sock.close()
                    last_error = code
                    if code in REFUSALS:
                        refused[index] = code
            for fd, (_sock, opened, _index) in list(pending.items()):
                if now - opened >= timeout:
                    take(fd)[0].close()
            if len(refused) == len(addresses):
                raise Failure(f"ssh: connect to host {host} port {port}: {os.strerror(last_error)}")
            if not warned and now - start >= timeout:
                say(f"ssh: connect to host {host} port {port}: {os.strerror(last_error)}")
                warned = True
            for fd, _event in poller.poll(int(max(0.0, next_try - clock()) * 1000) + 1):
                sock, index = take(fd)
                code = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_ERROR)
                if code == 0:
                    return sock, attempts
                sock.close()
                last_error = code
                if code in REFUSALS:
                    refused[index] = code
    finally:
        for fd in list(pending):
            take(fd)[0].close()


def hand_over(sock: _socket.socket, keepalive: bool) -> None:
    """SOCK as stdin and stdout, blocking, with TCP keepalives as ssh's TCPKeepAlive sets them (in the child)."""
    sock.setblocking(True)
    if keepalive:
        sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_KEEPALIVE, 1)
    os.dup2(sock.fileno(), 0)
    os.dup2(sock.fileno(), 1)
    sock.close()


# --- the program ----------------------------------------------------------------------------------------------

OPTIONS = {"--delay": float, "--max-delay": float, "--gate": float, "--connect-timeout": float,
           "--family": str, "--tcp-keepalive": str}


def parse_args(argv: list[str]) -> tuple[dict, list[str]]:
    """OPTIONS -- COMMAND: a small parser (argparse costs a start its import time)."""
    if "--" not in argv:
        raise SystemExit("tunnel-start: usage: tunnel-start [OPTIONS] -- COMMAND...")
    split = argv.index("--")
    words, command = argv[:split], argv[split + 1:]
    options = {"delay": 1.0, "max_delay": 30.0, "gate": 15.0, "connect_timeout": 10.0, "family": "any",
               "tcp_keepalive": "yes", "host": None, "port": 0}
    index = 0
    while index < len(words):
        word = words[index]
        try:
            if word == "--connect" and index + 3 <= len(words):
                options["host"], options["port"] = words[index + 1], int(words[index + 2])
                index += 3
            elif word in OPTIONS and index + 1 < len(words):
                options[word[2:].replace("-", "_")] = OPTIONS[word](words[index + 1])
                index += 2
            else:
                raise SystemExit(f"tunnel-start: unknown or incomplete option {word}")
        except ValueError:
            raise SystemExit(f"tunnel-start: {word} takes a number") from None
    if not command or options["family"] not in FAMILIES:
        raise SystemExit("tunnel-start: usage: tunnel-start [OPTIONS] -- COMMAND...")
    return options, command


# --- supervision ----------------------------------------------------------------------------------------------


class Stop(Exception):
    """A stop signal while no child runs: the starter ends."""


def ended(program: str, status: int) -> str:
    """How the child PROGRAM ended, for RESTART_MARK's line."""
    name = os.path.basename(program)
    if os.WIFSIGNALED(status):
        return f"{name} ended by signal {os.WTERMSIG(status)}"
    return f"{name} exited with status {os.waitstatus_to_exitcode(status)}"


def spawn(command: list[str], sock: _socket.socket | None, keepalive: bool) -> int:
    """COMMAND as a child (SOCK, if any, its stdin and stdout) in a process group of its own; its pid. Stop signals
    stay blocked across the fork (the caller's), so one that comes meanwhile reaches the child's pid, never a child
    the starter does not know of."""
    child = os.fork()
    if child:
        if sock is not None:
            sock.close()
        try:
            os.setpgid(child, child)
        except OSError:
            pass  # it did so itself, or has already gone
        return child
    try:
        os.setpgid(0, 0)
        for signum in FORWARDED + (_signal.SIGPIPE,):  # as exec finds them in a process of its own
            _signal.signal(signum, _signal.SIG_DFL)
        _signal.pthread_sigmask(_signal.SIG_SETMASK, set())
        if sock is not None:
            hand_over(sock, keepalive)
        os.execv(command[0], command)
    except OSError as exc:
        say(f"tunnel-start: cannot run {command[0]}: {exc.strerror or exc}")
    finally:
        os._exit(EXIT_FAILURE)  # never back into the supervisor's loop


def reap_group(child: int) -> None:
    """What an ended attempt left in its process group (a ProxyJump's ssh, the proxy hop) goes with it, as systemd's
    stop of the unit's cgroup took it before the starter supervised."""
    try:
        os.killpg(child, _signal.SIGKILL)
    except OSError:
        pass  # nothing left


class Supervisor:
    """The attempts of one unit start: backoff, connection, ssh as a child, again until a stop signal."""

    def __init__(self, options: dict, command: list[str], directory: str | None, invocation: str | None,
                 clock=time.monotonic, wall=time.time, sleep=time.sleep, connector=connect, spawner=spawn,
                 waiter=os.waitpid, reaper=reap_group) -> None:
        self.options, self.command, self.directory, self.invocation = options, command, directory, invocation
        self.clock, self.wall, self.sleep = clock, wall, sleep
        self.connector, self.spawner, self.waiter, self.reaper = connector, spawner, waiter, reaper
        self.child: int | None = None
        self.stopping = False

    def on_signal(self, signum: int, _frame=None) -> None:
        if signum in STOP_SIGNALS:
            self.stopping = True
        if self.child is not None:
            try:
                os.kill(self.child, signum)
            except ProcessLookupError:
                pass
        elif self.stopping:
            raise Stop()

    def install(self) -> None:
        for signum in FORWARDED:
            _signal.signal(signum, self.on_signal)

    def attempt(self, state: dict, restarts: int) -> tuple[dict, str]:
        """One attempt from STATE (the last one's): the wait, the connection, ssh until it ends; the state after it
        and how it ended."""
        options = self.options
        failures = failures_before(state, self.clock(), options["gate"])
        wait = backoff(failures, options["delay"], options["max_delay"])
        write_state(self.directory, {"failures": failures, "restarts": restarts})
        if wait:
            self.sleep(wait + jitter())
        sock = None
        try:
            if options["host"]:
                host, port = options["host"], options["port"]
                began = self.clock()
                sock, tries = self.connector(host, port, options["connect_timeout"], FAMILIES[options["family"]])
                if tries > 1:
                    # For bench/tunnel_recovery.py: when a path that did not answer at once came back.
                    say(f"tunnel-start: {host} port {port} answered after {tries} connects in "
                        f"{self.clock() - began:.2f} s")
        except Failure as exc:
            say(str(exc))
            return {"failures": failures + 1, "restarts": restarts}, "the connection failed"
        started = self.clock()
        write_state(self.directory, {"failures": failures, "started": f"{started:.3f}", "since": f"{self.wall():.3f}",
                                     "invocation": self.invocation, "restarts": restarts})
        _signal.pthread_sigmask(_signal.SIG_BLOCK, FORWARDED)
        try:
            self.child = self.spawner(self.command, sock, options["tcp_keepalive"] == "yes")
        except OSError as exc:  # no fork: as a command that failed at once
            say(f"tunnel-start: cannot run {self.command[0]}: {exc.strerror or exc}")
            return {"failures": failures + 1, "restarts": restarts}, "no fork"
        finally:
            _signal.pthread_sigmask(_signal.SIG_UNBLOCK, FORWARDED)
        try:
            _pid, status = self.waiter(self.child, 0)
        finally:
            self.reaper(self.child)
            self.child = None
        return {"failures": failures, "started": f"{started:.3f}", "restarts": restarts}, ended(self.command[0], status)

    def run(self, state: dict) -> int:
        """Attempts until a stop signal: each after the first counts as a restart."""
        restarts = restarts_in(state)
        first = True
        try:
            while not self.stopping:
                if not first:
                    restarts += 1
                first = False
                state, how = self.attempt(state, restarts)
                if not self.stopping:
                    say(f"{RESTART_MARK} ({how})")
        except Stop:
            pass
        write_state(self.directory, {"failures": state.get("failures", 0), "restarts": restarts})
        return 0


def main(argv: list[str]) -> int:
    options, command = parse_args(argv)
    directory = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0] or None
    supervisor = Supervisor(options, command, directory, os.environ.get("INVOCATION_ID") or None)
    supervisor.install()
    return supervisor.run(read_state(directory))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
