# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: the plan of a tunnel server. Not a public API.
"""The tunnel accounts' authorized_keys, the sshd drop-in and the reaper, as steps of the change engine's Plan.

authorized_keys is a Target under the account's home (root) with the parts .ssh/authorized_keys: the account owns
its home, so a symbolic ~/.ssh or authorized_keys (to /etc/shadow, or /etc) is refused, never followed. The
drop-in goes live only after `sshd -t` of the whole configuration accepts it; otherwise it is put back.

With a rollback_timeout, the drop-in and the authorized_keys files are one armed change of the engine
(_engine_rollback.arm_files): snapshot, host-side timer, the new files (the drop-in still checked by `sshd -t`),
and sshd's reload left to the delayed apply; the action plugin confirms over a fresh connection, which must get
through the new configuration. A change that refuses the managing connection (its port, its account, its key) is
put back by the host, which reloads sshd again.
"""

from __future__ import annotations

import re

from ansible_collections.netreach.tunnels.plugins.module_utils import _tunnel_reaper
from ansible_collections.netreach.tunnels.plugins.module_utils._declaration import USER_RE
from ansible_collections.netreach.tunnels.plugins.module_utils._engine import HOME_BASE, Plan, target
from ansible_collections.netreach.tunnels.plugins.module_utils._engine_rollback import arm_files, plan_support
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_apply import helper_target, unit_target
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_helpers import program_text
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_server import (
    DROPIN_DIR,
    HOST_KEY_TYPES,
    REAPER_UNIT,
    ServerDeclaration,
    account_policies,
    dropin_accounts,
    host_key_facts,
    kept_entries,
    merge_authorized_keys,
    render_reaper_unit,
    render_sshd_dropin,
)

SSHD_CONFIG = "/etc/ssh/sshd_config"
INCLUDE_RE = re.compile(r"^\s*Include\s+(/etc/ssh/)?sshd_config\.d/\*\.conf\s*$", re.IGNORECASE | re.MULTILINE)


def dropin_target(name: str):
    return target("/etc/ssh", DROPIN_DIR.rpartition("/")[2], name, field="sshd_dropin")


def sshd_unit(plan: Plan) -> str:
    return "ssh.service" if plan.unit_loaded("ssh.service") else "sshd.service"


def account_home(plan: Plan, server: ServerDeclaration, account: str) -> str | None:
    """ACCOUNT's home: where it is, or where the account step makes it; None: no such account (yet)."""
    found = plan.account(account)
    if found is not None:
        return found.home
    return f"{HOME_BASE}/{account}" if server.create_accounts and not server.absent else None


def plan_dropin(plan: Plan, server: ServerDeclaration, content: str | None, reload: bool = True) -> bool:
    """The drop-in (None: removed), checked live by sshd -t and put back when sshd objects; sshd reloaded at
    once (unless not RELOAD: an armed change reloads it later), so a run that stops later never leaves a
    validated drop-in that sshd did not read."""
    tgt = dropin_target(server.dropin_name)
    if content is not None and not INCLUDE_RE.search(plan.read_foreign(SSHD_CONFIG) or ""):
        plan.fail("sshd_dropin", f"{SSHD_CONFIG} has no 'Include /etc/ssh/sshd_config.d/*.conf' line, so the drop-in "
                                 f"{tgt.path} would be ignored; add the line (Debian's default has it)")
    if not plan.file(tgt, content, 0o644, check_live=["sshd", "-t", "-f", SSHD_CONFIG]):
        return False
    if reload:
        unit = sshd_unit(plan)
        plan.command(["systemctl", "reload", unit], label=f"reload {unit}")
    return True


def plan_armed(plan: Plan, server: ServerDeclaration, start: int, reload: bool) -> None:
    """The file steps the server added to PLAN since START as one armed change: sshd reloaded (when RELOAD: the
    drop-in changed) a moment after the module returned; the previous files back and sshd reloaded again unless
    the controller confirms over a fresh connection in time."""
    steps = plan.steps[start:]
    del plan.steps[start:]
    unit = sshd_unit(plan)
    reload_sshd = [["systemctl", "reload", unit]]
    arm_files(plan, f"sshd-{server.dropin_name.removesuffix('.conf')}", steps, server.rollback_timeout,
              reload_sshd if reload else [], ([], reload_sshd), f"sshd drop-in {server.dropin_name}",
              "put the previous authorized_keys and sshd drop-in back by itself and reloaded sshd")


