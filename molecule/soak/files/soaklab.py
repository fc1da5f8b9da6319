#!/usr/bin/python3
"""The soak scenario's probe tool, run inside lab containers (only ever to 127.0.0.1).

  soaklab.py wait SINCE TIMEOUT TARGET...   seconds from SINCE (epoch) until each TARGET first answered (JSON)
  soaklab.py traffic STATE SECONDS TARGET...  request every TARGET in turn until STATE.stop exists or SECONDS
                                              passed (idle while STATE.pause exists); STATE holds the counts
                                              of good and failed requests (JSON)
  soaklab.py census                          processes, file descriptors and listeners of ssh/sshd (JSON)

A TARGET is PORT/KIND/EXPECT: KIND "banner" reads what the port says, "http" asks for / first, "socks" asks
the SOCKS5 proxy on PORT for soak-target:119 first; the request is good when the answer contains EXPECT.
"""
import json
import os
import socket
import subprocess
import sys
import time


def answers(target, timeout=2.0):
    port, kind, expect = target.split("/", 2)
    try:
        with socket.create_connection(("127.0.0.1", int(port)), timeout=timeout) as sock:
            sock.settimeout(timeout)
            if kind == "http":
                sock.sendall(b"GET / HTTP/1.0\r\nHost: soak\r\n\r\n")
            elif kind == "socks" and not socks_connect(sock, b"soak-target", 119):
                return False
            data = b""
            while expect.encode() not in data and len(data) < 65536:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
            return expect.encode() in data
    except OSError:
        return False


def socks_connect(sock, host, port):
    """SOCKS5 without authentication, CONNECT to HOST by name: whether the proxy opened the connection."""
    sock.sendall(b"\x05\x01\x00")
    if sock.recv(2) != b"\x05\x00":
        return False
    sock.sendall(b"\x05\x01\x00\x03" + bytes([len(host)]) + host + port.to_bytes(2, "big"))
    reply = b""
    while len(reply) < 10:  # the reply with an IPv4 bound address, which is what ssh sends
        chunk = sock.recv(10 - len(reply))
        if not chunk:
            return False
        reply += chunk
    return reply[1] == 0


def wait(since, timeout, targets):
    seconds = {target.split("/")[0]: None for target in targets}
    pending = list(targets)
    while pending and time.time() - since < timeout:
        for target in list(pending):
            if answers(target, timeout=1.0):
                seconds[target.split("/")[0]] = round(time.time() - since, 3)
                pending.remove(target)
        if pending:
            time.sleep(0.1)
    print(json.dumps(seconds))


def traffic(state, limit, targets):
    counts = {target.split("/")[0]: {"ok": 0, "failed": 0} for target in targets}
    start = last_write = time.monotonic()
    while not os.path.exists(state + ".stop") and time.monotonic() - start < limit:
        if os.path.exists(state + ".pause"):
            time.sleep(0.1)
            continue
        for target in targets:
            counts[target.split("/")[0]]["ok" if answers(target) else "failed"] += 1
        if time.monotonic() - last_write > 0.5:
            write(state, counts)
            last_write = time.monotonic()
        time.sleep(0.05)
    write(state, counts)


def write(path, document):
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(document, handle)
    os.replace(path + ".tmp", path)


def census():
    """What a leak would grow: ssh and sshd processes, their open file descriptors, and TCP listeners."""
    processes = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm", encoding="utf-8") as handle:
                comm = handle.read().strip()
            if comm not in ("ssh", "sshd", "sshd-session"):
                continue
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                title = handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
            with open(f"/proc/{pid}/cgroup", encoding="utf-8") as handle:
                cgroup = handle.read().strip().rsplit("/", 1)[-1]
            fds = len(os.listdir(f"/proc/{pid}/fd"))
        except OSError:
            continue  # ended while we looked
        processes[pid] = {"comm": comm, "title": title, "unit": cgroup, "fds": fds}
    listeners = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True, check=True).stdout.split("\n")
    result = {
        "ssh": sum(1 for p in processes.values() if p["comm"] == "ssh"),
        "ssh_fds": sum(p["fds"] for p in processes.values() if p["comm"] == "ssh"),
        "sshd": sum(1 for p in processes.values() if p["comm"] != "ssh"),
        "sshd_fds": sum(p["fds"] for p in processes.values() if p["comm"] != "ssh"),
        "units": {},
        "listeners": sorted({line.split()[3] for line in listeners if line.strip()}),
    }
    for process in processes.values():
        if process["unit"].startswith("netreach-tunnel@"):
            unit = result["units"].setdefault(process["unit"], {"processes": 0, "fds": 0})
            unit["processes"] += 1
            unit["fds"] += process["fds"]
        elif process["unit"] == "ssh.service" and process["title"].startswith("sshd: /usr/sbin/sshd"):
            result["sshd_listener_fds"] = process["fds"]
    print(json.dumps(result, sort_keys=True))


def main():
    command = sys.argv[1]
    if command == "wait":
        wait(float(sys.argv[2]), float(sys.argv[3]), sys.argv[4:])
    elif command == "traffic":
        traffic(sys.argv[2], float(sys.argv[3]), sys.argv[4:])
    elif command == "census":
        census()
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
