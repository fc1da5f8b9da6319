# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: the local authenticating hop to an NTLM proxy. Not a public API.
"""An NTLM proxy is reached through a local hop: cntlm (Debian's package) listening on loopback, the only place
the credentials live. Every proxy layer and every tunnel then points at http://127.0.0.1:PORT without credentials.

The hop's configuration holds cntlm's PassNTLMv2 hash (PassNT for NTLM2SR and NTLM), never the password (cntlm's reader would cut a password at
"#" anyway): NTOWFv2, computed here (``cntlm -H`` of Debian 12's cntlm 0.92.3 prints other values on amd64 than the
MS-NLMP algorithm gives: NT hash 77B9... for "password", not 8846F7...). The hash is as good as the password to
the proxy, so the file is 0600 and owned by the hop's own system user. Pure: nothing here touches the host.
"""

from __future__ import annotations

import hmac
import struct
from dataclasses import dataclass, field

from ansible_collections.netreach.tunnels.plugins.module_utils._declaration import DEFAULT_HOP_PORT, bracket
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_render import HARDENING

AUTH_SCHEMES = ("basic", "ntlm")
HOP_UNIT = "netreach-proxy-hop.service"
HOP_USER = "netreach-proxy-hop"
HOP_DIR = "/etc/netreach/proxy-hop"
HOP_CONFIG = f"{HOP_DIR}/cntlm.conf"
CNTLM = "/usr/sbin/cntlm"
# cntlm's Auth: NTLMv2 takes the PassNTLMv2 hash; NTLM2SR (NTLM2 session response) and NTLM take PassNT, for a
# proxy whose challenge carries no target information (cntlm then cannot answer with NTLMv2).
NTLM_AUTH = ("NTLMv2", "NTLM2SR", "NTLM")


@dataclass(frozen=True)
class NtlmHop:
    """cntlm on 127.0.0.1:PORT, authenticating as DOMAIN\\USER to the proxy at HOST:UPSTREAM_PORT."""

    host: str
    upstream_port: int
    user: str
    domain: str
    password: str = field(repr=False)
    port: int = DEFAULT_HOP_PORT
    auth: str = "NTLMv2"  # one of NTLM_AUTH

    def __post_init__(self) -> None:
        # Windows domains are case-insensitive; cntlm hashes them upper-cased, so it sends them so.
        object.__setattr__(self, "domain", self.domain.upper())

    @property
    def hash(self) -> str:
        """The hash cntlm's Auth needs: PassNTLMv2 for NTLMv2, else PassNT."""
        return ntlmv2_hash(self.user, self.domain, self.password) if self.auth == "NTLMv2" else nt_hash(self.password)

    @property
    def hash_keyword(self) -> str:
        return "PassNTLMv2" if self.auth == "NTLMv2" else "PassNT"

    @property
    def secrets(self) -> list[str]:
        return [self.password, self.hash]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _md4(data: bytes) -> bytes:
    """MD4 (RFC 1320): OpenSSL 3 leaves it out of hashlib, NTLM's NT hash needs it."""
    def rotate(value: int, bits: int) -> int:
        value &= 0xFFFFFFFF
        return ((value << bits) | (value >> (32 - bits))) & 0xFFFFFFFF

    message = data + b"\x80" + b"\x00" * ((55 - len(data)) % 64) + struct.pack("<Q", len(data) * 8)
    state = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476]
    for offset in range(0, len(message), 64):
        x = struct.unpack("<16I", message[offset:offset + 64])
        a, b, c, d = state
        for i in range(16):
            k, s = i, (3, 7, 11, 19)[i % 4]
            a, b, c, d = d, rotate(a + ((b & c) | (~b & d)) + x[k], s), b, c
        for i in range(16):
            k, s = (i % 4) * 4 + i // 4, (3, 5, 9, 13)[i % 4]
            a, b, c, d = d, rotate(a + ((b & c) | (b & d) | (c & d)) + x[k] + 0x5A827999, s), b, c
        for i in range(16):
            k, s = (0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15)[i], (3, 9, 11, 15)[i % 4]
            a, b, c, d = d, rotate(a + (b ^ c ^ d) + x[k] + 0x6ED9EBA1, s), b, c
        state = [(value + new) & 0xFFFFFFFF for value, new in zip(state, (a, b, c, d))]
    return struct.pack("<4I", *state)


def nt_hash(password: str) -> str:
    """NTOWFv1 (MS-NLMP 3.3.1), cntlm's PassNT: MD4 of the UTF-16 password, upper-case hex."""
    return _md4(password.encode("utf-16-le")).hex().upper()


def ntlmv2_hash(user: str, domain: str, password: str) -> str:
    """NTOWFv2 (MS-NLMP 3.3.2) for USER in DOMAIN as cntlm's PassNTLMv2 takes it, upper-case hex: HMAC-MD5 keyed
    with MD4 of the UTF-16 password over the upper-cased user name and domain (cntlm upper-cases both; the domain
    is written upper-case into its configuration too, so what it sends is what the proxy hashes)."""
    key = _md4(password.encode("utf-16-le"))
    return hmac.new(key, (user + domain).upper().encode("utf-16-le"), "md5").hexdigest().upper()


def render_cntlm_config(hop: NtlmHop) -> str:
    return "\n".join([
        "# Managed by netreach.tunnels.client_proxy; local changes are overwritten.",
        "# The local NTLM hop: the layers and tunnels use http://127.0.0.1:PORT, cntlm authenticates upstream.",
        f"Username {hop.user}",
        f"Domain {hop.domain}",
        f"{hop.hash_keyword} {hop.hash}",
        f"Auth {hop.auth}",
        f"Proxy {bracket(hop.host)}:{hop.upstream_port}",
        f"Listen 127.0.0.1:{hop.port}",
        "",
    ])


def render_hop_unit() -> str:
    return "\n".join([
        "# Managed by netreach.tunnels.client_proxy; local changes are overwritten.",
        "[Unit]",
        "Description=netreach: local NTLM hop to the corporate proxy (cntlm)",
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        f"ExecStart={CNTLM} -f -c {HOP_CONFIG}",
        f"User={HOP_USER}",
        f"Group={HOP_USER}",
        "Restart=always",
        "RestartSec=2",
        "CapabilityBoundingSet=",
        "AmbientCapabilities=",
        *HARDENING,
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ])
