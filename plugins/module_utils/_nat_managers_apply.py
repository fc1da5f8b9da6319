# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: the plan of our part in firewalld's and ufw's configuration. Not a
# public API.
"""Plan the declared flows into firewalld (our policy file, then `firewall-cmd --reload`) and ufw (our block in
before*.rules, then `ufw reload`), each read back from the running manager; with no declaration for it (absent,
or the manager gone) exactly our part is taken back."""

from __future__ import annotations

from ansible_collections.netreach.tunnels.plugins.module_utils._engine import Plan, target
from ansible_collections.netreach.tunnels.plugins.module_utils._nat import NatRules
from ansible_collections.netreach.tunnels.plugins.module_utils._nat_docker import listed, normalise
from ansible_collections.netreach.tunnels.plugins.module_utils._nat_managers import (
    POLICY,
    UFW,
    policy_loaded,
    render_policy,
    ufw_lines,
    ufw_text,
)

FIREWALLD_DIR = target("/etc", "firewalld", field="foreign_drop")
FIREWALLD_POLICY = target("/etc", "firewalld", "policies", f"{POLICY}.xml", field="foreign_drop")
UFW_DIR = target("/etc", "ufw", field="foreign_drop")


def firewalld_installed(plan: Plan) -> bool:
    return plan.kind(FIREWALLD_DIR) == "dir" and plan.module.get_bin_path("firewall-cmd") is not None


def plan_firewalld(plan: Plan, rules: NatRules | None, active: bool) -> None:
    """Our policy as RULES need it (None: no policy of ours); firewalld reloaded when ACTIVE and it changed or the
    running firewalld lacks it, then read back."""
    wanted = render_policy(rules) if rules is not None else None
    if wanted is None and plan.kind(FIREWALLD_POLICY) is None:
        return
    changed = plan.file(FIREWALLD_POLICY, wanted, 0o644)
    if not active:
        return
    firewall_cmd = plan.module.get_bin_path("firewall-cmd", required=True)
    loaded = plan.query([firewall_cmd, f"--info-policy={POLICY}"])
    stale = (loaded[0] == 0) != (wanted is not None) or (wanted is not None and policy_loaded(loaded[1], rules))
    if changed or stale:
        outcome = "accepts the declared flows" if wanted else "removed"
        plan.command([firewall_cmd, "--reload"], label=f"firewalld reloaded: policy {POLICY} {outcome}")
    if wanted is not None:
        plan.read_back([firewall_cmd, f"--info-policy={POLICY}"], lambda out: policy_loaded(out, rules),
                       layer="firewalld")


def plan_ufw(plan: Plan, rules: NatRules | None, enabled: bool) -> None:
    """Our block in ufw's before.rules and before6.rules as RULES need it (None: no block); ufw reloaded when
    ENABLED and a file changed or ufw's running chain lacks our rules, then read back."""
    reload, checks = False, []
    for family, (name, chain, tool) in UFW.items():
        tgt = UFW_DIR.child(name)
        text = plan.read(tgt) if plan.kind(UFW_DIR) == "dir" else None
        if text is None:
            continue
        lines = ufw_lines(rules, family)
        tool_path = plan.module.get_bin_path(tool) or tool
        reload |= plan.file(tgt, ufw_text(text, lines), 0o640, validate=[f"{tool_path}-restore", "--test", "%s"])
        wanted = [normalise(line.split(" ", 2)[2]) for line in lines]
        if enabled and wanted:
            live = listed(plan.query([tool_path, "-S", chain])[1], chain)
            reload |= not _contains(live, wanted)
            checks.append(([tool_path, "-S", chain], chain, wanted))
    if not enabled or not reload and not checks:
        return
    ufw = plan.module.get_bin_path("ufw", required=True)
    if reload:
        plan.command([ufw, "reload"], label="ufw reloaded: its before.rules accept the declared flows"
                                            if checks else "ufw reloaded: our rules taken back")
    for args, chain, wanted in checks:
        plan.read_back(args, lambda out, chain=chain, wanted=wanted: None if _contains(listed(out, chain), wanted)
                       else f"ufw's {chain} lacks the declared flows after its reload", layer="ufw")


def _contains(live: list[str], wanted: list[str]) -> bool:
    """Whether LIVE holds WANTED as one run of consecutive rules."""
    return any(live[i:i + len(wanted)] == wanted for i in range(len(live) - len(wanted) + 1))
