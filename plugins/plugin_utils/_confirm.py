# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private plugin_utils of netreach.tunnels: the controller's half of the engine's confirm-or-roll-back. Not a
# public API; it may change at any time.
"""Confirm armed changes over fresh connections, or report how the host rolled them back.

A module whose plan armed changes (_engine_rollback.arm_files) returns `pending_confirms`: per change its pending
directory, timeout, timer and the confirm program. The host applies each change a moment after the module
returned (a restart may cut the connection the module answered over). This code drops the connection, waits
for the apply, and runs `netreach-confirm confirm DIR...` over a new connection, again and again until the host
answers (the new connection may ride the tunnel the change just restarted). What is not confirmed in time the
host restores by itself; the task then fails with `Rolled back: ... because ...` once the host answers again.

Only a live controller confirms. Ansible runs a task in a forked worker that is a session of its own (setsid):
killing ansible-playbook, even its whole process group, leaves the worker running, and it would go on and confirm
a change nobody is waiting for any more. The action plugin notes its controller (the worker's parent) before the
module runs; once the worker has been orphaned, it sends no confirmation and the host's timer rolls back.
"""

from __future__ import annotations

import os
import shlex
import time

from ansible.errors import AnsibleError

# How long past the host's latest rollback the controller keeps trying to learn what the host did.
SETTLE = 60
RETRY = 1.0
# What the host did on a rollback when the change does not say (a tunnel's change).
RESTORES = "put the previous unit, configuration, known_hosts and key back by itself and restarted it"


def controller_watch(parent=os.getppid):
    """A check that this worker's controller is still alive: its parent now is the one it has at this call."""
    controller = parent()
    return lambda: parent() == controller


def fresh_command(action, command: str) -> tuple[bool, list[str]]:
    """Run COMMAND on the host over a new connection: (reached the host, output lines or the error)."""
    try:
        action._connection.reset()
        answer = action._low_level_execute_command(command)
    except AnsibleError as exc:
        text = str(exc).strip()
        return False, [text.splitlines()[-1] if text else type(exc).__name__]
    if answer.get("rc") == 255 and not answer.get("stdout"):
        return False, [(answer.get("stderr") or "ssh exited with 255").strip().splitlines()[-1]]
    lines = (answer.get("stdout") or "").strip().splitlines()
    return True, lines or [(answer.get("stderr") or f"rc={answer.get('rc')}").strip()]


def answers(lines: list[str], directories) -> dict:
    """DIR -> the program's answer for it, from its `DIR answer` lines."""
    found = {}
    for line in lines:
        directory, _sep, answer = line.partition(" ")
        if directory in directories:
            found[directory] = answer
    return found


def confirm_pending(action, pending: list[dict], armed_at: float, clock=time.monotonic, sleep=time.sleep,
                    alive=lambda: True) -> dict:
    """Confirm every change of PENDING (armed no earlier than ARMED_AT); the task result's additions.

    The host's answer decides: `confirmed`, or `rolled-back` once its timer put the previous state back (the
    timeout counts from the moment the change went live there). Until one comes, the controller tries again,
    whether the host is unreachable or still applying; it gives up only after the longest the host can take
    (the apply's allowance, the timeout, and SETTLE for the restored tunnel to reconnect). ALIVE() false: the
    controller died; no further attempt is made (nothing the host confirms after that was confirmed by it)."""
    program = pending[0]["program"]
    waiting = {item["directory"]: item for item in pending}
    give_up = armed_at + max(item.get("apply_grace", 0) + item["timeout"] for item in pending) + SETTLE
    why = {directory: "no fresh connection reached the host" for directory in waiting}
    confirmed, rolled_back, last_reached = [], {}, None
    sleep(max(item["apply_delay"] for item in pending) + 2 * RETRY)  # the apply, then the tunnel coming up
    attempts, orphaned = 0, False
    while waiting and clock() < give_up:
        if not alive():
            orphaned = True
            why.update((directory, "the controller that ran this task died during the wait") for directory in waiting)
            break
        attempts += 1
        reached, lines = fresh_command(action, shlex.join([*program, "confirm", *waiting]))
        if not reached:
            why.update((directory, f"a fresh connection to the host failed ({lines[-1]})") for directory in waiting)
        else:
            last_reached = clock()
        for directory, answer in answers(lines if reached else [], waiting).items():
            if answer == "confirmed":
                confirmed.append(waiting.pop(directory)["label"])
            elif answer.startswith("rolled-back"):
                rolled_back[directory] = answer.partition(": ")[2] or "its timer fired"
                waiting.pop(directory)
            else:
                why[directory] = answer
        if waiting:
            sleep(RETRY)
    result = {"confirmed": not waiting and not rolled_back, "confirmed_changes": confirmed,
              "confirm_attempts": attempts}
    if result["confirmed"]:
        return result
    parts = []
    for directory, reason in rolled_back.items():
        item = pending_item(pending, directory)
        parts.append(f"{item['label']}: the change was not confirmed because {why[directory]}; the host "
                     f"{item.get('restores', RESTORES)} ({reason})")
    for directory, item in waiting.items():
        parts.append(f"{item['label']}: the change was not confirmed because {why[directory]}; the host's timer "
                     f"{item['timer']} restores the previous state {item['timeout']} s after the change went live, "
                     + ("and no attempt was made to reach it again" if orphaned else "but the host did not answer again"))
    answered = (f". The host answered again {last_reached - armed_at:.1f} s after the change was armed"
                if rolled_back and last_reached is not None else "")
    result.update(failed=True, rolled_back=[pending_item(pending, d)["label"] for d in rolled_back],
                  msg="Rolled back: " + "; ".join(parts) + answered + ".")
    return result


def pending_item(pending: list[dict], directory: str) -> dict:
    return next(item for item in pending if item["directory"] == directory)
