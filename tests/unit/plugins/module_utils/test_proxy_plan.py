"""client_proxy's plan against a fake root: the four steps, the masked diff, confinement, the consumers' read-backs
(each answered by a fake consumer that reads what the plan wrote, as the real one would) and systemd's `%%`."""
from __future__ import annotations

import json
import os
import re
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.netreach.tunnels.plugins.module_utils._proxy import TARGETS, parse_proxy_settings, render_systemd
from ansible_collections.netreach.tunnels.plugins.module_utils import _proxy_apply
from ansible_collections.netreach.tunnels.plugins.module_utils._proxy_apply import plan_proxy
from fakehost import Failed, FakeModule, snapshot, systemctl_show, unit_properties

PASSWORD = 'p%4 0@:#;"/&?x'  # every URL-special character, a space and a percent-encoding lookalike
PARAMS = dict(http_proxy="http://proxy.corp:8080", https_proxy="http://proxy.corp:8080", socks_proxy=None,
              no_proxy=["localhost", ".corp.example"], username="CORP\\alice", password=PASSWORD,
              targets=list(TARGETS), browser_mode="manual", browser_autoconfig_url=None, browser_locked=False)
SYSTEMD_DROP_IN = "etc/systemd/system.conf.d/netreach-proxy.conf"


def systemd_words(line: str) -> list[str]:
    """DefaultEnvironment="A=1" "B=2" as systemd splits it: double quotes, backslash escapes."""
    return [re.sub(r"\\(.)", r"\1", word) for word in re.findall(r'"((?:[^"\\]|\\.)*)"', line)]


def systemd_specifiers(value: str) -> str | None:
    """VALUE after systemd's specifier expansion: "%%" is "%"; any other "%x" is unknown here and the whole
    assignment is dropped (None), which is what hides a percent-encoded password today."""
    out, i = [], 0
    while i < len(value):
        if value[i] == "%":
            if value[i + 1:i + 2] != "%":
                return None
            out.append("%")
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def manager_environment(root: str) -> dict[str, str]:
    """What systemd's manager would hold after daemon-reexec, read from the drop-in in the fake root."""
    path = os.path.join(root, SYSTEMD_DROP_IN)
    env: dict[str, str] = {}
    if not os.path.exists(path):
        return env
    with open(path, encoding="utf-8") as stream:
        for line in stream:
            if line.startswith("DefaultEnvironment="):
                for word in systemd_words(line.split("=", 1)[1]):
                    value = systemd_specifiers(word)
                    if value is not None:
                        name, _sep, value = value.partition("=")
                        env[name] = value
    return env


def fake_consumers(root: str, env_override: dict | None = None) -> dict:
    """Answers of the consumers' own readers, taken from the files in the fake root."""
    def read(path: str) -> str:
        full = os.path.join(root, path)
        return open(full, encoding="utf-8").read() if os.path.exists(full) else ""

    def show_environment(_args):
        env = {**manager_environment(root), **(env_override or {})}
        return 0, "".join(f"{name}={value}\n" for name, value in env.items()), ""

    def git(_args):
        match = re.search(r"^\[http\]\n\tproxy = (.*)$", read("etc/gitconfig"), re.M)
        return (0, match.group(1) + "\n", "") if match else (1, "", "")

    def npm(_args):
        return 0, "".join(line + "\n" for line in read("etc/npmrc").splitlines() if "proxy=" in line), ""

    def pip(_args):
        match = re.search(r"^proxy = (.*)$", read("etc/pip.conf"), re.M)
        return 0, f"global.proxy={match.group(1)!r}\n" if match else "", ""

    return {("systemctl", "show-environment"): show_environment, ("apt-config", "dump"):
            lambda _args: (0, read("etc/apt/apt.conf.d/80netreach-proxy"), ""),
            ("git", "config", "--system"): git, ("npm", "config", "get"): npm, ("pip3", "config", "list"): pip,
            ("npm", "--version"): (0, "9.2.0\n", ""),  # Debian's; npm 10 and later hide a proxy with credentials
            ("systemctl", "list-unit-files"): (0, "docker.service enabled enabled\n", ""),
            # A unit of ours runs, enabled, once its file is there (the hop's, with auth ntlm).
            ("systemctl", "show"): systemctl_show(lambda unit: unit_properties(*[bool(read(f"etc/systemd/system/{unit}"))] * 2))}


def prepare(tmp_path) -> None:
    """A host with a running systemd manager (/run/systemd/system) and an /etc."""
    (tmp_path / "run" / "systemd" / "system").mkdir(parents=True, exist_ok=True)
    (tmp_path / "etc").mkdir(exist_ok=True)


