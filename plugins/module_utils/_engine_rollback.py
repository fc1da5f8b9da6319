# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: the change engine's confirm-or-roll-back of file changes. Not a public
# API; it may change at any time.
"""Arm a change of files: snapshot, stage, arm a host-side rollback, write, apply later, confirm over a new connection.

`arm_files()` turns steps a module planned (file writes, removals, generated files) into one TransactionStep:
the previous content of every path they touch is staged in a pending directory of ours (PENDING/OWNER) with a
manifest; a transient systemd timer (`systemd-run --on-active`, a unit of the host's manager: it outlives the
connection that armed it) runs the confirm program's `rollback` if the change is not applied in time; then the new
files are written and the APPLY commands are left to a second transient unit a moment later, so the module returns
before a restart can cut the connection it answers over. Once the change is live, the apply arms the rollback
anew: the timeout counts from then. The action plugin confirms over a fresh connection
(`netreach-confirm confirm DIR`), which stops the timer and drops the snapshot. The boot unit puts back whatever
is still pending at boot, before the network starts: a reboot during the wait boots the last confirmed state.

The host program is _engine_confirm.py, installed as it is; nothing here touches the host.
"""

from __future__ import annotations

import json
import secrets
import sys

from ansible_collections.netreach.tunnels.plugins.module_utils import _engine_confirm
from ansible_collections.netreach.tunnels.plugins.module_utils._engine import (
    FileStep,
    Plan,
    Step,
    TransactionStep,
    target,
)
from ansible_collections.netreach.tunnels.plugins.module_utils._engine_steps import GeneratedStep, RemoveStep

PENDING = target("/var/lib", "netreach", "pending", field="rollback_timeout")
PROGRAM = target("/usr/local/lib", "netreach", "netreach-confirm", field="rollback_timeout")
BOOT_UNIT = "netreach-confirm-boot.service"
BOOT_UNIT_FILE = target("/etc/systemd/system", BOOT_UNIT, field="rollback_timeout")
# Seconds between the module's return and the delayed apply: the result travels back over the old connection first.
APPLY_DELAY = 2
# The first timer allows this much for the apply itself; once the change is live, the apply arms the rollback anew
# with the declared timeout. (The first one fires only when the apply never ran: nothing new is live then.)
APPLY_GRACE = 120
# The bounds of a rollback timeout: long enough for a fresh connection and a restart, short enough to wait out.
TIMEOUT_RANGE = (10, 3600)


def program_text() -> str:
    """The confirm program as it is installed (through its loader: inside AnsiballZ's zip open() cannot reach it)."""
    return _engine_confirm.__loader__.get_data(_engine_confirm.__file__).decode("utf-8")


def check_timeout(value) -> int:
    """0 (no confirm step) or seconds within TIMEOUT_RANGE; returns it, or raises ValueError saying why."""
    low, high = TIMEOUT_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or (value != 0 and not low <= value <= high):
        raise ValueError(f"must be 0 (apply without a confirm step) or a whole number of seconds from {low} to "
                         f"{high}, got {value!r}")
    return value


def render_boot_unit(python: str) -> str:
    return f"""\
# netreach.tunnels: at boot, put back every change that was never confirmed, before the network and the tunnels start.
[Unit]
Description=netreach: restore the last confirmed state of changes that were never confirmed
DefaultDependencies=no
Wants=network-pre.target
Before=network-pre.target shutdown.target
After=local-fs.target
Conflicts=shutdown.target
ConditionDirectoryNotEmpty={PENDING.path}

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart={python} {PROGRAM.path} boot {PENDING.path}

[Install]
WantedBy=sysinit.target
"""


def plan_support(plan: Plan) -> None:
    """The confirm program, the pending directory and the enabled boot unit: planned on every run that may arm."""
    if plan.module.get_bin_path("systemd-run") is None or plan.kind(target("/run", "systemd", "system")) != "dir":
        plan.fail("rollback_timeout", "rollback_timeout needs systemd (systemd-run) on the host; set "
                                      "rollback_timeout: 0 to apply without the confirm step")
    plan.directory(PROGRAM.parent, 0o755)
    plan.file(PROGRAM, program_text(), 0o755, show=False)
    plan.directory(PENDING.parent, 0o755)
    plan.directory(PENDING, 0o700)
    plan.file(BOOT_UNIT_FILE, render_boot_unit(python()), 0o644)
    plan.daemon_reload()
    plan.unit(BOOT_UNIT, enabled=True)


def python() -> str:
    return sys.executable or "/usr/bin/python3"


