"""The tunnel client's plans against a fake root: the four steps, the masked diff, confinement of every state."""
from __future__ import annotations

import os

import pytest

from ansible_collections.netreach.tunnels.plugins.module_utils import _tunnel_apply as apply
from ansible_collections.netreach.tunnels.plugins.module_utils._declaration import DeclarationError
from ansible_collections.netreach.tunnels.plugins.module_utils._engine import Plan
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel import parse_identity, parse_request, parse_tunnel
from fakehost import Failed, FakeModule, snapshot, systemctl_show, unit_properties

PASSWORD = "Corp-s3cret-pw"
TUNNEL = dict(
    name="news", server="newshost", port=22, user="tunnel", run_as="root", identity_file=None,
    known_hosts=["newshost ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA"], jump_hosts=[],
    proxy={"type": "http", "host": "proxy.corp", "port": 3128, "username": "alice", "password": PASSWORD},
    local_forwards=["12345:localhost:119"], remote_forwards=[], dynamic_forwards=[], engine="ssh",
    keepalive_interval=5, keepalive_count_max=3, connect_timeout=10, restart_delay=1, restart_max_delay=30,
)
HOSTILE = ["../../../root/.ssh", ".", "..", "../tunnels", " ../x", "a/b", "/etc/passwd", "/", "", "x/../../y"]
STATES = ["started", "stopped", "restarted", "present", "absent"]


class Units:
    """systemctl as the fake host answers it: a unit is active once started, enabled once enabled."""

    def __init__(self) -> None:
        self.active: set[str] = set()
        self.enabled: set[str] = set()

    def answers(self) -> dict:
        return {
            ("systemctl", "show"): systemctl_show(lambda unit: unit_properties(unit in self.active, unit in self.enabled)),
            ("systemctl", "start"): lambda args: self._record(self.active, args[-1]),
            ("systemctl", "restart"): lambda args: self._record(self.active, args[-1]),
            ("systemctl", "enable"): lambda args: self._record(self.enabled, args[-1]),
            ("ssh-keygen",): keygen,
        }

    @staticmethod
    def _record(where: set, unit: str):
        where.add(unit)
        return 0, "", ""


def keygen(args):
    path = args[args.index("-f") + 1]
    with open(path, "w", encoding="utf-8") as stream:
        stream.write("-----BEGIN OPENSSH PRIVATE KEY-----\nsecret-key\n-----END OPENSSH PRIVATE KEY-----\n")
    with open(path + ".pub", "w", encoding="utf-8") as stream:
        stream.write("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPUB netreach-tunnel-news\n")
    return 0, "", ""


def real(tmp_path, path: str) -> str:
    return os.path.join(str(tmp_path), path.lstrip("/"))


def run(tmp_path, params: dict, check: bool = False, units: Units | None = None) -> tuple[dict, FakeModule, Plan]:
    module = FakeModule(tmp_path, check_mode=check, answers=(units or Units()).answers())
    plan = Plan(module, secrets=[(params.get("proxy") or {}).get("password")])
    request = parse_request(params)
    if isinstance(request, str):
        apply.plan_removal(plan, request, params.get("remove_key", False))
    else:
        apply.plan_tunnel(plan, request, params.get("state", "started"), params.get("enabled", True))
    return plan.commit(), module, plan


def changing_commands(module: FakeModule) -> list[list[str]]:
    reads = (("systemctl", "show"), ("systemctl", "is-enabled"))
    return [args for args in module.commands if tuple(args[:2]) not in reads]


def test_a_tunnel_goes_through_the_four_steps(tmp_path):
    units = Units()
    before = snapshot(str(tmp_path))
    first, module, _plan = run(tmp_path, TUNNEL, check=True, units=units)
    assert first["changed"] and snapshot(str(tmp_path)) == before and changing_commands(module) == []
    applied, module, _plan = run(tmp_path, TUNNEL, units=units)
    assert applied["changed"] and set(first) == set(applied)
    assert ["systemctl", "start", "netreach-tunnel@news.service"] in module.commands
    again, _module, _plan = run(tmp_path, TUNNEL, check=True, units=units)
    rerun, module, _plan = run(tmp_path, TUNNEL, units=units)
    assert not again["changed"] and not rerun["changed"], again["diff"]
    assert changing_commands(module) == []
    directory = real(tmp_path, "/etc/netreach/tunnels/news")
    assert sorted(os.listdir(directory)) == ["id_ed25519", "id_ed25519.pub", "known_hosts", "proxy_auth", "ssh_config"]
    assert os.stat(os.path.join(directory, "proxy_auth")).st_mode & 0o777 == 0o600
    assert os.stat(os.path.join(directory, "id_ed25519")).st_mode & 0o777 == 0o600
    assert os.path.isfile(real(tmp_path, "/etc/systemd/system/netreach-tunnel@news.service"))
    assert os.path.isfile(real(tmp_path, "/usr/local/lib/netreach/proxy-connect"))
    # run_as passes through every level to its 0750 directory.
    for level in ("/etc/netreach", "/etc/netreach/tunnels", "/usr/local/lib/netreach"):
        assert os.stat(real(tmp_path, level)).st_mode & 0o777 == 0o755, level
    assert os.stat(directory).st_mode & 0o777 == 0o750


