# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: the SSH tunnel model. Not a public API; it may change at any time.
#
# parse_tunnel() turns module parameters into a Tunnel (or raises TunnelError naming the bad field);
# render_*() are pure functions from a Tunnel to file contents. Nothing here touches the host.
"""The SSH tunnel model: forwards, proxy and jump hosts parsed, validated and rendered."""

from __future__ import annotations

import ipaddress
import re
import shlex
from dataclasses import dataclass, field

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
# Host names and addresses that may stand in an ssh_config line or a forward spec: no blanks, quotes,
# separators or ssh_config tokens (%), so nothing can add an option or split a line.
HOST_RE = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9._-]{0,252})$")
USER_RE = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")
# Host pattern (not an OpenSSH @marker), key type, key, and a comment without any character that breaks a line.
KNOWN_HOSTS_RE = re.compile(r"^[^\s#@][^\s]* (ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-\S+) [A-Za-z0-9+/=]+"
                            r"( [^\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]*)?$")
PATH_RE = re.compile(r"^/[A-Za-z0-9._/@+-]+$")


class TunnelError(ValueError):
    """A bad tunnel declaration; `field` names the offending parameter."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


@dataclass(frozen=True)
class Forward:
    kind: str  # "local" | "remote" | "dynamic"
    bind_address: str | None
    port: int
    host: str | None = None
    host_port: int | None = None

    @property
    def listen(self) -> str:
        return f"{bracket(self.bind_address)}:{self.port}" if self.bind_address else str(self.port)

    @property
    def target(self) -> str:
        return f"{bracket(self.host)}:{self.host_port}"

    def as_dict(self) -> dict:
        return {"kind": self.kind, "bind_address": self.bind_address, "port": self.port,
                "host": self.host, "host_port": self.host_port}


@dataclass(frozen=True)
class Proxy:
    type: str  # "http" | "socks5"
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)


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

    @property
    def unit(self) -> str:
        return f"netreach-tunnel@{self.name}.service"

    @property
    def config_dir(self) -> str:
        return f"/etc/netreach/tunnels/{self.name}"

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


def bracket(host: str | None) -> str:
    return f"[{host}]" if host and ":" in host else (host or "")


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


def check_port(value, field_name: str) -> int:
    if isinstance(value, bool):
        raise TunnelError(field_name, f"port must be a number from 1 to 65535, got {value!r}")
    try:
        port = int(str(value).strip(), 10)
    except ValueError:
        raise TunnelError(field_name, f"port must be a number from 1 to 65535, got {value!r}") from None
    if not 1 <= port <= 65535 or not str(value).strip().isdigit():
        raise TunnelError(field_name, f"port must be a number from 1 to 65535, got {value!r}")
    return port


def check_host(value, field_name: str) -> str:
    """A DNS name, IPv4 or IPv6 address (without brackets) that is safe in every output format."""
    if not isinstance(value, str) or not value:
        raise TunnelError(field_name, f"expected a host name or address, got {value!r}")
    if ":" in value:
        if "%" in value:
            # A scope id (fe80::1%eth0) would put a % token into ssh_config.
            raise TunnelError(field_name, f"{value!r}: IPv6 scope ids are not supported")
        try:
            return str(ipaddress.IPv6Address(value))
        except ValueError:
            raise TunnelError(field_name, f"{value!r} is not a valid IPv6 address") from None
    if not HOST_RE.fullmatch(value):
        raise TunnelError(field_name, f"{value!r} is not a valid host name or address")
    return value


def _split_spec(spec: str, field_name: str) -> list[str]:
    """Split an ssh forward spec on ':' while keeping bracketed IPv6 addresses whole."""
    if not isinstance(spec, str) or not spec or any(ch.isspace() for ch in spec):
        raise TunnelError(field_name, f"{spec!r} is not a forward specification")
    parts = []
    # A small scanner is clearer than one regular expression for "[v6]:port:host:port" shapes.
    token, i = "", 0
    while i < len(spec):
        char = spec[i]
        if char == "[":
            end = spec.find("]", i)
            if end < 0 or token:
                raise TunnelError(field_name, f"{spec!r} has an unclosed '['")
            token = spec[i + 1:end]
            if not token or (end + 1 < len(spec) and spec[end + 1] != ":"):
                raise TunnelError(field_name, f"{spec!r} has a malformed bracketed address")
            i = end + 1
            continue
        if char == "]":
            raise TunnelError(field_name, f"{spec!r} has an unmatched ']'")
        if char == ":":
            parts.append(token)
            token = ""
        else:
            token += char
        i += 1
    parts.append(token)
    return parts


def parse_forward(kind: str, value, field_name: str) -> Forward:
    """Parse one forward given as ssh's -L/-R/-D syntax or as a dict."""
    if isinstance(value, dict):
        unknown = set(value) - {"bind_address", "port", "host", "host_port"}
        if unknown:
            raise TunnelError(field_name, f"unknown keys {sorted(unknown)}")
        bind = value.get("bind_address")
        port = value.get("port")
        host = value.get("host")
        host_port = value.get("host_port")
        if port is None:
            raise TunnelError(field_name, "port is required")
    else:
        parts = _split_spec(value, field_name)
        if kind == "dynamic":
            if len(parts) not in (1, 2):
                raise TunnelError(field_name, f"{value!r}: expected [bind_address:]port")
            bind, port = (None, parts[0]) if len(parts) == 1 else parts
            host = host_port = None
        else:
            if len(parts) not in (3, 4):
                raise TunnelError(field_name, f"{value!r}: expected [bind_address:]port:host:hostport")
            bind, port, host, host_port = ([None] + parts) if len(parts) == 3 else parts
    bind = check_host(bind, f"{field_name}.bind_address") if bind not in (None, "") else None
    port_number = check_port(port, f"{field_name}.port")
    if kind == "dynamic":
        if host is not None or host_port is not None:
            raise TunnelError(field_name, "a dynamic forward has no host or host_port")
        return Forward(kind, bind, port_number)
    if host in (None, "") or host_port in (None, ""):
        raise TunnelError(field_name, "host and host_port are required")
    return Forward(kind, bind, port_number, check_host(host, f"{field_name}.host"),
                   check_port(host_port, f"{field_name}.host_port"))


