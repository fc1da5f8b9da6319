# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: the SSH tunnel model. Not a public API; it may change at any time.
#
# parse_tunnel() turns module parameters into a Tunnel, parse_identity() into the Identity tunnel_key makes,
# parse_removal() into the name state=absent removes (each raises DeclarationError naming the bad field). The
# files a Tunnel needs are rendered (and read back) in _tunnel_render.py. Nothing here touches the host.
"""The SSH tunnel model: name, identity, forwards, proxy and jump hosts parsed and validated."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ansible_collections.netreach.tunnels.plugins.module_utils._declaration import (
    USER_RE,
    DeclarationError,
    Proxy,
    bracket,
    check_host,
    check_port,
    check_socket_path,
    check_user,
    parse_proxy,
)
from ansible_collections.netreach.tunnels.plugins.module_utils._engine_rollback import check_timeout
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_ssh_options import parse_ssh_options

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
# Where a tunnel's files live: CONFIG_ROOT/CONFIG_PARTS/NAME (the engine's root and parts), its unit's prefix.
CONFIG_ROOT = "/etc"
CONFIG_PARTS = ("netreach", "tunnels")
UNIT_PREFIX = "netreach-tunnel@"
KEY_NAME = "id_ed25519"
# The tunnel proxies ssh_tunnel knows: the proxy hop speaks HTTP CONNECT and SOCKS5.
PROXY_TYPES = ("http", "socks5")
# Host pattern (not an OpenSSH @marker), key type, key, and a comment without any character that breaks a line.
KNOWN_HOSTS_RE = re.compile(r"^[^\s#@][^\s]* (ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-\S+) [A-Za-z0-9+/=]+"
                            r"( [^\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]*)?$")
PATH_RE = re.compile(r"^/[A-Za-z0-9._/@+-]+$")
# What the tunnel unit's sandbox hides (PrivateTmp, ProtectHome): a client-side socket there is out of its reach.
HIDDEN_FROM_UNIT = ("/tmp/", "/var/tmp/", "/home/", "/root/", "/run/user/")


# The one declaration error of the collection; the old name stays for the callers that catch it.
TunnelError = DeclarationError


@dataclass(frozen=True)
class Forward:
    kind: str  # "local" | "remote" | "dynamic"
    bind_address: str | None
    port: int | None  # None: the forward listens on LISTEN_SOCKET
    host: str | None = None
    host_port: int | None = None
    # Unix-socket ends (stream-local forwarding): a remote forward may listen on a socket path on the server,
    # a local forward may lead to a socket on the server and a remote forward to one on the client.
    listen_socket: str | None = None
    target_socket: str | None = None

    @property
    def listen(self) -> str:
        if self.listen_socket:
            return self.listen_socket
        return f"{bracket(self.bind_address)}:{self.port}" if self.bind_address else str(self.port)

    @property
    def target(self) -> str:
        return self.target_socket or f"{bracket(self.host)}:{self.host_port}"

    def as_dict(self) -> dict:
        return {"kind": self.kind, "bind_address": self.bind_address, "port": self.port,
                "host": self.host, "host_port": self.host_port,
                "listen_socket": self.listen_socket, "target_socket": self.target_socket}


@dataclass(frozen=True)
class Hop:
    user: str | None
    host: str
    port: int

    @property
    def spec(self) -> str:
        return f"{self.user + '@' if self.user else ''}{self.host}:{self.port}"


@dataclass(frozen=True)
class Tunnel:
    name: str
    server: str
    port: int
    user: str
    identity_file: str
    known_hosts: tuple[str, ...]
    jump_hosts: tuple[Hop, ...]
    proxy: Proxy | None
    forwards: tuple[Forward, ...]
    engine: str
    keepalive_interval: int
    keepalive_count_max: int
    connect_timeout: int
    restart_delay: int
    restart_max_delay: int
    run_as: str
    # Extra ssh_config lines (keyword, value) from the ssh_options allow-list.
    ssh_options: tuple[tuple[str, str], ...] = ()
    # Seconds a change waits for the controller's confirmation before the host puts the previous tunnel back
    # (0: no confirm step); not part of what is rendered.
    rollback_timeout: int = 0

    @property
    def unit(self) -> str:
        return unit_name(self.name)

    @property
    def config_dir(self) -> str:
        return tunnel_dir(self.name)

    @property
    def identity(self) -> Identity:
        return Identity(self.name, self.identity_file, self.run_as)

    @property
    def ssh_config_path(self) -> str:
        return f"{self.config_dir}/ssh_config"

    @property
    def known_hosts_path(self) -> str:
        return f"{self.config_dir}/known_hosts"

    @property
    def proxy_auth_path(self) -> str:
        return f"{self.config_dir}/proxy_auth"

    @property
    def needs_low_port(self) -> bool:
        return any(fwd.kind in ("local", "dynamic") and fwd.port < 1024 for fwd in self.forwards)


def unit_name(name: str) -> str:
    return f"{UNIT_PREFIX}{name}.service"


def _listen_addresses(listen: str) -> tuple[frozenset, str]:
    """The addresses a client-side listen spec binds, and its port (ssh binds a bare port on loopback)."""
    address, dummy, port = listen.rpartition(":")
    address = address.strip("[]")
    if address in ("", "localhost"):
        return frozenset({"127.0.0.1", "::1"}), port
    if address == "*":
        return frozenset({"0.0.0.0", "::"}), port
    return frozenset({address}), port


def listens_overlap(first: str, second: str) -> bool:
    """Whether two client-side listen specs (as in ssh_config: [addr:]port) would compete for one socket."""
    first_addresses, first_port = _listen_addresses(first)
    second_addresses, second_port = _listen_addresses(second)
    if first_port != second_port:
        return False
    for one in first_addresses:
        for other in second_addresses:
            # ssh listens on IPv6 sockets with IPV6_V6ONLY, so a wildcard covers only its own family.
            if one == other or (one in ("0.0.0.0", "::") and (":" in one) == (":" in other)) \
                    or (other in ("0.0.0.0", "::") and (":" in one) == (":" in other)):
                return True
    return False


def _split_spec(spec: str, field_name: str) -> list[str]:
    """Split an ssh forward spec on ':' while keeping bracketed IPv6 addresses whole."""
    if not isinstance(spec, str) or not spec:
        raise DeclarationError(field_name, f"{spec!r} is not a forward specification")
    if any(ch.isspace() or not ch.isprintable() for ch in spec):
        raise DeclarationError(field_name, f"{spec!r} must not contain spaces, line breaks or control characters")
    parts = []
    # A small scanner is clearer than one regular expression for "[v6]:port:host:port" shapes.
    token, i = "", 0
    while i < len(spec):
        char = spec[i]
        if char == "[":
            end = spec.find("]", i)
            if end < 0 or token:
                raise DeclarationError(field_name, f"{spec!r} has an unclosed '['")
            token = spec[i + 1:end]
            if not token or (end + 1 < len(spec) and spec[end + 1] != ":"):
                raise DeclarationError(field_name, f"{spec!r} has a malformed bracketed address")
            i = end + 1
            continue
        if char == "]":
            raise DeclarationError(field_name, f"{spec!r} has an unmatched ']'")
        if char == ":":
            parts.append(token)
            token = ""
        else:
            token += char
        i += 1
    parts.append(token)
    return parts


FORWARD_KEYS = {"bind_address", "port", "host", "host_port", "listen_socket", "target_socket"}


def _spec_parts(value: str, field_name: str) -> dict:
    """The parts of ssh's -L/-R syntax: [bind_address:]port or a socket path, then host:hostport or a socket path
    (a part that starts with '/' is a socket path)."""
    parts = _split_spec(value, field_name)
    shape = "[bind_address:]port:host:hostport, [bind_address:]port:/socket or /socket:host:hostport"
    found: dict = {}
    # A path that is not absolute would otherwise read as a host name: name the end it stands for.
    for part, end in ((parts[0], "listen_socket"), (parts[-1], "target_socket")):
        if "/" in part and not part.startswith("/"):
            raise DeclarationError(f"{field_name}.{end}", f"{part!r} is not an absolute socket path")
    if len(parts) >= 2 and parts[-1].startswith("/"):
        found["target_socket"], head = parts[-1], parts[:-1]
    elif len(parts) >= 3:
        found["host"], found["host_port"], head = parts[-2], parts[-1], parts[:-2]
    else:
        raise DeclarationError(field_name, f"{value!r}: expected {shape}")
    if len(head) == 1 and head[0].startswith("/"):
        found["listen_socket"] = head[0]
    elif len(head) == 1:
        found["port"] = head[0]
    elif len(head) == 2:
        found["bind_address"], found["port"] = head
    else:
        raise DeclarationError(field_name, f"{value!r}: expected {shape}")
    return found


def _build_forward(kind: str, parts: dict, field_name: str) -> Forward:
    """A local or remote forward from its parts: TCP or Unix-socket ends, each validated."""
    listen_socket, target_socket = parts.get("listen_socket"), parts.get("target_socket")
    if listen_socket is not None:
        if kind == "local":
            raise DeclarationError(f"{field_name}.listen_socket", "a local forward listens on a TCP port; only a "
                                   "remote forward listens on a socket (on the server)")
        if parts.get("bind_address") not in (None, "") or parts.get("port") not in (None, ""):
            raise DeclarationError(field_name, "a forward listens on a socket or on [bind_address:]port, not both")
        listen_socket = check_socket_path(listen_socket, f"{field_name}.listen_socket")
        bind, port = None, None
    else:
        if parts.get("port") in (None, ""):
            raise DeclarationError(field_name, "port is required")
        bind = parts.get("bind_address")
        bind = check_host(bind, f"{field_name}.bind_address") if bind not in (None, "") else None
        port = check_port(parts["port"], f"{field_name}.port")
    if target_socket is not None:
        if parts.get("host") not in (None, "") or parts.get("host_port") not in (None, ""):
            raise DeclarationError(field_name, "a forward leads to a socket or to host:host_port, not both")
        target_socket = check_socket_path(target_socket, f"{field_name}.target_socket")
        if kind == "remote" and target_socket.startswith(HIDDEN_FROM_UNIT):
            raise DeclarationError(f"{field_name}.target_socket", f"{target_socket} is on the client, where the "
                                   "tunnel unit's sandbox hides /tmp, /var/tmp, /home, /root and /run/user")
        return Forward(kind, bind, port, listen_socket=listen_socket, target_socket=target_socket)
    if parts.get("host") in (None, "") or parts.get("host_port") in (None, ""):
        raise DeclarationError(field_name, "host and host_port are required")
    return Forward(kind, bind, port, check_host(parts["host"], f"{field_name}.host"),
                   check_port(parts["host_port"], f"{field_name}.host_port"), listen_socket=listen_socket)


def parse_forward(kind: str, value, field_name: str) -> Forward:
    """Parse one forward given as ssh's -L/-R/-D syntax or as a dict."""
    if isinstance(value, dict):
        unknown = set(value) - FORWARD_KEYS
        if unknown:
            raise DeclarationError(field_name, f"unknown keys {sorted(unknown)}")
        parts = dict(value)
        if parts.get("port") is None and parts.get("listen_socket") is None:
            raise DeclarationError(field_name, "port is required")
    elif kind == "dynamic":
        parts = _split_spec(value, field_name)
        if len(parts) not in (1, 2):
            raise DeclarationError(field_name, f"{value!r}: expected [bind_address:]port")
        parts = dict(zip(("port",) if len(parts) == 1 else ("bind_address", "port"), parts))
    else:
        parts = _spec_parts(value, field_name)
    if kind == "dynamic":
        if any(parts.get(key) is not None for key in ("host", "host_port", "listen_socket", "target_socket")):
            raise DeclarationError(field_name, "a dynamic forward has no host, host_port or socket")
        bind = parts.get("bind_address")
        bind = check_host(bind, f"{field_name}.bind_address") if bind not in (None, "") else None
        return Forward(kind, bind, check_port(parts.get("port"), f"{field_name}.port"))
    return _build_forward(kind, parts, field_name)


