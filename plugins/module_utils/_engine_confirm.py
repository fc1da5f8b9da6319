# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: the change engine's host-side confirm program, a program of its own.
# Not a public API. The engine installs this very file as /usr/local/lib/netreach/netreach-confirm (see
# _engine_rollback.py); transient systemd units, the boot unit and the action plugins' fresh connections run it.
# It is the only code besides the engine that writes, renames or removes on the host, and it does so as the
# engine does: below directories opened one component at a time without following links.
"""netreach confirm: apply, confirm, roll back or boot-restore an armed change kept in a pending directory.

A pending directory (ROOT/OWNER, made by the module through the engine) holds manifest.json and the snapshot of
every file the change touches (snap-N; a file that did not exist has none). Markers: `applied` (the delayed apply
ran), `rolled-back` (the snapshot was put back; its text says why). Subcommands:

  apply DIR          run the manifest's apply commands (a transient unit runs this after the module returned), then
                     arm the rollback anew: the timeout counts from the moment the change is live
  rollback DIR WHY   put the snapshot back and run the restore commands, unless confirmed (the timer's command)
  abort DIR WHY      a step of the module failed before the change went live: put the files back (no restart:
                     nothing was applied) and stop the timer
  confirm DIR...     per DIR: stop its timer, then print `DIR confirmed` (snapshot dropped) or why not
  status DIR...      per DIR: rolled-back, pending, or gone
  boot ROOT          put back every change under ROOT that was never confirmed (the boot unit, before the network)
"""
import fcntl
import json
import os
import subprocess
import sys
import time

MANIFEST = "manifest.json"
APPLIED = "applied"
ROLLED_BACK = "rolled-back"


def open_dir(path):
    """A descriptor of directory PATH, opened component by component without following a symbolic link."""
    if not path.startswith("/"):
        raise ValueError(f"{path} is not absolute")
    fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in [p for p in path.split("/") if p]:
            if part in (".", ".."):
                raise ValueError(f"{path} has a {part} component")
            child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def read(directory, name):
    try:
        fd = open_dir(directory)
    except FileNotFoundError:
        return None
    try:
        handle = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=fd)
    except FileNotFoundError:
        return None
    finally:
        os.close(fd)
    with os.fdopen(handle, "rb") as stream:
        return stream.read()


def write(path, content, mode, uid, gid):
    """CONTENT (bytes) at PATH: a new file beside it renamed over it, as the engine writes."""
    parent, name = path.rsplit("/", 1)
    fd = open_dir(parent or "/")
    temp = f".netreach-{os.urandom(6).hex()}"
    try:
        handle = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=fd)
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(content)
                stream.flush()
                os.fchown(stream.fileno(), uid, gid)
                os.fchmod(stream.fileno(), mode)
            os.rename(temp, name, src_dir_fd=fd, dst_dir_fd=fd)
        except BaseException:
            try:
                os.unlink(temp, dir_fd=fd)
            except FileNotFoundError:
                pass
            raise
    finally:
        os.close(fd)


def unlink(path):
    parent, name = path.rsplit("/", 1)
    try:
        fd = open_dir(parent or "/")
    except FileNotFoundError:
        return
    try:
        os.unlink(name, dir_fd=fd)
    except FileNotFoundError:
        pass
    finally:
        os.close(fd)


def drop(directory):
    """Remove pending DIRECTORY: plain files only, then the directory itself."""
    parent, name = directory.rstrip("/").rsplit("/", 1)
    try:
        fd = open_dir(directory)
    except FileNotFoundError:
        return
    try:
        for entry in os.listdir(fd):
            os.unlink(entry, dir_fd=fd)
    finally:
        os.close(fd)
    parent_fd = open_dir(parent)
    try:
        os.rmdir(name, dir_fd=parent_fd)
    finally:
        os.close(parent_fd)


def mark(directory, name, text):
    write(f"{directory}/{name}", text.encode("utf-8"), 0o600, 0, 0)


def manifest(directory):
    text = read(directory, MANIFEST)
    return json.loads(text) if text is not None else None


def run_all(commands):
    for command in commands:
        subprocess.run(command, check=False)


