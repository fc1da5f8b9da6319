"""All of a host's tunnels as one plan (ssh_tunnels) against a fake root: the four steps for 20 tunnels, the
undeclared ones removed (confined: a link refused), per-tunnel reports, masked diff, keys only."""
from __future__ import annotations

import os

import pytest

from ansible_collections.netreach.tunnels.plugins.module_utils import _tunnel_many as many
from ansible_collections.netreach.tunnels.plugins.module_utils._declaration import DeclarationError
from fakehost import Failed, FakeModule, snapshot
from test_tunnel_plan import HOSTILE, PASSWORD, TUNNEL, Units, changing_commands, real

ITEM = dict(TUNNEL, state="started", enabled=True, remove_key=False, proxy=None)


def items(count: int, first: int = 0) -> list[dict]:
    return [dict(ITEM, name=f"t{index:02}", local_forwards=[f"{13000 + index}:localhost:80"])
            for index in range(first, first + count)]


def run(tmp_path, tunnels: list, check: bool = False, units: Units | None = None, exclusive: bool = True,
        keys_only: bool = False) -> tuple[dict, dict, FakeModule]:
    module = FakeModule(tmp_path, check_mode=check, answers=(units or Units()).answers())
    plan = many.SharedPlan(module, secrets=[many.proxy_password(item) for item in tunnels])
    requests = many.parse_tunnels(tunnels, keys_only)
    report = many.plan_keys(plan, requests) if keys_only else many.plan_tunnels(plan, tunnels, requests, exclusive)
    result = plan.commit()
    return result, report(), module


def units_on(tmp_path) -> list[str]:
    return sorted(name for name in os.listdir(real(tmp_path, "/etc/systemd/system")) if name.startswith("netreach-"))


def test_twenty_tunnels_go_through_the_four_steps_in_one_plan(tmp_path):
    units = Units()
    declared = items(20)
    before = snapshot(str(tmp_path))
    first, rows, module = run(tmp_path, declared, check=True, units=units)
    assert first["changed"] and snapshot(str(tmp_path)) == before and changing_commands(module) == []
    assert sorted(rows) == [item["name"] for item in declared] and all(row["changed"] for row in rows.values())
    applied, rows, module = run(tmp_path, declared, units=units)
    assert applied["changed"] and set(first) == set(applied)
    assert len(units_on(tmp_path)) == 20 and len(units.active) == 20
    # One daemon-reload for all of them, and the shared helpers written once.
    assert module.commands.count(["systemctl", "daemon-reload"]) == 1
    assert applied["diff"]["after"].count("/usr/local/lib/netreach/proxy-connect") == 1
    assert rows["t07"]["public_key"].startswith("ssh-ed25519 ") and rows["t07"]["unit"] == "netreach-tunnel@t07.service"
    again, rows, _module = run(tmp_path, declared, check=True, units=units)
    rerun, rows, module = run(tmp_path, declared, units=units)
    assert not again["changed"] and not rerun["changed"], again["diff"]
    assert not any(row["changed"] for row in rows.values()) and changing_commands(module) == []


def test_exclusive_removes_the_undeclared_tunnels_first_and_keeps_their_keys(tmp_path):
    units = Units()
    run(tmp_path, items(20), units=units)
    kept = items(10)
    check, rows, module = run(tmp_path, kept, check=True, units=units)
    assert check["changed"] and changing_commands(module) == [] and len(units_on(tmp_path)) == 20
    assert sorted(name for name, row in rows.items() if row["state"] == "absent") == [f"t{i}" for i in range(10, 20)]
    result, rows, module = run(tmp_path, kept, units=units)
    assert result["changed"] and units_on(tmp_path) == [f"netreach-tunnel@t{i:02}.service" for i in range(10)]
    assert not any(rows[f"t{i:02}"]["changed"] for i in range(10))
    assert all(rows[f"t{i}"]["changed"] and not rows[f"t{i}"]["declared"] for i in range(10, 20))
    disabling = [args for args in module.commands if args[:3] == ["systemctl", "disable", "--now"]]
    assert len(disabling) == 10
    assert sorted(os.listdir(real(tmp_path, "/etc/netreach/tunnels/t15"))) == ["id_ed25519", "id_ed25519.pub"]
    assert not run(tmp_path, kept, units=units)[0]["changed"]


def test_removals_come_before_the_declared_tunnels_start(tmp_path):
    units = Units()
    run(tmp_path, items(2), units=units)
    module_commands = run(tmp_path, [dict(items(2)[1], name="renamed")], units=units)[2].commands
    assert module_commands.index(["systemctl", "disable", "--now", "netreach-tunnel@t00.service"]) < \
        module_commands.index(["systemctl", "start", "netreach-tunnel@renamed.service"])


def test_without_exclusive_other_tunnels_stay(tmp_path):
    units = Units()
    run(tmp_path, items(3), units=units)
    result, rows, _module = run(tmp_path, items(1), exclusive=False, units=units)
    assert not result["changed"] and len(units_on(tmp_path)) == 3 and list(rows) == ["t00"]


