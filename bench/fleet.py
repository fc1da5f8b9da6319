#!/usr/bin/env python3
"""Fleet benchmark: converge and idempotent rerun of playbooks/site.yml on 5, 10, 20 and 30 lab hosts, against a
fleet-wide `ansible -m ping` floor on the same hosts, and the tasks each host runs.

Lab per size N (a fresh one each time, so every converge starts from clean hosts): a bastion and a target server
on an internal "inside" network, the bastion also on "corp", and N - 2 clients on "corp" that are tunnel_clients
and proxy_clients. Every client declares two tunnels (the seed's `-L12345:localhost:119` to the target through
the bastion as jump host, and a SOCKS proxy on 127.0.0.1:3128 through the bastion) and a client_proxy
declaration. After the converge every client must read the target's banner through its -L forward and fetch
the target's page through its SOCKS proxy, or the benchmark fails.

Every ansible run uses the same settings: forks FORKS (10 unless set: on 2 cores more forks only queue on the
CPU; the ping floor is also measured with one fork per host to show it), pipelining on, the
community.docker.docker connection. The ping floor is the median of 3 runs. Tasks per host: the recap's `ok`
of the rerun (every task the host ran, changed or not; skipped ones are not counted).
Prints every figure and writes bench/results/fleet.json, docs/plots/fleet.svg and a section of docs/benchmarks.md.

usage: bench/fleet.py  (FLEET_SIZES=5,10,20,30 FORKS=10; needs the lab image and the installed collection)
"""
from __future__ import annotations

import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

from _lab import create_network, save_results, start_container, wait_booted, write_section

SIZES = [int(size) for size in os.environ.get("FLEET_SIZES", "5,10,20,30").split(",")]
FORKS = int(os.environ.get("FORKS", "10"))
LABEL = "bench-fleet"
CORP, INSIDE = "nrlab-bench-fleet-corp", "nrlab-bench-fleet-inside"
BASTION, TARGET = "bench-fleet-bastion", "bench-fleet-target"
BANNER = "200 fleet bench banner"
PAGE = "fleet bench target page"
RATIO_TARGET = 5.0


def clients(size: int) -> list[str]:
    return [f"bench-fleet-c{index:02d}" for index in range(1, size - 1)]


def sh(container: str, command: str, check: bool = True) -> str:
    done = subprocess.run(["docker", "exec", container, "sh", "-c", command], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise RuntimeError(f"{container}: {command}: {done.stderr or done.stdout}")
    return done.stdout


def lab_containers() -> list[str]:
    return subprocess.run(["docker", "ps", "-aq", "--filter", f"label=netreach.lab.scenario={LABEL}"],
                          capture_output=True, text=True, check=True).stdout.split()


def stop() -> None:
    names = lab_containers()
    if names:
        subprocess.run(["docker", "rm", "-f", *names], capture_output=True)
    for network in (CORP, INSIDE):
        subprocess.run(["docker", "network", "rm", network], capture_output=True)


def start(size: int) -> None:
    stop()
    create_network(CORP)
    create_network(INSIDE, internal=True)
    start_container(BASTION, [CORP, INSIDE], LABEL)
    start_container(TARGET, [INSIDE], LABEL)
    for name in clients(size):
        start_container(name, [CORP], LABEL)
    wait_booted([BASTION, TARGET, *clients(size)])
    for server in (BASTION, TARGET):
        sh(server, "systemctl start ssh")
    sh(TARGET, f"mkdir -p /srv/web && echo '{PAGE}' > /srv/web/index.html && "
               f"systemd-run --unit bench-banner socat TCP-LISTEN:119,fork,reuseaddr 'SYSTEM:echo {BANNER}' && "
               "systemd-run --unit bench-web python3 -m http.server 80 --bind 0.0.0.0 --directory /srv/web")


def inventory(size: int) -> dict:
    """The fleet's inventory: the same groups and variables a user writes for site.yml."""
    members = {name: {} for name in clients(size)}
    return {"all": {
        "vars": {"ansible_connection": "community.docker.docker", "ansible_python_interpreter": "/usr/bin/python3"},
        "children": {
            "tunnel_clients": {"hosts": members, "vars": {
                "tunnel_client_defaults": {"user": "tunnel"},
                "tunnel_client_tunnels": [
                    {"name": "news", "server": TARGET, "jump_hosts": [f"tunnel@{BASTION}:22"],
                     "local_forwards": ["12345:localhost:119"]},
                    {"name": "socks", "server": BASTION, "dynamic_forwards": ["127.0.0.1:3128"],
                     "server_allow_dynamic": True}]}},
            "proxy_clients": {"hosts": members, "vars": {"client_proxy": {
                "socks_proxy": "socks5h://127.0.0.1:3128", "no_proxy": ["localhost", "127.0.0.1", BASTION]}}},
            "tunnel_servers": {"hosts": {BASTION: {}, TARGET: {}}}}}}


def env() -> dict:
    return dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
                ANSIBLE_PIPELINING="1")