def test_the_diff_masks_the_proxy_password_and_never_shows_keys(tmp_path):
    result, _module, _plan = run(tmp_path, TUNNEL, check=True)
    text = str(result)
    assert PASSWORD not in text and "secret-key" not in text
    assert "LocalForward 12345 localhost:119" in result["diff"]["after"]
    applied, _module, _plan = run(tmp_path, TUNNEL)
    assert PASSWORD not in str(applied) and "secret-key" not in str(applied)
    changed = dict(TUNNEL, proxy=dict(TUNNEL["proxy"], password="Other-s3cret-pw"))
    result, _module, _plan = run(tmp_path, changed, check=True)
    assert result["changed"] and "Other-s3cret-pw" not in str(result) and PASSWORD not in str(result)


def test_a_changed_forward_restarts_a_running_tunnel_and_check_mode_says_so(tmp_path):
    units = Units()
    run(tmp_path, TUNNEL, units=units)
    moved = dict(TUNNEL, local_forwards=["12346:localhost:119"])
    result, module, _plan = run(tmp_path, moved, check=True, units=units)
    assert result["changed"] and "# systemctl restart netreach-tunnel@news.service" in result["diff"]["after"]
    assert changing_commands(module) == []


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_name_is_refused_in_every_state_naming_the_field(tmp_path, name, state):
    with pytest.raises(DeclarationError) as info:
        parse_request(dict(TUNNEL, name=name, state=state))
    assert info.value.field == "name"
    # And were it to reach the plan, the plan refuses it too: nothing is built from it.
    with pytest.raises(DeclarationError):
        apply.plan_removal(Plan(FakeModule(tmp_path)), name, True)


def populate(tmp_path) -> dict:
    """A tunnel on the host, a victim directory outside, and what the host looked like."""
    run(tmp_path, TUNNEL)
    victim = tmp_path / "srv" / "data"
    victim.mkdir(parents=True)
    (victim / "precious").write_text("keep me\n")
    (tmp_path / "root" / ".ssh").mkdir(parents=True)
    (tmp_path / "root" / ".ssh" / "authorized_keys").write_text("ssh-ed25519 AAAA admin\n")
    return {"victim": victim}


def swap_for_link(path, destination) -> None:
    path = str(path)
    if os.path.isdir(path) and not os.path.islink(path):
        os.rename(path, path + ".moved")
    elif os.path.lexists(path):
        os.unlink(path)
    os.symlink(str(destination), path)


LEVELS = {
    "netreach": "etc/netreach",
    "tunnels": "etc/netreach/tunnels",
    "tunnel directory": "etc/netreach/tunnels/news",
    "a file in it": "etc/netreach/tunnels/news/ssh_config",
    "the unit file": "etc/systemd/system/netreach-tunnel@news.service",
}


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("level", sorted(LEVELS))
def test_a_symlink_at_every_level_is_refused_in_every_state(tmp_path, level, state):
    where = populate(tmp_path)
    swap_for_link(tmp_path / LEVELS[level], where["victim"] if level != "a file in it" else where["victim"] / "precious")
    before = snapshot(str(tmp_path))
    with pytest.raises(Failed) as failure:
        run(tmp_path, dict(TUNNEL, state=state, remove_key=True))
    assert failure.value.result["field"] == "name", failure.value.result
    assert "symbolic link" in failure.value.result["msg"]
    assert snapshot(str(tmp_path)) == before
    assert (where["victim"] / "precious").read_text() == "keep me\n"


