# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: the plan of all of a host's tunnels at once. Not a public API.
"""A host's whole tunnel state as one plan of the change engine: ssh_tunnels' tunnels (the single-tunnel plan of
_tunnel_apply.py for each), the netreach tunnels no longer declared removed first, one daemon-reload, then the
units' states. What the tunnels share (their run_as user, the helpers, the parent directories) is planned once.
"""

from __future__ import annotations

from ansible_collections.netreach.tunnels.plugins.module_utils._declaration import (
    DeclarationError,
    proxy_argument_spec,
)
from ansible_collections.netreach.tunnels.plugins.module_utils._engine import Plan
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel import (
    PROXY_TYPES,
    Tunnel,
    forwards_argument_spec,
    parse_identity,
    parse_request,
    unit_name,
)
from ansible_collections.netreach.tunnels.plugins.module_utils._engine_rollback import plan_support
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_apply import (
    arms,
    check_bind_conflicts,
    check_systemd,
    client_listens,
    listens_on_host,
    plan_armed,
    plan_key,
    plan_removal,
    plan_tunnel_files,
    plan_unit_state,
    public_key,
    unit_names,
)
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_render import ssh_command

STATES = ["started", "stopped", "restarted", "present", "absent"]


def tunnel_argument_spec() -> dict:
    """The options of one tunnel: ssh_tunnel's, and each item of ssh_tunnels' tunnels (written once)."""
    return dict(
        name=dict(type="str", required=True),
        server=dict(type="str"),
        port=dict(type="int", default=22),
        user=dict(type="str", default="tunnel"),
        identity_file=dict(type="path"),
        known_hosts=dict(type="list", elements="str", default=[]),
        jump_hosts=dict(type="list", elements="str", default=[]),
        proxy=proxy_argument_spec(PROXY_TYPES),
        engine=dict(type="str", choices=["ssh", "autossh"], default="ssh"),
        keepalive_interval=dict(type="int", default=2),
        keepalive_count_max=dict(type="int", default=3),
        connect_timeout=dict(type="int", default=10),
        restart_delay=dict(type="int", default=1),
        restart_max_delay=dict(type="int", default=30),
        run_as=dict(type="str", default="netreach-tunnel"),
        state=dict(type="str", choices=STATES, default="started"),
        enabled=dict(type="bool", default=True),
        remove_key=dict(type="bool", default=False),
        **forwards_argument_spec(),
        # The escape hatch of extra ssh_config keywords (allow-listed), documented by the doc fragment ssh_options.
        ssh_options=dict(type="dict", default={}),
        # Confirm or roll back (documented by the doc fragment rollback).
        rollback_timeout=dict(type="int", default=0),
    )


def proxy_password(params: dict) -> str | None:
    return (params.get("proxy") or {}).get("password")


class SharedPlan(Plan):
    """A Plan for several tunnels: a user, directory or file that an earlier tunnel planned already is planned
    once (a second useradd would fail; a second write of a helper would only repeat itself in the diff)."""

    def __init__(self, module, secrets: list[str] | None = None) -> None:
        super().__init__(module, secrets=secrets)
        self._planned: set[tuple[str, str]] = set()

    def _first(self, kind: str, key: str) -> bool:
        if (kind, key) in self._planned:
            return False
        self._planned.add((kind, key))
        return True

    def system_user(self, name: str, home: str = "/nonexistent") -> bool:
        return super().system_user(name, home) if self._first("user", name) else False

    def directory(self, tgt, *args, **kwargs) -> bool:
        return super().directory(tgt, *args, **kwargs) if self._first("dir", tgt.path) else False

    def file(self, tgt, *args, **kwargs) -> bool:
        return super().file(tgt, *args, **kwargs) if self._first("file", tgt.path) else False


def _declared(index: int, parse, item: dict):
    try:
        return parse(item)
    except DeclarationError as exc:
        raise DeclarationError(f"tunnels[{index}].{exc.field}", exc.message) from None


def parse_tunnels(items: list, keys_only: bool = False) -> list:
    """Each item as ssh_tunnel parses it (a Tunnel, or the name state=absent removes; with KEYS_ONLY its
    Identity), fields named tunnels[INDEX].FIELD; a name declared twice is refused."""
    parsed, seen = [], set()
    for index, item in enumerate(items or []):
        request = _declared(index, parse_identity if keys_only else parse_request, item)
        name = request if isinstance(request, str) else request.name
        if name in seen:
            raise DeclarationError(f"tunnels[{index}].name", f"tunnel {name} is declared twice")
        seen.add(name)
        parsed.append(request)
    return parsed


