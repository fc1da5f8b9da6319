"""The proxy hop (the first hop's ProxyCommand) against a scripted proxy on a socket pair."""
from __future__ import annotations

import base64
import socket
import threading

import pytest

from ansible_collections.netreach.tunnels.plugins.module_utils import _tunnel_proxy_hop as hop


def scripted_proxy(replies: list[bytes]):
    """A socket pair: the hop's end, and what the proxy end received, answering each read with the next reply."""
    ours, theirs = socket.socketpair()
    received = []

    def serve():
        for reply in replies:
            received.append(theirs.recv(4096))
            theirs.sendall(reply)
        theirs.close()
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return ours, received, thread


def test_http_connect_sends_basic_auth_and_accepts_200():
    sock, received, thread = scripted_proxy([b"HTTP/1.1 200 Connection established\r\n\r\n"])
    hop.http_connect(sock, "::1", 22, "corp\\alice", "s3cret")
    thread.join(2)
    request = received[0].decode()
    assert request.startswith("CONNECT [::1]:22 HTTP/1.1\r\n")
    token = base64.b64encode("corp\\alice:s3cret".encode()).decode()
    assert f"Proxy-Authorization: Basic {token}" in request


def test_http_connect_refused_exits_naming_the_status():
    sock, _received, _thread = scripted_proxy([b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n"])
    with pytest.raises(SystemExit, match="407"):
        hop.http_connect(sock, "bastion", 22, None, None)


def test_socks5_with_credentials():
    sock, received, thread = scripted_proxy([b"\x05\x02", b"\x01\x00", b"\x05\x00\x00\x01\x7f\x00\x00\x01\x00\x16"])
    hop.socks5_connect(sock, "bastion", 22, "alice", "pw")
    thread.join(2)
    assert received[1] == b"\x01\x05alice\x02pw"
    assert received[2] == b"\x05\x01\x00\x03\x07bastion\x00\x16"


def test_socks5_rejected_credentials_exit():
    sock, _received, _thread = scripted_proxy([b"\x05\x02", b"\x01\x01"])
    with pytest.raises(SystemExit, match="rejected the credentials"):
        hop.socks5_connect(sock, "bastion", 22, "alice", "bad")
