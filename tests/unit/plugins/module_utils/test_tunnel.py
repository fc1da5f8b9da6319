from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel import (
    TunnelError,
    parse_forward,
    parse_hop,
    parse_tunnel,
)
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_render import (
    render_ssh_config,
    render_unit,
    ssh_command,
)

BASE = dict(
    name="news", server="newshost.example.org", port=22, user="tunnel", run_as="netreach-tunnel",
    known_hosts=["newshost.example.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA"], jump_hosts=[], proxy=None,
    local_forwards=["12345:localhost:119"], remote_forwards=[], dynamic_forwards=[], engine="ssh",
    keepalive_interval=5, keepalive_count_max=3, connect_timeout=10, restart_delay=1, restart_max_delay=30,
)


def tunnel(**changes):
    return parse_tunnel({**BASE, **changes})


@pytest.mark.parametrize(
    ("kind", "spec", "listen", "target"),
    [
        ("local", "12345:localhost:119", "12345", "localhost:119"),
        ("local", "0.0.0.0:8443:10.1.2.3:443", "0.0.0.0:8443", "10.1.2.3:443"),
        ("local", "[::1]:8080:[fd00::5]:80", "[::1]:8080", "[fd00::5]:80"),
        ("remote", "2222:localhost:22", "2222", "localhost:22"),
        ("local", {"bind_address": "0.0.0.0", "port": 8443, "host": "10.1.2.3", "host_port": 443},
         "0.0.0.0:8443", "10.1.2.3:443"),
    ],
)
def test_forward_syntax_like_ssh(kind, spec, listen, target):
    forward = parse_forward(kind, spec, "f")
    assert (forward.listen, forward.target) == (listen, target)


@pytest.mark.parametrize(("spec", "listen"), [("3128", "3128"), ("127.0.0.1:3128", "127.0.0.1:3128"), ("[::1]:1080", "[::1]:1080")])
def test_dynamic_forward(spec, listen):
    assert parse_forward("dynamic", spec, "d").listen == listen


@pytest.mark.parametrize(
    "spec",
    ["0:localhost:22", "65536:localhost:22", "abc:localhost:22", "1:2", "1:h:2:3:4", "12345:local host:119",
     "12345:localhost:119\nProxyCommand x", "[::1:80:h:1", "12345:-oProxyCommand=x:1", "12345:%h:1", ""],
)
def test_bad_local_forwards_name_the_field(spec):
    with pytest.raises(TunnelError) as error:
        tunnel(local_forwards=[spec])
    assert error.value.field.startswith("local_forwards[0]")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": "a/b"}, "name"), ({"name": "a b"}, "name"), ({"name": "-x"}, "name"), ({"name": "x\n"}, "name"),
        ({"port": 0}, "port"), ({"port": 65536}, "port"), ({"server": "host name"}, "server"),
        ({"server": "h\nProxyCommand sh"}, "server"), ({"user": "root;x"}, "user"), ({"run_as": "a b"}, "run_as"),
        ({"known_hosts": ["not a key"]}, "known_hosts[0]"), ({"jump_hosts": ["u@h:0"]}, "jump_hosts[0]"),
        ({"proxy": {"type": "ftp", "host": "p", "port": 1}}, "proxy.type"),
        ({"proxy": {"type": "http", "host": "p", "port": 1, "username": "u"}}, "proxy"),
        ({"restart_delay": 0}, "restart_delay"), ({"restart_max_delay": 0}, "restart_max_delay"),
        ({"local_forwards": [], "remote_forwards": [], "dynamic_forwards": []}, "local_forwards"),
        ({"local_forwards": ["1:h:2", "1:h:3"]}, "local_forwards"),
        ({"engine": "sshpass"}, "engine"),
    ],
)
def test_bad_tunnels_name_the_field(changes, field):
    with pytest.raises(TunnelError) as error:
        tunnel(**changes)
    assert error.value.field == field


def test_hops_default_port_and_user():
    assert parse_hop("bastion", "j").spec == "bastion:22"
    assert parse_hop("tunnel@bastion:2222", "j").spec == "tunnel@bastion:2222"
    assert parse_hop("tunnel@[fd00::1]:22", "j").host == "fd00::1"


def test_seed_recipe_renders_a_pinned_non_interactive_config():
    config = render_ssh_config(tunnel())
    for line in ("StrictHostKeyChecking yes", "BatchMode yes", "ExitOnForwardFailure yes",
                 "UserKnownHostsFile /etc/netreach/tunnels/news/known_hosts", "LocalForward 12345 localhost:119"):
        assert f"    {line}\n" in config
    assert "StrictHostKeyChecking no" not in config


