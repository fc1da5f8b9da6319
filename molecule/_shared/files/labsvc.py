"""Lab services of the gateway scenario: each answer names this host and the source address it saw.

TCP 80 and 81: a one-line HTTP page; UDP 5001: an echo. Dual stack (IPv4 and IPv6 on one socket).
usage: labsvc.py HOSTNAME
"""
import socket
import sys
import threading

NAME = sys.argv[1]


def peer(address):
    host = address[0]
    return host[7:] if host.startswith("::ffff:") else host


def listener(kind):
    sock = socket.socket(socket.AF_INET6, kind)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    return sock


def serve_tcp(port):
    sock = listener(socket.SOCK_STREAM)
    sock.bind(("::", port))
    sock.listen(64)
    while True:
        conn, address = sock.accept()
        with conn:
            conn.settimeout(2)
            try:
                conn.recv(4096)
            except OSError:
                pass
            body = f"netreach {NAME} page on port {port}; you are {peer(address)}\n".encode()
            conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)


def serve_udp(port):
    sock = listener(socket.SOCK_DGRAM)
    sock.bind(("::", port))
    while True:
        _, address = sock.recvfrom(4096)
        sock.sendto(f"netreach {NAME} udp on port {port}; you are {peer(address)}\n".encode(), address)


threads = [threading.Thread(target=serve_tcp, args=(80,)), threading.Thread(target=serve_tcp, args=(81,)),
           threading.Thread(target=serve_udp, args=(5001,))]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
