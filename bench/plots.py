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
    cut = data.get("cut_seconds", 30)
    faults = {"kill": "session killed", "sshd": "sshd restarted", "cut": f"{cut:.0f} s cut, after the heal",
              "blackhole": "black-holed: traffic again"}
    # Figures saved before the black-hole fault measured traffic again hold only its detection, as "blackhole".
    detection = results.get("detection") or results.get("blackhole")
    faults = {fault: title for fault, title in faults.items()
              if fault in results and (fault != "blackhole" or "detection" in results)}
    if not faults:
        return
    tools = list(results[next(iter(faults))])
    series = {tool: [median(results[fault][tool]) for fault in faults] for tool in tools}
    goals = {"kill": Target(0.5, "goal 0.5 s", faults.get("kill")), "cut": Target(1.0, "goal 1 s", faults.get("cut")),
             "blackhole": Target(10.0, "goal 10 s", faults.get("blackhole"))}
    save("recovery", bar_chart(
        f"Tunnel recovery: seconds until traffic flows again (median of {trials})", list(faults.values()), series,
        "seconds", unit=" s", log=True, cap=RECOVERY_LIMIT, missing=f"> {RECOVERY_LIMIT:.0f} s",
        targets=tuple(goal for fault, goal in goals.items() if fault in faults)))
    if detection:
        dead = {tool: [median(detection[tool])] for tool in tools}
        save("dead-link", bar_chart(
            f"Dead-link detection: seconds until the tunnel's ssh exits (median of {trials})",
            ["connections black-holed, never healed"], dead, "seconds", unit=" s", cap=RECOVERY_LIMIT,
            missing="never (trial ended)"))


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
    rows = [row for row in data["sizes"] if "connection" in row]
    connections = list(dict.fromkeys(row["connection"] for row in rows))
    sizes = sorted({row["hosts"] for row in rows})
    figures = {(row["hosts"], row["connection"]): row for row in rows}
    for connection in connections:
        measured = [figures[size, connection] for size in sizes if (size, connection) in figures]
        save(f"fleet-{connection}", line_chart(
            f"Fleet over {connection}: site.yml converge, idempotent rerun, ping floor (forks {data['forks']})",
            [row["hosts"] for row in measured],
            {"converge": [row["converge_s"] for row in measured],
             "idempotent rerun": [row["rerun_s"] for row in measured],
             "ansible all -m ping (floor)": [row["ping_s"] for row in measured]},
            "lab hosts (bastion + target server + clients)", "seconds", unit=" s"))
        largest = measured[-1]
        spent = largest["converge_breakdown"][:8] + [largest["converge_breakdown"][-1]]
        save(f"fleet-converge-{connection}", hbar_chart(
            f"Where the converge of {largest['hosts']} hosts over {connection} goes ({fmt_seconds(largest['converge_s'])})",
            [short_task(name) for name, _seconds in spent], [seconds for _name, seconds in spent], "seconds",
            unit=" s", width=1000))
    save("fleet-ratio", bar_chart(
        "Fleet: idempotent rerun / ping floor (same connection, same run)", [f"{size} hosts" for size in sizes],
        {connection: [figures[size, connection]["rerun_ping_ratio"] if (size, connection) in figures else None
                      for size in sizes] for connection in connections},
        "times the ping floor", unit="x", missing="not measured",
        targets=(Target(data["ratio_target"], f"target {data['ratio_target']:g}x"),), width=680))


def fmt_seconds(value: float) -> str:
    return f"{value:.0f} s"


def short_task(name: str) -> str:
    """A task of the breakdown as its play's first words and its own name, without the role prefix."""
    if " / " not in name:
        return name
    play, task = name.split(" / ", 1)
    task = task.split(" : ", 1)[-1]
    label = f"{' '.join(play.split()[:3])}: {task}"
    return label if len(label) <= 70 else label[:67] + "..."


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