def run(tmp_path, params=None, check_mode=False, state="present", env_override=None) -> tuple[dict, FakeModule]:
    params = dict(PARAMS if params is None else params)
    prepare(tmp_path)
    module = FakeModule(tmp_path, check_mode=check_mode, answers=fake_consumers(str(tmp_path), env_override))
    settings = parse_proxy_settings(params) if state == "present" else None
    layers = tuple(dict.fromkeys(params["targets"]))
    return plan_proxy(module, settings, layers), module


def test_every_layer_goes_through_the_four_steps_and_the_consumers_see_it(tmp_path):
    results = [run(tmp_path, check_mode=check)[0] for check in (True, False, True, False)]
    first, applied, again, rerun = results
    assert first["changed"] and applied["changed"] and not again["changed"] and not rerun["changed"]
    assert set(first) == set(applied) == set(again)
    assert first["files"] == applied["files"] and "/etc/gitconfig" in applied["files"]
    env = manager_environment(str(tmp_path))
    assert unquote(urlsplit(env["http_proxy"]).password) == PASSWORD
    assert oct(os.stat(tmp_path / SYSTEMD_DROP_IN).st_mode & 0o777) == "0o600"


def test_check_mode_changes_nothing_and_runs_no_consumer(tmp_path):
    prepare(tmp_path)
    before = snapshot(str(tmp_path))
    result, module = run(tmp_path, check_mode=True)
    assert result["changed"] and result["files"]
    assert snapshot(str(tmp_path)) == before
    ran = [args[:2] for args in module.commands]
    assert ["systemctl", "show-environment"] not in ran and ["systemctl", "daemon-reexec"] not in ran


def test_the_diff_masks_every_spelling_of_the_password(tmp_path):
    result, _module = run(tmp_path, check_mode=True)
    shown = result["diff"]["before"] + result["diff"]["after"]
    assert "********" in shown
    for spelling in (PASSWORD, "p%254%200%40%3A%23%3B%22%2F%26%3Fx", "p%%254%%200%%40"):
        assert spelling not in shown


def test_the_manager_is_re_executed_and_docker_restarted_only_when_their_drop_ins_changed(tmp_path):
    _result, module = run(tmp_path)
    assert ["systemctl", "daemon-reexec"] in module.commands
    assert ["systemctl", "try-restart", "docker.service"] in module.commands
    _result, again = run(tmp_path)
    assert ["systemctl", "daemon-reexec"] not in again.commands
    assert ["systemctl", "try-restart", "docker.service"] not in again.commands
    # The read-backs are the last steps, of every real run, in the order of the layers.
    assert [args[:3] for args in again.commands[-5:]] == [
        ["systemctl", "show-environment"], ["apt-config", "dump"], ["git", "config", "--system"],
        ["pip3", "config", "list"], ["npm", "config", "get"]]


def test_a_consumer_that_sees_something_else_fails_naming_the_layer_with_the_password_masked(tmp_path):
    wrong = {"http_proxy": f"http://CORP%5Calice:{PASSWORD}@elsewhere:3128"}
    with pytest.raises(Failed) as failed:
        run(tmp_path, env_override=wrong)
    assert failed.value.result["field"] == "systemd"
    assert "systemd" in failed.value.result["msg"] and "http_proxy" in failed.value.result["msg"]
    assert PASSWORD not in failed.value.result["msg"]


def test_an_unescaped_percent_is_caught_by_the_systemd_read_back(tmp_path, monkeypatch):
    """Yesterday's rendering replayed: systemd drops the assignment, the read-back sees no http_proxy and fails."""
    monkeypatch.setattr(_proxy_apply, "render_systemd", lambda settings: render_systemd(settings).replace("%%", "%"))
    with pytest.raises(Failed) as failed:
        run(tmp_path, params={**PARAMS, "targets": ["systemd"]})
    assert failed.value.result["field"] == "systemd"
    assert "http_proxy is None" in failed.value.result["msg"]
    assert PASSWORD not in failed.value.result["msg"]


def test_npm_10_and_later_are_not_asked_for_a_proxy_with_credentials(tmp_path):
    prepare(tmp_path)
    module = FakeModule(tmp_path, answers={**fake_consumers(str(tmp_path)), ("npm", "--version"): (0, "11.19.1\n", "")})
    plan_proxy(module, parse_proxy_settings(PARAMS), ("npm",))
    assert not [args for args in module.commands if args[:2] == ["npm", "config"]]
    plan_proxy(module, parse_proxy_settings({**PARAMS, "username": None, "password": None}), ("npm",))
    assert module.commands[-1][:5] == ["npm", "config", "get", "proxy", "https-proxy"]


