# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: the tunnel metrics, a program of its own. Not a public API.
# ssh_tunnels installs this file, with _textfile.py inlined, as /usr/local/lib/netreach/tunnel-metrics
# (_tunnel_helpers.program_text) and runs it from netreach-tunnel-metrics.timer: `python3 tunnel-metrics DIRECTORY`.
# Standard library only.
"""netreach tunnel metrics: the state of this host's netreach tunnels as a node_exporter textfile.

Every netreach tunnel on the host (a directory /etc/netreach/tunnels/NAME with the ssh_config ssh_tunnel wrote)
is probed once per run and DIRECTORY/netreach_tunnels.prom is replaced atomically (a temporary file in the same
directory, renamed over the old one), so node_exporter's textfile collector never reads half a file.

A tunnel's session is up while its unit runs and one of the unit's processes holds an established TCP connection
(ssh, or the proxy hop that carries it). A local or dynamic forward is up while its session is and its listener on
this host answers (a connection for -L; a SOCKS5 greeting for -D); a remote forward listens on the server, which
accepted it (the tunnels run with ExitOnForwardFailure), so it is up while its session is. A tunnel is up while its
session and every one of its forwards are.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from dataclasses import dataclass, field

from ansible_collections.netreach.tunnels.plugins.module_utils._textfile import exposition, labels, write_atomically

CONFIG_DIR = "/etc/netreach/tunnels"
# The units' RuntimeDirectory: each tunnel's starter (tunnel-start, _tunnel_start.py) keeps its state file there,
# with the restarts it made itself (it runs ssh again without systemd) and when the current session began.
RUNTIME_ROOT = "/run/netreach-tunnel"
STATE_FILE = "state"
UNIT = "netreach-tunnel@{}.service"
TEXTFILE = "netreach_tunnels.prom"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
FORWARD_KINDS = {"LocalForward": "local", "RemoteForward": "remote", "DynamicForward": "dynamic"}
PROBE_TIMEOUT = 2.0
TCP_ESTABLISHED = "01"

METRICS = (
    ("netreach_tunnel_up", "gauge",
     "1 while the tunnel's session is up and every one of its forwards answers a probe, else 0."),
    ("netreach_forward_up", "gauge",
     "1 while the forward is up: its listener answers (local, dynamic) or its session is up (remote)."),
    ("netreach_tunnel_restarts_total", "counter",
     "Restarts of the tunnel's ssh since its unit was last started by hand (its starter's and systemd's NRestarts)."),
    ("netreach_tunnel_up_since_seconds", "gauge",
     "Unix time the tunnel's current session started; 0 while it is down."),
)


@dataclass
class Forward:
    kind: str  # local, remote or dynamic
    listen: str


@dataclass
class TunnelConfig:
    name: str
    server: str = ""
    forwards: list = field(default_factory=list)


@dataclass
class UnitStatus:
    running: bool = False
    restarts: int = 0
    started: float = 0.0  # unix time the unit's main process started
    pids: list = field(default_factory=list)


def read_config(name: str, text: str) -> TunnelConfig:
    """The server and forwards of the ssh_config ssh_tunnel rendered for tunnel NAME (its Host netreach-NAME)."""
    config = TunnelConfig(name)
    in_main = False
    for line in text.splitlines():
        words = line.split()
        if len(words) < 2:
            continue
        if words[0] == "Host":
            in_main = words[1] == f"netreach-{name}"
        elif in_main and words[0] == "HostName":
            config.server = words[1]
        elif in_main and words[0] in FORWARD_KINDS:
            config.forwards.append(Forward(FORWARD_KINDS[words[0]], words[1]))
    return config


def discover(config_dir: str = CONFIG_DIR) -> list[TunnelConfig]:
    """The netreach tunnels on this host, by name."""
    found = []
    try:
        names = sorted(os.listdir(config_dir))
    except OSError:
        return found
    for name in names:
        if not NAME_RE.match(name):
            continue
        try:
            with open(os.path.join(config_dir, name, "ssh_config"), encoding="utf-8") as handle:
                found.append(read_config(name, handle.read()))
        except OSError:
            continue  # a directory without a tunnel (only a kept key)
    return found


def parse_show(text: str) -> dict:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def unit_statuses(names: list[str], cgroup_root: str = "/sys/fs/cgroup", runtime_root: str = RUNTIME_ROOT) -> dict:
    """What systemd says of the units of tunnels NAMES, and the processes in their cgroups: one systemctl call."""
    if not names:
        return {}
    properties = ["Id", "ActiveState", "SubState", "NRestarts", "ExecMainStartTimestamp", "ControlGroup", "MainPID",
                  "InvocationID"]
    result = subprocess.run(["systemctl", "show", "--timestamp=unix", *[f"--property={p}" for p in properties],
                             *[UNIT.format(name) for name in names]], capture_output=True, text=True, check=False)
    shown = {}
    for block in result.stdout.split("\n\n"):
        show = parse_show(block)
        shown[show.get("Id")] = show
    return {name: status_from_show(shown.get(UNIT.format(name), {}), cgroup_root, read_starter_state(name, runtime_root))
            for name in names}


def read_starter_state(name: str, runtime_root: str = RUNTIME_ROOT) -> dict:
    """The starter's state file of tunnel NAME as KEY=VALUE words ({} without one: a unit of an earlier release)."""
    try:
        with open(os.path.join(runtime_root, name, STATE_FILE), encoding="utf-8") as handle:
            words = handle.read().split()
    except (OSError, ValueError):
        return {}
    return dict(word.split("=", 1) for word in words if "=" in word)


