# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: the plan of a nat_rules run. Not a public API.
"""Plan a nat_rules run on the change engine: sysctl, boot unit, and the table as one armed transaction.

The declared table is compared with the kernel's own listing (loaded in a throw-away network namespace to learn
how this kernel lists it, unless the live table's comment shows it is the declared one already). A change to the
kernel goes live armed: a transient systemd timer restores the previous table unless the change is confirmed in
time. Confirming (by the action plugin, over a fresh connection: nat_rules' confirm run, _nat_confirm.py) disarms
the timer and only then makes the new table the one that boots; an unconfirmed change is never persisted.
"""

from __future__ import annotations

import hashlib
import json
import secrets

from ansible_collections.netreach.tunnels.plugins.module_utils._engine import FileStep, Plan, TransactionStep, target
from ansible_collections.netreach.tunnels.plugins.module_utils._nat import TABLE_SPEC, NatRules, render_replace
from ansible_collections.netreach.tunnels.plugins.module_utils._nat_maps import render_table
from ansible_collections.netreach.tunnels.plugins.module_utils._nat_boot import (
    FORWARD_SYSCTLS,
    read_only_mount,
    render_nftables_dropin,
    render_rollback,
    render_sysctl,
    render_unit,
    sysctl_path,
)
from ansible_collections.netreach.tunnels.plugins.module_utils._nat_docker import (
    CHAIN,
    DOCKER_USER,
    TOOLS,
    docker_user_families,
    listed,
    normalise,
    render_chain,
    render_jump,
    render_removal,
    render_restore,
)
from ansible_collections.netreach.tunnels.plugins.module_utils._nat_docker import render_unit as render_docker_unit
from ansible_collections.netreach.tunnels.plugins.module_utils._nat_managers import ufw_enabled
from ansible_collections.netreach.tunnels.plugins.module_utils._nat_metrics import listing_digest, render_record, table_comment
from ansible_collections.netreach.tunnels.plugins.module_utils._nat_metrics_plan import plan_nat_metrics
from ansible_collections.netreach.tunnels.plugins.module_utils._nat_managers_apply import (
    firewalld_installed,
    plan_firewalld,
    plan_ufw,
)
from ansible_collections.netreach.tunnels.plugins.module_utils._nat_confirm import (
    BOOT,
    BOOT_RULES,
    CONFIRMED,
    ROLLBACK_UNIT,
    RUN,
    UNIT,
    UNIT_FILE,
    plan_boot_state,
    staged,
)
from ansible_collections.netreach.tunnels.plugins.module_utils._nat_neighbours import neighbours

SYSCTL_FILE = target("/etc/sysctl.d", "90-netreach-nat.conf", field="ip_forward")
NFTABLES = "nftables.service"
DOCKER_UNIT = "netreach-nat-docker.service"
DOCKER_UNIT_FILE = target("/etc/systemd/system", DOCKER_UNIT, field="persist")
NFTABLES_DROPIN = target("/etc/systemd/system", f"{NFTABLES}.d", field="persist")


