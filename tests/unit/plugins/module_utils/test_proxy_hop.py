"""The local NTLM hop's model: the NTLMv2 hash cntlm takes, its configuration and unit, and the declarations that
lead there (client_proxy's auth ntlm, a tunnel's or session's proxy.auth ntlm)."""
from __future__ import annotations

import hmac

import pytest

from ansible_collections.netreach.tunnels.plugins.module_utils._declaration import DeclarationError, Proxy, parse_proxy
from ansible_collections.netreach.tunnels.plugins.module_utils._proxy import TARGETS, parse_proxy_settings
from ansible_collections.netreach.tunnels.plugins.module_utils._proxy_hop import (
    NtlmHop,
    _md4,
    nt_hash,
    ntlmv2_hash,
    render_cntlm_config,
    render_hop_unit,
)

PASSWORD = 'Pct%41 @:#;"/&?x'
PARAMS = dict(http_proxy="http://proxy.corp:8080", https_proxy="http://proxy.corp:8080", socks_proxy=None,
              no_proxy=["localhost"], username="CORP\\alice", password=PASSWORD, targets=list(TARGETS),
              browser_mode="manual", browser_autoconfig_url=None, browser_locked=False, auth="ntlm", domain=None,
              hop_port=3130)


@pytest.mark.parametrize(("data", "digest"), [(b"", "31d6cfe0d16ae931b73c59d7e0c089c0"),
                                              (b"abc", "a448017aaf21d8525fc10ae87aa6729d"),
                                              (b"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                                               "e33b4ddc9c38f2199c3e7b164fcc0536")])
def test_md4_gives_the_rfc_1320_digests(data, digest):
    assert _md4(data).hex() == digest


def test_the_hash_is_ntowfv2_of_ms_nlmp():
    # MS-NLMP 4.2.2.1.2: NTOWFv1("Password") (MD4 of the UTF-16 password).
    assert _md4("Password".encode("utf-16-le")).hex() == "a4f49c406510bdcab6824ee7c30fd852"
    # MS-NLMP 4.2.4.1.1 with the domain upper-cased, as cntlm sends it: HMAC-MD5(NTOWFv1, UPPER(user) + domain).
    key = bytes.fromhex("a4f49c406510bdcab6824ee7c30fd852")
    assert ntlmv2_hash("User", "DOMAIN", "Password") == hmac.new(key, "USERDOMAIN".encode("utf-16-le"),
                                                                 "md5").hexdigest().upper()
    assert ntlmv2_hash("alice", "corp", "pässword") == ntlmv2_hash("ALICE", "CORP", "pässword") != \
        ntlmv2_hash("alice", "CORP", "Pässword")


def test_client_proxy_ntlm_points_every_layer_at_the_hop_without_credentials():
    settings = parse_proxy_settings(PARAMS)
    assert settings.username is None and settings.password is None
    assert settings.url(settings.http) == settings.url(settings.https) == "http://127.0.0.1:3130"
    assert all(PASSWORD not in value and "alice" not in value for _name, value in settings.env)
    hop = settings.hop
    assert (hop.host, hop.upstream_port, hop.user, hop.domain, hop.port) == ("proxy.corp", 8080, "alice", "CORP", 3130)
    assert set(settings.secrets) == {PASSWORD, hop.hash}


def test_the_hop_configuration_holds_the_hash_never_the_password_and_the_unit_is_hardened():
    hop = NtlmHop("proxy.corp", 8080, "alice", "corp", PASSWORD, 3131)
    config = render_cntlm_config(hop)
    assert PASSWORD not in config and "Password " not in config
    assert f"PassNTLMv2 {ntlmv2_hash('alice', 'CORP', PASSWORD)}\n" in config
    assert "Domain CORP\n" in config and "Proxy proxy.corp:8080\n" in config and "Listen 127.0.0.1:3131\n" in config
    assert "Auth NTLMv2\n" in config
    unit = render_hop_unit()
    assert "ExecStart=/usr/sbin/cntlm -f -c /etc/netreach/proxy-hop/cntlm.conf\n" in unit
    for line in ("User=netreach-proxy-hop", "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes",
                 "CapabilityBoundingSet=", "PrivateTmp=yes"):
        assert f"\n{line}\n" in unit


@pytest.mark.parametrize(("changes", "field"), [
    ({"username": "alice"}, "domain"),
    ({"username": "alice", "domain": ""}, "domain"),
    ({"username": "CORP\\alice", "domain": "OTHER"}, "domain"),
    ({"domain": "CO#RP"}, "domain"),
    ({"domain": "CORP\n"}, "domain"),
    ({"domain": "CO\x00RP"}, "domain"),
    ({"username": "CORP\\al#ice"}, "username"),
    ({"username": None, "password": None}, "username"),
    ({"password": None}, "password"),
    ({"password": "a\nb"}, "password"),
    ({"password": "a\x00b"}, "password"),
    ({"username": "CORP\\ali\x00ce"}, "username"),
    ({"https_proxy": "http://other.corp:8080"}, "https_proxy"),
    ({"http_proxy": "https://proxy.corp:8443", "https_proxy": None}, "http_proxy"),
    ({"hop_port": 0}, "hop_port"),
    ({"auth": "kerberos"}, "auth"),
    ({"auth": "basic", "domain": "CORP"}, "domain"),
])
def test_bad_ntlm_declarations_name_the_field(changes, field):
    with pytest.raises(DeclarationError) as failure:
        parse_proxy_settings(dict(PARAMS, **changes))
    assert failure.value.field == field


def test_a_tunnels_ntlm_proxy_is_the_hop_without_credentials():
    declared = {"type": "http", "host": "proxy.corp", "port": 8080, "username": "CORP\\alice", "password": PASSWORD,
                "auth": "ntlm", "domain": None, "hop_port": 3130}
    assert parse_proxy(declared) == Proxy("http", "127.0.0.1", 3130)
    assert parse_proxy(declared).secrets == []
    assert parse_proxy(dict(declared, hop_port=3131, username="alice", domain="CORP")).port == 3131


@pytest.mark.parametrize(("changes", "field"), [
    ({"username": "alice"}, "proxy.domain"),
    ({"type": "socks5"}, "proxy.auth"),
    ({"auth": "digest"}, "proxy.auth"),
    ({"auth": "basic", "domain": "CORP"}, "proxy.domain"),
    ({"host": "pro xy"}, "proxy.host"),
    ({"hop_port": 70000}, "proxy.hop_port"),
    ({"password": "a\nb"}, "proxy.password"),
    ({"username": "CORP\\al\x00ice"}, "proxy.username"),
])
def test_bad_ntlm_proxies_of_tunnels_name_the_field(changes, field):
    declared = {"type": "http", "host": "proxy.corp", "port": 8080, "username": "CORP\\alice", "password": PASSWORD,
                "auth": "ntlm"}
    with pytest.raises(DeclarationError) as failure:
        parse_proxy(dict(declared, **changes))
    assert failure.value.field == field


def test_ntlm2sr_and_ntlm_take_the_nt_hash():
    hop = NtlmHop("proxy.corp", 8080, "alice", "CORP", "Password", auth="NTLM2SR")
    config = render_cntlm_config(hop)
    assert "PassNT A4F49C406510BDCAB6824EE7C30FD852\n" in config and "Auth NTLM2SR\n" in config
    assert nt_hash("Password") == hop.hash and "PassNTLMv2" not in config and "Password\n" not in config
    with pytest.raises(DeclarationError) as failure:
        parse_proxy_settings(dict(PARAMS, ntlm_auth="LM"))
    assert failure.value.field == "ntlm_auth"
    assert parse_proxy_settings(dict(PARAMS, ntlm_auth="NTLM")).hop.auth == "NTLM"
