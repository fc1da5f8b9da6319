#!/usr/bin/env python3
"""Benchmark: how fast a tunnel carries traffic again after faults — netreach.tunnels.ssh_tunnel vs two baselines
configured as users do today: autossh with its defaults under systemd, and a plain ssh unit with RestartSec=60.

Lab: two containers from the lab image on a docker network of their own (client, server). The server runs a
banner service on 127.0.0.1:7119; each of the three tunnels forwards its own client port to it. Faults, each
repeated TRIALS times, with all three tunnels measured in parallel from the same fault:
  kill   every sshd session of the tunnel account on the server is killed
  cut    client<->server traffic is dropped for 30 s (nft), then healed: time measured from the heal
  sshd   `systemctl restart ssh` on the server: established tunnels should not notice
  blackhole  the flow is dropped and never healed: how long until the tunnel notices the dead link (its ssh
         exits), the dead-link detection time
Prints every figure and writes bench/results/tunnel_recovery.json and a section of docs/benchmarks.md.

usage: run through `make bench-recovery` (needs the lab images and the installed collection).
"""
from __future__ import annotations

import concurrent.futures
import os
import statistics
import sys
import time

import plots
from _lab import Lab, save_results, write_section

TRIALS = int(os.environ.get("TRIALS", "5"))
PORTS = {"netreach": 17001, "autossh-default": 17002, "systemd-restartsec-60": 17003}
BANNER = "200 bench banner"
LIMIT = 150.0


LAB = Lab("recovery")
CLIENT, SERVER = LAB.client, LAB.server


def sh(container: str, command: str, check: bool = True) -> str:
    return LAB.sh(container, command, check)


def configure() -> None:
    sh(SERVER, f"systemd-run --unit bench-banner socat TCP-LISTEN:7119,bind=127.0.0.1,fork,reuseaddr 'SYSTEM:echo {BANNER}'")
    known = LAB.tunnel_to_server("bench", [f"{PORTS['netreach']}:127.0.0.1:7119"])
    # The baselines use the same key and pinned host key, so only supervision and keepalives differ.
    sh(CLIENT, f"echo '{known}' > /etc/bench_known_hosts")
    common = (f"-N -i /etc/netreach/tunnels/bench/id_ed25519 -o UserKnownHostsFile=/etc/bench_known_hosts "
              f"-o StrictHostKeyChecking=yes -o BatchMode=yes -o ExitOnForwardFailure=yes")
    units = {
        # autossh as commonly set up: its own defaults (AUTOSSH_POLL 600, AUTOSSH_GATETIME 30), no monitor port.
        "bench-autossh": f"/usr/bin/autossh -M 0 {common} -o ServerAliveInterval=30 -o ServerAliveCountMax=3 "
                         f"-L {PORTS['autossh-default']}:127.0.0.1:7119 tunnel@{SERVER}",
        # the plain unit of many roles: ssh -N, Restart=always, RestartSec=60.
        "bench-plain": f"/usr/bin/ssh {common} -L {PORTS['systemd-restartsec-60']}:127.0.0.1:7119 tunnel@{SERVER}",
    }
    for unit, command in units.items():
        restart = "RestartSec=60" if unit == "bench-plain" else "RestartSec=1"
        sh(CLIENT, f"printf '[Service]\\nUser=netreach-tunnel\\nExecStart={command}\\nRestart=always\\n{restart}\\n' "
                   f"> /etc/systemd/system/{unit}.service && systemctl daemon-reload && systemctl start {unit}")
    for name, port in PORTS.items():
        if wait_banner(port, 60) is None:
            raise RuntimeError(f"{name} tunnel never came up")


def banner(port: int) -> bool:
    return BANNER in sh(CLIENT, f"nc -w 2 127.0.0.1 {port} </dev/null || true", check=False)


def wait_banner(port: int, limit: float) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if banner(port):
            return time.monotonic() - start
        time.sleep(0.2)
    return None


def measure_all(limit: float = LIMIT) -> dict:
    with concurrent.futures.ThreadPoolExecutor(len(PORTS)) as pool:
        futures = {name: pool.submit(wait_banner, port, limit) for name, port in PORTS.items()}
        return {name: future.result() for name, future in futures.items()}


