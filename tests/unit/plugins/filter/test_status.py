from __future__ import annotations

import re

import xml.etree.ElementTree as ET

from ansible_collections.netreach.tunnels.plugins.filter.status import (
    BOX_WIDTH,
    MIN_FONT,
    fit_label,
    gateway_forward_rows,
    gateway_forward_table,
    tunnel_status_html,
    tunnel_status_rows,
    tunnel_status_table,
    text_width,
)

RESULT = {"tunnels": [
    {"name": "news", "state": "active", "healthy": True, "uptime_seconds": 3725, "restarts": 2, "server": "bastion",
     "jump_hosts": [], "last_error": "", "forwards": [
         {"kind": "local", "listen": "12345", "target": "newshost:119", "listening": True, "probe_ok": True, "probe": "connected"}]},
    {"name": "socks<x>", "state": "activating", "healthy": False, "uptime_seconds": None, "restarts": 7, "server": "bastion",
     "jump_hosts": ["jump1"], "cause": "permission_denied",
     "last_error": "tunnel@bastion: Permission denied (publickey).", "warnings": ["bind [::1]:3128: Cannot assign requested address"], "forwards": [
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
    assert lines[0].split() == ["host", "tunnel", "state", "uptime", "restarts", "failing", "forwards", "cause"]
    assert "DOWN" in lines[3] and "DOWN" not in lines[2]
    assert lines[3].endswith("permission denied") and lines[2].endswith(" -")
    assert lines[-1] == "2 tunnels, 1 down, 2 hosts without a result"


def test_html_is_self_contained_escaped_and_draws_down_tunnels_dashed():
    page = tunnel_status_html(rows(), [{"gateway": "gw", "proto": "tcp", "port": 8080, "to": "10.0.0.5:80"}])
    assert "<svg" in page and "socks&lt;x&gt;" in page and "socks<x>" not in page
    assert not re.search(r'(src|href)="(https?:)?//', page), "the report loads something at view time"
    assert 'stroke-dasharray' in page and "(down)" in page
    assert "socks&lt;x&gt; (down: permission denied)" in page, "the picture does not say why the tunnel is down"
    assert "<td>permission denied</td><td>tunnel@bastion: Permission denied (publickey).</td>" in page
    assert "<td>bind [::1]:3128: Cannot assign requested address</td>" in page
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


def test_a_gateway_whose_only_pending_change_is_its_metrics_timer_is_applied():
    # The status run uses the role's defaults (metrics on); a gateway applied without them is not drifted for that.
    forwards = [{"port": 8080, "to": "10.0.0.5:80"}]
    hostvars = {"quiet": {"gateway_port_forwards": forwards,
                          "gateway_result": {"changed": True, "flows_changed": False, "metrics": True}},
                "moved": {"gateway_port_forwards": forwards,
                          "gateway_result": {"changed": True, "flows_changed": True, "metrics": False}}}
    assert [(row["gateway"], row["state"]) for row in gateway_forward_rows(hostvars, ["quiet", "moved"])] == [
        ("moved", "drifted (a run would change the table)"), ("quiet", "applied")]


def labels(page: str):
    """Every label of the report's picture: (its lines, font size, the width and height it must fit)."""
    svg = ET.fromstring(page[page.index("<svg"):page.index("</svg>") + 6])
    for text in svg.iter("{http://www.w3.org/2000/svg}text"):
        if text.get("class") == "label":
            lines = [span.text or "" for span in text.iter("{http://www.w3.org/2000/svg}tspan")]
            yield lines, float(text.get("font-size")), float(text.get("data-width")), float(text.get("data-height")), text


def test_every_label_of_a_sample_fits_its_box():
    """The boxes and the gaps between them hold whole labels: nothing cut (`127.0.0.1:31`), nothing under a box."""
    result = {"tunnels": [
        {"name": "socks", "state": "active", "healthy": True, "server": "tunnel_security-bastion", "jump_hosts": [],
         "forwards": [{"kind": "dynamic", "listen": "127.0.0.1:3128"},
                      {"kind": "local", "listen": "[::1]:12380", "target": "intranet.corp.example.org:8080"}]},
        {"name": "a-tunnel-with-a-rather-long-name", "state": "failed", "healthy": False, "cause": "host_key_mismatch",
         "server": "newshost.department.corp.example.org", "jump_hosts": ["tunnel@bastion-in-the-dmz.example.org:2222"],
         "forwards": [{"kind": "remote", "listen": "0.0.0.0:17070", "target": "localhost:7070"}]},
    ]}
    hostvars = {"laptop-of-alice-in-accounting": {"status_tunnels": result}}
    page = tunnel_status_html(tunnel_status_rows(hostvars, list(hostvars)), [
        {"gateway": "gw", "proto": "tcp", "port": "5000-5002", "to": "[fd00:10:20::5]:8443", "in_interface": "wan0",
         "state": "drifted (a run would change the table)", "in_sync": False}])
    found = list(labels(page))
    texts = ["".join(lines) for lines, *_rest in found]
    for expected in ("-D 127.0.0.1:3128", "laptop-of-alice-in-accounting", "a-tunnel-with-a-rather-long-name (down: host key mismatch)",
                     "-L [::1]:12380", "gateway gw"):
        assert any(text.replace(" ", "") == expected.replace(" ", "") for text in texts), (expected, texts)
    for lines, size, width, height, text in found:
        assert size >= MIN_FONT and len(lines) * size * 1.2 <= height + 0.01, lines
        for index, line in enumerate(lines):
            squeezed = text.findall("{http://www.w3.org/2000/svg}tspan")[index].get("textLength")
            assert text_width(line, size) <= width + 0.01 or float(squeezed) <= width, (line, size, width)
    svg = ET.fromstring(page[page.index("<svg"):page.index("</svg>") + 6])
    children = list(svg)
    boxes = [(rect, children[index + 1]) for index, rect in enumerate(children) if rect.tag.endswith("rect")]
    assert boxes and all(float(text.get("data-width")) <= float(rect.get("width")) == BOX_WIDTH
                         and float(text.get("data-height")) <= float(rect.get("height")) for rect, text in boxes)
    lines = [child for child in children if child.tag.endswith("line")]
    # An edge's label is as wide at most as the gap its line spans between two boxes.
    gaps = sorted(abs(float(line.get("x2")) - float(line.get("x1"))) for line in lines)
    assert all(any(width <= gap for gap in gaps) for _lines, _size, width, _height, text in found
               if (text, ) not in [(t, ) for _r, t in boxes])


def test_fit_label_shrinks_then_wraps_at_a_break():
    assert fit_label("web", 168, 28) == (12.0, ["web"])
    size, lines = fit_label("tunnel_security-client13: localhost:7070", 168, 28)
    assert len(lines) == 2 and " ".join(lines) == "tunnel_security- client13: localhost:7070" and MIN_FONT <= size < 12
    assert max(text_width(line, size) for line in lines) <= 168
    size, lines = fit_label("-D 127.0.0.1:3128", 98, 20)
    assert len(lines) == 1 and text_width("-D 127.0.0.1:3128", size) <= 98
