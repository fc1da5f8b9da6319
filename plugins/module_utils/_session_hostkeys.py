# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: a session's pinned host keys. Not a public API; it may change at any
# time.
#
# parse_known_hosts() checks known_hosts lines (as the tunnels take them) and raises DeclarationError naming the
# bad line; the render_*() functions give each client's own spelling of the same keys. Pure: nothing here touches
# the host.
"""Host keys of a session for OpenSSH (known_hosts), PuTTY (sshhostkeys, its .reg) and WinSCP (HostKey=)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
from dataclasses import dataclass

from ansible_collections.netreach.tunnels.plugins.module_utils import _blocks
from ansible_collections.netreach.tunnels.plugins.module_utils._declaration import DeclarationError

KEY_TYPES = ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521")
# A host field: comma-separated names, [name]:port, or one hashed entry (|1|salt|hash); no blanks or controls.
HOST_FIELD_RE = re.compile(r"^(\|1\|[A-Za-z0-9+/=]+\|[A-Za-z0-9+/=]+|[^\s,#@|!*?]+(,[^\s,#@|!*?]+)*)$")
COMMENT_RE = re.compile(r"^[^\x00-\x1f\x7f\x85\u2028\u2029]*$")
PUTTY_HOSTKEYS_BEGIN = "# BEGIN netreach.tunnels client_session "
PUTTY_HOSTKEYS_END = "# END netreach.tunnels client_session "
PUTTY_HOSTKEYS_REG_KEY = r"HKEY_CURRENT_USER\Software\SimonTatham\PuTTY\SshHostKeys"
# Ed25519's field prime and curve constant (RFC 8032), to recover the x coordinate PuTTY writes.
ED25519_P = 2 ** 255 - 19
ED25519_D = -121665 * pow(121666, ED25519_P - 2, ED25519_P) % ED25519_P


@dataclass(frozen=True)
class HostKey:
    hosts: str  # the known_hosts host field as given
    key_type: str
    key: str  # base64 of the key blob
    comment: str = ""

    @property
    def line(self) -> str:
        return " ".join(part for part in (self.hosts, self.key_type, self.key, self.comment) if part)

    @property
    def blob(self) -> bytes:
        return base64.b64decode(self.key)

    def names(self, host: str, port: int) -> bool:
        """Whether this line pins HOST:PORT (a literal name, [host]:port, or a hashed entry of either)."""
        wanted = host if port == 22 else f"[{host}]:{port}"
        if self.hosts.startswith("|1|"):
            _magic, _one, salt, digest = self.hosts.split("|")
            mac = hmac.new(base64.b64decode(salt), wanted.encode(), hashlib.sha1).digest()
            return hmac.compare_digest(base64.b64encode(mac).decode(), digest)
        return wanted in self.hosts.split(",")


def _strings(blob: bytes) -> list[bytes]:
    """The SSH wire strings (and mpints) of a public key blob."""
    out, at = [], 0
    while at < len(blob):
        if at + 4 > len(blob):
            raise ValueError("truncated")
        (length,) = struct.unpack(">I", blob[at:at + 4])
        if at + 4 + length > len(blob):
            raise ValueError("truncated")
        out.append(blob[at + 4:at + 4 + length])
        at += 4 + length
    return out


def parse_known_host(line, field: str) -> HostKey:
    if not isinstance(line, str):
        raise DeclarationError(field, f"expected a known_hosts line as text, got {type(line).__name__}")
    if any(char in line for char in "\r\n\x00"):
        raise DeclarationError(field, "a known_hosts line must not hold a line break or NUL")
    if line.startswith("@"):
        raise DeclarationError(field, "markers (@cert-authority, @revoked) are not host keys a session can pin")
    parts = line.split(" ", 3)
    if len(parts) < 3 or not HOST_FIELD_RE.match(parts[0]):
        raise DeclarationError(field, "expected a known_hosts line 'host[,host...] keytype base64key' naming its "
                                      "hosts exactly (no patterns)")
    hosts, key_type, key = parts[:3]
    comment = parts[3] if len(parts) > 3 else ""
    if key_type not in KEY_TYPES:
        raise DeclarationError(field, f"key type {key_type!r} is not one of {', '.join(KEY_TYPES)}")
    if not COMMENT_RE.match(comment):
        raise DeclarationError(field, "the comment holds a control character")
    try:
        fields = _strings(base64.b64decode(key, validate=True))
    except (binascii.Error, ValueError):
        raise DeclarationError(field, "the key is not the base64 of an SSH public key") from None
    if not fields or fields[0] != key_type.encode():
        raise DeclarationError(field, f"the key is not a {key_type} key")
    return HostKey(hosts, key_type, key, comment)


def parse_known_hosts(lines, field: str = "known_hosts") -> tuple[HostKey, ...]:
    if lines is None:
        return ()
    if not isinstance(lines, list):
        raise DeclarationError(field, "expected a list of known_hosts lines")
    return tuple(parse_known_host(line, f"{field}[{index}]") for index, line in enumerate(lines))


def keys_for(keys: tuple[HostKey, ...], host: str, port: int) -> list[HostKey]:
    return [key for key in keys if key.names(host, port)]


def render_known_hosts(keys: tuple[HostKey, ...]) -> str:
    return "".join(f"{key.line}\n" for key in keys)


# --- PuTTY -------------------------------------------------------------------------------------------------

def _ed25519_x(y: int, sign: int) -> int:
    u = (y * y - 1) * pow(ED25519_D * y * y + 1, ED25519_P - 2, ED25519_P) % ED25519_P
    x = pow(u, (ED25519_P + 3) // 8, ED25519_P)
    if (x * x - u) % ED25519_P:
        x = x * pow(2, (ED25519_P - 1) // 4, ED25519_P) % ED25519_P
    if (x * x - u) % ED25519_P:
        raise ValueError("not a point of Ed25519")
    return ED25519_P - x if x & 1 != sign else x


def putty_key(key: HostKey) -> tuple[str, str]:
    """PuTTY's cache id of the key type and its cache string: hex numbers as PuTTY's mp_get_hex writes them."""
    fields = _strings(key.blob)
    if key.key_type == "ssh-rsa":
        exponent, modulus = (int.from_bytes(value, "big") for value in fields[1:3])
        return "rsa2", f"0x{exponent:x},0x{modulus:x}"
    if key.key_type == "ssh-ed25519":
        encoded = int.from_bytes(fields[1], "little")
        y = encoded & ((1 << 255) - 1)
        return "ssh-ed25519", f"0x{_ed25519_x(y, encoded >> 255):x},0x{y:x}"
    curve, point = fields[1].decode(), fields[2]
    size = (len(point) - 1) // 2
    x, y = int.from_bytes(point[1:1 + size], "big"), int.from_bytes(point[1 + size:], "big")
    return key.key_type, f"{curve},0x{x:x},0x{y:x}"


def putty_host_keys(keys: list[HostKey], host: str, port: int) -> list[tuple[str, str]]:
    """(type@port:host, cache string) for each key, as PuTTY stores an accepted key."""
    entries = []
    for key in keys:
        cache_id, value = putty_key(key)
        entries.append((f"{cache_id}@{port}:{host}", value))
    return entries


def merge_putty_hostkeys(text: str | None, name: str, entries: list[tuple[str, str]] | None) -> str:
    """~/.putty/sshhostkeys with the session's block (None: without it). PuTTY reads the first line of an id and
    keeps lines it does not replace, comments included; a line of ours elsewhere in the file is dropped so that
    the pinned key is the one PuTTY finds."""
    without, position = _blocks.cut_block(text or "", f"{PUTTY_HOSTKEYS_BEGIN}{name}", f"{PUTTY_HOSTKEYS_END}{name}")
    if not entries:
        return without
    ids = {f"{entry_id} " for entry_id, _value in entries}
    lines = [line for line in without.splitlines(keepends=True) if not any(line.startswith(i) for i in ids)]
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    block = _blocks.block([f"{entry_id} {value}" for entry_id, value in entries],
                          f"{PUTTY_HOSTKEYS_BEGIN}{name}", f"{PUTTY_HOSTKEYS_END}{name}")
    at = 0 if position is None else min(position, len(lines))
    return "".join(lines[:at]) + block + "".join(lines[at:])


# --- WinSCP ------------------------------------------------------------------------------------------------

def key_bits(key: HostKey) -> int:
    fields = _strings(key.blob)
    if key.key_type == "ssh-rsa":
        return int.from_bytes(fields[2], "big").bit_length()
    if key.key_type == "ssh-ed25519":
        return 255
    return int(key.key_type.rsplit("nistp", 1)[1])


def winscp_fingerprint(key: HostKey) -> str:
    """WinSCP's SHA-256 fingerprint: key type, bits, base64 of the blob's SHA-256 (as WinSCP shows it)."""
    digest = base64.b64encode(hashlib.sha256(key.blob).digest()).decode()
    return f"{key.key_type} {key_bits(key)} {digest}"


def winscp_host_key(keys: list[HostKey]) -> str:
    """HostKey= of a WinSCP site: the accepted fingerprints, separated by semicolons."""
    return ";".join(winscp_fingerprint(key) for key in keys)
