# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: decide-then-write of whole files for modules that manage
# several configuration files at once (client_proxy, client_session). Not a public API.
"""Plan file changes, report them (check mode, diff with secrets masked), and only then write them."""

from __future__ import annotations

import grp
import os
import pwd
import tempfile
from dataclasses import dataclass, field

MASK = "********"


@dataclass
class Change:
    path: str
    before: str | None  # None: the file does not exist
    after: str | None  # None: remove the file
    mode: int
    owner: str = "root"
    group: str | None = None
    validate: list[str] | None = None  # command run on the new file before it goes live; "%s" is its path


@dataclass
class FilePlan:
    """Changes to files, collected before anything is written."""

    secrets: list[str] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)

    def mask(self, text: str) -> str:
        for secret in sorted((s for s in self.secrets if s), key=len, reverse=True):
            text = text.replace(secret, MASK)
        return text

    def put(self, path: str, content: str | None, mode: int, owner: str = "root", group: str | None = None,
            validate: list[str] | None = None) -> bool:
        """Plan PATH to hold CONTENT (None: to be absent) with MODE; return whether that changes anything."""
        before = read_text(path)
        if content is None and before is None:
            return False
        if content is not None and before == content and not meta_differs(path, mode, owner, group):
            return False
        self.changes.append(Change(path, before, content, mode, owner, group, validate))
        return True

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    @property
    def changed_paths(self) -> list[str]:
        return [change.path for change in self.changes]

    def diff(self) -> dict:
        before, after = [], []
        for change in self.changes:
            before.append(f"# {change.path}\n{self.mask(change.before)}" if change.before is not None else "")
            after.append(f"# {change.path}\n{self.mask(change.after)}" if change.after is not None else "")
        return {"before": "".join(before), "after": "".join(after)}

    def apply(self, module) -> None:
        """Write every planned change (not in check mode). Every new file is staged and validated first, so a
        failing validation leaves every file as it was."""
        if module.check_mode:
            return
        staged: list[tuple[Change, str | None]] = []
        try:
            for change in self.changes:
                staged.append((change, stage_file(module, change) if change.after is not None else None))
            for change, tmp in staged:
                if tmp is None:
                    if os.path.lexists(change.path):
                        os.unlink(change.path)
                elif change.before is None and not os.path.lexists(change.path):
                    # atomic_move would give a new file the umask's mode and root's ownership for a moment (a
                    # secret readable by all): a rename in the same directory is as atomic and keeps ours.
                    os.rename(tmp, change.path)
                else:
                    module.atomic_move(tmp, change.path, unsafe_writes=False, keep_dest_attrs=False)
        finally:
            for _change, tmp in staged:
                if tmp and os.path.exists(tmp):
                    os.unlink(tmp)


def read_text(path: str) -> str | None:
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8", newline="") as handle:
        return handle.read()


def _ids(owner: str, group: str | None) -> tuple[int, int]:
    entry = pwd.getpwnam(owner)
    if group is None:
        return entry.pw_uid, entry.pw_gid
    return entry.pw_uid, grp.getgrnam(group).gr_gid


def meta_differs(path: str, mode: int, owner: str, group: str | None) -> bool:
    stat = os.stat(path)
    uid, gid = _ids(owner, group)
    return (stat.st_mode & 0o7777) != mode or stat.st_uid != uid or stat.st_gid != gid


def make_directories(directory: str, owner: str, group: str | None) -> None:
    """Create DIRECTORY and its missing parents, owned by OWNER (0755 for root, 0700 for a user's own)."""
    missing = []
    while directory and not os.path.isdir(directory):
        missing.append(directory)
        directory = os.path.dirname(directory)
    uid, gid = _ids(owner, group)
    for path in reversed(missing):
        os.mkdir(path, 0o755 if uid == 0 else 0o700)
        os.chown(path, uid, gid)


def stage_file(module, change: Change) -> str:
    """Write CHANGE's new content next to its path with its mode and owner, validate it, return the temp path."""
    directory = os.path.dirname(change.path)
    make_directories(directory, change.owner, change.group)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".netreach-")
    os.fchmod(fd, change.mode)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
        handle.write(change.after)
    uid, gid = _ids(change.owner, change.group)
    os.chown(tmp, uid, gid)
    if change.validate:
        rc, out, err = module.run_command([arg.replace("%s", tmp) for arg in change.validate])
        if rc != 0:
            os.unlink(tmp)
            module.fail_json(msg=f"{change.path}: the new content failed validation by {change.validate[0]}",
                             rc=rc, stdout=out, stderr=err)
    return tmp
