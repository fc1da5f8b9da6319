"""playbooks/site.yml writes the session profiles of `client_sessions` without looping over the declarations
themselves: at -vvv ansible prints every loop item in full, and a session's proxy password with it."""
from __future__ import annotations

import pathlib

import yaml

SITE = pathlib.Path(__file__).resolve().parents[3] / "playbooks" / "site.yml"


def test_the_session_loop_goes_over_positions_not_declarations():
    tasks = [task for play in yaml.safe_load(SITE.read_text()) for task in play.get("tasks", [])]
    sessions = [task for task in tasks if "netreach.tunnels.client_session" in task]
    assert len(sessions) == 1
    loop = sessions[0]["loop"]
    assert "client_sessions" in loop and loop.replace(" ", "").startswith("{{range(client_sessions|default([])|length)")
    assert "item.name" not in str(sessions[0]["loop_control"])
