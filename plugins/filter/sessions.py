# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that pin the host keys of client sessions (netreach.tunnels.client_session) from inventory facts."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.netreach.tunnels.plugins.module_utils._declaration import DeclarationError
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_fleet import pinned_known_hosts


def _hops(session: dict) -> list[tuple[str, int]]:
    """(host, port) of every server SESSION logs in to: its tunnel host, then its host."""
    hops = []
    tunnel = session.get("tunnel") or {}
    try:
        if tunnel.get("host"):
            hops.append((tunnel["host"], int(tunnel.get("port") or 22)))
        if session.get("host"):
            hops.append((session["host"], int(session.get("port") or 22)))
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"session {session.get('name')}: {exc}") from None
    return hops


def session_inventory_hosts(sessions: list, inventory: list) -> list:
    """Inventory hosts that the sessions log in to (hosts and tunnel hosts), sorted."""
    names = set(inventory)
    return sorted({host for session in sessions or [] for host, dummy in _hops(session) if host in names})


def session_known_hosts(session: dict, hostvars, inventory: list) -> list:
    """known_hosts lines pinning every inventory host SESSION logs in to, from that host's own facts."""
    try:
        return pinned_known_hosts(f"session {session.get('name')}", _hops(session), hostvars, inventory)
    except DeclarationError as exc:
        raise AnsibleFilterError(str(exc)) from None


class FilterModule:
    def filters(self):
        return {
            "session_inventory_hosts": session_inventory_hosts,
            "session_known_hosts": session_known_hosts,
        }