def plan_authorized_keys(plan: Plan, server: ServerDeclaration, account: str, remove_all: bool) -> list[str]:
    """One account's authorized_keys; returns the labels of our entries there."""
    tgt = target(account_home(plan, server, account), ".ssh", "authorized_keys", field="accounts")
    current = plan.read(tgt)
    entries = [entry for entry in server.entries if entry.account == account]
    content, labels = merge_authorized_keys(current, entries, server.managed_clients, server.known_clients,
                                            remove_all)
    if current is None and not labels:
        return labels
    plan.directory(tgt.parent, 0o700, account, account)
    plan.file(tgt, content, 0o600, account)
    return labels


def plan_reaper(plan: Plan, accounts: tuple[str, ...], enabled: bool) -> None:
    unit = unit_target(REAPER_UNIT)
    if not enabled:
        if plan.kind(unit) is not None:
            plan.command(["systemctl", "disable", "--now", REAPER_UNIT], check=False)
            plan.remove(unit)
            plan.daemon_reload()
        return
    plan.directory(helper_target("x").parent, 0o755)
    changed = plan.file(helper_target("tunnel-reaper"), program_text(_tunnel_reaper), 0o755, show=False)
    changed |= plan.file(unit, render_reaper_unit(list(accounts)), 0o644)
    plan.daemon_reload()
    active, is_enabled = plan.unit_state(REAPER_UNIT)
    action = "restart" if active else "start"
    plan.unit(REAPER_UNIT, action if changed or not active or not is_enabled else None, enabled=True)


def plan_server(plan: Plan, server: ServerDeclaration) -> dict:
    """Every change of the server end; returns the module's extra results."""
    # The units this plan asks about, read in one `systemctl show`.
    plan.expect_units("ssh.service", REAPER_UNIT)
    for account in server.accounts:
        if server.create_accounts and not server.absent:
            # First: the steps after these write into the accounts' homes (owned by them).
            plan.locked_account(account, "accounts")
        elif not server.absent and plan.account(account) is None:
            # Another task makes it (in check mode it may not exist yet): by the commit it must.
            plan.require_user(account, "accounts", f"authorized_keys of the tunnel account {account}")
    # Accounts the drop-in restricted before but no longer named: their entries go too.
    retired = sorted(name for name in dropin_accounts(plan.read(dropin_target(server.dropin_name)))
                     if name not in server.accounts and USER_RE.fullmatch(name) and name != "root")
    # A run for some clients only (managed_clients, --limit) keeps the other clients' entries: the drop-in keeps
    # allowing what their keys allow, or their next sessions would be refused.
    declared = {entry.label.partition(":")[2] for entry in server.entries}
    kept = []
    for account in server.accounts:
        found = None if server.absent else plan.account(account)
        if found is not None:
            current = plan.read(target(found.home, ".ssh", "authorized_keys", field="accounts"))
            merged, _labels = merge_authorized_keys(current, [], server.managed_clients, server.known_clients)
            kept += kept_entries(merged, account, declared)
    policies = account_policies([*server.entries, *kept], list(server.accounts))
    dropin = None if server.absent else render_sshd_dropin(policies, server.client_alive_interval,
                                                           server.client_alive_count_max, server.ports)
    armed = bool(server.rollback_timeout)
    if armed:
        plan_support(plan)
    start = len(plan.steps)
    reloaded = plan_dropin(plan, server, dropin, reload=not armed)
    authorized = {}
    for account in server.accounts:
        if account_home(plan, server, account) is not None:
            authorized[account] = plan_authorized_keys(plan, server, account, server.absent)
    for account in retired:
        if plan.account(account) is not None:
            authorized[account] = plan_authorized_keys(plan, server, account, True)
    if armed and any(step.changed for step in plan.steps[start:]):
        plan_armed(plan, server, start, reloaded)
    plan_reaper(plan, server.accounts, enabled=not server.absent and server.reaper)
    host_keys = {key_type: plan.read_foreign(f"/etc/ssh/ssh_host_{key_type}_key.pub") for key_type in HOST_KEY_TYPES}
    return dict(authorized=authorized, sshd_dropin=dropin_target(server.dropin_name).path, sshd_reloaded=reloaded,
                ansible_facts=host_key_facts(host_keys))
