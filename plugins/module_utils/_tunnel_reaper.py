# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: the tunnel reaper, a program of its own. Not a public API.
# tunnel_server installs this very file as /usr/local/lib/netreach/tunnel-reaper (_tunnel_helpers.program_text)
# and runs it as netreach-tunnel-reaper.service: `python3 tunnel-reaper ACCOUNT...`.
"""netreach tunnel reaper: hand a remote forward's port from a stale tunnel session to the reconnecting one.

A client that lost its NAT state reconnects while its old session still holds the remote forward's port; sshd
then refuses the new session's forward ("cannot listen to port") and keeps the stale one until keepalives give
up, which traffic to the port can postpone. The reaper follows sshd's journal; when a tunnel account's forward
is refused, it ends every session of the key(s) whose authorized_keys entry permits that port: the stale session
frees the port and the client's next attempt (its unit retries within seconds) gets it. It reads only the
journal, /proc/PID/cmdline and the accounts' authorized_keys, so it needs no access to other processes' files.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pwd
import re
import signal
import subprocess
import sys
import time

REFUSED = re.compile(r"cannot listen to port: (\d+)")
ACCEPTED = re.compile(r"^Accepted publickey for (\S+) from .* (SHA256:[A-Za-z0-9+/]+)")
LISTEN = re.compile(r'permitlisten="(?:[^"]*:)?(\d+)"')
JOURNAL = ["journalctl", "--boot", "--follow", "--no-tail", "--output=json", "_COMM=sshd", "+", "_COMM=sshd-session"]
MAX_SESSIONS = 4096


def user_name(uid) -> str | None:
    try:
        return pwd.getpwuid(int(uid)).pw_name
    except (TypeError, ValueError, KeyError):
        return None


def fingerprint(blob: str) -> str:
    digest = hashlib.sha256(base64.b64decode(blob)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def keys_permitting(port: str, authorized_keys_text: str) -> set[str]:
    """Fingerprints of the keys in an authorized_keys text whose entries permit listening on PORT."""
    found = set()
    for line in authorized_keys_text.splitlines():
        words = line.split()
        if len(words) >= 3 and port in LISTEN.findall(words[0]):
            try:
                found.add(fingerprint(words[2]))
            except ValueError:
                continue
    return found


def keys_for_port(port: str, accounts: set[str]) -> set[str]:
    found = set()
    for account in accounts:
        try:
            path = os.path.join(pwd.getpwnam(account).pw_dir, ".ssh", "authorized_keys")
            with open(path, encoding="utf-8") as handle:
                found |= keys_permitting(port, handle.read())
        except (KeyError, OSError):
            continue
    return found


def is_session(pid: str, account: str, proc: str = "/proc") -> bool:
    """Whether PID is the privileged monitor of a session of ACCOUNT: "sshd: ACCOUNT [priv]" (OpenSSH 9) or
    "sshd-session: ACCOUNT [priv]", owned by root."""
    try:
        with open(f"{proc}/{pid}/cmdline", "rb") as handle:
            title = handle.read().decode(errors="replace").rstrip("\0 ")
        owner = os.stat(f"{proc}/{pid}").st_uid
    except OSError:
        return False
    return owner == 0 and re.fullmatch(r"sshd(-session)?: " + re.escape(account) + r" \[priv\]", title) is not None


class Reaper:
    """The reaper's memory: which session (monitor pid) logged in with which key, and what to end on a refusal.

    KEYS_FOR_PORT(port) gives the fingerprints allowed to listen on PORT; UID_NAME(uid) names a uid; STARTED is
    the time (microseconds) from which refusals count (older ones were handled by an earlier run)."""

    def __init__(self, accounts: set[str], started: float, keys_for=None, uid_name=user_name) -> None:
        self.accounts = accounts
        self.started = started
        self.keys_for = keys_for or (lambda port: keys_for_port(port, accounts))
        self.uid_name = uid_name
        self.sessions: dict[str, tuple[str, str]] = {}

    def feed(self, line: str) -> list[tuple[str, str, str, str]]:
        """One journal line (JSON): the sessions to end now, as (pid, account, key fingerprint, port)."""
        try:
            record = json.loads(line)
        except ValueError:
            return []
        message, pid = record.get("MESSAGE"), str(record.get("_PID", ""))
        if not isinstance(message, str):
            return []
        accepted = ACCEPTED.match(message)
        if accepted and accepted.group(1) in self.accounts and record.get("_UID") == "0":
            if len(self.sessions) > MAX_SESSIONS:
                self.sessions = {key: value for key, value in self.sessions.items() if os.path.exists(f"/proc/{key}")}
            self.sessions[pid] = (accepted.group(1), accepted.group(2))
            return []
        match = REFUSED.search(message)
        if not match or int(record.get("__REALTIME_TIMESTAMP", 0)) < self.started:
            return []
        if self.uid_name(record.get("_UID")) not in self.accounts:
            return []
        port = match.group(1)
        keys = self.keys_for(port)
        return [(session, account, key, port) for session, (account, key) in sorted(self.sessions.items())
                if key in keys]


def say(line: str) -> None:
    """One line to the unit's journal (stdout), at once."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    accounts = set(argv)
    reaper = Reaper(accounts, time.time() * 1e6)
    # The whole boot's log, to learn the sessions that are already up; act only on refusals from now on.
    journal = subprocess.Popen(JOURNAL, stdout=subprocess.PIPE, text=True)
    say(f"watching sshd for refused remote forwards of {' '.join(sorted(accounts))}")
    for line in journal.stdout:
        for session, account, key, port in reaper.feed(line):
            if not is_session(session, account):
                continue
            try:
                os.kill(int(session), signal.SIGTERM)
            except OSError:
                continue  # it ended by itself in the meantime
            say(f"port {port}: ended session {session} of {account} ({key}) so the reconnecting one gets the port")
    return journal.wait()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
