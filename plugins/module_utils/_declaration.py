# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: the declaration layer every model shares. Not a public API.
"""One error type naming the bad field, one validator per kind of value, and the one proxy model."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

# Host names that may stand in any output format: no blanks, quotes, separators or ssh_config tokens (%).
HOSTNAME_RE = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9._-]{0,252})$")
USER_RE = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")
PROXY_TYPES = ("http", "socks5", "socks4")
# A Unix socket path that stands as it is in ssh_config, authorized_keys and sshd_config: no blanks, quotes,
# ':' (ssh's forward separator), '%' or '$' (ssh_config expands tokens and variables in socket paths).
SOCKET_PATH_RE = re.compile(r"^/[A-Za-z0-9._/@+-]+$")
# sun_path holds 108 bytes, the terminating NUL among them.
SOCKET_PATH_MAX = 107

PROXY_AUTH = ("basic", "ntlm")
# Where client_proxy's local NTLM hop listens on loopback unless told otherwise (_proxy_hop).
DEFAULT_HOP_PORT = 3130


class DeclarationError(ValueError):
    """A bad declaration: FIELD names the offending parameter, MESSAGE says what is wrong with it."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


def bracket(host: str | None) -> str:
    """HOST as it stands before ':port': an IPv6 address in brackets."""
    return f"[{host}]" if host and ":" in host else (host or "")


def check_text(value, field_name: str, what: str = "a string") -> str:
    """Free text (user names, passwords): anything printable; a control character never reaches a file."""
    if not isinstance(value, str):
        raise DeclarationError(field_name, f"must be {what}, got {type(value).__name__}")
    if any(ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0 or char in "\u2028\u2029" for char in value):
        raise DeclarationError(field_name, "must not contain control characters (line breaks, tabs, NUL)")
    return value


