from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel import TunnelError, listens_overlap
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_fleet import client_entries, known_hosts_lines
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_server import (
    SENTINEL,
    account_policies,
    check_listen_conflicts,
    entry_label,
    parse_entries,
    render_key_line,
    render_sshd_dropin,
)

KEYS = {name: f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{name.upper()} netreach-tunnel-{name}"
        for name in ("seed", "third", "socks", "reverse", "wide")}
TUNNELS = [
    {"name": "seed", "server": "newshost", "jump_hosts": ["tunnel@bastion:22"], "local_forwards": ["12345:localhost:119"]},
    {"name": "third", "server": "bastion", "local_forwards": ["12346:newshost:119", "12380:newshost:80"]},
    {"name": "socks", "server": "bastion", "dynamic_forwards": ["127.0.0.1:3128"], "server_allow_dynamic": True},
    {"name": "reverse", "server": "bastion", "remote_forwards": ["2222:localhost:22"]},
]


def entries_for(server, tunnels=None, client="laptop"):
    return client_entries(client, TUNNELS if tunnels is None else tunnels, {"user": "tunnel"}, KEYS, server)


def test_each_hop_gets_exactly_what_the_tunnel_asks_of_it():
    lines = {entry.tunnel: render_key_line(entry) for entry in entries_for("bastion")}
    assert lines["seed"].startswith(f'restrict,port-forwarding,permitopen="newshost:22",permitlisten="{SENTINEL}" ')
    assert 'permitopen="newshost:119",permitopen="newshost:80"' in lines["third"]
    assert "permitopen" not in lines["socks"] and f'permitlisten="{SENTINEL}"' in lines["socks"]
    assert f'permitopen="{SENTINEL}",permitlisten="localhost:2222"' in lines["reverse"]
    assert all(line.endswith(f"netreach-tunnel:laptop/{name}") for name, line in lines.items())
    (news,) = entries_for("newshost")
    assert news.tunnel == "seed" and news.opens == ("localhost:119",)


def test_a_server_no_tunnel_names_gets_nothing():
    assert entries_for("elsewhere") == []


def test_dynamic_forward_needs_the_explicit_opt_in():
    socks = dict(TUNNELS[2], server_allow_dynamic=False)
    with pytest.raises(TunnelError, match="server_allow_dynamic") as info:
        entries_for("bastion", [socks])
    assert info.value.field == "laptop: tunnel_client_tunnels[0].dynamic_forwards"


def test_a_missing_public_key_is_named():
    with pytest.raises(TunnelError, match="no public key known for tunnel wide"):
        client_entries("laptop", [{"name": "wide", "server": "bastion", "local_forwards": ["1:h:1"]}], {}, {}, "bastion")


def test_a_bad_declaration_names_the_client_and_field():
    with pytest.raises(TunnelError) as info:
        entries_for("bastion", [{"name": "bad", "server": "bastion", "local_forwards": ["0:h:1"]}])
    assert info.value.field == "laptop: tunnel_client_tunnels[0].local_forwards[0].port"


def test_two_tunnels_may_not_declare_one_remote_listen_on_a_server():
    first = entries_for("bastion", [TUNNELS[3]], client="a")
    second = entries_for("bastion", [dict(TUNNELS[3], remote_forwards=["localhost:2222:localhost:22"])], client="b")
    with pytest.raises(TunnelError, match="already declares"):
        check_listen_conflicts(first + second)
    check_listen_conflicts(first + entries_for("bastion", [dict(TUNNELS[3], remote_forwards=["2223:h:22"])], client="b"))
    elsewhere = entries_for("bastion", [dict(TUNNELS[3], remote_forwards=["10.0.0.2:2222:h:22"])], client="b")
    with pytest.raises(TunnelError, match="port 2222"):
        check_listen_conflicts(first + elsewhere)


def test_sshd_dropin_restricts_each_account_to_the_union_of_its_entries():
    text = render_sshd_dropin(account_policies(entries_for("bastion"), ["tunnel", "spare"]), 15, 3)
    assert "Match User tunnel\n    AllowTcpForwarding yes\n    PermitOpen any\n    PermitListen localhost:2222\n    GatewayPorts no" in text
    assert "Match User spare\n    AllowTcpForwarding no\n    PermitOpen none\n    PermitListen none" in text
    for line in ("PermitTTY no", "X11Forwarding no", "AllowAgentForwarding no", "PermitTunnel no",
                 "ForceCommand /usr/sbin/nologin", "ClientAliveInterval 15", "ClientAliveCountMax 3"):
        assert text.count(line) == 2


def test_gateway_ports_only_for_a_non_loopback_remote_bind():
    wide = entries_for("bastion", [dict(TUNNELS[3], remote_forwards=["0.0.0.0:2222:localhost:22"])])
    assert "GatewayPorts clientspecified" in render_sshd_dropin(account_policies(wide, []), 15, 3)
    local = entries_for("bastion", [dict(TUNNELS[3], remote_forwards=["127.0.0.1:2222:localhost:22"])])
    assert "GatewayPorts no" in render_sshd_dropin(account_policies(local, []), 15, 3)