def plan_nat(plan: Plan, rules: NatRules | None, persist: bool, rollback_timeout: int,
             metrics: tuple[str | None, int] = (None, 15)) -> dict:
    """Add the steps of one run to PLAN; METRICS: the textfile directory (None: no metrics) and the interval of
    the metrics timer. Returns the result's extras: our table as the kernel will list it ("" when absent), the
    gateway's neighbours, whether the declared flows' state changed (the kernel's table, its boot state or a
    neighbour's configuration; what status.yml calls drift) and whether the metrics timer changed."""
    nft = plan.module.get_bin_path("nft", required=True)
    ruleset = read_ruleset(plan, nft)
    around = read_neighbours(plan, ruleset)
    beside_docker = docker_user_families(around["dropping_chains"]) if rules is not None else []
    # firewalld and ufw are told the declared flows through their own configuration: theirs do not count as foreign.
    with_firewalld = rules is not None and any(around["firewalld"].values())
    with_ufw = rules is not None and around["ufw"]["enabled"]
    managed = {"firewalld"} if with_firewalld else set()
    managed |= {"ufw"} if with_ufw else set()
    if rules is not None and rules.foreign_drop == "fail" and (rules.port_forwards or rules.masquerade or rules.snat):
        refuse_foreign_drops(plan, [c for c in around["dropping_chains"] if c["owner"] not in managed and not (
            c["owner"] == "docker" and c["chain"] == "FORWARD" and c["table"].split()[0] in beside_docker)])
    plan_sysctl(plan, rules.ip_forward if rules else None)
    current_text = kernel_table(plan, nft, ruleset)
    replace, desired_text = desired_table(plan, nft, rules, current_text)
    boot_rules = replace if rules is not None and persist else None
    boot_changed = plan_boot(plan, nft, boot_rules, around["nftables_service"]["installed"])
    plan_docker(plan, rules, beside_docker, around["docker"]["accepted_in"], persist)
    plan_firewalld(plan, rules if with_firewalld else None, around["firewalld"]["active"])
    plan_ufw(plan, rules if with_ufw else None, around["ufw"]["enabled"])
    kernel_changed = current_text != desired_text
    directory = metrics[0] if rules is not None else None
    # What the metrics compare the kernel's table with: recorded once the table is confirmed.
    record = render_record(table_comment(desired_text), len(rules.port_forwards)) if directory else None
    armed = kernel_changed and rollback_timeout > 0
    if kernel_changed or boot_changed:
        texts = (current_text, desired_text) if kernel_changed else None
        plan_transaction(plan, nft, replace if kernel_changed else None, current_text, boot_rules, texts,
                         boot_changed, rollback_timeout if kernel_changed else 0, record if armed else None)
    # The metrics and their record are not the flows: a gateway whose only pending change is them has not drifted.
    flows_changed = plan.changed
    if record is None or not armed:
        plan.file(CONFIRMED, record, 0o644)
    metrics_changed = plan_nat_metrics(plan, directory, metrics[1])
    return {"table": desired_text, "neighbours": around, "flows_changed": flows_changed, "metrics": metrics_changed}


def read_ruleset(plan: Plan, nft: str) -> list:
    """The kernel's ruleset without set elements (`-t`: cheap whatever the size of our maps), as JSON items: every
    chain and rule the neighbours are found in, and whether our table is there."""
    rc, listing, err = plan.query([nft, "-j", "-t", "list", "ruleset"])
    if rc != 0:
        plan.fail(None, f"nft list ruleset failed: {err.strip()}", rc=rc)
    return json.loads(listing or "{}").get("nftables", [])


def read_neighbours(plan: Plan, listing: list) -> dict:
    """What else filters the gateway's packets: nftables.service, firewalld, foreign dropping chains."""
    ufw = ufw_enabled(plan.read_foreign("/etc/ufw/ufw.conf"))
    if plan.kind(target("/run", "systemd", "system")) != "dir":
        return neighbours(listing, (False, False, False), (False, False), ufw)
    loaded = plan.query(["systemctl", "show", "--property=LoadState", "--value", NFTABLES])[1].strip() == "loaded"
    active, enabled = plan.unit_state(NFTABLES) if loaded else (False, False)
    firewalld = plan.unit_state("firewalld.service") if firewalld_installed(plan) else (False, False)
    return neighbours(listing, (loaded, enabled, active), firewalld, ufw)


def refuse_foreign_drops(plan: Plan, chains: list[dict]) -> None:
    """Fail before any change when another table's chain may drop the declared flows: a green task with dead
    forwards is the worst outcome for a gateway."""
    if not chains:
        return
    named = "; ".join(f"table {c['table']} chain {c['chain']} (hook {c['hook']}, policy {c['policy']}"
                      f"{', ends in ' + c['ends_in'] if c['ends_in'] in ('drop', 'reject') else ''}"
                      f"{', ' + c['owner'] + ' owns it' if c['owner'] else ''})" for c in chains)
    plan.fail("foreign_drop", f"foreign_drop: {named} may drop the declared forwards or masquerade, and nat_rules "
                              "cannot make them pass there; nothing was changed. Accept the flows in that table "
                              "yourself and set foreign_drop: ignore.")


