# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: the client session model. Not a public API; it may change at any time.
#
# parse_session() turns module parameters into a Session (or raises DeclarationError naming the bad field); the
# render_*() functions and the INI/ssh_config merges are pure: text in, text out. Nothing here touches the host.
"""One SSH session spec rendered for OpenSSH, PuTTY (Linux files and a Windows .reg) and WinSCP."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ansible_collections.netreach.tunnels.plugins.module_utils import _blocks
from ansible_collections.netreach.tunnels.plugins.module_utils._declaration import (
    PROXY_TYPES,
    DeclarationError,
    Proxy,
    bracket,
    check_host,
    check_name,
    check_port,
    parse_proxy,
)
from ansible_collections.netreach.tunnels.plugins.module_utils._session_hostkeys import (
    PUTTY_HOSTKEYS_REG_KEY,
    HostKey,
    keys_for,
    parse_known_hosts,
    putty_host_keys,
    winscp_host_key,
)
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel import Forward, parse_forward

FORMATS = ("openssh", "putty", "winscp")
SESSION_PROXY_TYPES = PROXY_TYPES  # http, socks5 and socks4: every session format speaks all three
# Saved-session names: printable ASCII; each format escapes what it cannot hold.
# "[", "]" and "=" would end an INI section name or a .reg key line, so they are refused for every format.
NAME_RE = re.compile(r"^[\x21-\x3c\x3e-\x5a\x5c\x5e-\x7e](?:[\x20-\x3c\x3e-\x5a\x5c\x5e-\x7e]{0,126}[\x21-\x3c\x3e-\x5a\x5c\x5e-\x7e])?$")
# An OpenSSH Host alias stands unquoted in ssh_config and on the command line: no blanks or pattern characters.
OPENSSH_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
USER_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}$")
PPK_PATH_RE = re.compile(r"^[A-Za-z0-9._/~:\\ -]+$")

# PuTTY's CONF_proxy_type numbering (settings "ProxyMethod"), shared by WinSCP's raw settings.
PROXY_METHOD = {"none": 0, "socks4": 1, "socks5": 2, "http": 3, "ssh": 6}
NC_PROTOCOL = {"http": "connect", "socks5": "5", "socks4": "4"}
PUTTY_REG_KEY = r"HKEY_CURRENT_USER\Software\SimonTatham\PuTTY\Sessions"
WINSCP_SECTION_PREFIX = "Sessions\\"
OPENSSH_BEGIN = "# BEGIN netreach.tunnels client_session "
OPENSSH_END = "# END netreach.tunnels client_session "


# The one declaration error of the collection; the old name stays for the tests and callers that use it.
SessionError = DeclarationError


@dataclass(frozen=True)
class SessionTunnel:
    host: str
    port: int
    user: str | None


@dataclass(frozen=True)
class Session:
    name: str
    host: str
    port: int
    user: str | None
    proxy: Proxy | None
    tunnel: SessionTunnel | None
    forwards: tuple[Forward, ...]
    identity_file: str | None = None
    known_hosts: tuple[HostKey, ...] = ()

    def hops(self) -> list[tuple[str, int]]:
        """(host, port) of every server the session logs in to: the tunnel host first."""
        return ([(self.tunnel.host, self.tunnel.port)] if self.tunnel else []) + [(self.host, self.port)]

    def pinned(self, host: str, port: int) -> list[HostKey]:
        return keys_for(self.known_hosts, host, port)

    @property
    def secrets(self) -> list[str]:
        return self.proxy.secrets if self.proxy else []


def _forward(kind: str, spec, field_name: str) -> Forward:
    try:
        return parse_forward(kind, spec, field_name)
    except ValueError as exc:  # _tunnel's TunnelError until it is a DeclarationError: the same field and message
        if isinstance(exc, DeclarationError) or not hasattr(exc, "field"):
            raise
        raise DeclarationError(exc.field, exc.message) from None


def parse_name(name, fmt: str) -> str:
    """The session name, checked for FORMAT (it becomes a Host alias, a file name or a section name)."""
    if fmt == "openssh":
        return check_name(name, "name", OPENSSH_NAME_RE, "a session name (OpenSSH: letters, digits, '.', '_', '-')")
    check_name(name, "name", NAME_RE, "a session name of printable ASCII characters other than [ ] =")
    # "/" separates WinSCP's site folders; a name that reads as a path out of them ("..", "/x", "a//b") is
    # refused in every format, though PuTTY would escape it into a file name of its own.
    if any(part.strip() in ("", ".", "..") for part in name.split("/")):
        raise DeclarationError("name", f"{name!r} holds an empty, '.' or '..' folder part (or a leading or "
                                       f"trailing '/')")
    return name


def _user(value, field_name: str) -> str | None:
    return check_name(value, field_name, USER_RE, "a user name") if value else None


def parse_session(params: dict, fmt: str) -> Session:
    if fmt not in FORMATS:
        raise DeclarationError("format", f"{fmt!r} is not one of {', '.join(FORMATS)}")
    name = parse_name(params.get("name"), fmt)
    host = check_host(params.get("host"), "host")
    port = check_port(params.get("port", 22), "port")
    user = _user(params.get("user"), "user")
    proxy = parse_proxy(params.get("proxy"), "proxy", SESSION_PROXY_TYPES)
    tunnel = None
    if params.get("tunnel"):
        raw = params["tunnel"]
        tunnel = SessionTunnel(check_host(raw.get("host"), "tunnel.host"), check_port(raw.get("port") or 22, "tunnel.port"),
                               _user(raw.get("user"), "tunnel.user"))
    forwards = [_forward(kind, spec, f"{kind}_forwards[{index}]") for kind in ("local", "remote", "dynamic")
                for index, spec in enumerate(params.get(f"{kind}_forwards") or [])]
    identity = params.get("identity_file")
    if identity is not None:
        check_name(identity, "identity_file", PPK_PATH_RE, "a file path")
    if identity is not None and fmt == "openssh" and re.search(r"[\s\\\"']", identity):
        raise DeclarationError("identity_file", "an OpenSSH IdentityFile path must not hold blanks, quotes or backslashes")
    session = Session(name, host, port, user, proxy, tunnel, tuple(forwards), identity,
                      parse_known_hosts(params.get("known_hosts") or []))
    # PuTTY and WinSCP pin by host and port: every server the session logs in to needs a line of its own.
    for hop_host, hop_port in session.hops() if session.known_hosts and fmt != "openssh" else []:
        if not session.pinned(hop_host, hop_port):
            shown = hop_host if hop_port == 22 else f"[{hop_host}]:{hop_port}"
            raise DeclarationError("known_hosts", f"no line names {shown}, which the session logs in to")
    if fmt == "openssh" and proxy and proxy.password:
        raise DeclarationError("proxy.password", "OpenSSH's ProxyCommand (nc) cannot send a proxy password; use a "
                               "proxy without authentication or format putty")
    if fmt == "putty" and proxy and tunnel:
        raise DeclarationError("tunnel", "a PuTTY session has one proxy: either proxy or tunnel (an SSH proxy), not both")
    return session


# --- OpenSSH ------------------------------------------------------------------------------------------------

def nc_command(proxy: Proxy) -> str:
    return f"nc -X {NC_PROTOCOL[proxy.type]} -x {bracket(proxy.host)}:{proxy.port} %h %p"


def jump_alias(session: Session) -> str:
    return f"{session.name}--tunnel"


def pinning_lines(known_hosts_path: str | None) -> list[str]:
    """The options that make ssh trust only the session's known_hosts file."""
    if not known_hosts_path:
        return []
    return [f"    UserKnownHostsFile {known_hosts_path}", "    GlobalKnownHostsFile /dev/null",
            "    StrictHostKeyChecking yes", "    UpdateHostKeys no"]


