# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: the metrics timer of a gateway. Not a public API.
"""The NAT metrics program (_nat_metrics.py), its oneshot service and its timer (_metrics_plan.py): what is
particular to the gateway is the service, which lists our nftables table (netlink, CAP_NET_ADMIN)."""

from __future__ import annotations

from ansible_collections.netreach.tunnels.plugins.module_utils import _nat_metrics
from ansible_collections.netreach.tunnels.plugins.module_utils._engine import Plan
from ansible_collections.netreach.tunnels.plugins.module_utils._metrics_plan import MetricsTimer, plan_metrics
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_render import HARDENING

METRICS_SERVICE = "netreach-nat-metrics.service"
METRICS_TIMER = "netreach-nat-metrics.timer"

NAT_METRICS = MetricsTimer(
    program=_nat_metrics, name="nat-metrics", service=METRICS_SERVICE, timer=METRICS_TIMER,
    textfile=_nat_metrics.TEXTFILE, what="NAT metrics", owner="nat_rules",
    description="the gateway's NAT table as a node_exporter textfile",
    capabilities=("CAP_NET_ADMIN",),
    why="Root only to list our table (netfilter's netlink wants CAP_NET_ADMIN); it writes one directory.",
    # The tunnels' sandbox, with netlink (nft) instead of the internet families, in the host's network namespace.
    sandbox=tuple(line if not line.startswith("RestrictAddressFamilies=") else "RestrictAddressFamilies=AF_UNIX AF_NETLINK"
                  for line in HARDENING),
)


def plan_nat_metrics(plan: Plan, directory: str | None, interval: int) -> bool:
    """The NAT metrics writing into DIRECTORY every INTERVAL seconds; None: none of it. Returns changed."""
    return plan_metrics(plan, NAT_METRICS, directory, interval)
