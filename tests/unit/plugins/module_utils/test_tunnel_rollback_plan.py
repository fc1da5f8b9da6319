"""A tunnel change with rollback_timeout: snapshot, armed timer, delayed apply; the host program's rollback and
confirm against real files; the bounds of rollback_timeout."""
from __future__ import annotations

import json
import os

import pytest

from ansible_collections.netreach.tunnels.plugins.module_utils import _engine_confirm as program
from ansible_collections.netreach.tunnels.plugins.module_utils import _tunnel_apply as apply
from ansible_collections.netreach.tunnels.plugins.module_utils._declaration import DeclarationError
from ansible_collections.netreach.tunnels.plugins.module_utils._engine import Plan
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel import parse_tunnel
from fakehost import Failed, FakeModule

from test_tunnel_plan import TUNNEL, Units, real


def declared(**changes):
    return parse_tunnel(dict(TUNNEL, proxy=None, **changes))


def run(tmp_path, tunnel, units, check_mode=False):
    module = FakeModule(tmp_path, check_mode=check_mode, answers=units.answers())
    os.makedirs(real(tmp_path, "/run/systemd/system"), exist_ok=True)
    plan = Plan(module)
    apply.plan_tunnel(plan, tunnel, "started", True)
    return plan.commit(), module


@pytest.mark.parametrize("value", [-1, 1, 9, 3601, 10 ** 9, True, "30"])
def test_rollback_timeout_out_of_bounds_names_the_field(value):
    with pytest.raises(DeclarationError) as caught:
        declared(rollback_timeout=value)
    assert caught.value.field == "rollback_timeout" and "10 to 3600" in str(caught.value)


def test_a_change_is_armed_before_it_is_written_and_applied_later(tmp_path):
    units = Units()
    first, _module = run(tmp_path, declared(), units)
    assert "pending_confirms" not in first
    config = real(tmp_path, "/etc/netreach/tunnels/news/ssh_config")
    old = open(config, encoding="utf-8").read()
    result, module = run(tmp_path, declared(port=2200, rollback_timeout=30), units)
    assert result["changed"]
    [pending] = result["pending_confirms"]
    assert pending["timeout"] == 30 and pending["directory"] == "/var/lib/netreach/pending/tunnel-news"
    runs = [args for args in module.commands if args[0] == "systemd-run"]
    assert len(runs) == 2 and "--on-active=150s" in runs[0] and runs[0][-3:-1] == ["rollback", pending["directory"]]
    assert "--on-active=2s" in runs[1] and runs[1][-2:] == ["apply", pending["directory"]]
    # No restart over the managing connection: the delayed apply restarts the tunnel.
    assert not [args for args in module.commands if args[:2] == ["systemctl", "restart"]]
    directory = real(tmp_path, pending["directory"])
    manifest = json.load(open(os.path.join(directory, "manifest.json"), encoding="utf-8"))
    snapped = {item["path"]: item["snapshot"] for item in manifest["files"]}
    snapped_config = os.path.join(directory, snapped["/etc/netreach/tunnels/news/ssh_config"])
    assert open(snapped_config, encoding="utf-8").read() == old
    assert "--on-active=30s" in manifest["rearm"], "once live, the change has the declared timeout to be confirmed"
    assert manifest["apply"][-2:] == [["systemctl", "stop", "netreach-tunnel@news.service"],
                                      ["systemctl", "start", "netreach-tunnel@news.service"]]
    assert "Port 2200" in open(config, encoding="utf-8").read()
    assert os.path.exists(real(tmp_path, "/usr/local/lib/netreach/netreach-confirm"))
    assert os.path.exists(real(tmp_path, "/etc/systemd/system/netreach-confirm-boot.service"))


def test_an_armed_change_still_waiting_refuses_the_next(tmp_path):
    units = Units()
    run(tmp_path, declared(), units)
    run(tmp_path, declared(port=2200, rollback_timeout=30), units)
    with pytest.raises(Failed) as caught:
        run(tmp_path, declared(port=2201, rollback_timeout=30), units)
    assert caught.value.result["field"] == "rollback_timeout"


def test_no_change_arms_nothing_and_check_mode_writes_nothing(tmp_path):
    units = Units()
    run(tmp_path, declared(), units)
    result, module = run(tmp_path, declared(rollback_timeout=30), units)
    assert result["changed"] and "pending_confirms" not in result, "only the confirm program and boot unit are new"
    result, module = run(tmp_path, declared(rollback_timeout=30), units)
    assert not result["changed"] and "pending_confirms" not in result
    result, module = run(tmp_path, declared(port=2200, rollback_timeout=30), units, check_mode=True)
    assert result["changed"] and not [args for args in module.commands if args[0] == "systemd-run"]


