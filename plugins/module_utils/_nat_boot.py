# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: the host-side files of the NAT model. Not a public API.
"""What nat_rules leaves on the host besides its table, rendered as text, and the host facts it reads back.

The boot unit and the sysctl.d file, and the host-side rollback command (a transient systemd timer runs it,
whatever happens to the connection that applied a change). The confirmation is no text: it is nat_rules' own
confirm run on the change engine (_nat_confirm.py). Every path here is given by the caller from the engine's
confined targets. Pure functions: nothing here touches the host.
"""

from __future__ import annotations

import shlex

FORWARD_SYSCTLS = ("net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding")


def render_unit(nft: str, rules: str) -> str:
    return f"""\
# netreach.tunnels nat_rules: restores the last confirmed NAT table at boot, before the network comes up.
[Unit]
Description=netreach gateway NAT and port forwards (last confirmed state)
DefaultDependencies=no
Wants=network-pre.target
Before=network-pre.target shutdown.target
After=local-fs.target nftables.service
Conflicts=shutdown.target
ConditionPathExists={rules}

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart={nft} -f {rules}

[Install]
WantedBy=sysinit.target
"""


def render_nftables_dropin(nft: str, rules: str) -> str:
    """A drop-in of Debian's nftables.service, whose ruleset begins with `flush ruleset`: our last confirmed table
    is loaded again after every start, restart and reload of it ('-': a missing file never fails that service)."""
    return f"""\
# netreach.tunnels nat_rules: load the last confirmed NAT table again whenever nftables.service loads its ruleset.
[Service]
ExecStartPost=-{nft} -f {rules}
ExecReload=-{nft} -f {rules}
"""


def render_sysctl(enabled: bool) -> str:
    value = 1 if enabled else 0
    return "# netreach.tunnels nat_rules: packet forwarding of the gateway.\n" + "".join(
        f"{name} = {value}\n" for name in FORWARD_SYSCTLS)


def sysctl_path(name: str) -> str:
    return "/proc/sys/" + name.replace(".", "/")


def read_only_mount(mounts: str | None, path: str) -> bool:
    """Whether PATH lies on a read-only mount, from /proc/self/mounts (the innermost mount point wins):
    a container's /proc/sys usually is one."""
    best, read_only = "", False
    for line in (mounts or "").splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        point = fields[1].replace("\\040", " ")
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, read_only = point, "ro" in fields[3].split(",")
    return read_only


def render_rollback(nft: str, previous: str, marker: str) -> str:
    """The timer's command: put the previous table back, then leave the record the confirm step looks for."""
    return f"{nft} -f {shlex.quote(previous)} && touch {shlex.quote(marker)}"