@given(st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=40))
def test_any_password_round_trips_through_systemds_unescaping(password):
    settings = parse_proxy_settings({**PARAMS, "password": password})
    line = next(line for line in render_systemd(settings).splitlines() if line.startswith("DefaultEnvironment="))
    env = {}
    for word in systemd_words(line.split("=", 1)[1]):
        value = systemd_specifiers(word)
        assert value is not None, f"systemd would drop {word!r}"
        name, _sep, value = value.partition("=")
        env[name] = value
    assert unquote(urlsplit(env["http_proxy"]).password) == password
    assert unquote(urlsplit(env["HTTPS_PROXY"]).username) == "CORP\\alice"


@pytest.mark.parametrize(("link", "to_directory"), [
    ("etc/gitconfig", False), ("etc/firefox/policies/policies.json", False), ("etc/systemd/system.conf.d", True),
    ("etc/sudoers.d", True),
])
def test_a_symlinked_target_is_refused_and_never_followed(tmp_path, link, to_directory):
    victim = tmp_path / "srv" / "victim"
    victim.mkdir(parents=True)
    (victim / "keep").write_text("{}\n")
    path = tmp_path / link
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(victim if to_directory else victim / "keep")
    prepare(tmp_path)
    before = snapshot(str(tmp_path))
    for state in ("present", "absent"):
        with pytest.raises(Failed) as failed:
            run(tmp_path, state=state)
        assert failed.value.result["field"] == "targets"
        assert "symbolic link" in failed.value.result["msg"]
        assert snapshot(str(tmp_path)) == before


def test_absent_removes_only_our_blocks_and_files(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "environment").write_text("LANG=C.UTF-8\n")
    (tmp_path / "etc" / "gitconfig").write_text("[user]\n\tname = admin\n")
    run(tmp_path)
    result, module = run(tmp_path, state="absent")
    assert result["changed"]
    assert (tmp_path / "etc" / "environment").read_text() == "LANG=C.UTF-8\n"
    assert (tmp_path / "etc" / "gitconfig").read_text() == "[user]\n\tname = admin\n"
    assert not (tmp_path / SYSTEMD_DROP_IN).exists() and not (tmp_path / "etc" / "sudoers.d" / "netreach-proxy").exists()
    assert not [args for args in module.commands if args[:2] == ["systemctl", "show-environment"]]
    assert not run(tmp_path, state="absent")[0]["changed"]


def git_decoded(value: str, times: int) -> str:
    for _time in range(times):
        value = unquote(value)
    return value


@pytest.mark.parametrize(("version", "decodes"), [("git version 2.39.5\n", 2), ("git version 2.47.3\n", 1)])
def test_git_gets_credentials_encoded_for_as_many_decodes_as_its_version_does(tmp_path, version, decodes):
    """With proxyAuthMethod=basic, git 2.39.5 (Debian 12) percent-decodes proxy credentials twice (three times with
    anyauth), 2.47.3 (Debian 13) once: a password holding "%41" must reach the proxy as "%41", not "A"."""
    prepare(tmp_path)
    password = "Pct%41 @:#;\"/&?x"
    module = FakeModule(tmp_path, answers={**fake_consumers(str(tmp_path)), ("git", "--version"): (0, version, "")})
    result = plan_proxy(module, parse_proxy_settings({**PARAMS, "password": password}), ("git",))
    assert not result.get("failed") and password not in json.dumps(result)
    written = re.search(r"^\tproxy = (.*)$", (tmp_path / "etc" / "gitconfig").read_text(), re.M).group(1)
    userinfo = written.split("://", 1)[1].rsplit("@", 1)[0]
    user, secret = (git_decoded(part, decodes) for part in userinfo.split(":", 1))
    assert (user, secret) == (PARAMS["username"], password)
    # Basic from the first request: with anyauth, git's dumb-HTTP object fetches met Squid's 407 unanswered.
    assert "\tproxyAuthMethod = basic\n" in (tmp_path / "etc" / "gitconfig").read_text()
    assert "********" in json.dumps(result["diff"]) or not result["diff"]


def test_credentials_without_a_percent_are_written_for_git_as_for_every_layer(tmp_path):
    prepare(tmp_path)
    module = FakeModule(tmp_path, answers={**fake_consumers(str(tmp_path)), ("git", "--version"): (0, "git version 2.39.5", "")})
    plan_proxy(module, parse_proxy_settings({**PARAMS, "password": "plain-pass-word"}), ("git",))
    assert "\tproxy = http://" in (tmp_path / "etc" / "gitconfig").read_text()
    assert ["git", "--version"] not in module.commands