def render_openssh(session: Session, known_hosts_path: str | None = None) -> str:
    """Host blocks for `ssh NAME`: the tunnel host (if any) as a ProxyJump hop of its own, so that the proxy (if
    any) carries the first hop only. With KNOWN_HOSTS_PATH, each block trusts only the keys in that file."""
    pinning = pinning_lines(known_hosts_path)
    lines = [f"{OPENSSH_BEGIN}{session.name}"]
    if session.tunnel:
        lines += [f"Host {jump_alias(session)}", f"    HostName {session.tunnel.host}", f"    Port {session.tunnel.port}"]
        if session.tunnel.user:
            lines.append(f"    User {session.tunnel.user}")
        if session.proxy:
            lines.append(f"    ProxyCommand {nc_command(session.proxy)}")
        if session.identity_file:
            lines.append(f"    IdentityFile {session.identity_file}")
        lines += pinning
    lines += [f"Host {session.name}", f"    HostName {session.host}", f"    Port {session.port}"]
    if session.user:
        lines.append(f"    User {session.user}")
    if session.tunnel:
        lines.append(f"    ProxyJump {jump_alias(session)}")
    elif session.proxy:
        lines.append(f"    ProxyCommand {nc_command(session.proxy)}")
    if session.identity_file:
        lines.append(f"    IdentityFile {session.identity_file}")
    lines += pinning
    keyword = {"local": "LocalForward", "remote": "RemoteForward", "dynamic": "DynamicForward"}
    for forward in session.forwards:
        target = f" {forward.target}" if forward.kind != "dynamic" else ""
        lines.append(f"    {keyword[forward.kind]} {forward.listen}{target}")
    lines.append(f"{OPENSSH_END}{session.name}")
    return "\n".join(lines) + "\n"