def status_from_show(show: dict, cgroup_root: str = "/sys/fs/cgroup", starter: dict | None = None) -> UnitStatus:
    """The unit's status from `systemctl show`, with what its starter's state file (STARTER) adds: the restarts it made
    itself, and the start of the current session (its ssh's hand-over in this start of the unit)."""
    starter = starter or {}
    status = UnitStatus(running=show.get("ActiveState") == "active" and show.get("SubState") == "running")
    try:
        status.restarts = int(show.get("NRestarts") or 0)
    except ValueError:
        status.restarts = 0
    try:
        status.restarts += max(0, int(starter.get("restarts", 0)))
    except ValueError:
        pass
    started = show.get("ExecMainStartTimestamp", "")
    if started.startswith("@") and started[1:].isdigit():
        status.started = float(started[1:])
    if starter.get("invocation") and starter.get("invocation") == show.get("InvocationID"):
        try:
            status.started = float(starter["since"])
        except (KeyError, ValueError):
            pass
    pids = []
    group = show.get("ControlGroup", "")
    # The unified hierarchy, or (a hybrid host) its copy under unified/, or systemd's own under systemd/.
    for hierarchy in ("", "unified", "systemd") if group else ():
        try:
            with open(os.path.join(cgroup_root, hierarchy, group.lstrip("/"), "cgroup.procs"), encoding="ascii") as handle:
                pids = handle.read().split()
            break
        except OSError:
            continue
    if not pids and show.get("MainPID", "0") != "0":
        pids = [show["MainPID"]]
    status.pids = pids
    return status


def established_inodes(tcp_tables: list[str]) -> set[str]:
    """The socket inodes of the established connections in /proc/net/tcp-style TABLES."""
    inodes = set()
    for table in tcp_tables:
        for line in table.splitlines()[1:]:
            fields = line.split()
            if len(fields) > 9 and fields[3] == TCP_ESTABLISHED:
                inodes.add(fields[9])
    return inodes


def socket_inodes(fd_dir: str) -> set[str]:
    """The socket inodes among the descriptors listed in FD_DIR (/proc/PID/fd)."""
    sockets = set()
    for entry in os.listdir(fd_dir):
        try:
            link = os.readlink(f"{fd_dir}/{entry}")
        except FileNotFoundError:
            continue  # closed in the meantime
        if link.startswith("socket:["):
            sockets.add(link[len("socket:["):-1])
    return sockets