def parse_hop(value, field_name: str) -> Hop:
    if not isinstance(value, str):
        raise TunnelError(field_name, f"expected [user@]host[:port], got {value!r}")
    user, dummy, rest = value.rpartition("@")
    if rest.startswith("["):
        host, dummy, port = rest[1:].partition("]")
        port = port[1:] if port.startswith(":") else (port or "22")
    elif rest.count(":") == 1:
        host, port = rest.split(":")
    else:
        host, port = rest, "22"
    if user and not USER_RE.fullmatch(user):
        raise TunnelError(field_name, f"{user!r} is not a valid user name")
    return Hop(user or None, check_host(host, field_name), check_port(port, field_name))


def parse_proxy(value, field_name: str = "proxy") -> Proxy | None:
    if not value:
        return None
    if not isinstance(value, dict):
        raise TunnelError(field_name, "expected a dict with type, host and port")
    unknown = set(value) - {"type", "host", "port", "username", "password"}
    if unknown:
        raise TunnelError(field_name, f"unknown keys {sorted(unknown)}")
    proxy_type = value.get("type", "http")
    if proxy_type not in ("http", "socks5"):
        raise TunnelError(f"{field_name}.type", f"must be http or socks5, got {proxy_type!r}")
    username, password = value.get("username"), value.get("password")
    if username is not None and (not isinstance(username, str) or not re.fullmatch(r"[^\s:]{1,128}", username)):
        raise TunnelError(f"{field_name}.username", "must be 1-128 characters without blanks or ':'")
    if password is not None and (not isinstance(password, str) or "\n" in password or "\r" in password):
        raise TunnelError(f"{field_name}.password", "must be a string without line breaks")
    if bool(username) != bool(password):
        raise TunnelError(field_name, "username and password go together")
    return Proxy(proxy_type, check_host(value.get("host"), f"{field_name}.host"),
                 check_port(value.get("port"), f"{field_name}.port"), username, password)