def plan_boot(plan: Plan, nft: str, boot_rules: str | None, nftables_installed: bool) -> bool:
    """The boot unit, and the drop-in that loads our table again after nftables.service (which begins with
    `flush ruleset`) starts or reloads; returns whether the confirmed boot rules change."""
    dropin = NFTABLES_DROPIN.child("netreach-nat.conf")
    if boot_rules is None:
        if plan.listdir(NFTABLES_DROPIN) == ["netreach-nat.conf"]:
            plan.remove_tree(NFTABLES_DROPIN)
        else:
            plan.remove(dropin)
        plan.daemon_reload()
        # Read, not just looked at: a link in their place is refused here, as a write would be.
        return plan.read(BOOT_RULES) is not None or plan.read(UNIT_FILE) is not None or plan.kind(BOOT) is not None
    plan.directory(BOOT.parent, 0o755)  # shared with the tunnels: traversable, as it always was
    plan.directory(BOOT, 0o755)
    unit_changed = plan.file(UNIT_FILE, render_unit(nft, BOOT_RULES.path), 0o644)
    if nftables_installed:
        plan.file(dropin, render_nftables_dropin(nft, BOOT_RULES.path), 0o644)
    else:
        plan.remove(dropin)
    plan.daemon_reload()
    if unit_changed and plan.read(UNIT_FILE) is not None:
        plan.command(["systemctl", "reenable", UNIT])  # [Install] may have changed: its links follow it
    else:
        plan.unit(UNIT, enabled=True)
    return plan.read(BOOT_RULES) != boot_rules


def plan_docker(plan: Plan, rules: NatRules | None, families: list[str], present: list[str], persist: bool) -> None:
    """Where Docker's FORWARD drops (FAMILIES), our chain in its DOCKER-USER accepts exactly the declared flows;
    elsewhere (PRESENT: where our chain is) it goes. A unit loads it again after docker.service starts at boot."""
    restores = []
    for family, (tool, restore) in TOOLS.items():
        rules_file = BOOT.child(f"docker-user-{family}.rules")
        tool_path = plan.module.get_bin_path(tool) or tool
        if family not in families:
            plan.remove(rules_file)
            if family in present:
                plan.command(["/bin/sh", "-c", render_removal(tool_path)],
                             label=f"{family} filter: {CHAIN} and its jump from DOCKER-USER removed")
            continue
        wanted = render_chain(rules, family)
        text = render_restore(wanted)
        live = plan.query([tool_path, "-S", CHAIN])[1] if family in present else ""
        jumps = family in present and plan.query([tool_path, "-C", DOCKER_USER, "-j", CHAIN])[0] == 0
        if persist:
            plan.file(rules_file, text, 0o644)
            restores.append((tool_path, plan.module.get_bin_path(restore) or restore, rules_file.path))
        else:
            plan.remove(rules_file)
        if listed(live) != [normalise(rule) for rule in wanted] or not jumps:
            plan.command([plan.module.get_bin_path(restore) or restore, "--noflush"], data=text,
                         label=f"{family} filter {CHAIN} (jumped to from DOCKER-USER): {len(wanted)} rules accepting "
                               "the declared flows")
            plan.command(["/bin/sh", "-c", render_jump(tool_path)], changed=False)
    if restores:
        plan.file(DOCKER_UNIT_FILE, render_docker_unit(restores), 0o644)
        plan.daemon_reload()
        plan.unit(DOCKER_UNIT, enabled=True)
    elif plan.read(DOCKER_UNIT_FILE) is not None:
        plan.command(["systemctl", "disable", DOCKER_UNIT])
        plan.remove(DOCKER_UNIT_FILE)
        plan.daemon_reload()


