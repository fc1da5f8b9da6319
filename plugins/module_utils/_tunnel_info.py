# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: reading the state of tunnels on a host. Not a public API.
"""What the netreach tunnels of a host are doing: units, forwards, listening sockets and live probes.

Read-only: it reads unit properties, the journal, the tunnels' own ssh_config and /proc/net, and opens TCP
connections to the tunnels' own listening sockets on this host.
"""

from __future__ import annotations

import glob
import os
import re
import socket
import time

UNIT_GLOB = "/etc/systemd/system/netreach-tunnel@*.service"
CONFIG_DIR = "/etc/netreach/tunnels"
AUTHORIZED_GLOB = "/home/*/.ssh/authorized_keys"
# The journal lines of an ssh tunnel that say why it is not up.
ERROR_RE = re.compile(r"(error|fail|denied|refused|timed out|timeout|unreachable|closed|verification|"
                      r"no route|could not|cannot|not known)", re.IGNORECASE)


def tunnel_names() -> list[str]:
    names = []
    for path in sorted(glob.glob(UNIT_GLOB)):
        match = re.fullmatch(r"netreach-tunnel@(.+)\.service", os.path.basename(path))
        if match:
            names.append(match.group(1))
    return names


def read_forwards(name: str) -> tuple[str, list[str], list[dict]]:
    """(server, jump hosts, forwards) from the tunnel's own ssh_config, as ssh_tunnel wrote it."""
    server, jumps, forwards = "", [], []
    path = os.path.join(CONFIG_DIR, name, "ssh_config")
    if not os.path.isfile(path):
        return server, jumps, forwards
    in_main = False
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            words = line.split()
            if not words:
                continue
            if words[0] == "Host":
                in_main = words[1] == f"netreach-{name}"
            elif words[0] == "HostName":
                if in_main:
                    server = words[1]
                else:
                    jumps.append(words[1])
            elif in_main and words[0] in ("LocalForward", "RemoteForward", "DynamicForward"):
                kind = {"LocalForward": "local", "RemoteForward": "remote", "DynamicForward": "dynamic"}[words[0]]
                forwards.append({"kind": kind, "listen": words[1], "target": words[2] if len(words) > 2 else None})
    return server, jumps, forwards


def listening_sockets() -> set[tuple[str, int]]:
    """(address, port) of every TCP socket in LISTEN on this host (IPv4 and IPv6)."""
    found = set()
    for path, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        try:
            with open(path, encoding="ascii") as handle:
                next(handle)
                for line in handle:
                    fields = line.split()
                    if fields[3] != "0A":
                        continue
                    address_hex, port_hex = fields[1].split(":")
                    raw = bytes.fromhex(address_hex)
                    # /proc/net prints each 32-bit word in host (little-endian) order.
                    raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
                    found.add((socket.inet_ntop(family, raw), int(port_hex, 16)))
        except OSError:
            continue
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


def last_error(journal_text: str) -> str:
    for line in reversed(journal_text.splitlines()):
        if ERROR_RE.search(line):
            return line.strip()[:300]
    return ""


def server_listens() -> list[dict]:
    """Remote forward binds the tunnel_server module authorised on this host (permitlisten of our entries)."""
    found = []
    for path in sorted(glob.glob(AUTHORIZED_GLOB)):
        try:
            with open(path, encoding="utf-8") as handle:
                lines = handle.read().splitlines()
        except OSError:
            continue
        for line in lines:
            words = line.split()
            if not words or not words[-1].startswith("netreach-tunnel:"):
                continue
            label = words[-1].partition(":")[2]
            for listen in re.findall(r'permitlisten="([^"]+)"', words[0]):
                if not listen.startswith("netreach.invalid"):
                    found.append({"entry": label, "listen": listen})
    return found


def uptime(since: float | None) -> int | None:
    return int(time.time() - since) if since else None
