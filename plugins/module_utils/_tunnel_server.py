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

Unix-socket (stream-local) forwards, tried against OpenSSH 9.2 and 10.0: sshd matches a local forward's socket
path against ``permitopen``/``PermitOpen`` entries of the form ``[/path]:*``, so each declared socket target is
pinned exactly like a TCP one; a remote forward's listen path is matched against nothing (``permitlisten`` cannot
narrow it), so an account allowed to listen on sockets may listen on any path it can write. Stream-local
forwarding is also subject to ``AllowTcpForwarding`` (local/remote), which stays limited by the TCP lists. Only
an account with a declared socket forward gets ``AllowStreamLocalForwarding``; every other account keeps ``no``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ansible_collections.netreach.tunnels.plugins.module_utils._declaration import (
    USER_RE,
    DeclarationError,
    check_port,
    check_socket_path,
    check_user,
)
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel import parse_rollback_timeout
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_render import HELPER_DIR

MARKER = "netreach-tunnel"
# Host part of the sentinel: reserved by RFC 6761, never resolvable, never a declared bind or target.
SENTINEL = "netreach.invalid:1"
ENTRY_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{0,252}$")
PUBLIC_KEY_RE = re.compile(r"^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa) [A-Za-z0-9+/=]+$")
LOOPBACK = ("", "localhost", "127.0.0.1", "::1")
# Parameters of a tunnel declaration that only the server end reads (the client role strips them).
SERVER_ONLY_KEYS = ("server_allow_dynamic",)
# What permitopen/permitlisten may hold: [ipv6]:port, host:port or (listens) a bare port; nothing that could
# close the option's quotes or start another option.
TARGET_RE = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_][A-Za-z0-9._-]*):[0-9]{1,5}$")
LISTEN_RE = re.compile(r"^((\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_*][A-Za-z0-9._-]*):)?[0-9]{1,5}$")
DROPIN_DIR = "/etc/ssh/sshd_config.d"
REAPER_UNIT = "netreach-tunnel-reaper.service"
SOCKET_LISTENS_COMMENT = "# declared socket listens (sshd cannot restrict them):"


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
    socket_opens: tuple[str, ...] = ()  # socket paths on this host the key may connect to (local forwards)
    socket_listens: tuple[str, ...] = ()  # socket paths on this host the key listens on (remote forwards)

    @property
    def label(self) -> str:
        return f"{MARKER}:{self.client}/{self.tunnel}"

    @property
    def gateway_ports(self) -> bool:
        return any(listen.rpartition(":")[0].strip("[]") not in LOOPBACK for listen in self.listens if ":" in listen)

    def as_dict(self) -> dict:
        return {"account": self.account, "client": self.client, "tunnel": self.tunnel, "public_key": self.public_key,
                "opens": list(self.opens), "listens": list(self.listens), "any_open": self.any_open,
                "socket_opens": list(self.socket_opens), "socket_listens": list(self.socket_listens)}


@dataclass
class AccountPolicy:
    """What the sshd drop-in allows one tunnel account: the union of its entries."""

    name: str
    opens: set = field(default_factory=set)
    listens: set = field(default_factory=set)
    any_open: bool = False
    gateway_ports: bool = False
    socket_opens: set = field(default_factory=set)
    socket_listens: set = field(default_factory=set)

    @property
    def allow_tcp_forwarding(self) -> str:
        # sshd refuses stream-local forwarding in a direction AllowTcpForwarding leaves out; the TCP lists
        # (PermitOpen/PermitListen) still hold TCP to what is declared.
        local = bool(self.opens or self.socket_opens) or self.any_open
        return _directions(local, bool(self.listens or self.socket_listens))

    @property
    def allow_stream_local_forwarding(self) -> str:
        return _directions(bool(self.socket_opens), bool(self.socket_listens))

    @property
    def permit_open(self) -> str:
        if self.any_open:
            return "any"
        return " ".join(sorted(self.opens) + [socket_permit(path) for path in sorted(self.socket_opens)]) or "none"


def _directions(local: bool, remote: bool) -> str:
    """An sshd forwarding keyword's value for the directions allowed."""
    return {(True, True): "yes", (True, False): "local", (False, True): "remote"}.get((local, remote), "no")


def socket_permit(path: str) -> str:
    """The permitopen/PermitOpen entry sshd matches a socket path against: the path as host, any port."""
    return f"[{path}]:*"


def check_public_key(value, field_name: str) -> str:
    if not isinstance(value, str) or "\n" in value or "\r" in value:
        raise DeclarationError(field_name, "expected one OpenSSH public key line")
    words = value.split()
    if len(words) < 2 or not PUBLIC_KEY_RE.fullmatch(" ".join(words[:2])):
        raise DeclarationError(field_name, "expected an OpenSSH public key: 'type base64 [comment]'")
    return " ".join(words[:2])


