# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: the plan of a tunnel on its client. Not a public API.
"""What a tunnel needs on this host, as steps of the change engine's Plan: only plans, never writes.

Every path is a Target under a root the tunnel owns: /etc + netreach/tunnels/NAME, /etc/systemd/system + a unit
of our prefix, /usr/local/lib + netreach. An identity file outside the tunnel's directory is the administrator's:
it is read (its public half), never created, chowned or removed.
"""

from __future__ import annotations

import shutil

from ansible_collections.netreach.tunnels.plugins.module_utils._engine import ConfinementError, Plan, Target, target
from ansible_collections.netreach.tunnels.plugins.module_utils._engine_rollback import arm_files, plan_support
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel import (
    CONFIG_PARTS,
    CONFIG_ROOT,
    KEY_NAME,
    UNIT_PREFIX,
    Identity,
    Tunnel,
    check_tunnel_name,
    listens_overlap,
    unit_name,
)
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_helpers import HELPERS
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_ssh_options import cpu_has_aes
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_render import (
    HELPER_DIR,
    parse_ssh_config,
    render_known_hosts,
    render_proxy_auth,
    render_ssh_config,
    render_unit,
)

UNIT_DIR = "/etc/systemd/system"
OUR_UNITS = "netreach-"


def tunnel_target(name: str, *parts: str) -> Target:
    return target(CONFIG_ROOT, *CONFIG_PARTS, check_tunnel_name(name), *parts, field="name")


def unit_target(unit: str, field: str = "name") -> Target:
    """A unit file of ours: directly in /etc/systemd/system and named with our prefix, nothing else."""
    if not unit.startswith(OUR_UNITS):
        raise ConfinementError(field, f"{unit} is not a netreach unit; refusing to touch it")
    return target(UNIT_DIR, unit, field=field)


def helper_target(name: str) -> Target:
    root, _sep, last = HELPER_DIR.rpartition("/")
    return target(root, last, name, field="name")


def _refuse_link(plan: Plan, tgt: Target) -> None:
    plan.guard(plan.host.refuse_link, tgt)


def plan_key(plan: Plan, identity: Identity) -> None:
    """The tunnel's run_as user and key pair: ours created in the tunnel's directory, a foreign one only checked."""
    plan.system_user(identity.run_as)
    if not identity.managed:
        if plan.read_foreign(identity.path) is None:
            plan.fail("identity_file", f"identity_file: {identity.path} does not exist; netreach creates keys only in "
                                       f"{tunnel_target(identity.name).path}/, an identity file elsewhere is yours to "
                                       "provide (readable by run_as)")
        return
    directory = tunnel_target(identity.name)
    _refuse_link(plan, directory)
    # Every level named: the engine makes a missing parent 0700, and run_as must pass through them.
    for level in range(1, len(CONFIG_PARTS) + 1):
        plan.directory(target(CONFIG_ROOT, *CONFIG_PARTS[:level], field="name"), 0o755)
    plan.directory(directory, 0o750, "root", identity.run_as)
    private, public = directory.child(KEY_NAME), directory.child(f"{KEY_NAME}.pub")
    current = plan.read(private)
    if current is None:
        plan.generated(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"netreach-tunnel-{identity.name}",
                        "-f", f"%s/{KEY_NAME}"],
                       [(KEY_NAME, private, 0o600, identity.run_as, None),
                        (f"{KEY_NAME}.pub", public, 0o644, "root", None)])
    else:
        plan.file(private, current, 0o600, identity.run_as, show=False)


def public_key(plan: Plan, identity: Identity) -> str:
    """The public half of IDENTITY (read after the commit: empty in check mode before the key exists)."""
    if identity.managed:
        text = plan.read(tunnel_target(identity.name, f"{KEY_NAME}.pub"))
    else:
        text = plan.read_foreign(f"{identity.path}.pub")
    return (text or "").strip()


def client_listens(tunnel: Tunnel) -> list:
    """The forwards TUNNEL listens with on this host: remote forwards listen on their servers, where tunnels to
    other servers may use the same port."""
    return [fwd for fwd in tunnel.forwards if fwd.kind != "remote"]


def listens_on_host(plan: Plan, skip: set) -> dict:
    """Tunnel name -> the client-side listen specs of every netreach tunnel on this host but those in SKIP, as
    their ssh_config says."""
    found = {}
    for other in plan.listdir(target(CONFIG_ROOT, *CONFIG_PARTS, field="name")):
        if other in skip:
            continue
        try:
            text = plan.host.read(tunnel_target(other, "ssh_config"))
        except (ConfinementError, ValueError):
            continue  # not a tunnel of ours (an odd name, a link): it binds nothing we wrote
        found[other] = parse_ssh_config(other, text).client_listens
    return found


def check_bind_conflicts(plan: Plan, tunnel: Tunnel, others: dict | None = None) -> None:
    """Fail, before anything changes, when another netreach tunnel listens where this one would: OTHERS (name ->
    listen specs), by default every other tunnel on this host."""
    others = listens_on_host(plan, {tunnel.name}) if others is None else others
    for other, listens in sorted(others.items()):
        for listen in listens:
            for fwd in client_listens(tunnel):
                if listens_overlap(fwd.listen, listen):
                    plan.fail(f"{fwd.kind}_forwards", f"{fwd.kind}_forwards: {fwd.listen} overlaps {listen}, "
                                                      f"which tunnel {other} already binds")


