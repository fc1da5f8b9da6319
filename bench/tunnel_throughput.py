#!/usr/bin/env python3
"""Benchmark: throughput through a netreach -L tunnel vs plain `ssh -L` and vs direct TCP, per cipher, and what each
part of the tunnel unit's sandbox costs.

Two containers (client, server) on a network of their own. The server runs a sink on 127.0.0.1:7200 (for the
tunnels) and on its lab address (for direct TCP); the client sends SIZE_MB of zeros with nc and times it. Every
path is up at once and the trials go round-robin over the paths (a change of load on the shared machine hits
all of them alike); each figure is the median of TRIALS. Beside the tunnel: copies of its own unit (the same
starter, ssh and ssh_config, another port) with groups of its sandbox directives taken out, and its ssh with its
ssh_config run without the starter and without any sandbox. Prints the table, writes it to docs/benchmarks.md.
"""
from __future__ import annotations

import os
import statistics
import sys
import time

import plots
from _lab import Lab, save_results, write_section

SIZE_MB = int(os.environ.get("SIZE_MB", "256"))
TRIALS = int(os.environ.get("TRIALS", "5"))
CIPHERS = ["chacha20-poly1305@openssh.com", "aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr"]
CONFIG = "/etc/netreach/tunnels/bench/ssh_config"
UNIT = "/etc/systemd/system/netreach-tunnel@bench.service"
TUNNEL = "netreach tunnel (default cipher order)"
BARE_SSH = "the tunnel's ssh and ssh_config alone (no starter, no sandbox)"
# The unit's sandbox directives (_tunnel_render.HARDENING) by what they make systemd do: a seccomp filter, or the
# mount namespace. Each variant is the tunnel's own unit without one group.
SECCOMP = ("SystemCallFilter", "SystemCallArchitectures", "RestrictAddressFamilies", "MemoryDenyWriteExecute",
           "RestrictNamespaces", "RestrictRealtime", "RestrictSUIDSGID", "LockPersonality", "ProtectClock",
           "ProtectHostname", "ProtectKernelModules", "ProtectKernelLogs")
MOUNTS = ("ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices", "ProtectKernelTunables",
          "ProtectControlGroups", "ProtectProc", "ProcSubset")
EVERYTHING = SECCOMP + MOUNTS + ("NoNewPrivileges", "RemoveIPC", "UMask", "CapabilityBoundingSet",
                                 "AmbientCapabilities")
VARIANTS = {
    "syscallfilter": ("netreach unit without SystemCallFilter", ("SystemCallFilter",)),
    "seccomp": ("netreach unit without any seccomp filter (" + ", ".join(SECCOMP) + ")", SECCOMP),
    "mounts": ("netreach unit without its mount namespace (" + ", ".join(MOUNTS) + ")", MOUNTS),
    "nosandbox": ("netreach unit without any sandboxing", EVERYTHING),
}


def send(lab: Lab, host: str, port: int) -> float:
    """MB/s for SIZE_MB sent from the client to HOST:PORT."""
    start = time.monotonic()
    lab.sh(lab.client, f"head -c {SIZE_MB}M /dev/zero | nc -N -w 30 {host} {port}")
    return SIZE_MB / (time.monotonic() - start)


def wait_port(lab: Lab, port: int) -> None:
    for _ in range(60):
        if lab.sh(lab.client, f"nc -z 127.0.0.1 {port} && echo up || true", check=False).strip():
            return
        time.sleep(0.5)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} of the client")


def start_variants(lab: Lab) -> dict[str, tuple[str, int]]:
    """Copies of the tunnel's unit, each without a group of its sandbox directives, on ports of their own."""
    unit = lab.sh(lab.client, f"cat {UNIT}")
    paths = {}
    for port, (key, (title, removed)) in enumerate(VARIANTS.items(), start=17260):
        config = f"/etc/bench_{key}_config"
        lab.sh(lab.client, f"sed 's/LocalForward 17200 /LocalForward {port} /' {CONFIG} > {config}")
        lines = [line for line in unit.splitlines() if line.split("=", 1)[0] not in removed]
        text = "\n".join(lines).replace(f"-F {CONFIG}", f"-F {config}").replace("netreach-tunnel/%i", f"bench-{key}")
        lab.put(lab.client, f"/etc/systemd/system/bench-{key}.service", text + "\n")
        lab.sh(lab.client, f"systemctl daemon-reload && systemctl start bench-{key}")
        wait_port(lab, port)
        paths[title] = ("127.0.0.1", port)
    return paths


def start_paths(lab: Lab) -> dict[str, tuple[str, int]]:
    """Every path measured, up at once: name -> (host, port) the client sends to."""
    lab.sh(lab.server, "systemd-run --unit sink socat -u TCP-LISTEN:7200,fork,reuseaddr OPEN:/dev/null")
    known = lab.tunnel_to_server("bench", ["17200:127.0.0.1:7200"])
    lab.sh(lab.client, f"echo '{known}' > /etc/bench_known_hosts")
    wait_port(lab, 17200)
    # The tunnel's ssh and ssh_config alone (another port), as a transient unit: no starter, no sandbox.
    lab.sh(lab.client, f"sed 's/LocalForward 17200 /LocalForward 17250 /' {CONFIG} > /etc/bench_bare_config; "
                       "systemd-run --unit bare --uid netreach-tunnel /usr/bin/ssh -F /etc/bench_bare_config "
                       "-N netreach-bench")
    wait_port(lab, 17250)
    variants = start_variants(lab)
    paths = {"direct TCP (no encryption)": (lab.sh(lab.server, "hostname -I").split()[0], 7200),
             TUNNEL: ("127.0.0.1", 17200), **variants, BARE_SSH: ("127.0.0.1", 17250)}
    for port, cipher in enumerate(CIPHERS, start=17300):
        lab.sh(lab.client, f"systemd-run --unit plain-{port} /usr/bin/ssh -N -c {cipher} -i /etc/netreach/tunnels/bench/id_ed25519 "
                           f"-o UserKnownHostsFile=/etc/bench_known_hosts -o BatchMode=yes -o ExitOnForwardFailure=yes "
                           f"-L {port}:127.0.0.1:7200 tunnel@{lab.server}")
        wait_port(lab, port)
        paths[f"plain ssh -L, {cipher}"] = ("127.0.0.1", port)
    return paths