def check_entry_name(value, field_name: str) -> str:
    if not isinstance(value, str) or not ENTRY_RE.fullmatch(value):
        raise DeclarationError(field_name, f"{value!r} must be 1-253 characters of [a-zA-Z0-9._-]")
    return value


def check_listen_conflicts(entries: list[Entry]) -> None:
    """One remote forward port per server: only one session can hold it, and the reaper hands it by port; one
    tunnel per socket path (StreamLocalBindUnlink would let each take it from the other)."""
    seen: dict[str, Entry] = {}
    for entry in entries:
        # Keyed by socket path or by port (a path starts with '/', so the two never meet).
        held = [(path, f"socket {path}") for path in entry.socket_listens]
        ports = [(listen.rpartition(":")[2], listen) for listen in entry.listens]
        held += [(port, f"port {port} ({listen})") for port, listen in ports]
        for key, what in held:
            other = seen.get(key)
            if other is not None and (other.client, other.tunnel) != (entry.client, entry.tunnel):
                raise DeclarationError(f"{entry.client}: remote_forwards",
                                       f"tunnel {entry.tunnel} listens on {what}, which tunnel "
                                       f"{other.tunnel} of {other.client} already declares on this server")
            seen[key] = entry


def render_key_line(entry: Entry) -> str:
    options = ["restrict", "port-forwarding"]
    if not entry.any_open:
        opens = [*entry.opens, *(socket_permit(path) for path in entry.socket_opens)]
        options += [f'permitopen="{target}"' for target in opens or (SENTINEL,)]
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
        policy.socket_opens.update(entry.socket_opens)
        policy.socket_listens.update(entry.socket_listens)
    return policies


def render_sshd_dropin(policies: dict[str, AccountPolicy], client_alive_interval: int, client_alive_count_max: int,
                       ports: tuple[int, ...] = ()) -> str:
    """sshd_config.d drop-in: the listening ports (global, so before any Match), then one Match block per tunnel
    account, nothing for any other user. With a Port line sshd no longer listens on 22 unless it is listed."""
    lines = ["# Managed by netreach.tunnels.tunnel_server; local changes are overwritten."]
    if ports:
        lines += ["", "# The ports sshd listens on (tunnel_server ports): only these."] + [f"Port {port}" for port in ports]
    for name in sorted(policies):
        if not USER_RE.fullmatch(name):
            raise DeclarationError("tunnel_server_accounts", f"{name!r} is not a valid user name")
        policy = policies[name]
        listens = " ".join(sorted(policy.listens)) or "none"
        lines += [
            "",
            f"Match User {name}",
            f"    AllowTcpForwarding {policy.allow_tcp_forwarding}",
            f"    PermitOpen {policy.permit_open}",
            f"    PermitListen {listens}",
            f"    GatewayPorts {'clientspecified' if policy.gateway_ports else 'no'}",
            f"    AllowStreamLocalForwarding {policy.allow_stream_local_forwarding}",
            # A reconnecting session takes over the socket a dead one left behind. sshd restricts no listen path:
            # the comment records the declared ones (tunnel_info reads it back).
            *([f"    {SOCKET_LISTENS_COMMENT} {' '.join(sorted(policy.socket_listens))}",
               "    StreamLocalBindUnlink yes"] if policy.socket_listens else []),
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


# --- the tunnel_server module's declaration -------------------------------------------------------------


@dataclass(frozen=True)
class ServerDeclaration:
    accounts: tuple[str, ...]
    entries: tuple[Entry, ...]
    managed_clients: frozenset | None
    known_clients: frozenset | None
    dropin_name: str  # the drop-in's file name in DROPIN_DIR
    client_alive_interval: int
    client_alive_count_max: int
    reaper: bool
    absent: bool
    ports: tuple[int, ...] = ()  # sshd's listening ports; () leaves them to sshd_config
    rollback_timeout: int = 0  # seconds a change waits for the controller's confirmation; 0: applied at once
    create_accounts: bool = False  # make the accounts locked, shell-less system accounts (the engine's account step)


def parse_entries(values: list) -> list[Entry]:
    entries = []
    for index, value in enumerate(values or []):
        field_name = f"entries[{index}]"
        if not isinstance(value, dict):
            raise DeclarationError(field_name, "expected a dict (see the tunnel_server_entries filter)")
        account = value.get("account")
        if not isinstance(account, str) or not USER_RE.fullmatch(account):
            raise DeclarationError(f"{field_name}.account", f"{account!r} is not a valid user name")
        opens, listens = value.get("opens") or [], value.get("listens") or []
        for key, items, pattern in (("opens", opens, TARGET_RE), ("listens", listens, LISTEN_RE)):
            if not isinstance(items, list):
                raise DeclarationError(f"{field_name}.{key}", "expected a list")
            for item in items:
                if not isinstance(item, str) or not pattern.fullmatch(item):
                    raise DeclarationError(f"{field_name}.{key}", f"{item!r} is not a [host:]port")
        any_open = value.get("any_open", False)
        if not isinstance(any_open, bool):
            raise DeclarationError(f"{field_name}.any_open", "must be true or false")
        sockets = {}
        for key in ("socket_opens", "socket_listens"):
            items = value.get(key) or []
            if not isinstance(items, list):
                raise DeclarationError(f"{field_name}.{key}", "expected a list of socket paths")
            sockets[key] = tuple(check_socket_path(item, f"{field_name}.{key}") for item in items)
        entries.append(Entry(account, check_entry_name(value.get("client"), f"{field_name}.client"),
                             check_entry_name(value.get("tunnel"), f"{field_name}.tunnel"),
                             check_public_key(value.get("public_key"), f"{field_name}.public_key"),
                             tuple(opens), tuple(listens), any_open, **sockets))
    return entries


def check_entries(entries: list[Entry], accounts: list[str]) -> None:
    """Every entry is for a declared tunnel account, and no key or label appears twice on one account."""
    seen: dict[tuple, str] = {}
    for index, entry in enumerate(entries):
        if entry.account not in accounts:
            raise DeclarationError(f"entries[{index}].account", f"{entry.account} is not one of the tunnel accounts "
                                   f"({', '.join(accounts) or 'none'}); tunnels log in to dedicated accounts only")
        for key in ((entry.account, entry.public_key), (entry.account, entry.label)):
            if key in seen:
                raise DeclarationError(f"entries[{index}]", f"{entry.label} repeats {key[1][:40]} of {seen[key]} on "
                                       f"account {entry.account}: sshd would use only the first line")
            seen[key] = entry.label


def parse_accounts(values) -> tuple[str, ...]:
    """The tunnel accounts, validated the same for every state: user names, never root."""
    if not isinstance(values, list):
        raise DeclarationError("accounts", "expected a list of user names")
    for value in values:
        check_user(value, "accounts")
        if value == "root":
            raise DeclarationError("accounts", "root is never a tunnel account")
    return tuple(sorted(set(values)))


def _client_set(values, field_name: str) -> frozenset | None:
    if values is None:
        return None
    if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
        raise DeclarationError(field_name, "expected a list of inventory host names")
    return frozenset(values)


def parse_dropin(path) -> str:
    """The drop-in's file name: sshd reads /etc/ssh/sshd_config.d/*.conf, and that is all we write there."""
    directory, _sep, name = (path or "").rpartition("/")
    if directory != DROPIN_DIR or not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,250}\.conf", name):
        raise DeclarationError("sshd_dropin", f"{path!r} is not read by sshd: it must be a plain file name in "
                                              f"{DROPIN_DIR}/ ending in .conf")
    return name


