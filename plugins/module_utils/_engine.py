# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: the change engine, the only code of the collection that changes a
# host. Not a public API; it may change at any time.
"""Plan typed steps, report them (check mode, diff with secrets masked), and only then carry them out, confined.

A module parses its declaration, then adds steps to a Plan: files, directories, removals, a system user, unit
states, commands, consumer read-backs and a confirmed transaction. Every path a step touches is a Target: a
root the module owns plus validated name parts. The engine resolves a Target one component at a time with
O_NOFOLLOW below its root, so a symbolic link anywhere under the root is refused, never followed: at plan time
and again at the moment of each write, rename or unlink (a path that became a link between the two is caught).
`commit()` holds the only check-mode guard and builds the one result shape every module returns.
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass, field

MASK = "********"
# One path component a module may derive from a name: no separator, no NUL, not "." or "..", no leading blank.
COMPONENT_RE = re.compile(r"^(?!\.{1,2}$)[A-Za-z0-9._@+=:,%-][A-Za-z0-9._@+=:,% ~-]{0,254}$")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class ConfinementError(Exception):
    """A path would leave its root or pass through a symbolic link; `field` names the declaration behind it."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


@dataclass(frozen=True)
class Target:
    """A path as ROOT (a directory the module owns) plus PARTS (validated components below it)."""

    root: str
    parts: tuple[str, ...]
    field: str = "name"

    @property
    def path(self) -> str:
        return os.path.join(self.root, *self.parts)

    @property
    def parent(self) -> Target:
        return Target(self.root, self.parts[:-1], self.field)

    def child(self, *parts: str) -> Target:
        return target(self.root, *self.parts, *parts, field=self.field)


def target(root: str, *parts: str, field: str = "name") -> Target:
    """The Target PARTS under ROOT, or ConfinementError naming FIELD when a part could leave the root."""
    if not root.startswith("/") or os.path.normpath(root) != root:
        raise ConfinementError(field, f"{root!r} is not a normalised absolute root")
    for part in parts:
        if not isinstance(part, str) or not COMPONENT_RE.fullmatch(part):
            raise ConfinementError(field, f"{part!r} is not a plain path component (no '/', '.', '..' or blanks "
                                          f"at the start): refusing a path outside {root}")
    return Target(root, tuple(parts), field)


def target_of(root: str, path: str, field: str = "path") -> Target:
    """PATH (absolute) as a Target under ROOT, or ConfinementError when it is not below ROOT."""
    if not isinstance(path, str) or not path.startswith("/") or os.path.normpath(path) != path.rstrip("/"):
        raise ConfinementError(field, f"{path!r} is not a normalised absolute path")
    relative = os.path.relpath(path, root)
    if relative == "." or relative.startswith(".."):
        raise ConfinementError(field, f"{path} is not below {root}, which this module manages")
    return target(root, *relative.split("/"), field=field)


# --- reading and resolving, confined ------------------------------------------------------------------