def test_proxy_password_never_reaches_config_unit_or_command():
    secret = "s3cret-Pa55"
    t = tunnel(proxy={"type": "http", "host": "proxy.corp", "port": 8080, "username": "u", "password": secret})
    assert secret not in render_ssh_config(t) + render_unit(t) + " ".join(ssh_command(t))
    assert "--auth-file /etc/netreach/tunnels/news/proxy_auth" in render_ssh_config(t)


def test_jump_chain_with_proxy_on_the_first_hop():
    config = render_ssh_config(tunnel(jump_hosts=["j1", "u2@j2:2200"], proxy={"type": "socks5", "host": "p", "port": 1080}))
    hop0, hop1, final = config.split("\nHost ")[1:]
    assert "ProxyCommand" in hop0 and "ProxyJump" not in hop0
    assert "ProxyJump netreach-news-hop0" in hop1 and "User u2" in hop1 and "Port 2200" in hop1
    assert "ProxyJump netreach-news-hop1" in final and "ProxyCommand" not in final


def test_unit_never_gives_up_and_backs_off():
    unit = render_unit(tunnel(restart_delay=2, restart_max_delay=40, connect_timeout=7))
    assert "Restart=always\n" in unit and "StartLimitIntervalSec=0\n" in unit and "RestartSec=1ms\n" in unit
    # The starter waits out the backoff inside the start: no shell around it before or after.
    assert "ExecStart=/usr/bin/python3 -I -S /usr/local/lib/netreach/tunnel-start --delay 2 --max-delay 40 --gate 12 " in unit
    assert "ExecStartPre" not in unit and "ExecStopPost" not in unit
    assert "RestartSteps=" not in unit
    assert "CapabilityBoundingSet=\n" in unit


def test_a_direct_tunnel_is_connected_by_the_starter_and_ssh_uses_that_socket():
    command = ssh_command(tunnel(port=2200, connect_timeout=4))
    split = command.index("--")
    assert command[command.index("--connect"):split] == ["--connect", "newshost.example.org", "2200",
                                                         "--connect-timeout", "4", "--family", "any",
                                                         "--tcp-keepalive", "yes"]
    assert command[split + 1:] == ["/usr/bin/ssh", "-F", "/etc/netreach/tunnels/news/ssh_config", "-N",
                                   "-o", "ProxyCommand=-", "netreach-news"]
    # The tunnel's own ssh_config still connects by itself (ssh -F ... by hand, ssh -G).
    assert "ProxyCommand" not in render_ssh_config(tunnel())


def test_the_starter_follows_address_family_and_tcp_keepalive_of_ssh_options():
    command = ssh_command(tunnel(ssh_options={"AddressFamily": "inet6", "TCPKeepAlive": False}))
    assert command[command.index("--family") + 1] == "inet6"
    assert command[command.index("--tcp-keepalive") + 1] == "no"


@pytest.mark.parametrize("changes", [{"jump_hosts": ["j1"]}, {"proxy": {"type": "http", "host": "p", "port": 3128}},
                                     {"engine": "autossh"}])
def test_jump_proxy_and_autossh_tunnels_connect_as_before(changes):
    command = ssh_command(tunnel(**changes))
    assert "--connect" not in command and "ProxyCommand=-" not in command
    assert command[:4] == ["/usr/bin/python3", "-I", "-S", "/usr/local/lib/netreach/tunnel-start"]


def test_low_port_gets_only_the_bind_capability():
    assert "CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n" in render_unit(tunnel(local_forwards=["80:h:80"]))


def test_autossh_engine():
    t = tunnel(engine="autossh")
    command = ssh_command(t)
    assert command[command.index("--") + 1:][:3] == ["/usr/bin/autossh", "-M", "0"]
    assert "Environment=AUTOSSH_GATETIME=0" in render_unit(t)


CONFIG_LINE = re.compile(r"^(#.*|Host \S+|    [A-Za-z0-9]+ [^\s\"'`;\\]+( [^\s\"'`;\\]+)*|)$")
UNIT_LINE = re.compile(r"^(#.*|\[[A-Za-z]+\]|[A-Za-z]+=[^\r\n\"'`;\\]*|)$")


@given(st.text(max_size=40))
def test_no_input_can_break_a_config_line(text):
    """Whatever string lands in a field, it fails validation or renders only well-formed lines."""
    for changes in ({"server": text}, {"local_forwards": [f"1:{text}:2"]}, {"user": text},
                    {"jump_hosts": [text]}, {"name": text}, {"dynamic_forwards": [text]}):
        try:
            t = tunnel(**changes)
        except TunnelError:
            continue
        assert all(CONFIG_LINE.match(line) for line in render_ssh_config(t).split("\n")), render_ssh_config(t)
        assert all(UNIT_LINE.match(line) for line in render_unit(t).split("\n")), render_unit(t)
