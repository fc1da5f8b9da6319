# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of netreach.tunnels.nat_rules: confirm an applied change over a fresh connection.

The module arms a rollback timer on the host and applies the new table. This plugin then drops the
connection it used (an SSH ControlMaster keeps working through new NAT rules: its packets belong to an
established connection) and runs the module again over a new one with `confirm: TOKEN`: the change engine stops
the timer and makes the staged table the boot state. If that fails, the host's timer restores the previous table
by itself; the plugin waits for it and reports what happened.
"""

from __future__ import annotations

import time

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase

from ansible_collections.netreach.tunnels.plugins.plugin_utils._confirm import controller_watch

MODULE = "netreach.tunnels.nat_rules"
# Seconds past the rollback deadline before the host is expected to be reachable again.
GRACE = 3


class ActionModule(ActionBase):
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        if "confirm" in self._task.args:
            result.update(failed=True, msg="confirm is set by the nat_rules action plugin only, never by a task")
            return result
        alive = controller_watch()
        result.update(self._execute_module(module_name=MODULE, module_args=self._task.args, task_vars=task_vars))
        # The module armed the timer before it returned: its deadline is no later than this plus the timeout.
        applied_at = time.monotonic()
        pending = result.pop("pending_confirm", None)
        if result.get("failed") or not pending:
            return result
        # A worker whose controller was killed meanwhile (it is a session of its own) confirms nothing.
        ok, answer = self._confirm(pending["token"], task_vars) if alive() else (
            True, "the controller that ran this task died during the wait")
        if ok and answer == "confirmed":
            result["confirmed"] = True
            return result
        deadline = applied_at + pending["timeout"]
        why = answer if ok else f"a fresh connection to the host failed ({answer})"
        result.update(failed=True, confirmed=False)
        # Wait until the host's timer has put the previous table back, then look at what it did.
        time.sleep(max(0.0, deadline - time.monotonic()) + GRACE)
        reachable, marker = self._fresh_command(f"test -e {pending['marker']} && echo rolled-back || echo no-record")
        rolled_back = reachable and marker == "rolled-back"
        result["rolled_back"] = rolled_back
        if rolled_back:
            outcome = (f"The host restored the previous netreach table by itself after {pending['timeout']} s "
                       f"(timer {pending['timer']}) and is reachable again")
        elif reachable:
            outcome = "The host is reachable again but has no record of the rollback (rebooted?)"
        else:
            outcome = (f"The host's timer {pending['timer']} restores the previous netreach table "
                       f"{pending['timeout']} s after the change, but the host is still unreachable ({marker})")
        result["msg"] = (f"Rolled back: the new NAT rules were not confirmed because {why}. {outcome}. "
                         "The change was not persisted: the last confirmed state is what boots.")
        return result

    def _confirm(self, token: str, task_vars) -> tuple[bool, str]:
        """The module's confirm run over a new connection: (reached the host, "confirmed" or why not)."""
        try:
            self._connection.reset()
            answer = self._execute_module(module_name=MODULE, module_args={"confirm": token}, task_vars=task_vars)
        except AnsibleError as exc:
            return False, str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        if answer.get("unreachable"):
            return False, (answer.get("msg") or "unreachable").strip()
        if answer.get("failed") or not answer.get("confirmed"):
            return True, answer.get("answer") or (answer.get("msg") or "the confirm run failed").strip()
        return True, "confirmed"

    def _fresh_command(self, command: str) -> tuple[bool, str]:
        """Run COMMAND on the host over a new connection: (reached the host, last line of output or error)."""
        try:
            self._connection.reset()
            answer = self._low_level_execute_command(command)
        except AnsibleError as exc:
            return False, str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        if answer.get("rc") == 255 and not answer.get("stdout"):
            return False, (answer.get("stderr") or "ssh exited with 255").strip()
        lines = (answer.get("stdout") or "").strip().splitlines()
        return True, lines[-1] if lines else (answer.get("stderr") or f"rc={answer.get('rc')}").strip()
