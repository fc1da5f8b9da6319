"""client_session's plan against a fake root: the four steps for every format, the masked diff, the Include of
~/.ssh/config, and confinement to the owner's home (symlinked ~/.ssh, ~/.ssh/config.d, ~/.putty; a given path
outside the home)."""
from __future__ import annotations

import os

import pytest

from ansible_collections.netreach.tunnels.plugins.module_utils._engine import Plan
from ansible_collections.netreach.tunnels.plugins.module_utils._session import parse_session
from ansible_collections.netreach.tunnels.plugins.module_utils._session_apply import plan_session
from fakehost import Failed, FakeModule, snapshot

OWNER, HOME = "root", "/root"  # the unit tests run as root; the plan compares owners with it
PASSWORD = "Row:pw@1 %x"


def params(fmt: str, **changes) -> dict:
    return {"name": "repo news" if fmt != "openssh" else "repo", "host": "proxy-repo", "port": 22, "user": "lab",
            "proxy": {"type": "http", "host": "proxy-proxy", "port": 8080, "username": None, "password": None},
            "tunnel": None, "local_forwards": [], "remote_forwards": [], "dynamic_forwards": ["3128"],
            "identity_file": None, "format": fmt, "path": None, "reg_path": None, "owner": OWNER, "state": "present",
            **changes}


def run(tmp_path, spec: dict, check_mode: bool = False) -> dict:
    session = parse_session(spec, spec["format"]) if spec["state"] == "present" else None
    module = FakeModule(tmp_path, check_mode=check_mode)
    plan = Plan(module, secrets=session.secrets if session else [])
    path, _warnings = plan_session(plan, spec, HOME, session)
    return plan.commit(files=plan.changed_paths(), path=path)


def home(tmp_path, *parts: str):
    return tmp_path.joinpath(HOME.lstrip("/"), *parts)


@pytest.mark.parametrize(("fmt", "files"), [
    ("openssh", [".ssh/config.d/netreach-repo.conf", ".ssh/config"]),
    ("putty", [".putty/sessions/repo%20news", ".putty/netreach-repo%20news.reg"]),
    ("winscp", ["WinSCP.ini"]),
])
def test_each_format_goes_through_the_four_steps_and_absent_takes_back_exactly_its_files(tmp_path, fmt, files):
    spec = params(fmt)
    home(tmp_path).mkdir(parents=True)
    before = snapshot(str(tmp_path))
    first = run(tmp_path, spec, check_mode=True)
    assert snapshot(str(tmp_path)) == before
    applied, again, rerun = run(tmp_path, spec), run(tmp_path, spec, check_mode=True), run(tmp_path, spec)
    assert first["changed"] and applied["changed"] and not again["changed"] and not rerun["changed"]
    assert set(first) == set(applied) == set(again)
    assert first["files"] == applied["files"] == [f"{HOME}/{name}" for name in files]
    for name in files:
        assert os.stat(home(tmp_path, name)).st_mode & 0o777 == 0o600
    gone = run(tmp_path, {**spec, "state": "absent"})
    assert gone["changed"] and sorted(gone["files"]) == sorted(f"{HOME}/{name}" for name in files)
    assert not any(home(tmp_path, name).exists() for name in files)
    assert not run(tmp_path, {**spec, "state": "absent"})["changed"]


def test_the_putty_diff_masks_the_proxy_password(tmp_path):
    spec = params("putty", proxy={"type": "socks4", "host": "proxy-proxy", "port": 1080, "username": "CORP\\alice",
                                  "password": PASSWORD})
    result = run(tmp_path, spec, check_mode=True)
    shown = result["diff"]["after"]
    assert "ProxyPassword=********" in shown and PASSWORD not in shown and "ProxyMethod=1" in shown


