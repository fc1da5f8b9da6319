# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: the ssh_options escape hatch and the default cipher order. Not a
# public API; it may change at any time.
"""Extra ssh_config keywords a tunnel may carry (an allow-list, each value matched by a strict pattern of its
own), the keywords refused and why, and the cipher order a client prefers by its CPU."""

from __future__ import annotations

import re

from ansible_collections.netreach.tunnels.plugins.module_utils._declaration import DeclarationError

_ALGORITHMS = r"[+^-]?[a-z0-9][a-z0-9@._-]*(,[a-z0-9][a-z0-9@._-]*)*"
_QOS = r"(af[1-4][1-3]|cs[0-7]|ef|le|lowdelay|throughput|reliability|none)"
_YES_NO = r"(yes|no)"
# Keyword (as ssh_config spells it) -> the whole value it accepts. No pattern admits a line break, '%', '#',
# a quote or a space except where the keyword takes two words (IPQoS, RekeyLimit), and then exactly one.
ALLOWED = {
    "Ciphers": _ALGORITHMS,
    "MACs": _ALGORITHMS,
    "KexAlgorithms": _ALGORITHMS,
    "HostKeyAlgorithms": _ALGORITHMS,
    "PubkeyAcceptedAlgorithms": _ALGORITHMS,
    "CASignatureAlgorithms": _ALGORITHMS,
    "IPQoS": rf"{_QOS}( {_QOS})?",
    "Compression": _YES_NO,
    "TCPKeepAlive": _YES_NO,
    # ssh refuses a limit under 16 bytes and a time past 2^31 s.
    "RekeyLimit": r"(default|[1-9][0-9]{0,3}[KMG]|[1-9][0-9]{2,9})( (none|[1-9][0-9]{0,2}[smhdw]?))?",
    "ConnectionAttempts": r"[1-9][0-9]?",
    "AddressFamily": r"(any|inet|inet6)",
    "LogLevel": r"(QUIET|FATAL|ERROR|INFO|VERBOSE|DEBUG|DEBUG1|DEBUG2|DEBUG3)",
}
# Keywords a tunnel sets from its own options: set them there, never twice.
OWN = {
    "User": "user", "HostName": "server", "Port": "port", "IdentityFile": "identity_file",
    "ServerAliveInterval": "keepalive_interval", "ServerAliveCountMax": "keepalive_count_max",
    "ConnectTimeout": "connect_timeout", "ProxyJump": "jump_hosts", "LocalForward": "local_forwards",
    "RemoteForward": "remote_forwards", "DynamicForward": "dynamic_forwards",
}
# Keywords that would unpin host keys or run a command (or load code): never, whatever the value.
REFUSED = {
    **dict.fromkeys(("StrictHostKeyChecking", "UserKnownHostsFile", "GlobalKnownHostsFile", "KnownHostsCommand",
                     "UpdateHostKeys", "HostKeyAlias", "VerifyHostKeyDNS", "CheckHostIP", "HashKnownHosts"),
                    "would unpin the tunnel's host keys (pin them in known_hosts)"),
    **dict.fromkeys(("ProxyCommand", "LocalCommand", "PermitLocalCommand", "RemoteCommand", "Match", "Include",
                     "Host", "PKCS11Provider", "SecurityKeyProvider", "IdentityAgent", "ControlMaster",
                     "ControlPath", "ControlPersist", "ForwardAgent", "ForwardX11", "ForwardX11Trusted",
                     "BatchMode", "IdentitiesOnly", "ExitOnForwardFailure", "SessionType", "RequestTTY",
                     "SendEnv", "SetEnv"),
                    "would run a command, load code or undo the tunnel's non-interactive settings"),
}
_CANONICAL = {keyword.lower(): keyword for keyword in (*ALLOWED, *OWN, *REFUSED)}

# Where the CPU has AES instructions, AES-GCM is the fastest cipher OpenSSH offers (bench/tunnel_throughput.py);
# without them ChaCha20-Poly1305, ssh's own first choice, is: there ssh's default order stays.
AES_CIPHERS = ("aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,"
               "aes128-ctr,aes192-ctr,aes256-ctr")


def cpu_has_aes(cpuinfo: str | None) -> bool:
    """Whether /proc/cpuinfo's text names AES instructions (x86 'flags', arm64 'Features')."""
    for line in (cpuinfo or "").splitlines():
        key, dummy, value = line.partition(":")
        if key.strip().lower() in ("flags", "features") and "aes" in value.split():
            return True
    return False


def _value_text(keyword: str, value, field: str) -> str:
    if isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, str):
        text = value
    else:
        raise DeclarationError(field, f"{keyword} takes a string, number or yes/no, got {type(value).__name__}")
    if not re.fullmatch(ALLOWED[keyword], text):
        raise DeclarationError(field, f"{text!r} is not a value {keyword} takes here (one line, no '%', "
                                      f"spaces only between the two words IPQoS and RekeyLimit take)")
    return text


def parse_ssh_options(value, field: str = "ssh_options") -> tuple[tuple[str, str], ...]:
    """The extra ssh_config lines ssh_options declares, as (keyword, value) sorted by keyword."""
    if value in (None, {}):
        return ()
    if not isinstance(value, dict):
        raise DeclarationError(field, f"expected a dict of ssh_config keywords, got {type(value).__name__}")
    options = {}
    for key, item in value.items():
        if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z0-9]{1,40}", key):
            raise DeclarationError(field, f"{key!r} is not an ssh_config keyword")
        keyword = _CANONICAL.get(key.lower())
        here = f"{field}.{key}"
        if keyword in REFUSED:
            raise DeclarationError(here, f"{keyword} is refused: it {REFUSED[keyword]}")
        if keyword in OWN:
            raise DeclarationError(here, f"{keyword} is set by the option {OWN[keyword]}: use that")
        if keyword not in ALLOWED:
            raise DeclarationError(here, f"{key} is not one of the keywords ssh_options allows: "
                                         f"{', '.join(sorted(ALLOWED))}")
        if keyword in options:
            raise DeclarationError(here, f"{keyword} is given twice")
        options[keyword] = _value_text(keyword, item, here)
    return tuple(sorted(options.items()))


def config_lines(options: tuple[tuple[str, str], ...], aes_hardware: bool) -> list[str]:
    """The ssh_config lines of OPTIONS, with the default cipher order where they set none."""
    lines = [f"{keyword} {value}" for keyword, value in options]
    if aes_hardware and "Ciphers" not in dict(options):
        lines.append(f"Ciphers {AES_CIPHERS}")
    return lines