def check_name(value, field_name: str, pattern: re.Pattern, what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise DeclarationError(field_name, f"{value!r} is not {what}")
    return value


def check_user(value, field_name: str) -> str:
    return check_name(value, field_name, USER_RE, "a valid user name ([a-z_][a-z0-9_.-]*, at most 32)")


def check_port(value, field_name: str) -> int:
    """A TCP/UDP port: an int or a string of ASCII digits, 1 to 65535 (never a bool)."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 65535:
        raise DeclarationError(field_name, f"port must be a number from 1 to 65535, got {value!r}")
    return int(text)


def check_socket_path(value, field_name: str) -> str:
    """A Unix socket path: absolute, normalised (no '.', '..', '//' or trailing '/'), plain characters, and short
    enough for sun_path."""
    if not isinstance(value, str) or not value.startswith("/"):
        raise DeclarationError(field_name, f"{value!r} is not an absolute socket path")
    if not SOCKET_PATH_RE.fullmatch(value):
        raise DeclarationError(field_name, f"{value!r} must consist of letters, digits and ._/@+- only (no spaces, "
                                           "control characters, ':', '%' or '$')")
    if any(part in ("", ".", "..") for part in value[1:].split("/")):
        raise DeclarationError(field_name, f"{value!r} is not normalised: no '.', '..', '//' or trailing '/'")
    if len(value.encode()) > SOCKET_PATH_MAX:
        raise DeclarationError(field_name, f"{value!r} is {len(value.encode())} bytes; a Unix socket path holds at "
                                           f"most {SOCKET_PATH_MAX}")
    return value


def check_address(value, field_name: str, brackets: bool = False) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An IPv4 or IPv6 address (BRACKETS: "[v6]" accepted too); scoped IPv6 addresses are refused."""
    text = value[1:-1] if brackets and isinstance(value, str) and value.startswith("[") and value.endswith("]") \
        else value
    if not isinstance(text, str) or not text or text != text.strip() or "%" in text:
        raise DeclarationError(field_name, f"{value!r} is not an IP address (without a scope id)")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise DeclarationError(field_name, f"{value!r} is not an IP address") from None


def check_host(value, field_name: str, brackets: bool = False) -> str:
    """A DNS name, IPv4 or IPv6 address (BRACKETS: "[v6]" accepted), in its plain form.

    A name whose labels are all digits (1.2.3.4.5) is neither an address nor a host name: refused."""
    if not isinstance(value, str) or not value:
        raise DeclarationError(field_name, f"expected a host name or address, got {value!r}")
    if ":" in value or (brackets and value.startswith("[")):
        return str(check_address(value, field_name, brackets=brackets))
    if not HOSTNAME_RE.fullmatch(value):
        raise DeclarationError(field_name, f"{value!r} is not a valid host name or address")
    labels = value.rstrip(".").split(".")
    if all(label.isdigit() for label in labels):
        try:
            return str(ipaddress.IPv4Address(value))
        except ValueError:
            raise DeclarationError(field_name, f"{value!r} is neither an IPv4 address nor a host name") from None
    if any(not label for label in labels) or any(len(label) > 63 for label in labels):
        raise DeclarationError(field_name, f"{value!r} is not a valid host name (empty or over-long label)")
    return value


def check_network(value, field_name: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A network in CIDR notation with no host bits set."""
    if not isinstance(value, str) or not value or value != value.strip():
        raise DeclarationError(field_name, f"{value!r} is not a network in CIDR notation")
    try:
        return ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise DeclarationError(field_name, f"{value!r} is not a network in CIDR notation ({exc})") from None


def check_keys(value, allowed: set[str], field_name: str, required: set[str] = frozenset()) -> dict:
    if not isinstance(value, dict):
        raise DeclarationError(field_name, f"expected a dict, got {type(value).__name__}")
    unknown = set(value) - allowed
    if unknown:
        raise DeclarationError(field_name, f"unknown keys {sorted(unknown)}")
    for key in sorted(required):
        if value.get(key) in (None, ""):
            raise DeclarationError(f"{field_name}.{key}", "is required")
    return value


# --- the proxy on the way: one model for tunnels and sessions -------------------------------------------


@dataclass(frozen=True)
class Proxy:
    type: str  # one of PROXY_TYPES
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def secrets(self) -> list[str]:
        return [self.password] if self.password else []


def parse_proxy(value, field_name: str = "proxy", types: tuple[str, ...] = PROXY_TYPES) -> Proxy | None:
    """A proxy dict (type, host, port, username, password, auth, domain, hop_port). User names may be DOMAIN\\user
    and hold anything printable but ':' (RFC 7617: it ends the user-id); passwords anything printable.

    An NTLM proxy (auth ntlm) is reached through the local hop client_proxy runs (see _proxy_hop): the result is
    that hop, http://127.0.0.1:HOP_PORT without credentials; the password goes nowhere but the hop's file."""
    if not value:
        return None
    if isinstance(value, str):
        raise DeclarationError(field_name, "expected a dict with type, host and port, not a URL string")
    raw = check_keys(value, {"type", "host", "port", "username", "password", "auth", "domain", "hop_port"},
                     field_name, {"host", "port"})
    proxy_type = raw.get("type") or "http"
    if proxy_type not in types:
        raise DeclarationError(f"{field_name}.type", f"must be one of {', '.join(types)}, got {proxy_type!r}")
    username, password = raw.get("username") or None, raw.get("password") or None
    if username is not None:
        check_text(username, f"{field_name}.username")
        if ":" in username or len(username) > 128:
            raise DeclarationError(f"{field_name}.username", "must be at most 128 characters without ':'")
    if password is not None:
        check_text(password, f"{field_name}.password")
    if password and not username:
        raise DeclarationError(f"{field_name}.password", f"a password needs {field_name}.username")
    auth = raw.get("auth") or "basic"
    if auth not in PROXY_AUTH:
        raise DeclarationError(f"{field_name}.auth", f"must be one of {', '.join(PROXY_AUTH)}, got {auth!r}")
    if raw.get("domain") is not None:
        check_text(raw["domain"], f"{field_name}.domain")
    if auth == "ntlm":
        return ntlm_hop(raw, proxy_type, username, field_name)
    if raw.get("domain"):
        raise DeclarationError(f"{field_name}.domain", "only an NTLM proxy (auth: ntlm) takes a domain")
    return Proxy(proxy_type, check_host(raw.get("host"), f"{field_name}.host", brackets=True),
                 check_port(raw.get("port"), f"{field_name}.port"), username, password)


def check_hop_value(value: str, field_name: str) -> str:
    """A value of cntlm's configuration: its reader cuts at "#" and trims blanks (the password is never one)."""
    check_text(value, field_name)
    if not value or value != value.strip() or "#" in value:
        raise DeclarationError(field_name, f"{value!r} cannot stand in cntlm's configuration (blank at an end or '#')")
    return value


def ntlm_identity(username: str | None, domain: str | None, field_prefix: str = "") -> tuple[str, str]:
    """(user, domain) of an NTLM login: DOMAIN from its own field or from a DOMAIN\\user name; a domain given twice
    must agree. NTLM has no login without a domain: a bare user name and no domain is refused naming the domain."""
    if not username:
        raise DeclarationError(f"{field_prefix}username", "NTLM authentication needs the user name")
    given_domain, sep, user = username.rpartition("\\")
    if domain and sep and given_domain.lower() != domain.lower():
        raise DeclarationError(f"{field_prefix}domain", f"{domain!r} differs from the domain in the user name "
                                                        f"({given_domain!r})")
    domain = domain or given_domain
    if not domain:
        raise DeclarationError(f"{field_prefix}domain", "NTLM authentication needs the user's domain: give "
                                                        f"{field_prefix}domain or the user name as DOMAIN\\user")
    return check_hop_value(user, f"{field_prefix}username"), check_hop_value(domain, f"{field_prefix}domain")


def ntlm_hop(raw: dict, proxy_type: str, username: str | None, field_name: str) -> Proxy:
    """The local NTLM hop standing in for the declared proxy (validated in full: host, port, domain)."""
    if proxy_type != "http":
        raise DeclarationError(f"{field_name}.auth", "NTLM authentication is for an http proxy")
    check_host(raw.get("host"), f"{field_name}.host", brackets=True)
    check_port(raw.get("port"), f"{field_name}.port")
    ntlm_identity(username, raw.get("domain"), f"{field_name}.")
    hop_port = check_port(DEFAULT_HOP_PORT if raw.get("hop_port") is None else raw["hop_port"], f"{field_name}.hop_port")
    return Proxy("http", "127.0.0.1", hop_port)


def proxy_argument_spec(types: tuple[str, ...] = PROXY_TYPES) -> dict:
    """The proxy option's argument spec, written once (documented by the doc fragment netreach.tunnels.proxy)."""
    return dict(type="dict", options=dict(
        type=dict(type="str", default="http", choices=list(types)),
        host=dict(type="str", required=True),
        port=dict(type="int", required=True),
        username=dict(type="str"),
        password=dict(type="str", no_log=True),
        auth=dict(type="str", default="basic", choices=list(PROXY_AUTH)),
        domain=dict(type="str"),
        hop_port=dict(type="int", default=DEFAULT_HOP_PORT),
    ))
