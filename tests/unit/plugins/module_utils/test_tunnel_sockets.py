"""Unix-socket (stream-local) forwards: parsed and checked like every other field, rendered into the client's
ssh_config and into exactly the server permissions they need (issue 16)."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.netreach.tunnels.plugins.module_utils._declaration import SOCKET_PATH_MAX
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel import TunnelError, parse_forward, parse_tunnel
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_fleet import client_entries
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_info import socket_end
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_render import parse_ssh_config, render_ssh_config
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_server import (
    SENTINEL,
    account_policies,
    check_listen_conflicts,
    dropin_socket_listens,
    parse_entries,
    render_key_line,
    render_sshd_dropin,
)

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIsock"
BASE = dict(
    name="sock", server="bastion", port=22, user="sockets", run_as="netreach-tunnel",
    known_hosts=["bastion ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA"], jump_hosts=[], proxy=None,
    local_forwards=[], remote_forwards=[], dynamic_forwards=[], engine="ssh",
    keepalive_interval=5, keepalive_count_max=3, connect_timeout=10, restart_delay=1, restart_max_delay=30,
)
SOCKETS = {"name": "sock", "server": "bastion", "user": "sockets",
           "local_forwards": ["12370:/run/netreach-lab/web.sock"],
           "remote_forwards": ["/home/sockets/laptop.sock:localhost:22", "2375:/run/docker.sock"]}
PLAIN = {"name": "third", "server": "bastion", "local_forwards": ["12346:newshost:119"]}


@pytest.mark.parametrize(
    ("kind", "spec", "listen", "target", "ends"),
    [
        ("local", "12370:/run/x.sock", "12370", "/run/x.sock", (None, "/run/x.sock")),
        ("local", "127.0.0.1:12370:/run/x.sock", "127.0.0.1:12370", "/run/x.sock", (None, "/run/x.sock")),
        ("remote", "/run/netreach/x.sock:localhost:8080", "/run/netreach/x.sock", "localhost:8080",
         ("/run/netreach/x.sock", None)),
        ("remote", "2375:/var/run/docker.sock", "2375", "/var/run/docker.sock", (None, "/var/run/docker.sock")),
        ("remote", "/run/a.sock:/run/b.sock", "/run/a.sock", "/run/b.sock", ("/run/a.sock", "/run/b.sock")),
        ("local", {"port": 12370, "target_socket": "/run/x.sock"}, "12370", "/run/x.sock", (None, "/run/x.sock")),
        ("remote", {"listen_socket": "/run/x.sock", "host": "localhost", "host_port": 80}, "/run/x.sock",
         "localhost:80", ("/run/x.sock", None)),
    ],
)
def test_socket_forwards_in_ssh_syntax_and_as_dicts(kind, spec, listen, target, ends):
    forward = parse_forward(kind, spec, "f")
    assert (forward.listen, forward.target) == (listen, target)
    assert (forward.listen_socket, forward.target_socket) == ends


@pytest.mark.parametrize(
    ("key", "spec", "field"),
    [
        ("local_forwards", "12370:/run/../etc/x.sock", "local_forwards[0].target_socket"),
        ("local_forwards", "12370:/run/./x.sock", "local_forwards[0].target_socket"),
        ("local_forwards", "12370:/run//x.sock", "local_forwards[0].target_socket"),
        ("local_forwards", "12370:/run/x/", "local_forwards[0].target_socket"),
        ("local_forwards", "12370:/run/my socket", "local_forwards[0]"),
        ("local_forwards", {"port": 12370, "target_socket": "/run/my socket"}, "local_forwards[0].target_socket"),
        ("local_forwards", {"port": 12370, "target_socket": "/run/x\n.sock"}, "local_forwards[0].target_socket"),
        ("local_forwards", {"port": 12370, "target_socket": "run/x.sock"}, "local_forwards[0].target_socket"),
        ("local_forwards", {"port": 12370, "target_socket": "/run/%h.sock"}, "local_forwards[0].target_socket"),
        ("local_forwards", {"port": 12370, "target_socket": "/run/${HOME}"}, "local_forwards[0].target_socket"),
        ("local_forwards", "12370:/" + "s" * SOCKET_PATH_MAX, "local_forwards[0].target_socket"),
        ("local_forwards", "/run/x.sock:localhost:80", "local_forwards[0].listen_socket"),
        ("local_forwards", {"port": 1, "target_socket": "/run/x.sock", "host": "h"}, "local_forwards[0]"),
        ("remote_forwards", "/run/../x.sock:localhost:22", "remote_forwards[0].listen_socket"),
        ("remote_forwards", {"listen_socket": "/run/a b", "host": "h", "host_port": 1},
         "remote_forwards[0].listen_socket"),
        ("remote_forwards", {"listen_socket": "/run/x.sock", "port": 22, "host": "h", "host_port": 1},
         "remote_forwards[0]"),
        ("remote_forwards", "2375:/tmp/docker.sock", "remote_forwards[0].target_socket"),
        ("remote_forwards", "2375:/home/me/app.sock", "remote_forwards[0].target_socket"),
        ("dynamic_forwards", {"port": 1080, "target_socket": "/run/x.sock"}, "dynamic_forwards[0]"),
    ],
)
def test_bad_socket_paths_name_the_field(key, spec, field):
    with pytest.raises(TunnelError) as error:
        parse_tunnel({**BASE, key: [spec]})
    assert error.value.field == field


def test_a_path_of_107_bytes_fits_sun_path_and_108_does_not():
    fits = "/" + "s" * (SOCKET_PATH_MAX - 1)
    assert parse_forward("local", f"1:{fits}", "f").target_socket == fits
    with pytest.raises(TunnelError, match="at most 107"):
        parse_forward("local", f"1:{fits}x", "f")


def test_two_forwards_on_one_socket_path_are_refused():
    with pytest.raises(TunnelError, match="bound twice"):
        parse_tunnel({**BASE, "remote_forwards": ["/run/x.sock:h:1", "/run/x.sock:h:2"]})
    # A TCP port and a socket do not compete.
    parse_tunnel({**BASE, "remote_forwards": ["/run/x.sock:h:1", "2222:h:2"]})


def test_ssh_config_carries_socket_paths_and_reads_them_back():
    tunnel = parse_tunnel({**BASE, **SOCKETS})
    text = render_ssh_config(tunnel)
    assert "    LocalForward 12370 /run/netreach-lab/web.sock\n" in text
    assert "    RemoteForward /home/sockets/laptop.sock localhost:22\n" in text
    assert "    RemoteForward 2375 /run/docker.sock\n" in text
    forwards = parse_ssh_config("sock", text).forwards
    assert [socket_end(forward) for forward in forwards] == ["target", "listen", "target"]


def test_the_server_pins_socket_targets_and_records_socket_listens():
    (entry,) = client_entries("laptop", [SOCKETS], {}, {"sock": KEY}, "bastion")
    assert entry.socket_opens == ("/run/netreach-lab/web.sock",) and entry.opens == ()
    assert entry.socket_listens == ("/home/sockets/laptop.sock",)
    # The remote forward to a client-side socket is a TCP listen on the server.
    assert entry.listens == ("localhost:2375",)
    line = render_key_line(entry)
    assert line.startswith('restrict,port-forwarding,permitopen="[/run/netreach-lab/web.sock]:*",'
                           'permitlisten="localhost:2375" ')


def test_stream_local_forwarding_only_for_accounts_that_declare_it():
    entries = client_entries("laptop", [SOCKETS, {**PLAIN, "user": "tunnel"}], {}, {"sock": KEY, "third": KEY + "x"},
                             "bastion")
    text = render_sshd_dropin(account_policies(entries, ["sockets", "tunnel", "spare"]), 15, 3)
    blocks = {block.split("\n")[0]: block for block in text.split("\nMatch User ")[1:]}
    assert "AllowStreamLocalForwarding yes" in blocks["sockets"]
    assert "PermitOpen [/run/netreach-lab/web.sock]:*\n" in blocks["sockets"]
    assert "AllowTcpForwarding yes" in blocks["sockets"] and "PermitListen localhost:2375\n" in blocks["sockets"]
    assert "StreamLocalBindUnlink yes" in blocks["sockets"]
    for other in ("tunnel", "spare"):
        assert "AllowStreamLocalForwarding no" in blocks[other] and "StreamLocal" not in blocks[other].replace(
            "AllowStreamLocalForwarding no", "")
    assert dropin_socket_listens(text) == [{"account": "sockets", "listen": "/home/sockets/laptop.sock"}]


@pytest.mark.parametrize(
    ("forwards", "tcp", "stream_local", "permit_open", "permit_listen"),
    [
        ({"local_forwards": ["1:/run/a.sock"]}, "local", "local", "[/run/a.sock]:*", "none"),
        ({"remote_forwards": ["/home/sockets/r.sock:localhost:22"]}, "remote", "remote", "none", "none"),
        ({"remote_forwards": ["2375:/run/docker.sock"]}, "remote", "no", "none", "localhost:2375"),
    ],
)
def test_each_direction_gets_only_its_own_keywords(forwards, tcp, stream_local, permit_open, permit_listen):
    entries = client_entries("laptop", [{"name": "sock", "server": "bastion", "user": "sockets", **forwards}], {},
                             {"sock": KEY}, "bastion")
    text = render_sshd_dropin(account_policies(entries, ["sockets"]), 15, 3)
    assert f"AllowTcpForwarding {tcp}\n" in text and f"AllowStreamLocalForwarding {stream_local}\n" in text
    assert f"PermitOpen {permit_open}\n" in text and f"PermitListen {permit_listen}\n" in text
    if permit_open == "none":
        assert f'permitopen="{SENTINEL}"' in render_key_line(entries[0])


def test_two_tunnels_may_not_declare_one_socket_listen_on_a_server():
    first = client_entries("laptop", [SOCKETS], {}, {"sock": KEY}, "bastion")
    second = client_entries("desk", [SOCKETS], {}, {"sock": KEY + "y"}, "bastion")
    with pytest.raises(TunnelError, match="listens on socket /home/sockets/laptop.sock"):
        check_listen_conflicts(first + second)


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"socket_opens": ["/run/../x"]}, "entries[0].socket_opens"),
        ({"socket_opens": "/run/x.sock"}, "entries[0].socket_opens"),
        ({"socket_listens": ["/run/x.sock\",command=\"sh"]}, "entries[0].socket_listens"),
        ({"socket_listens": ["relative.sock"]}, "entries[0].socket_listens"),
    ],
)
def test_bad_socket_entries_name_the_field(value, field):
    entry = {"account": "sockets", "client": "laptop", "tunnel": "sock", "public_key": KEY, **value}
    with pytest.raises(TunnelError) as error:
        parse_entries([entry])
    assert error.value.field == field


@given(st.text(min_size=1, max_size=120))
def test_no_accepted_socket_path_can_break_a_config_line(text):
    try:
        forward = parse_forward("local", {"port": 1, "target_socket": text}, "f")
    except TunnelError:
        return
    path = forward.target_socket
    assert path.startswith("/") and len(path.encode()) <= SOCKET_PATH_MAX
    assert not set(path) & set(" \t\r\n\"'\\:%$#,=") and "/../" not in path + "/"
