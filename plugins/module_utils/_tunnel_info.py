# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: reading the state of tunnels on a host. Not a public API.
"""What the netreach tunnels of a host are doing: units, forwards, listening sockets and live probes.

Read-only: it reads unit properties, the journal (why a tunnel is down: _tunnel_causes), the tunnels' own ssh_config (through the change engine's
confined reader, and the one ssh_config parser beside its renderer) and /proc/net, and opens TCP connections to
the tunnels' own listening sockets on this host.
"""

from __future__ import annotations

import glob
import os
import re
import socket
import time

from ansible_collections.netreach.tunnels.plugins.module_utils._engine import ConfinementError, Plan
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel import unit_name
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_apply import tunnel_target, unit_names
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_causes import tunnel_diagnosis
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_render import parse_ssh_config
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_start import STATE_FILE, parse_state, restarts_in
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_server import (
    DROPIN_DIR,
    authorized_listens,
    dropin_socket_listens,
)

AUTHORIZED_GLOB = "/home/*/.ssh/authorized_keys"
# The units' RuntimeDirectory, where the starter (tunnel-start) notes when it handed an attempt over to ssh and how
# often it ran ssh again itself (which systemd's NRestarts does not count).
RUNTIME_ROOT = "/run/netreach-tunnel"
DROPIN_MARK = "# Managed by netreach.tunnels.tunnel_server"
PROPERTIES = "--property=ActiveState,SubState,NRestarts,UnitFileState,ActiveEnterTimestamp,InvocationID"


def _ssh_config(plan: Plan, name: str) -> str | None:
    try:
        return plan.host.read(tunnel_target(name, "ssh_config"))
    except ConfinementError:
        return None  # a link or a directory where our file belongs: nothing we wrote


def read_forwards(plan: Plan, name: str) -> tuple[str, list[str], list[dict]]:
    """(server, jump hosts, forwards) from the tunnel's own ssh_config, as ssh_tunnel wrote it."""
    rendered = parse_ssh_config(name, _ssh_config(plan, name))
    return rendered.server, rendered.jump_hosts, rendered.forwards


def settle_seconds(ssh_config: str | None) -> int:
    """How long a start must have lasted to count as a session: a connection attempt (the ConnectTimeout of the
    tunnel's ssh_config) and 5 s, as the restart backoff counts it (_tunnel_render.session_gate)."""
    timeouts = re.findall(r"^\s*ConnectTimeout (\d+)", ssh_config or "", re.MULTILINE)
    return int(timeouts[-1] if timeouts else 10) + 5


def session_since(state_text: str | None, invocation: str) -> tuple[bool, float | None]:
    """(whether the unit runs the starter, when its ssh took over in start INVOCATION) from the starter's state file:
    while the starter waits out its backoff or connects, the unit is active but no session is (None)."""
    state = parse_state(state_text or "")
    if "failures" not in state:
        return False, None
    try:
        since = float(state["since"]) if state.get("invocation") == invocation and invocation else None
    except (KeyError, ValueError):
        since = None
    return True, since


def unit_restarts(n_restarts: str, state_text: str | None) -> int:
    """Restarts since the unit was last started by hand: systemd's (NRestarts) and its starter's own."""
    try:
        by_systemd = int(n_restarts or 0)
    except ValueError:
        by_systemd = 0
    return by_systemd + restarts_in(parse_state(state_text or ""))


def listening_sockets(plan: Plan) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket in LISTEN on this host (IPv4 and IPv6)."""
    found = set()
    for path, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        for line in (plan.read_foreign(path) or "").splitlines()[1:]:
            fields = line.split()
            if len(fields) < 4 or fields[3] != "0A":
                continue
            address_hex, port_hex = fields[1].split(":")
            raw = bytes.fromhex(address_hex)
            # /proc/net prints each 32-bit word in host (little-endian) order.
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            found.add((socket.inet_ntop(family, raw), int(port_hex, 16)))
    return found


def listen_endpoint(listen: str) -> tuple[str, int]:
    """Where a client-side listen spec can be reached on this host: (address to connect to, port)."""
    address, dummy, port = listen.rpartition(":")
    address = address.strip("[]")
    if address in ("", "localhost", "*", "0.0.0.0"):
        address = "127.0.0.1"
    elif address == "::":
        address = "::1"
    return address, int(port)


def is_listening(listen: str, sockets: set) -> bool:
    address, port = listen_endpoint(listen)
    wildcard = "::" if ":" in address else "0.0.0.0"
    return (address, port) in sockets or (wildcard, port) in sockets


def probe(kind: str, listen: str, timeout: float) -> tuple[bool, str]:
    """A live probe through a client-side forward: a TCP connect, and for SOCKS the SOCKS5 greeting."""
    address, port = listen_endpoint(listen)
    try:
        with socket.create_connection((address, port), timeout=timeout) as conn:
            if kind != "dynamic":
                # ssh accepts before it asks the server; a refused open or a dead target closes at once.
                conn.settimeout(min(timeout, 1.0))
                try:
                    if conn.recv(1) == b"":
                        return False, "connected, then closed by the tunnel (server refused or target down)"
                except socket.timeout:
                    pass
                return True, "connected"
            conn.sendall(b"\x05\x01\x00")
            reply = conn.recv(2)
            if reply == b"\x05\x00":
                return True, "SOCKS5 greeting answered"
            return False, f"SOCKS5 greeting answered with {reply!r}"
    except OSError as exc:
        return False, str(exc) or type(exc).__name__


def parse_unix_timestamp(value: str) -> float | None:
    """systemctl show --timestamp=unix prints '@SECONDS' (empty when never)."""
    try:
        return float(value[1:]) if value.startswith("@") else None
    except ValueError:
        return None


def server_listens(plan: Plan) -> list[dict]:
    """Remote forward binds the tunnel_server module authorised on this host (permitlisten of our entries)."""
    found = []
    for path in sorted(glob.glob(plan.host.real(AUTHORIZED_GLOB))):
        found += authorized_listens(plan.read_foreign("/" + os.path.relpath(path, plan.host.fs_root)))
    return found


def server_socket_listens(plan: Plan) -> list[dict]:
    """Socket listens the tunnel_server module's drop-ins record (sshd itself restricts no listen path)."""
    found = []
    for path in sorted(glob.glob(plan.host.real(f"{DROPIN_DIR}/*.conf"))):
        text = plan.read_foreign("/" + os.path.relpath(path, plan.host.fs_root)) or ""
        if text.startswith(DROPIN_MARK):
            found += dropin_socket_listens(text)
    return found


