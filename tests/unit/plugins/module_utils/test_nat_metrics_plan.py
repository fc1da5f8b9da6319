"""nat_rules' metrics against the fake gateway (tests/unit/nat_fakehost.py): the timer, its service and program
through the four steps, the confirmed record written only once a change is confirmed (at once without a confirm
step), metrics off and state=absent removing all of it, and the record matching the kernel's table."""
from __future__ import annotations

import json
import os

import pytest

from ansible_collections.netreach.tunnels.plugins.module_utils import _nat_metrics, _textfile
from ansible_collections.netreach.tunnels.plugins.module_utils import _nat_metrics_plan as mplan
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_helpers import program_text
from fakehost import snapshot
from nat_fakehost import DECLARED, Kernel, confirm, run
from test_tunnel_metrics_plan import assert_standalone

DIR = "/var/lib/prometheus/node-exporter"
METRICS = (DIR, 15)
RECORD = "etc/netreach/nat-confirmed.json"
OURS = ("etc/systemd/system/netreach-nat-metrics.service", "etc/systemd/system/netreach-nat-metrics.timer",
        "usr/local/lib/netreach/nat-metrics", RECORD)


@pytest.fixture
def kernel(tmp_path) -> Kernel:
    return Kernel(str(tmp_path))


def record(tmp_path) -> dict | None:
    path = tmp_path / RECORD
    return _nat_metrics.read_record(path.read_text()) if path.exists() else None


def test_the_metrics_go_through_the_four_steps_and_the_record_waits_for_the_confirmation(kernel, tmp_path):
    before = snapshot(str(tmp_path))
    checked, module = run(kernel, check=True, metrics=METRICS)
    assert checked["changed"] and checked["metrics"] and checked["flows_changed"] and snapshot(str(tmp_path)) == before
    assert not [c for c in module.commands if c[:2] in (["systemctl", "start"], ["systemctl", "enable"])]
    applied, module = run(kernel, metrics=METRICS)
    assert applied["metrics"] and set(applied) == set(checked) | {"pending_confirm"}
    assert ["systemctl", "start", mplan.METRICS_TIMER] in module.commands
    assert ["systemctl", "enable", mplan.METRICS_TIMER] in module.commands
    # Live, not yet confirmed: the kernel holds the new table, nothing says it is the confirmed one.
    assert record(tmp_path) is None and not _nat_metrics.applied(record(tmp_path), kernel.table)
    token = applied["pending_confirm"]["token"]
    assert (tmp_path / f"run/netreach/nat/confirmed-{token}.json").exists()
    confirm(kernel, applied)
    assert record(tmp_path)["forwards"] == 1 and _nat_metrics.applied(record(tmp_path), kernel.table)
    assert os.stat(tmp_path / RECORD).st_mode & 0o777 == 0o644
    assert not (tmp_path / "run/netreach").exists(), "the confirmation left staged files"
    again, module = run(kernel, check=True, metrics=METRICS)
    rerun, module = run(kernel, metrics=METRICS)
    assert not again["changed"] and not rerun["changed"] and not rerun["metrics"], rerun["diff"]


def test_the_units_and_the_installed_program(kernel, tmp_path):
    run(kernel, timeout=0, metrics=METRICS)
    service = (tmp_path / OURS[0]).read_text()
    assert f"ExecStart=/usr/bin/python3 /usr/local/lib/netreach/nat-metrics {DIR}\n" in service
    assert f"ReadWritePaths={DIR}\n" in service and "CapabilityBoundingSet=CAP_NET_ADMIN\n" in service
    assert "RestrictAddressFamilies=AF_UNIX AF_NETLINK\n" in service and "PrivateNetwork" not in service
    timer = (tmp_path / OURS[1]).read_text()
    assert "OnUnitActiveSec=15s\n" in timer and "Description=netreach: NAT metrics every 15 s\n" in timer
    program = tmp_path / OURS[2]
    assert program.read_text() == program_text(_nat_metrics, _textfile)
    assert os.stat(program).st_mode & 0o777 == 0o755
    assert_standalone(str(program))
    for level in ("var/lib", "var/lib/prometheus", DIR.lstrip("/")):
        assert os.stat(tmp_path / level).st_mode & 0o777 == 0o755


