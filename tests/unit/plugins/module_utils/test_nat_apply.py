from __future__ import annotations

from ansible_collections.netreach.tunnels.plugins.module_utils._engine import Plan
from ansible_collections.netreach.tunnels.plugins.module_utils._nat_apply import BOOT_RULES, UNIT_FILE, plan_transaction
from ansible_collections.netreach.tunnels.plugins.module_utils._nat_boot import render_sysctl, render_unit
from fakehost import FakeModule

BOOT = BOOT_RULES.path
UNIT_PATH = UNIT_FILE.path


def script(tmp_path, armed: bool, persist: bool = True) -> list[str]:
    """The confirm script the plan stages for one change (token fixed by the test)."""
    module = FakeModule(tmp_path)
    (tmp_path / "run" / "systemd" / "system").mkdir(parents=True)
    plan = Plan(module)
    plan_transaction(plan, "/usr/sbin/nft", "table inet netreach {}\n", "", "table inet netreach {}\n" if persist else None,
                     ("", ""), True, 30 if armed else 0)
    step = plan.steps[-1]
    token = step.pending["token"]
    confirm = next(file for file in step.stage if file.tgt.parts[-1].startswith("confirm-"))
    return confirm.content.replace(token, "abc123").splitlines()


def test_an_armed_change_is_persisted_only_while_its_rollback_still_waits(tmp_path):
    lines = script(tmp_path, armed=True)
    check = lines.index("systemctl is-active --quiet netreach-nat-rollback-abc123.timer || { echo not-armed; exit 3; }")
    stop = lines.index("systemctl stop netreach-nat-rollback-abc123.timer")
    persist = next(i for i, line in enumerate(lines) if line.startswith("mv -f") and line.endswith(BOOT))
    assert check < stop < persist
    # A restore that already ran (or is running) wins: nothing is persisted after it.
    assert max(i for i, line in enumerate(lines) if "rolled-back-abc123" in line and not line.startswith("rm ")) < persist
    assert lines[-1] == "echo confirmed"


def test_without_the_confirm_step_the_boot_state_is_written_at_once(tmp_path):
    lines = script(tmp_path, armed=False)
    assert not any("is-active" in line for line in lines)
    assert f"mv -f /etc/netreach/nat/.netreach-abc123.nft {BOOT}" in lines


def test_persist_false_removes_only_our_boot_files(tmp_path):
    lines = script(tmp_path, armed=True, persist=False)
    removals = [line for line in lines if line.startswith("rm ")]
    assert removals[0] == f"rm -f {BOOT} {UNIT_PATH}"
    assert all("abc123" in path for line in removals[1:] for path in line.split()[2:])


def test_the_confirm_script_touches_only_our_confined_paths(tmp_path):
    for armed in (True, False):
        for persist in (True, False):
            paths = {word.strip('"') for line in script(tmp_path / f"{armed}{persist}", armed, persist)
                     for word in line.split() if word.strip('"').startswith("/")}
            assert paths and all(path.startswith(("/etc/netreach/nat", "/run/netreach", UNIT_PATH))
                                 or path == "/etc/netreach" for path in paths), paths


def test_unit_restores_the_confirmed_file_before_the_network():
    unit = render_unit("/usr/sbin/nft", BOOT)
    assert "Before=network-pre.target" in unit and f"ExecStart=/usr/sbin/nft -f {BOOT}" in unit
    assert "flush" not in unit


def test_sysctl_sets_both_families():
    assert render_sysctl(True).splitlines()[1:] == ["net.ipv4.ip_forward = 1", "net.ipv6.conf.all.forwarding = 1"]
