"""The proxy_client role (which playbooks/site.yml runs) writes the session profiles without looping over the
declarations themselves: at -vvv ansible prints every loop item in full, and a session's proxy password with it."""
from __future__ import annotations

import pathlib

import yaml

TOP = pathlib.Path(__file__).resolve().parents[3]


def test_the_session_loop_goes_over_positions_not_declarations():
    tasks = yaml.safe_load((TOP / "roles" / "proxy_client" / "tasks" / "sessions.yml").read_text())
    sessions = [task for task in tasks if "netreach.tunnels.client_session" in task]
    assert len(sessions) == 1
    assert sessions[0]["loop"].replace(" ", "") == "{{range(proxy_client_sessions|length)|list}}"
    assert "item.name" not in str(sessions[0]["loop_control"])


def test_site_yml_runs_the_role_with_the_inventory_variables():
    plays = yaml.safe_load((TOP / "playbooks" / "site.yml").read_text())
    play = next(play for play in plays if play.get("hosts") == "proxy_clients")
    role = play["roles"][0]
    assert role["role"] == "netreach.tunnels.proxy_client" and "tasks" not in play
    assert role["vars"] == {"proxy_client_proxy": "{{ client_proxy | default({}) }}",
                            "proxy_client_sessions": "{{ client_sessions | default([]) }}"}


def test_a_host_without_sessions_skips_the_session_tasks_in_one_task():
    """A rerun on a host with only a proxy reaches it once (client_proxy): the session tasks sit behind one
    include, skipped there, rather than costing a task header each."""
    tasks = yaml.safe_load((TOP / "roles" / "proxy_client" / "tasks" / "main.yml").read_text())
    assert [next(key for key in task if "." in key) for task in tasks] == [
        "netreach.tunnels.client_proxy", "ansible.builtin.include_tasks"]
    assert tasks[1]["ansible.builtin.include_tasks"] == "sessions.yml"
    assert tasks[1]["when"].replace(" ", "") == "proxy_client_sessions|length>0"