def test_without_a_confirm_step_the_record_is_written_with_the_change(kernel, tmp_path):
    result, _module = run(kernel, timeout=0, metrics=METRICS)
    assert "pending_confirm" not in result and _nat_metrics.applied(record(tmp_path), kernel.table)


def test_a_new_declaration_counts_once_confirmed_and_a_table_put_right_matches_again(kernel, tmp_path):
    confirm(kernel, run(kernel, metrics=METRICS)[0])
    forwards = DECLARED["port_forwards"] + [{"proto": "udp", "port": "5000-5010", "to": "10.10.0.6"}]
    changed, _module = run(kernel, metrics=METRICS, port_forwards=forwards)
    assert record(tmp_path)["forwards"] == 1 and not _nat_metrics.applied(record(tmp_path), kernel.table)
    confirm(kernel, changed)
    assert record(tmp_path)["forwards"] == 2 and _nat_metrics.applied(record(tmp_path), kernel.table)
    kernel.table = kernel.table.replace("\t}\n}\n", "\t\ttcp dport 22 accept\n\t}\n}\n")  # edited behind our back
    assert not _nat_metrics.applied(record(tmp_path), kernel.table)
    confirm(kernel, run(kernel, metrics=METRICS, port_forwards=forwards)[0])
    assert _nat_metrics.applied(record(tmp_path), kernel.table)


def test_metrics_turned_on_for_a_table_already_in_place_record_it_at_once(kernel, tmp_path):
    confirm(kernel, run(kernel)[0])
    checked, _module = run(kernel, check=True, metrics=METRICS)
    # What status.yml reads: only the metrics would change, the flows are as declared (no drift).
    assert checked["changed"] and checked["metrics"] and not checked["flows_changed"]
    result, _module = run(kernel, metrics=METRICS)
    assert result["changed"] and "pending_confirm" not in result and not result["flows_changed"]
    assert _nat_metrics.applied(record(tmp_path), kernel.table)


@pytest.mark.parametrize("how", ["metrics off", "state absent"])
def test_metrics_off_and_state_absent_remove_the_timer_the_program_the_record_and_the_textfile(kernel, tmp_path, how):
    confirm(kernel, run(kernel, metrics=METRICS)[0])
    textfile = tmp_path / DIR.lstrip("/") / _nat_metrics.TEXTFILE
    textfile.write_text("netreach_nat_applied 1\n")
    options = dict(metrics=(None, 15)) if how == "metrics off" else dict(metrics=METRICS, state="absent", timeout=0)
    checked, module = run(kernel, check=True, **options)
    assert checked["changed"] and textfile.exists() and all((tmp_path / path).exists() for path in OURS)
    removed, module = run(kernel, **options)
    assert removed["changed"] and ["systemctl", "disable", "--now", mplan.METRICS_TIMER] in module.commands
    assert not [path for path in OURS if (tmp_path / path).exists()] and not textfile.exists()
    assert (tmp_path / DIR.lstrip("/")).is_dir()  # the directory is node_exporter's
    assert (kernel.table is None) == (how == "state absent")
    again, module = run(kernel, **options)
    assert not again["changed"] and not again["metrics"], again["diff"]


def test_the_diff_shows_the_record_and_the_units(kernel):
    result, _module = run(kernel, check=True, timeout=0, metrics=METRICS)
    after = result["diff"]["after"]
    assert "# /etc/netreach/nat-confirmed.json\n" in after and "netreach-nat-metrics.timer" in after
    shown = after.split("# /etc/netreach/nat-confirmed.json\n", 1)[1].split("\n", 1)[0]
    assert json.loads(shown)["forwards"] == 1
