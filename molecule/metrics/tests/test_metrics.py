"""The tunnel metrics proven where ops look: Prometheus' HTTP API on the monitor host.

The client runs three tunnels to the server (ssh: -L to the server's sshd, socks: -D, reverse: -R); Debian's
node_exporter on the client reads the textfile netreach-tunnel-metrics.timer writes; Debian's prometheus scrapes it
every 5 s and evaluates the collection's alert rules as shipped (NetreachTunnelDown: `netreach_tunnel_up == 0` for
30 s). The tests read the metrics from Prometheus, stop the server's sshd (and end the sessions it leaves: Debian's
ssh.service stops only the listener) and time how soon netreach_tunnel_up says 0 and the alert fires, then start
sshd and time how soon 1 comes back. Measured times are printed.
"""
from __future__ import annotations

import json
import time
import urllib.parse

import labtest

TUNNELS = {"ssh": "127.0.0.1:18022", "socks": "127.0.0.1:11080", "reverse": "2290"}
FORWARDS = {("ssh", "local", "127.0.0.1:18022"), ("socks", "dynamic", "127.0.0.1:11080"), ("reverse", "remote", "2290")}
TEXTFILE = "/var/lib/prometheus/node-exporter/netreach_tunnels.prom"
# The bound for netreach_tunnel_up to turn 0 after the server's sshd stops.
DOWN_WITHIN = 45.0
# The rule's `for: 30s`, plus an evaluation interval and a margin.
FIRING_WITHIN = DOWN_WITHIN + 30 + 15
UP_WITHIN = 60.0
SESSIONS = "^sshd(-session)?: tunnel"


def api(path: str, **query) -> dict:
    """One call of Prometheus' HTTP API, made on the monitor host itself (Prometheus listens there)."""
    url = f"http://127.0.0.1:9090{path}?{urllib.parse.urlencode(query)}"
    out = labtest.host("prometheus").check_output(f"curl -sf --max-time 5 '{url}'")
    body = json.loads(out)
    assert body["status"] == "success", body
    return body["data"]


def series(expr: str) -> list[tuple[dict, float]]:
    return [(row["metric"], float(row["value"][1])) for row in api("/api/v1/query", query=expr)["result"]]


def tunnel_up() -> dict:
    return {labels["tunnel"]: value for labels, value in series("netreach_tunnel_up")}


def firing(alertname: str, label: str = "tunnel") -> set[str]:
    """The LABEL values of ALERTNAME's firing alerts."""
    return {alert["labels"].get(label) for alert in api("/api/v1/alerts")["alerts"]
            if alert["labels"]["alertname"] == alertname and alert["state"] == "firing"}


def journals() -> str:
    client = labtest.host("client")
    units = [f"netreach-tunnel@{name}.service" for name in TUNNELS] + ["netreach-tunnel-metrics.service"]
    return "\n".join(labtest.journal(client, unit) for unit in units) + "\n" + client.run(f"cat {TEXTFILE}").stdout


def wait_all(expected: float, timeout: float) -> float:
    seconds = labtest.wait_until(lambda: tunnel_up() == {name: expected for name in TUNNELS}, timeout, interval=1)
    assert seconds is not None, f"netreach_tunnel_up is {tunnel_up()} after {timeout:.0f} s, not all {expected}:\n{journals()}"
    return seconds


def test_prometheus_has_the_tunnels_state_from_the_textfile():
    wait_all(1, 60)
    assert {labels["tunnel"]: labels["server"] for labels, _v in series("netreach_tunnel_up")} == {
        name: "metrics-server" for name in TUNNELS}
    forwards = {(labels["tunnel"], labels["kind"], labels["listen"]): value
                for labels, value in series("netreach_forward_up")}
    assert set(forwards) == FORWARDS and set(forwards.values()) == {1.0}
    now = time.time()
    since = dict((labels["tunnel"], value) for labels, value in series("netreach_tunnel_up_since_seconds"))
    assert set(since) == set(TUNNELS) and all(now - 3600 < value <= now for value in since.values()), since
    restarts = {labels["tunnel"]: value for labels, value in series("netreach_tunnel_restarts_total")}
    assert set(restarts) == set(TUNNELS) and all(value >= 0 for value in restarts.values())
    # node_exporter read the file without complaint, and the file is fresh (the timer keeps writing it).
    assert [value for _labels, value in series("node_textfile_scrape_error")] == [0.0]
    age = series('time() - node_textfile_mtime_seconds{file=~".*netreach_tunnels[.]prom"}')
    assert len(age) == 1 and age[0][1] < 40, age
    print(f"metrics: netreach_tunnel_up {tunnel_up()}, restarts {restarts}")


def test_the_forwards_that_say_up_carry_traffic():
    """1 means traffic: the sshd banner through -L, SOCKS5 through -D, the client's own sshd back through -R."""
    client, server = labtest.host("client"), labtest.host("server")
    assert client.run("nc -w 3 127.0.0.1 18022 </dev/null").stdout.startswith("SSH-2.0-")
    assert client.run("nc -w 3 -X 5 -x 127.0.0.1:11080 localhost 22 </dev/null").stdout.startswith("SSH-2.0-")
    assert server.run("nc -w 3 127.0.0.1 2290 </dev/null").stdout.startswith("SSH-2.0-")


def stop_sshd(server) -> None:
    server.run_expect([0], "systemctl stop ssh.service ssh.socket")
    pids = server.run(f"pgrep -f '{SESSIONS}'").stdout.split()
    if pids:
        server.run(f"kill {' '.join(pids)}")


def test_sshd_stopped_turns_the_tunnels_to_0_and_fires_the_shipped_alert_then_1_comes_back():
    server = labtest.host("server")
    wait_all(1, 60)
    assert firing("NetreachTunnelDown") == set()
    stopped = time.monotonic()
    stop_sshd(server)
    try:
        down = wait_all(0, DOWN_WITHIN)
        forwards = {(labels["tunnel"], labels["kind"], labels["listen"]): value
                    for labels, value in series("netreach_forward_up")}
        assert set(forwards) == FORWARDS and set(forwards.values()) == {0.0}, forwards
        assert {value for _labels, value in series("netreach_tunnel_up_since_seconds")} == {0.0}
        fired = labtest.wait_until(lambda: firing("NetreachTunnelDown") == set(TUNNELS),
                                   FIRING_WITHIN - (time.monotonic() - stopped), interval=1)
        assert fired is not None, f"NetreachTunnelDown fires for {firing('NetreachTunnelDown')}, not {set(TUNNELS)}"
        fired_after = time.monotonic() - stopped
    finally:
        server.run_expect([0], "systemctl start ssh.service")
    started = time.monotonic()
    up = wait_all(1, UP_WITHIN)
    cleared = labtest.wait_until(lambda: firing("NetreachTunnelDown") == set(), 30, interval=1)
    assert cleared is not None, f"NetreachTunnelDown still fires for {firing('NetreachTunnelDown')}"
    restarts = {labels["tunnel"]: value for labels, value in series("netreach_tunnel_restarts_total")}
    assert all(value >= 1 for value in restarts.values()), restarts
    print(f"sshd stopped: netreach_tunnel_up 0 in Prometheus after {down:.1f} s (bound {DOWN_WITHIN:.0f} s), "
          f"NetreachTunnelDown firing after {fired_after:.1f} s; sshd started: 1 again after {up:.1f} s "
          f"(alert resolved {cleared:.1f} s later, {time.monotonic() - started:.1f} s after the start); "
          f"restarts {restarts}")