def test_the_reported_bug_removes_nothing_outside_the_tunnel(tmp_path):
    populate(tmp_path)
    before = snapshot(str(tmp_path))
    with pytest.raises(DeclarationError):
        run(tmp_path, {"name": "../../../root/.ssh", "state": "absent", "remove_key": True})
    assert snapshot(str(tmp_path)) == before


def test_absent_removes_the_unit_and_files_but_keeps_the_key_unless_asked(tmp_path):
    units = Units()
    run(tmp_path, TUNNEL, units=units)
    result, module, _plan = run(tmp_path, {"name": "news", "state": "absent"}, units=units)
    assert result["changed"] and ["systemctl", "disable", "--now", "netreach-tunnel@news.service"] in module.commands
    assert sorted(os.listdir(real(tmp_path, "/etc/netreach/tunnels/news"))) == ["id_ed25519", "id_ed25519.pub"]
    assert not os.path.lexists(real(tmp_path, "/etc/systemd/system/netreach-tunnel@news.service"))
    result, _module, _plan = run(tmp_path, {"name": "news", "state": "absent", "remove_key": True}, units=units)
    assert result["changed"] and not os.path.lexists(real(tmp_path, "/etc/netreach/tunnels/news"))
    result, _module, _plan = run(tmp_path, {"name": "news", "state": "absent", "remove_key": True}, units=units)
    assert not result["changed"]


def test_a_directory_that_becomes_a_link_between_plan_and_commit_is_not_followed(tmp_path):
    where = populate(tmp_path)
    module = FakeModule(tmp_path, answers=Units().answers())
    plan = Plan(module)
    apply.plan_removal(plan, "news", True)
    swap_for_link(tmp_path / "etc/netreach/tunnels/news", where["victim"])
    with pytest.raises(Failed) as failure:
        plan.commit()
    assert failure.value.result["field"] == "name"
    assert (where["victim"] / "precious").read_text() == "keep me\n"


def test_a_write_into_a_directory_that_became_a_link_is_refused(tmp_path):
    where = populate(tmp_path)
    module = FakeModule(tmp_path, answers=Units().answers())
    plan = Plan(module)
    apply.plan_tunnel(plan, parse_tunnel(dict(TUNNEL, local_forwards=["12399:localhost:119"])), "present", True)
    swap_for_link(tmp_path / "etc/netreach/tunnels/news", where["victim"])
    with pytest.raises(Failed):
        plan.commit()
    assert sorted(os.listdir(where["victim"])) == ["precious"]


def test_a_foreign_identity_file_is_only_read(tmp_path):
    key = tmp_path / "srv" / "keys"
    key.mkdir(parents=True)
    (key / "news").write_text("private\n")
    (key / "news.pub").write_text("ssh-ed25519 AAAAFOREIGN admin\n")
    os.chmod(key / "news", 0o640)
    before = snapshot(str(key))
    identity = parse_identity({"name": "news", "identity_file": "/srv/keys/news", "run_as": "root"})
    assert not identity.managed
    plan = Plan(FakeModule(tmp_path))
    apply.plan_key(plan, identity)
    result = plan.commit()
    assert snapshot(str(key)) == before and not result["changed"]
    assert apply.public_key(plan, identity) == "ssh-ed25519 AAAAFOREIGN admin"
    missing = parse_identity({"name": "news", "identity_file": "/srv/keys/other", "run_as": "root"})
    with pytest.raises(Failed) as failure:
        apply.plan_key(Plan(FakeModule(tmp_path)), missing)
    assert failure.value.result["field"] == "identity_file"


def test_the_key_is_made_once_in_the_tunnel_directory(tmp_path):
    units = Units()
    identity = parse_identity({"name": "news", "run_as": "root"})
    for check, changed in ((True, True), (False, True), (True, False), (False, False)):
        plan = Plan(FakeModule(tmp_path, check_mode=check, answers=units.answers()))
        apply.plan_key(plan, identity)
        assert plan.commit()["changed"] is changed
    assert apply.public_key(plan, identity) == "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPUB netreach-tunnel-news"


def test_another_tunnel_binding_the_port_is_refused_before_anything_changes(tmp_path):
    run(tmp_path, TUNNEL)
    before = snapshot(str(tmp_path))
    with pytest.raises(Failed) as failure:
        run(tmp_path, dict(TUNNEL, name="other", proxy=None))
    assert failure.value.result["field"] == "local_forwards" and "tunnel news" in failure.value.result["msg"]
    assert snapshot(str(tmp_path)) == before
