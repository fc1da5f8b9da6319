# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The confirm-or-roll-back of a tunnel change (rollback_timeout), written once."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  rollback_timeout:
    description:
      - "Seconds a change of the tunnel waits, once live, for the controller's confirmation over a fresh
        connection; if none comes, the host puts the previous unit, ssh_config, known_hosts, proxy credentials
        and key back by itself and restarts the tunnel, and the task fails with C(Rolled back: ... because ...). C(0) applies without a
        confirm step. Otherwise 10 to 3600."
      - The change is staged and a transient systemd timer armed before anything is written; the restart runs a
        moment after the module returned (from a transient unit of the host, not the connection's processes), so a
        change that cuts the managing connection (a device managed through its own C(-R)) still completes, and the
        confirmation may ride the new tunnel. A reboot before the confirmation boots the last confirmed state.
      - Needs systemd on the host. Applies when the run (re)starts the tunnel (O(state=started) or
        O(state=restarted)) and its files change.
      - See R(Confirm or roll back,ansible_collections.netreach.tunnels.docsite.rollback).
    type: int
    default: 0
    version_added: 0.3.0
"""
