from __future__ import annotations

import socket

from ansible_collections.netreach.tunnels.plugins.module_utils import _tunnel_info as info
from ansible_collections.netreach.tunnels.plugins.module_utils._engine import Plan
from fakehost import FakeModule


def test_read_forwards_takes_server_jumps_and_forwards_from_the_tunnels_ssh_config(tmp_path):
    (tmp_path / "etc/netreach/tunnels/news").mkdir(parents=True)
    (tmp_path / "etc/netreach/tunnels/news/ssh_config").write_text(
        "Host netreach-news-hop0\n    HostName bastion\n\nHost netreach-news\n    HostName newshost\n"
        "    LocalForward 12345 localhost:119\n    DynamicForward 127.0.0.1:3128\n    RemoteForward 2222 localhost:22\n")
    server, jumps, forwards = info.read_forwards(Plan(FakeModule(tmp_path)), "news")
    assert (server, jumps) == ("newshost", ["bastion"])
    assert [f["kind"] for f in forwards] == ["local", "dynamic", "remote"]
    assert forwards[0] == {"kind": "local", "listen": "12345", "target": "localhost:119"}


def test_listen_endpoints_and_listening():
    assert info.listen_endpoint("12345") == ("127.0.0.1", 12345)
    assert info.listen_endpoint("[::1]:80") == ("::1", 80)
    assert info.listen_endpoint("0.0.0.0:80") == ("127.0.0.1", 80)
    sockets = {("0.0.0.0", 80), ("127.0.0.1", 12345)}
    assert info.is_listening("12345", sockets) and info.is_listening("10.0.0.1:80", sockets)
    assert not info.is_listening("12346", sockets)


def test_probe_tells_a_socks_server_from_a_plain_listener():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    assert info.probe("local", f"127.0.0.1:{port}", 2) == (True, "connected")
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead_port = closed.getsockname()[1]
    closed.close()
    ok, detail = info.probe("local", f"127.0.0.1:{dead_port}", 2)
    assert not ok and detail
    server.close()


def test_this_hosts_listening_sockets_are_read_from_proc():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    try:
        assert ("127.0.0.1", server.getsockname()[1]) in info.listening_sockets(Plan(FakeModule("/")))
    finally:
        server.close()


def test_timestamps():
    assert info.parse_unix_timestamp("@1700000000") == 1700000000.0 and info.parse_unix_timestamp("") is None


def test_a_start_counts_as_a_session_after_a_connection_attempt():
    assert info.settle_seconds("Host netreach-x\n    ConnectTimeout 2\n") == 7
    assert info.settle_seconds(None) == 15
