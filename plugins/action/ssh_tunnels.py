# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of netreach.tunnels.ssh_tunnels: a tunnel's proxy that is not a dict fails naming the field,
as for netreach.tunnels.ssh_tunnel (see there why it is caught on the controller), and armed changes are
confirmed over a fresh connection as there."""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.netreach.tunnels.plugins.action.ssh_tunnel import confirmed, proxy_error
from ansible_collections.netreach.tunnels.plugins.plugin_utils._confirm import controller_watch

MODULE = "netreach.tunnels.ssh_tunnels"


class ActionModule(ActionBase):
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        alive = controller_watch()
        tunnels = self._task.args.get("tunnels")
        for index, item in enumerate(tunnels if isinstance(tunnels, list) else []):
            why = proxy_error(item.get("proxy")) if isinstance(item, dict) else None
            if why:
                result.update(failed=True, changed=False, msg=f"tunnels[{index}].{why}", field=f"tunnels[{index}].proxy")
                return result
        result.update(self._execute_module(module_name=MODULE, module_args=self._task.args, task_vars=task_vars))
        return confirmed(self, result, alive)