class Ledger:
    """Which of the plan's steps each tunnel added, to report per tunnel whether it changed."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.steps: dict[str, list] = {}

    def record(self, name: str, function, *args):
        start = len(self.plan.steps)
        outcome = function(*args)
        self.steps.setdefault(name, []).extend(self.plan.steps[start:])
        return outcome

    def changed(self, name: str) -> bool:
        return any(step.changed for step in self.steps.get(name, []))


def _check_binds(plan: Plan, tunnels: list[Tunnel], removed: set) -> None:
    """Each declared tunnel against the tunnels declared before it and the tunnels on the host that this run
    neither declares nor removes (the ones it rewrites or removes bind nothing of their old selves by then)."""
    others = listens_on_host(plan, {tunnel.name for tunnel in tunnels} | removed)
    for tunnel in tunnels:
        check_bind_conflicts(plan, tunnel, others)
        others[tunnel.name] = [fwd.listen for fwd in client_listens(tunnel)]


def plan_tunnels(plan: Plan, items: list, requests: list, exclusive: bool, key_steps: list | None = None) -> dict:
    """Every tunnel of REQUESTS (parsed from ITEMS, the module's tunnels) in one plan; with EXCLUSIVE the netreach
    tunnels on the host that are not declared are removed, before anything else. Returns the per-tunnel report
    builder: call it after the commit. KEY_STEPS, when given, receives the steps of the keys (and run_as users)."""
    pairs = list(zip(requests, items))
    tunnels = [request for request, dummy in pairs if not isinstance(request, str)]
    params = {request.name: item for request, item in pairs if not isinstance(request, str)}
    absent = {request: item for request, item in pairs if isinstance(request, str)}
    undeclared = sorted(set(unit_names(plan)) - set(params) - set(absent)) if exclusive else []
    _check_binds(plan, tunnels, set(absent) | set(undeclared))
    # Every tunnel's unit state comes from one `systemctl show` of all their units.
    plan.expect_units(*(tunnel.unit for tunnel in tunnels))
    for tunnel in tunnels:
        check_systemd(plan, params[tunnel.name]["state"])
    ledger = Ledger(plan)
    for name in sorted(absent) + undeclared:
        ledger.record(name, plan_removal, plan, name, bool((absent.get(name) or {}).get("remove_key")))
    files_changed, armed = {}, set()
    if any(arms(tunnel, params[tunnel.name]["state"]) for tunnel in tunnels):
        plan_support(plan)
    for tunnel in tunnels:
        start = len(plan.steps)
        ledger.record(tunnel.name, plan_key, plan, tunnel.identity)
        if key_steps is not None:
            key_steps.extend(plan.steps[start:])
        start = len(plan.steps)
        config, unit = ledger.record(tunnel.name, plan_tunnel_files, plan, tunnel)
        files_changed[tunnel.name] = config or unit
        if arms(tunnel, params[tunnel.name]["state"]) and (config or unit):
            plan_armed(plan, tunnel, start)  # its steps are in the ledger already
            armed.add(tunnel.name)
    plan.daemon_reload()
    for tunnel in tunnels:
        item = params[tunnel.name]
        if tunnel.name in armed:  # the host restarts it once the module returned
            ledger.record(tunnel.name, plan.unit, tunnel.unit, None, item["enabled"])
            continue
        ledger.record(tunnel.name, plan_unit_state, plan, tunnel, item["state"], item["enabled"],
                      files_changed[tunnel.name])

    def report() -> dict:
        found = {name: dict(changed=ledger.changed(name), unit=unit_name(name), state="absent",
                            declared=name in absent) for name in sorted(absent) + undeclared}
        for tunnel in tunnels:
            found[tunnel.name] = dict(changed=ledger.changed(tunnel.name), unit=tunnel.unit,
                                      state=params[tunnel.name]["state"], declared=True,
                                      public_key=public_key(plan, tunnel.identity), command=ssh_command(tunnel),
                                      forwards=[fwd.as_dict() for fwd in tunnel.forwards])
        return found

    return report


def plan_keys(plan: Plan, identities: list) -> dict:
    """Only the key pairs (and run_as users) of IDENTITIES; returns the per-tunnel report builder."""
    ledger = Ledger(plan)
    for identity in identities:
        ledger.record(identity.name, plan_key, plan, identity)

    def report() -> dict:
        return {identity.name: dict(changed=ledger.changed(identity.name), identity_file=identity.path,
                                    public_key=public_key(plan, identity)) for identity in identities}

    return report
