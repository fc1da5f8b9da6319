# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: the small programs the tunnel units run on the target. Not a
# public API. ssh_tunnel installs them under /usr/local/lib/netreach/ (the reaper of tunnel servers is a
# Python file of its own: _tunnel_reaper.py).
"""Helper programs installed on tunnel clients: the proxy hop and the restart backoff."""

from __future__ import annotations

# ProxyCommand for the first hop: HTTP CONNECT (Basic auth) or SOCKS5 (username/password auth). The password
# is read from a 0600 file so it never appears in a command line, a unit or the process list.
PROXY_CONNECT = r'''#!/usr/bin/python3
"""netreach proxy hop: connect to HOST PORT through an HTTP CONNECT or SOCKS5 proxy, then relay stdio."""
import argparse
import base64
import os
import selectors
import socket
import struct
import sys


def read_auth(path):
    if not path:
        return None, None
    with open(path, encoding="utf-8") as handle:
        user, _, password = handle.read().rstrip("\n").partition(":")
    return user, password


def http_connect(sock, host, port, user, password):
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    request = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"
    if user:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request += f"Proxy-Authorization: Basic {token}\r\n"
    sock.sendall((request + "\r\n").encode())
    reply = b""
    while b"\r\n\r\n" not in reply:
        chunk = sock.recv(1)
        if not chunk:
            sys.exit("proxy-connect: the proxy closed the connection")
        reply += chunk
    status = reply.split(b"\r\n", 1)[0].decode(errors="replace")
    if len(status.split()) < 2 or status.split()[1] != "200":
        sys.exit(f"proxy-connect: the proxy refused CONNECT {target}: {status}")


def socks5_connect(sock, host, port, user, password):
    methods = b"\x00\x02" if user else b"\x00"
    sock.sendall(b"\x05" + bytes([len(methods)]) + methods)
    version, method = sock.recv(2)
    if method == 0x02 and user:
        sock.sendall(b"\x01" + bytes([len(user)]) + user.encode() + bytes([len(password)]) + password.encode())
        if sock.recv(2)[1:] != b"\x00":
            sys.exit("proxy-connect: the SOCKS5 proxy rejected the credentials")
    elif method != 0x00:
        sys.exit("proxy-connect: the SOCKS5 proxy offers no usable authentication method")
    name = host.encode()
    sock.sendall(b"\x05\x01\x00\x03" + bytes([len(name)]) + name + struct.pack(">H", port))
    reply = sock.recv(4)
    if len(reply) < 4 or reply[1] != 0:
        sys.exit(f"proxy-connect: the SOCKS5 proxy refused {host}:{port}")
    skip = {1: 4, 4: 16}.get(reply[3])
    skip = skip if skip is not None else sock.recv(1)[0]
    sock.recv(skip + 2)


def relay(sock):
    selector = selectors.DefaultSelector()
    selector.register(sys.stdin.fileno(), selectors.EVENT_READ)
    selector.register(sock, selectors.EVENT_READ)
    while True:
        for key, _ in selector.select():
            if key.fileobj is sock:
                data = sock.recv(65536)
                if not data:
                    return
                os.write(sys.stdout.fileno(), data)
            else:
                data = os.read(sys.stdin.fileno(), 65536)
                if not data:
                    sock.shutdown(socket.SHUT_WR)
                    selector.unregister(sys.stdin.fileno())
                    continue
                sock.sendall(data)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--type", choices=["http", "socks5"], required=True)
    parser.add_argument("--proxy", required=True)
    parser.add_argument("--auth-file")
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    args = parser.parse_args()
    proxy_host, _, proxy_port = args.proxy.rpartition(":")
    user, password = read_auth(args.auth_file)
    sock = socket.create_connection((proxy_host.strip("[]"), int(proxy_port)), timeout=15)
    (http_connect if args.type == "http" else socks5_connect)(sock, args.host, args.port, user, password)
    sock.settimeout(None)
    relay(sock)


if __name__ == "__main__":
    main()
'''

# Restart backoff: `start DELAY MAX` sleeps before a start that follows quick failures (DELAY, doubling up to MAX,
# plus up to a second of jitter); `stop GATE` counts a failure unless the session lasted GATE seconds (longer than any
# failed connection attempt can take), which resets it.
TUNNEL_BACKOFF = r'''#!/bin/sh
# netreach tunnel backoff; state lives in the unit's RuntimeDirectory (kept across restarts).
set -eu
state=${RUNTIME_DIRECTORY:?needs RuntimeDirectory}
case "$1" in
start)
    delay=$2 max=$3
    failures=$(cat "$state/failures" 2>/dev/null || echo 0)
    wait=0
    if [ "$failures" -gt 1 ]; then
        wait=$delay n=2
        while [ "$n" -lt "$failures" ] && [ "$wait" -lt "$max" ]; do wait=$((wait * 2)); n=$((n + 1)); done
        [ "$wait" -gt "$max" ] && wait=$max
        jitter=$(( $(od -An -N2 -tu2 /dev/urandom) % 1000 ))
        sleep "$wait.$(printf '%03d' "$jitter")"
    fi
    date +%s >"$state/started"
    ;;
stop)
    started=$(cat "$state/started" 2>/dev/null || echo 0)
    failures=$(cat "$state/failures" 2>/dev/null || echo 0)
    if [ $(( $(date +%s) - started )) -ge "$2" ]; then echo 1 >"$state/failures"; else echo $((failures + 1)) >"$state/failures"; fi
    ;;
esac
'''

HELPERS = {"proxy-connect": PROXY_CONNECT, "tunnel-backoff": TUNNEL_BACKOFF}
