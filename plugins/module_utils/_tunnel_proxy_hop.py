# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: the proxy hop, a program of its own. Not a public API.
# ssh_tunnel installs this very file as /usr/local/lib/netreach/proxy-connect; a tunnel's ssh_config runs it as
# the first hop's ProxyCommand. The password is read from a 0600 file so it never appears in a command line, a
# unit or the process list.
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
        user, _sep, password = handle.read().rstrip("\n").partition(":")
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
            raise SystemExit("proxy-connect: the proxy closed the connection")
        reply += chunk
    status = reply.split(b"\r\n", 1)[0].decode(errors="replace")
    if len(status.split()) < 2 or status.split()[1] != "200":
        raise SystemExit(f"proxy-connect: the proxy refused CONNECT {target}: {status}")


def socks5_connect(sock, host, port, user, password):
    methods = b"\x00\x02" if user else b"\x00"
    sock.sendall(b"\x05" + bytes([len(methods)]) + methods)
    version, method = sock.recv(2)
    if method == 0x02 and user:
        sock.sendall(b"\x01" + bytes([len(user)]) + user.encode() + bytes([len(password)]) + password.encode())
        if sock.recv(2)[1:] != b"\x00":
            raise SystemExit("proxy-connect: the SOCKS5 proxy rejected the credentials")
    elif method != 0x00:
        raise SystemExit("proxy-connect: the SOCKS5 proxy offers no usable authentication method")
    name = host.encode()
    sock.sendall(b"\x05\x01\x00\x03" + bytes([len(name)]) + name + struct.pack(">H", port))
    reply = sock.recv(4)
    if len(reply) < 4 or reply[1] != 0:
        raise SystemExit(f"proxy-connect: the SOCKS5 proxy refused {host}:{port}")
    skip = {1: 4, 4: 16}.get(reply[3])
    skip = skip if skip is not None else sock.recv(1)[0]
    sock.recv(skip + 2)


def relay(sock):
    selector = selectors.DefaultSelector()
    selector.register(sys.stdin.fileno(), selectors.EVENT_READ)
    selector.register(sock, selectors.EVENT_READ)
    while True:
        for key, _events in selector.select():
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
    proxy_host, _sep, proxy_port = args.proxy.rpartition(":")
    user, password = read_auth(args.auth_file)
    try:
        sock = socket.create_connection((proxy_host.strip("[]"), int(proxy_port)), timeout=15)
    except OSError as exc:
        # One line tunnel_info can read (_tunnel_causes), not a traceback.
        raise SystemExit(f"proxy-connect: cannot reach the proxy {args.proxy}: {exc.strerror or exc}") from None
    (http_connect if args.type == "http" else socks5_connect)(sock, args.host, args.port, user, password)
    sock.settimeout(None)
    relay(sock)


if __name__ == "__main__":
    main()