INCLUDE_BEGIN = "# BEGIN netreach.tunnels client_session include"
INCLUDE_END = "# END netreach.tunnels client_session include"


def merge_include(text: str | None, pattern: str | None) -> str:
    """~/.ssh/config with our Include line first (None: without it). Include must precede every Host block
    to apply to all hosts."""
    without, _position = _blocks.cut_block(text or "", INCLUDE_BEGIN, INCLUDE_END)
    if pattern is None:
        return without
    return f"{INCLUDE_BEGIN}\nInclude {pattern}\n{INCLUDE_END}\n" + without


# --- PuTTY ---------------------------------------------------------------------------------------------------

def putty_file_name(name: str) -> str:
    """PuTTY's Unix session file name: every byte but letters, digits and + - . @ _ becomes %XX."""
    return "".join(chr(byte) if chr(byte).isascii() and (chr(byte).isalnum() or chr(byte) in "+-.@_")
                   else f"%{byte:02X}" for byte in name.encode("utf-8"))


def registry_escape(name: str) -> str:
    """PuTTY's (and WinSCP's) registry key escaping: blank, \\ * ? %, control and non-ASCII bytes, and a leading
    dot become %XX."""
    out = []
    for index, byte in enumerate(name.encode("utf-8")):
        char = chr(byte)
        if char in " \\*?%" or byte < 0x20 or byte > 0x7E or (char == "." and index == 0):
            out.append(f"%{byte:02X}")
        else:
            out.append(char)
    return "".join(out)


def putty_port_forwardings(session: Session) -> str:
    """PuTTY's PortForwardings: [4|6]{L|R|D}[bind:]port[=host:port], comma-separated. PuTTY's "auto" family
    binds IPv4 and IPv6 and fails where IPv6 is off, so listeners are IPv4 ("4") unless bound to an IPv6 address."""
    parts = []
    for forward in session.forwards:
        letter = {"local": "L", "remote": "R", "dynamic": "D"}[forward.kind]
        family = "6" if forward.bind_address and ":" in forward.bind_address else "4"
        parts.append(f"{family}{letter}{forward.listen}" + (f"={forward.target}" if forward.kind != "dynamic" else ""))
    return ",".join(parts)


def putty_settings(session: Session) -> list[tuple[str, str | int]]:
    """PuTTY's saved-session settings, in PuTTY's own key names and value types (int or str)."""
    settings: list[tuple[str, str | int]] = [("HostName", session.host), ("PortNumber", session.port),
                                             ("Protocol", "ssh")]
    if session.user:
        settings.append(("UserName", session.user))
    if session.proxy:
        settings += [("ProxyMethod", PROXY_METHOD[session.proxy.type]), ("ProxyHost", session.proxy.host),
                     ("ProxyPort", session.proxy.port), ("ProxyUsername", session.proxy.username or ""),
                     ("ProxyPassword", session.proxy.password or "")]
    elif session.tunnel:
        settings += [("ProxyMethod", PROXY_METHOD["ssh"]), ("ProxyHost", session.tunnel.host),
                     ("ProxyPort", session.tunnel.port), ("ProxyUsername", session.tunnel.user or "")]
    else:
        settings.append(("ProxyMethod", PROXY_METHOD["none"]))
    if session.identity_file:
        settings.append(("PublicKeyFile", session.identity_file))
    settings.append(("PortForwardings", putty_port_forwardings(session)))
    return settings


def render_putty(session: Session) -> str:
    """The Linux session file (~/.putty/sessions/NAME): key=value lines."""
    return "".join(f"{key}={value}\n" for key, value in putty_settings(session))