def test_openssh_keeps_the_include_while_another_session_of_ours_remains(tmp_path):
    home(tmp_path, ".ssh").mkdir(parents=True)
    home(tmp_path, ".ssh", "config").write_text("Host *\n    ServerAliveInterval 30\n")
    for name in ("one", "two"):
        run(tmp_path, params("openssh", name=name))
    config = home(tmp_path, ".ssh", "config").read_text()
    assert config.startswith("# BEGIN") and f"Include {HOME}/.ssh/config.d/netreach-*.conf" in config
    run(tmp_path, {**params("openssh", name="one"), "state": "absent"})
    assert "Include" in home(tmp_path, ".ssh", "config").read_text()
    run(tmp_path, {**params("openssh", name="two"), "state": "absent"})
    assert home(tmp_path, ".ssh", "config").read_text() == "Host *\n    ServerAliveInterval 30\n"
    assert not list(home(tmp_path, ".ssh", "config.d").iterdir())


@pytest.mark.parametrize(("fmt", "link"), [("openssh", ".ssh"), ("openssh", ".ssh/config.d"), ("putty", ".putty"),
                                           ("putty", ".putty/sessions")])
@pytest.mark.parametrize("state", ["present", "absent"])
def test_a_symlinked_directory_in_the_home_is_refused_naming_the_field(tmp_path, fmt, link, state):
    victim = tmp_path / "srv" / "victim"
    victim.mkdir(parents=True)
    (victim / "netreach-repo.conf").write_text("not ours\n")
    (victim / "repo%20news").write_text("not ours\n")
    home(tmp_path, link).parent.mkdir(parents=True, exist_ok=True)
    home(tmp_path, link).symlink_to(victim)
    before = snapshot(str(tmp_path))
    with pytest.raises(Failed) as failed:
        run(tmp_path, {**params(fmt), "state": state})
    assert failed.value.result["field"] == "name"  # the default paths are made from the name
    assert "symbolic link" in failed.value.result["msg"] and f"{HOME}/{link.split('/')[0]}" in failed.value.result["msg"]
    assert snapshot(str(tmp_path)) == before


@pytest.mark.parametrize(("field", "value"), [("path", "/etc/ssh/ssh_config.d/x.conf"), ("path", "/root/../etc/x"),
                                              ("path", "/root"), ("path", "relative/x"), ("reg_path", "/tmp/x.reg")])
@pytest.mark.parametrize("state", ["present", "absent"])
def test_a_given_path_outside_the_owners_home_is_refused_naming_the_field(tmp_path, field, value, state):
    spec = {**params("putty" if field == "reg_path" else "winscp"), field: value, "state": state}
    before = snapshot(str(tmp_path))
    with pytest.raises(Failed) as failed:
        run(tmp_path, spec)
    assert failed.value.result["field"] == field
    assert snapshot(str(tmp_path)) == before


def test_a_symlinked_directory_on_a_given_path_is_refused_naming_that_field(tmp_path):
    victim = tmp_path / "srv" / "victim"
    victim.mkdir(parents=True)
    home(tmp_path).mkdir(parents=True)
    home(tmp_path, "profiles").symlink_to(victim)
    before = snapshot(str(tmp_path))
    with pytest.raises(Failed) as failed:
        run(tmp_path, {**params("winscp"), "path": f"{HOME}/profiles/WinSCP.ini"})
    assert failed.value.result["field"] == "path" and "symbolic link" in failed.value.result["msg"]
    assert snapshot(str(tmp_path)) == before


def test_a_given_path_below_the_home_is_written_there(tmp_path):
    result = run(tmp_path, {**params("winscp"), "path": f"{HOME}/profiles/WinSCP.ini"})
    assert result["path"] == f"{HOME}/profiles/WinSCP.ini" and home(tmp_path, "profiles", "WinSCP.ini").exists()


# --- pinned host keys ----------------------------------------------------------------------------------------

KEY = "AAAAC3NzaC1lZDI1NTE5AAAAIHo3AHjIuHszXOGnyGddz/nLsSXEp4d+j5UqpEw1cdwr"
PINNED = [f"[proxy-repo]:443 ssh-ed25519 {KEY}", f"proxy-proxy ssh-ed25519 {KEY}"]


