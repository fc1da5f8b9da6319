from __future__ import annotations

import configparser
import json
import re
import shlex
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.netreach.tunnels.plugins.module_utils._engine import Plan
from ansible_collections.netreach.tunnels.plugins.module_utils._proxy import (
    BEGIN,
    END,
    TARGETS,
    ProxyError,
    merge_block,
    merge_policies,
    parse_proxy_settings,
    remove_block,
    render_apt,
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
from fakehost import FakeModule

BASE = dict(http_proxy="http://proxy.corp:8080", https_proxy="http://proxy.corp:8080",
            socks_proxy="socks5h://127.0.0.1:3128",
            no_proxy=["localhost", "127.0.0.1", "::1", ".corp.example", "10.0.0.0/8"],
            username=None, password=None, targets=list(TARGETS))


def settings_with(**changes):
    return parse_proxy_settings({**BASE, **changes})


def render_all(proxy) -> dict[str, str]:
    warnings: list[str] = []
    return {
        "environment": "\n".join(render_environment_lines(proxy)) + "\n",
        "profile": render_profile(proxy),
        "systemd": render_systemd(proxy),
        "docker": render_docker(proxy),
        "apt": render_apt(proxy, warnings),
        "git": merge_block(None, render_git_lines(proxy, warnings)),
        "pip": merge_block(None, render_pip_lines(proxy, warnings), "global"),
        "npm": merge_block(None, render_npm_lines(proxy, warnings)),
        "wget": merge_block(None, render_wget_lines(proxy, warnings)),
        "policies": merge_policies(None, render_proxy_policy(proxy, warnings)),
    }


def test_seed_corporate_proxy_renders_for_every_consumer():
    proxy = settings_with()
    out = render_all(proxy)
    assert 'http_proxy="http://proxy.corp:8080"' in out["environment"]
    assert "export HTTPS_PROXY='http://proxy.corp:8080'" in out["profile"]
    assert "export no_proxy='localhost,127.0.0.1,::1,.corp.example,10.0.0.0/8'" in out["profile"]
    assert 'Acquire::http::Proxy "http://proxy.corp:8080";' in out["apt"]
    assert 'Acquire::http::Proxy::localhost "DIRECT";' in out["apt"]
    assert 'Acquire::https::Proxy::127.0.0.1 "DIRECT";' in out["apt"]
    assert '[http "https://*.corp.example"]' in out["git"]
    policy = json.loads(out["policies"])["policies"]["Proxy"]
    assert policy == {"Mode": "manual", "Locked": False, "HTTPProxy": "proxy.corp:8080", "SSLProxy": "proxy.corp:8080",
                      "SOCKSProxy": "127.0.0.1:3128", "SOCKSVersion": 5, "UseProxyForDNS": True,
                      "UseHTTPProxyForAllProtocols": False,
                      "Passthrough": "localhost, 127.0.0.1, ::1, .corp.example, 10.0.0.0/8"}


def test_a_proxy_with_credentials_lets_the_browser_log_in_with_its_saved_login():
    warnings: list[str] = []
    policy = render_proxy_policy(settings_with(username="CORP\\alice", password="p w"), warnings)
    assert policy["AutoLogin"] is True and "p w" not in json.dumps(policy)
    assert any(w.startswith("firefox/thunderbird: the Proxy policy has no credentials") for w in warnings)
    assert "AutoLogin" not in render_proxy_policy(settings_with(), [])


def test_no_proxy_is_normalised_per_consumer_with_warnings():
    proxy = settings_with()
    warnings: list[str] = []
    render_apt(proxy, warnings)
    render_wget_lines(proxy, warnings)
    render_git_lines(proxy, warnings)
    assert any(w.startswith("no_proxy: apt") and ".corp.example" in w and "10.0.0.0/8" in w for w in warnings)
    assert any(w.startswith("no_proxy: wget") and "10.0.0.0/8" in w for w in warnings)
    assert "no_proxy = localhost,127.0.0.1,::1,.corp.example" in render_wget_lines(proxy, [])
    # CIDR stays where the consumer understands it: the environment (curl, requests) and Firefox.
    assert "10.0.0.0/8" in dict(proxy.env)["no_proxy"]
    assert settings_with(no_proxy=["*.corp.example", "10.1.2.3/8"]).no_proxy[0].value == ".corp.example"
    assert settings_with(no_proxy=["10.1.2.3/8"]).no_proxy[0].value == "10.0.0.0/8"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"http_proxy": "ftp://proxy:21"}, "http_proxy"),
        ({"http_proxy": "http://u:p@proxy:8080"}, "http_proxy"),
        ({"http_proxy": "http://proxy:0"}, "http_proxy"),
        ({"http_proxy": "http://proxy:8080/path"}, "http_proxy"),
        ({"https_proxy": "http://pro xy:8080"}, "https_proxy"),
        ({"socks_proxy": "http://127.0.0.1:3128"}, "socks_proxy"),
        ({"no_proxy": ["ok", "a b"]}, "no_proxy[1]"),
        ({"no_proxy": ["10.0.0.0/33"]}, "no_proxy[0]"),
        ({"no_proxy": ['x"y']}, "no_proxy[0]"),
        ({"username": "u\nx"}, "username"),
        ({"username": "u", "password": "p\r"}, "password"),
        ({"password": "p"}, "password"),
        ({"targets": ["environment", "chrome"]}, "targets[1]"),
        ({"http_proxy": None, "https_proxy": None, "socks_proxy": None}, "http_proxy"),
        ({"browser_mode": "autoConfig"}, "browser_autoconfig_url"),
    ],
)
def test_bad_input_names_the_field(changes, field):
    with pytest.raises(ProxyError) as error:
        settings_with(**changes)
    assert error.value.field == field


