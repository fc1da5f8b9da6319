# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of netreach.tunnels.tunnel_server: a change armed by rollback_timeout is confirmed over a fresh
connection (plugin_utils/_confirm.py), which has to get through the new sshd configuration; the host puts the
previous files back by itself when none does."""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.netreach.tunnels.plugins.action.ssh_tunnel import confirmed
from ansible_collections.netreach.tunnels.plugins.plugin_utils._confirm import controller_watch

MODULE = "netreach.tunnels.tunnel_server"


class ActionModule(ActionBase):
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        alive = controller_watch()
        result.update(self._execute_module(module_name=MODULE, module_args=self._task.args, task_vars=task_vars))
        return confirmed(self, result, alive)
