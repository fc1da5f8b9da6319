"""Fuzzing of the string fields the other suites' fuzz tests do not reach: whatever hypothesis puts in them, a
declaration either fails naming a field or renders only well-formed lines, with no line break and no unescaped
delimiter of the output format.

Covered elsewhere: ssh_config and unit through server, forwards, user, jump hosts, name (test_tunnel.py);
authorized_keys through forward hosts and ports (test_tunnel_server.py); nft through forwards and sources
(test_nat.py); every proxy format through user name, password, no_proxy and HTTP host (test_proxy.py); OpenSSH,
PuTTY (.reg) and WinSCP.ini through name, user, proxy password and key path (test_session.py). Renderers that take
no declared string (the nat_rules boot unit and sysctl file, the sudoers drop-in) need no fuzzing.
"""
from __future__ import annotations

import configparser
import json
import os
import re
import tempfile

from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.netreach.tunnels.plugins.module_utils._nat import NatError, parse_nat, render_table
from ansible_collections.netreach.tunnels.plugins.module_utils._proxy import (
    TARGETS,
    ProxyError,
    merge_block,
    merge_policies,
    parse_proxy_settings,
    render_apt,
    render_dnf_lines,
    render_docker,
    render_environment_lines,
    render_git_lines,
    render_npm_lines,
    render_pip_lines,
    render_profile,
    render_proxy_policy,
    render_systemd,
    render_wget_lines,
)
from ansible_collections.netreach.tunnels.plugins.module_utils._session import (
    SessionError,
    parse_session,
    render_openssh,
    render_putty_reg,
    render_winscp_section,
)
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel import TunnelError, parse_tunnel
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_render import (
    render_known_hosts,
    render_ssh_config,
    render_unit,
)
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_helpers import PROXY_CONNECT
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_server import (
    account_policies,
    parse_entries,
    render_key_line,
    render_sshd_dropin,
)

# Line breaks of every kind, the delimiters of every format we write, and a few characters that need escaping.
HOSTILE = st.text(alphabet=st.sampled_from(list("ab1:/@.[]\"'=;#,% \t\r\n\\$`{}*-") + ["\x00", "\x0b", "\x85",
                                                                                       "\u2028", "é"]),
                  min_size=0, max_size=24)
BREAKS = re.compile(r"[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")

TUNNEL = dict(
    name="news", server="newshost.example.org", port=22, user="tunnel", run_as="netreach-tunnel",
    known_hosts=["newshost.example.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA"], jump_hosts=[], proxy=None,
    local_forwards=["12345:localhost:119"], remote_forwards=[], dynamic_forwards=[], engine="ssh",
    keepalive_interval=5, keepalive_count_max=3, connect_timeout=10, restart_delay=1, restart_max_delay=30,
)
# read_auth() of the proxy hop program the tunnel units run.
PROXY_HOP: dict = {"__name__": "proxy_connect"}
exec(compile(PROXY_CONNECT, "proxy-connect", "exec"), PROXY_HOP)  # noqa: S102 (our own program text)
read_auth = PROXY_HOP["read_auth"]
SSH_CONFIG_LINE = re.compile(r"(#[^\n]*|Host \S+|    [A-Za-z0-9]+ [^\s\"'#][^\"#]*|)")
UNIT_LINE = re.compile(r"(#[^\n]*|\[[A-Za-z]+\]|[A-Za-z]+=[^\n]*|)")


def lines_of(text: str) -> list[str]:
    """The lines of TEXT, checking first that nothing but "\\n" breaks one."""
    assert not BREAKS.search(text.replace("\n", "")), repr(text)
    return text.split("\n")