class Host:
    """The file system as the engine sees it: FS_ROOT stands for '/' (a temporary directory in unit tests)."""

    def __init__(self, fs_root: str = "/") -> None:
        self.fs_root = fs_root

    def real(self, path: str) -> str:
        return path if self.fs_root == "/" else os.path.join(self.fs_root, path.lstrip("/"))

    def _root_fd(self, tgt: Target) -> int | None:
        """An open descriptor of TGT's root, or None when it does not exist. The root is the module's trusted
        anchor: a link in it is followed only when root owns the link (Debian's /var/run, say)."""
        current = self.fs_root
        for part in [p for p in tgt.root.split("/") if p]:
            current = os.path.join(current, part)
            try:
                info = os.lstat(current)
            except FileNotFoundError:
                return None
            if stat.S_ISLNK(info.st_mode) and info.st_uid != 0:
                raise ConfinementError(tgt.field, f"{tgt.root} passes through a symbolic link owned by uid "
                                                  f"{info.st_uid} ({current}); refusing it")
        try:
            return os.open(self.real(tgt.root), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None

    def open_dir(self, tgt: Target, create: tuple[int, int, int] | None = None) -> int | None:
        """An O_NOFOLLOW descriptor of directory TGT, or None when a component is missing (CREATE: make the
        missing ones with (mode, uid, gid)). A link or a non-directory on the way is a ConfinementError."""
        fd = self._root_fd(tgt)
        if fd is None:
            if create is None:
                return None
            self._make_root(tgt, create)
            fd = self._root_fd(tgt)
        walked = tgt.root
        for part in tgt.parts:
            walked = os.path.join(walked, part)
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if create is None:
                    os.close(fd)
                    return None
                os.mkdir(part, 0o700, dir_fd=fd)
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                os.fchown(child, create[1], create[2])
                os.fchmod(child, create[0])
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                    kind = "a symbolic link" if self._is_link(walked) else "not a directory"
                    raise ConfinementError(tgt.field, f"{walked} is {kind}; refusing to follow it") from None
                raise
            os.close(fd)
            fd = child
        return fd

    def _make_root(self, tgt: Target, create: tuple[int, int, int]) -> None:
        missing = []
        path = tgt.root
        while path != "/" and not os.path.lexists(self.real(path)):
            missing.append(path)
            path = os.path.dirname(path)
        for path in reversed(missing):
            os.mkdir(self.real(path), 0o755)

    def _is_link(self, path: str) -> bool:
        return os.path.islink(self.real(path))

    def lstat(self, tgt: Target) -> os.stat_result | None:
        """TGT's own status (a link is not followed), None when it or a parent directory is missing."""
        if not tgt.parts:
            fd = self._root_fd(tgt)
            if fd is None:
                return None
            try:
                return os.fstat(fd)
            finally:
                os.close(fd)
        fd = self.open_dir(tgt.parent)
        if fd is None:
            return None
        try:
            return os.stat(tgt.parts[-1], dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        finally:
            os.close(fd)

    def kind(self, tgt: Target) -> str | None:
        """'file', 'dir', 'link', 'other' or None (absent)."""
        info = self.lstat(tgt)
        if info is None:
            return None
        if stat.S_ISLNK(info.st_mode):
            return "link"
        return "file" if stat.S_ISREG(info.st_mode) else "dir" if stat.S_ISDIR(info.st_mode) else "other"

    def refuse_link(self, tgt: Target) -> None:
        kind = self.kind(tgt)
        if kind == "link":
            raise ConfinementError(tgt.field, f"{tgt.path} is a symbolic link; refusing to follow or replace it")
        if kind == "other":
            raise ConfinementError(tgt.field, f"{tgt.path} is not a regular file or directory; refusing it")

    def read(self, tgt: Target) -> str | None:
        """TGT's text, None when absent; a link (at any level below the root) is a ConfinementError."""
        self.refuse_link(tgt)
        fd = self.open_dir(tgt.parent)
        if fd is None:
            return None
        try:
            handle = os.open(tgt.parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            raise ConfinementError(tgt.field, f"{tgt.path} is a directory, not a file") from None
        finally:
            os.close(fd)
        with os.fdopen(handle, encoding="utf-8", newline="") as stream:
            return stream.read()

    def listdir(self, tgt: Target) -> list[str]:
        """The names in directory TGT (sorted), [] when it is absent."""
        self.refuse_link(tgt)
        fd = self.open_dir(tgt)
        if fd is None:
            return []
        try:
            return sorted(os.listdir(fd))
        finally:
            os.close(fd)

    def read_foreign(self, path: str) -> str | None:
        """A file of another owner read for information only (/proc/sys, sshd_config): never written."""
        try:
            with open(self.real(path), encoding="utf-8", newline="") as stream:
                return stream.read()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None


def ids(owner: str, group: str | None = None) -> tuple[int, int] | None:
    """(uid, gid) of OWNER (and GROUP, else OWNER's primary group); None while either does not exist."""
    try:
        entry = pwd.getpwnam(owner)
        return entry.pw_uid, entry.pw_gid if group is None else grp.getgrnam(group).gr_gid
    except KeyError:
        return None


def user_exists(name: str) -> bool:
    return ids(name) is not None


# --- steps ----------------------------------------------------------------------------------------------


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
        fd = plan.host.open_dir(self.tgt, create=(0o700, 0, 0))
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
class CommandStep(Step):
    args: list[str] = field(default_factory=list)
    check: bool = True
    # Run only when some earlier step changed (a daemon-reload after unit files, say); it is no change itself.
    after_changes: bool = False
    data: str | None = None

    def run(self, plan: Plan) -> None:
        if self.after_changes and not any(step.changed for step in plan.steps[:plan.steps.index(self)]):
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
    carries `pending_confirm` for the action plugin, which confirms over a fresh connection; without it, the
    confirm command runs right away and must print `confirmed`."""

    stage: list[FileStep] = field(default_factory=list)
    arm: list[str] | None = None
    disarm: list[str] | None = None
    apply: list[str] | None = None
    confirm: list[str] = field(default_factory=list)
    pending: dict = field(default_factory=dict)  # what the action plugin needs (token, timeout, timer, marker)

    def run(self, plan: Plan) -> None:
        for step in self.stage:
            plan.write(step)
        if self.arm:
            plan.run(self.arm)
        if self.apply:
            rc, out, err = plan.run(self.apply, check=False)
            if rc != 0:
                if self.disarm:
                    plan.run(self.disarm, check=False)
                plan.fail(None, f"{self.apply[0]} failed, the host kept its previous state: {(err or out).strip()}")
        if self.arm:
            plan.extra["pending_confirm"] = dict(self.pending, command=" ".join(self.confirm))
            return
        rc, out, err = plan.run(self.confirm, check=False)
        if rc != 0 or "confirmed" not in out:
            plan.fail(None, f"making the change the boot state failed: {(err or out).strip()}")


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

    # --- masking and failing: one place ----------------------------------------------------------------
    def add_secrets(self, *values: str | None) -> None:
        self.secrets.extend(v for v in values if v)

    def mask(self, text: str) -> str:
        for secret in sorted(set(self.secrets), key=len, reverse=True):
            text = text.replace(secret, MASK)
        return text

    def fail(self, field_name: str | None, msg: str, **extra) -> None:
        if field_name:
            extra["field"] = field_name
        self.module.fail_json(msg=self.mask(msg), **extra)

    def guard(self, function, *args, **kwargs):
        """FUNCTION(*ARGS) with a ConfinementError turned into a failure naming its field."""
        try:
            return function(*args, **kwargs)
        except ConfinementError as exc:
            self.fail(exc.field, str(exc))

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

    def unit_state(self, unit: str) -> tuple[bool, bool]:
        """(active, enabled) of UNIT; "activating" counts as active: a unit between two attempts is started."""
        state = self.query(["systemctl", "show", "--property=ActiveState", "--value", unit])[1].strip()
        enabled = self.query(["systemctl", "is-enabled", "--quiet", unit])[0] == 0
        return state in ("active", "activating", "reloading"), enabled

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
        Anything else in it (a link, a directory) is refused: our directories hold plain files only."""
        if self.kind(tgt) is None:
            return False
        changed = False
        entries = self.listdir(tgt)
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

    @property
    def changed(self) -> bool:
        return any(step.changed for step in self.steps)

    def changed_paths(self) -> list[str]:
        return [step.tgt.path for step in self.steps if isinstance(step, (FileStep, RemoveStep)) and step.changed]

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
        for step in self.steps:
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
