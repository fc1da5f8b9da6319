"""The reaper reacts to exactly the journal lines of a refused remote forward of a tunnel account, and ends the
sessions of the keys that may listen on that port; everything else it only learns from or ignores."""
from __future__ import annotations

import base64
import json

from ansible_collections.netreach.tunnels.plugins.module_utils import _tunnel_reaper as reaper
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_helpers import program_text

BLOB = base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519" + b"k" * 32).decode()
FINGERPRINT = reaper.fingerprint(BLOB)
OTHER = reaper.fingerprint(base64.b64encode(b"other-key").decode())
AUTHORIZED = (f'restrict,port-forwarding,permitopen="netreach.invalid:1",permitlisten="localhost:2222" ssh-ed25519 '
              f"{BLOB} netreach-tunnel:laptop/reverse\n"
              f'restrict,port-forwarding,permitlisten="localhost:2223" ssh-ed25519 {BLOB[:-4]}AAAA x\n'
              "ssh-ed25519 AAAAADMIN admin@desk\n")
NOW = 1_700_000_000_000_000


def line(message: str, pid: int = 100, uid: str = "0", at: int = NOW + 1) -> str:
    return json.dumps({"MESSAGE": message, "_PID": str(pid), "_UID": uid, "__REALTIME_TIMESTAMP": str(at)})


def make() -> reaper.Reaper:
    return reaper.Reaper({"tunnel"}, NOW, keys_for=lambda port: reaper.keys_permitting(port, AUTHORIZED),
                         uid_name={"0": "root", "999": "tunnel", "1000": "alice"}.get)


def test_a_refused_forward_ends_the_stale_session_of_the_key_that_may_listen_there():
    watcher = make()
    assert watcher.feed(line(f"Accepted publickey for tunnel from 10.0.0.5 port 40000 ssh2: ED25519 {FINGERPRINT}",
                             pid=100)) == []
    assert watcher.feed(line(f"Accepted publickey for tunnel from 10.0.0.5 port 40002 ssh2: ED25519 {OTHER}",
                             pid=101)) == []
    refused = line("error: connect_to localhost port 2222: cannot listen to port: 2222", pid=200, uid="999")
    assert watcher.feed(refused) == [("100", "tunnel", FINGERPRINT, "2222")]


def test_lines_it_must_not_act_on():
    watcher = make()
    watcher.feed(line(f"Accepted publickey for tunnel from 10.0.0.5 port 40000 ssh2: ED25519 {FINGERPRINT}"))
    for ignored in [
        line("error: cannot listen to port: 2222", uid="1000"),  # not a tunnel account's session
        line("error: cannot listen to port: 2222", uid="999", at=NOW - 1),  # before the reaper started
        line("error: cannot listen to port: 2223", uid="999"),  # a port no entry of that key permits
        line("Received disconnect from 10.0.0.5 port 40000:11: disconnected by user", uid="999"),
        "not json at all",
        json.dumps({"MESSAGE": ["binary", "message"], "_UID": "999"}),
    ]:
        assert watcher.feed(ignored) == [], ignored


def test_only_logins_recorded_by_root_to_tunnel_accounts_are_learnt():
    watcher = make()
    watcher.feed(line(f"Accepted publickey for alice from 10.0.0.9 port 1 ssh2: ED25519 {FINGERPRINT}", pid=300))
    watcher.feed(line(f"Accepted publickey for tunnel from 10.0.0.9 port 1 ssh2: ED25519 {FINGERPRINT}", pid=301,
                      uid="999"))
    assert watcher.sessions == {}


def test_permitlisten_entries_are_read_by_port():
    assert reaper.keys_permitting("2222", AUTHORIZED) == {FINGERPRINT}
    assert reaper.keys_permitting("22", AUTHORIZED) == set()


def test_a_session_is_the_root_owned_monitor_of_the_account(tmp_path):
    (tmp_path / "100").mkdir()
    (tmp_path / "100" / "cmdline").write_bytes(b"sshd-session: tunnel [priv]\0")
    (tmp_path / "101").mkdir()
    (tmp_path / "101" / "cmdline").write_bytes(b"sshd: tunnel@notty\0")
    assert reaper.is_session("100", "tunnel", proc=str(tmp_path))
    assert not reaper.is_session("101", "tunnel", proc=str(tmp_path))
    assert not reaper.is_session("100", "alice", proc=str(tmp_path))
    assert not reaper.is_session("102", "tunnel", proc=str(tmp_path))


def test_the_installed_program_is_this_file():
    text = program_text(reaper)
    assert "class Reaper" in text and text.rstrip().endswith("raise SystemExit(main(sys.argv[1:]))")
