# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: applying the server end of tunnels to a host. Not a public API.
"""Decide what the tunnel accounts' authorized_keys, the sshd drop-in and the reaper need; report; then write."""

from __future__ import annotations

import fnmatch
import os
import pwd
import re

from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel import USER_RE, TunnelError
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_apply import UNIT_DIR, TunnelHost
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_helpers import HELPER_DIR, SERVER_HELPERS
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_server import (
    Entry,
    account_policies,
    check_entry_name,
    check_listen_conflicts,
    check_public_key,
    entry_label,
    render_key_line,
    render_sshd_dropin,
)

SSHD_CONFIG = "/etc/ssh/sshd_config"
REAPER_UNIT = "netreach-tunnel-reaper.service"
# What permitopen/permitlisten may hold: [ipv6]:port, host:port or (listens) a bare port; nothing that could
# close the option's quotes or start another option.
TARGET_RE = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_][A-Za-z0-9._-]*):[0-9]{1,5}$")
LISTEN_RE = re.compile(r"^((\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_*][A-Za-z0-9._-]*):)?[0-9]{1,5}$")
INCLUDE_RE = re.compile(r"^\s*Include\s+(/etc/ssh/)?sshd_config\.d/\*\.conf\s*$", re.IGNORECASE | re.MULTILINE)


def parse_entries(values: list) -> list[Entry]:
    entries = []
    for index, value in enumerate(values or []):
        field_name = f"entries[{index}]"
        if not isinstance(value, dict):
            raise TunnelError(field_name, "expected a dict (see the tunnel_server_entries filter)")
        account = value.get("account")
        if not isinstance(account, str) or not USER_RE.fullmatch(account):
            raise TunnelError(f"{field_name}.account", f"{account!r} is not a valid user name")
        opens, listens = value.get("opens") or [], value.get("listens") or []
        for key, items, pattern in (("opens", opens, TARGET_RE), ("listens", listens, LISTEN_RE)):
            if not isinstance(items, list):
                raise TunnelError(f"{field_name}.{key}", "expected a list")
            for item in items:
                if not isinstance(item, str) or not pattern.fullmatch(item):
                    raise TunnelError(f"{field_name}.{key}", f"{item!r} is not a [host:]port")
        any_open = value.get("any_open", False)
        if not isinstance(any_open, bool):
            raise TunnelError(f"{field_name}.any_open", "must be true or false")
        entries.append(Entry(account, check_entry_name(value.get("client"), f"{field_name}.client"),
                             check_entry_name(value.get("tunnel"), f"{field_name}.tunnel"),
                             check_public_key(value.get("public_key"), f"{field_name}.public_key"),
                             tuple(opens), tuple(listens), any_open))
    return entries


class ServerHost(TunnelHost):
    """The host side of one tunnel_server run."""

    def __init__(self, module) -> None:
        super().__init__(module)
        self.sshd_reload = False
        self.sshd_reloaded = False
        self.authorized: dict[str, list[str]] = {}

    def _read(self, path: str) -> str | None:
        if not os.path.exists(path):
            return None
        with open(path, encoding="utf-8") as handle:
            return handle.read()

    def authorized_keys(self, account: str, entries: list[Entry], managed: set | None, known: set | None,
                        remove_all: bool = False) -> None:
        """One account's authorized_keys: our entries for MANAGED clients replaced, others' kept, foreign lines kept."""
        home = pwd.getpwnam(account).pw_dir
        path = os.path.join(home, ".ssh", "authorized_keys")
        for candidate in (os.path.dirname(path), path):
            # The account owns its home: never follow a link it made (to /etc/shadow, or /etc).
            if os.path.islink(candidate):
                self.module.fail_json(msg=f"accounts: {candidate} is a symbolic link; refusing to touch it",
                                      field="accounts")
        current = self._read(path)
        foreign, ours = [], {}
        for line in (current or "").splitlines():
            label = entry_label(line)
            if label is None:
                foreign.append(line)
                continue
            client = label.partition("/")[0]
            keep = not remove_all and (managed is None or client not in managed) and (known is None or client in known)
            if keep:
                ours[label] = line
        if not remove_all:
            for entry in entries:
                ours[entry.label.partition(":")[2]] = render_key_line(entry)
        self.authorized[account] = sorted(ours)
        lines = foreign + [ours[label] for label in sorted(ours)]
        content = "".join(f"{line}\n" for line in lines)
        if current is None and not ours:
            return
        self._directory(os.path.dirname(path), 0o700, account, account)
        self._file(path, content, 0o600, account)

    def dropin_accounts(self, path: str) -> set[str]:
        """The accounts the drop-in restricts now: they keep being cleaned after they leave the declaration."""
        return set(re.findall(r"^Match User (\S+)$", self._read(path) or "", re.MULTILINE))

    def sshd_dropin(self, path: str, content: str | None) -> None:
        """Write (or remove) the drop-in, validate sshd's whole config, and put the old one back if sshd objects."""
        main = self._read(SSHD_CONFIG) or ""
        if content is not None and not fnmatch.fnmatch(path, "/etc/ssh/sshd_config.d/*.conf"):
            self.module.fail_json(msg=f"sshd_dropin: {path} is not read by sshd: it must match "
                                      "/etc/ssh/sshd_config.d/*.conf", field="sshd_dropin")
        if content is not None and not INCLUDE_RE.search(main):
            self.module.fail_json(msg=f"{SSHD_CONFIG} has no 'Include /etc/ssh/sshd_config.d/*.conf' line, so the "
                                      f"drop-in {path} would be ignored; add the line (Debian's default has it)")
        current = self._read(path)
        if current == content:
            return
        self.sshd_reload = True
        if content is not None:
            if not self.module.check_mode:
                os.makedirs(os.path.dirname(path), exist_ok=True)
            self._file(path, content, 0o644)
        else:
            self.changed = True
            self.diff_before.append(f"# {path}\n{current}")
            self.diff_after.append(f"# {path}: removed\n")
            if not self.module.check_mode:
                os.unlink(path)
        if self.module.check_mode:
            return
        rc, out, err = self._run(["sshd", "-t", "-f", SSHD_CONFIG], check=False)
        if rc != 0:
            if current is None:
                os.unlink(path)
            else:
                self._file(path, current, 0o644)
            self.module.fail_json(msg=f"sshd -t rejected the configuration with {path}, which was put back as it "
                                      f"was: {(err or out).strip()}", changed=False)
        # Reload now: a run that stops later must not leave a validated drop-in that sshd never read.
        self.reload_sshd()
        self.sshd_reload = False
        self.sshd_reloaded = True

    def reaper(self, accounts: list[str], enabled: bool) -> None:
        unit_path = f"{UNIT_DIR}/{REAPER_UNIT}"
        if not enabled:
            if os.path.exists(unit_path):
                self.changed = True
                self.diff_before.append(f"# {unit_path}\n")
                if not self.module.check_mode:
                    self._run(["systemctl", "disable", "--now", REAPER_UNIT], check=False)
                    os.unlink(unit_path)
                    self._run(["systemctl", "daemon-reload"])
            return
        self._directory(HELPER_DIR, 0o755)
        changed = False
        for helper, content in sorted(SERVER_HELPERS.items()):
            changed |= self._file(f"{HELPER_DIR}/{helper}", content, 0o755, show=False)
        unit = "\n".join([
            "# Managed by netreach.tunnels.tunnel_server; local changes are overwritten.",
            "[Unit]",
            "Description=netreach: hand remote forwards of stale tunnel sessions to reconnecting ones",
            "After=ssh.service",
            "",
            "[Service]",
            f"ExecStart=/usr/bin/python3 {HELPER_DIR}/tunnel-reaper {' '.join(sorted(accounts))}",
            "Restart=always",
            "RestartSec=1",
            "",
            "[Install]",
            "WantedBy=multi-user.target",
            "",
        ])
        changed |= self._file(unit_path, unit, 0o644)
        active, is_enabled = self._unit_state(REAPER_UNIT)
        if changed or not active or not is_enabled:
            self.changed = True
            if not self.module.check_mode:
                self._run(["systemctl", "daemon-reload"])
                self._run(["systemctl", "enable", REAPER_UNIT])
                self._run(["systemctl", "restart" if active else "start", REAPER_UNIT])

    def reload_sshd(self) -> None:
        if self.sshd_reload and not self.module.check_mode:
            unit = "ssh.service" if self._run(["systemctl", "cat", "ssh.service"], check=False)[0] == 0 else "sshd.service"
            self._run(["systemctl", "reload", unit])