def parse_tunnel(params: dict) -> Tunnel:
    """Validate module parameters and return the Tunnel they declare."""
    name = params.get("name")
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise TunnelError("name", f"{name!r} must match [a-z0-9][a-z0-9_-]* (at most 63 characters)")
    for key in ("user", "run_as"):
        if not isinstance(params.get(key), str) or not USER_RE.fullmatch(params[key]):
            raise TunnelError(key, f"{params.get(key)!r} is not a valid user name")
    identity_file = params.get("identity_file") or f"/etc/netreach/tunnels/{name}/id_ed25519"
    if not PATH_RE.fullmatch(identity_file) or "/../" in identity_file:
        raise TunnelError("identity_file", f"{identity_file!r} must be an absolute path of plain characters")
    known_hosts = []
    for index, line in enumerate(params.get("known_hosts") or []):
        if not isinstance(line, str) or not KNOWN_HOSTS_RE.fullmatch(line.strip()):
            raise TunnelError(f"known_hosts[{index}]", "expected a known_hosts line: 'host keytype base64key'")
        known_hosts.append(line.strip())
    forwards = []
    for kind, key in (("local", "local_forwards"), ("remote", "remote_forwards"), ("dynamic", "dynamic_forwards")):
        for index, value in enumerate(params.get(key) or []):
            forwards.append(parse_forward(kind, value, f"{key}[{index}]"))
    if not forwards:
        raise TunnelError("local_forwards", "a tunnel needs at least one local, remote or dynamic forward")
    for index, fwd in enumerate(forwards):
        for earlier in forwards[:index]:
            if (earlier.kind == "remote") == (fwd.kind == "remote") and listens_overlap(earlier.listen, fwd.listen):
                raise TunnelError(f"{fwd.kind}_forwards", f"{fwd.listen} overlaps {earlier.listen}: bound twice")
    numbers = {}
    for key, low in (("keepalive_interval", 1), ("keepalive_count_max", 1), ("connect_timeout", 1),
                     ("restart_delay", 1), ("restart_max_delay", 1)):
        value = params.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= 3600:
            raise TunnelError(key, f"must be a whole number from {low} to 3600, got {value!r}")
        numbers[key] = value
    if numbers["restart_max_delay"] < numbers["restart_delay"]:
        raise TunnelError("restart_max_delay", "must not be less than restart_delay")
    engine = params.get("engine", "ssh")
    if engine not in ("ssh", "autossh"):
        raise TunnelError("engine", f"must be ssh or autossh, got {engine!r}")
    return Tunnel(
        name=name,
        server=check_host(params.get("server"), "server"),
        port=check_port(params.get("port", 22), "port"),
        user=params["user"],
        identity_file=identity_file,
        known_hosts=tuple(known_hosts),
        jump_hosts=tuple(parse_hop(hop, f"jump_hosts[{i}]") for i, hop in enumerate(params.get("jump_hosts") or [])),
        proxy=parse_proxy(params.get("proxy")),
        forwards=tuple(forwards),
        engine=engine,
        run_as=params["run_as"],
        **numbers,
    )


def _common_options(tunnel: Tunnel) -> list[str]:
    return [
        f"User {tunnel.user}",
        f"IdentityFile {tunnel.identity_file}",
        "IdentitiesOnly yes",
        f"UserKnownHostsFile {tunnel.known_hosts_path}",
        "GlobalKnownHostsFile /dev/null",
        "StrictHostKeyChecking yes",
        "UpdateHostKeys no",
        "BatchMode yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        f"ConnectTimeout {tunnel.connect_timeout}",
        f"ServerAliveInterval {tunnel.keepalive_interval}",
        f"ServerAliveCountMax {tunnel.keepalive_count_max}",
        "ControlMaster no",
        "ControlPath none",
        "ForwardAgent no",
        "ForwardX11 no",
    ]


def proxy_command(tunnel: Tunnel) -> str:
    proxy = tunnel.proxy
    args = ["/usr/bin/python3", "/usr/local/lib/netreach/proxy-connect", "--type", proxy.type,
            "--proxy", f"{bracket(proxy.host)}:{proxy.port}"]
    if proxy.username:
        args += ["--auth-file", tunnel.proxy_auth_path]
    return " ".join(args) + " %h %p"