def plan_tunnel_files(plan: Plan, tunnel: Tunnel) -> tuple[bool, bool]:
    """The helpers, the tunnel's own files and its unit: (configuration changed, unit changed); the caller plans
    the daemon-reload before any unit state."""
    directory = tunnel_target(tunnel.name)
    changed = False
    plan.directory(helper_target("x").parent, 0o755)
    for helper, content in sorted(HELPERS.items()):
        changed |= plan.file(helper_target(helper), content, 0o755, show=False)
    # issue 16 (ssh_options branch): the cipher order follows the client's CPU.
    aes_hardware = cpu_has_aes(plan.read_foreign("/proc/cpuinfo"))
    changed |= plan.file(directory.child("ssh_config"), render_ssh_config(tunnel, aes_hardware), 0o644,
                         validate=["ssh", "-G", "-F", "%s", f"netreach-{tunnel.name}"])
    changed |= plan.file(directory.child("known_hosts"), render_known_hosts(tunnel), 0o644)
    changed |= plan.file(directory.child("proxy_auth"), render_proxy_auth(tunnel), 0o600, tunnel.run_as, show=False)
    unit = unit_target(tunnel.unit)
    _refuse_link(plan, unit)
    unit_changed = plan.file(unit, render_unit(tunnel), 0o644)
    return changed, unit_changed


def check_systemd(plan: Plan, state: str) -> None:
    if state != "present" and not shutil.which("systemctl"):
        plan.fail(None, "systemd is required on the tunnel client")


def plan_unit_state(plan: Plan, tunnel: Tunnel, state: str, enabled: bool, files_changed: bool) -> None:
    """The unit state STATE asks for; FILES_CHANGED: its configuration or unit changed in this run."""
    if state == "present":
        return
    active = plan.unit_state(tunnel.unit)[0]
    action = None
    if state == "started" and not active:
        action = "start"
    elif state == "restarted" or (state == "started" and files_changed):
        action = "restart"
    elif state == "stopped" and active:
        action = "stop"
    plan.unit(tunnel.unit, action, enabled=enabled)


def arms(tunnel: Tunnel, state: str) -> bool:
    """Whether a change of TUNNEL goes live armed: with a rollback_timeout, when the run (re)starts the tunnel."""
    return bool(tunnel.rollback_timeout) and state in ("started", "restarted")


def plan_armed(plan: Plan, tunnel: Tunnel, start: int) -> None:
    """The file steps TUNNEL added to PLAN since START, as one armed change: the host restarts the tunnel a moment
    after the module returned, and puts the previous files back (and restarts it again) unless confirmed in time."""
    steps = plan.steps[start:]
    del plan.steps[start:]
    unit = tunnel.unit
    existed = plan.read(unit_target(unit)) is not None
    # Stop, then start: a stop drops the unit's RuntimeDirectory and with it the backoff's count of failures, so
    # the restored tunnel connects at once rather than after the bad one's backoff.
    fresh_start = [["systemctl", "daemon-reload"], ["systemctl", "stop", unit], ["systemctl", "start", unit]]
    restore = ([], fresh_start) if existed else ([["systemctl", "disable", "--now", unit]], fresh_start[:1])
    arm_files(plan, f"tunnel-{tunnel.name}", steps, tunnel.rollback_timeout, fresh_start, restore,
              f"tunnel {tunnel.name}")


def plan_tunnel(plan: Plan, tunnel: Tunnel, state: str, enabled: bool) -> None:
    """Everything TUNNEL needs, then the unit state STATE asks for (armed: see plan_armed)."""
    check_bind_conflicts(plan, tunnel)
    check_systemd(plan, state)
    plan_key(plan, tunnel.identity)
    if arms(tunnel, state):
        plan_support(plan)
    start = len(plan.steps)
    config_changed, unit_changed = plan_tunnel_files(plan, tunnel)
    if arms(tunnel, state) and (config_changed or unit_changed):
        plan_armed(plan, tunnel, start)
        plan.daemon_reload()
        plan.unit(tunnel.unit, enabled=enabled)
        return
    plan.daemon_reload()
    plan_unit_state(plan, tunnel, state, enabled, config_changed or unit_changed)


def plan_removal(plan: Plan, name: str, remove_key: bool) -> None:
    """Tunnel NAME gone: its unit (stopped, disabled, removed) and its directory (but its key unless REMOVE_KEY)."""
    directory = tunnel_target(name)
    unit = unit_target(unit_name(name))
    _refuse_link(plan, unit)
    _refuse_link(plan, directory)
    if plan.kind(unit) is not None:
        plan.command(["systemctl", "disable", "--now", unit.parts[-1]], check=False)
        plan.remove(unit)
        plan.daemon_reload()
    keep = set() if remove_key else {KEY_NAME, f"{KEY_NAME}.pub"}
    plan.remove_tree(directory, keep=keep)


def unit_names(plan: Plan) -> list[str]:
    """The tunnels whose units are on this host (units of our prefix with a valid tunnel name)."""
    names = []
    for entry in plan.listdir(target(UNIT_DIR, field="name")):
        if entry.startswith(UNIT_PREFIX) and entry.endswith(".service"):
            name = entry[len(UNIT_PREFIX):-len(".service")]
            try:
                names.append(check_tunnel_name(name))
            except ValueError:
                continue
    return names
