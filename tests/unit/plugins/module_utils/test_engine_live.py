"""The engine's additions for the tunnel server: check_live (a check of the live configuration after the change,
with the previous state put back on failure) and require_user (a user another task makes)."""
from __future__ import annotations

import os

import pytest

from ansible_collections.netreach.tunnels.plugins.module_utils._engine import Plan, target
from fakehost import Failed, FakeModule, snapshot

DROPIN = ("ssh", "sshd_config.d", "50-x.conf")
CHECK = ["sshd", "-t", "-f", "/etc/ssh/sshd_config"]
REJECT = {("sshd", "-t"): (255, "", "line 3: Bad configuration option")}


def real(tmp_path) -> str:
    return os.path.join(str(tmp_path), "etc", *DROPIN)


def write(tmp_path, content, answers=None, check=False):
    module = FakeModule(tmp_path, answers=answers, check_mode=check)
    plan = Plan(module)
    plan.file(target("/etc", *DROPIN, field="sshd_dropin"), content, check_live=CHECK)
    return plan.commit(), module


def test_a_change_the_live_check_accepts_stays(tmp_path):
    result, module = write(tmp_path, "Match User t\n")
    assert result["changed"] and CHECK in module.commands
    with open(real(tmp_path), encoding="utf-8") as stream:
        assert stream.read() == "Match User t\n"


def test_a_rejected_change_puts_the_previous_content_back(tmp_path):
    write(tmp_path, "old\n")
    with pytest.raises(Failed) as failure:
        write(tmp_path, "new\n", REJECT)
    assert failure.value.result["field"] == "sshd_dropin" and "Bad configuration option" in failure.value.result["msg"]
    with open(real(tmp_path), encoding="utf-8") as stream:
        assert stream.read() == "old\n"


def test_a_rejected_new_file_is_removed_and_a_rejected_removal_restored(tmp_path):
    with pytest.raises(Failed):
        write(tmp_path, "new\n", REJECT)
    assert not os.path.lexists(real(tmp_path))
    write(tmp_path, "old\n")
    with pytest.raises(Failed):
        write(tmp_path, None, REJECT)
    with open(real(tmp_path), encoding="utf-8") as stream:
        assert stream.read() == "old\n"


def test_check_mode_runs_no_live_check(tmp_path):
    before = snapshot(str(tmp_path))
    result, module = write(tmp_path, "x\n", REJECT, check=True)
    assert result["changed"] and module.commands == [] and snapshot(str(tmp_path)) == before


def test_a_required_user_is_a_change_and_fails_at_commit_when_missing(tmp_path):
    plan = Plan(FakeModule(tmp_path, check_mode=True))
    assert plan.require_user("netreach-nosuchuser", "accounts", "keys of netreach-nosuchuser")
    assert plan.commit()["changed"]
    plan = Plan(FakeModule(tmp_path))
    plan.require_user("netreach-nosuchuser", "accounts", "keys of netreach-nosuchuser")
    with pytest.raises(Failed) as failure:
        plan.commit()
    assert failure.value.result["field"] == "accounts"
    plan = Plan(FakeModule(tmp_path))
    plan.require_user("root", "accounts", "keys of root")
    plan.commit()
