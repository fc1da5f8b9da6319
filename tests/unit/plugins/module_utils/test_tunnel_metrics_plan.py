"""The metrics timer of ssh_tunnels as a plan against a fake root: the four steps, the directory made only when
missing, a new interval restarting the timer, metrics off removing all of it, and bad input refused."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ansible_collections.netreach.tunnels.plugins.module_utils import _textfile, _tunnel_metrics
from ansible_collections.netreach.tunnels.plugins.module_utils import _tunnel_metrics_plan as mplan
from ansible_collections.netreach.tunnels.plugins.module_utils._declaration import DeclarationError
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_helpers import program_text
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_many import SharedPlan
from fakehost import FakeModule, snapshot
from test_tunnel_plan import Units, changing_commands, real

DIR = "/var/lib/prometheus/node-exporter"


def assert_standalone(program: str) -> None:
    """The installed program runs with python3 alone (-I: no PYTHONPATH, so no collection to import from): its
    usage line and exit code 2 for no directory."""
    done = subprocess.run([sys.executable, "-I", program], capture_output=True, text=True, check=False)
    assert done.returncode == 2 and done.stderr.startswith("usage: "), done.stderr


def run(tmp_path, directory, interval=15, check=False, units=None):
    module = FakeModule(tmp_path, check_mode=check, answers=(units or Units()).answers())
    plan = SharedPlan(module)
    changed = mplan.plan_metrics(plan, *mplan.parse_metrics(directory, interval))
    result = plan.commit()
    assert result["changed"] == changed
    return result, module


def test_the_metrics_timer_goes_through_the_four_steps(tmp_path):
    units = Units()
    before = snapshot(str(tmp_path))
    check, module = run(tmp_path, DIR, check=True, units=units)
    assert check["changed"] and snapshot(str(tmp_path)) == before and changing_commands(module) == []
    applied, module = run(tmp_path, DIR, units=units)
    assert set(applied) == set(check) and applied["changed"]
    service = open(real(tmp_path, "/etc/systemd/system/netreach-tunnel-metrics.service"), encoding="utf-8").read()
    assert f"ExecStart=/usr/bin/python3 /usr/local/lib/netreach/tunnel-metrics {DIR}\n" in service
    assert f"ReadWritePaths={DIR}\n" in service
    timer = open(real(tmp_path, "/etc/systemd/system/netreach-tunnel-metrics.timer"), encoding="utf-8").read()
    assert "OnUnitActiveSec=15s\n" in timer
    program = real(tmp_path, "/usr/local/lib/netreach/tunnel-metrics")
    with open(program, encoding="utf-8") as handle:
        assert handle.read() == program_text(_tunnel_metrics, _textfile)
    assert_standalone(program)
    assert os.stat(program).st_mode & 0o777 == 0o755
    # The missing textfile directory is made, every level 0755.
    for level in ("/var/lib", "/var/lib/prometheus", DIR):
        assert os.stat(real(tmp_path, level)).st_mode & 0o777 == 0o755
    assert ["systemctl", "start", mplan.METRICS_TIMER] in module.commands
    assert ["systemctl", "enable", mplan.METRICS_TIMER] in module.commands
    again, module = run(tmp_path, DIR, check=True, units=units)
    rerun, module = run(tmp_path, DIR, units=units)
    assert not again["changed"] and not rerun["changed"] and changing_commands(module) == [], rerun["diff"]


def test_an_existing_directory_is_left_as_it_is(tmp_path):
    os.makedirs(real(tmp_path, DIR), mode=0o700)
    os.chmod(real(tmp_path, DIR), 0o770)
    run(tmp_path, DIR)
    assert os.stat(real(tmp_path, DIR)).st_mode & 0o777 == 0o770


def test_a_new_interval_restarts_the_timer_and_a_new_directory_drops_the_old_textfile(tmp_path):
    units = Units()
    run(tmp_path, DIR, units=units)
    textfile = real(tmp_path, f"{DIR}/{_tunnel_metrics.TEXTFILE}")
    with open(textfile, "w", encoding="utf-8") as handle:
        handle.write("netreach_tunnel_up 1\n")
    result, module = run(tmp_path, DIR, interval=30, units=units)
    assert result["changed"] and ["systemctl", "restart", mplan.METRICS_TIMER] in module.commands
    result, module = run(tmp_path, "/srv/metrics", interval=30, units=units)
    assert result["changed"] and not os.path.exists(textfile)
    assert os.path.isdir(real(tmp_path, "/srv/metrics"))


def test_metrics_off_removes_the_timer_the_program_and_the_textfile(tmp_path):
    units = Units()
    run(tmp_path, DIR, units=units)
    textfile = real(tmp_path, f"{DIR}/{_tunnel_metrics.TEXTFILE}")
    with open(textfile, "w", encoding="utf-8") as handle:
        handle.write("netreach_tunnel_up 1\n")
    check, module = run(tmp_path, None, check=True, units=units)
    assert check["changed"] and os.path.exists(textfile) and changing_commands(module) == []
    result, module = run(tmp_path, None, units=units)
    assert result["changed"] and ["systemctl", "disable", "--now", mplan.METRICS_TIMER] in module.commands
    for path in ("/etc/systemd/system/netreach-tunnel-metrics.service",
                 "/etc/systemd/system/netreach-tunnel-metrics.timer", "/usr/local/lib/netreach/tunnel-metrics"):
        assert not os.path.exists(real(tmp_path, path))
    assert not os.path.exists(textfile) and os.path.isdir(real(tmp_path, DIR))  # the directory is node_exporter's
    again, module = run(tmp_path, None, units=units)
    assert not again["changed"] and changing_commands(module) == []


@pytest.mark.parametrize("directory", ["relative/dir", "/var/lib/../etc", "/var/lib/./x", "/var/lib/", "/",
                                       "/var/lib/node exporter", "/var/lib/x\nExecStart=/bin/sh", "/var//lib",
                                       "/var/lib/.hidden/..", "/var/$HOME"])
def test_a_bad_metrics_dir_is_refused_naming_the_field(tmp_path, directory):
    with pytest.raises(DeclarationError) as error:
        mplan.parse_metrics(directory, 15)
    assert error.value.field == "metrics_dir"


@pytest.mark.parametrize("interval", [0, -5, 3601, True, "15"])
def test_a_bad_interval_is_refused_naming_the_field(interval):
    with pytest.raises(DeclarationError) as error:
        mplan.parse_metrics(DIR, interval)
    assert error.value.field == "metrics_interval"
