from __future__ import annotations

import os
import pwd

import pytest

from ansible_collections.netreach.tunnels.plugins.module_utils._files import FilePlan


class FakeModule:
    check_mode = False

    def __init__(self) -> None:
        self.moved: list[str] = []

    def atomic_move(self, src, dest, unsafe_writes=False, keep_dest_attrs=True):
        self.moved.append(dest)
        os.rename(src, dest)

    def run_command(self, args):
        return (0 if "good" in open(args[-1], encoding="utf-8").read() else 1), "", "bad content"

    def fail_json(self, **kwargs):
        raise RuntimeError(kwargs["msg"])


@pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root")
def test_a_new_secret_file_is_created_with_its_mode_and_owner_from_the_start(tmp_path):
    nobody = pwd.getpwnam("nobody")
    path = tmp_path / "sub" / "secret"
    plan = FilePlan(secrets=["hunter2"])
    assert plan.put(str(path), "password=hunter2\n", 0o600, owner="nobody", group="nogroup")
    assert "hunter2" not in plan.diff()["after"] and "********" in plan.diff()["after"]
    module = FakeModule()
    plan.apply(module)
    stat = path.stat()
    assert (stat.st_mode & 0o7777, stat.st_uid) == (0o600, nobody.pw_uid)
    assert path.parent.stat().st_uid == nobody.pw_uid
    assert module.moved == []  # a new file is renamed into place, never through atomic_move's umask mode
    assert not FilePlan().put(str(path), "password=hunter2\n", 0o600, owner="nobody", group="nogroup")


def test_a_failing_validation_leaves_every_file_as_it_was(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.write_text("old\n")
    plan = FilePlan()
    plan.put(str(first), "good new\n", 0o644)
    plan.put(str(second), "bad\n", 0o644, validate=["check", "%s"])
    with pytest.raises(RuntimeError):
        plan.apply(FakeModule())
    assert first.read_text() == "old\n" and not second.exists()
    assert sorted(os.listdir(tmp_path)) == ["a"]