def supersede(plan: Plan, owner: str) -> None:
    """An earlier change of OWNER that is still armed refuses this one (its snapshot is the last confirmed state);
    one that was rolled back, or whose timer is gone, is removed."""
    directory = plan.guard(PENDING.child, owner)
    if plan.kind(directory) is None:
        return
    text = plan.read(directory.child(_engine_confirm.MANIFEST))
    manifest = json.loads(text) if text else {}
    armed = [name for name in (manifest.get("timer"), manifest.get("live_timer")) if name
             and plan.query(["systemctl", "is-active", "--quiet", name])[0] == 0]
    if armed:
        timer = armed[0]
        plan.fail("rollback_timeout", f"rollback_timeout: an earlier change ({owner}) still waits for its "
                                      f"confirmation (timer {timer}); nothing was changed, try again once it is "
                                      "confirmed or rolled back")
    plan.remove_tree(directory)


def snapshot(plan: Plan, steps: list[Step]) -> list[tuple]:
    """(target, previous content or None, mode, uid, gid) of every path STEPS write or remove."""
    touched = []
    for step in steps:
        if isinstance(step, FileStep):
            touched.append((step.tgt, step.previous))
        elif isinstance(step, RemoveStep):
            touched.append((step.tgt, plan.read(step.tgt)))
        elif isinstance(step, GeneratedStep):
            touched.extend((file_step.tgt, plan.read(file_step.tgt)) for _name, file_step in step.files)
    found = []
    for tgt, previous in touched:
        info = plan.guard(plan.host.lstat, tgt) if previous is not None else None
        found.append((tgt, previous, *((info.st_mode & 0o7777, info.st_uid, info.st_gid) if info else (0, 0, 0))))
    return found


def arm_files(plan: Plan, owner: str, steps: list[Step], timeout: int, apply: list[list[str]],
              restore: tuple[list[list[str]], list[list[str]]], label: str, restores: str | None = None
              ) -> TransactionStep:
    """STEPS (already planned, taken out of the plan by the caller) as one armed change of OWNER (a component
    name: tunnel-NAME, sshd-DROPIN). APPLY: the commands that make the new files live (run after the module
    returned); RESTORE: the commands before and after the snapshot is put back (stop a unit that did not exist;
    restart). RESTORES: what a rollback does, as the task's message says it ("put the previous ... back")."""
    supersede(plan, owner)
    token = secrets.token_hex(4)
    directory = plan.guard(PENDING.child, owner)
    unit = f"netreach-rollback-{owner}-{token}"
    files, stage = [], []
    for index, (tgt, previous, mode, uid, gid) in enumerate(snapshot(plan, steps)):
        name = f"snap-{index}" if previous is not None else None
        files.append({"path": tgt.path, "snapshot": name, "mode": mode, "uid": uid, "gid": gid})
        if name:
            stage.append(FileStep(f"snapshot {tgt.path}", tgt=directory.child(name), content=previous, mode=0o600))
    program = [python(), PROGRAM.path]
    rollback = [*program, "rollback", directory.path]
    rearm = ["systemd-run", "--quiet", "--collect", f"--unit={unit}-live", f"--on-active={timeout}s",
             "--timer-property=AccuracySec=100ms", f"--description=netreach rollback of {label}",
             *rollback, f"it was not confirmed within {timeout} s of going live"]
    manifest = {"owner": owner, "token": token, "timer": f"{unit}.timer", "service": f"{unit}.service",
                "live_timer": f"{unit}-live.timer", "live_service": f"{unit}-live.service", "rearm": rearm,
                "files": files, "apply": apply, "before_restore": restore[0], "after_restore": restore[1]}
    stage.append(FileStep(f"stage {directory.path}", tgt=directory.child(_engine_confirm.MANIFEST),
                          content=json.dumps(manifest, indent=1, sort_keys=True) + "\n", mode=0o600))
    arm = ["systemd-run", "--quiet", "--collect", f"--unit={unit}", f"--on-active={timeout + APPLY_GRACE}s",
           "--timer-property=AccuracySec=100ms", f"--description=netreach rollback of {label} (not applied)",
           *rollback, f"it was not applied and confirmed within {timeout + APPLY_GRACE} s"]
    delayed = ["systemd-run", "--quiet", "--collect", f"--unit=netreach-apply-{owner}-{token}",
               f"--on-active={APPLY_DELAY}s", "--timer-property=AccuracySec=100ms",
               f"--description=netreach apply of {label}", *program, "apply", directory.path]
    step = TransactionStep(
        label, True, "".join(s.before for s in steps if s.changed), "".join(s.after for s in steps if s.changed),
        stage=stage, arm=arm, live=list(steps), apply=delayed, confirm=[*program, "confirm", directory.path],
        collect=True, abort=[*program, "abort", directory.path, "the module failed before the change went live"],
        pending={"owner": owner, "label": label, "directory": directory.path, "timeout": timeout,
                 "timer": f"{unit}-live.timer", "apply_delay": APPLY_DELAY, "apply_grace": APPLY_GRACE,
                 "program": program, **({"restores": restores} if restores else {})})
    plan.transaction(step)
    return step
