# -*- coding: utf-8 -*-
# Copyright (c) 2026, netreach.tunnels contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The server end of netreach tunnels, derived from the clients' declarations (no I/O here).

Every hop a tunnel logs in to (each jump host, then the server) gets one authorized_keys entry for the tunnel's
key that permits exactly what the client asks of that hop:

- a jump host: a ``direct-tcpip`` open to the next hop's ``host:port``, nothing else;
- the server: ``permitopen`` for each local forward's target, ``permitlisten`` for each remote forward's bind;
  dynamic forwards need any destination, which ``permitopen`` cannot narrow, so they are an explicit opt-in
  (``server_allow_dynamic: true`` on the tunnel) and the entry then carries no ``permitopen`` at all.

OpenSSH treats a key without ``permitopen`` (``permitlisten``) as allowed to open (listen) anywhere, so an entry
that needs no opens (listens) carries a sentinel no client can use, and the sshd drop-in repeats each account's
union of declared opens and listens as ``PermitOpen``/``PermitListen``: sshd requires both to allow a request.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel import (
    KNOWN_HOSTS_RE,
    USER_RE,
    TunnelError,
    bracket,
    parse_tunnel,
)

MARKER = "netreach-tunnel"
# Host part of the sentinel: reserved by RFC 6761, never resolvable, never a declared bind or target.
SENTINEL = "netreach.invalid:1"
ENTRY_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{0,252}$")
PUBLIC_KEY_RE = re.compile(r"^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa) [A-Za-z0-9+/=]+$")
LOOPBACK = ("", "localhost", "127.0.0.1", "::1")
# Parameters of a tunnel declaration that only the server end reads (the client role strips them).
SERVER_ONLY_KEYS = ("server_allow_dynamic",)


@dataclass(frozen=True)
class Entry:
    """One authorized_keys entry: what one tunnel key may do on one account of one host."""

    account: str
    client: str
    tunnel: str
    public_key: str
    opens: tuple[str, ...] = ()
    listens: tuple[str, ...] = ()
    any_open: bool = False

    @property
    def label(self) -> str:
        return f"{MARKER}:{self.client}/{self.tunnel}"

    @property
    def gateway_ports(self) -> bool:
        return any(listen.rpartition(":")[0].strip("[]") not in LOOPBACK for listen in self.listens if ":" in listen)

    def as_dict(self) -> dict:
        return {"account": self.account, "client": self.client, "tunnel": self.tunnel, "public_key": self.public_key,
                "opens": list(self.opens), "listens": list(self.listens), "any_open": self.any_open}


@dataclass
class AccountPolicy:
    """What the sshd drop-in allows one tunnel account: the union of its entries."""

    name: str
    opens: set = field(default_factory=set)
    listens: set = field(default_factory=set)
    any_open: bool = False
    gateway_ports: bool = False

    @property
    def allow_tcp_forwarding(self) -> str:
        local, remote = bool(self.opens) or self.any_open, bool(self.listens)
        return {(True, True): "yes", (True, False): "local", (False, True): "remote"}.get((local, remote), "no")


def check_public_key(value, field_name: str) -> str:
    if not isinstance(value, str) or "\n" in value or "\r" in value:
        raise TunnelError(field_name, "expected one OpenSSH public key line")
    words = value.split()
    if len(words) < 2 or not PUBLIC_KEY_RE.fullmatch(" ".join(words[:2])):
        raise TunnelError(field_name, "expected an OpenSSH public key: 'type base64 [comment]'")
    return " ".join(words[:2])


def check_entry_name(value, field_name: str) -> str:
    if not isinstance(value, str) or not ENTRY_RE.fullmatch(value):
        raise TunnelError(field_name, f"{value!r} must be 1-253 characters of [a-zA-Z0-9._-]")
    return value


def client_entries(client: str, declarations: list, defaults: dict, public_keys: dict, server: str,
                   skip_missing_keys: bool = False) -> list[Entry]:
    """The entries SERVER needs for the tunnels CLIENT declares (declarations as the client role takes them).

    SKIP_MISSING_KEYS leaves out tunnels whose key does not exist yet (check mode on a fresh client).
    """
    check_entry_name(client, "client")
    entries = []
    for index, declared in enumerate(declarations or []):
        field_name = f"{client}: tunnel_client_tunnels[{index}]"
        if not isinstance(declared, dict):
            raise TunnelError(field_name, "expected a dict of ssh_tunnel parameters")
        params = {"port": 22, "user": "tunnel", "run_as": "netreach-tunnel", "keepalive_interval": 5,
                  "keepalive_count_max": 3, "connect_timeout": 10, "restart_delay": 1, "restart_max_delay": 30}
        params.update(defaults or {})
        params.update(declared)
        allow_dynamic = params.pop("server_allow_dynamic", False)
        if not isinstance(allow_dynamic, bool):
            raise TunnelError(f"{field_name}.server_allow_dynamic", "must be true or false")
        try:
            tunnel = parse_tunnel(params)
        except TunnelError as exc:
            raise TunnelError(f"{field_name}.{exc.field}", exc.message) from None
        hops = [(hop.host, hop.port, hop.user or tunnel.user) for hop in tunnel.jump_hosts]
        hops.append((tunnel.server, tunnel.port, tunnel.user))
        if not any(host == server for host, dummy, dummy2 in hops):
            continue
        key = public_keys.get(tunnel.name) if isinstance(public_keys, dict) else None
        if not key and skip_missing_keys:
            continue
        if not key:
            raise TunnelError(f"{field_name}", f"no public key known for tunnel {tunnel.name} of {client}")
        key = check_public_key(key, f"{client}: public key of tunnel {tunnel.name}")
        for position, (host, dummy, account) in enumerate(hops):
            if host != server:
                continue
            if position < len(hops) - 1:
                next_host, next_port, dummy = hops[position + 1]
                entries.append(Entry(account, client, tunnel.name, key, opens=(f"{bracket(next_host)}:{next_port}",)))
                continue
            dynamic = any(fwd.kind == "dynamic" for fwd in tunnel.forwards)
            if dynamic and not allow_dynamic:
                raise TunnelError(f"{field_name}.dynamic_forwards",
                                  f"tunnel {tunnel.name} of {client} has a dynamic (-D) forward, which lets its key "
                                  "open any destination on the server; set server_allow_dynamic: true on the "
                                  "tunnel to allow that")
            opens = tuple(sorted({fwd.target for fwd in tunnel.forwards if fwd.kind == "local"}))
            # ssh asks for "localhost" when a remote forward names no bind address; OpenSSH reads a bare port in
            # permitlisten as any address, which GatewayPorts would then let the key bind on every interface.
            listens = tuple(sorted({fwd.listen if fwd.bind_address else f"localhost:{fwd.port}"
                                    for fwd in tunnel.forwards if fwd.kind == "remote"}))
            entries.append(Entry(account, client, tunnel.name, key, opens, listens, any_open=dynamic))
    return entries