def parse_hop(value, field_name: str) -> Hop:
    if not isinstance(value, str):
        raise DeclarationError(field_name, f"expected [user@]host[:port], got {value!r}")
    user, dummy, rest = value.rpartition("@")
    if rest.startswith("["):
        host, dummy, port = rest[1:].partition("]")
        port = port[1:] if port.startswith(":") else (port or "22")
    elif rest.count(":") == 1:
        host, port = rest.split(":")
    else:
        host, port = rest, "22"
    if user and not USER_RE.fullmatch(user):
        raise DeclarationError(field_name, f"{user!r} is not a valid user name")
    return Hop(user or None, check_host(host, field_name), check_port(port, field_name))


def check_tunnel_name(value, field_name: str = "name") -> str:
    """A tunnel name: one plain path component and unit instance, the same for every state (absent too)."""
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        raise DeclarationError(field_name, f"{value!r} must match [a-z0-9][a-z0-9_-]* (at most 63 characters)")
    return value


def tunnel_dir(name: str) -> str:
    return "/".join((CONFIG_ROOT, *CONFIG_PARTS, name))


@dataclass(frozen=True)
class Identity:
    """A tunnel's key pair: in the tunnel's directory (ours: created, owned by RUN_AS) or elsewhere (MANAGED
    false: the administrator's file, which we only read)."""

    name: str
    path: str
    run_as: str

    @property
    def managed(self) -> bool:
        return self.path == f"{tunnel_dir(self.name)}/{KEY_NAME}"