def timed(command: list[str]) -> tuple[float, dict]:
    """Wall time of COMMAND and the json callback's document; fails on any failed or unreachable host."""
    start = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, env=env(), check=False)
    seconds = time.monotonic() - start
    try:
        document = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise RuntimeError(f"{' '.join(command)}: no JSON result: {done.stdout[-2000:]}{done.stderr[-2000:]}") from None
    bad = {host: stats for host, stats in document["stats"].items() if stats["failures"] or stats["unreachable"]}
    if done.returncode != 0 or bad:
        raise RuntimeError(f"{' '.join(command)}: rc {done.returncode}, failed hosts {bad}: {done.stderr[-2000:]}")
    return seconds, document


def carries_traffic(client: str) -> bool:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        banner = sh(client, "nc -w 3 127.0.0.1 12345 </dev/null || true", check=False)
        page = sh(client, f"curl -s -m 5 --socks5-hostname 127.0.0.1:3128 http://{TARGET}/ || true", check=False)
        if BANNER in banner and PAGE in page:
            return True
        time.sleep(1)
    return False


def measure(size: int, workdir: pathlib.Path) -> dict:
    start(size)
    path = workdir / f"fleet-{size}.json"
    path.write_text(json.dumps(inventory(size)))
    playbook = ["ansible-playbook", "netreach.tunnels.site", "-i", str(path), "--forks", str(FORKS)]
    load = os.getloadavg()[0]
    converge, first = timed(playbook)
    working = [client for client in clients(size) if carries_traffic(client)]
    if len(working) != len(clients(size)):
        raise RuntimeError(f"{size} hosts: no traffic through the tunnels of {sorted(set(clients(size)) - set(working))}")
    rerun, second = timed(playbook)
    changed = {host: stats["changed"] for host, stats in second["stats"].items() if stats["changed"]}
    if changed:
        raise RuntimeError(f"{size} hosts: the rerun changed {changed}")
    ping = [timed(["ansible", "all", "-i", str(path), "-m", "ansible.builtin.ping", "--forks", str(FORKS)])[0]
            for _ in range(3)]
    ping_all_forks = timed(["ansible", "all", "-i", str(path), "-m", "ansible.builtin.ping", "--forks", str(size)])[0]
    tasks = {host: stats["ok"] for host, stats in second["stats"].items()}
    figures = {
        "hosts": size, "clients": len(clients(size)), "forks": FORKS,
        "converge_s": round(converge, 1), "rerun_s": round(rerun, 1), "ping_s": round(statistics.median(ping), 2),
        "ping_runs_s": [round(p, 2) for p in ping], "ping_one_fork_per_host_s": round(ping_all_forks, 2),
        "rerun_ping_ratio": round(rerun / statistics.median(ping), 1),
        "converge_changed_hosts": sum(1 for stats in first["stats"].values() if stats["changed"]),
        "tasks_per_client": round(statistics.mean(tasks[c] for c in clients(size)), 1),
        "tasks_per_server": {server: tasks[server] for server in (BASTION, TARGET)},
        "tasks_total": sum(tasks.values()), "clients_carrying_traffic": len(working), "load_average_1m": round(load, 1),
    }
    print(json.dumps(figures), flush=True)
    return figures


