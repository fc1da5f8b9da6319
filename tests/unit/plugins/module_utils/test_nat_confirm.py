"""nat_rules' confirm run (_nat_confirm.plan_confirm, started by the action plugin over a fresh connection) against
the fake gateway: it disarms the rollback before it promotes, a rollback that won is never persisted, and every
path it touches is one of ours, through the change engine."""
from __future__ import annotations

import os

import pytest

from ansible_collections.netreach.tunnels.plugins.module_utils._engine import Plan
from ansible_collections.netreach.tunnels.plugins.module_utils._engine_steps import FileStep, RemoveStep
from ansible_collections.netreach.tunnels.plugins.module_utils._nat_confirm import plan_confirm
from fakehost import Failed, snapshot
from nat_fakehost import Kernel, NatModule, confirm, run

TIMER = "netreach-nat-rollback-{token}.timer"


@pytest.fixture
def kernel(tmp_path) -> Kernel:
    return Kernel(str(tmp_path))


def confirm_fails(kernel: Kernel, token: str) -> dict:
    with pytest.raises(Failed) as failure:
        plan = Plan(NatModule(kernel))
        plan_confirm(plan, token)
        plan.commit(confirmed=True)
    return failure.value.result


def test_an_armed_change_is_disarmed_then_persisted_and_its_files_go(kernel, tmp_path):
    applied, _module = run(kernel)
    token = applied["pending_confirm"]["token"]
    assert TIMER.format(token=token) in kernel.active
    confirmed, module = confirm(kernel, applied)
    assert module.commands.index(["systemctl", "stop", TIMER.format(token=token)]) < module.commands.index(
        ["systemctl", "is-active", "--quiet", f"netreach-nat-rollback-{token}.service"])
    assert TIMER.format(token=token) not in kernel.active
    assert (tmp_path / "etc/netreach/nat/netreach.nft").read_text().endswith(kernel.table)
    assert not (tmp_path / "run/netreach").exists()
    assert f"# {TIMER.format(token=token)}: stopped, the change confirmed\n" in confirmed["diff"]["after"]


def test_check_mode_confirms_nothing(kernel, tmp_path):
    applied, _module = run(kernel)
    before = snapshot(str(tmp_path))
    checked, module = confirm(kernel, applied, check=True)
    assert snapshot(str(tmp_path)) == before and not [c for c in module.commands if c[1] == "stop"]


def test_a_rollback_that_already_ran_wins_and_nothing_is_persisted(kernel, tmp_path):
    applied, _module = run(kernel)
    (tmp_path / "run/netreach/nat" / f"rolled-back-{applied['pending_confirm']['token']}").write_text("")
    before = snapshot(str(tmp_path))
    result = confirm_fails(kernel, applied["pending_confirm"]["token"])
    assert result["answer"] == "rolled-back" and result["field"] == "rollback_timeout"
    assert snapshot(str(tmp_path)) == before and not (tmp_path / "etc/netreach/nat/netreach.nft").exists()


def test_a_rollback_that_fires_while_the_timer_is_stopped_still_wins(kernel, tmp_path):
    applied, _module = run(kernel)
    token = applied["pending_confirm"]["token"]
    original = kernel.run

    def fire_now(args, data):  # the timer elapses just as the confirm run stops it: its restore leaves the record
        if args[:2] == ["systemctl", "stop"]:
            (tmp_path / "run/netreach/nat" / f"rolled-back-{token}").write_text("")
        return original(args, data)
    kernel.run = fire_now
    result = confirm_fails(kernel, token)
    assert result["answer"] == "rolled-back"
    assert not (tmp_path / "etc/netreach/nat/netreach.nft").exists(), "persisted a change the host rolled back"


def test_a_change_no_longer_armed_is_not_confirmed(kernel, tmp_path):
    applied, _module = run(kernel)
    kernel.active.clear()
    before = snapshot(str(tmp_path))
    assert confirm_fails(kernel, applied["pending_confirm"]["token"])["answer"] == "not-armed"
    assert snapshot(str(tmp_path)) == before


@pytest.mark.parametrize("token", ["../../etc", "", "ABCDEF012345", "0123456789abc", None, "0123456789a/"])
def test_a_token_that_is_not_one_fails_naming_confirm_and_changes_nothing(kernel, tmp_path, token):
    run(kernel)
    before = snapshot(str(tmp_path))
    result = confirm_fails(kernel, token)
    assert result["field"] == "confirm" and "set by the action plugin only" in result["msg"]
    assert snapshot(str(tmp_path)) == before


def test_a_superseded_change_is_unknown(kernel, tmp_path):
    first, _module = run(kernel)
    run(kernel, forward_policy="accept")
    result = confirm_fails(kernel, first["pending_confirm"]["token"])
    assert result["answer"] == "unknown-change" and result["field"] == "confirm"


def test_retiring_the_boot_state_keeps_what_is_not_ours(kernel, tmp_path):
    confirm(kernel, run(kernel)[0])
    (tmp_path / "etc/netreach/nat/notes").write_text("the admin's\n")
    result, _module = run(kernel, state="absent")
    confirm(kernel, result)
    assert not (tmp_path / "etc/netreach/nat/netreach.nft").exists()
    assert not (tmp_path / "etc/systemd/system/netreach-nat.service").exists()
    assert (tmp_path / "etc/netreach/nat/notes").read_text() == "the admin's\n"
    assert "netreach-nat.service" not in kernel.enabled


@pytest.mark.parametrize("trap", ["etc/netreach/nat", "run/netreach/nat"])
def test_a_directory_that_became_a_link_before_the_confirmation_is_refused(kernel, tmp_path, trap):
    applied, _module = run(kernel)
    outside = tmp_path / "srv" / "data"
    outside.mkdir(parents=True)
    (outside / "netreach.nft").write_text("keep me")
    real = tmp_path / trap
    if real.exists():
        real.rename(tmp_path / "moved")
    else:
        real.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(str(outside), str(real))
    before = snapshot(str(tmp_path))
    result = confirm_fails(kernel, applied["pending_confirm"]["token"])
    assert "symbolic link" in result["msg"] and result["field"] in ("persist", "rollback_timeout")
    assert snapshot(str(tmp_path)) == before


@pytest.mark.parametrize(("state", "persist"), [("present", True), ("present", False), ("absent", True)])
def test_the_confirm_run_touches_only_our_confined_paths(kernel, tmp_path, state, persist):
    confirm(kernel, run(kernel, hairpin=True)[0])
    applied, _module = run(kernel, state=state, persist=persist)
    plan = Plan(NatModule(kernel))
    plan_confirm(plan, applied["pending_confirm"]["token"])
    paths = [step.tgt.path for step in plan.steps if isinstance(step, (FileStep, RemoveStep))]
    assert paths and all(path.startswith(("/etc/netreach/nat", "/run/netreach"))
                         or path == "/etc/systemd/system/netreach-nat.service" for path in paths), paths
    plan.commit()
    assert not (tmp_path / "run/netreach").exists()
