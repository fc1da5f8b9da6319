# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The SSH forward options (-L, -R, -D), written once for every module that takes them."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  local_forwards:
    description: C(-L) forwards, as ssh's C([bind_address:]port:host:hostport) or dicts with the keys
      C(bind_address), C(port), C(host), C(host_port).
    type: list
    elements: raw
    default: []
  remote_forwards:
    description: C(-R) forwards, same shapes as O(local_forwards).
    type: list
    elements: raw
    default: []
  dynamic_forwards:
    description: C(-D) SOCKS forwards, as C([bind_address:]port) or dicts with C(bind_address) and C(port).
    type: list
    elements: raw
    default: []
"""
