"""client_session's main() against a fake root: hostile names fail naming `name` in both states and every format,
and nothing changes; a valid session is written and taken back."""
from __future__ import annotations

import pytest

from ansible_collections.netreach.tunnels.plugins.modules import client_session
from fakehost import Failed, FakeModule, snapshot

DEFAULTS = dict(host=None, port=22, user=None, proxy=None, tunnel=None, local_forwards=[], remote_forwards=[],
                dynamic_forwards=[], identity_file=None, format="openssh", path=None, reg_path=None, owner="root",
                state="present")


class Exited(Exception):
    def __init__(self, result: dict) -> None:
        super().__init__("exit_json")
        self.result = result


def main(tmp_path, monkeypatch, **params) -> dict:
    """client_session.main() with PARAMS (argument spec defaults filled in) on the fake root TMP_PATH."""
    module = FakeModule(tmp_path, params={**DEFAULTS, **params})

    def exit_json(**result):
        raise Exited(result)

    module.exit_json = exit_json
    monkeypatch.setattr(client_session, "AnsibleModule", lambda **_spec: module)
    with pytest.raises(Exited) as exited:
        client_session.main()
    return exited.value.result


@pytest.mark.parametrize("fmt", ["openssh", "putty", "winscp"])
@pytest.mark.parametrize("state", ["present", "absent"])
@pytest.mark.parametrize("name", ["../../../root/.ssh", ".", "..", "../tunnels", " ../x", "/etc/passwd", "a\nb"])
def test_a_hostile_name_fails_naming_it_and_changes_nothing(tmp_path, monkeypatch, fmt, state, name):
    (tmp_path / "root" / ".ssh").mkdir(parents=True)
    (tmp_path / "root" / ".ssh" / "authorized_keys").write_text("ssh-ed25519 AAAA keep\n")
    before = snapshot(str(tmp_path))
    with pytest.raises(Failed) as failed:
        main(tmp_path, monkeypatch, name=name, host="bastion", format=fmt, state=state)
    assert failed.value.result["field"] == "name"
    assert snapshot(str(tmp_path)) == before


def test_a_session_is_written_into_the_owners_home_and_taken_back(tmp_path, monkeypatch):
    written = main(tmp_path, monkeypatch, name="repo", host="proxy-repo", proxy={
        "type": "socks4", "host": "proxy", "port": 1080, "username": None, "password": None})
    assert written["changed"] and written["path"] == "/root/.ssh/config.d/netreach-repo.conf"
    assert "nc -X 4 -x proxy:1080" in (tmp_path / "root" / ".ssh" / "config.d" / "netreach-repo.conf").read_text()
    gone = main(tmp_path, monkeypatch, name="repo", state="absent")
    assert gone["changed"] and not (tmp_path / "root" / ".ssh" / "config").exists()
