#!/usr/bin/env python3
"""Benchmark: how fast a tunnel carries traffic again after faults — netreach.tunnels.ssh_tunnel (its defaults, and
set to ride out cuts as autossh does) vs two baselines configured as users do today: autossh with its defaults
under systemd, and a plain ssh unit with RestartSec=60.

Lab: two containers from the lab image on a docker network of their own (client, server). The server runs a
banner service on 127.0.0.1:7119; each tunnel forwards its own client port to it. Faults, each repeated TRIALS
times, every tunnel measured in parallel from the same fault, by a prober inside the client (bench/_probe.py, a
connection every 20 ms):
  kill       every sshd session of the tunnel account on the server is killed
  sshd       `systemctl restart ssh` on the server: established tunnels should not notice (and must not restart)
  cut        client<->server traffic is dropped for CUT seconds (nft), then healed: time measured from the heal
  blackhole  the tunnels' established connections are dropped and stay dropped (a NAT gateway that forgot them):
             until each tunnel's ssh exits (dead-link detection) and until it carries traffic over a new connection
For the netreach tunnel the unit's journal says where the time of a kill went (ssh gone, as its starter saw it; the
starter's connection and new ssh) and, after a cut, when the healed path answered the starter.
Prints every figure and writes bench/results/tunnel_recovery.json and a section of docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import statistics
import subprocess
import sys
import time

import plots
from _lab import Lab, save_results, write_section

NETREACH, RIDE, AUTOSSH, PLAIN = "netreach", "netreach-keepalive-10x3", "autossh-default", "systemd-restartsec-60"
PORTS = {NETREACH: 17001, RIDE: 17004, AUTOSSH: 17002, PLAIN: 17003}
UNITS = {NETREACH: "netreach-tunnel@bench", RIDE: "netreach-tunnel@ride", AUTOSSH: "bench-autossh",
         PLAIN: "bench-plain"}
BANNER = "200 bench banner"
PROBE = "/usr/local/bin/bench-probe"
# Before each trial, every tunnel carries traffic and then this long passes: after a kill, every session outlives
# the netreach backoff's gate (connect_timeout + 5 = 15 s) and autossh's gate time (30 s), so each kill ends a
# healthy session; the other faults restart at most the netreach tunnels, and long before the next trial's fault.
SETTLE = {"kill": 31.0, "sshd": 3.0, "cut": 10.0, "blackhole": 3.0}
TITLES = {"kill": "session killed on the server", "sshd": "sshd restarted on the server",
          "cut": "network cut, after the heal", "blackhole": "connections black-holed: traffic again",
          "detection": "connections black-holed: dead link detected (ssh exits)"}

LAB = Lab("recovery")
CLIENT, SERVER = LAB.client, LAB.server


def sh(container: str, command: str, check: bool = True) -> str:
    return LAB.sh(container, command, check)


def configure() -> None:
    sh(SERVER, f"systemd-run --unit bench-banner socat TCP-LISTEN:7119,bind=127.0.0.1,fork,reuseaddr 'SYSTEM:echo {BANNER}'")
    known = LAB.tunnel_to_server("bench", [f"{PORTS[NETREACH]}:127.0.0.1:7119"])
    # The same tunnel set to ride out cuts of 30 s as autossh's keepalives do: interval x (count + 1) = 40 s.
    LAB.tunnel_to_server("ride", [f"{PORTS[RIDE]}:127.0.0.1:7119"], keepalive_interval=10, keepalive_count_max=3)
    # The baselines use the same key and pinned host key, so only supervision and keepalives differ.
    sh(CLIENT, f"echo '{known}' > /etc/bench_known_hosts")
    common = (f"-N -i /etc/netreach/tunnels/bench/id_ed25519 -o UserKnownHostsFile=/etc/bench_known_hosts "
              f"-o StrictHostKeyChecking=yes -o BatchMode=yes -o ExitOnForwardFailure=yes")
    units = {
        # autossh as commonly set up: its own defaults (AUTOSSH_POLL 600, AUTOSSH_GATETIME 30), no monitor port.
        "bench-autossh": f"/usr/bin/autossh -M 0 {common} -o ServerAliveInterval=30 -o ServerAliveCountMax=3 "
                         f"-L {PORTS[AUTOSSH]}:127.0.0.1:7119 tunnel@{SERVER}",
        # the plain unit of many roles: ssh -N, Restart=always, RestartSec=60.
        "bench-plain": f"/usr/bin/ssh {common} -L {PORTS[PLAIN]}:127.0.0.1:7119 tunnel@{SERVER}",
    }
    for unit, command in units.items():
        restart = "RestartSec=60" if unit == "bench-plain" else "RestartSec=1"
        sh(CLIENT, f"printf '[Service]\\nUser=netreach-tunnel\\nExecStart={command}\\nRestart=always\\n{restart}\\n' "
                   f"> /etc/systemd/system/{unit}.service && systemctl daemon-reload && systemctl start {unit}")
    LAB.put(CLIENT, PROBE, (pathlib.Path(__file__).parent / "_probe.py").read_text())
    down = [name for name, seconds in probe(time.time(), 60, list(PORTS)).items() if seconds["traffic"] is None]
    if down:
        raise RuntimeError(f"{down} never came up")


def probe(since: float, limit: float, names: list[str], pids: dict | None = None, required: int | None = None) -> dict:
    """Seconds from SINCE until each of NAMES carries traffic (and, with PIDS, until its old ssh is gone)."""
    specs = [f"{PORTS[name]}/{BANNER}" + (f"/{pids[name]}" if pids else "") for name in names]
    args = ["docker", "exec", CLIENT, "python3", PROBE, f"{since:.3f}", str(limit), str(required or len(names)), *specs]
    done = subprocess.run(args, capture_output=True, text=True, check=True, timeout=limit + 60)
    found = json.loads(done.stdout)
    return {name: found[str(PORTS[name])] for name in names}


def main_pids() -> dict:
    """The ssh process of each tunnel: the netreach unit's main process is its starter, which runs ssh as its child,
    autossh's is its ssh child, the plain unit's is ssh."""
    pids = {}
    for name, unit in UNITS.items():
        main = sh(CLIENT, f"systemctl show --property=MainPID --value {unit}").strip()
        child = sh(CLIENT, f"pgrep -P {main} -x ssh || true", check=False).split()
        pids[name] = child[0] if child else main
    return pids


def journal(unit: str, since: float) -> list[tuple[float, str]]:
    """(epoch seconds, message) of UNIT's journal from SINCE, systemd's own lines and the unit's output alike."""
    out = sh(CLIENT, f"journalctl --no-pager -o json -u {unit} --since=@{since - 1:.0f}", check=False)
    lines = []
    for text in out.splitlines():
        try:
            entry = json.loads(text)
        except ValueError:
            continue
        stamp = int(entry.get("__REALTIME_TIMESTAMP", 0)) / 1e6
        if stamp >= since and isinstance(entry.get("MESSAGE"), str):
            lines.append((stamp, entry["MESSAGE"]))
    return lines