def render_putty_reg(session: Session) -> str:
    """The same session as a Windows registry export (regedit's text format, CRLF line ends)."""
    lines = ["Windows Registry Editor Version 5.00", "", f"[{PUTTY_REG_KEY}\\{registry_escape(session.name)}]"]
    for key, value in putty_settings(session):
        if isinstance(value, int):
            lines.append(f'"{key}"=dword:{value:08x}')
        else:
            lines.append(f'"{key}"="{reg_string(value)}"')
    host_keys = putty_session_host_keys(session)
    if host_keys:
        lines += ["", f"[{PUTTY_HOSTKEYS_REG_KEY}]"]
        lines += [f'"{reg_string(registry_escape(entry_id))}"="{reg_string(value)}"' for entry_id, value in host_keys]
    return "\r\n".join(lines) + "\r\n"


def putty_session_host_keys(session: Session) -> list[tuple[str, str]]:
    """PuTTY's (type@port:host, key) entries for the servers the session logs in to."""
    entries = []
    for host, port in session.hops():
        entries += putty_host_keys(session.pinned(host, port), host, port)
    return entries


def reg_string(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


# --- WinSCP --------------------------------------------------------------------------------------------------

def winscp_value(value: str) -> str:
    """WinSCP's INI value escaping (its MungeStr for values): registry escaping, but '*' stays as it is."""
    return registry_escape(value).replace("%2A", "*")


def winscp_section_name(session: Session) -> str:
    # "/" separates site folders in WinSCP and stays as it is.
    return WINSCP_SECTION_PREFIX + registry_escape(session.name)


def winscp_settings(session: Session, warnings: list[str]) -> list[tuple[str, str | int]]:
    """The documented raw site settings of WinSCP for this session (SFTP)."""
    settings: list[tuple[str, str | int]] = [("HostName", session.host), ("PortNumber", session.port)]
    if session.user:
        settings.append(("UserName", session.user))
    settings.append(("FSProtocol", 2))  # SFTP
    if session.proxy:
        settings += [("ProxyMethod", PROXY_METHOD[session.proxy.type]), ("ProxyHost", session.proxy.host),
                     ("ProxyPort", session.proxy.port)]
        if session.proxy.username:
            settings.append(("ProxyUsername", session.proxy.username))
        if session.proxy.password:
            warnings.append("proxy.password: WinSCP keeps passwords obfuscated; not written, WinSCP asks for it")
    if session.tunnel:
        settings += [("Tunnel", 1), ("TunnelHostName", session.tunnel.host), ("TunnelPortNumber", session.tunnel.port)]
        if session.tunnel.user:
            settings.append(("TunnelUserName", session.tunnel.user))
    if session.identity_file:
        settings.append(("PublicKeyFile", session.identity_file))
    if session.known_hosts:
        settings.append(("HostKey", winscp_host_key(session.pinned(session.host, session.port))))
        if session.tunnel:
            settings.append(("TunnelHostKey", winscp_host_key(session.pinned(session.tunnel.host, session.tunnel.port))))
    if session.forwards:
        warnings.append("local_forwards/remote_forwards/dynamic_forwards: WinSCP sessions have no port forwarding; "
                        "not written")
    return settings


def render_winscp_section(session: Session, warnings: list[str]) -> str:
    lines = [f"[{winscp_section_name(session)}]"]
    lines += [f"{key}={value if isinstance(value, int) else winscp_value(value)}"
              for key, value in winscp_settings(session, warnings)]
    return "\r\n".join(lines) + "\r\n"


def split_ini(text: str) -> list[tuple[str | None, str]]:
    """TEXT as (section name or None for the preamble, the section's exact text) in file order."""
    parts: list[tuple[str | None, str]] = [(None, "")]
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            parts.append((stripped[1:-1], line))
        else:
            name, body = parts[-1]
            parts[-1] = (name, body + line)
    return parts


def ini_newline(text: str | None) -> str:
    """The line end of an existing INI file (WinSCP writes CRLF; a file written on Linux may have LF)."""
    return "\n" if text and "\n" in text and "\r\n" not in text else "\r\n"


def merge_ini_section(text: str | None, section: str, new: str | None) -> str:
    """TEXT with section SECTION replaced by NEW (None: removed); every other section stays byte for byte."""
    if new is not None:
        new = new.replace("\r\n", ini_newline(text))
    parts = split_ini(text or "")
    out, placed = [], False
    for name, body in parts:
        if name is not None and name.lower() == section.lower():
            if new is not None and not placed:
                out.append(new)
                placed = True
            continue
        out.append(body)
    if new is not None and not placed:
        if out and out[-1] and not out[-1].endswith("\n"):
            out[-1] += ini_newline(text)
        out.append(new)
    return "".join(out)