def host_change(tmp_path):
    """A pending directory as the module leaves it, for real files under TMP_PATH."""
    live = tmp_path / "live"
    live.mkdir()
    (live / "config").write_text("new\n")
    (live / "added").write_text("added\n")
    pending = tmp_path / "pending" / "tunnel-x"
    pending.mkdir(parents=True)
    (pending / "snap-0").write_text("old\n")
    uid, gid = os.getuid(), os.getgid()
    manifest = {"timer": "t.timer", "service": "t.service", "apply": [], "before_restore": [], "after_restore": [],
                "files": [{"path": str(live / "config"), "snapshot": "snap-0", "mode": 0o640, "uid": uid, "gid": gid},
                          {"path": str(live / "added"), "snapshot": None, "mode": 0, "uid": 0, "gid": 0}]}
    (pending / "manifest.json").write_text(json.dumps(manifest))
    return live, pending


def test_the_host_program_rolls_back_and_then_refuses_to_confirm(tmp_path, capsys):
    live, pending = host_change(tmp_path)
    assert program.main(["x", "rollback", str(pending), "not confirmed"]) == 0
    assert (live / "config").read_text() == "old\n" and (os.stat(live / "config").st_mode & 0o777) == 0o640
    assert not (live / "added").exists()
    program.main(["x", "confirm", str(pending)])
    assert capsys.readouterr().out.strip() == f"{pending} rolled-back: not confirmed"
    program.main(["x", "status", str(pending)])
    assert capsys.readouterr().out.strip() == f"{pending} rolled-back"


def test_the_host_program_confirms_only_an_applied_change(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(program.subprocess, "run", lambda *a, **k: None)
    live, pending = host_change(tmp_path)
    program.main(["x", "confirm", str(pending)])
    assert "waiting" in capsys.readouterr().out
    program.apply(str(pending))
    program.main(["x", "confirm", str(pending)])
    assert capsys.readouterr().out.strip() == f"{pending} confirmed"
    assert not pending.exists() and (live / "config").read_text() == "new\n"


def test_boot_restores_every_unconfirmed_change(tmp_path, monkeypatch):
    monkeypatch.setattr(program.subprocess, "run", lambda *a, **k: None)
    live, pending = host_change(tmp_path)
    program.main(["x", "boot", str(pending.parent)])
    assert (live / "config").read_text() == "old\n"
    assert "restarted" in (pending / "rolled-back").read_text()


def test_a_symbolic_link_in_a_restored_path_is_refused(tmp_path):
    live, pending = host_change(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    os.rename(live, tmp_path / "moved")
    os.symlink(tmp_path / "elsewhere", live)
    with pytest.raises(OSError):
        program.rollback(str(pending), "x")
    assert not (tmp_path / "elsewhere" / "config").exists()


def test_the_apply_arms_the_live_timer_before_it_stops_the_first(tmp_path, monkeypatch):
    live, pending = host_change(tmp_path)
    manifest = json.loads((pending / "manifest.json").read_text())
    manifest["rearm"] = ["systemd-run", "--unit=t-live"]
    (pending / "manifest.json").write_text(json.dumps(manifest))
    ran = []

    class Done:
        def __init__(self, rc):
            self.returncode = rc

    def arm_fails(args, check=False):
        ran.append(args)
        return Done(1 if args[0] == "systemd-run" else 0)

    monkeypatch.setattr(program.subprocess, "run", arm_fails)
    program.apply(str(pending))
    assert ran == [["systemd-run", "--unit=t-live"]], "the first timer stays when the live one could not be armed"
    ran.clear()
    monkeypatch.setattr(program.subprocess, "run", lambda args, check=False: ran.append(args) or Done(0))
    program.apply(str(pending))
    assert ran == [["systemd-run", "--unit=t-live"], ["systemctl", "stop", "t.timer"]]


def test_an_aborted_change_puts_the_files_back_without_a_restart_and_stops_the_timer(tmp_path, monkeypatch):
    ran = []
    monkeypatch.setattr(program.subprocess, "run", lambda args, check=False: ran.append(args))
    live, pending = host_change(tmp_path)
    manifest = json.loads((pending / "manifest.json").read_text())
    manifest["after_restore"] = [["systemctl", "restart", "netreach-tunnel@x.service"]]
    (pending / "manifest.json").write_text(json.dumps(manifest))
    assert program.main(["x", "abort", str(pending), "the module failed"]) == 0
    assert (live / "config").read_text() == "old\n" and not (live / "added").exists()
    assert ran == [["systemctl", "daemon-reload"], ["systemctl", "stop", "t.timer"]], "nothing went live: no restart"
    assert (pending / "rolled-back").read_text() == "the module failed\n"