def check_listen_conflicts(entries: list[Entry]) -> None:
    """One remote forward port per server: only one session can hold it, and the reaper hands it by port."""
    seen: dict[str, Entry] = {}
    for entry in entries:
        for listen in entry.listens:
            port = listen.rpartition(":")[2]
            other = seen.get(port)
            if other is not None and (other.client, other.tunnel) != (entry.client, entry.tunnel):
                raise TunnelError(f"{entry.client}: remote_forwards",
                                  f"tunnel {entry.tunnel} listens on port {port} ({listen}), which tunnel "
                                  f"{other.tunnel} of {other.client} already declares on this server")
            seen[port] = entry


def render_key_line(entry: Entry) -> str:
    options = ["restrict", "port-forwarding"]
    if not entry.any_open:
        options += [f'permitopen="{target}"' for target in entry.opens or (SENTINEL,)]
    options += [f'permitlisten="{listen}"' for listen in entry.listens or (SENTINEL,)]
    return f"{','.join(options)} {entry.public_key} {entry.label}"


def entry_label(line: str) -> str | None:
    """The netreach label of an authorized_keys line (client/tunnel), or None for a line we did not write."""
    words = line.split()
    if words and words[-1].startswith(MARKER + ":"):
        return words[-1][len(MARKER) + 1:]
    return None


def account_policies(entries: list[Entry], accounts: list[str]) -> dict[str, AccountPolicy]:
    policies = {name: AccountPolicy(name) for name in accounts}
    for entry in entries:
        policy = policies.setdefault(entry.account, AccountPolicy(entry.account))
        policy.opens.update(entry.opens)
        policy.listens.update(entry.listens)
        policy.any_open |= entry.any_open
        policy.gateway_ports |= entry.gateway_ports
    return policies


def render_sshd_dropin(policies: dict[str, AccountPolicy], client_alive_interval: int, client_alive_count_max: int) -> str:
    """sshd_config.d drop-in: one Match block per tunnel account, nothing for any other user."""
    lines = ["# Managed by netreach.tunnels.tunnel_server; local changes are overwritten."]
    for name in sorted(policies):
        if not USER_RE.fullmatch(name):
            raise TunnelError("tunnel_server_accounts", f"{name!r} is not a valid user name")
        policy = policies[name]
        opens = "any" if policy.any_open else " ".join(sorted(policy.opens)) or "none"
        listens = " ".join(sorted(policy.listens)) or "none"
        lines += [
            "",
            f"Match User {name}",
            f"    AllowTcpForwarding {policy.allow_tcp_forwarding}",
            f"    PermitOpen {opens}",
            f"    PermitListen {listens}",
            f"    GatewayPorts {'clientspecified' if policy.gateway_ports else 'no'}",
            "    AllowStreamLocalForwarding no",
            "    AllowAgentForwarding no",
            "    X11Forwarding no",
            "    PermitTTY no",
            "    PermitTunnel no",
            "    PermitUserRC no",
            "    ForceCommand /usr/sbin/nologin",
            f"    ClientAliveInterval {client_alive_interval}",
            f"    ClientAliveCountMax {client_alive_count_max}",
        ]
    return "\n".join(lines) + "\n"


def known_hosts_name(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


def known_hosts_lines(host: str, port: int, facts: dict) -> list[str]:
    """known_hosts lines for HOST:PORT from its gathered ansible_ssh_host_key_*_public facts."""
    lines = []
    for fact, key_type in (("ansible_ssh_host_key_ed25519_public", "ssh-ed25519"),
                           ("ansible_ssh_host_key_ecdsa_public", None),
                           ("ansible_ssh_host_key_rsa_public", "ssh-rsa")):
        key = facts.get(fact)
        if not key:
            continue
        key_type = key_type or facts.get("ansible_ssh_host_key_ecdsa_public_keytype") or "ecdsa-sha2-nistp256"
        line = f"{known_hosts_name(host, port)} {key_type} {key}"
        if KNOWN_HOSTS_RE.fullmatch(line):
            lines.append(line)
    return lines