def locked(directory):
    """An exclusive lock of pending DIRECTORY (released with the descriptor): apply, rollback and confirm of one
    change never run at the same time."""
    fd = open_dir(directory)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def timers(plan):
    """The timers of a change and their services, the first one's and (once applied) the live one's."""
    live = [plan["live_timer"], plan["live_service"]] if "live_timer" in plan else []
    return [plan["timer"], plan["service"]] + live


def apply(directory):
    try:
        lock = locked(directory)
    except FileNotFoundError:
        return 1
    try:
        plan = manifest(directory)
        if plan is None or read(directory, ROLLED_BACK) is not None:
            return 1
        run_all(plan.get("apply", []))
        # The timer that counts from now is armed before the first one stops: should arming it fail, the first
        # one still rolls the change back.
        if plan.get("rearm") and subprocess.run(plan["rearm"], check=False).returncode == 0:
            subprocess.run(["systemctl", "stop", plan["timer"]], check=False)
        mark(directory, APPLIED, time.strftime("%Y-%m-%dT%H:%M:%S%z\n"))
        return 0
    finally:
        os.close(lock)


def restore(directory, plan):
    for item in plan["files"]:
        if item.get("snapshot"):
            write(item["path"], read(directory, item["snapshot"]), item["mode"], item["uid"], item["gid"])
        else:
            unlink(item["path"])


def rollback(directory, why, boot=False):
    """Put the snapshot back (unless already rolled back) and record WHY; at boot only the files and a reload:
    the units start afterwards, in their own order."""
    try:
        lock = locked(directory)
    except FileNotFoundError:
        return 0
    try:
        return _rollback(directory, why, boot)
    finally:
        os.close(lock)


def _rollback(directory, why, boot):
    plan = manifest(directory)
    if plan is None or read(directory, ROLLED_BACK) is not None:
        return 0
    run_all(plan.get("before_restore", []))
    restore(directory, plan)
    # Recorded once the files are back: a confirmation from now on finds it (and waits for this unit to finish).
    mark(directory, ROLLED_BACK, f"{why}\n")
    run_all([["systemctl", "daemon-reload"]] if boot else plan.get("after_restore", []))
    return 0


def abort(directory, why):
    """The module failed between arming and handing the change over to its apply: the files back, the timer
    stopped (the change never went live, so nothing restarts)."""
    try:
        lock = locked(directory)
    except FileNotFoundError:
        return 0
    try:
        plan = manifest(directory)
        if plan is None:
            return 0
        if read(directory, ROLLED_BACK) is None:
            _rollback(directory, why, boot=True)
        subprocess.run(["systemctl", "stop", plan["timer"]], check=False)
        return 0
    finally:
        os.close(lock)


def confirm_one(directory):
    try:
        lock = locked(directory)
    except FileNotFoundError:
        return "gone"
    try:
        plan = manifest(directory)
        if plan is None:
            return "gone"
        if read(directory, ROLLED_BACK) is None and read(directory, APPLIED) is None:
            return "waiting: the change has not been applied yet"
        if read(directory, ROLLED_BACK) is None:
            # Stopped under the lock: a timer that fired just now waits for it, then finds the change confirmed.
            subprocess.run(["systemctl", "stop", *timers(plan)[::2]], check=False)
            if read(directory, ROLLED_BACK) is None:
                drop(directory)
                return "confirmed"
        return "rolled-back: " + read(directory, ROLLED_BACK).decode("utf-8", "replace").strip()
    finally:
        os.close(lock)


def status_one(directory):
    if manifest(directory) is None:
        return "gone"
    return "rolled-back" if read(directory, ROLLED_BACK) is not None else "pending"


def boot(root):
    try:
        entries = sorted(os.listdir(root))
    except FileNotFoundError:
        return 0
    for entry in entries:
        rollback(f"{root}/{entry}", "the host restarted before the change was confirmed", boot=True)
    return 0


def main(argv):
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    command, args = argv[1], argv[2:]
    if command == "apply" and len(args) == 1:
        return apply(args[0])
    if command == "rollback" and len(args) == 2:
        return rollback(args[0], args[1])
    if command == "abort" and len(args) == 2:
        return abort(args[0], args[1])
    if command in ("confirm", "status") and args:
        for directory in args:
            sys.stdout.write(f"{directory} {(confirm_one if command == 'confirm' else status_one)(directory)}\n")
            sys.stdout.flush()
        return 0
    if command == "boot" and len(args) == 1:
        return boot(args[0])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
