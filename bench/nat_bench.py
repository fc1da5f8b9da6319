#!/usr/bin/env python3
"""NAT benchmark: N port forwards on one gateway via netreach.tunnels.nat_rules vs an ansible.builtin.iptables loop.

Both run against the same lab container (netreach-lab:bookworm, systemd as PID 1) over the same connection
(community.docker.docker), each first on a clean container and then once more unchanged (the no-op rerun).
No traffic is sent: the rules name addresses of TEST-NET-1 and are only loaded. The iptables loop is slow
(one module run per rule), so it may be measured for fewer rules (--iptables-rules) and extrapolated; the
report says so when it is.

usage: bench/nat_bench.py [--rules 1000] [--iptables-rules 1000] [--report docs/benchmarks.md]
Run from the checkout with the environment the Makefile sets (PATH, ANSIBLE_COLLECTIONS_PATH).
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

import plots
from _lab import save_results

CONTAINER = "bench-natgw"
IMAGE = "netreach-lab:bookworm"
SECTION = "## NAT: 1,000 forwards"
ROOT = pathlib.Path(__file__).resolve().parent.parent


def forwards(count: int) -> list[dict]:
    return [{"proto": "tcp", "port": 10000 + i, "to": f"192.0.2.{1 + i % 250}:{80 + i // 250}"} for i in range(count)]


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check)


def start_container() -> None:
    docker("rm", "-f", CONTAINER, check=False)
    docker("run", "-d", "--name", CONTAINER, "--hostname", CONTAINER, "--network", "none",
           "--label", "netreach.lab=1", "--label", "netreach.lab.scenario=bench",
           "--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN", "--cap-add", "NET_RAW",
           "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined", "--cgroupns", "host",
           "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--tmpfs", "/run", "--tmpfs", "/run/lock", "--tmpfs", "/tmp",
           "--stop-signal", "SIGRTMIN+3", "-e", "container=docker", IMAGE, "/lib/systemd/systemd")
    for _ in range(60):
        state = docker("exec", CONTAINER, "systemctl", "is-system-running", check=False).stdout.strip()
        if state in ("running", "degraded"):
            return
        time.sleep(1)
    sys.exit(f"{CONTAINER} did not boot")


def play(workdir: pathlib.Path, name: str, tasks: list[dict], variables: dict) -> tuple[float, str]:
    """Run one playbook against the container; (wall seconds, PLAY RECAP line)."""
    playbook = workdir / f"{name}.yml"
    playbook.write_text(json.dumps([{"name": name, "hosts": CONTAINER, "gather_facts": False,
                                     "vars": variables, "tasks": tasks}]), encoding="utf-8")
    inventory = workdir / "inventory.ini"
    inventory.write_text(f"{CONTAINER} ansible_connection=community.docker.docker "
                         "ansible_python_interpreter=/usr/bin/python3\n", encoding="utf-8")
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="default", ANSIBLE_DISPLAY_OK_HOSTS="0",
               ANSIBLE_DISPLAY_SKIPPED_HOSTS="0")
    start = time.monotonic()
    done = subprocess.run(["ansible-playbook", "-i", str(inventory), str(playbook)], capture_output=True, text=True,
                          env=env, check=False)
    seconds = time.monotonic() - start
    recap = next((line for line in done.stdout.splitlines() if line.startswith(CONTAINER) and "ok=" in line), "")
    if done.returncode != 0:
        sys.exit(f"{name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return seconds, re.sub(r"\s+", " ", recap.split(":", 1)[1]).strip()


def changed(recap: str) -> int:
    return int(re.search(r"changed=(\d+)", recap).group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--iptables-rules", type=int, default=1000)
    parser.add_argument("--report", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args()

    nat_task = [{"name": "Declare the forwards", "netreach.tunnels.nat_rules": {
        "port_forwards": "{{ bench_forwards }}", "forward_policy": "accept", "rollback_timeout": 30}}]
    ipt_task = [{"name": "Add one DNAT rule per forward", "ansible.builtin.iptables": {
        "table": "nat", "chain": "PREROUTING", "protocol": "tcp", "destination_port": "{{ item.port }}",
        "jump": "DNAT", "to_destination": "{{ item.to }}"}, "loop": "{{ bench_forwards }}"}]
    figures = {}
    with tempfile.TemporaryDirectory(prefix="nat-bench-") as tmp:
        workdir = pathlib.Path(tmp)
        start_container()
        try:
            variables = {"bench_forwards": forwards(args.rules)}
            figures["nat_first"] = play(workdir, "nat_rules_first", nat_task, variables)
            figures["nat_rerun"] = play(workdir, "nat_rules_rerun", nat_task, variables)
            loaded = docker("exec", CONTAINER, "sh", "-c", "nft list table inet netreach | grep -c 'dnat ip'").stdout.strip()
            figures["nat_rules_loaded"] = int(loaded or 0)
            variables = {"bench_forwards": forwards(args.iptables_rules)}
            figures["ipt_first"] = play(workdir, "iptables_first", ipt_task, variables)
            figures["ipt_rerun"] = play(workdir, "iptables_rerun", ipt_task, variables)
            loaded = docker("exec", CONTAINER, "sh", "-c", "iptables -t nat -S PREROUTING | grep -c DNAT").stdout.strip()
            figures["ipt_rules_loaded"] = int(loaded or 0)
        finally:
            docker("rm", "-f", CONTAINER, check=False)
    write_report(args, figures)
    save_results("nat", {
        "rules": args.rules, "iptables_rules": args.iptables_rules, "date": time.strftime("%Y-%m-%d"),
        "seconds": {name: round(figures[name][0], 1) for name in ("nat_first", "nat_rerun", "ipt_first", "ipt_rerun")},
        "recap": {name: figures[name][1] for name in ("nat_first", "nat_rerun", "ipt_first", "ipt_rerun")},
        "loaded": {"nat_rules": figures["nat_rules_loaded"], "iptables": figures["ipt_rules_loaded"]}})
    plots.nat()


def write_report(args, figures: dict) -> None:
    n, m = args.rules, args.iptables_rules
    nat_first, nat_first_recap = figures["nat_first"]
    nat_rerun, nat_rerun_recap = figures["nat_rerun"]
    ipt_first, ipt_first_recap = figures["ipt_first"]
    ipt_rerun, ipt_rerun_recap = figures["ipt_rerun"]
    scale = n / m
    extrapolated = m != n
    ipt_first_n, ipt_rerun_n = ipt_first * scale, ipt_rerun * scale
    label = f" (extrapolated from {m} rules: {ipt_first:.1f} s and {ipt_rerun:.1f} s measured)" if extrapolated else ""
    lines = [
        SECTION,
        "",
        f"`bench/nat_bench.py --rules {n} --iptables-rules {m}`, {time.strftime('%Y-%m-%d')}: {n:,} TCP port forwards "
        "on one lab gateway (netreach-lab:bookworm, systemd) over the community.docker.docker connection, the same "
        "for both. A 2-core machine shared with other lab runs, so figures are noisy.",
        "",
        "![NAT: nat_rules vs an iptables loop, first run and no-op rerun (log scale)](plots/nat.svg)",
        "",
        "| run | nat_rules (one task) | ansible.builtin.iptables loop | speed-up |",
        "|---|---|---|---|",
        f"| first run, {n:,} rules | {nat_first:.1f} s (changed={changed(nat_first_recap)}) | "
        f"{ipt_first_n:.1f} s{' (extrapolated)' if extrapolated else ''} (changed={changed(ipt_first_recap)}) | "
        f"{ipt_first_n / nat_first:.0f}x |",
        f"| no-op rerun | {nat_rerun:.1f} s (changed={changed(nat_rerun_recap)}) | "
        f"{ipt_rerun_n:.1f} s{' (extrapolated)' if extrapolated else ''} (changed={changed(ipt_rerun_recap)}) | "
        f"{ipt_rerun_n / nat_rerun:.0f}x |",
        "",
        f"- iptables loop per rule: {ipt_first / m:.2f} s first run, {ipt_rerun / m:.2f} s rerun{label}.",
        f"- Loaded afterwards: {figures['nat_rules_loaded']} DNAT rules in `inet netreach`, "
        f"{figures['ipt_rules_loaded']} DNAT rules in iptables' nat PREROUTING.",
        "- nat_rules' figures include the whole apply: render, `nft -c` preflight, the load in a scratch network "
        "namespace for the comparison with the kernel, the armed rollback timer, the atomic `nft -f` and the "
        "confirmation over a fresh connection. The iptables loop persists nothing and has no rollback.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    report = pathlib.Path(args.report)
    existing = report.read_text(encoding="utf-8") if report.exists() else "# Benchmarks\n\n"
    if SECTION in existing:
        head, rest = existing.split(SECTION, 1)
        tail = rest[rest.find("\n## "):] if "\n## " in rest else ""
        existing = head + text + tail.lstrip("\n")
    else:
        existing = existing.rstrip("\n") + "\n\n" + text
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(existing, encoding="utf-8")


if __name__ == "__main__":
    main()
