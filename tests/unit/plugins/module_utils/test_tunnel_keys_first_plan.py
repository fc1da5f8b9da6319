"""ssh_tunnels' keys_first against a fake root: only the keys are made, the rest of the declaration is planned and
reported as pending (a settled host: pending false, changed false), with the host keys each tunnel pins now."""
from __future__ import annotations

import os

import pytest

from ansible_collections.netreach.tunnels.plugins.module_utils import _tunnel_many as many
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_keys_first import keys_first
from fakehost import Failed, FakeModule, snapshot
from test_tunnel_many_plan import ITEM, items
from test_tunnel_many_plan import run as full_run
from test_tunnel_plan import Units, changing_commands, real

METRICS = "/var/lib/prometheus/node-exporter"
NEW_KEY = "newshost ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAANEW"


def first(tmp_path, tunnels: list, check: bool = False, units: Units | None = None, exclusive: bool = True,
          metrics_dir: str | None = None, diff: bool = False) -> tuple[dict, FakeModule]:
    module = FakeModule(tmp_path, check_mode=check, answers=(units or Units()).answers())
    module._diff = diff
    requests = many.parse_tunnels(tunnels)
    secrets = [many.proxy_password(item) for item in tunnels]
    return keys_first(module, tunnels, requests, exclusive, metrics_dir, 15, secrets), module


def test_a_fresh_host_gets_its_keys_only_and_is_pending(tmp_path):
    units = Units()
    before = snapshot(str(tmp_path))
    check, module = first(tmp_path, items(3), check=True, units=units)
    assert check["changed"] and check["pending"] and snapshot(str(tmp_path)) == before
    assert changing_commands(module) == [] and check["pinned"] == {"t00": [], "t01": [], "t02": []}
    applied, module = first(tmp_path, items(3), units=units)
    assert applied["changed"] and applied["pending"]
    assert sorted(os.listdir(real(tmp_path, "/etc/netreach/tunnels/t01"))) == ["id_ed25519", "id_ed25519.pub"]
    assert not os.path.exists(real(tmp_path, "/etc/systemd/system")) and not units.active
    assert applied["tunnels"]["t02"]["public_key"].startswith("ssh-ed25519 ")
    again, _module = first(tmp_path, items(3), units=units)
    assert not again["changed"] and again["pending"], "the tunnels themselves are still to be made"


@pytest.mark.parametrize("check", [True, False])
def test_a_settled_host_is_neither_changed_nor_pending_and_reports_its_pins(tmp_path, check):
    units = Units()
    declared = items(20)
    full_run(tmp_path, declared, units=units)
    before = snapshot(str(tmp_path))
    result, module = first(tmp_path, declared, check=check, units=units, diff=True)
    assert not result["changed"] and not result["pending"], result
    assert result["diff"] == {"before": "", "after": ""} and changing_commands(module) == []
    assert snapshot(str(tmp_path)) == before
    assert result["pinned"]["t07"] == ITEM["known_hosts"]


def test_the_known_hosts_to_pin_are_compared_by_the_controller_not_planned(tmp_path):
    units = Units()
    full_run(tmp_path, items(2), units=units)
    result, _module = first(tmp_path, [dict(item, known_hosts=[NEW_KEY]) for item in items(2)], units=units)
    assert not result["pending"] and result["pinned"]["t01"] == ITEM["known_hosts"]


@pytest.mark.parametrize("change", ["forward", "state", "removal", "metrics", "enabled"])
def test_any_change_beyond_the_keys_is_pending_and_not_made(tmp_path, change):
    units = Units()
    full_run(tmp_path, items(3), units=units)
    declared = items(3)
    metrics_dir = None
    if change == "forward":
        declared[1] = dict(declared[1], local_forwards=["14001:localhost:81"])
    elif change == "state":
        units.active.discard("netreach-tunnel@t02.service")
    elif change == "removal":
        declared = declared[:2]
    elif change == "metrics":
        metrics_dir = METRICS
    else:
        declared[0] = dict(declared[0], enabled=False)
    before = snapshot(str(tmp_path))
    result, module = first(tmp_path, declared, units=units, metrics_dir=metrics_dir)
    assert result["pending"] and not result["changed"], result
    assert snapshot(str(tmp_path)) == before and changing_commands(module) == []


def test_an_undeclared_tunnel_is_pending_only_with_exclusive(tmp_path):
    units = Units()
    full_run(tmp_path, items(3), units=units)
    assert first(tmp_path, items(2), units=units)[0]["pending"]
    assert not first(tmp_path, items(2), units=units, exclusive=False)[0]["pending"]


def test_a_declaration_the_full_call_refuses_fails_before_any_key_is_made(tmp_path):
    before = snapshot(str(tmp_path))
    clash = [items(1)[0], dict(items(1)[0], name="other")]
    with pytest.raises(Failed) as failure:
        first(tmp_path, clash)
    assert failure.value.result["field"] == "local_forwards" and snapshot(str(tmp_path)) == before


def test_the_diff_shows_the_keys_only(tmp_path):
    result, _module = first(tmp_path, items(2), check=True, diff=True)
    assert "id_ed25519" in result["diff"]["after"] and "ssh_config" not in result["diff"]["after"]
    assert "netreach-tunnel@" not in result["diff"]["after"]