def test_labels_of_lines_we_did_not_write_are_none():
    assert entry_label("ssh-ed25519 AAAA admin@laptop") is None
    assert entry_label('restrict ssh-ed25519 AAAA netreach-tunnel:laptop/web') == "laptop/web"


def test_known_hosts_use_the_bracketed_form_for_other_ports():
    facts = {"ansible_ssh_host_key_ed25519_public": "AAAAC3NzaC1lZDI1NTE5AAAAIBx",
             "ansible_ssh_host_key_ecdsa_public": "AAAAE2VjZHNh", "ansible_ssh_host_key_ecdsa_public_keytype": "ecdsa-sha2-nistp256"}
    assert known_hosts_lines("bastion", 22, facts)[0] == "bastion ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBx"
    assert known_hosts_lines("bastion", 2222, facts) == ["[bastion]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBx",
                                                         "[bastion]:2222 ecdsa-sha2-nistp256 AAAAE2VjZHNh"]


@pytest.mark.parametrize(
    ("first", "second", "overlap"),
    [("12345", "127.0.0.1:12345", True), ("12345", "localhost:12345", True), ("12345", "[::1]:12345", True),
     ("0.0.0.0:80", "10.0.0.1:80", True), ("*:80", "[::1]:80", True), ("[::]:80", "127.0.0.1:80", False),
     ("127.0.0.1:80", "127.0.0.2:80", False), ("12345", "12346", False), ("10.0.0.1:80", "10.0.0.2:80", False)],
)
def test_listen_overlap_knows_ssh_defaults_and_wildcards(first, second, overlap):
    for pair in ((first, second), (second, first)):
        assert listens_overlap(*pair) is overlap


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"account": "tunnel", "client": "c", "tunnel": "t", "public_key": "ssh-ed25519 AAAA", "opens": ['h:1" x']}, "entries[0].opens"),
        ({"account": "tunnel", "client": "c", "tunnel": "t", "public_key": "ssh-ed25519 AAAA", "listens": ["a:b:c"]}, "entries[0].listens"),
        ({"account": "Root Account", "client": "c", "tunnel": "t", "public_key": "ssh-ed25519 AAAA"}, "entries[0].account"),
        ({"account": "tunnel", "client": "c/d", "tunnel": "t", "public_key": "ssh-ed25519 AAAA"}, "entries[0].client"),
        ({"account": "tunnel", "client": "c", "tunnel": "t", "public_key": "ssh-dss AAAA"}, "entries[0].public_key"),
        ({"account": "tunnel", "client": "c", "tunnel": "t", "public_key": "ssh-ed25519 AAAA", "any_open": "yes"}, "entries[0].any_open"),
    ],
)
def test_bad_entries_name_the_field(value, field):
    with pytest.raises(TunnelError) as info:
        parse_entries([value])
    assert info.value.field == field


SAFE_LINE = re.compile(r'^restrict,port-forwarding(,permit(open|listen)="[^"\s]+")* ssh-ed25519 [A-Za-z0-9+/=]+ netreach-tunnel:[A-Za-z0-9._-]+/[a-z0-9_-]+$')


@given(host=st.text(min_size=1, max_size=40), port=st.integers(min_value=-5, max_value=70000),
       client=st.text(min_size=1, max_size=20))
def test_nothing_generated_escapes_an_authorized_keys_line(host, port, client):
    tunnels = [{"name": "web", "server": "bastion", "local_forwards": [f"1:{host}:{port}"],
                "remote_forwards": [f"{host}:{port}:localhost:22"]}]
    try:
        entries = client_entries(client, tunnels, {}, {"web": "ssh-ed25519 AAAAC3Nza"}, "bastion")
    except TunnelError:
        return
    for entry in entries:
        line = render_key_line(entry)
        assert "\n" not in line and "\r" not in line
        assert SAFE_LINE.fullmatch(line), line


def test_check_mode_on_fresh_clients_skips_tunnels_whose_key_does_not_exist_yet():
    declared = [{"name": "wide", "server": "bastion", "local_forwards": ["1:h:1"]}]
    assert client_entries("laptop", declared, {}, {"wide": ""}, "bastion", skip_missing_keys=True) == []
    with pytest.raises(TunnelError):
        client_entries("laptop", declared, {}, {"wide": ""}, "bastion")


def test_entries_must_use_a_declared_account_and_no_key_twice():
    from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_server import check_entries
    entries = entries_for("bastion")
    with pytest.raises(TunnelError, match="dedicated accounts only") as info:
        check_entries(entries, ["other"])
    assert info.value.field == "entries[0].account"
    twice = entries_for("bastion", [TUNNELS[1]]) + entries_for("bastion", [TUNNELS[1]], client="clone")
    with pytest.raises(TunnelError, match="sshd would use only the first line"):
        check_entries(twice, ["tunnel"])
    check_entries(entries, ["tunnel"])
