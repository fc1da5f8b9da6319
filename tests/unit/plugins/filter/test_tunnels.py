"""The client role's filters: one lookup by name that merges the known_hosts of defaults, tunnel and facts."""
from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.netreach.tunnels.plugins.filter.tunnels import (
    tunnel_client_declaration,
    tunnel_known_hosts,
    tunnel_public_keys,
)

DEFAULT_KEY = "bastion ssh-ed25519 AAAADEFAULT"
TUNNEL_KEY = "newshost ssh-ed25519 AAAATUNNEL"
PINNED_KEY = "server ssh-ed25519 AAAAPINNED"
TUNNELS = [{"name": "news", "server": "newshost", "local_forwards": ["1:h:1"], "known_hosts": [TUNNEL_KEY],
            "server_allow_dynamic": True},
           {"name": "other", "server": "server", "local_forwards": ["2:h:1"], "run_as": "alice"}]
DEFAULTS = {"run_as": "netreach-tunnel", "known_hosts": [DEFAULT_KEY]}


def test_known_hosts_of_the_defaults_are_kept_beside_the_tunnels_and_the_pinned_ones():
    declaration = tunnel_client_declaration(TUNNELS, "news", DEFAULTS, {"news": [PINNED_KEY, TUNNEL_KEY]})
    assert declaration["known_hosts"] == [DEFAULT_KEY, TUNNEL_KEY, PINNED_KEY]
    assert "server_allow_dynamic" not in declaration and declaration["run_as"] == "netreach-tunnel"
    assert tunnel_client_declaration(TUNNELS, "other", DEFAULTS)["known_hosts"] == [DEFAULT_KEY]
    assert tunnel_client_declaration(TUNNELS, "other", DEFAULTS)["run_as"] == "alice"
    assert tunnel_client_declaration(TUNNELS, "other")["known_hosts"] == []


def test_a_name_declared_never_or_twice_fails():
    with pytest.raises(AnsibleFilterError):
        tunnel_client_declaration(TUNNELS, "nosuch", DEFAULTS)
    with pytest.raises(AnsibleFilterError):
        tunnel_client_declaration(TUNNELS + TUNNELS[:1], "news", DEFAULTS)


def test_public_keys_by_tunnel_name_from_a_loop_result():
    results = {"results": [{"item": "news", "public_key": "ssh-ed25519 AAAA1"}, {"item": "other"}]}
    assert tunnel_public_keys(results) == {"news": "ssh-ed25519 AAAA1", "other": ""}


def test_known_hosts_of_every_tunnel_by_name():
    hostvars = {"server": {"ansible_ssh_host_key_ed25519_public": "AAAAPINNED"}}
    assert tunnel_known_hosts(TUNNELS, hostvars, ["server"]) == {"news": [], "other": [PINNED_KEY]}


def test_tunnel_client_declarations_gives_every_tunnel_in_order():
    from ansible_collections.netreach.tunnels.plugins.filter.tunnels import tunnel_client_declarations
    every = tunnel_client_declarations(TUNNELS, DEFAULTS, {"news": [PINNED_KEY]})
    assert [declared["name"] for declared in every] == [tunnel["name"] for tunnel in TUNNELS]
    assert every[0] == tunnel_client_declaration(TUNNELS, TUNNELS[0]["name"], DEFAULTS, {"news": [PINNED_KEY]})
    assert all(set(declared) <= {"name", "run_as"} for declared in tunnel_client_declarations(
        TUNNELS, DEFAULTS, only=["name", "identity_file", "run_as"]))
    with pytest.raises(AnsibleFilterError):
        tunnel_client_declarations(TUNNELS + [TUNNELS[0]], DEFAULTS)


def test_a_tunnel_to_port_443_pins_the_bracketed_entry_of_that_port():
    """A server listening on 22 and 443 (tunnel_server ports): the tunnel's port picks the [host]:443 entry,
    which is the one ssh looks up for a connection to port 443."""
    hostvars = {"bastion": {"ansible_ssh_host_key_ed25519_public": "AAAAPINNED"}}
    tunnels = [{"name": "via443", "server": "bastion", "port": 443, "local_forwards": ["1:h:1"]},
               {"name": "via22", "server": "bastion", "local_forwards": ["2:h:1"]}]
    assert tunnel_known_hosts(tunnels, hostvars, ["bastion"]) == {
        "via443": ["[bastion]:443 ssh-ed25519 AAAAPINNED"], "via22": ["bastion ssh-ed25519 AAAAPINNED"]}