def report(rows: dict, tunnel_cipher: str, system_default: str, trials: dict, load: tuple[float, float]) -> None:
    plain = {name: rate for name, rate in rows.items() if name.startswith("plain")}
    fastest = max(plain, key=plain.get)
    ratio = rows[TUNNEL] / plain[fastest]
    same_cipher = next((name for name in plain if name.endswith(tunnel_cipher)), None)
    nosandbox = VARIANTS["nosandbox"][0]
    lines = ["| path | MB/s | vs the tunnel |", "|---|---|---|"] + [
        f"| {name} | {rate:.0f} | {rate / rows[TUNNEL]:.2f}x |" for name, rate in rows.items()]
    print("\n".join(lines))
    print(f"tunnel cipher {tunnel_cipher}; fastest plain: {fastest}; tunnel/fastest {ratio:.2f}x")
    save_results("tunnel_throughput", {"size_mb": SIZE_MB, "trials": TRIALS, "mb_per_s": rows, "trials_mb_per_s": trials,
                                       "tunnel_cipher": tunnel_cipher, "ssh_default_cipher": system_default,
                                       "fastest_plain": fastest, "tunnel_vs_fastest": round(ratio, 3),
                                       "sandboxed_vs_unsandboxed": round(rows[TUNNEL] / rows[nosandbox], 3),
                                       "load_average_1min": load})
    plots.throughput()
    notes = [
        "",
        f"- Tunnel vs plain `ssh -L` with the host's fastest cipher here ({fastest.split(', ')[1]}): "
        f"{ratio:.2f}x (target ≥ 0.95x: {'met' if ratio >= 0.95 else 'NOT met'})"
        + (f"; vs plain `ssh -L` with the tunnel's own cipher: {rows[TUNNEL] / plain[same_cipher]:.2f}x." if same_cipher
           else "."),
        "- What the sandbox costs, directive group by group (each a copy of the tunnel's own unit, same starter, ssh "
        "and ssh_config, without that group): " + "; ".join(
            f"{title}: {rows[title]:.0f} MB/s ({rows[title] / rows[TUNNEL]:.2f}x the tunnel)"
            for title, _removed in VARIANTS.values()) + ".",
        f"- What the starter costs: nothing once the tunnel is up (it hands the connected socket to ssh, its child, "
        f"and sleeps in waitpid; no byte passes through it): "
        f"the unit without any sandboxing carries {rows[nosandbox]:.0f} MB/s, the tunnel's ssh and ssh_config alone "
        f"{rows[BARE_SSH]:.0f} MB/s. The proxy hop helper only carries a tunnel that declares a proxy (this one does not).",
        f"- ssh's own default order starts with {system_default}; the tunnel's ssh_config starts with {tunnel_cipher} "
        "because the client's CPU has AES instructions (`aes` in /proc/cpuinfo); `ssh_options: {Ciphers: ...}` "
        "overrides it.",
        "- The trials go round-robin over every path (all up at once), so a change of load on the shared 2-core "
        "machine hits all paths alike; the raw figures of every trial are in `bench/results/tunnel_throughput.json`.",
        f"- Load average (1 min) of the machine when the trials began and ended: {load[0]:.1f}, {load[1]:.1f} "
        "(2 cores; anything above the lab's own few containers is other work sharing them).",
    ]
    write_section("Tunnel throughput", f"{SIZE_MB} MB of zeros sent with nc from client to server container, median "
                  f"of {TRIALS} (`bench/tunnel_throughput.py`). The netreach tunnel uses its default cipher order, "
                  f"which negotiates {tunnel_cipher} here.",
                  ["![Throughput per path and cipher](plots/throughput.svg)", ""] + lines + notes)


def main() -> int:
    lab = Lab("throughput")
    lab.start()
    try:
        paths = start_paths(lab)
        tunnel_cipher = lab.sh(lab.client, f"ssh -G -F {CONFIG} netreach-bench | sed -n 's/^ciphers //p'").split(",")[0]
        system_default = lab.sh(lab.client, f"ssh -G {lab.server} | sed -n 's/^ciphers //p'").split(",")[0]
        trials: dict[str, list[float]] = {name: [] for name in paths}
        load_before = os.getloadavg()[0]
        for _ in range(TRIALS):
            for name, (host, port) in paths.items():
                trials[name].append(round(send(lab, host, port), 1))
    finally:
        if not os.environ.get("KEEP_LAB"):
            lab.stop()
    report({name: statistics.median(rates) for name, rates in trials.items()}, tunnel_cipher, system_default, trials,
           (round(load_before, 1), round(os.getloadavg()[0], 1)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
