# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: the metrics timer of a tunnel client. Not a public API.
"""The tunnel metrics program (_tunnel_metrics.py), its oneshot service and its timer, as steps of the change
engine's Plan; parse the options that declare them (metrics_dir, metrics_interval) and render the two units.

The textfile directory is node_exporter's (Debian's /var/lib/prometheus/node-exporter by default): the module
makes it only when it is missing (level by level, 0755), and the service may write nowhere else.
"""

from __future__ import annotations

import os
import re

from ansible_collections.netreach.tunnels.plugins.module_utils import _tunnel_metrics
from ansible_collections.netreach.tunnels.plugins.module_utils._declaration import DeclarationError
from ansible_collections.netreach.tunnels.plugins.module_utils._engine import Plan, Target, target
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_apply import helper_target, unit_target
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_helpers import program_text
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_render import HARDENING, HELPER_DIR

METRICS_SERVICE = "netreach-tunnel-metrics.service"
METRICS_TIMER = "netreach-tunnel-metrics.timer"
METRICS_PROGRAM = "tunnel-metrics"
INTERVAL_MAX = 3600
# Plain components only: the directory goes into a unit file (ReadWritePaths, ExecStart) as it is.
DIR_RE = re.compile(r"^(/[A-Za-z0-9_@+-][A-Za-z0-9._@+-]*)+$")


def parse_metrics(directory: str | None, interval) -> tuple[str | None, int]:
    """(textfile directory or None for no metrics, interval in seconds), or DeclarationError naming the field."""
    if isinstance(interval, bool) or not isinstance(interval, int) or not 1 <= interval <= INTERVAL_MAX:
        raise DeclarationError("metrics_interval", f"{interval!r} is not a number of seconds from 1 to {INTERVAL_MAX}")
    if directory in (None, ""):
        return None, interval
    if (not isinstance(directory, str) or not DIR_RE.fullmatch(directory) or os.path.normpath(directory) != directory
            or "/../" in f"{directory}/" or "/./" in f"{directory}/"):
        raise DeclarationError("metrics_dir", f"{directory!r} is not an absolute directory of plain components "
                                              "(letters, digits, . _ @ + -; no '..', blanks or a trailing '/')")
    return directory, interval


def metrics_dir_target(directory: str) -> Target:
    return target("/", *directory.strip("/").split("/"), field="metrics_dir")


def render_metrics_service(directory: str) -> str:
    return "\n".join([
        "# Managed by netreach.tunnels.ssh_tunnels; local changes are overwritten.",
        "[Unit]",
        "Description=netreach: the tunnels' state as a node_exporter textfile",
        "",
        "[Service]",
        "Type=oneshot",
        f"ExecStart=/usr/bin/python3 {HELPER_DIR}/{METRICS_PROGRAM} {directory}",
        # Root only to read the tunnel processes' sockets (/proc/PID/fd: with CAP_SYS_PTRACE, or as their owner
        # where root lacks it, as in a container) and to ask systemd; it writes one directory.
        "CapabilityBoundingSet=CAP_SYS_PTRACE CAP_DAC_READ_SEARCH CAP_SETUID CAP_SETGID",
        f"ReadWritePaths={directory}",
        # The tunnels' own sandbox, but for what reading other processes needs: their /proc entries, and
        # setuid/setgid (the @privileged group) to read them as their owner.
        *[line for line in HARDENING if not line.startswith(("ProtectProc=", "ProcSubset=", "SystemCallFilter="))],
        "",
    ])


def render_metrics_timer(interval: int) -> str:
    return "\n".join([
        "# Managed by netreach.tunnels.ssh_tunnels; local changes are overwritten.",
        "[Unit]",
        f"Description=netreach: tunnel metrics every {interval} s",
        "",
        "[Timer]",
        "OnActiveSec=1s",
        f"OnUnitActiveSec={interval}s",
        "AccuracySec=1s",
        "",
        "[Install]",
        "WantedBy=timers.target",
        "",
    ])


def _written_dir(service_text: str | None) -> str | None:
    """The directory an installed metrics service of ours writes to."""
    match = re.search(rf"^ExecStart=\S+ \S+/{METRICS_PROGRAM} (\S+)$", service_text or "", re.MULTILINE)
    return match.group(1) if match and DIR_RE.fullmatch(match.group(1)) else None


def plan_metrics(plan: Plan, directory: str | None, interval: int) -> bool:
    """The metrics program and its timer writing into DIRECTORY every INTERVAL seconds; None: none of it (the
    textfile it wrote goes too). The tunnel helpers' directory is planned by the tunnels. Returns changed."""
    service, timer = unit_target(METRICS_SERVICE, "metrics_dir"), unit_target(METRICS_TIMER, "metrics_dir")
    installed = plan.read(service)
    old_dir = _written_dir(installed)
    if directory is None:
        if installed is None and plan.kind(timer) is None:
            return False
        changed = plan.command(["systemctl", "disable", "--now", METRICS_TIMER], check=False)
        for tgt in (timer, service, helper_target(METRICS_PROGRAM)):
            changed |= plan.remove(tgt)
        if old_dir:
            changed |= plan.remove(metrics_dir_target(old_dir).child(_tunnel_metrics.TEXTFILE))
        plan.daemon_reload()
        return changed
    tgt = metrics_dir_target(directory)
    changed = False
    for level in range(1, len(tgt.parts) + 1):
        ancestor = target("/", *tgt.parts[:level], field="metrics_dir")
        if plan.kind(ancestor) is None:
            changed |= plan.directory(ancestor, 0o755)
    if old_dir and old_dir != directory:
        changed |= plan.remove(metrics_dir_target(old_dir).child(_tunnel_metrics.TEXTFILE))
    plan.directory(helper_target("x").parent, 0o755)
    changed |= plan.file(helper_target(METRICS_PROGRAM), program_text(_tunnel_metrics), 0o755, show=False)
    changed |= plan.file(service, render_metrics_service(directory), 0o644)
    timer_changed = plan.file(timer, render_metrics_timer(interval), 0o644)
    plan.daemon_reload()
    active, enabled = plan.unit_state(METRICS_TIMER)
    action = "restart" if timer_changed and active else None if active else "start"
    changed |= plan.unit(METRICS_TIMER, action, enabled=True)
    return changed or timer_changed