def handed_over(name: str) -> float | None:
    """Epoch seconds the netreach tunnel NAME's starter last handed over to ssh (its state file)."""
    text = sh(CLIENT, f"cat /run/netreach-tunnel/{name}/state 2>/dev/null || true", check=False)
    state = dict(word.split("=", 1) for word in text.split() if "=" in word)
    try:
        return float(state["since"])
    except (ValueError, KeyError):
        return None


def kill_breakdown(since: float, traffic: float | None) -> dict:
    """Where a kill's recovery went for the netreach tunnel, from its journal: seconds from the kill to each step."""
    steps = {}
    for stamp, message in journal(UNITS[NETREACH], since):
        # The starter runs ssh again itself (its "next attempt" line); systemd's lines would say it restarted the unit.
        for step, pattern in (("ssh_exited", r"^tunnel-start: next attempt"), ("unit_restarted", r"^Started ")):
            if step not in steps and re.search(pattern, message):
                steps[step] = round(stamp - since, 3)
    over = handed_over("bench")
    if over is not None and over >= since:
        steps["handed_over_to_ssh"] = round(over - since, 3)
    if traffic is not None:
        steps["traffic"] = traffic
    return steps


def nft(action: str, ports: list[str] | None = None) -> None:
    """Drop client<->server traffic (every packet, or with PORTS only the connections from those client ports)."""
    if action == "delete":
        sh(CLIENT, "nft delete table inet bench", check=False)
        return
    server_ip = sh(SERVER, "hostname -I").split()[0]
    match_out = f"tcp sport {{ {', '.join(ports)} }} " if ports else ""
    match_in = f"tcp dport {{ {', '.join(ports)} }} " if ports else ""
    sh(CLIENT, "nft add table inet bench; nft add chain inet bench out '{ type filter hook output priority 0; }'; "
               "nft add chain inet bench in '{ type filter hook input priority 0; }'; "
               f"nft add rule inet bench out ip daddr {server_ip} {match_out}drop; "
               f"nft add rule inet bench in ip saddr {server_ip} {match_in}drop")


