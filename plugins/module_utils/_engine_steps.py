# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: the change engine's typed steps (see _engine.py). Not a public API; it
# may change at any time.
"""The steps a Plan is made of; each carries its diff texts and knows how to carry itself out through the plan."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ansible_collections.netreach.tunnels.plugins.module_utils._engine_fs import Target, user_exists

NOLOGIN = "/usr/sbin/nologin"

if TYPE_CHECKING:  # the plan runs the steps; the steps only name it
    from ansible_collections.netreach.tunnels.plugins.module_utils._engine import Plan


@dataclass
class Step:
    """One change. `changed` is decided at plan time; `before`/`after` are the diff's texts."""

    label: str
    changed: bool = False
    before: str = ""
    after: str = ""

    def run(self, plan: Plan) -> None:  # pragma: no cover - every step type overrides it
        raise NotImplementedError


@dataclass
class FileStep(Step):
    tgt: Target | None = None
    content: str = ""
    mode: int = 0o644
    owner: str = "root"
    group: str | None = None
    validate: list[str] | None = None
    # Run after the rename, on the live configuration (sshd -t of the whole sshd config); on failure the previous
    # content (PREVIOUS, None: no file) is put back and the run fails.
    check_live: list[str] | None = None
    previous: str | None = None

    def run(self, plan: Plan) -> None:
        plan.write(self)
        plan.live_check(self)


@dataclass
class DirStep(Step):
    tgt: Target | None = None
    mode: int = 0o755
    owner: str = "root"
    group: str | None = None

    def run(self, plan: Plan) -> None:
        uid, gid = plan.require_ids(self.owner, self.group, self.tgt)
        # Missing parents are system directories (0755 root); the directory itself gets its mode and owner below.
        fd = plan.host.open_dir(self.tgt, create=(0o755, 0, 0))
        try:
            os.fchown(fd, uid, gid)
            os.fchmod(fd, self.mode)
        finally:
            os.close(fd)


@dataclass
class RemoveStep(Step):
    tgt: Target | None = None
    directory: bool = False  # remove an (emptied) directory rather than a file
    check_live: list[str] | None = None  # as FileStep.check_live
    previous: str | None = None

    def run(self, plan: Plan) -> None:
        self._unlink(plan)
        plan.live_check(self)

    def _unlink(self, plan: Plan) -> None:
        plan.host.refuse_link(self.tgt)
        fd = plan.host.open_dir(self.tgt.parent)
        if fd is None:
            return
        try:
            if self.directory:
                os.rmdir(self.tgt.parts[-1], dir_fd=fd)
            else:
                os.unlink(self.tgt.parts[-1], dir_fd=fd)
        except FileNotFoundError:
            pass
        finally:
            os.close(fd)


@dataclass
class RequireStep(Step):
    """A user that must exist when the run reaches this step (made by an earlier task or step)."""

    user: str = ""
    field_name: str = "name"

    def run(self, plan: Plan) -> None:
        if not user_exists(self.user):
            plan.fail(self.field_name, f"{self.field_name}: the user {self.user} does not exist on this host")


@dataclass
class AccountStep(Step):
    """A tunnel account brought to the locked, shell-less state by ARGS (useradd or usermod), then read back: the
    run fails unless the account exists with the shell NOLOGIN and a locked password."""

    user: str = ""
    field_name: str = "accounts"
    args: list[str] = field(default_factory=list)

    def run(self, plan: Plan) -> None:
        plan.run(self.args)
        account = plan.account(self.user)
        if account is None or account.shell != NOLOGIN or not account.locked:
            plan.fail(self.field_name, f"{self.field_name}: {self.args[0]} ran, but the account {self.user} is not "
                                       f"locked with the shell {NOLOGIN}: {account}")


@dataclass
class CommandStep(Step):
    args: list[str] = field(default_factory=list)
    check: bool = True
    # Run only when some earlier step changed (a daemon-reload after unit files, say); it is no change itself.
    after_changes: bool = False
    data: str | None = None

    def run(self, plan: Plan) -> None:
        # By identity: a second daemon-reload equals the first, and list.index() would find the first one.
        position = next(index for index, step in enumerate(plan.steps) if step is self)
        if self.after_changes and not any(step.changed for step in plan.steps[:position]):
            return
        plan.run(self.args, check=self.check, data=self.data)