def parse_ports(values) -> tuple[int, ...]:
    """sshd's listening ports, in the order given: each 1-65535, none twice (sshd would refuse to start)."""
    if values is None:
        return ()
    if not isinstance(values, list):
        raise DeclarationError("ports", "expected a list of port numbers")
    ports: list[int] = []
    for index, value in enumerate(values):
        port = check_port(value, f"ports[{index}]")
        if port in ports:
            raise DeclarationError(f"ports[{index}]", f"port {port} is listed twice")
        ports.append(port)
    return tuple(ports)


def parse_server(params: dict) -> ServerDeclaration:
    """The tunnel_server module's parameters, validated alike for present and absent."""
    accounts = parse_accounts(params.get("accounts"))
    entries = parse_entries(params.get("entries"))
    check_listen_conflicts(entries)
    check_entries(entries, list(accounts))
    numbers = {}
    for key in ("client_alive_interval", "client_alive_count_max"):
        value = params.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 3600:
            raise DeclarationError(key, "must be a whole number from 1 to 3600")
        numbers[key] = value
    return ServerDeclaration(accounts, tuple(entries), _client_set(params.get("managed_clients"), "managed_clients"),
                             _client_set(params.get("known_clients"), "known_clients"),
                             parse_dropin(params.get("sshd_dropin")), reaper=bool(params.get("reaper", True)),
                             absent=params.get("state") == "absent", ports=parse_ports(params.get("ports")),
                             rollback_timeout=parse_rollback_timeout(params.get("rollback_timeout", 0)),
                             create_accounts=_flag(params.get("create_accounts", False), "create_accounts"), **numbers)


def _flag(value, field_name: str) -> bool:
    if not isinstance(value, bool):
        raise DeclarationError(field_name, "must be true or false")
    return value


# --- authorized_keys, merged and read back ----------------------------------------------------------------