def test_a_root_owned_link_for_firefox_distribution_directory_is_followed(tmp_path):
    """Debian's firefox-esr ships /usr/lib/firefox-esr/distribution as a link to /usr/share/firefox-esr/distribution:
    removing the Proxy policy must look there, not fail on the link."""
    prepare(tmp_path)
    (tmp_path / "usr" / "share" / "firefox-esr" / "distribution").mkdir(parents=True)
    (tmp_path / "usr" / "lib" / "firefox-esr").mkdir(parents=True, exist_ok=True)
    (tmp_path / "usr" / "lib" / "firefox-esr" / "distribution").symlink_to("../../share/firefox-esr/distribution")
    result, _module = run(tmp_path, params={**PARAMS, "targets": ["firefox"]}, state="absent")
    assert not result.get("failed"), result


# --- auth ntlm: the local hop (cntlm) ---------------------------------------------------------------------

NTLM = dict(PARAMS, auth="ntlm", domain=None, hop_port=3130)
HOP_CONFIG = "etc/netreach/proxy-hop/cntlm.conf"
HOP_UNIT = "etc/systemd/system/netreach-proxy-hop.service"


@pytest.fixture
def hop_host(tmp_path, monkeypatch):
    """A host with cntlm installed; the hop's user stands in as an account every Debian host has."""
    (tmp_path / "usr" / "sbin").mkdir(parents=True)
    (tmp_path / "usr" / "sbin" / "cntlm").write_text("")
    monkeypatch.setattr(_proxy_apply, "HOP_USER", "daemon")
    return tmp_path


def test_ntlm_runs_the_hop_and_every_layer_points_at_it_through_the_four_steps(hop_host):
    first, module = run(hop_host, NTLM, check_mode=True)
    assert first["changed"] and not (hop_host / HOP_CONFIG).exists() and \
        not any(args[:2] == ["systemctl", "start"] for args in module.commands)
    applied, module = run(hop_host, NTLM)
    assert applied["changed"] and ["systemctl", "start", "netreach-proxy-hop.service"] in module.commands
    assert ["systemctl", "enable", "netreach-proxy-hop.service"] in module.commands
    assert module.commands.index(["systemctl", "daemon-reload"]) < \
        module.commands.index(["systemctl", "start", "netreach-proxy-hop.service"])
    assert oct((hop_host / HOP_CONFIG).stat().st_mode & 0o777) == "0o600"
    assert oct((hop_host / "etc/netreach/proxy-hop").stat().st_mode & 0o777) == "0o700"
    assert (hop_host / HOP_UNIT).read_text().count("ExecStart=/usr/sbin/cntlm -f -c ") == 1
    assert manager_environment(str(hop_host))["http_proxy"] == "http://127.0.0.1:3130"
    # The password lives only in the hop's configuration, and only as its hash.
    for path in hop_host.rglob("*"):
        if path.is_file():
            assert PASSWORD not in path.read_text(errors="replace"), path
            assert "alice" not in path.read_text(errors="replace") or str(path).endswith(HOP_CONFIG), path
    again, _module = run(hop_host, NTLM, check_mode=True)
    rerun, module = run(hop_host, NTLM)
    assert not again["changed"] and not rerun["changed"]
    assert not any(args[:2] in (["systemctl", "start"], ["systemctl", "restart"]) for args in module.commands)


def test_the_diff_of_an_ntlm_run_shows_neither_the_password_nor_its_hash(hop_host):
    result, _module = run(hop_host, NTLM, check_mode=True)
    from ansible_collections.netreach.tunnels.plugins.module_utils._proxy import parse_proxy_settings as parse
    shown = json.dumps(result)
    assert PASSWORD not in shown and parse(NTLM).hop.hash not in shown


def test_a_new_password_restarts_the_hop_and_basic_or_absent_takes_it_away(hop_host):
    run(hop_host, NTLM)
    changed, module = run(hop_host, dict(NTLM, password="other"))
    assert changed["changed"] and ["systemctl", "restart", "netreach-proxy-hop.service"] in module.commands
    basic, module = run(hop_host, PARAMS)
    assert basic["changed"] and ["systemctl", "disable", "--now", "netreach-proxy-hop.service"] in module.commands
    assert not (hop_host / HOP_UNIT).exists() and not (hop_host / "etc/netreach/proxy-hop").exists()
    run(hop_host, NTLM)
    gone, _module = run(hop_host, NTLM, state="absent")
    assert gone["changed"] and not (hop_host / HOP_UNIT).exists() and not (hop_host / HOP_CONFIG).exists()


def test_ntlm_without_cntlm_fails_naming_auth_before_any_change(tmp_path):
    prepare(tmp_path)
    before = snapshot(str(tmp_path))
    with pytest.raises(Failed) as failure:
        run(tmp_path, NTLM)
    assert failure.value.result["field"] == "auth" and "cntlm" in failure.value.result["msg"]
    assert snapshot(str(tmp_path)) == before
