# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: the change engine, the only code of the collection that changes a
# host. Not a public API; it may change at any time.
"""Plan typed steps, report them (check mode, diff with secrets masked), and only then carry them out, confined.

A module parses its declaration, then adds steps to a Plan: files, directories, removals, a system user, a locked
account (created or locked again, then read back), unit states (one `systemctl show` per plan), commands,
consumer read-backs and a confirmed transaction. Every path a step touches is a Target: a root the module owns
plus validated name parts. The engine resolves a Target one component at a time with
O_NOFOLLOW below its root, so a symbolic link anywhere under the root is refused, never followed: at plan time
and again at the moment of each write, rename or unlink (a path that became a link between the two is caught).
`commit()` holds the only check-mode guard and builds the one result shape every module returns.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile

from ansible_collections.netreach.tunnels.plugins.module_utils._declaration import USER_RE
from ansible_collections.netreach.tunnels.plugins.module_utils._engine_fs import (
    COMPONENT_RE,
    Account,
    ConfinementError,
    Host,
    Target,
    group_exists,
    ids,
    read_account,
    target,
    target_of,
    user_exists,
)
from ansible_collections.netreach.tunnels.plugins.module_utils._engine_steps import (
    NOLOGIN,
    AccountStep,
    CommandStep,
    DirStep,
    DisarmStep,
    FileStep,
    GeneratedStep,
    ReadBackStep,
    RemoveStep,
    RequireStep,
    Step,
    TransactionStep,
)

# What modules import from the engine: the plan, its targets and the steps they build themselves.
__all__ = ["ConfinementError", "FileStep", "Plan", "Step", "Target", "TransactionStep", "target", "target_of",
           "user_exists"]

MASK = "********"
# What one `systemctl show` of a plan asks of every unit; UnitFileState values `systemctl is-enabled` exits 0 for.
UNIT_PROPERTIES = ("ActiveState", "UnitFileState", "LoadState")
ENABLED_STATES = frozenset({"enabled", "enabled-runtime", "static", "alias", "indirect", "generated", "transient"})
# Where the account step makes a new account's home (useradd's default HOME on Debian).
HOME_BASE = "/home"


# --- the plan ---------------------------------------------------------------------------------------------


class Plan:
    """The changes of one module run, decided before anything is written."""

    def __init__(self, module, secrets: list[str] | None = None, fs_root: str | None = None) -> None:
        self.module = module
        self.host = Host(fs_root or getattr(module, "netreach_fs_root", None) or "/")
        self.secrets: list[str] = [s for s in (secrets or []) if s]
        self.steps: list[Step] = []
        self.extra: dict = {}
        self._scratch: str | None = None
        # Commands that undo an armed change whose module fails before handing it over (see undo_on_failure).
        self._undo: list[list[str]] = []
        # The units' properties, read at plan time (nothing runs before the commit): one `systemctl show` for the
        # first unit asked about and every unit announced by expect_units() before it.
        self._units: dict[str, dict[str, str]] = {}
        self._expected: list[str] = []

    # --- masking and failing: one place ----------------------------------------------------------------
    def add_secrets(self, *values: str | None) -> None:
        self.secrets.extend(v for v in values if v)

    def mask(self, text: str) -> str:
        for secret in sorted(set(self.secrets), key=len, reverse=True):
            text = text.replace(secret, MASK)
        return text

    def fail(self, field_name: str | None, msg: str, **extra) -> None:
        self._run_undo()
        if field_name:
            extra["field"] = field_name
        self.module.fail_json(msg=self.mask(msg), **extra)

    def guard(self, function, *args, **kwargs):
        """FUNCTION(*ARGS) with a ConfinementError turned into a failure naming its field."""
        try:
            return function(*args, **kwargs)
        except ConfinementError as exc:
            self.fail(exc.field, str(exc))

    @contextlib.contextmanager
    def undo_on_failure(self, command: list[str] | None):
        """Within the block, a failure of the run (a step that fails, or raises) runs COMMAND first: an armed
        change puts its files back at once rather than when its timer fires."""
        if command:
            self._undo.append(list(command))
        try:
            yield
        except BaseException:
            self._run_undo()
            raise
        finally:
            if command and command in self._undo:
                self._undo.remove(command)

    def _run_undo(self) -> None:
        while self._undo:
            self.module.run_command(self._undo.pop())

    # --- reading ----------------------------------------------------------------------------------------
    def read(self, tgt: Target) -> str | None:
        return self.guard(self.host.read, tgt)

    def listdir(self, tgt: Target) -> list[str]:
        return self.guard(self.host.listdir, tgt)

    def kind(self, tgt: Target) -> str | None:
        return self.guard(self.host.kind, tgt)

    def read_foreign(self, path: str) -> str | None:
        return self.host.read_foreign(path)

    def query(self, args: list[str], data: str | None = None) -> tuple[int, str, str]:
        """A read-only command (systemctl show, nft list, nft -c -f /dev/stdin with DATA): runs in check mode too."""
        return self.module.run_command(args, data=data)

    def expect_units(self, *units: str) -> None:
        """UNITS will be asked about (unit_state, unit_loaded): they are read with the first one asked."""
        self._expected.extend(unit for unit in units if unit not in self._expected)

    def _unit_properties(self, unit: str) -> dict[str, str]:
        if unit not in self._units:
            batch = list(dict.fromkeys([unit, *(name for name in self._expected if name not in self._units)]))
            rc, out, _err = self.query(["systemctl", "show", f"--property={','.join(UNIT_PROPERTIES)}", *batch])
            # One block per unit, in the order given, separated by blank lines. No systemd (or an answer of
            # another shape): nothing is active, enabled or loaded.
            blocks = [dict(line.partition("=")[::2] for line in block.splitlines() if "=" in line)
                      for block in out.strip().split("\n\n")] if rc == 0 else []
            self._units.update(zip(batch, blocks if len(blocks) == len(batch) else [{} for _name in batch]))
        return self._units[unit]

    def unit_state(self, unit: str) -> tuple[bool, bool]:
        """(active, enabled) of UNIT; "activating" counts as active: a unit between two attempts is started.
        Enabled as `systemctl is-enabled` says (static, indirect, generated... included)."""
        properties = self._unit_properties(unit)
        return (properties.get("ActiveState") in ("active", "activating", "reloading"),
                properties.get("UnitFileState") in ENABLED_STATES)

    def unit_loaded(self, unit: str) -> bool:
        """Whether systemd knows UNIT (its file exists), from the same `systemctl show` as unit_state."""
        return self._unit_properties(unit).get("LoadState") == "loaded"

    def account(self, name: str) -> Account | None:
        return read_account(self.host, name)

    # --- planning ---------------------------------------------------------------------------------------
    def _add(self, step: Step) -> Step:
        self.steps.append(step)
        return step

    def file(self, tgt: Target, content: str | None, mode: int = 0o644, owner: str = "root",
             group: str | None = None, validate: list[str] | None = None, show: bool = True,
             check_live: list[str] | None = None) -> bool:
        """TGT holds CONTENT with MODE/OWNER/GROUP (None: TGT is absent). Returns whether that is a change.
        CHECK_LIVE: a command run on the live configuration right after the change; when it fails, the previous
        content is put back (or the new file removed) and the run fails."""
        before = self.read(tgt)
        if content is None:
            changed = self.remove(tgt)
            if changed and check_live:
                self.steps[-1].check_live, self.steps[-1].previous = list(check_live), before
            return changed
        meta = self._meta_differs(tgt, mode, owner, group) if before is not None else True
        if before == content and not meta:
            return False
        shown_before, shown_after = (before or "", content) if show else (
            "(not shown)\n" if before is not None else "", "(not shown)\n")
        self._add(FileStep(f"write {tgt.path}", True, _titled(tgt.path, shown_before, before is not None),
                           _titled(tgt.path, shown_after, True), tgt, content, mode, owner, group, validate,
                           list(check_live) if check_live else None, before))
        return True

    def _meta_differs(self, tgt: Target, mode: int, owner: str, group: str | None) -> bool:
        info = self.guard(self.host.lstat, tgt)
        wanted = ids(owner, group)
        return wanted is None or (info.st_mode & 0o7777) != mode or (info.st_uid, info.st_gid) != wanted

    def directory(self, tgt: Target, mode: int = 0o755, owner: str = "root", group: str | None = None) -> bool:
        kind = self.kind(tgt)
        if kind == "dir" and not self._meta_differs(tgt, mode, owner, group):
            return False
        if kind == "link":
            self.fail(tgt.field, f"{tgt.path} is a symbolic link; refusing to follow or replace it")
        if kind not in (None, "dir"):
            self.fail(tgt.field, f"{tgt.path} exists and is not a directory")
        self._add(DirStep(f"directory {tgt.path}", True, "" if kind is None else f"# {tgt.path}/ (other mode or owner)\n",
                          f"# {tgt.path}/ {mode:04o} {owner}:{group or owner}\n", tgt, mode, owner, group))
        return True

    def remove(self, tgt: Target) -> bool:
        kind = self.kind(tgt)
        if kind is None:
            return False
        if kind == "dir":
            self.fail(tgt.field, f"{tgt.path} is a directory where a file of ours belongs; refusing to remove it")
        self._add(RemoveStep(f"remove {tgt.path}", True, f"# {tgt.path}\n", f"# {tgt.path}: removed\n", tgt))
        return True

    def remove_tree(self, tgt: Target, keep: set[str] = frozenset()) -> bool:
        """Remove the plain files directly in directory TGT but KEEP, then TGT itself when nothing is kept.
        Anything else in it (a link, a directory not removed by an earlier step) is refused: our directories
        hold plain files only."""
        if self.kind(tgt) is None:
            return False
        changed = False
        # An entry an earlier step of this plan removes (an emptied subdirectory, say) counts as gone.
        removed = {step.tgt.path for step in self.steps if isinstance(step, RemoveStep)}
        entries = [entry for entry in self.listdir(tgt) if f"{tgt.path}/{entry}" not in removed]
        for entry in entries:
            if entry in keep:
                continue
            child = tgt.child(entry) if COMPONENT_RE.fullmatch(entry) else None
            kind = self.kind(child) if child is not None else "an odd name"
            if kind != "file":
                what = "a symbolic link" if kind == "link" else "not a plain file"
                self.fail(tgt.field, f"{tgt.path}/{entry} is {what}; refusing to remove {tgt.path}")
            changed |= self.remove(child)
        if not keep.intersection(entries):
            self._add(RemoveStep(f"remove {tgt.path}/", True, f"# {tgt.path}/\n", f"# {tgt.path}/: removed\n",
                                 tgt, directory=True))
            changed = True
        return changed

    def require_user(self, name: str, field_name: str, label: str) -> bool:
        """USER must exist by the time the run gets here (another task creates it; in check mode it may not
        exist yet): reported as the change LABEL, failing naming FIELD_NAME at commit when it is still missing."""
        self._add(RequireStep(label, True, "", f"# {label}\n", name, field_name))
        return True

    def system_user(self, name: str, home: str = "/nonexistent") -> bool:
        if user_exists(name):
            return False
        self._add(CommandStep(f"system user {name}", True, "", f"# system user {name} created\n",
                              ["useradd", "--system", "--user-group", "--home-dir", home, "--no-create-home",
                               "--shell", "/usr/sbin/nologin", name]))
        return True

    def locked_account(self, name: str, field_name: str = "accounts") -> bool:
        """NAME is a dedicated system account that cannot log in: shell /usr/sbin/nologin, password locked, a home
        (made at creation: HOME_BASE/NAME) for its authorized_keys. A new one is created; an existing system account
        with a login shell or a usable password is brought to that state. An existing ordinary account (uid 0, or
        from the host's UID_MIN up) is refused, naming FIELD_NAME: locking it would lock a person or an admin out."""
        if not isinstance(name, str) or not USER_RE.fullmatch(name) or name == "root":
            self.fail(field_name, f"{field_name}: {name!r} is not a tunnel account name (a user name, never root)")
        account = self.account(name)
        if account is None:
            home = f"{HOME_BASE}/{name}"
            group = ["--gid", name] if group_exists(self.host, name) else ["--user-group"]
            self._add(AccountStep(f"account {name}", True, "",
                                  f"# account {name}: created, locked, shell {NOLOGIN}, home {home}\n", name,
                                  field_name, ["useradd", "--system", *group, "--create-home", "--home-dir", home,
                                               "--shell", NOLOGIN, name]))
            return True
        uid_min = self._uid_min()
        if account.uid == 0 or account.uid >= uid_min:
            self.fail(field_name, f"{field_name}: {name} is an existing ordinary account (uid {account.uid}; system "
                                  f"accounts are below {uid_min}); a tunnel account must be a dedicated system "
                                  "account, so it is not locked nor its shell taken away: choose another name")
        if account.shell == NOLOGIN and account.locked:
            return False
        args, changes = ["usermod"], []
        if account.shell != NOLOGIN:
            args += ["--shell", NOLOGIN]
            changes.append(f"shell {account.shell} -> {NOLOGIN}")
        if not account.locked:
            args.append("--lock")
            changes.append("password locked")
        self._add(AccountStep(f"account {name}", True, f"# account {name}: {account}\n",
                              f"# account {name}: existing, brought to the locked state: {', '.join(changes)}\n",
                              name, field_name, [*args, name]))
        return True

    def _uid_min(self) -> int:
        for line in (self.read_foreign("/etc/login.defs") or "").splitlines():
            words = line.split()
            if len(words) == 2 and words[0] == "UID_MIN" and words[1].isdigit():
                return int(words[1])
        return 1000

    def command(self, args: list[str], label: str = "", changed: bool = True, after_changes: bool = False,
                check: bool = True, data: str | None = None) -> bool:
        """Run ARGS at commit; CHANGED: it counts (and shows) as a change; AFTER_CHANGES: only after one."""
        text = label or " ".join(args)
        self._add(CommandStep(text, changed, "", f"# {text}\n" if changed else "", list(args), check, after_changes,
                              data))
        return changed

    def daemon_reload(self) -> None:
        """systemctl daemon-reload at this point, when an earlier step changed anything."""
        self.command(["systemctl", "daemon-reload"], changed=False, after_changes=True)

    def unit(self, unit: str, action: str | None = None, enabled: bool | None = None) -> bool:
        """Make UNIT enabled/disabled as ENABLED says and carry out ACTION (start, stop, restart, reload,
        try-restart, disable --now). The caller decides ACTION from unit_state() and the steps before."""
        changed = False
        if enabled is not None:
            is_enabled = self.unit_state(unit)[1]
            if enabled != is_enabled:
                changed |= self.command(["systemctl", "enable" if enabled else "disable", unit])
        if action:
            changed |= self.command(["systemctl", *action.split(), unit])
        return changed

    def generated(self, args: list[str], files: list[tuple[str, Target, int, str, str | None]]) -> bool:
        """Files a tool makes (%s: a scratch directory), installed at TARGET with (mode, owner, group)."""
        steps = [(name, FileStep(f"write {tgt.path}", True, "", "", tgt, "", mode, owner, group))
                 for name, tgt, mode, owner, group in files]
        paths = ", ".join(tgt.path for _name, tgt, _m, _o, _g in files)
        self._add(GeneratedStep(f"generate {paths}", True, "", f"# {paths}: generated by {args[0]}\n", list(args),
                                steps))
        return True

    def read_back(self, args: list[str], check_output, layer: str) -> None:
        self._add(ReadBackStep(f"read back {layer}", False, "", "", list(args), check_output, layer))

    def transaction(self, step: TransactionStep) -> bool:
        self._add(step)
        return step.changed

    def all_steps(self) -> list[Step]:
        """The plan's steps with those an armed transaction carries out inside it."""
        found = []
        for step in self.steps:
            found.append(step)
            found.extend(getattr(step, "live", []))
        return found

    def disarm(self, timer: str, service: str, marker: Target) -> bool:
        """Confirm an armed transaction: unless its rollback has run (MARKER exists) or is no longer armed (TIMER
        inactive), stop TIMER at commit and wait out SERVICE; the steps added after this one run only when the
        rollback did not win. A failure carries `answer` (rolled-back, not-armed) for the action plugin."""
        if self.kind(marker) is not None:
            self.fail(marker.field, "the change was rolled back before it could be confirmed", answer="rolled-back")
        if not self.unit_state(timer)[0]:
            self.fail(marker.field, f"the change is no longer armed ({timer} is not active): nothing to confirm",
                      answer="not-armed")
        self._add(DisarmStep(f"disarm {timer}", True, "", f"# {timer}: stopped, the change confirmed\n", timer,
                             service, marker))
        return True

    @property
    def changed(self) -> bool:
        return any(step.changed for step in self.steps)

    def changed_paths(self) -> list[str]:
        return [step.tgt.path for step in self.all_steps() if isinstance(step, (FileStep, RemoveStep)) and step.changed]

    # --- committing -------------------------------------------------------------------------------------
    def commit(self, **extra) -> dict:
        """Carry out every step (never in check mode) and return the module's result."""
        if not self.module.check_mode:
            self._prevalidate()
            for step in self.steps:
                self.guard(step.run, self)
        return self.result(**extra)

    def result(self, **extra) -> dict:
        result = dict(changed=self.changed, **extra)
        result.update(self.extra)
        if self.module._diff:
            before = "".join(self.mask(step.before) for step in self.steps if step.changed)
            after = "".join(self.mask(step.after) for step in self.steps if step.changed)
            result["diff"] = {"before": before, "after": after}
        return result

    def _prevalidate(self) -> None:
        """Every validated file is checked by its own tool before any step runs: a rejected one changes nothing."""
        for step in self.all_steps():
            if not isinstance(step, FileStep) or not step.validate:
                continue
            scratch = tempfile.mkdtemp(prefix="netreach-", dir=self.scratch_dir())
            try:
                path = os.path.join(scratch, step.tgt.parts[-1])
                with open(path, "w", encoding="utf-8", newline="") as stream:
                    stream.write(step.content)
                os.chmod(path, step.mode)
                rc, out, err = self.run([arg.replace("%s", path) for arg in step.validate], check=False)
                if rc != 0:
                    self.fail(step.tgt.field, f"{step.tgt.path}: the new content failed validation by "
                                              f"{step.validate[0]}; nothing was changed: {(err or out).strip()}",
                              rc=rc)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)

    def scratch_dir(self) -> str | None:
        return getattr(self.module, "tmpdir", None)

    def run(self, args: list[str], check: bool = True, data: str | None = None) -> tuple[int, str, str]:
        rc, out, err = self.module.run_command(args, data=data)
        if check and rc != 0:
            self.fail(None, f"{' '.join(args[:3])} failed: {(err or out).strip()}", rc=rc)
        return rc, out, err

    def live_check(self, step: FileStep | RemoveStep) -> None:
        """STEP's check on the live configuration; on failure the previous state comes back, then the run fails."""
        if not step.check_live:
            return
        rc, out, err = self.run(step.check_live, check=False)
        if rc == 0:
            return
        if step.previous is None:
            RemoveStep(f"put back {step.tgt.path}", True, tgt=step.tgt)._unlink(self)
        else:
            mode, owner, group = (step.mode, step.owner, step.group) if isinstance(step, FileStep) else (0o644, "root", None)
            self.write(FileStep(f"put back {step.tgt.path}", True, tgt=step.tgt, content=step.previous, mode=mode,
                                owner=owner, group=group))
        self.fail(step.tgt.field, f"{' '.join(step.check_live[:2])} rejected the configuration with {step.tgt.path}, "
                                  f"which was put back as it was: {(err or out).strip()}", rc=rc)

    def require_ids(self, owner: str, group: str | None, tgt: Target) -> tuple[int, int]:
        wanted = ids(owner, group)
        if wanted is None:
            self.fail(tgt.field, f"{tgt.path}: the owner {owner}:{group or owner} does not exist")
        return wanted

    def write(self, step: FileStep) -> None:
        """STEP's content into a new file beside its target, then renamed over it: both through descriptors
        opened without following links, so a link that appeared since the plan is refused, not followed."""
        uid, gid = self.require_ids(step.owner, step.group, step.tgt)
        self.host.refuse_link(step.tgt)
        fd = self.host.open_dir(step.tgt.parent, create=(0o755 if uid == 0 else 0o700, uid, gid))
        name = step.tgt.parts[-1]
        temp = f".netreach-{os.urandom(6).hex()}"
        try:
            handle = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                             dir_fd=fd)
            try:
                with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
                    stream.write(step.content)
                    stream.flush()
                    os.fchown(stream.fileno(), uid, gid)
                    os.fchmod(stream.fileno(), step.mode)
                os.rename(temp, name, src_dir_fd=fd, dst_dir_fd=fd)
            except BaseException:
                try:
                    os.unlink(temp, dir_fd=fd)
                except FileNotFoundError:
                    pass
                raise
        finally:
            os.close(fd)


def _titled(path: str, text: str, exists: bool) -> str:
    return f"# {path}\n{text}" if exists else ""
