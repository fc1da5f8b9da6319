from __future__ import annotations

import re

from ansible_collections.netreach.tunnels.plugins.filter.status import (
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
    assert "gateway gw: tcp 8080 -&gt; 10.0.0.5:80" in page
