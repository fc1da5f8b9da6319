# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: the change engine's view of the file system (see _engine.py). Not a
# public API; it may change at any time.
"""Targets (a root plus validated parts) and their confined resolution: below a root, no link is ever followed."""

from __future__ import annotations

import errno
import grp
import os
import pwd
import re
import stat
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Account:
    """A local account as the engine's account step sees it."""

    name: str
    uid: int
    home: str
    shell: str
    locked: bool  # the password field starts with '!' (passwd -S shows L)

    def __str__(self) -> str:
        return f"uid {self.uid}, home {self.home}, shell {self.shell}, password {'locked' if self.locked else 'usable'}"


def read_account(host: Host, name: str) -> Account | None:
    """NAME's account (None: no such account). The host's own user database (NSS) on '/'; in unit tests a fake
    root's etc/passwd (a fake root without one stands on the machine's accounts). The password's state comes from
    /etc/shadow (the passwd field when shadow has no line)."""
    passwd = None if host.fs_root == "/" else host.read_foreign("/etc/passwd")
    if passwd is None:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            return None
        fields = [entry.pw_name, entry.pw_passwd, str(entry.pw_uid), str(entry.pw_gid), "", entry.pw_dir,
                  entry.pw_shell]
    else:
        fields = _line_of(passwd, name, 7)
        if fields is None:
            return None
    shadow = _line_of(host.read_foreign("/etc/shadow"), name, 2)
    password = shadow[1] if shadow else fields[1]
    return Account(name, int(fields[2]), fields[5], fields[6], password.startswith("!"))


def _line_of(text: str | None, name: str, width: int) -> list[str] | None:
    for line in (text or "").splitlines():
        fields = line.split(":")
        if len(fields) >= width and fields[0] == name:
            return fields
    return None


def group_exists(host: Host, name: str) -> bool:
    groups = None if host.fs_root == "/" else host.read_foreign("/etc/group")
    if groups is not None:
        return _line_of(groups, name, 3) is not None
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def ids(owner: str, group: str | None = None) -> tuple[int, int] | None:
    """(uid, gid) of OWNER (and GROUP, else OWNER's primary group); None while either does not exist."""
    try:
        entry = pwd.getpwnam(owner)
        return entry.pw_uid, entry.pw_gid if group is None else grp.getgrnam(group).gr_gid
    except KeyError:
        return None


def user_exists(name: str) -> bool:
    return ids(name) is not None
