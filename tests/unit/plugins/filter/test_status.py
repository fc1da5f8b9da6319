from __future__ import annotations

import re

from ansible_collections.netreach.tunnels.plugins.filter.status import (
    gateway_forward_rows,
    gateway_forward_table,
    tunnel_status_html,
    tunnel_status_rows,
    tunnel_status_table,
)

RESULT = {"tunnels": [
    {"name": "news", "state": "active", "healthy": True, "uptime_seconds": 3725, "restarts": 2, "server": "bastion",
     "jump_hosts": [], "last_error": "", "forwards": [
         {"kind": "local", "listen": "12345", "target": "newshost:119", "listening": True, "probe_ok": True, "probe": "connected"}]},
    {"name": "socks<x>", "state": "activating", "healthy": False, "uptime_seconds": None, "restarts": 7, "server": "bastion",
     "jump_hosts": ["jump1"], "last_error": "Permission denied (publickey)", "forwards": [
         {"kind": "dynamic", "listen": "127.0.0.1:3128", "target": None, "listening": False, "probe_ok": False,
          "probe": "Connection refused"}]},
]}


def rows():
    return tunnel_status_rows({"laptop": {"status_tunnels": RESULT}, "server": {}}, ["laptop", "server", "gone"])


def test_rows_come_from_the_hosts_that_ran_tunnel_info():
    got = rows()
    assert [(row["host"], row["tunnel"], row["healthy"]) for row in got] == [
        ("gone", "-", False), ("laptop", "news", True), ("laptop", "socks<x>", False), ("server", "-", False)]
    assert got[0]["state"] == "unknown (no result)"
    assert got[1]["uptime"] == "1h02m" and got[2]["uptime"] == "-"
    assert got[2]["failing"] == ["dynamic 127.0.0.1:3128: Connection refused"]


def test_table_marks_down_tunnels_and_counts_them():
    lines = tunnel_status_table(rows())
    assert lines[0].split() == ["host", "tunnel", "state", "uptime", "restarts", "failing", "forwards"]
    assert "DOWN" in lines[3] and "DOWN" not in lines[2]
    assert lines[-1] == "2 tunnels, 1 down, 2 hosts without a result"


def test_html_is_self_contained_escaped_and_draws_down_tunnels_dashed():
    page = tunnel_status_html(rows(), [{"gateway": "gw", "proto": "tcp", "port": 8080, "to": "10.0.0.5:80"}])
    assert "<svg" in page and "socks&lt;x&gt;" in page and "socks<x>" not in page
    assert not re.search(r'(src|href)="(https?:)?//', page), "the report loads something at view time"
    assert 'stroke-dasharray' in page and "(down)" in page
    assert "<td>gw</td><td>tcp 8080</td><td>10.0.0.5:80</td><td>declared</td>" in page


GATEWAYS = {
    "gw1": {"gateway_result": {"changed": False}, "gateway_port_forwards": [
        {"proto": "tcp", "port": 8080, "to": "10.0.0.5:80", "in_interface": "eth0"}, {"port": "5000-5002", "to": "10.0.0.6"}]},
    "gw2": {"gateway_result": {"changed": True}, "gateway_port_forwards": [{"port": 443, "to": "[fd00::5]:8443"}]},
    "gw3": {"gateway_port_forwards": [{"port": 22, "to": "10.0.0.7"}]},
    "gw4": {"gateway_result": {"changed": False, "failed": True, "msg": "boom"}, "gateway_port_forwards": [{"port": 1, "to": "10.0.0.8"}]},
}


def test_gateway_rows_tell_applied_drifted_and_unknown_apart():
    got = gateway_forward_rows(GATEWAYS, ["gw4", "gw3", "gw2", "gw1", "not-in-inventory"])
    assert [(row["gateway"], row["port"], row["state"].split()[0], row["in_sync"]) for row in got] == [
        ("gw1", "8080", "applied", True), ("gw1", "5000-5002", "applied", True), ("gw2", "443", "drifted", False),
        ("gw3", "22", "unknown", False), ("gw4", "1", "unknown", False)]
    assert got[1]["proto"] == "tcp" and got[1]["in_interface"] == ""


def test_gateway_table_and_report_show_each_forward_and_mark_drift():
    got = gateway_forward_rows(GATEWAYS, ["gw1", "gw2"])
    lines = gateway_forward_table(got)
    assert lines[0].split() == ["gateway", "forward", "state"]
    assert lines[1].split()[:6] == ["gw1", "tcp", "8080", "on", "eth0", "->"] and lines[1].endswith("applied")
    assert "drifted" in lines[3]
    assert gateway_forward_table([]) == []
    page = tunnel_status_html(rows(), got)
    assert page.count('<tr class="down"><td>gw2</td>') == 1 and "<td>gw1</td><td>tcp 8080 on eth0</td>" in page
    assert "gateway gw2" in page and "DNAT (drifted" in page


def test_loopback_targets_belong_to_their_server():
    result = {"tunnels": [
        {"name": name, "state": "active", "healthy": True, "server": server, "jump_hosts": [], "forwards": [
            {"kind": "local", "listen": port, "target": "localhost:119"}]}
        for name, server, port in (("a", "news1", "1119"), ("b", "news2", "2119"))]}
    page = tunnel_status_html(tunnel_status_rows({"laptop": {"status_tunnels": result}}, ["laptop"]))
    assert ">news1: localhost:119<" in page and ">news2: localhost:119<" in page


def test_a_gateway_whose_neighbour_drops_the_declared_flows_is_drifted():
    hostvars = {"gw": {"gateway_port_forwards": [{"port": 8080, "to": "10.0.0.5:80"}],
                       "gateway_result": {"failed": True, "field": "foreign_drop",
                                          "msg": "foreign_drop: table ip filter chain FORWARD ..."}}}
    (row,) = gateway_forward_rows(hostvars, ["gw"])
    assert row["state"] == "drifted (another table drops the declared flows)" and not row["in_sync"]
