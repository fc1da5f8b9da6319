from __future__ import annotations

import configparser
import re
from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.netreach.tunnels.plugins.module_utils._session import (
    SessionError,
    merge_include,
    merge_ini_section,
    parse_session,
    putty_file_name,
    registry_escape,
    render_openssh,
    render_putty,
    render_putty_reg,
    render_winscp_section,
    winscp_section_name,
)

SEED = dict(name="bastion-news", host="newshost.example.org", user="alice", port=22,
            proxy={"type": "http", "host": "proxy.corp", "port": 8080},
            tunnel={"host": "bastion.corp", "port": 22, "user": "tunnel"},
            local_forwards=["12345:localhost:119"], dynamic_forwards=["3128"], remote_forwards=[])

# WinSCP's documented raw site settings (winscp.net/eng/docs/rawsettings) that a proxied, tunnelled SFTP
# site uses, with the values the documentation gives for them.
WINSCP_DOCUMENTED = {
    "HostName": None, "PortNumber": r"\d+", "UserName": None, "FSProtocol": r"[0-9]",
    "ProxyMethod": r"[0-5]", "ProxyHost": None, "ProxyPort": r"\d+", "ProxyUsername": None,
    "Tunnel": r"[01]", "TunnelHostName": None, "TunnelPortNumber": r"\d+", "TunnelUserName": None,
    "PublicKeyFile": None,
}


def session(fmt="openssh", **changes):
    return parse_session({**SEED, **changes}, fmt)


def test_seed_openssh_uses_the_tunnel_as_jump_host_and_the_proxy_for_that_hop():
    text = render_openssh(session(tunnel={"host": "bastion.corp", "user": "tunnel"}))
    assert "Host bastion-news--tunnel\n    HostName bastion.corp\n    Port 22\n    User tunnel\n" \
           "    ProxyCommand nc -X connect -x proxy.corp:8080 %h %p\n" in text
    assert "    ProxyJump bastion-news--tunnel\n" in text
    assert "    LocalForward 12345 localhost:119\n    DynamicForward 3128\n" in text
    only_proxy = render_openssh(session(tunnel=None, proxy={"type": "socks5", "host": "127.0.0.1", "port": 1080}))
    assert "ProxyJump" not in only_proxy and "ProxyCommand nc -X 5 -x 127.0.0.1:1080 %h %p" in only_proxy


def test_openssh_include_goes_first_and_is_removed_cleanly():
    original = "Host *\n    ServerAliveInterval 30\n"
    merged = merge_include(original, "~/.ssh/config.d/netreach-*.conf")
    assert merged.startswith("# BEGIN") and merged.splitlines()[1] == "Include ~/.ssh/config.d/netreach-*.conf"
    assert merge_include(merged, "~/.ssh/config.d/netreach-*.conf") == merged
    assert merge_include(merged, None) == original


def test_seed_putty_session_file_and_reg_export():
    text = render_putty(session("putty", tunnel=None))
    lines = dict(line.split("=", 1) for line in text.splitlines())
    assert lines["HostName"] == "newshost.example.org" and lines["PortNumber"] == "22" and lines["UserName"] == "alice"
    assert lines["ProxyMethod"] == "3" and lines["ProxyHost"] == "proxy.corp" and lines["ProxyPort"] == "8080"
    assert lines["PortForwardings"] == "4L12345=localhost:119,4D3128"
    reg = render_putty_reg(session("putty", tunnel=None, name="bastion news"))
    assert reg.startswith("Windows Registry Editor Version 5.00\r\n\r\n"
                          "[HKEY_CURRENT_USER\\Software\\SimonTatham\\PuTTY\\Sessions\\bastion%20news]\r\n")
    assert '"PortNumber"=dword:00000016\r\n' in reg and '"ProxyPort"=dword:00001f90\r\n' in reg
    tunnel_only = dict(line.split("=", 1) for line in render_putty(session("putty", proxy=None)).splitlines())
    assert tunnel_only["ProxyMethod"] == "6" and tunnel_only["ProxyHost"] == "bastion.corp"


def test_seed_winscp_section_carries_the_documented_keys():
    warnings: list[str] = []
    text = render_winscp_section(session("winscp", name="corp/bastion news"), warnings)
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str
    parser.read_string(text)
    assert parser.sections() == ["Sessions\\corp/bastion%20news"]
    values = dict(parser["Sessions\\corp/bastion%20news"])
    assert set(values) <= set(WINSCP_DOCUMENTED)
    for key, value in values.items():
        if WINSCP_DOCUMENTED[key]:
            assert re.fullmatch(WINSCP_DOCUMENTED[key], value), (key, value)
    assert values["ProxyMethod"] == "3"  # documented: 3 = HTTP
    assert (values["ProxyHost"], values["ProxyPort"]) == ("proxy.corp", "8080")
    assert (values["Tunnel"], values["TunnelHostName"], values["TunnelPortNumber"], values["TunnelUserName"]) == \
        ("1", "bastion.corp", "22", "tunnel")
    assert any("port forwarding" in warning for warning in warnings)
    socks = render_winscp_section(session("winscp", proxy={"type": "socks5", "host": "h", "port": 1}), [])
    assert "ProxyMethod=2\r\n" in socks  # documented: 2 = SOCKS5


