# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: the metrics timer of a tunnel client. Not a public API.
"""The tunnel metrics program (_tunnel_metrics.py), its oneshot service and its timer (_metrics_plan.py): what is
particular to the tunnels is the service, which reads the tunnel processes' sockets."""

from __future__ import annotations

from ansible_collections.netreach.tunnels.plugins.module_utils import _tunnel_metrics
from ansible_collections.netreach.tunnels.plugins.module_utils._engine import Plan
from ansible_collections.netreach.tunnels.plugins.module_utils._metrics_plan import MetricsTimer, parse_metrics
from ansible_collections.netreach.tunnels.plugins.module_utils._metrics_plan import plan_metrics as plan_timer
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_render import HARDENING

# What ssh_tunnels and its tests import: the declaration is parsed as for every metrics timer.
__all__ = ["METRICS_SERVICE", "METRICS_TIMER", "TUNNEL_METRICS", "parse_metrics", "plan_metrics"]

METRICS_SERVICE = "netreach-tunnel-metrics.service"
METRICS_TIMER = "netreach-tunnel-metrics.timer"

TUNNEL_METRICS = MetricsTimer(
    program=_tunnel_metrics, name="tunnel-metrics", service=METRICS_SERVICE, timer=METRICS_TIMER,
    textfile=_tunnel_metrics.TEXTFILE, what="tunnel metrics", owner="ssh_tunnels",
    description="the tunnels' state as a node_exporter textfile",
    capabilities=("CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH", "CAP_SETUID", "CAP_SETGID"),
    why="Root only to read the tunnel processes' sockets (/proc/PID/fd: with CAP_SYS_PTRACE, or as their owner "
        "where root lacks it, as in a container) and to ask systemd; it writes one directory.",
    # The tunnels' own sandbox, but for what reading other processes needs: their /proc entries, and setuid/setgid
    # (the @privileged group) to read them as their owner.
    sandbox=tuple(line for line in HARDENING if not line.startswith(("ProtectProc=", "ProcSubset=", "SystemCallFilter="))),
)


def plan_metrics(plan: Plan, directory: str | None, interval: int) -> bool:
    """The tunnel metrics writing into DIRECTORY every INTERVAL seconds; None: none of it. Returns changed."""
    return plan_timer(plan, TUNNEL_METRICS, directory, interval)
