# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The attributes block every module of the collection shares: its change engine gives all of them the same
check mode (nothing changes, the same result shape) and diff (secrets masked).

netreach.tunnels.attributes: a module that changes hosts; netreach.tunnels.attributes.info: one that only reads.
"""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
attributes:
  check_mode:
    description: Reports what would change, with the same result shape as a real run, and changes nothing.
    support: full
  diff_mode:
    description: Shows each file before and after and names the commands and unit changes; secrets and key
      material are never shown.
    support: full
"""

    INFO = r"""
attributes:
  check_mode:
    description: Runs the same in check mode; it never changes anything.
    support: full
  diff_mode:
    description: Nothing to show; the module changes nothing.
    support: none
"""
