# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The metrics timer's interval (metrics_interval), written once for ssh_tunnels and nat_rules; each module
documents its own metrics_dir (what its program writes there)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  metrics_interval:
    description:
      - Seconds between two runs of the metrics timer (1 to 3600); ignored without O(metrics_dir).
      - See R(Tunnel and gateway metrics,ansible_collections.netreach.tunnels.docsite.metrics).
    type: int
    default: 15
    version_added: 0.3.0
"""
