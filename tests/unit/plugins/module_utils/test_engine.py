"""The change engine against a fake root: check mode, diff masking, commit, and confinement of every escape."""
from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.netreach.tunnels.plugins.module_utils._engine import (
    ConfinementError,
    Plan,
    TransactionStep,
    target,
    target_of,
)
from fakehost import Failed, FakeModule, snapshot, systemctl_show, unit_properties

ROOT = "/etc"
TUNNELS = ("netreach", "tunnels")


def plan_for(tmp_path, **kwargs) -> tuple[Plan, FakeModule]:
    module = FakeModule(tmp_path, **kwargs)
    return Plan(module), module


def real(tmp_path, path: str) -> str:
    return os.path.join(str(tmp_path), path.lstrip("/"))


def four_steps(tmp_path, build) -> list[dict]:
    """check mode, apply, check mode again, apply again: the result of each."""
    results = []
    for check in (True, False, True, False):
        plan, _module = plan_for(tmp_path, check_mode=check)
        build(plan)
        results.append(plan.commit())
    return results


def test_a_file_goes_through_the_four_steps(tmp_path):
    def build(plan):
        plan.file(target(ROOT, *TUNNELS, "news", "ssh_config"), "Host x\n", 0o644)
        plan.file(target(ROOT, *TUNNELS, "news", "proxy_auth"), "alice:s3cret\n", 0o600)
    first, applied, again, rerun = four_steps(tmp_path, build)
    assert first["changed"] and applied["changed"] and not again["changed"] and not rerun["changed"]
    assert set(first) == set(applied)  # check mode reports the same result shape
    path = real(tmp_path, f"{ROOT}/netreach/tunnels/news/proxy_auth")
    assert os.stat(path).st_mode & 0o777 == 0o600
    with open(path, encoding="utf-8") as stream:
        assert stream.read() == "alice:s3cret\n"
    assert not [name for name in os.listdir(os.path.dirname(path)) if name.startswith(".netreach-")]


def test_check_mode_changes_nothing_and_reports_the_change(tmp_path):
    before = snapshot(str(tmp_path))
    plan, module = plan_for(tmp_path, check_mode=True)
    plan.file(target(ROOT, *TUNNELS, "news", "ssh_config"), "x\n")
    plan.command(["systemctl", "restart", "netreach-tunnel@news.service"])
    result = plan.commit()
    assert result["changed"] and module.commands == [] and snapshot(str(tmp_path)) == before
    assert "# systemctl restart" in result["diff"]["after"]


def test_the_diff_masks_every_secret_in_one_place(tmp_path):
    plan, _module = plan_for(tmp_path)
    plan.add_secrets("s3cret", "s3cret%40")
    plan.file(target(ROOT, *TUNNELS, "x", "env"), "http_proxy=http://a:s3cret%40@p\nother=s3cret\n")
    result = plan.commit()
    assert "s3cret" not in str(result) and "********" in result["diff"]["after"]
    with pytest.raises(Failed) as failure:
        plan.fail("proxy.password", "bad s3cret")
    assert "s3cret" not in failure.value.result["msg"]


def test_removal_and_tree_removal_keep_what_is_asked(tmp_path):
    plan, _module = plan_for(tmp_path)
    for name in ("ssh_config", "id_ed25519", "id_ed25519.pub"):
        plan.file(target(ROOT, *TUNNELS, "news", name), name)
    plan.commit()
    plan, _module = plan_for(tmp_path)
    assert plan.remove_tree(target(ROOT, *TUNNELS, "news"), keep={"id_ed25519", "id_ed25519.pub"})
    plan.commit()
    assert sorted(os.listdir(real(tmp_path, f"{ROOT}/netreach/tunnels/news"))) == ["id_ed25519", "id_ed25519.pub"]
    plan, _module = plan_for(tmp_path)
    assert plan.remove_tree(target(ROOT, *TUNNELS, "news"))
    plan.commit()
    assert not os.path.exists(real(tmp_path, f"{ROOT}/netreach/tunnels/news"))
    plan, _module = plan_for(tmp_path)
    assert not plan.remove_tree(target(ROOT, *TUNNELS, "news")) and not plan.commit()["changed"]