def settle(fault: str) -> None:
    down = [name for name, got in probe(time.time(), 180, list(PORTS)).items() if got["traffic"] is None]
    if down:
        raise RuntimeError(f"before a {fault} trial: {down} carry no traffic within 180 s")
    time.sleep(SETTLE[fault])


def fault_kill(args) -> dict:
    since = time.time()
    sh(SERVER, "pkill -KILL -u tunnel -f '^sshd' || true", check=False)
    got = probe(since, args.limit, list(PORTS))
    return {"seconds": {name: value["traffic"] for name, value in got.items()},
            "breakdown": kill_breakdown(since, got[NETREACH]["traffic"])}


def fault_sshd(args) -> dict:
    before = main_pids()
    since = time.time()
    sh(SERVER, "systemctl restart ssh")
    got = probe(since, args.limit, list(PORTS))
    after = main_pids()
    return {"seconds": {name: value["traffic"] for name, value in got.items()},
            "restarted": {name: before[name] != after[name] for name in PORTS}}


def fault_cut(args) -> dict:
    nft("add")
    time.sleep(args.cut)
    healed = time.time()
    nft("delete")
    got = probe(healed, args.limit, list(PORTS))
    answered = [stamp - healed for stamp, message in journal(UNITS[NETREACH], healed) if "answered after" in message]
    over = handed_over("bench")
    return {"seconds": {name: value["traffic"] for name, value in got.items()},
            "breakdown": {"path_answered_the_starter": round(answered[0], 3) if answered else None,
                          "handed_over_to_ssh": round(over - healed, 3) if over and over >= healed else None,
                          "traffic": got[NETREACH]["traffic"]}}


def fault_blackhole(args) -> dict:
    pids = main_pids()
    server_ip = sh(SERVER, "hostname -I").split()[0]
    ports = sorted({line.split()[2].rpartition(":")[2] for line in sh(
        CLIENT, f"ss -Htn state established '( dport = :22 and dst {server_ip} )'").splitlines() if line.strip()})
    nft("add", ports)
    since = time.time()
    try:
        # The plain unit never notices (no keepalive): the trial ends when every other tunnel is back.
        names = [NETREACH, RIDE, AUTOSSH, PLAIN]
        got = probe(since, args.limit, names, pids, required=3)
    finally:
        nft("delete")
    waited = round(time.time() - since, 1)
    return {"seconds": {name: value["traffic"] for name, value in got.items()},
            "detection": {name: value["gone"] for name, value in got.items()}, "waited": waited}


FAULTS = {"kill": fault_kill, "sshd": fault_sshd, "cut": fault_cut, "blackhole": fault_blackhole}


def summary(values: list, waited: list | None = None) -> str:
    got = [v for v in values if v is not None]
    if len(got) == len(values):
        median = statistics.median(got)
        return f"{median:.2f} s" if median < 10 else f"{median:.1f} s"
    bound = min(waited) if waited else None
    return f"> {bound:.0f} s in {len(values) - len(got)} trial(s)" if bound else f"none in {len(values) - len(got)} trial(s)"