@dataclass
class ReadBackStep(Step):
    """The consumer's own reader, run last: CHECK(stdout) returns what is wrong, or None. Never a change."""

    args: list[str] = field(default_factory=list)
    check_output: object = None
    layer: str = ""

    def run(self, plan: Plan) -> None:
        rc, out, err = plan.run(self.args, check=False)
        problem = f"{self.args[0]} exited {rc}: {(err or out).strip()}" if rc != 0 else self.check_output(out)
        if problem:
            plan.fail(self.layer, f"{self.layer}: after writing, {' '.join(self.args[:3])} does not see the "
                                  f"declared setting: {problem}")


@dataclass
class GeneratedStep(Step):
    """Files made by a tool (ssh-keygen) in a scratch directory, then installed like FileSteps."""

    args: list[str] = field(default_factory=list)  # "%s" stands for the scratch directory
    files: list[tuple[str, FileStep]] = field(default_factory=list)  # (name the tool writes, where it goes)

    def run(self, plan: Plan) -> None:
        scratch = tempfile.mkdtemp(prefix="netreach-", dir=plan.scratch_dir())
        try:
            plan.run([arg.replace("%s", scratch) for arg in self.args])
            for name, step in self.files:
                with open(os.path.join(scratch, name), encoding="utf-8") as stream:
                    step.content = stream.read()
                plan.write(step)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


@dataclass
class TransactionStep(Step):
    """A change that goes live armed: stage files, arm the host-side rollback, apply. With ARM, the result
    carries `pending_confirm` (PENDING) for the action plugin, which confirms over a fresh connection through
    the module's confirm run (a DisarmStep, then the promotion as ordinary steps); without it, the staged files
    go once applied and the module's next steps make the change the boot state right away. LIVE: steps carried
    out once the rollback is armed (the new files of _engine_rollback.arm_files). COLLECT: one of several armed
    changes of a run; their pending confirmations, each with its host-side CONFIRM command, go to the list
    `pending_confirms`. ABORT: the command that puts the staged files back and stops the timer when a live step
    or the apply fails (the run then fails with nothing changed, and no timer is left to refuse the next run)."""

    stage: list[FileStep] = field(default_factory=list)
    arm: list[str] | None = None
    live: list[Step] = field(default_factory=list)
    collect: bool = False
    disarm: list[str] | None = None
    apply: list[str] | None = None
    confirm: list[str] = field(default_factory=list)  # COLLECT: the host-side confirm command
    pending: dict = field(default_factory=dict)  # what the action plugin needs (token, timeout, timer, marker)
    abort: list[str] | None = None

    def run(self, plan: Plan) -> None:
        for step in self.stage:
            plan.write(step)
        if self.arm:
            plan.run(self.arm)
        with plan.undo_on_failure(self.abort if self.arm else None):
            for step in self.live:
                step.run(plan)
            if self.apply:
                rc, out, err = plan.run(self.apply, check=False)
                if rc != 0:
                    if self.disarm:
                        plan.run(self.disarm, check=False)
                    plan.fail(None, f"{self.apply[0]} failed, the host kept its previous state: "
                                    f"{(err or out).strip()}")
        if self.arm and self.collect:
            plan.extra.setdefault("pending_confirms", []).append(dict(self.pending, command=list(self.confirm)))
            return
        if self.arm:
            plan.extra["pending_confirm"] = dict(self.pending)
            return
        for step in self.stage:
            RemoveStep(f"remove {step.tgt.path}", True, tgt=step.tgt)._unlink(plan)


@dataclass
class DisarmStep(Step):
    """The confirm side of an armed TransactionStep, run over a fresh connection: stop TIMER, let its SERVICE
    finish a restore that had already begun, and fail (answer `rolled-back`) when the restore left its MARKER.
    Only then may the steps after it make the change the boot state."""

    timer: str = ""
    service: str = ""
    marker: Target | None = None
    wait: float = 60.0  # the restore is one `nft -f`: seconds at most, bounded all the same

    def run(self, plan: Plan) -> None:
        plan.run(["systemctl", "stop", self.timer])
        deadline = time.monotonic() + self.wait
        while (plan.run(["systemctl", "is-active", "--quiet", self.service], check=False)[0] == 0
               and time.monotonic() < deadline):
            time.sleep(0.2)
        if plan.host.kind(self.marker) is not None:
            plan.fail(self.marker.field, f"the change was rolled back by {self.service} before it could be "
                                         "confirmed", answer="rolled-back")