def settle() -> None:
    for port in PORTS.values():
        wait_banner(port, LIMIT)
    time.sleep(35)  # every tunnel has outlived its backoff reset (15 s) and autossh its gate time (30 s)


def fault_kill() -> dict:
    sh(SERVER, "pkill -KILL -u tunnel -f '^sshd' || true", check=False)
    return measure_all()


def nft(rule_action: str) -> None:
    server_ip = sh(SERVER, "hostname -I").split()[0]
    if rule_action == "add":
        sh(CLIENT, "nft add table inet bench; nft add chain inet bench out '{ type filter hook output priority 0; }'; "
                   "nft add chain inet bench in '{ type filter hook input priority 0; }'; "
                   f"nft add rule inet bench out ip daddr {server_ip} drop; nft add rule inet bench in ip saddr {server_ip} drop")
    else:
        sh(CLIENT, "nft delete table inet bench", check=False)


def fault_cut() -> dict:
    nft("add")
    time.sleep(30)
    nft("delete")
    return measure_all()


def fault_sshd() -> dict:
    sh(SERVER, "systemctl restart ssh")
    return measure_all()


def ssh_pids() -> dict:
    units = {"netreach": "netreach-tunnel@bench", "autossh-default": "bench-autossh", "systemd-restartsec-60": "bench-plain"}
    pids = {}
    for name, unit in units.items():
        main = sh(CLIENT, f"systemctl show --property=MainPID --value {unit}").strip()
        child = sh(CLIENT, f"pgrep -P {main} -x ssh || true", check=False).split()
        pids[name] = child[0] if child else main
    return pids


def fault_blackhole() -> dict:
    """Seconds until each tunnel's ssh process notices the dead link and exits (capped at LIMIT)."""
    before = ssh_pids()
    nft("add")
    start, noticed = time.monotonic(), {}
    try:
        while time.monotonic() - start < LIMIT and len(noticed) < len(before):
            for name, pid in before.items():
                if name not in noticed and not sh(CLIENT, f"test -d /proc/{pid} && echo up || true", check=False).strip():
                    noticed[name] = time.monotonic() - start
            time.sleep(0.2)
    finally:
        nft("delete")
    return {name: noticed.get(name) for name in before}


def summary(values: list) -> str:
    got = [v for v in values if v is not None]
    median = f"{statistics.median(got):.1f} s" if len(got) == len(values) else f"> {LIMIT:.0f} s in {len(values) - len(got)} trial(s)"
    return median


def main() -> int:
    faults = {"kill": fault_kill, "cut": fault_cut, "sshd": fault_sshd, "blackhole": fault_blackhole}
    results = {fault: {name: [] for name in PORTS} for fault in faults}
    LAB.start()
    try:
        configure()
        for fault, run in faults.items():
            for trial in range(TRIALS):
                settle()
                got = run()
                for name, seconds in got.items():
                    results[fault][name].append(None if seconds is None else round(seconds, 2))
                print(f"{fault} trial {trial + 1}: " + ", ".join(
                    f"{name} {'-' if s is None else f'{s:.1f} s'}" for name, s in got.items()), flush=True)
    finally:
        if not os.environ.get("KEEP_LAB"):
            LAB.stop()
    save_results("tunnel_recovery", {"trials": TRIALS, "results": results})
    plots.recovery()
    titles = {"kill": "session killed on the server", "cut": "30 s network cut, after the heal",
              "sshd": "sshd restarted on the server", "blackhole": "dead-link detection (flow black-holed)"}
    lines = ["| fault | " + " | ".join(PORTS) + " |", "|---|" + "---|" * len(PORTS)]
    for fault, by_name in results.items():
        lines.append(f"| {titles[fault]} | " + " | ".join(summary(by_name[name]) for name in PORTS) + " |")
    print("\n".join(lines))
    lines = ["![Recovery per fault, netreach vs the baselines (log scale)](plots/recovery.svg)",
             "![Dead-link detection, netreach vs the baselines](plots/dead-link.svg)", ""] + lines
    write_section("Tunnel recovery", f"Median of {TRIALS} trials (`bench/tunnel_recovery.py`, raw figures in "
                  "`bench/results/tunnel_recovery.json`); time until the banner is read through the tunnel again, "
                  "or for dead-link detection until the tunnel's ssh exits.", lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
