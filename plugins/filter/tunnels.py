# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that connect the two ends of netreach tunnels across the inventory."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.netreach.tunnels.plugins.module_utils._declaration import DeclarationError
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel import parse_hop
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_fleet import (
    client_declaration,
    client_entries,
    pinned_known_hosts,
)
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_server import (
    SERVER_ONLY_KEYS,
    check_listen_conflicts,
)


def tunnel_server_entries(hostvars, server: str, clients: list, skip_missing_keys: bool = False) -> dict:
    entries, managed = [], []
    for client in sorted(set(clients)):
        variables = hostvars[client]
        keys = variables.get("tunnel_client_public_keys")
        if keys is None:
            continue
        managed.append(client)
        try:
            entries += client_entries(client, variables.get("tunnel_client_tunnels") or [],
                                      variables.get("tunnel_client_defaults") or {}, dict(keys), server,
                                      skip_missing_keys)
        except DeclarationError as exc:
            raise AnsibleFilterError(str(exc)) from None
    try:
        check_listen_conflicts(entries)
    except DeclarationError as exc:
        raise AnsibleFilterError(f"{server}: {exc}") from None
    return {"entries": [entry.as_dict() for entry in entries], "managed_clients": managed}


def _hops(tunnel: dict, defaults: dict) -> list:
    """(host, port) of every host the tunnel logs in to: its jump hosts, then its server."""
    merged = dict(defaults or {}, **tunnel)
    try:
        hops = [parse_hop(hop, f"{merged.get('name')}.jump_hosts[{index}]")
                for index, hop in enumerate(merged.get("jump_hosts") or [])]
        port = int(merged.get("port", 22))
    except (DeclarationError, ValueError) as exc:
        raise AnsibleFilterError(str(exc)) from None
    return [(hop.host, hop.port) for hop in hops] + [(merged.get("server"), port)]


def tunnel_inventory_hops(tunnels: list, inventory: list, defaults: dict | None = None) -> list:
    """Inventory hosts that the tunnels log in to (servers and jump hosts), sorted."""
    names = set(inventory)
    return sorted({host for tunnel in tunnels or [] for host, dummy in _hops(tunnel, defaults) if host in names})


def tunnel_known_hosts(tunnel, hostvars, inventory: list, defaults: dict | None = None):
    """known_hosts lines pinning every inventory host the tunnel logs in to, from that host's own facts; for a
    list of tunnels, a dict of those lines by tunnel name."""
    if isinstance(tunnel, list):
        return {item.get("name"): tunnel_known_hosts(item, hostvars, inventory, defaults) for item in tunnel}
    try:
        return pinned_known_hosts(f"tunnel {tunnel.get('name')}", _hops(tunnel, defaults), hostvars, inventory)
    except DeclarationError as exc:
        raise AnsibleFilterError(str(exc)) from None


def tunnel_client_params(tunnel: dict) -> dict:
    """The tunnel declaration without the keys only the server end reads."""
    return {key: value for key, value in tunnel.items() if key not in SERVER_ONLY_KEYS}


def tunnel_client_declaration(tunnels: list, name: str, defaults: dict | None = None,
                              pinned: dict | None = None) -> dict:
    """The ssh_tunnel parameters of tunnel NAME: found by name, over DEFAULTS, server-only keys dropped, the
    known_hosts of the defaults, of the tunnel and PINNED[NAME] merged."""
    try:
        return client_declaration(tunnels, name, defaults, pinned)
    except DeclarationError as exc:
        raise AnsibleFilterError(str(exc)) from None


def tunnel_client_declarations(tunnels: list, defaults: dict | None = None, pinned: dict | None = None,
                               only: list | None = None) -> list:
    """The ssh_tunnels tunnels of a client: tunnel_client_declaration of every tunnel, in declaration order;
    ONLY keeps just those keys (the key step needs name, identity_file and run_as)."""
    names = [tunnel.get("name") if isinstance(tunnel, dict) else None for tunnel in tunnels or []]
    declarations = [tunnel_client_declaration(tunnels, name, defaults, pinned) for name in names]
    if only:
        declarations = [{key: value for key, value in declared.items() if key in only} for declared in declarations]
    return declarations


def _needs_run(client: str, hostvars, inventory: list) -> bool:
    """Whether CLIENT's full tunnel call has anything to do, from its keys_first result (the fact
    tunnel_client_keys_first of the tunnel_client role's keys step): pending, a tunnel whose pinned host keys
    differ from those the hops' facts give now (or cannot be told: no facts), or no result at all."""
    variables = hostvars[client] if client in (hostvars or {}) else {}
    found = variables.get("tunnel_client_keys_first")
    if not isinstance(found, dict) or found.get("pending") is not False or not isinstance(found.get("pinned"), dict):
        return True
    tunnels = variables.get("tunnel_client_tunnels") or []
    defaults = variables.get("tunnel_client_defaults") or {}
    learn = variables.get("tunnel_client_learn_host_keys", True)
    try:
        pinned = tunnel_known_hosts(list(tunnels), hostvars, inventory, defaults) if learn else {}
        declarations = tunnel_client_declarations(tunnels, defaults, pinned)
    except AnsibleFilterError:
        return True  # the full call reports what is wrong, or gathers the missing host keys
    for declared in declarations:
        if declared.get("state") == "absent":
            continue
        wanted = [line.strip() for line in declared.get("known_hosts") or []]
        if found["pinned"].get(declared.get("name")) != wanted:
            return True
    return False


def tunnel_clients_to_run(clients: list, hostvars, inventory: list) -> list:
    """The CLIENTS (in their order) whose full tunnel call has anything to do; see _needs_run."""
    return [client for client in clients or [] if _needs_run(client, hostvars, inventory)]


def tunnel_public_keys(results: dict) -> dict:
    """Tunnel name -> public key, from the registered results of a loop over tunnel names (tunnel_key or
    ssh_tunnel): what the client publishes for the tunnel servers."""
    return {result["item"]: result.get("public_key", "") for result in (results or {}).get("results", [])}


class FilterModule:
    def filters(self):
        return {
            "tunnel_server_entries": tunnel_server_entries,
            "tunnel_inventory_hops": tunnel_inventory_hops,
            "tunnel_known_hosts": tunnel_known_hosts,
            "tunnel_client_params": tunnel_client_params,
            "tunnel_client_declaration": tunnel_client_declaration,
            "tunnel_client_declarations": tunnel_client_declarations,
            "tunnel_public_keys": tunnel_public_keys,
            "tunnel_clients_to_run": tunnel_clients_to_run,
        }