def report(results: list[dict]) -> None:
    lines = ["![Fleet: converge, idempotent rerun and ping floor per fleet size](plots/fleet.svg)", "",
             "| hosts (clients) | converge | idempotent rerun | ping floor | rerun / ping | tasks per client | "
             "tasks per server (bastion, target) | clients carrying traffic |",
             "|---|---|---|---|---|---|---|---|"]
    for row in results:
        servers = row["tasks_per_server"]
        lines.append(f"| {row['hosts']} ({row['clients']}) | {row['converge_s']:.1f} s | {row['rerun_s']:.1f} s (changed=0) | "
                     f"{row['ping_s']:.1f} s | {row['rerun_ping_ratio']:.1f}x | {row['tasks_per_client']:g} | "
                     f"{servers[BASTION]}, {servers[TARGET]} | {row['clients_carrying_traffic']}/{row['clients']} |")
    worst = max(row["rerun_ping_ratio"] for row in results)
    lines += ["", f"- Target of the issue: rerun ≤ {RATIO_TARGET:g}x the ping floor; worst here {worst:.1f}x "
                  f"({'met' if worst <= RATIO_TARGET else 'NOT met'}).",
              "- Ping floor with one fork per host instead of " + str(FORKS) + ": " + ", ".join(
                  f"{row['hosts']} hosts {row['ping_one_fork_per_host_s']:.1f} s" for row in results) + ".",
              "- Where the rerun goes: every client runs " + ", ".join(sorted({f"{row['tasks_per_client']:g}" for row in results}))
              + " tasks against ping's one, and a round of one task over the fleet costs about what the ping floor "
              "does: rerun / tasks per client = " + ", ".join(
                  f"{row['rerun_s'] / row['tasks_per_client']:.1f} s" for row in results) + " against the floor's " +
              ", ".join(f"{row['ping_s']:.1f} s" for row in results) + ". The ratio follows the task count, "
              "not slow modules.",
              "- Load average (1 min) when each converge started: " + ", ".join(
                  f"{row['hosts']} hosts {row['load_average_1m']:g}" for row in results) +
              " (the lab's own systemd containers count: the bench's only load when nothing else runs; anything"
              " above that is other work sharing the 2 cores)."]
    print("\n".join(lines))
    write_section("Fleet: site.yml on 5 to 30 hosts",
                  f"`bench/fleet.py`, {time.strftime('%Y-%m-%d')}: for each size a fresh lab (a bastion, a target "
                  "server, the rest clients that are tunnel_clients and proxy_clients with two tunnels each, -L "
                  "through the bastion as jump host and SOCKS) runs `playbooks/site.yml` to converge, then once more "
                  "(the idempotent rerun, changed=0 on every host), then `ansible all -m ping` (median of 3: the "
                  f"floor). forks {FORKS}, pipelining on, community.docker.docker connection, 2 cores. After the "
                  "converge every client read the target's banner through -L and its page through SOCKS. Raw "
                  "figures in `bench/results/fleet.json`.", lines)


def main() -> int:
    results = []
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp:
        try:
            for size in SIZES:
                results.append(measure(size, pathlib.Path(tmp)))
        finally:
            if not os.environ.get("KEEP_LAB"):
                stop()
    save_results("fleet", {"forks": FORKS, "pipelining": True, "ratio_target": RATIO_TARGET, "sizes": results})
    report(results)
    import plots  # after the figures are saved and reported, so a plotting error loses nothing
    plots.fleet()
    return 0


if __name__ == "__main__":
    sys.exit(main())
