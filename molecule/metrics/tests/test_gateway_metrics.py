"""The gateway metrics proven where ops look: Prometheus' HTTP API on the monitor host.

The client is also a gateway (the gateway role, two port forwards); netreach-nat-metrics.timer writes
netreach_nat.prom beside the tunnels' textfile, the same node_exporter and Prometheus read it, and the shipped rules
hold NetreachNatNotApplied (`netreach_nat_applied == 0` for 30 s). The tests read the table's state from Prometheus,
edit the table by hand (0, then 1 again once the edit is undone), delete it (0 within 45 s, the alert fires), run
the gateway playbook again (1 again, the alert resolves; a second run changes nothing), and give nat_rules bad
metrics options (refused naming the field, the host unchanged). Measured times are printed.
"""
from __future__ import annotations

import re
import time

import labtest
from test_metrics import firing, series

GATEWAY = "metrics-client"
TEXTFILE = "/var/lib/prometheus/node-exporter/netreach_nat.prom"
TABLE = "inet netreach"
FORWARDS = 2  # gateway_port_forwards in molecule.yml
# The bound for the metric to follow the table.
DOWN_WITHIN = 45.0
# The rule's `for: 30s`, plus an evaluation interval and a margin.
FIRING_WITHIN = DOWN_WITHIN + 30 + 15
UP_WITHIN = 60.0


def applied() -> dict:
    return {labels["table"]: value for labels, value in series("netreach_nat_applied")}


def details() -> str:
    gateway = labtest.host("client")
    return (labtest.journal(gateway, "netreach-nat-metrics.service") + "\n" + gateway.run(f"cat {TEXTFILE}").stdout
            + "\n" + gateway.run(f"nft list table {TABLE}").stdout)


def wait_applied(expected: float, timeout: float) -> float:
    seconds = labtest.wait_until(lambda: applied() == {TABLE: expected}, timeout, interval=1)
    assert seconds is not None, f"netreach_nat_applied is {applied()} after {timeout:.0f} s, not {expected}:\n{details()}"
    return seconds


def textfile_applied() -> int:
    """Run the metrics service once, now, and read netreach_nat_applied from the textfile it wrote."""
    gateway = labtest.host("client")
    gateway.run_expect([0], "systemctl start netreach-nat-metrics.service")
    match = re.search(r'^netreach_nat_applied\{table="inet netreach"\} ([01])$', gateway.check_output(f"cat {TEXTFILE}"),
                      re.MULTILINE)
    assert match, details()
    return int(match.group(1))


def gateway_converge() -> dict:
    stats = labtest.run_playbook("netreach.tunnels.gateway")
    assert stats[GATEWAY]["failures"] == 0 and stats[GATEWAY]["unreachable"] == 0, stats
    return stats[GATEWAY]


def test_prometheus_has_the_gateway_table_applied_with_its_forward_count():
    wait_applied(1, UP_WITHIN)
    assert {labels["table"]: value for labels, value in series("netreach_nat_forwards")} == {TABLE: FORWARDS}
    assert set(applied()) == {TABLE}
    age = series('time() - node_textfile_mtime_seconds{file=~".*netreach_nat[.]prom"}')
    assert len(age) == 1 and age[0][1] < 40, age
    # Both textfiles beside each other, and node_exporter reads them without complaint.
    assert [value for _labels, value in series("node_textfile_scrape_error")] == [0.0]


def test_a_table_edited_by_hand_reads_0_and_1_once_the_edit_is_undone():
    gateway = labtest.host("client")
    assert textfile_applied() == 1
    gateway.run_expect([0], f"nft add rule {TABLE} forward tcp dport 9 accept comment '\"by hand\"'")
    try:
        assert textfile_applied() == 0, details()
    finally:
        handles = re.findall(r'comment "by hand" # handle (\d+)', gateway.check_output(f"nft -a list chain {TABLE} forward"))
        for handle in handles:
            gateway.run_expect([0], f"nft delete rule {TABLE} forward handle {handle}")
    assert textfile_applied() == 1, details()


def test_the_table_deleted_reads_0_fires_the_shipped_alert_and_the_gateway_role_puts_it_back():
    gateway = labtest.host("client")
    wait_applied(1, UP_WITHIN)
    assert firing("NetreachNatNotApplied", "table") == set()
    deleted = time.monotonic()
    gateway.run_expect([0], f"nft delete table {TABLE}")
    down = wait_applied(0, DOWN_WITHIN)
    fired = labtest.wait_until(lambda: firing("NetreachNatNotApplied", "table") == {TABLE},
                               FIRING_WITHIN - (time.monotonic() - deleted), interval=1)
    assert fired is not None, f"NetreachNatNotApplied fires for {firing('NetreachNatNotApplied', 'table')}, not {TABLE}"
    fired_after = time.monotonic() - deleted
    # The forward count is the confirmed declaration's: the table's absence does not change it.
    assert {labels["table"]: value for labels, value in series("netreach_nat_forwards")} == {TABLE: FORWARDS}
    started = time.monotonic()
    rerun = gateway_converge()
    assert rerun["changed"] > 0, rerun
    converged = time.monotonic() - started
    up = wait_applied(1, UP_WITHIN)
    cleared = labtest.wait_until(lambda: firing("NetreachNatNotApplied", "table") == set(), 30, interval=1)
    assert cleared is not None, f"NetreachNatNotApplied still fires for {firing('NetreachNatNotApplied', 'table')}"
    again = gateway_converge()
    assert again["changed"] == 0, again
    print(f"table deleted: netreach_nat_applied 0 in Prometheus after {down:.1f} s (bound {DOWN_WITHIN:.0f} s), "
          f"NetreachNatNotApplied firing after {fired_after:.1f} s; gateway playbook ({converged:.1f} s): 1 again "
          f"{up:.1f} s after it, alert resolved {cleared:.1f} s later; a second run changed nothing")


BAD = [
    ({"metrics_dir": "/var/lib/prometheus/node-exporter", "metrics_interval": 0}, "metrics_interval"),
    ({"metrics_dir": "/var/lib/prometheus/node-exporter", "metrics_interval": 3601}, "metrics_interval"),
    ({"metrics_dir": "var/lib/prometheus/node-exporter"}, "metrics_dir"),
    ({"metrics_dir": "/var/lib/../../etc"}, "metrics_dir"),
    ({"metrics_dir": "/var/lib/x\nExecStartPre=/bin/sh -c id"}, "metrics_dir"),
]


def test_bad_metrics_options_fail_naming_the_field_and_change_nothing():
    gateway = labtest.host("client")
    declared = {"port_forwards": [{"proto": "tcp", "port": 18080, "to": "192.0.2.10:80"}]}
    listed = "ls -A /var/lib /var/lib/prometheus/node-exporter"
    before, names = labtest.snapshot(gateway), gateway.check_output(listed)
    for options, field in BAD:
        result = labtest.run_module(GATEWAY, "netreach.tunnels.nat_rules", {**declared, **options})
        assert result.get("failed") and result.get("field") == field, (options, result)
        assert result["msg"].startswith(f"{field}: "), result["msg"]
    # The metrics services are oneshots their timers start every 15 s: their state comes and goes by itself.
    changes = [line for line in labtest.snapshot_changes(before, labtest.snapshot(gateway))
               if not re.match(r"units: [-+] netreach-(nat|tunnel)-metrics[.]service ", line)]
    assert changes == [] and gateway.check_output(listed) == names, changes