@settings(max_examples=300, deadline=None)
@given(known_host=HOSTILE, identity=HOSTILE, proxy_host=HOSTILE, username=HOSTILE, password=HOSTILE)
def test_tunnel_known_hosts_identity_and_proxy_fields_stay_in_their_lines(known_host, identity, proxy_host,
                                                                          username, password):
    for changes in ({"known_hosts": [f"{known_host} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA"]},
                    {"known_hosts": [f"newshost ssh-ed25519 AAAA{known_host}"]},
                    {"identity_file": f"/etc/keys/{identity}"},
                    {"proxy": {"type": "http", "host": proxy_host, "port": 8080}},
                    {"proxy": {"type": "http", "host": "proxy", "port": 8080, "username": username, "password": password}}):
        try:
            tunnel = parse_tunnel({**TUNNEL, **changes})
        except TunnelError as exc:
            assert exc.field and not BREAKS.search(exc.field)
            continue
        assert all(SSH_CONFIG_LINE.fullmatch(line) for line in lines_of(render_ssh_config(tunnel)))
        assert all(UNIT_LINE.fullmatch(line) for line in lines_of(render_unit(tunnel)))
        known = lines_of(render_known_hosts(tunnel))
        assert len(known) == len(tunnel.known_hosts) + 1 and known[-1] == ""
        # host, key type, key and at most a comment: a value cannot add a marker (@revoked) or a second entry.
        assert all(line.split()[1:2] == ["ssh-ed25519"] and not line.startswith("@") for line in known[:-1]), known
        if tunnel.proxy and tunnel.proxy.username:
            # The helper reads the credential file whole: it gets back exactly the declared user and password.
            with tempfile.NamedTemporaryFile("w", delete=False) as handle:
                handle.write(f"{tunnel.proxy.username}:{tunnel.proxy.password}\n")
            try:
                assert read_auth(handle.name) == (tunnel.proxy.username, tunnel.proxy.password)
            finally:
                os.unlink(handle.name)
        if "identity_file" in changes:
            assert tunnel.identity_file == changes["identity_file"]


KEY_LINE = re.compile(r'restrict,port-forwarding(,permit(open|listen)="[^"\s\\]+")* ssh-ed25519 [A-Za-z0-9+/=]+ \S+')
DROPIN_LINE = re.compile(r"(#[^\n]*|Match User [a-z_][a-z0-9_-]*|    [A-Za-z0-9]+ [^\s\"#]+( [^\s\"#]+)*|)")


@settings(max_examples=300, deadline=None)
@given(account=HOSTILE, client=HOSTILE, tunnel=HOSTILE, opens=st.lists(HOSTILE, max_size=2),
       listens=st.lists(HOSTILE, max_size=2), key=HOSTILE)
