"""A tunnel_server change with rollback_timeout: the drop-in and authorized_keys as one armed change of the
engine (snapshot, timer, sshd reloaded by the delayed apply), a drop-in sshd -t rejects put back with the timer
stopped at once, nothing armed without a change, the bounds of rollback_timeout."""
from __future__ import annotations

import json
import os

import pytest

from ansible_collections.netreach.tunnels.plugins.module_utils._declaration import DeclarationError
from ansible_collections.netreach.tunnels.plugins.module_utils._engine import Plan
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_server import parse_server
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_server_apply import plan_server
from fakehost import Failed, FakeModule, snapshot, systemctl_show, unit_properties

from test_tunnel_server_plan import HOME, PARAMS, host, real

DROPIN = "/etc/ssh/sshd_config.d/50-netreach-tunnels.conf"
PENDING = "/var/lib/netreach/pending/sshd-50-netreach-tunnels"
ANSWERS = {("systemctl", "show"): systemctl_show(lambda unit: unit_properties(True, True)),
           # No earlier change is armed: its timers are not active.
           ("systemctl", "is-active"): (3, "", "")}


def run(tmp_path, params=None, check=False, answers=None):
    module = FakeModule(tmp_path, check_mode=check, answers={**ANSWERS, **(answers or {})})
    os.makedirs(real(tmp_path, "/run/systemd/system"), exist_ok=True)
    plan = Plan(module)
    extra = plan_server(plan, parse_server(dict(PARAMS, **(params or {}))))
    return plan.commit(**extra), module


def read(tmp_path, path):
    with open(real(tmp_path, path), encoding="utf-8") as stream:
        return stream.read()


@pytest.mark.parametrize("value", [-1, 9, 3601, 10 ** 9, True, "30"])
def test_rollback_timeout_out_of_bounds_names_the_field(value):
    with pytest.raises(DeclarationError) as caught:
        parse_server(dict(PARAMS, rollback_timeout=value))
    assert caught.value.field == "rollback_timeout" and "10 to 3600" in str(caught.value)


def test_zero_and_the_bounds_are_accepted():
    assert parse_server(PARAMS).rollback_timeout == 0
    assert [parse_server(dict(PARAMS, rollback_timeout=v)).rollback_timeout for v in (10, 3600)] == [10, 3600]


def test_a_change_goes_live_armed_and_sshd_reloads_after_the_module_returned(tmp_path):
    host(tmp_path)
    run(tmp_path)
    old_dropin, old_keys = read(tmp_path, DROPIN), read(tmp_path, f"{HOME}/.ssh/authorized_keys")
    result, module = run(tmp_path, {"ports": [2022], "rollback_timeout": 30})
    assert result["changed"] and result["sshd_reloaded"]
    [pending] = result["pending_confirms"]
    assert pending["directory"] == PENDING and pending["timeout"] == 30
    assert pending["restores"] == "put the previous authorized_keys and sshd drop-in back by itself and reloaded sshd"
    runs = [args for args in module.commands if args[0] == "systemd-run"]
    assert len(runs) == 2 and "--on-active=150s" in runs[0] and "--on-active=2s" in runs[1]
    assert ["sshd", "-t", "-f", "/etc/ssh/sshd_config"] in module.commands, "the drop-in is still checked live"
    assert not [args for args in module.commands if args[:2] == ["systemctl", "reload"]], \
        "sshd is reloaded by the delayed apply, not over the managing connection"
    assert "Port 2022" in read(tmp_path, DROPIN)
    manifest = json.loads(read(tmp_path, f"{PENDING}/manifest.json"))
    assert manifest["apply"] == [["systemctl", "reload", "ssh.service"]]
    assert manifest["after_restore"] == [["systemctl", "reload", "ssh.service"]]
    snapped = {item["path"]: item["snapshot"] for item in manifest["files"]}
    assert read(tmp_path, f"{PENDING}/{snapped[DROPIN]}") == old_dropin
    assert old_keys == read(tmp_path, f"{HOME}/.ssh/authorized_keys"), "unchanged keys are not part of the change"


def test_a_key_change_alone_is_armed_without_a_reload(tmp_path):
    host(tmp_path)
    run(tmp_path)
    old_keys = read(tmp_path, f"{HOME}/.ssh/authorized_keys")
    entry = dict(PARAMS["entries"][0], public_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIREKEYED")
    result, _module = run(tmp_path, {"entries": [entry], "rollback_timeout": 30})
    assert result["pending_confirms"] and not result["sshd_reloaded"]
    manifest = json.loads(read(tmp_path, f"{PENDING}/manifest.json"))
    [item] = manifest["files"]
    assert item["path"] == f"{HOME}/.ssh/authorized_keys" and item["mode"] == 0o600
    assert read(tmp_path, f"{PENDING}/{item['snapshot']}") == old_keys
    assert "REKEYED" in read(tmp_path, f"{HOME}/.ssh/authorized_keys")
    assert manifest["apply"] == [], "sshd reads authorized_keys per login: nothing to reload"


def test_no_change_arms_nothing_and_check_mode_writes_nothing(tmp_path):
    host(tmp_path)
    run(tmp_path)
    result, _module = run(tmp_path, {"rollback_timeout": 30})
    assert "pending_confirms" not in result, "only the confirm program and boot unit are new"
    result, module = run(tmp_path, {"rollback_timeout": 30})
    assert not result["changed"] and "pending_confirms" not in result
    before = snapshot(str(tmp_path))
    result, module = run(tmp_path, {"ports": [2022], "rollback_timeout": 30}, check=True)
    assert result["changed"] and snapshot(str(tmp_path)) == before
    assert not [args for args in module.commands if args[0] == "systemd-run"]


def test_a_dropin_sshd_rejects_after_arming_is_put_back_and_the_change_aborted_at_once(tmp_path):
    host(tmp_path)
    run(tmp_path)
    previous = read(tmp_path, DROPIN)
    module = FakeModule(tmp_path, answers={**ANSWERS, ("sshd", "-t"): (255, "", "Bad configuration option")})
    os.makedirs(real(tmp_path, "/run/systemd/system"), exist_ok=True)
    plan = Plan(module)
    extra = plan_server(plan, parse_server(dict(PARAMS, ports=[2022], rollback_timeout=30)))
    with pytest.raises(Failed) as failure:
        plan.commit(**extra)
    assert failure.value.result["field"] == "sshd_dropin" and "put back" in failure.value.result["msg"]
    assert read(tmp_path, DROPIN) == previous
    # The host program puts every staged file back and stops the timer (no timer left to refuse the next run).
    aborts = [args for args in module.commands if "abort" in args]
    assert aborts and aborts[0][-2:] == [PENDING, "the module failed before the change went live"]
    assert module.commands.index(aborts[0]) > module.commands.index(["sshd", "-t", "-f", "/etc/ssh/sshd_config"])
    assert not [args for args in module.commands if args[0] == "systemd-run" and "apply" in args]