def test_credentials_are_percent_encoded_and_masked():
    proxy = settings_with(username="dom\\user", password="p@ss:w/rd%#;\"'")
    url = proxy.url(proxy.http)
    parts = urlsplit(url)
    assert unquote(parts.username) == "dom\\user" and unquote(parts.password) == "p@ss:w/rd%#;\"'"
    docker = render_docker(proxy)
    assert "p%%40ss" in docker  # systemd specifiers: % doubled in unit files
    plan = Plan(FakeModule("/nonexistent"), secrets=proxy.secrets)
    for text in render_all(proxy).values():
        masked = plan.mask(text)
        assert "p%40ss" not in masked and "p@ss" not in masked


# Every field a user controls, with text that tries to end a line, a quoted string, a section or a list.
HOSTILE = st.text(alphabet=st.sampled_from(list("ab:/@.[]\"'=;#,% \t\r\n\\$`{}*") + ["\x00", "\u2028", "é"]),
                  min_size=1, max_size=12)


def line_shapes(text: str) -> list[str]:
    return [re.sub(r"[^\n]", "", line) for line in text.splitlines()]


@settings(max_examples=300, deadline=None)
@given(username=HOSTILE, password=HOSTILE, no_proxy=st.lists(HOSTILE, max_size=3), host=HOSTILE)
def test_no_field_injects_lines_or_delimiters_into_any_format(username, password, no_proxy, host):
    try:
        proxy = settings_with(username=username, password=password, no_proxy=no_proxy,
                              http_proxy=f"http://{host}:8080")
    except ProxyError:
        return
    reference = render_all(settings_with(username="u", password="p", no_proxy=["x"] * len(proxy.no_proxy),
                                         http_proxy="http://h:8080"))
    for name, text in render_all(proxy).items():
        assert len(text.splitlines()) == len(reference[name].splitlines()), name
    out = render_all(proxy)
    for line in out["environment"].splitlines():
        assert re.fullmatch(r'[A-Za-z_]+="[^"\\\s$`]*"', line), line
    for line in out["profile"].splitlines()[2:]:
        assert re.fullmatch(r"export [A-Za-z_]+='[^'\s]*'", line), line
    assignments = shlex.split(out["systemd"].splitlines()[-1].split("=", 1)[1])
    assert len(assignments) == len(proxy.env)
    for line in out["apt"].splitlines()[1:]:
        assert re.fullmatch(r'Acquire::\S+ "[^"\s]*";', line), line
    pip = configparser.ConfigParser(interpolation=None)
    pip.read_string(out["pip"])
    parts = urlsplit(pip["global"]["proxy"])
    assert unquote(parts.username) == username and unquote(parts.password) == password
    document = json.loads(out["policies"])
    assert set(document["policies"]) == {"Proxy"}


def test_managed_block_merge_is_idempotent_and_removal_restores_the_file():
    original = "# admin settings\n[global]\ntimeout = 10\n[install]\nuser = false\n"
    merged = merge_block(original, ["proxy = http://p:1"], "global")
    assert merged.count("[global]") == 1
    assert merged.index(BEGIN) > merged.index("[global]") and merged.index(END) < merged.index("[install]")
    assert merge_block(merged, ["proxy = http://p:1"], "global") == merged
    changed = merge_block(merged, ["proxy = http://q:2"], "global")
    assert "http://p:1" not in changed and changed.count(BEGIN) == 1
    assert remove_block(changed) == original
    created = merge_block(None, ["proxy = x"], "global")
    assert created.startswith(BEGIN) and "[global]" in created and remove_block(created) == ""
    assert remove_block("no newline at end") == "no newline at end"


def test_policies_merge_keeps_other_policies_and_absent_removes_only_proxy():
    original = json.dumps({"policies": {"DisableTelemetry": True, "Proxy": {"Mode": "none"}}, "comment": 1})
    merged = json.loads(merge_policies(original, {"Mode": "system", "Locked": True}))
    assert merged["policies"]["DisableTelemetry"] is True and merged["comment"] == 1
    assert merged["policies"]["Proxy"] == {"Mode": "system", "Locked": True}
    removed = json.loads(merge_policies(json.dumps(merged), None))
    assert removed == {"policies": {"DisableTelemetry": True}, "comment": 1}
    assert merge_policies(merge_policies(None, {"Mode": "none", "Locked": False}), None) is None
    with pytest.raises(ProxyError):
        merge_policies("[1, 2]", None)


@pytest.mark.parametrize(("mode", "keys"), [("system", {"Mode", "Locked"}), ("none", {"Mode", "Locked"}),
                                            ("autoConfig", {"Mode", "Locked", "AutoConfigURL"})])
def test_browser_modes(mode, keys):
    proxy = settings_with(browser_mode=mode, browser_autoconfig_url="http://wpad.corp.example/proxy.pac")
    assert set(render_proxy_policy(proxy, [])) == keys