def plan_sysctl(plan: Plan, ip_forward: bool | None) -> None:
    """The sysctl.d file (removed when ip_forward is not declared) and the runtime values that differ."""
    plan.file(SYSCTL_FILE, render_sysctl(ip_forward) if ip_forward is not None else None, 0o644)
    if ip_forward is None:
        return
    wanted = "1" if ip_forward else "0"
    for name in FORWARD_SYSCTLS:
        value = (plan.read_foreign(sysctl_path(name)) or "").strip()
        if not value or value == wanted:
            continue  # already as declared (or no such family here): nothing is written at runtime
        if read_only_mount(plan.read_foreign("/proc/self/mounts"), sysctl_path(name)):
            plan.fail("ip_forward", f"ip_forward: {name} is {value} and /proc/sys is read-only here (a container), "
                                    f"so it cannot be set to {wanted}; nothing was changed. Set it in the "
                                    f"container's sysctls (docker run --sysctl {name}={wanted}; sysctls: in compose "
                                    "or Molecule) or leave ip_forward unset.")
        plan.command(["sysctl", "-q", "-w", f"{name}={wanted}"], label=f"{name} = {wanted} (runtime, was {value})")


def desired_table(plan: Plan, nft: str, rules: NatRules | None, current_text: str) -> tuple[str, str]:
    """The replacing nft input, and the declared table as the kernel lists it ("" when absent).

    The table's comment carries a digest of the rendered rules and one of the kernel's listing of them: when the
    live table's comment names this rendering and its listing still has that digest, the live table is the declared
    one, and the scratch namespace is not needed (a no-op rerun). Otherwise the rules are loaded there to learn the
    listing, and the comment is added to what the kernel will list."""
    if rules is None:
        return render_replace(None), ""
    base = render_table(rules)
    rendered = hashlib.sha256(base.encode()).hexdigest()[:16]
    live = table_comment(current_text)
    if live.startswith(f"netreach {rendered} ") and live.split()[2] == listing_digest(current_text):
        return render_replace(with_comment(base, live)), current_text
    text = preflight(plan, nft, render_replace(base))
    comment = f"netreach {rendered} {listing_digest(text)}"
    return render_replace(with_comment(base, comment)), with_comment(text, comment)


def with_comment(table: str, comment: str) -> str:
    """TABLE (nft input or the kernel's text listing, both begin with `table inet netreach {`) with COMMENT, where
    nft puts a table's comment: the line after the first."""
    head, _newline, rest = table.partition("\n")
    return f'{head}\n\tcomment "{comment}"\n{rest}'


def kernel_table(plan: Plan, nft: str, ruleset: list) -> str:
    """Our table as the kernel lists it (text, with its comment; "" when absent): the one full listing of a run."""
    family, name = TABLE_SPEC.split()
    if not any(item.get("table", {}).get("family") == family and item["table"].get("name") == name
               for item in ruleset if "table" in item):
        return ""
    rc, text, err = plan.query([nft, "list", "table", family, name])
    if rc != 0 and "No such file or directory" in err:
        return ""  # gone since the ruleset was listed
    if rc != 0:
        plan.fail(None, f"nft list table {TABLE_SPEC} failed: {err.strip()}", rc=rc)
    return text


def preflight(plan: Plan, nft: str, replace: str) -> str:
    """Load the rules in a throw-away network namespace: this kernel's own check of them, and how it lists them (the
    declared table in the kernel's own terms); nothing is applied here."""
    unshare = plan.module.get_bin_path("unshare", required=True)
    script = f"{nft} -f /dev/stdin || exit 97; {nft} list table {TABLE_SPEC}"
    rc, out, err = plan.query([unshare, "--net", "--", "/bin/sh", "-c", script], data=replace)
    if rc == 97:
        plan.fail(None, f"nft rejected the rendered rules (nothing applied): {err.strip()}", rules=replace)
    if rc != 0 or not out.startswith(f"table {TABLE_SPEC} {{"):
        plan.fail(None, "could not load the rules in a scratch network namespace to compare them with the kernel "
                        f"(needs root with CAP_SYS_ADMIN): {err.strip()}")
    return out