def merge_authorized_keys(current: str | None, entries: list[Entry], managed: frozenset | None,
                          known: frozenset | None, remove_all: bool = False) -> tuple[str, list[str]]:
    """An account's authorized_keys: our entries for MANAGED clients replaced by ENTRIES, others' kept (unless
    their client is not KNOWN), lines we did not write kept as they are. Returns (content, our labels)."""
    foreign, ours = [], {}
    for line in (current or "").splitlines():
        label = entry_label(line)
        if label is None:
            foreign.append(line)
            continue
        client = label.partition("/")[0]
        if not remove_all and (managed is None or client not in managed) and (known is None or client in known):
            ours[label] = line
    if not remove_all:
        for entry in entries:
            ours[entry.label.partition(":")[2]] = render_key_line(entry)
    lines = foreign + [ours[label] for label in sorted(ours)]
    return "".join(f"{line}\n" for line in lines), sorted(ours)


def kept_entries(text: str | None, account: str, declared: set[str]) -> list[Entry]:
    """Our entries of an authorized_keys TEXT whose labels are not DECLARED (other clients' entries, kept), read
    back from their options, so the account's drop-in keeps allowing what their keys allow."""
    found = []
    for line in (text or "").splitlines():
        label = entry_label(line)
        if label is None or label in declared or "/" not in label:
            continue
        words = line.split()
        options = words[0]
        opens = [target for target in re.findall(r'permitopen="([^"]+)"', options) if target != SENTINEL]
        sockets = tuple(target[1:-3] for target in opens if target.startswith("[/") and target.endswith("]:*"))
        listens = tuple(listen for listen in re.findall(r'permitlisten="([^"]+)"', options) if listen != SENTINEL)
        client, _sep, tunnel = label.partition("/")
        found.append(Entry(account, client, tunnel, " ".join(words[1:-1]),
                           opens=tuple(target for target in opens if not target.startswith("[/")), listens=listens,
                           any_open='permitopen="' not in options, socket_opens=sockets))
    return found


def authorized_listens(text: str | None) -> list[dict]:
    """The remote forward binds our entries in an authorized_keys text permit (the sentinel left out)."""
    found = []
    for line in (text or "").splitlines():
        label = entry_label(line)
        if label is None:
            continue
        for listen in re.findall(r'permitlisten="([^"]+)"', line.split()[0]):
            if listen != SENTINEL:
                found.append({"entry": label, "listen": listen})
    return found


def dropin_accounts(text: str | None) -> set[str]:
    """The accounts a drop-in we rendered restricts (they keep being cleaned after they leave the declaration)."""
    return set(re.findall(r"^Match User (\S+)$", text or "", re.MULTILINE))


def dropin_socket_listens(text: str | None) -> list[dict]:
    """The declared socket listens a drop-in we rendered records, by account."""
    found, account = [], None
    for line in (text or "").splitlines():
        if line.startswith("Match User "):
            account = line.split()[2]
        elif account and line.strip().startswith(SOCKET_LISTENS_COMMENT):
            found += [{"account": account, "listen": path}
                      for path in line.strip()[len(SOCKET_LISTENS_COMMENT):].split()]
    return found


def render_reaper_unit(accounts: list[str]) -> str:
    return "\n".join([
        "# Managed by netreach.tunnels.tunnel_server; local changes are overwritten.",
        "[Unit]",
        "Description=netreach: hand remote forwards of stale tunnel sessions to reconnecting ones",
        "After=ssh.service",
        "",
        "[Service]",
        f"ExecStart=/usr/bin/python3 {HELPER_DIR}/tunnel-reaper {' '.join(sorted(accounts))}",
        "Restart=always",
        "RestartSec=1",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ])


HOST_KEY_TYPES = ("dsa", "rsa", "ecdsa", "ed25519")
HOST_KEY_RE = re.compile(r"^(ssh-dss|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|ssh-ed25519) ([A-Za-z0-9+/=]+)(\s.*)?$")


def host_key_facts(public_keys: dict[str, str | None]) -> dict[str, str]:
    """The ssh_pub_keys facts of ansible.builtin.setup (ansible_ssh_host_key_TYPE_public and its _keytype) from
    the texts of /etc/ssh/ssh_host_TYPE_key.pub (None: no such file), so the clients can pin this server's host
    keys without a fact-gathering round. A text that is not one public key line is left out."""
    facts = {}
    for key_type in HOST_KEY_TYPES:
        match = HOST_KEY_RE.fullmatch((public_keys.get(key_type) or "").strip())
        if match:
            facts[f"ansible_ssh_host_key_{key_type}_public"] = match.group(3)
            facts[f"ansible_ssh_host_key_{key_type}_public_keytype"] = match.group(1)
    return facts
