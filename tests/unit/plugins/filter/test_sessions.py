"""The filters that pin client sessions' host keys from inventory facts."""
from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.netreach.tunnels.plugins.filter.sessions import session_inventory_hosts, session_known_hosts

KEY = "AAAAC3NzaC1lZDI1NTE5AAAAIHo3AHjIuHszXOGnyGddz/nLsSXEp4d+j5UqpEw1cdwr"
FACTS = {"bastion": {"ansible_ssh_host_key_ed25519_public": KEY}, "repo": {"ansible_ssh_host_key_ed25519_public": KEY}}


def test_the_hosts_and_tunnel_hosts_of_the_sessions_that_are_in_the_inventory():
    sessions = [{"name": "a", "host": "repo", "tunnel": {"host": "bastion"}}, {"name": "b", "host": "outside.example"},
                {"name": "c", "host": "repo"}]
    assert session_inventory_hosts(sessions, ["repo", "bastion", "other"]) == ["bastion", "repo"]


def test_known_hosts_lines_name_the_port_the_session_uses():
    session = {"name": "a", "host": "repo", "port": 443, "tunnel": {"host": "bastion", "port": 22}}
    assert session_known_hosts(session, FACTS, ["repo", "bastion"]) == [
        f"bastion ssh-ed25519 {KEY}", f"[repo]:443 ssh-ed25519 {KEY}"]
    assert session_known_hosts({"name": "b", "host": "outside.example"}, FACTS, ["repo"]) == []


def test_an_inventory_host_without_host_key_facts_fails_naming_the_session():
    with pytest.raises(AnsibleFilterError, match="session a: no SSH host key facts for repo"):
        session_known_hosts({"name": "a", "host": "repo"}, {"repo": {}}, ["repo"])
