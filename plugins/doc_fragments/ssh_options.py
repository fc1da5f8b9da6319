# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ssh_options escape hatch (extra ssh_config keywords from an allow-list), written once."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  ssh_options:
    description:
      - "Extra ssh_config keywords for every hop of the tunnel, for example C({Ciphers: aes128-gcm@openssh.com})."
      - Allowed keywords (matched case-insensitively, written as ssh spells them) and their values
        C(Ciphers), C(MACs), C(KexAlgorithms), C(HostKeyAlgorithms), C(PubkeyAcceptedAlgorithms),
        C(CASignatureAlgorithms) (a comma-separated list of algorithm names, optionally prefixed by C(+), C(-) or
        C(^)); C(IPQoS) (one or two of C(af11)..C(af43), C(cs0)..C(cs7), C(ef), C(le), C(lowdelay),
        C(throughput), C(reliability), C(none) or a number); C(Compression), C(TCPKeepAlive) (yes/no);
        C(RekeyLimit) (C(default) or a size such as C(1G), optionally a time such as C(1h)); C(ConnectionAttempts)
        (1 to 99); C(AddressFamily) (C(any), C(inet), C(inet6)); C(LogLevel).
      - Refused whatever the value, naming the field, nothing changed. Keywords that would unpin host keys
        (C(StrictHostKeyChecking), C(UserKnownHostsFile), C(GlobalKnownHostsFile), C(KnownHostsCommand),
        C(UpdateHostKeys), C(HostKeyAlias), C(VerifyHostKeyDNS), C(CheckHostIP), C(HashKnownHosts)); keywords that
        run commands, load code or undo the non-interactive settings (C(ProxyCommand), C(LocalCommand),
        C(PermitLocalCommand), C(RemoteCommand), C(Match), C(Include), C(Host), C(PKCS11Provider),
        C(SecurityKeyProvider), C(IdentityAgent), C(Control*), C(Forward*), C(BatchMode) and the like); and the
        keywords a tunnel option already sets (C(ServerAliveInterval) is O(keepalive_interval), and so on).
      - Without C(Ciphers) here, a client whose CPU has AES instructions prefers AES-GCM
        (C(aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr));
        any other client keeps ssh's default order, ChaCha20-Poly1305 first.
    type: dict
    default: {}
"""