def supersede_pending(plan: Plan) -> None:
    """A new change replaces any earlier one still waiting for confirmation (or rolled back): its timer
    would otherwise roll back on top of this change, and its files would outlive it."""
    entries = plan.listdir(RUN)
    if entries:
        plan.command(["systemctl", "stop", ROLLBACK_UNIT.format(token="*") + ".timer"], changed=False, check=False)
    for entry in entries:
        plan.remove(plan.guard(RUN.child, entry))


def plan_transaction(plan: Plan, nft: str, replace: str | None, current_text: str, boot_rules: str | None,
                     texts: tuple[str, str] | None, boot_changed: bool, timeout: int,
                     record: str | None = None) -> None:
    """Stage the change under RUN, arm the rollback (when the kernel changes and TIMEOUT > 0) and apply. Armed, the
    action plugin confirms it over a fresh connection (_nat_confirm.plan_confirm), which promotes the staged boot
    rules and the metrics' RECORD; unarmed, it is the boot state at once."""
    token = secrets.token_hex(6)
    supersede_pending(plan)
    plan.directory(RUN, 0o700)
    unit = ROLLBACK_UNIT.format(token=token)
    files = staged(token)
    contents = []
    if boot_rules is not None and timeout:
        contents.append(("boot", boot_rules, 0o644))
    if record is not None and timeout:
        contents.append(("confirmed", record, 0o644))
    if replace is not None:
        contents.append(("pending", replace, 0o600))
    if timeout:
        if plan.module.get_bin_path("systemd-run") is None or plan.kind(target("/run", "systemd", "system")) != "dir":
            plan.fail("rollback_timeout", "rollback_timeout needs systemd (systemd-run) on the host; set "
                                          "rollback_timeout: 0 to apply without the confirm step")
        contents.append(("rollback", render_replace(current_text or None), 0o600))
    stage = [FileStep(f"stage {files[kind].path}", tgt=files[kind], content=content, mode=mode)
             for kind, content, mode in contents]
    before, after = diff_texts(plan, texts, boot_rules if boot_changed else False)
    arm = ["systemd-run", "--quiet", "--collect", f"--unit={unit}", f"--on-active={timeout}s",
           "--timer-property=AccuracySec=100ms", f"--description=netreach NAT rollback of change {token}",
           "/bin/sh", "-c", render_rollback(nft, files["rollback"].path, files["rolled-back"].path)]
    plan.transaction(TransactionStep(
        f"NAT change {token}", True, before, after, stage=stage, arm=arm if timeout else None,
        disarm=["systemctl", "stop", f"{unit}.timer"] if timeout else None,
        apply=[nft, "-f", files["pending"].path] if replace is not None else None,
        pending={"token": token, "timeout": timeout, "timer": f"{unit}.timer", "marker": files["rolled-back"].path}))
    if not timeout:
        plan_boot_state(plan, boot_rules)


def diff_texts(plan: Plan, texts: tuple[str, str] | None, boot_rules: str | None | bool) -> tuple[str, str]:
    """The kernel's listing before and after (TEXTS, when it changes) and the boot state (BOOT_RULES False: as is)."""
    before, after = "", ""
    if texts is not None:
        before += f"# nft list table {TABLE_SPEC}\n{texts[0]}"
        after += f"# nft list table {TABLE_SPEC}\n{texts[1]}"
    if boot_rules is False:
        return before, after
    present = plan.kind(BOOT_RULES) is not None
    before += f"# boot state ({BOOT_RULES.path}, {UNIT}): {'present' if present else 'none'}\n"
    after += (f"# boot state ({BOOT_RULES.path}, {UNIT}): "
              f"{'the table above, once confirmed' if boot_rules else 'none'}\n")
    return before, after
