"""Runs inside a benchmark's client container (copied there by the benchmark): seconds until each forward carries
traffic again, and until each given process is gone, measured where the tunnels run, every 20 ms.

usage: python3 _probe.py SINCE LIMIT REQUIRED SPEC...
  SINCE     epoch seconds the times count from (the fault, or the heal)
  LIMIT     seconds to give up after
  REQUIRED  how many of the SPECs (the first ones) must finish; the rest are waited for only as long as those
  SPEC      PORT/BANNER[/PID]: read BANNER from 127.0.0.1:PORT; with PID, also when /proc/PID went away, and the
            banner counts only after that (a new session, not the old one answering)
Prints one JSON object: PORT -> {"traffic": seconds or null, "gone": seconds or null}.
"""
from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time

INTERVAL = 0.02


def banner(port: int, expect: str) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.settimeout(1)
            data = b""
            while expect.encode() not in data:
                chunk = conn.recv(256)
                if not chunk:
                    break
                data += chunk
            return expect.encode() in data
    except OSError:
        return False


def watch(since: float, deadline: float, port: int, expect: str, pid: str | None, out: dict, stop: threading.Event) -> None:
    out["traffic"], out["gone"] = None, None
    while time.time() < deadline and not stop.is_set():
        if pid and out["gone"] is None:
            if os.path.exists(f"/proc/{pid}"):
                time.sleep(INTERVAL)
                continue
            out["gone"] = round(time.time() - since, 3)
        if banner(port, expect):
            out["traffic"] = round(time.time() - since, 3)
            return
        time.sleep(INTERVAL)


def main(argv: list[str]) -> int:
    since, limit, required = float(argv[0]), float(argv[1]), int(argv[2])
    deadline = since + limit
    results: dict[str, dict] = {}
    threads, stop = [], threading.Event()
    for spec in argv[3:]:
        port, expect, *pid = spec.split("/", 2)
        results[port] = {}
        thread = threading.Thread(target=watch, args=(since, deadline, int(port), expect, pid[0] if pid else None,
                                                      results[port], stop), daemon=True)
        thread.start()
        threads.append(thread)
    for thread in threads[:required]:
        thread.join()
    stop.set()
    for thread in threads[required:]:
        thread.join(5)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