@pytest.mark.parametrize(("fmt", "files"), [
    ("openssh", [".ssh/config.d/netreach-repo.known_hosts", ".ssh/config.d/netreach-repo.conf", ".ssh/config"]),
    ("putty", [".putty/sessions/repo%20news", ".putty/netreach-repo%20news.reg", ".putty/sshhostkeys"]),
    ("winscp", ["WinSCP.ini"]),
])
def test_pinned_keys_go_where_each_client_reads_them_in_four_steps_and_absent_takes_them_back(tmp_path, fmt, files):
    spec = params(fmt, port=443, known_hosts=PINNED,
                  tunnel={"host": "proxy-proxy", "port": 22, "user": "lab"} if fmt != "putty" else None)
    home(tmp_path, ".putty").mkdir(parents=True)
    home(tmp_path, ".putty", "sshhostkeys").write_text("rsa2@22:elsewhere 0x10001,0xabc\n")
    before = snapshot(str(tmp_path))
    first = run(tmp_path, spec, check_mode=True)
    assert snapshot(str(tmp_path)) == before
    applied, again, rerun = run(tmp_path, spec), run(tmp_path, spec, check_mode=True), run(tmp_path, spec)
    assert first["changed"] and applied["changed"] and not again["changed"] and not rerun["changed"]
    assert first["files"] == applied["files"] == [f"{HOME}/{name}" for name in files]
    if fmt == "openssh":
        assert home(tmp_path, files[0]).read_text() == "".join(f"{line}\n" for line in PINNED)
        config = home(tmp_path, files[1]).read_text()
        assert config.count(f"    UserKnownHostsFile {HOME}/{files[0]}\n") == 2  # the tunnel host's block and the host's
        assert config.count("    StrictHostKeyChecking yes\n") == 2 and "GlobalKnownHostsFile /dev/null" in config
    elif fmt == "putty":
        hostkeys = home(tmp_path, files[2]).read_text()
        assert "\nssh-ed25519@443:proxy-repo 0x" in hostkeys and hostkeys.endswith("rsa2@22:elsewhere 0x10001,0xabc\n")
        assert "@22:proxy-proxy" not in hostkeys  # PuTTY's session here has no tunnel host
        reg = home(tmp_path, files[1]).read_bytes().decode()
        assert "\r\n[HKEY_CURRENT_USER\\Software\\SimonTatham\\PuTTY\\SshHostKeys]\r\n\"ssh-ed25519@443:proxy-repo\"=\"0x" in reg
    else:
        ini = home(tmp_path, files[0]).read_bytes().decode()
        assert "\r\nHostKey=ssh-ed25519%20255%20" in ini and "\r\nTunnelHostKey=ssh-ed25519%20255%20" in ini
    gone = run(tmp_path, {**spec, "state": "absent"})
    assert gone["changed"]
    for name in files:
        assert not home(tmp_path, name).exists() or name == ".putty/sshhostkeys"
    assert home(tmp_path, ".putty", "sshhostkeys").read_text() == "rsa2@22:elsewhere 0x10001,0xabc\n"
    assert not run(tmp_path, {**spec, "state": "absent"})["changed"]


def test_an_openssh_session_without_keys_pins_nothing_and_drops_the_file_it_had(tmp_path):
    home(tmp_path).mkdir(parents=True)
    run(tmp_path, params("openssh", port=443, known_hosts=PINNED[:1]))
    unpinned = run(tmp_path, params("openssh", port=443, known_hosts=[]))
    assert unpinned["changed"] and not home(tmp_path, ".ssh", "config.d", "netreach-repo.known_hosts").exists()
    assert "UserKnownHostsFile" not in home(tmp_path, ".ssh", "config.d", "netreach-repo.conf").read_text()


def test_a_symlinked_putty_hostkeys_file_is_refused_and_nothing_changes(tmp_path):
    home(tmp_path, ".putty").mkdir(parents=True)
    (tmp_path / "elsewhere").write_text("")
    home(tmp_path, ".putty", "sshhostkeys").symlink_to(tmp_path / "elsewhere")
    before = snapshot(str(tmp_path))
    with pytest.raises(Failed) as failure:
        run(tmp_path, params("putty", known_hosts=[f"proxy-repo ssh-ed25519 {KEY}"]))
    assert failure.value.result.get("field") == "name", failure.value.result
    assert snapshot(str(tmp_path)) == before
