#!/usr/bin/env python3
"""The plots of docs/benchmarks.md, drawn from the saved figures in bench/results/*.json (no benchmark is rerun).

Each benchmark script calls its function here after it saved its figures; `python3 bench/plots.py` redraws every
plot whose figures exist. Writes docs/plots/*.svg (self-contained SVG, see _plot.py).
"""
from __future__ import annotations

import json
import pathlib
import statistics
import sys

from _plot import Target, bar_chart, hbar_chart, line_chart

ROOT = pathlib.Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PLOTS = ROOT / "docs" / "plots"
RECOVERY_LIMIT = 150.0


def load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def save(name: str, svg: str) -> pathlib.Path:
    PLOTS.mkdir(parents=True, exist_ok=True)
    path = PLOTS / f"{name}.svg"
    path.write_text(svg)
    print(f"wrote {path}")
    return path


def median(values: list) -> float | None:
    """Median of the trials, or None when any trial never recovered within the benchmark's limit."""
    return None if any(v is None for v in values) else statistics.median(values)


def recovery() -> None:
    data = load("tunnel_recovery")
    if data is None:
        return
    results, trials = data["results"], data["trials"]
    tools = list(results["kill"])
    faults = {"kill": "session killed", "cut": "30 s cut, after the heal", "sshd": "sshd restarted"}
    series = {tool: [median(results[fault][tool]) for fault in faults] for tool in tools}
    save("recovery", bar_chart(
        f"Tunnel recovery: seconds until traffic flows again (median of {trials})", list(faults.values()), series,
        "seconds", unit=" s", log=True, cap=RECOVERY_LIMIT, missing=f"> {RECOVERY_LIMIT:.0f} s",
        targets=(Target(2.0, "target 2 s", faults["kill"]), Target(5.0, "target 5 s", faults["cut"]))))
    dead = {tool: [median(results["blackhole"][tool])] for tool in tools}
    save("dead-link", bar_chart(
        f"Dead-link detection: seconds until the tunnel's ssh exits (median of {trials})",
        ["flow black-holed, never healed"], dead, "seconds", unit=" s", cap=RECOVERY_LIMIT,
        missing=f"> {RECOVERY_LIMIT:.0f} s (never)"))


def nat() -> None:
    data = load("nat")
    if data is None:
        return
    seconds = data["seconds"]
    series = {f"nat_rules ({data['rules']:,} forwards, one task)": [seconds["nat_first"], seconds["nat_rerun"]],
              f"ansible.builtin.iptables loop ({data['iptables_rules']:,} rules)": [seconds["ipt_first"], seconds["ipt_rerun"]]}
    save("nat", bar_chart(f"NAT: {data['rules']:,} port forwards, seconds (target: nat_rules 100x faster)",
                          ["first run", "no-op rerun"], series, "seconds", unit=" s", log=True))


def fleet() -> None:
    data = load("fleet")
    if data is None:
        return
    rows = data["sizes"]
    hosts = [row["hosts"] for row in rows]
    save("fleet", line_chart(
        f"Fleet: site.yml converge, idempotent rerun and ping floor (forks {data['forks']})", hosts,
        {"converge": [row["converge_s"] for row in rows], "idempotent rerun": [row["rerun_s"] for row in rows],
         "ansible -m ping (floor)": [row["ping_s"] for row in rows]},
        "lab hosts (bastion + target server + clients)", "seconds", unit=" s"))
    save("fleet-ratio", bar_chart(
        "Fleet: idempotent rerun / ping floor", [f"{h} hosts" for h in hosts],
        {"rerun / ping": [row["rerun_ping_ratio"] for row in rows]}, "times the ping floor", unit="x",
        targets=(Target(data["ratio_target"], f"target {data['ratio_target']:g}x"),), width=620))


def throughput() -> None:
    data = load("tunnel_throughput")
    if data is None:
        return
    rates = data["mb_per_s"]
    plain = {name: rate for name, rate in rates.items() if name.startswith("plain")}
    targets = (Target(0.95 * max(plain.values()), "0.95x plain ssh -L (fastest cipher)"),) if plain else ()
    save("throughput", hbar_chart(
        f"Tunnel throughput, MB/s ({data['size_mb']} MB, median of {data['trials']})", list(rates),
        list(rates.values()), "MB/s", targets=targets,
        highlight=tuple(name for name in rates if name.startswith("netreach"))))


PLOTTERS = (recovery, nat, fleet, throughput)


def main() -> int:
    for plotter in PLOTTERS:
        plotter()
    return 0


if __name__ == "__main__":
    sys.exit(main())
