# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: where a nat_rules change waits, and how it becomes the boot state. Not a
# public API.
"""The staged files of a NAT change, its confirmation and the boot state, as steps of the change engine's Plan.

A change is staged under RUN by its token. Armed, it waits there until the action plugin runs nat_rules again
over a fresh connection with `confirm: TOKEN` (plan_confirm): the engine stops the rollback timer (unless the
rollback has won), then the staged boot rules are promoted, or our boot state retired, and the staged files go.
Unarmed, plan_boot_state runs in the applying run itself, right after the transaction.
"""

from __future__ import annotations

import re

from ansible_collections.netreach.tunnels.plugins.module_utils import _nat_metrics
from ansible_collections.netreach.tunnels.plugins.module_utils._engine import Plan, target, target_of

# Volatile on purpose: a pending change and its rollback do not survive a reboot, so a reboot boots the
# last confirmed state and nothing can confirm a change that is no longer running.
RUN = target("/run", "netreach", "nat", field="rollback_timeout")
BOOT = target("/etc", "netreach", "nat", field="persist")
BOOT_RULES = BOOT.child("netreach.nft")
UNIT = "netreach-nat.service"
UNIT_FILE = target("/etc/systemd/system", UNIT, field="persist")
ROLLBACK_UNIT = "netreach-nat-rollback-{token}"
# What the gateway metrics compare the kernel's table with (_nat_metrics.py): the last confirmed table's comment.
CONFIRMED = target_of("/etc", _nat_metrics.CONFIRMED, field="metrics_dir")
TOKEN_RE = re.compile(r"^[0-9a-f]{12}$")
# The files of one change under RUN, by kind: the new table, the previous one, the boot rules and the metrics'
# record (CONFIRMED) to promote, and the record the rollback leaves.
STAGED = (("pending", ".nft"), ("rollback", ".nft"), ("boot", ".nft"), ("confirmed", ".json"), ("rolled-back", ""))


def staged(token: str) -> dict:
    """The Targets of change TOKEN's files under RUN, by kind."""
    return {kind: RUN.child(f"{kind}-{token}{suffix}") for kind, suffix in STAGED}


def plan_confirm(plan: Plan, token: str | None) -> None:
    """Confirm change TOKEN (from the applying run's pending_confirm): disarm its rollback, then make its staged
    table the boot state (or retire ours when it staged none) and its staged record the confirmed one for the
    metrics, then clear its files."""
    if not isinstance(token, str) or not TOKEN_RE.fullmatch(token):
        plan.fail("confirm", f"confirm: {token!r} is not the token of a nat_rules change (12 hex digits); it is set "
                             "by the action plugin only")
    files = staged(token)
    if plan.kind(files["pending"]) is None and plan.kind(files["boot"]) is None:
        plan.fail("confirm", f"confirm: no NAT change {token} waits on this host (superseded, or the host rebooted)",
                  answer="unknown-change")
    unit = ROLLBACK_UNIT.format(token=token)
    plan.disarm(f"{unit}.timer", f"{unit}.service", files["rolled-back"])
    plan_boot_state(plan, plan.read(files["boot"]))
    record = plan.read(files["confirmed"])
    if record is not None:
        plan.file(CONFIRMED, record, 0o644)
    entries = plan.listdir(RUN)
    plan.remove_tree(RUN, keep=set(entries) - {tgt.parts[-1] for tgt in files.values()})
    if plan.listdir(RUN.parent) == ["nat"] and not set(entries) - {tgt.parts[-1] for tgt in files.values()}:
        plan.remove_tree(RUN.parent)


def plan_boot_state(plan: Plan, boot_rules: str | None) -> None:
    """The confirmed boot state: BOOT_RULES holds the text BOOT_RULES (its directory and the unit that loads it
    are planned by the applying run), or, None, our boot state goes: the unit disabled, its file and the rules
    removed, and our directory when nothing else is in it."""
    if boot_rules is not None:
        plan.file(BOOT_RULES, boot_rules, 0o644)
        return
    if plan.kind(UNIT_FILE) is not None:
        plan.command(["systemctl", "disable", UNIT])
        plan.remove(UNIT_FILE)
    if plan.kind(BOOT) is not None:
        entries = plan.listdir(BOOT)
        plan.remove_tree(BOOT, keep=set(entries) - {BOOT_RULES.parts[-1]})
    plan.daemon_reload()
