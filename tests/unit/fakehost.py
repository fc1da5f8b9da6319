"""One fake AnsibleModule for every unit test of the apply layer: records commands, answers them from a table,
raises on fail_json/exit_json, and stands a temporary directory for '/' (the engine's fs_root)."""
from __future__ import annotations

import os
import tempfile


class Failed(Exception):
    """fail_json was called; `result` holds its keyword arguments."""

    def __init__(self, result: dict) -> None:
        super().__init__(result.get("msg"))
        self.result = result


class FakeModule:
    def __init__(self, fs_root: str, params: dict | None = None, check_mode: bool = False, diff: bool = True,
                 answers: dict | None = None) -> None:
        self.netreach_fs_root = str(fs_root)
        self.params = params or {}
        self.check_mode = check_mode
        self._diff = diff
        self.answers = answers or {}
        self.commands: list[list[str]] = []
        # Ansible's own temporary directory lies outside the host's tree, as the remote tmp does.
        self.tmpdir = tempfile.mkdtemp(prefix="ansible-tmp-")

    def run_command(self, args, data=None, **_kwargs):
        args = [str(arg) for arg in args]
        self.commands.append(args)
        for prefix, answer in self.answers.items():
            if tuple(args[:len(prefix)]) == prefix:
                return answer(args) if callable(answer) else answer
        return 0, "", ""

    def get_bin_path(self, name, required=False):
        return f"/usr/sbin/{name}"

    def fail_json(self, **kwargs):
        raise Failed(kwargs)

    def warn(self, _message):
        pass


def snapshot(root: str) -> dict[str, tuple]:
    """Every path under ROOT with its kind, mode, owner and content (links by their target)."""
    state = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(directory, name)
            info = os.lstat(path)
            if os.path.islink(path):
                state[path] = ("link", os.readlink(path))
            elif os.path.isdir(path):
                state[path] = ("dir", info.st_mode & 0o7777, info.st_uid)
            else:
                with open(path, "rb") as stream:
                    state[path] = ("file", info.st_mode & 0o7777, info.st_uid, stream.read())
    return state


def unit_properties(active: bool, enabled: bool, loaded: bool = True) -> dict[str, str]:
    """What `systemctl show` prints of a unit for the properties the engine asks (Plan.unit_state)."""
    return {"ActiveState": "active" if active else "inactive", "UnitFileState": "enabled" if enabled else "disabled",
            "LoadState": "loaded" if loaded else "not-found"}


def systemctl_show(properties):
    """An answer to `systemctl show --property=... UNIT...`: one block per unit, in the order given, separated by
    blank lines, as systemd prints them; PROPERTIES(unit) gives a unit's (see unit_properties)."""
    def answer(args):
        units = [arg for arg in args[2:] if not arg.startswith("--")]
        blocks = ["\n".join(f"{key}={value}" for key, value in properties(unit).items()) for unit in units]
        return 0, "\n\n".join(blocks) + "\n", ""
    return answer
