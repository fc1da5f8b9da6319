"""One `systemctl show` per plan: the units a plan announces (Plan.expect_units) are read with the first one asked
about, their states cached on the plan; ssh_tunnels' plan of 20 tunnels and the tunnel server's plan each ask once."""
from __future__ import annotations

import pytest

from ansible_collections.netreach.tunnels.plugins.module_utils._engine import Plan
from fakehost import FakeModule, systemctl_show, unit_properties
from test_tunnel_many_plan import items, run as run_tunnels
from test_tunnel_plan import Units

PROPERTIES = "--property=ActiveState,UnitFileState,LoadState"


def shows(module: FakeModule) -> list[list[str]]:
    return [args for args in module.commands if args[:2] == ["systemctl", "show"]]


def test_the_announced_units_are_read_in_one_call_with_the_first_one_asked_about(tmp_path):
    states = {"a.service": (True, True), "b.service": (False, True), "c.timer": (True, False)}
    module = FakeModule(tmp_path, answers={("systemctl", "show"): systemctl_show(
        lambda unit: unit_properties(*states[unit]) if unit in states else unit_properties(False, False, False))})
    plan = Plan(module)
    plan.expect_units("a.service", "b.service", "c.timer", "a.service")
    assert plan.unit_state("b.service") == (False, True)
    assert shows(module) == [["systemctl", "show", PROPERTIES, "b.service", "a.service", "c.timer"]]
    assert plan.unit_state("a.service") == (True, True) and plan.unit_state("c.timer") == (True, False)
    assert plan.unit_loaded("a.service") and len(module.commands) == 1
    # A unit nobody announced costs a call of its own, once.
    assert plan.unit_state("d.service") == (False, False) and not plan.unit_loaded("d.service")
    assert shows(module)[1:] == [["systemctl", "show", PROPERTIES, "d.service"]] and len(module.commands) == 2


@pytest.mark.parametrize(("value", "enabled"), [("enabled", True), ("enabled-runtime", True), ("static", True),
                                                ("indirect", True), ("generated", True), ("alias", True),
                                                ("transient", True), ("disabled", False), ("masked", False),
                                                ("linked", False), ("", False)])
def test_enabled_means_what_systemctl_is_enabled_exits_0_for(tmp_path, value, enabled):
    module = FakeModule(tmp_path, answers={("systemctl", "show"): (
        0, f"ActiveState=activating\nUnitFileState={value}\nLoadState=loaded\n", "")})
    assert Plan(module).unit_state("x.service") == (True, enabled)


@pytest.mark.parametrize("answer", [(1, "", "System has not been booted with systemd"),
                                    (0, "ActiveState=active\nUnitFileState=enabled\nLoadState=loaded\n", "")])
def test_no_systemd_or_an_answer_of_another_shape_means_nothing_active_or_enabled(tmp_path, answer):
    """Two units asked, one block (or none) answered: no block is given to the wrong unit."""
    module = FakeModule(tmp_path, answers={("systemctl", "show"): answer})
    plan = Plan(module)
    plan.expect_units("a.service", "b.service")
    assert plan.unit_state("a.service") == (False, False) and plan.unit_state("b.service") == (False, False)
    assert not plan.unit_loaded("a.service") and len(module.commands) == 1


def test_twenty_tunnels_ask_systemd_once_for_all_their_units(tmp_path):
    units = Units()
    declared = items(20)
    for _round in range(2):  # the first run starts them, the second is the idempotent rerun
        _result, _rows, module = run_tunnels(tmp_path, declared, units=units)
        assert len(shows(module)) == 1 and sorted(shows(module)[0][3:]) == \
            sorted(f"netreach-tunnel@{item['name']}.service" for item in declared)
        assert not [args for args in module.commands if args[:2] == ["systemctl", "is-enabled"]]
    assert len(units.active) == 20 and len(units.enabled) == 20
