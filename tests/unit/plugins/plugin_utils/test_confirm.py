"""The controller's half of confirm-or-roll-back against a scripted host: confirmed, waiting then confirmed,
unreachable until the host rolled back by itself."""
from __future__ import annotations

from ansible.errors import AnsibleConnectionFailure

from ansible_collections.netreach.tunnels.plugins.plugin_utils import _confirm

PENDING = [{"label": "tunnel mgmt", "directory": "/var/lib/netreach/pending/tunnel-mgmt", "timeout": 30,
            "timer": "netreach-rollback-tunnel-mgmt-ab.timer", "apply_delay": 2,
            "program": ["/usr/bin/python3", "/usr/local/lib/netreach/netreach-confirm"]}]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Connection:
    def __init__(self) -> None:
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1


class Action:
    """Answers each command with the next item of SCRIPT: an output line, or None for an unreachable host."""

    def __init__(self, script) -> None:
        self.script = list(script)
        self.commands: list[str] = []
        self._connection = Connection()

    def _low_level_execute_command(self, command):
        self.commands.append(command)
        answer = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if answer is None:
            raise AnsibleConnectionFailure("ssh: connect to host rollback-device port 22: Connection refused")
        return {"rc": 0, "stdout": f"{PENDING[0]['directory']} {answer}\n", "stderr": ""}


def confirm(script, alive=lambda: True):
    clock, action = Clock(), Action(script)
    return _confirm.confirm_pending(action, PENDING, 0.0, clock=clock, sleep=clock.sleep, alive=alive), action


def test_a_change_is_confirmed_over_a_fresh_connection():
    result, action = confirm(["waiting: the change has not been applied yet", "confirmed"])
    assert result["confirmed"] is True and result["confirmed_changes"] == ["tunnel mgmt"]
    assert action._connection.resets == 2, "every attempt starts over a new connection"
    assert " confirm /var/lib/netreach/pending/tunnel-mgmt" in action.commands[0]


def test_an_unreachable_host_rolls_back_and_the_task_says_why():
    result, action = confirm([None] * 40 + ["rolled-back: it was not confirmed within 30 s of going live"])
    assert result["failed"] and not result["confirmed"] and result["rolled_back"] == ["tunnel mgmt"]
    assert result["msg"].startswith("Rolled back: tunnel mgmt: the change was not confirmed because a fresh "
                                    "connection to the host failed"), result["msg"]
    assert "put the previous unit, configuration, known_hosts and key back by itself" in result["msg"]
    assert "within 30 s of going live" in result["msg"] and len(action.commands) == 41


def test_a_host_that_rolled_back_first_is_reported_so():
    result, _action = confirm(["rolled-back: it was not confirmed within 30 s of going live"])
    assert result["failed"] and "because no fresh connection reached the host" in result["msg"]
    assert "(it was not confirmed within 30 s of going live)" in result["msg"]


def test_a_host_that_never_answers_again_is_reported_so():
    result, _action = confirm([None])
    assert result["failed"] and result["rolled_back"] == []
    assert "the host did not answer again" in result["msg"]


def test_a_worker_whose_controller_was_killed_confirms_nothing():
    result, action = confirm(["confirmed"], alive=lambda: False)
    assert action.commands == [] and action._connection.resets == 0, "not one confirmation attempt"
    assert result["failed"] and not result["confirmed"] and result["confirm_attempts"] == 0
    assert "because the controller that ran this task died during the wait" in result["msg"]
    assert "no attempt was made to reach it again" in result["msg"]


def test_a_controller_killed_between_two_attempts_stops_the_attempts():
    answers = iter([True, True, False])
    result, action = confirm(["waiting: the change has not been applied yet"], alive=lambda: next(answers))
    assert len(action.commands) == 2 and result["failed"] and result["confirm_attempts"] == 2


def test_the_watch_tells_an_orphaned_worker():
    parents = iter([4242, 4242, 1])
    alive = _confirm.controller_watch(parent=lambda: next(parents))
    assert alive() is True and alive() is False, "reparented (to init or a subreaper): the controller is gone"


def test_a_change_says_what_its_rollback_puts_back():
    pending = [dict(PENDING[0], restores="put the previous authorized_keys and sshd drop-in back by itself")]
    clock, action = Clock(), Action(["rolled-back: it was not confirmed within 30 s of going live"])
    result = _confirm.confirm_pending(action, pending, 0.0, clock=clock, sleep=clock.sleep)
    assert "the host put the previous authorized_keys and sshd drop-in back by itself (it was not" in result["msg"]