def listening_unix_paths(plan: Plan) -> set[str]:
    """Paths of every Unix stream socket in LISTEN on this host (a socket file alone may be a dead one's)."""
    found = set()
    for line in (plan.read_foreign("/proc/net/unix") or "").splitlines()[1:]:
        fields = line.split()
        # Num RefCount Protocol Flags Type St Inode Path; Flags 00010000 is __SO_ACCEPTCON: listening.
        if len(fields) >= 8 and int(fields[3], 16) & 0x10000 and fields[7].startswith("/"):
            found.add(fields[7])
    return found


def socket_end(forward: dict) -> str | None:
    """Which end of a forward read back from ssh_config is a Unix socket: "listen", "target", "both" or None."""
    ends = [end for end in ("listen", "target") if (forward.get(end) or "").startswith("/")]
    return {1: ends[0] if ends else None, 2: "both"}.get(len(ends))


def uptime(since: float | None) -> int | None:
    return int(time.time() - since) if since else None


def unit_properties(plan: Plan, unit: str) -> dict:
    rc, out, _err = plan.query(["systemctl", "show", unit, "--timestamp=unix", PROPERTIES])
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line) if rc == 0 else {}


def probe_forwards(forwards: list[dict], sockets: set, probing: bool, timeout: float) -> bool:
    """Each client-side forward's listening state and probe, in place; whether all of them are fine."""
    healthy = True
    for forward in forwards:
        forward["socket"] = socket_end(forward)
        if forward["kind"] == "remote":
            forward.update(listening=None, probe_ok=None, probe="listens on the server")
            continue
        forward["listening"] = is_listening(forward["listen"], sockets)
        if probing:
            forward["probe_ok"], forward["probe"] = probe(forward["kind"], forward["listen"], timeout)
        else:
            forward["probe_ok"], forward["probe"] = None, "not probed"
        healthy = healthy and forward["listening"] and forward["probe_ok"] is not False
    return healthy


def tunnel_state(plan: Plan, name: str, params: dict, sockets: set) -> dict:
    unit = unit_name(name)
    props = unit_properties(plan, unit)
    server, jumps, forwards = read_forwards(plan, name)
    state = props.get("ActiveState", "unknown")
    since = parse_unix_timestamp(props.get("ActiveEnterTimestamp", "")) if state == "active" else None
    try:
        state_text = plan.read_foreign(f"{RUNTIME_ROOT}/{name}/{STATE_FILE}")
    except OSError:
        state_text = None  # unreadable (not root): the unit's own timestamps only
    starter, handed_over = session_since(state_text, props.get("InvocationID", ""))
    if starter:
        since = handed_over if state == "active" else None
    rc, journal, _err = plan.query(["journalctl", "--no-pager", "-o", "json", "-n", str(params["journal_lines"]),
                                    "-u", unit])
    healthy = probe_forwards(forwards, sockets, params["probe"], params["probe_timeout"]) and state == "active"
    if healthy and all(forward["kind"] == "remote" for forward in forwards):
        # Nothing on this host proves a remote forward up: ssh is active while it still connects, and exits at
        # once when the server refuses the forward. Up is a start that lasted longer than a connection attempt.
        healthy = (uptime(since) or 0) >= settle_seconds(_ssh_config(plan, name))
    diagnosis = tunnel_diagnosis(journal if rc == 0 else "", props.get("InvocationID", ""), healthy)
    return dict(
        name=name, unit=unit, server=server, jump_hosts=jumps, state=state, sub_state=props.get("SubState", ""),
        enabled=props.get("UnitFileState") == "enabled", since=since, uptime_seconds=uptime(since),
        restarts=unit_restarts(props.get("NRestarts", ""), state_text), cause=diagnosis.cause, last_error=diagnosis.last_error,
        warnings=diagnosis.warnings, forwards=forwards, healthy=healthy,
    )


def collect(plan: Plan, params: dict) -> dict:
    """The module's whole result: every (or every named) tunnel, and the server-side listens."""
    sockets = listening_sockets(plan)
    tunnels = [tunnel_state(plan, name, params, sockets) for name in unit_names(plan)
               if not params["names"] or name in params["names"]]
    listens = [dict(entry, listening=is_listening(entry["listen"], sockets)) for entry in server_listens(plan)]
    socket_listens = server_socket_listens(plan)
    unix = listening_unix_paths(plan) if socket_listens else set()
    listens += [dict(entry, socket=True, listening=entry["listen"] in unix) for entry in socket_listens]
    return dict(changed=False, tunnels=tunnels, server_listens=listens)