def parse_identity(params: dict) -> Identity:
    """The identity of tunnel NAME, as tunnel_key and ssh_tunnel take it (name, identity_file, run_as)."""
    name = check_tunnel_name(params.get("name"))
    run_as = check_user(params.get("run_as"), "run_as")
    path = params.get("identity_file") or f"{tunnel_dir(name)}/{KEY_NAME}"
    if not isinstance(path, str) or not PATH_RE.fullmatch(path) or "/../" in path or "/./" in path \
            or path.endswith(("/..", "/.", "/")) or "//" in path:
        raise DeclarationError("identity_file", f"{path!r} must be an absolute path of plain characters")
    return Identity(name, path, run_as)


def parse_removal(params: dict) -> str:
    """The name state=absent removes: validated exactly as for every other state."""
    return check_tunnel_name(params.get("name"))


def _parse_known_hosts(values) -> tuple[str, ...]:
    known_hosts = []
    for index, line in enumerate(values or []):
        if not isinstance(line, str) or not KNOWN_HOSTS_RE.fullmatch(line.strip()):
            raise DeclarationError(f"known_hosts[{index}]", "expected a known_hosts line: 'host keytype base64key'")
        known_hosts.append(line.strip())
    return tuple(known_hosts)


def _parse_forwards(params: dict) -> tuple[Forward, ...]:
    forwards = []
    for kind, key in (("local", "local_forwards"), ("remote", "remote_forwards"), ("dynamic", "dynamic_forwards")):
        for index, value in enumerate(params.get(key) or []):
            forwards.append(parse_forward(kind, value, f"{key}[{index}]"))
    if not forwards:
        raise DeclarationError("local_forwards", "a tunnel needs at least one local, remote or dynamic forward")
    for index, fwd in enumerate(forwards):
        for earlier in forwards[:index]:
            if (earlier.kind == "remote") != (fwd.kind == "remote"):
                continue
            if (earlier.listen_socket or fwd.listen_socket) and earlier.listen != fwd.listen:
                continue
            if earlier.listen == fwd.listen or listens_overlap(earlier.listen, fwd.listen):
                raise DeclarationError(f"{fwd.kind}_forwards", f"{fwd.listen} overlaps {earlier.listen}: bound twice")
    return tuple(forwards)