def test_a_renamed_tunnel_takes_the_port_of_the_tunnel_it_replaces(tmp_path):
    run(tmp_path, items(2))
    renamed = [items(1)[0], dict(items(2)[1], name="renamed")]
    result, rows, _module = run(tmp_path, renamed)
    assert result["changed"] and rows["t01"]["state"] == "absent" and rows["renamed"]["changed"]


def test_two_declared_tunnels_on_one_port_are_refused_before_anything_changes(tmp_path):
    before = snapshot(str(tmp_path))
    clash = [items(1)[0], dict(items(1)[0], name="other")]
    with pytest.raises(Failed) as failure:
        run(tmp_path, clash)
    assert failure.value.result["field"] == "local_forwards" and "tunnel t00" in failure.value.result["msg"]
    assert snapshot(str(tmp_path)) == before


def test_a_tunnel_left_on_the_host_still_guards_its_port_without_exclusive(tmp_path):
    run(tmp_path, items(1))
    before = snapshot(str(tmp_path))
    with pytest.raises(Failed) as failure:
        run(tmp_path, [dict(items(1)[0], name="other")], exclusive=False)
    assert "tunnel t00" in failure.value.result["msg"] and snapshot(str(tmp_path)) == before


def test_a_linked_unit_of_an_undeclared_tunnel_is_refused_and_nothing_changes(tmp_path):
    run(tmp_path, items(2))
    unit = real(tmp_path, "/etc/systemd/system/netreach-tunnel@evil.service")
    os.symlink(real(tmp_path, "/etc/passwd"), unit)
    before = snapshot(str(tmp_path))
    with pytest.raises(Failed) as failure:
        run(tmp_path, items(1))
    assert failure.value.result["field"] == "name" and "link" in failure.value.result["msg"]
    assert snapshot(str(tmp_path)) == before


def test_a_linked_directory_of_an_undeclared_tunnel_is_refused(tmp_path):
    run(tmp_path, items(2))
    directory = real(tmp_path, "/etc/netreach/tunnels/t01")
    for entry in os.listdir(directory):
        os.unlink(os.path.join(directory, entry))
    os.rmdir(directory)
    os.makedirs(real(tmp_path, "/root/.ssh"))
    os.symlink(real(tmp_path, "/root/.ssh"), directory)
    before = snapshot(str(tmp_path))
    with pytest.raises(Failed):
        run(tmp_path, items(1))
    assert snapshot(str(tmp_path)) == before


@pytest.mark.parametrize("keys_only", [False, True])
@pytest.mark.parametrize("state", many.STATES)
@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_name_is_refused_naming_the_item(tmp_path, name, state, keys_only):
    with pytest.raises(DeclarationError) as failure:
        many.parse_tunnels([items(1)[0], dict(ITEM, name=name, state=state)], keys_only)
    assert failure.value.field == "tunnels[1].name"


def test_a_name_declared_twice_is_refused():
    with pytest.raises(DeclarationError) as failure:
        many.parse_tunnels(items(1) + [dict(ITEM, name="t00", state="absent")])
    assert failure.value.field == "tunnels[1].name" and "twice" in failure.value.message


def test_a_bad_field_is_named_with_its_item():
    with pytest.raises(DeclarationError) as failure:
        many.parse_tunnels(items(2) + [dict(ITEM, name="x", keepalive_interval=0)])
    assert failure.value.field == "tunnels[2].keepalive_interval"


def test_the_diff_masks_every_tunnels_proxy_password(tmp_path):
    proxied = [dict(item, proxy={"type": "http", "host": "proxy.corp", "port": 3128, "username": "alice",
                                 "password": f"{PASSWORD}{index}"}) for index, item in enumerate(items(3))]
    result, rows, _module = run(tmp_path, proxied, check=True)
    text = str(result) + str(rows)
    assert result["changed"] and not any(f"{PASSWORD}{index}" in text for index in range(3)) and "secret-key" not in text
    applied, rows, _module = run(tmp_path, proxied)
    assert PASSWORD not in str(applied) + str(rows)


def test_an_absent_item_removes_its_tunnel(tmp_path):
    run(tmp_path, items(2))
    result, rows, _module = run(tmp_path, [items(1)[0], dict(ITEM, name="t01", state="absent", remove_key=True)],
                                exclusive=False)
    assert result["changed"] and rows["t01"]["declared"] and not os.path.exists(real(tmp_path, "/etc/netreach/tunnels/t01"))


def test_keys_only_makes_the_keys_and_nothing_else(tmp_path):
    units = Units()
    for check, changed in ((True, True), (False, True), (True, False), (False, False)):
        result, rows, module = run(tmp_path, items(5), check=check, units=units, keys_only=True)
        assert result["changed"] is changed and sorted(rows) == [f"t{i:02}" for i in range(5)]
    assert rows["t03"]["public_key"].startswith("ssh-ed25519 ") and not os.path.exists(real(tmp_path, "/etc/systemd/system"))