def median_of(values: list) -> float | None:
    return statistics.median(values) if values and all(v is not None for v in values) else None


def verdicts(results: dict, cut: float) -> list[str]:
    """The goals of the tunnels issue, each met or NOT met by this run's medians."""
    lines = []

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    if "kill" in results:
        ours, theirs = median_of(results["kill"][NETREACH]), median_of(results["kill"][AUTOSSH])
        if ours is not None and theirs is not None:
            lines.append(f"- Killed session: traffic again after {ours:.2f} s, autossh {theirs:.2f} s (goal <= 0.5 s and "
                         f"no later than autossh: {verdict(ours <= 0.5 and ours <= theirs)}).")
    if "blackhole" in results:
        ours = median_of(results["blackhole"][NETREACH])
        found = median_of(results["detection"][NETREACH])
        if ours is not None:
            lines.append(f"- Black-holed connections: dead link detected after {found:.1f} s, traffic again over a new "
                         f"connection after {ours:.1f} s (goal <= 10 s: {verdict(ours <= 10)}).")
    if "cut" in results:
        ours = median_of(results["cut"][NETREACH])
        if ours is not None:
            lines.append(f"- {cut:.0f} s cut: traffic {ours:.2f} s after the heal (goal <= 1 s: {verdict(ours <= 1)}).")
    if "sshd" in results:
        ours = median_of(results["sshd"][NETREACH])
        restarted = sum(results["sshd_restarted"][NETREACH])
        if ours is not None:
            lines.append(f"- sshd restarted: the tunnel carried traffic {ours:.2f} s after the restart began and its ssh "
                         f"was restarted in {restarted} of {len(results['sshd'][NETREACH])} trials (goal: costs "
                         f"nothing: {verdict(restarted == 0)}).")
    return lines


