#!/usr/bin/env python3
"""Benchmark: throughput through a netreach -L tunnel vs plain `ssh -L` and vs direct TCP, per cipher.

Two containers (client, server) on a network of their own. The server runs a sink on 127.0.0.1:7200 (for the
tunnels) and on its lab address (for direct TCP); the client sends SIZE_MB of zeros with nc and times it.
Each figure is the median of TRIALS runs. Prints the table and writes it to docs/benchmarks.md.
"""
from __future__ import annotations

import os
import statistics
import sys
import time

import plots
from _lab import Lab, save_results, write_section

SIZE_MB = int(os.environ.get("SIZE_MB", "256"))
TRIALS = int(os.environ.get("TRIALS", "3"))
CIPHERS = ["chacha20-poly1305@openssh.com", "aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr"]


def send(lab: Lab, host: str, port: int) -> float:
    """MB/s for SIZE_MB sent from the client to HOST:PORT."""
    start = time.monotonic()
    lab.sh(lab.client, f"head -c {SIZE_MB}M /dev/zero | nc -N -w 30 {host} {port}")
    return SIZE_MB / (time.monotonic() - start)


def median_rate(lab: Lab, host: str, port: int) -> float:
    return statistics.median(send(lab, host, port) for _ in range(TRIALS))


def main() -> int:
    lab = Lab("throughput")
    lab.start()
    try:
        lab.sh(lab.server, "systemd-run --unit sink socat -u TCP-LISTEN:7200,fork,reuseaddr OPEN:/dev/null")
        known = lab.tunnel_to_server("bench", ["17200:127.0.0.1:7200"])
        lab.sh(lab.client, f"echo '{known}' > /etc/bench_known_hosts")
        for _ in range(60):
            if lab.sh(lab.client, "nc -z 127.0.0.1 17200 && echo up || true", check=False).strip():
                break
            time.sleep(1)
        server_ip = lab.sh(lab.server, "hostname -I").split()[0]
        rows = {"direct TCP (no encryption)": median_rate(lab, server_ip, 7200),
                "netreach tunnel (ssh default cipher)": median_rate(lab, "127.0.0.1", 17200)}
        default = lab.sh(lab.client, f"ssh -G {lab.server} | sed -n 's/^ciphers //p'").split(",")[0]
        for port, cipher in enumerate(CIPHERS, start=17300):
            lab.sh(lab.client, f"systemd-run --unit plain-{port} /usr/bin/ssh -N -c {cipher} -i /etc/netreach/tunnels/bench/id_ed25519 "
                               f"-o UserKnownHostsFile=/etc/bench_known_hosts -o BatchMode=yes -o ExitOnForwardFailure=yes "
                               f"-L {port}:127.0.0.1:7200 tunnel@{lab.server}")
            for _ in range(30):
                if lab.sh(lab.client, f"nc -z 127.0.0.1 {port} && echo up || true", check=False).strip():
                    break
                time.sleep(0.5)
            rows[f"plain ssh -L, {cipher}"] = median_rate(lab, "127.0.0.1", port)
    finally:
        if not os.environ.get("KEEP_LAB"):
            lab.stop()
    ranked = sorted((name for name in rows if name.startswith("plain")), key=lambda name: -rows[name])
    rank = next((i + 1 for i, name in enumerate(ranked) if name.endswith(default)), None)
    lines = ["| path | MB/s |", "|---|---|"] + [f"| {name} | {rate:.0f} |" for name, rate in rows.items()]
    print("\n".join(lines))
    print(f"default cipher {default}: rank {rank} of {len(ranked)}")
    save_results("tunnel_throughput", {"size_mb": SIZE_MB, "trials": TRIALS, "mb_per_s": rows, "default_cipher": default,
                                       "default_cipher_rank": rank})
    plots.throughput()
    lines = ["![Throughput per path and cipher](plots/throughput.svg)", ""] + lines
    write_section("Tunnel throughput", f"{SIZE_MB} MB of zeros sent with nc from client to server container, median "
                  f"of {TRIALS} (`bench/tunnel_throughput.py`). The netreach tunnel uses ssh's default cipher "
                  f"({default}), which ranks {rank} of {len(ranked)} among the ciphers measured here.", lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
