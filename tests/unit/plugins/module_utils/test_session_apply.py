from __future__ import annotations

import os

from ansible_collections.netreach.tunnels.plugins.module_utils._session import parse_session
from ansible_collections.netreach.tunnels.plugins.module_utils._session_apply import plan_session

OWNER = "root"  # the unit tests run as root; the plan compares owners with it


def params(fmt: str, **changes) -> dict:
    return {"name": "repo news" if fmt != "openssh" else "repo", "host": "proxy-repo", "port": 22, "user": "lab",
            "proxy": {"type": "http", "host": "proxy-proxy", "port": 8080}, "tunnel": None, "local_forwards": [],
            "remote_forwards": [], "dynamic_forwards": ["3128"], "identity_file": None, "format": fmt, "path": None,
            "reg_path": None, "owner": OWNER, "state": "present", **changes}


def apply(plan) -> None:
    for change in plan.changes:
        if change.after is None:
            os.unlink(change.path)
        else:
            os.makedirs(os.path.dirname(change.path), exist_ok=True)
            with open(change.path, "w", encoding="utf-8", newline="") as handle:
                handle.write(change.after)
            os.chmod(change.path, change.mode)


def test_putty_plans_the_escaped_session_file_and_the_reg_export(tmp_path):
    spec = params("putty")
    plan, path, _warnings = plan_session(spec, str(tmp_path), parse_session(spec, "putty"))
    assert path == f"{tmp_path}/.putty/sessions/repo%20news"
    assert plan.changed_paths == [path, f"{tmp_path}/.putty/netreach-repo%20news.reg"]
    apply(plan)
    again, _path, _warnings = plan_session(spec, str(tmp_path), parse_session(spec, "putty"))
    assert not again.changed
    gone, _path, _warnings = plan_session({**spec, "state": "absent"}, str(tmp_path), None)
    assert [change.after for change in gone.changes] == [None, None]


def test_openssh_keeps_the_include_while_another_session_of_ours_remains(tmp_path):
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "config").write_text("Host *\n    ServerAliveInterval 30\n")
    for name in ("one", "two"):
        spec = params("openssh", name=name)
        apply(plan_session(spec, str(tmp_path), parse_session(spec, "openssh"))[0])
    config = (tmp_path / ".ssh" / "config").read_text()
    assert config.startswith("# BEGIN") and f"Include {tmp_path}/.ssh/config.d/netreach-*.conf" in config
    apply(plan_session({**params("openssh", name="one"), "state": "absent"}, str(tmp_path), None)[0])
    assert "Include" in (tmp_path / ".ssh" / "config").read_text()
    apply(plan_session({**params("openssh", name="two"), "state": "absent"}, str(tmp_path), None)[0])
    assert (tmp_path / ".ssh" / "config").read_text() == "Host *\n    ServerAliveInterval 30\n"
    assert not list((tmp_path / ".ssh" / "config.d").iterdir())