def breakdown_lines(results: dict) -> list[str]:
    lines = []
    kills = results.get("kill_breakdown") or []
    if kills:
        steps = ["ssh_exited", "handed_over_to_ssh", "traffic"]
        medians = {step: median_of([trial.get(step) for trial in kills]) for step in steps}
        named = {"ssh_exited": "the killed session's ssh exited and its starter saw it",
                 "handed_over_to_ssh": "the starter connected and ran ssh again (TCP connect, fork)",
                 "traffic": "traffic through the forward (ssh's exec, key exchange, authentication, forwards)"}
        parts = [f"{named[step]} at {value:.3f} s" for step, value in medians.items() if value is not None]
        restarted = sum(1 for trial in kills if "unit_restarted" in trial)
        lines.append("- Where a killed session's time goes (netreach tunnel, medians, seconds after the kill, from the "
                     "unit's journal and the starter's state): " + "; ".join(parts) + f"; systemd restarted the unit "
                     f"in {restarted} of {len(kills)} trials (the starter supervises ssh: a kill costs a fork, not a "
                     "unit restart).")
    cuts = results.get("cut_breakdown") or []
    if cuts:
        answered = median_of([trial.get("path_answered_the_starter") for trial in cuts])
        over = median_of([trial.get("handed_over_to_ssh") for trial in cuts])
        traffic = median_of([trial.get("traffic") for trial in cuts])
        if answered is not None and traffic is not None:
            lines.append(f"- Where the time after a heal goes (medians): the healed path answered one of the starter's "
                         f"connection attempts (one every 0.25 s) after {answered:.3f} s, the starter ran ssh at "
                         f"{over if over is not None else float('nan'):.3f} s, traffic flowed at {traffic:.3f} s "
                         "(ssh's key exchange and authentication; the prober connects every 20 ms).")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=int(os.environ.get("TRIALS", "5")), help="trials per fault (5)")
    parser.add_argument("--faults", default=",".join(FAULTS), help=f"comma-separated, of {','.join(FAULTS)} (all)")
    parser.add_argument("--cut", type=float, default=30.0, help="seconds the cut lasts (30)")
    parser.add_argument("--limit", type=float, default=150.0, help="seconds a trial waits at most (150)")
    parser.add_argument("--keep-lab", action="store_true", default=bool(os.environ.get("KEEP_LAB")),
                        help="leave the containers up afterwards")
    parser.add_argument("--no-docs", action="store_true", help="print the figures only, leave docs/benchmarks.md")
    args = parser.parse_args()
    faults = [fault for fault in args.faults.split(",") if fault]
    unknown = set(faults) - set(FAULTS)
    if unknown:
        parser.error(f"unknown faults {sorted(unknown)}")
    results: dict = {}
    load = [round(os.getloadavg()[0], 1)]
    LAB.start()
    try:
        configure()
        for fault in faults:
            results[fault] = {name: [] for name in PORTS}
            for trial in range(args.trials):
                settle(fault)
                got = FAULTS[fault](args)
                for name, seconds in got["seconds"].items():
                    results[fault][name].append(None if seconds is None else round(seconds, 3))
                for key in ("detection", "restarted"):
                    if key in got:
                        store = results.setdefault("detection" if key == "detection" else f"{fault}_restarted",
                                                   {name: [] for name in PORTS})
                        for name, value in got[key].items():
                            store[name].append(value)
                if "breakdown" in got:
                    results.setdefault(f"{fault}_breakdown", []).append(got["breakdown"])
                if "waited" in got:
                    results.setdefault("blackhole_waited", []).append(got["waited"])
                print(f"{fault} trial {trial + 1}: " + ", ".join(
                    f"{name} {'-' if s is None else f'{s:.2f} s'}" for name, s in got["seconds"].items())
                    + (f"; detection {got['detection']}" if "detection" in got else "")
                    + (f"; restarted {got['restarted']}" if "restarted" in got else "")
                    + (f"; {got['breakdown']}" if "breakdown" in got else ""), flush=True)
            load.append(round(os.getloadavg()[0], 1))
    finally:
        if not args.keep_lab:
            LAB.stop()
    save_results("tunnel_recovery", {"trials": args.trials, "cut_seconds": args.cut, "results": results,
                                     "load_average_1min": load})
    plots.recovery()
    rows = [fault for fault in ("kill", "sshd", "cut", "blackhole", "detection") if fault in results]
    lines = ["| fault | " + " | ".join(PORTS) + " |", "|---|" + "---|" * len(PORTS)]
    for fault in rows:
        title = TITLES[fault].replace("network cut", f"{args.cut:.0f} s network cut")
        waited = results.get("blackhole_waited") if fault in ("blackhole", "detection") else None
        lines.append(f"| {title} | " + " | ".join(summary(results[fault][name], waited) for name in PORTS) + " |")
    notes = [""] + verdicts(results, args.cut) + breakdown_lines(results) + [
        f"- Riding out cuts as autossh does: `{RIDE}` is the same netreach tunnel with keepalive_interval 10 and "
        "keepalive_count_max 3, so its ssh gives a silent path about 40 s before it gives up: it rides out the "
        "cut (traffic the moment the path heals), and it needs that long again to notice connections that never "
        "come back (the black-hole rows). The default (2 s x 3, about 8 s) gives up during a 30 s cut and then "
        "reconnects through the starter, which tries the path every 0.25 s.",
        "- The plain unit has no keepalive: it never notices black-holed connections; its trials end when the "
        "other tunnels are back (the bound shown).",
        f"- Load average (1 min) of the machine at the start and after each fault: {', '.join(map(str, load))} "
        "(2 cores; anything above the lab's own containers is other work sharing them).",
    ]
    print("\n".join(lines + notes))
    if not args.no_docs:
        write_section("Tunnel recovery", f"Median of {args.trials} trials (`bench/tunnel_recovery.py`, raw figures in "
                      "`bench/results/tunnel_recovery.json`); seconds until the banner is read through the tunnel "
                      "again (a prober in the client container tries every 20 ms), from the fault or, for the cut, "
                      "from the heal.",
                      ["![Recovery per fault, netreach vs the baselines (log scale)](plots/recovery.svg)",
                       "![Dead-link detection, netreach vs the baselines](plots/dead-link.svg)", ""] + lines + notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