def render_ssh_config(tunnel: Tunnel) -> str:
    """The tunnel's own ssh_config: every hop pinned and non-interactive, the first hop via the proxy."""
    lines = [f"# Managed by netreach.tunnels.ssh_tunnel for tunnel {tunnel.name}; local changes are overwritten."]
    hop_aliases = [f"netreach-{tunnel.name}-hop{index}" for index in range(len(tunnel.jump_hosts))]
    for index, hop in enumerate(tunnel.jump_hosts):
        lines += ["", f"Host {hop_aliases[index]}", f"    HostName {hop.host}", f"    Port {hop.port}"]
        options = _common_options(tunnel)
        if hop.user:
            options[0] = f"User {hop.user}"
        lines += [f"    {option}" for option in options]
        if index == 0 and tunnel.proxy:
            lines.append(f"    ProxyCommand {proxy_command(tunnel)}")
        elif index > 0:
            lines.append(f"    ProxyJump {hop_aliases[index - 1]}")
    lines += ["", f"Host netreach-{tunnel.name}", f"    HostName {tunnel.server}", f"    Port {tunnel.port}"]
    lines += [f"    {option}" for option in _common_options(tunnel)]
    lines += ["    ExitOnForwardFailure yes", "    SessionType none", "    RequestTTY no"]
    if hop_aliases:
        lines.append(f"    ProxyJump {hop_aliases[-1]}")
    elif tunnel.proxy:
        lines.append(f"    ProxyCommand {proxy_command(tunnel)}")
    for fwd in tunnel.forwards:
        if fwd.kind == "local":
            lines.append(f"    LocalForward {fwd.listen} {fwd.target}")
        elif fwd.kind == "remote":
            lines.append(f"    RemoteForward {fwd.listen} {fwd.target}")
        else:
            lines.append(f"    DynamicForward {fwd.listen}")
    return "\n".join(lines) + "\n"


def render_known_hosts(tunnel: Tunnel) -> str:
    return "".join(f"{line}\n" for line in tunnel.known_hosts)


def ssh_command(tunnel: Tunnel) -> list[str]:
    """The command the unit runs (no secrets in it: the proxy password stays in a 0600 file)."""
    base = ["-F", tunnel.ssh_config_path, "-N", f"netreach-{tunnel.name}"]
    if tunnel.engine == "autossh":
        return ["/usr/bin/autossh", "-M", "0"] + base
    return ["/usr/bin/ssh"] + base


def render_unit(tunnel: Tunnel) -> str:
    """The systemd unit of one tunnel: never gives up, backs off, and runs with as little as it needs."""
    # systemd >= 254 has RestartSteps/RestartMaxDelaySec, but its restart counter only resets on a manual start:
    # a tunnel that reconnected a few times over weeks would wait restart_max_delay after every later drop.
    # The backoff helper resets after a session that outlived a connection attempt (connect_timeout + 5 s): the first retry
    # after a healthy session is immediate, quick failures in a row double the wait, with jitter.
    restart = [
        "RestartSec=100ms",
        f"ExecStartPre=/bin/sh /usr/local/lib/netreach/tunnel-backoff start {tunnel.restart_delay} "
        f"{tunnel.restart_max_delay}",
        f"ExecStopPost=/bin/sh /usr/local/lib/netreach/tunnel-backoff stop {tunnel.connect_timeout + 5}",
        "RuntimeDirectory=netreach-tunnel/%i",
        "RuntimeDirectoryPreserve=restart",
    ]
    environment = []
    if tunnel.engine == "autossh":
        environment = ["Environment=AUTOSSH_GATETIME=0", f"Environment=AUTOSSH_POLL={min(60, tunnel.keepalive_interval * 6)}"]
    capabilities = "CAP_NET_BIND_SERVICE" if tunnel.needs_low_port else ""
    lines = [
        "# Managed by netreach.tunnels.ssh_tunnel; local changes are overwritten.",
        "[Unit]",
        f"Description=netreach SSH tunnel {tunnel.name} to {tunnel.server}",
        "Wants=network-online.target",
        "After=network-online.target",
        "StartLimitIntervalSec=0",
        "",
        "[Service]",
        "Type=simple",
        f"User={tunnel.run_as}",
        *environment,
        f"ExecStart={shlex.join(ssh_command(tunnel))}",
        "Restart=always",
        *restart,
        "TimeoutStartSec=infinity",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "ProtectClock=yes",
        "ProtectHostname=yes",
        "ProtectProc=invisible",
        "ProcSubset=pid",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "RestrictNamespaces=yes",
        "RestrictRealtime=yes",
        "RestrictSUIDSGID=yes",
        "LockPersonality=yes",
        "MemoryDenyWriteExecute=yes",
        "RemoveIPC=yes",
        "UMask=0077",
        "SystemCallArchitectures=native",
        "SystemCallFilter=@system-service",
        "SystemCallFilter=~@privileged @resources",
        f"CapabilityBoundingSet={capabilities}",
        f"AmbientCapabilities={capabilities}",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
    ]
    return "\n".join(lines) + "\n"