def test_tunnel_server_entries_render_one_authorized_keys_line_and_a_clean_sshd_dropin(account, client, tunnel, opens,
                                                                                       listens, key):
    value = {"account": account or "tunnel", "client": client, "tunnel": tunnel, "opens": opens, "listens": listens,
             "public_key": f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5{key}"}
    try:
        entries = parse_entries([value])
    except TunnelError as exc:
        assert exc.field.startswith("entries[0]")
        return
    line = render_key_line(entries[0])
    assert KEY_LINE.fullmatch(line), line
    dropin = render_sshd_dropin(account_policies(entries, [entries[0].account]), 15, 3)
    assert all(DROPIN_LINE.fullmatch(text) for text in lines_of(dropin)), dropin


NFT_LINE = re.compile(r'^[\ta-z0-9 .:/\[\]{},;_*-]*("[A-Za-z0-9_.*-]+"[\ta-z0-9 .:/\[\]{},;_*-]*)*$')


@settings(max_examples=300, deadline=None)
@given(out_interface=HOSTILE, in_interface=HOSTILE, snat_to=HOSTILE, proto=HOSTILE, policy=HOSTILE)
def test_nat_interfaces_addresses_and_words_cannot_add_or_break_a_rule(out_interface, in_interface, snat_to, proto,
                                                                       policy):
    for changes in ({"masquerade": [{"out_interface": out_interface, "source": "10.10.0.0/24"}]},
                    {"port_forwards": [{"port": 80, "to": "10.0.0.5", "in_interface": in_interface}]},
                    {"snat": [{"out_interface": "eth0", "source": "10.20.0.0/24", "to": snat_to}]},
                    {"port_forwards": [{"proto": proto, "port": 80, "to": "10.0.0.5"}]},
                    {"forward_policy": policy}):
        try:
            rules = parse_nat({"masquerade": [], "snat": [], "port_forwards": [], **changes})
        except NatError as exc:
            assert exc.field and not BREAKS.search(exc.field)
            continue
        text = render_table(rules)
        for line in lines_of(text):
            assert NFT_LINE.fullmatch(line), line
        # One rule per declared entry and chain: no value split a rule in two or closed a chain early.
        assert text.count("{") == text.count("}") == 4


PROXY = dict(http_proxy="http://proxy.corp:8080", https_proxy="http://proxy.corp:8080", socks_proxy=None,
             no_proxy=["localhost"], username="alice", password="pw", targets=list(TARGETS))


def render_every_format(settings_) -> dict[str, str]:
    warnings: list[str] = []
    return {
        "environment": "\n".join(render_environment_lines(settings_)) + "\n",
        "profile": render_profile(settings_),
        "systemd": render_systemd(settings_),
        "docker": render_docker(settings_),
        "apt": render_apt(settings_, warnings),
        "dnf": merge_block(None, render_dnf_lines(settings_, warnings), "main"),
        "git": merge_block(None, render_git_lines(settings_, warnings)),
        "pip": merge_block(None, render_pip_lines(settings_, warnings), "global"),
        "npm": merge_block(None, render_npm_lines(settings_, warnings)),
        "wget": merge_block(None, render_wget_lines(settings_, warnings)),
        "policies": merge_policies(None, render_proxy_policy(settings_, warnings)),
    }


@settings(max_examples=300, deadline=None)
@given(https_host=HOSTILE, socks_host=HOSTILE, path=HOSTILE, autoconfig=HOSTILE)
def test_every_proxy_format_keeps_https_socks_and_autoconfig_values_in_their_lines(https_host, socks_host, path,
                                                                                   autoconfig):
    reference = render_every_format(parse_proxy_settings({**PROXY, "socks_proxy": "socks5h://s:1080"}))
    for changes in ({"https_proxy": f"http://{https_host}:8080"}, {"https_proxy": f"http://proxy:8080/{path}"},
                    {"socks_proxy": f"socks5h://{socks_host}:1080"},
                    {"browser_mode": "autoConfig", "browser_autoconfig_url": f"http://pac/{autoconfig}"}):
        try:
            settings_ = parse_proxy_settings({**PROXY, "socks_proxy": "socks5h://s:1080", **changes})
        except ProxyError as exc:
            assert exc.field and not BREAKS.search(exc.field)
            continue
        out = render_every_format(settings_)
        for name, text in out.items():
            lines = lines_of(text)
            if name != "policies":
                assert len(lines) == len(lines_of(reference[name])), (name, text)
        for line in out["environment"].splitlines():
            assert re.fullmatch(r'[A-Za-z_]+="[^"\\\s$`]*"', line), line
        assert all(UNIT_LINE.fullmatch(line) for line in lines_of(out["docker"]))
        json.loads(out["policies"])
        parser = configparser.ConfigParser(interpolation=None, strict=True)
        parser.read_string(out["pip"])
        parser = configparser.ConfigParser(interpolation=None, strict=True)
        parser.read_string(out["dnf"])


SESSION = dict(name="bastion-news", host="newshost.example.org", user="alice", port=22,
               proxy={"type": "http", "host": "proxy.corp", "port": 8080},
               tunnel={"host": "bastion.corp", "port": 22, "user": "tunnel"},
               local_forwards=["12345:localhost:119"], dynamic_forwards=["3128"], remote_forwards=[])
OPENSSH_LINE = re.compile(r"(#[^\n]*|Host \S+|    [A-Za-z0-9]+ (\S+ ?)+|)")
REG_LINE = re.compile(r'(Windows Registry Editor Version 5\.00|\[[^\]\r\n]+\]|"[A-Za-z]+"=(dword:[0-9a-f]{8}|"([^"\\]|\\\\|\\")*")|)')


@settings(max_examples=300, deadline=None)
@given(host=HOSTILE, forward=HOSTILE, tunnel_host=HOSTILE, tunnel_user=HOSTILE, proxy_host=HOSTILE,
       proxy_user=HOSTILE)
def test_session_hosts_forwards_and_hop_fields_stay_in_their_lines(host, forward, tunnel_host, tunnel_user,
                                                                   proxy_host, proxy_user):
    for changes in ({"host": host}, {"local_forwards": [f"12345:{forward}:119"]}, {"dynamic_forwards": [forward]},
                    {"tunnel": {"host": tunnel_host, "port": 22, "user": tunnel_user}},
                    {"proxy": {"type": "http", "host": proxy_host, "port": 8080, "username": proxy_user}}):
        for fmt in ("openssh", "putty", "winscp"):
            params = {**SESSION, **changes}
            if fmt == "putty":
                params["tunnel"] = None
            try:
                session = parse_session(params, fmt)
            except SessionError as exc:
                assert exc.field and not BREAKS.search(exc.field)
                continue
            if fmt == "openssh":
                assert all(OPENSSH_LINE.fullmatch(line) for line in lines_of(render_openssh(session)))
            elif fmt == "putty":
                reg = render_putty_reg(session)
                assert all(REG_LINE.fullmatch(line) for line in lines_of(reg.replace("\r\n", "\n")))
            else:
                section = render_winscp_section(session, [])
                parser = configparser.ConfigParser(interpolation=None, strict=True)
                parser.optionxform = str
                parser.read_string(section)
                assert len(parser.sections()) == 1
                assert all("\r" not in value and "\n" not in value for value in parser[parser.sections()[0]].values())