def test_winscp_merge_touches_only_our_section():
    original = "[Configuration\\Interface]\r\nRandomSeedFile=%25APPDATA%25%5Cwinscp.rnd\r\n[Sessions\\other]\r\nHostName=o\r\n"
    ours = render_winscp_section(session("winscp"), [])
    merged = merge_ini_section(original, winscp_section_name(session("winscp")), ours)
    assert merged.startswith(original) and merged.endswith(ours)
    assert merge_ini_section(merged, winscp_section_name(session("winscp")), ours) == merged
    assert merge_ini_section(merged, winscp_section_name(session("winscp")), None) == original
    lf = merge_ini_section("[Sessions\\other]\nHostName=o\n", "Sessions\\x", "[Sessions\\x]\r\nHostName=h\r\n")
    assert "\r" not in lf


@pytest.mark.parametrize(
    ("fmt", "changes", "field"),
    [
        ("openssh", {"name": "bad name"}, "name"),
        ("openssh", {"name": "*"}, "name"),
        ("putty", {"name": "a]b"}, "name"),
        ("putty", {"name": "line\nbreak"}, "name"),
        ("openssh", {"host": "h -oProxyCommand=sh"}, "host"),
        ("openssh", {"port": 0}, "port"),
        ("openssh", {"user": "al ice"}, "user"),
        ("openssh", {"proxy": {"type": "ftp", "host": "p", "port": 1}}, "proxy.type"),
        ("openssh", {"proxy": {"type": "http", "host": "p", "port": 1, "username": "u", "password": "p"}}, "proxy.password"),
        ("putty", {"proxy": {"type": "http", "host": "p", "port": 1, "username": "u", "password": "p\n"}}, "proxy.password"),
        ("putty", {}, "tunnel"),
        ("openssh", {"tunnel": {"host": "b c"}}, "tunnel.host"),
        ("openssh", {"local_forwards": ["12345:localhost:119\nProxyCommand sh"]}, "local_forwards[0]"),
        ("openssh", {"identity_file": "/root/my key"}, "identity_file"),
        ("winscp", {"identity_file": "C:\\keys\\k.ppk\r\nx=1"}, "identity_file"),
        ("rdp", {}, "format"),
    ],
)
def test_bad_input_names_the_field(fmt, changes, field):
    with pytest.raises(SessionError) as error:
        session(fmt, **changes)
    assert error.value.field.startswith(field)


@given(st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x17F), min_size=1, max_size=20))
def test_putty_file_names_and_registry_keys_escape_and_round_trip(name):
    file_name = putty_file_name(name)
    assert re.fullmatch(r"([A-Za-z0-9+\-.@_]|%[0-9A-F]{2})*", file_name), file_name
    assert unquote(file_name) == name
    key = registry_escape(name)
    assert not re.search(r"[ \\*?\x00-\x1f\x7f-\uffff]", key) and not key.startswith(".")
    assert unquote(key) == name


PRINTABLE = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x7F), min_size=1, max_size=16)


@settings(max_examples=300, deadline=None)
@given(name=PRINTABLE, user=PRINTABLE, password=PRINTABLE, identity=PRINTABLE)
def test_no_field_injects_lines_sections_or_options(name, user, password, identity):
    for fmt in ("openssh", "putty", "winscp"):
        try:
            spec = session(fmt, name=name, user=user, identity_file=identity, tunnel=None if fmt == "putty" else SEED["tunnel"],
                           proxy={"type": "http", "host": "p", "port": 1, "username": "u",
                                  "password": password if fmt == "putty" else None})
        except SessionError:
            continue
        if fmt == "openssh":
            text = render_openssh(spec)
            for line in text.splitlines()[1:-1]:
                assert re.fullmatch(r"(Host \S+|    [A-Za-z]+ (\S+ ?)+)", line), line
            assert len([line for line in text.splitlines() if line.startswith("Host ")]) == 2
        elif fmt == "putty":
            lines = render_putty(spec).splitlines()
            assert [line.split("=", 1)[0] for line in lines] == ["HostName", "PortNumber", "Protocol", "UserName",
                                                                 "ProxyMethod", "ProxyHost", "ProxyPort", "ProxyUsername",
                                                                 "ProxyPassword", "PublicKeyFile", "PortForwardings"]
            reg = render_putty_reg(spec).split("\r\n")
            assert len(reg) == 3 + len(lines) + 1 and reg[2].count("[") == 1 and reg[2].endswith("]")
            for line in reg[3:-1]:
                assert re.fullmatch(r'"[A-Za-z]+"=(dword:[0-9a-f]{8}|"([^"\\]|\\\\|\\")*")', line), line
        else:
            parser = configparser.ConfigParser(interpolation=None, strict=True)
            parser.optionxform = str
            parser.read_string(render_winscp_section(spec, []))
            assert len(parser.sections()) == 1
            assert unquote(parser.sections()[0]) == "Sessions\\" + name
            assert unquote(parser[parser.sections()[0]]["PublicKeyFile"]) == identity