def _parse_numbers(params: dict) -> dict:
    numbers = {}
    for key in ("keepalive_interval", "keepalive_count_max", "connect_timeout", "restart_delay", "restart_max_delay"):
        value = params.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 3600:
            raise DeclarationError(key, f"must be a whole number from 1 to 3600, got {value!r}")
        numbers[key] = value
    if numbers["restart_max_delay"] < numbers["restart_delay"]:
        raise DeclarationError("restart_max_delay", "must not be less than restart_delay")
    return numbers


def parse_tunnel_proxy(value) -> Proxy | None:
    """The first hop's proxy; the proxy hop reads "user:password" from one file, so both or neither."""
    proxy = parse_proxy(value, "proxy", PROXY_TYPES)
    if proxy is not None and bool(proxy.username) != bool(proxy.password):
        raise DeclarationError("proxy", "username and password go together")
    return proxy


def parse_tunnel(params: dict) -> Tunnel:
    """Validate module parameters and return the Tunnel they declare."""
    identity = parse_identity(params)
    user = check_user(params.get("user"), "user")
    known_hosts = _parse_known_hosts(params.get("known_hosts"))
    forwards = _parse_forwards(params)
    numbers = _parse_numbers(params)
    engine = params.get("engine", "ssh")
    if engine not in ("ssh", "autossh"):
        raise DeclarationError("engine", f"must be ssh or autossh, got {engine!r}")
    return Tunnel(
        name=identity.name,
        server=check_host(params.get("server"), "server"),
        port=check_port(params.get("port", 22), "port"),
        user=user,
        identity_file=identity.path,
        known_hosts=known_hosts,
        jump_hosts=tuple(parse_hop(hop, f"jump_hosts[{i}]") for i, hop in enumerate(params.get("jump_hosts") or [])),
        proxy=parse_tunnel_proxy(params.get("proxy")),
        forwards=forwards,
        engine=engine,
        run_as=identity.run_as,
        ssh_options=parse_ssh_options(params.get("ssh_options")),
        rollback_timeout=parse_rollback_timeout(params.get("rollback_timeout", 0)),
        **numbers,
    )


def parse_rollback_timeout(value) -> int:
    try:
        return check_timeout(value)
    except ValueError as exc:
        raise DeclarationError("rollback_timeout", str(exc)) from None


def parse_request(params: dict) -> Tunnel | str:
    """What ssh_tunnel is asked for: the Tunnel, or for state=absent the validated name to remove."""
    if params.get("state") == "absent":
        return parse_removal(params)
    return parse_tunnel(params)


def forwards_argument_spec() -> dict:
    """The forward options' argument spec, written once (documented by the doc fragment netreach.tunnels.forwards)."""
    return {key: dict(type="list", elements="raw", default=[])
            for key in ("local_forwards", "remote_forwards", "dynamic_forwards")}
