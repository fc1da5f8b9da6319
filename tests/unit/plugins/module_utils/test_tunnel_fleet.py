"""The known_hosts pinning both the tunnels and the sessions filters use (_tunnel_fleet.pinned_known_hosts)."""
from __future__ import annotations

import pytest

from ansible_collections.netreach.tunnels.plugins.module_utils._declaration import DeclarationError
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_fleet import pinned_known_hosts

KEY = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
FACTS = {"ansible_ssh_host_key_ed25519_public": KEY}


def test_each_inventory_hop_is_pinned_once_and_foreign_hosts_are_left_out():
    lines = pinned_known_hosts("tunnel t", [("bastion", 22), ("db", 2222), ("bastion", 22), ("elsewhere", 22)],
                               {"bastion": FACTS, "db": FACTS}, ["bastion", "db"])
    assert lines == [f"bastion ssh-ed25519 {KEY}", f"[db]:2222 ssh-ed25519 {KEY}"]


def test_an_inventory_hop_without_host_key_facts_names_the_declaration():
    with pytest.raises(DeclarationError) as failure:
        pinned_known_hosts("session s", [("bastion", 22)], {"bastion": {}}, ["bastion"])
    assert failure.value.field == "session s" and "no SSH host key facts for bastion" in str(failure.value)