def apply(module, params: dict) -> dict:
    host = ServerHost(module)
    absent = params["state"] == "absent"
    accounts = sorted(set(params["accounts"]))
    try:
        entries = parse_entries(params["entries"])
        check_listen_conflicts(entries)
        check_entries(entries, accounts)
    except TunnelError as exc:
        module.fail_json(msg=str(exc), field=exc.field)
    for account in accounts:
        if not USER_RE.fullmatch(account) or account == "root":
            module.fail_json(msg=f"accounts: {account!r} is not a valid tunnel account name (root never is)",
                             field="accounts")
        if not host._user_exists(account) and not module.check_mode and not absent:
            module.fail_json(msg=f"accounts: the tunnel account {account} does not exist on this host", field="accounts")
    # Accounts the drop-in restricted before but no longer named: their entries go too.
    retired = sorted(host.dropin_accounts(params["sshd_dropin"]) - set(accounts))
    policies = account_policies(entries, accounts)
    dropin = None if absent else render_sshd_dropin(policies, params["client_alive_interval"],
                                                    params["client_alive_count_max"])
    host.sshd_dropin(params["sshd_dropin"], dropin)
    managed = set(params["managed_clients"]) if params["managed_clients"] is not None else None
    known = set(params["known_clients"]) if params["known_clients"] is not None else None
    for account in accounts + retired:
        if not host._user_exists(account):
            # Check mode before the account is created (or absent where it never was): nothing to clean.
            host.changed |= module.check_mode and not absent and account in accounts
            continue
        host.authorized_keys(account, [e for e in entries if e.account == account], managed, known,
                             remove_all=absent or account in retired)
    host.reload_sshd()
    host.reaper(accounts, enabled=not absent and params["reaper"])
    return host.result(authorized=host.authorized, sshd_dropin=params["sshd_dropin"],
                       sshd_reloaded=(host.sshd_reload or host.sshd_reloaded) and not module.check_mode)


def check_entries(entries: list[Entry], accounts: list[str]) -> None:
    """Every entry is for a declared tunnel account, and no key or label appears twice on one account."""
    seen: dict[tuple, str] = {}
    for index, entry in enumerate(entries):
        if entry.account not in accounts:
            raise TunnelError(f"entries[{index}].account", f"{entry.account} is not one of the tunnel accounts "
                              f"({', '.join(accounts) or 'none'}); tunnels log in to dedicated accounts only")
        for key in ((entry.account, entry.public_key), (entry.account, entry.label)):
            if key in seen:
                raise TunnelError(f"entries[{index}]", f"{entry.label} repeats {key[1][:40]} of {seen[key]} on "
                                  f"account {entry.account}: sshd would use only the first line")
            seen[key] = entry.label
