# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: a metrics program and its timer, as steps of the change engine. Not a
# public API. ssh_tunnels (_tunnel_metrics_plan.py) and nat_rules (_nat_metrics_plan.py) each declare one.
"""A metrics program (a module_utils of ours, installed under /usr/local/lib/netreach/), its oneshot service and
its timer, as steps of the change engine's Plan; parse the options that declare them (metrics_dir,
metrics_interval) and render the timer.

The textfile directory is node_exporter's (Debian's /var/lib/prometheus/node-exporter by default): the module
makes it only when it is missing (level by level, 0755), and the service may write nowhere else.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from types import ModuleType

from ansible_collections.netreach.tunnels.plugins.module_utils import _textfile
from ansible_collections.netreach.tunnels.plugins.module_utils._declaration import DeclarationError
from ansible_collections.netreach.tunnels.plugins.module_utils._engine import Plan, Target, target
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_helpers import program_text
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_render import HELPER_DIR

INTERVAL_MAX = 3600
UNIT_DIR = "/etc/systemd/system"
# Plain components only: the directory goes into a unit file (ReadWritePaths, ExecStart) as it is.
DIR_RE = re.compile(r"^(/[A-Za-z0-9_@+-][A-Za-z0-9._@+-]*)+$")


@dataclass(frozen=True)
class MetricsTimer:
    """One metrics program of the collection and the units that run it."""

    program: ModuleType  # the module_utils that is the program (standard library and _textfile only)
    name: str  # its file under HELPER_DIR
    service: str
    timer: str
    textfile: str  # what it writes into the textfile directory
    what: str  # for the timer's description: "{what} every N s"
    owner: str  # the module that manages it, for the units' header
    description: str  # the service's
    # The service's CapabilityBoundingSet, each with the comment that says why, then its sandbox (unit lines).
    capabilities: tuple[str, ...]
    why: str
    sandbox: tuple[str, ...]


def metrics_argument_spec() -> dict:
    """The options of a module with a metrics timer (documented in the metrics doc fragment and the module)."""
    return dict(metrics_dir=dict(type="path"), metrics_interval=dict(type="int", default=15))


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


def program_path(timer: MetricsTimer) -> str:
    return f"{HELPER_DIR}/{timer.name}"


def unit_head(timer: MetricsTimer, description: str) -> list[str]:
    return [f"# Managed by netreach.tunnels.{timer.owner}; local changes are overwritten.", "[Unit]",
            f"Description=netreach: {description}", ""]


def render_metrics_service(timer: MetricsTimer, directory: str) -> str:
    """TIMER's oneshot service: its program writing into DIRECTORY, the only place it may write."""
    return "\n".join([
        *unit_head(timer, timer.description),
        "[Service]",
        "Type=oneshot",
        f"ExecStart=/usr/bin/python3 {program_path(timer)} {directory}",
        f"# {timer.why}",
        f"CapabilityBoundingSet={' '.join(timer.capabilities)}",
        f"ReadWritePaths={directory}",
        *timer.sandbox,
        "",
    ])


def render_metrics_timer(timer: MetricsTimer, interval: int) -> str:
    return "\n".join([
        *unit_head(timer, f"{timer.what} every {interval} s"),
        "[Timer]",
        "OnActiveSec=1s",
        f"OnUnitActiveSec={interval}s",
        "AccuracySec=1s",
        "",
        "[Install]",
        "WantedBy=timers.target",
        "",
    ])


def written_dir(timer: MetricsTimer, service_text: str | None) -> str | None:
    """The directory an installed metrics service of ours writes to: the last word of its ExecStart."""
    match = re.search(rf"^ExecStart=\S+ \S+/{re.escape(timer.name)} (?:\S+ )*(\S+)$", service_text or "", re.MULTILINE)
    return match.group(1) if match and DIR_RE.fullmatch(match.group(1)) else None


def plan_metrics(plan: Plan, timer: MetricsTimer, directory: str | None, interval: int) -> bool:
    """TIMER's program and units writing into DIRECTORY every INTERVAL seconds; None: none of it (the textfile it
    wrote goes too; the helpers' directory stays, it is shared). Returns changed."""
    service_tgt = target(UNIT_DIR, timer.service, field="metrics_dir")
    timer_tgt = target(UNIT_DIR, timer.timer, field="metrics_dir")
    helper_dir = target(*HELPER_DIR.rsplit("/", 1), field="metrics_dir")
    program = helper_dir.child(timer.name)
    installed = plan.read(service_tgt)
    old_dir = written_dir(timer, installed)
    if directory is None:
        if installed is None and plan.kind(timer_tgt) is None and plan.kind(program) is None:
            return False
        changed = plan.command(["systemctl", "disable", "--now", timer.timer], check=False)
        for tgt in (timer_tgt, service_tgt, program):
            changed |= plan.remove(tgt)
        if old_dir:
            changed |= plan.remove(metrics_dir_target(old_dir).child(timer.textfile))
        plan.daemon_reload()
        return changed
    tgt = metrics_dir_target(directory)
    changed = False
    for level in range(1, len(tgt.parts) + 1):
        ancestor = target("/", *tgt.parts[:level], field="metrics_dir")
        if plan.kind(ancestor) is None:
            changed |= plan.directory(ancestor, 0o755)
    if old_dir and old_dir != directory:
        changed |= plan.remove(metrics_dir_target(old_dir).child(timer.textfile))
    plan.directory(helper_dir, 0o755)
    changed |= plan.file(program, program_text(timer.program, _textfile), 0o755, show=False)
    changed |= plan.file(service_tgt, render_metrics_service(timer, directory), 0o644)
    timer_changed = plan.file(timer_tgt, render_metrics_timer(timer, interval), 0o644)
    plan.daemon_reload()
    active, _enabled = plan.unit_state(timer.timer)
    action = "restart" if timer_changed and active else None if active else "start"
    changed |= plan.unit(timer.timer, action, enabled=True)
    return changed or timer_changed