@pytest.mark.parametrize("name", ["..", ".", "../../../root/.ssh", "a/b", " ../x", "", "/abs", "a\x00b", "../tunnels"])
def test_a_name_that_could_leave_the_root_is_refused(name):
    with pytest.raises(ConfinementError) as error:
        target(ROOT, *TUNNELS, name, field="name")
    assert error.value.field == "name"


@given(st.text(min_size=1, max_size=40))
def test_no_accepted_part_ever_leaves_its_root(name):
    try:
        tgt = target(ROOT, *TUNNELS, name)
    except ConfinementError:
        return
    assert os.path.dirname(os.path.normpath(tgt.path)) == "/etc/netreach/tunnels"


def test_target_of_a_path_outside_the_root_is_refused():
    with pytest.raises(ConfinementError):
        target_of("/home/alice/.ssh", "/home/alice/.ssh/../.bashrc")
    with pytest.raises(ConfinementError):
        target_of("/home/alice/.ssh", "/etc/passwd")
    assert target_of("/home/alice", "/home/alice/.ssh/config").parts == (".ssh", "config")


@pytest.mark.parametrize("level", ["dir", "file", "parent"])
def test_a_symlink_at_any_level_is_refused_and_never_followed(tmp_path, level):
    outside = tmp_path / "srv" / "data"
    outside.mkdir(parents=True)
    (outside / "precious").write_text("keep me")
    base = tmp_path / "etc" / "netreach"
    base.mkdir(parents=True)
    if level == "parent":
        os.symlink(str(tmp_path / "srv"), str(base / "tunnels"))
        tgt = target(ROOT, *TUNNELS, "data", "precious")
    elif level == "dir":
        (base / "tunnels").mkdir()
        os.symlink(str(outside), str(base / "tunnels" / "x"))
        tgt = target(ROOT, *TUNNELS, "x", "precious")
    else:
        (base / "tunnels" / "x").mkdir(parents=True)
        os.symlink(str(outside / "precious"), str(base / "tunnels" / "x" / "precious"))
        tgt = target(ROOT, *TUNNELS, "x", "precious")
    before = snapshot(str(tmp_path))
    for build in (lambda p: p.file(tgt, "overwritten"), lambda p: p.remove(tgt),
                  lambda p: p.remove_tree(tgt.parent)):
        plan, _module = plan_for(tmp_path)
        with pytest.raises(Failed) as failure:
            build(plan)
            plan.commit()
        assert failure.value.result["field"] == "name" and "symbolic link" in failure.value.result["msg"]
    assert snapshot(str(tmp_path)) == before


def test_a_path_that_becomes_a_symlink_between_plan_and_commit_is_refused(tmp_path):
    outside = tmp_path / "srv"
    outside.mkdir()
    plan, _module = plan_for(tmp_path)
    plan.file(target(ROOT, *TUNNELS, "x", "ssh_config"), "new")
    os.makedirs(real(tmp_path, f"{ROOT}/netreach/tunnels"))
    os.symlink(str(outside), real(tmp_path, f"{ROOT}/netreach/tunnels/x"))
    with pytest.raises(Failed) as failure:
        plan.commit()
    assert "symbolic link" in failure.value.result["msg"]
    assert os.listdir(str(outside)) == []


def test_a_file_that_becomes_a_symlink_before_its_removal_is_not_followed(tmp_path):
    plan, _module = plan_for(tmp_path)
    plan.file(target(ROOT, *TUNNELS, "x", "ssh_config"), "old")
    plan.commit()
    plan, _module = plan_for(tmp_path)
    plan.remove(target(ROOT, *TUNNELS, "x", "ssh_config"))
    victim = tmp_path / "victim"
    victim.write_text("keep")
    os.unlink(real(tmp_path, f"{ROOT}/netreach/tunnels/x/ssh_config"))
    os.symlink(str(victim), real(tmp_path, f"{ROOT}/netreach/tunnels/x/ssh_config"))
    with pytest.raises(Failed):
        plan.commit()
    assert victim.read_text() == "keep"


