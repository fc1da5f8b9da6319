# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: the tunnel starter, a program of its own. Not a public API.
# ssh_tunnel installs this very file as /usr/local/lib/netreach/tunnel-start (_tunnel_helpers.program_text); a
# tunnel's unit runs it as its ExecStart: `python3 -I -S tunnel-start OPTIONS -- COMMAND...`, and it becomes
# COMMAND (ssh or autossh) by exec, so the unit's main process is ssh from then on.
"""netreach tunnel starter: the restart backoff and the tunnel's first TCP connection, then exec ssh.

Backoff (--delay, --max-delay, --gate): state lives in the unit's RuntimeDirectory (kept across restarts, dropped by
a stop). A start after a session that lasted --gate seconds is immediate, and so is the next; quick failures in a row
then wait --delay, doubling up to --max-delay, plus up to a second of jitter. It prints nothing while it waits: the
journal lines of a start are its failure's (_tunnel_causes reads them).

Connection (--connect HOST PORT, a direct tunnel only): a new non-blocking connect every 0.25 s (one SYN, each given
--connect-timeout) until one completes, so a path that comes back is used within a quarter of a second, without an
ssh handshake per try. The socket becomes ssh's stdin and stdout (`ssh -o ProxyCommand=-`): ssh then owns the
connection itself, nothing relays it. A refusal ends the start (the unit restarts it through the backoff); silence,
"no route" and "network unreachable" do not: after --connect-timeout it says so once and keeps trying. Failures are
printed in ssh's own words ("ssh: connect to host H port P: Connection refused", "ssh: Could not resolve hostname
H: ...") so the tunnel's cause reads the same whoever connected.
"""

from __future__ import annotations

# _socket and select.poll, not socket and selectors: they are what those wrap, and the wrappers' own imports (enum,
# selectors, collections) cost every start about 15 ms of a loaded client's time, on the path of every reconnect.
import _socket
import errno
import os
import select
import sys
import time

INTERVAL = 0.25
EXIT_FAILURE = 255  # ssh's own exit status for a connection that failed
STATE_FILE = "state"
FAMILIES = {"any": _socket.AF_UNSPEC, "inet": _socket.AF_INET, "inet6": _socket.AF_INET6}
# The answers that end a start: the host is there and refuses the port. Silence, "no route" and "network
# unreachable" are a path that may come back: keep trying.
REFUSALS = {errno.ECONNREFUSED}


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
            handle.write(format_state(state))
        os.replace(path + ".new", path)
    except OSError:
        pass


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
    """SOCK as stdin and stdout, blocking, with TCP keepalives as ssh's TCPKeepAlive sets them."""
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


def main(argv: list[str]) -> int:
    options, command = parse_args(argv)
    directory = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0] or None
    state = read_state(directory)
    failures = failures_before(state, time.monotonic(), options["gate"])
    wait = backoff(failures, options["delay"], options["max_delay"])
    if wait:
        time.sleep(wait + jitter())
    try:
        if options["host"]:
            host, port = options["host"], options["port"]
            began = time.monotonic()
            sock, attempts = connect(host, port, options["connect_timeout"], FAMILIES[options["family"]])
            if attempts > 1:
                # For bench/tunnel_recovery.py: when a path that did not answer at once came back.
                say(f"tunnel-start: {host} port {port} answered after {attempts} connects in "
                    f"{time.monotonic() - began:.2f} s")
            hand_over(sock, options["tcp_keepalive"] == "yes")
        write_state(directory, {"failures": failures, "started": f"{time.monotonic():.3f}",
                                "since": f"{time.time():.3f}", "invocation": os.environ.get("INVOCATION_ID") or None})
        os.execv(command[0], command)
    except Failure as exc:
        say(str(exc))
    except OSError as exc:
        say(f"tunnel-start: cannot run {command[0]}: {exc.strerror or exc}")
    write_state(directory, {"failures": failures + 1})
    return EXIT_FAILURE


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
