# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of netreach.tunnels.ssh_tunnel: a proxy that is not a dict fails naming the field; a change
armed by rollback_timeout is confirmed over a fresh connection (plugin_utils/_confirm.py).

ansible-core checks a dict option with sub-options given as a string before the module's own checks, and its
error ("dictionary requested, could not parse JSON or key=value") does not say which option it means. A proxy URL
where the dict belongs (proxy: http://proxy:8080) is an easy mistake, so it is caught here, on the controller,
before anything runs on the host.
"""

from __future__ import annotations

import time

from ansible.module_utils.common.validation import check_type_dict
from ansible.plugins.action import ActionBase

from ansible_collections.netreach.tunnels.plugins.plugin_utils._confirm import confirm_pending, controller_watch

MODULE = "netreach.tunnels.ssh_tunnel"


def proxy_error(proxy) -> str | None:
    """Why PROXY cannot be the module's proxy option, or None. Never repeats the value: it may hold a password."""
    if proxy is None or isinstance(proxy, dict):
        return None
    if isinstance(proxy, str):
        try:
            check_type_dict(proxy)
            return None
        except TypeError:
            pass
    return ("proxy: expected a dict with type, host, port (and username, password), not "
            f"a {type(proxy).__name__}; a proxy URL does not fit here")


def confirmed(action: ActionBase, result: dict, alive) -> dict:
    """RESULT, its armed changes confirmed over a fresh connection (or the task failed: rolled back). ALIVE:
    controller_watch() of the run, taken before the module ran (a controller killed meanwhile never confirms)."""
    armed_at = time.monotonic()
    pending = result.pop("pending_confirms", None)
    if result.get("failed") or not pending:
        return result
    result.update(confirm_pending(action, pending, armed_at, alive=alive))
    return result


class ActionModule(ActionBase):
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        alive = controller_watch()
        why = proxy_error(self._task.args.get("proxy"))
        if why:
            result.update(failed=True, changed=False, msg=why, field="proxy")
            return result
        result.update(self._execute_module(module_name=MODULE, module_args=self._task.args, task_vars=task_vars))
        return confirmed(self, result, alive)