def test_a_rejected_validated_file_changes_nothing(tmp_path):
    def answer(args):
        with open(args[-1], encoding="utf-8") as stream:
            return (1, "", "syntax error") if "bad" in stream.read() else (0, "", "")
    module = FakeModule(tmp_path, answers={("visudo",): answer})
    plan = Plan(module)
    plan.file(target("/etc", "profile.d", "netreach-proxy.sh"), "export x=1\n")
    plan.file(target("/etc", "sudoers.d", "netreach-proxy"), "bad\n", 0o440, validate=["visudo", "-cf", "%s"])
    before = snapshot(str(tmp_path))
    with pytest.raises(Failed) as failure:
        plan.commit()
    assert "failed validation by visudo" in failure.value.result["msg"]
    assert {k: v for k, v in snapshot(str(tmp_path)).items() if ".ansible-tmp" not in k} == \
        {k: v for k, v in before.items() if ".ansible-tmp" not in k}


def test_daemon_reload_runs_only_after_a_change_and_is_no_change_itself(tmp_path):
    plan, module = plan_for(tmp_path)
    plan.daemon_reload()
    assert not plan.commit()["changed"] and module.commands == []
    plan, module = plan_for(tmp_path)
    plan.file(target("/etc/systemd/system", "netreach-x.service"), "[Unit]\n")
    plan.daemon_reload()
    plan.commit()
    assert module.commands == [["systemctl", "daemon-reload"]]


def test_a_second_daemon_reload_runs_after_a_change_that_follows_the_first(tmp_path):
    """Two reloads are equal steps: the second must look at the steps before itself, not before the first."""
    plan, module = plan_for(tmp_path)
    plan.daemon_reload()
    plan.file(target("/etc/systemd/system", "netreach-x.service"), "[Unit]\n")
    plan.daemon_reload()
    plan.commit()
    assert module.commands == [["systemctl", "daemon-reload"]]


def test_read_back_fails_naming_the_layer(tmp_path):
    module = FakeModule(tmp_path, answers={("systemctl", "show-environment"): (0, "no_proxy=x\n", "")})
    plan = Plan(module)
    plan.read_back(["systemctl", "show-environment"],
                   lambda out: None if "http_proxy=" in out else "http_proxy is missing", "systemd")
    with pytest.raises(Failed) as failure:
        plan.commit()
    assert failure.value.result["field"] == "systemd" and "http_proxy is missing" in failure.value.result["msg"]


def test_a_transaction_arms_applies_and_hands_the_confirmation_to_the_controller(tmp_path):
    plan, module = plan_for(tmp_path)
    stage = target("/run/netreach/nat", "pending-abc.nft")
    plan.transaction(TransactionStep("nat change abc", True, "old\n", "new\n", stage=[],
                                     arm=["systemd-run", "--on-active=30s", "rollback"], apply=["nft", "-f", "x"],
                                     pending={"token": "abc", "timeout": 30}))
    result = plan.commit()
    assert result["pending_confirm"] == {"token": "abc", "timeout": 30}
    assert module.commands == [["systemd-run", "--on-active=30s", "rollback"], ["nft", "-f", "x"]]
    assert stage  # staged files go through the same confined writer


def test_a_failed_apply_disarms_and_fails(tmp_path):
    module = FakeModule(tmp_path, answers={("nft",): (1, "", "syntax")})
    plan = Plan(module)
    plan.transaction(TransactionStep("t", True, arm=["arm"], disarm=["disarm"], apply=["nft", "-f", "x"]))
    with pytest.raises(Failed):
        plan.commit()
    assert module.commands[-1] == ["disarm"]


class Broken:
    """A live step that raises, as a write the kernel refuses does."""

    changed, before, after = True, "", ""

    def run(self, _plan):
        raise OSError("no space left on device")


def test_an_armed_transaction_whose_live_step_fails_runs_its_abort_first(tmp_path):
    module = FakeModule(tmp_path, answers={("nft",): (1, "", "syntax")})
    plan = Plan(module)
    plan.transaction(TransactionStep("t", True, arm=["arm"], apply=["nft", "-f", "x"], abort=["abort"]))
    with pytest.raises(Failed):
        plan.commit()
    assert module.commands == [["arm"], ["nft", "-f", "x"], ["abort"]], "a failure: the abort, once"
    plan, module = plan_for(tmp_path)
    plan.transaction(TransactionStep("t", True, arm=["arm"], live=[Broken()], abort=["abort"]))
    with pytest.raises(OSError):
        plan.commit()
    assert module.commands == [["arm"], ["abort"]], "an exception too"
    plan, module = plan_for(tmp_path, answers={("later",): (1, "", "failed")})
    plan.transaction(TransactionStep("t", True, arm=["arm"], apply=["apply"], abort=["abort"]))
    plan.command(["later"])
    with pytest.raises(Failed):
        plan.commit()
    assert module.commands == [["arm"], ["apply"], ["later"]], "handed over: a later failure is no abort"