def socket_inodes_as_owner(fd_dir: str, owner: int, group: int) -> set[str]:
    """socket_inodes(FD_DIR) read by a child running as the process's OWNER: root without CAP_SYS_PTRACE (a
    container's root) may not read another user's descriptors, their owner may."""
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child's exit status is what the parent sees
        status = 1
        try:
            os.close(reader)
            os.setgroups([])
            os.setgid(group)
            os.setuid(owner)
            os.write(writer, " ".join(sorted(socket_inodes(fd_dir))).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(writer)
    with os.fdopen(reader, "rb") as stream:
        text = stream.read().decode()
    _pid, status = os.waitpid(child, 0)
    if status != 0:
        raise PermissionError(f"cannot read {fd_dir}")
    return set(text.split())


def process_sockets(pid: str, proc: str = "/proc") -> set[str]:
    fd_dir = f"{proc}/{pid}/fd"
    try:
        return socket_inodes(fd_dir)
    except PermissionError:
        info = os.stat(f"{proc}/{pid}")
        if os.geteuid() != 0 or info.st_uid == 0:
            raise
        return socket_inodes_as_owner(fd_dir, info.st_uid, info.st_gid)


def session_established(pids: list[str], proc: str = "/proc") -> bool:
    """Whether one of PIDS holds an established TCP connection (the session or the hop that carries it)."""
    for pid in pids:
        try:
            sockets = process_sockets(pid, proc)
        except OSError:
            continue  # it ended in the meantime
        if not sockets:
            continue
        tables = []
        for table in ("tcp", "tcp6"):
            try:
                with open(f"{proc}/{pid}/net/{table}", encoding="ascii") as handle:
                    tables.append(handle.read())
            except OSError:
                continue
        if sockets & established_inodes(tables):
            return True
    return False


def listen_address(listen: str) -> tuple:
    """Where a client-side listen spec ([bind:]port, [v6]:port, or a socket path) is reached on this host, as
    (family, address) for socket.connect."""
    if listen.startswith("/"):
        return socket.AF_UNIX, listen
    host, sep, port = listen.rpartition(":")
    if not sep:
        host, port = "", listen
    host = host.strip("[]")
    if host in ("", "*", "0.0.0.0", "localhost"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return family, (host, int(port))


def probe(forward: Forward, timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether FORWARD's listener on this host answers: accepts a connection (local), or answers a SOCKS5
    greeting with "no authentication" (dynamic)."""
    try:
        family, address = listen_address(forward.listen)
        with socket.socket(family, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout)
            conn.connect(address)
            if forward.kind == "dynamic":
                conn.sendall(b"\x05\x01\x00")
                return conn.recv(2) == b"\x05\x00"
            return True
    except (OSError, ValueError):
        return False


@dataclass
class TunnelState:
    config: TunnelConfig
    status: UnitStatus
    session_up: bool
    forwards_up: list  # one bool per config.forwards

    @property
    def up(self) -> bool:
        return self.session_up and all(self.forwards_up)


def measure(config: TunnelConfig, status: UnitStatus, established=session_established, prober=probe) -> TunnelState:
    """TUNNEL's state from its unit's STATUS: the session, then a probe of each forward it listens with here."""
    session_up = status.running and established(status.pids)
    forwards_up = [session_up and (fwd.kind == "remote" or prober(fwd)) for fwd in config.forwards]
    return TunnelState(config, status, session_up, forwards_up)


def render(states: list[TunnelState]) -> str:
    """The textfile: each metric's HELP and TYPE, then one sample per tunnel (per forward)."""
    samples = {name: [] for name, _type, _help in METRICS}
    for state in states:
        name = state.config.name
        samples["netreach_tunnel_up"].append(
            f"{labels(tunnel=name, server=state.config.server)} {int(state.up)}")
        for fwd, up in zip(state.config.forwards, state.forwards_up):
            samples["netreach_forward_up"].append(
                f"{labels(tunnel=name, kind=fwd.kind, listen=fwd.listen)} {int(up)}")
        samples["netreach_tunnel_restarts_total"].append(f"{labels(tunnel=name)} {state.status.restarts}")
        since = int(state.status.started) if state.session_up else 0
        samples["netreach_tunnel_up_since_seconds"].append(f"{labels(tunnel=name)} {since}")
    return exposition(METRICS, samples)


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].startswith("/"):
        sys.stderr.write("usage: tunnel-metrics DIRECTORY (node_exporter's textfile directory)\n")
        return 2
    configs = discover()
    statuses = unit_statuses([config.name for config in configs])
    states = [measure(config, statuses[config.name]) for config in configs]
    write_atomically(argv[0], TEXTFILE, render(states))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
