# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: applying a Tunnel to the host. Not a public API.
"""Decide what a tunnel needs on this host, report it (check and diff mode), and only then write."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile

from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel import (
    Tunnel,
    listens_overlap,
    render_known_hosts,
    render_ssh_config,
    render_unit,
)
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_helpers import HELPER_DIR, HELPERS

UNIT_DIR = "/etc/systemd/system"


class TunnelHost:
    """The host side of one module run: collects changes, diffs and the restart decision."""

    def __init__(self, module) -> None:
        self.module = module
        self.changed = False
        self.diff_before: list[str] = []
        self.diff_after: list[str] = []

    # --- results -------------------------------------------------------------------------------------
    def result(self, **extra) -> dict:
        result = dict(changed=self.changed, **extra)
        if self.module._diff:
            result["diff"] = {"before": "".join(self.diff_before), "after": "".join(self.diff_after)}
        return result

    def _run(self, args: list[str], check: bool = True) -> tuple[int, str, str]:
        rc, out, err = self.module.run_command(args)
        if check and rc != 0:
            self.module.fail_json(msg=f"{args[0]} failed: {err.strip() or out.strip()}", rc=rc)
        return rc, out, err

    # --- files ---------------------------------------------------------------------------------------
    def _file(self, path: str, content: str, mode: int, owner: str = "root", show: bool = True) -> bool:
        """Make PATH hold CONTENT with MODE and OWNER; return whether anything differs."""
        current = None
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                current = handle.read()
        uid = pwd.getpwnam(owner).pw_uid if self._user_exists(owner) else None
        stat = os.stat(path) if current is not None else None
        content_differs = current != content
        meta_differs = stat is None or (stat.st_mode & 0o7777) != mode or (uid is not None and stat.st_uid != uid)
        if not (content_differs or meta_differs):
            return False
        self.changed = True
        if show and content_differs:
            self.diff_before.append(f"# {path}\n{current or ''}")
            self.diff_after.append(f"# {path}\n{content}")
        elif content_differs:
            self.diff_before.append(f"# {path}: (not shown)\n")
            self.diff_after.append(f"# {path}: (changed, not shown)\n")
        if not self.module.check_mode:
            directory = os.path.dirname(path)
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=".netreach-")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(content)
            os.chmod(tmp, mode)
            owner_entry = pwd.getpwnam(owner)
            os.chown(tmp, owner_entry.pw_uid, owner_entry.pw_gid)
            if os.path.exists(path):
                self.module.atomic_move(tmp, path, unsafe_writes=False)
                os.chmod(path, mode)
                os.chown(path, owner_entry.pw_uid, owner_entry.pw_gid)
            else:
                # atomic_move would give a new file the umask's mode (0644) for a moment and for good; a rename in
                # the same directory keeps the temp file's mode, so a secret is never readable by others.
                os.replace(tmp, path)
        return content_differs

    def _directory(self, path: str, mode: int, owner: str = "root", group: str = "root") -> None:
        if os.path.isdir(path):
            stat = os.stat(path)
            gid = pwd.getpwnam(group).pw_gid if self._user_exists(group) else 0
            if (stat.st_mode & 0o7777) == mode and stat.st_uid == pwd.getpwnam(owner).pw_uid and stat.st_gid == gid:
                return
        self.changed = True
        if not self.module.check_mode:
            os.makedirs(path, exist_ok=True)
            os.chmod(path, mode)
            gid = pwd.getpwnam(group).pw_gid if self._user_exists(group) else 0
            os.chown(path, pwd.getpwnam(owner).pw_uid, gid)

    @staticmethod
    def _user_exists(name: str) -> bool:
        try:
            pwd.getpwnam(name)
            return True
        except KeyError:
            return False

    # --- pieces --------------------------------------------------------------------------------------
    def _ensure_user(self, name: str) -> None:
        if self._user_exists(name):
            return
        self.changed = True
        self.diff_after.append(f"# system user {name} created\n")
        if not self.module.check_mode:
            self._run(["useradd", "--system", "--user-group", "--home-dir", "/nonexistent", "--no-create-home",
                       "--shell", "/usr/sbin/nologin", name])

    def _ensure_key(self, tunnel: Tunnel) -> None:
        if os.path.exists(tunnel.identity_file):
            self._file_owner(tunnel.identity_file, tunnel.run_as, 0o600)
            return
        self.changed = True
        self.diff_after.append(f"# {tunnel.identity_file}: new ed25519 key\n")
        if not self.module.check_mode:
            os.makedirs(os.path.dirname(tunnel.identity_file), exist_ok=True)
            self._run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"netreach-tunnel-{tunnel.name}",
                       "-f", tunnel.identity_file])
            self._file_owner(tunnel.identity_file, tunnel.run_as, 0o600)

    def ensure_key_only(self, tunnel: Tunnel) -> None:
        """The tunnel's run_as user and key pair, as apply() makes them, and nothing else."""
        self._ensure_user(tunnel.run_as)
        if os.path.dirname(tunnel.identity_file) == tunnel.config_dir:
            self._directory(tunnel.config_dir, 0o750, "root", tunnel.run_as)
        if self.module.check_mode and not self._user_exists(tunnel.run_as):
            self.changed = True
            return
        self._ensure_key(tunnel)

    def _file_owner(self, path: str, owner: str, mode: int) -> None:
        stat = os.stat(path)
        entry = pwd.getpwnam(owner)
        if stat.st_uid != entry.pw_uid or (stat.st_mode & 0o7777) != mode:
            self.changed = True
            if not self.module.check_mode:
                os.chown(path, entry.pw_uid, entry.pw_gid)
                os.chmod(path, mode)

    def public_key(self, tunnel: Tunnel) -> str:
        path = tunnel.identity_file + ".pub"
        if not os.path.exists(path):
            return ""
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()

    def _unit_state(self, unit: str) -> tuple[bool, bool]:
        # "activating" is a tunnel between two connection attempts: it is started, and must not be started again.
        state = self._run(["systemctl", "show", "--property=ActiveState", "--value", unit], check=False)[1].strip()
        active = state in ("active", "activating", "reloading")
        enabled = self._run(["systemctl", "is-enabled", "--quiet", unit], check=False)[0] == 0
        return active, enabled

    # --- apply / remove ------------------------------------------------------------------------------
    def check_bind_conflicts(self, tunnel: Tunnel) -> None:
        """Fail, before anything changes, when another netreach tunnel on this host listens where this one would."""
        # Only client-side listeners: remote forwards listen on their servers, where tunnels to other servers may use the same port.
        ours = [fwd for fwd in tunnel.forwards if fwd.kind != "remote"]
        base = os.path.dirname(tunnel.config_dir)
        for other in sorted(os.listdir(base)) if os.path.isdir(base) else []:
            path = os.path.join(base, other, "ssh_config")
            if other == tunnel.name or not os.path.isfile(path):
                continue
            with open(path, encoding="utf-8") as handle:
                for line in handle:
                    words = line.split()
                    if len(words) < 2 or words[0] not in ("LocalForward", "DynamicForward"):
                        continue
                    for fwd in ours:
                        if listens_overlap(fwd.listen, words[1]):
                            self.module.fail_json(msg=f"{fwd.kind}_forwards: {fwd.listen} overlaps {words[1]}, "
                                                      f"which tunnel {other} already binds",
                                                  field=f"{fwd.kind}_forwards")

    def apply(self, tunnel: Tunnel, state: str, enabled: bool) -> None:
        self.check_bind_conflicts(tunnel)
        if state != "present" and not shutil.which("systemctl"):
            self.module.fail_json(msg="systemd is required on the tunnel client")
        self._ensure_user(tunnel.run_as)
        self._directory(tunnel.config_dir, 0o750, "root", tunnel.run_as)
        self._directory(HELPER_DIR, 0o755)
        self._ensure_key(tunnel)
        config_changed = False
        for helper, content in sorted(HELPERS.items()):
            config_changed |= self._file(f"{HELPER_DIR}/{helper}", content, 0o755, show=False)
        config_changed |= self._file(tunnel.ssh_config_path, render_ssh_config(tunnel), 0o644)
        config_changed |= self._file(tunnel.known_hosts_path, render_known_hosts(tunnel), 0o644)
        if tunnel.proxy and tunnel.proxy.username:
            config_changed |= self._file(tunnel.proxy_auth_path, f"{tunnel.proxy.username}:{tunnel.proxy.password}\n",
                                         0o600, tunnel.run_as, show=False)
        elif os.path.exists(tunnel.proxy_auth_path):
            config_changed = self.changed = True
            if not self.module.check_mode:
                os.unlink(tunnel.proxy_auth_path)
        unit_path = f"{UNIT_DIR}/{tunnel.unit}"
        unit_changed = self._file(unit_path, render_unit(tunnel), 0o644)
        if not self.module.check_mode:
            self._run(["ssh", "-G", "-F", tunnel.ssh_config_path, f"netreach-{tunnel.name}"])
        if unit_changed and not self.module.check_mode:
            self._run(["systemctl", "daemon-reload"])
        if state == "present":
            return
        active, is_enabled = self._unit_state(tunnel.unit)
        if enabled != is_enabled:
            self.changed = True
            if not self.module.check_mode:
                self._run(["systemctl", "enable" if enabled else "disable", tunnel.unit])
        action = None
        if state == "started" and not active:
            action = "start"
        elif state == "started" and (config_changed or unit_changed):
            action = "restart"
        elif state == "restarted":
            action = "restart"
        elif state == "stopped" and active:
            action = "stop"
        if action:
            self.changed = True
            if not self.module.check_mode:
                self._run(["systemctl", action, tunnel.unit])

    def remove(self, name: str, remove_key: bool) -> None:
        unit = f"netreach-tunnel@{name}.service"
        unit_path = f"{UNIT_DIR}/{unit}"
        config_dir = f"/etc/netreach/tunnels/{name}"
        if os.path.exists(unit_path):
            self.changed = True
            self.diff_before.append(f"# {unit_path}\n")
            if not self.module.check_mode:
                self._run(["systemctl", "disable", "--now", unit], check=False)
                os.unlink(unit_path)
                self._run(["systemctl", "daemon-reload"])
        if os.path.isdir(config_dir):
            keep = {"id_ed25519", "id_ed25519.pub"} if not remove_key else set()
            entries = sorted(os.listdir(config_dir))
            for entry in entries:
                if entry in keep:
                    continue
                self.changed = True
                self.diff_before.append(f"# {config_dir}/{entry}\n")
                if not self.module.check_mode:
                    os.unlink(os.path.join(config_dir, entry))
            if not keep.intersection(entries):
                self.changed = True
                if not self.module.check_mode:
                    os.rmdir(config_dir)