def test_a_query_can_feed_stdin_and_runs_in_check_mode(tmp_path):
    seen = []
    module = FakeModule(tmp_path, check_mode=True)
    module.run_command = lambda args, data=None, **_kw: seen.append((args, data)) or (0, "ok", "")
    assert Plan(module).query(["nft", "-c", "-f", "/dev/stdin"], data="table inet x {}\n") == (0, "ok", "")
    assert seen == [(["nft", "-c", "-f", "/dev/stdin"], "table inet x {}\n")]


def test_a_directory_that_is_a_symlink_is_refused_as_one(tmp_path):
    (tmp_path / "srv").mkdir()
    (tmp_path / "etc" / "netreach").mkdir(parents=True)
    os.symlink(str(tmp_path / "srv"), str(tmp_path / "etc" / "netreach" / "nat"))
    plan, _module = plan_for(tmp_path)
    with pytest.raises(Failed) as failure:
        plan.directory(target(ROOT, "netreach", "nat", field="persist"))
    assert failure.value.result["field"] == "persist" and "symbolic link" in failure.value.result["msg"]


def test_an_unarmed_transaction_applies_then_clears_what_it_staged(tmp_path):
    from ansible_collections.netreach.tunnels.plugins.module_utils._engine import FileStep
    plan, module = plan_for(tmp_path)
    staged = target("/run/netreach/nat", "pending-abc.nft")
    plan.transaction(TransactionStep("t", True, stage=[FileStep("stage", tgt=staged, content="x\n", mode=0o600)],
                                     apply=["nft", "-f", staged.path]))
    result = plan.commit()
    assert "pending_confirm" not in result and module.commands == [["nft", "-f", "/run/netreach/nat/pending-abc.nft"]]
    assert os.listdir(tmp_path / "run/netreach/nat") == []


def test_disarm_stops_the_timer_and_fails_when_the_rollback_left_its_record(tmp_path):
    marker = target("/run/netreach/nat", "rolled-back-abc", field="rollback_timeout")
    (tmp_path / "run/netreach/nat").mkdir(parents=True)

    def stop(_args):  # the timer fires as it is stopped: its service leaves the record
        (tmp_path / "run/netreach/nat/rolled-back-abc").write_text("")
        return 0, "", ""
    module = FakeModule(tmp_path, answers={("systemctl", "show"): systemctl_show(lambda unit: unit_properties(True, True)),
                                           ("systemctl", "stop"): stop,
                                           ("systemctl", "is-active"): (3, "", "")})
    plan = Plan(module)
    assert plan.disarm("t.timer", "t.service", marker)
    with pytest.raises(Failed) as failure:
        plan.commit()
    assert failure.value.result["answer"] == "rolled-back" and failure.value.result["field"] == "rollback_timeout"
    assert ["systemctl", "stop", "t.timer"] in module.commands


@pytest.mark.parametrize(("state", "record", "answer"), [("inactive", False, "not-armed"), ("active", True, "rolled-back")])
def test_disarm_refuses_at_plan_time_what_cannot_be_confirmed(tmp_path, state, record, answer):
    (tmp_path / "run/netreach/nat").mkdir(parents=True)
    if record:
        (tmp_path / "run/netreach/nat/rolled-back-abc").write_text("")
    module = FakeModule(tmp_path, answers={("systemctl", "show"): systemctl_show(
        lambda unit: unit_properties(state == "active", True))})
    with pytest.raises(Failed) as failure:
        Plan(module).disarm("t.timer", "t.service", target("/run/netreach/nat", "rolled-back-abc"))
    assert failure.value.result["answer"] == answer and not [c for c in module.commands if c[1] == "stop"]


def test_remove_tree_counts_a_subdirectory_an_earlier_step_removes_as_gone(tmp_path):
    (tmp_path / "run/netreach/nat").mkdir(parents=True)
    (tmp_path / "run/netreach/nat/pending-abc.nft").write_text("x")
    plan, _module = plan_for(tmp_path)
    plan.remove_tree(target("/run/netreach", "nat"))
    plan.remove_tree(target("/run", "netreach"))
    plan.commit()
    assert os.listdir(tmp_path / "run") == []
