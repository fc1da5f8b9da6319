"""The tunnel metrics program: its reading of our ssh_config, the exposition format, the atomic write, the probes
(real sockets on loopback) and the session check against a fake /proc."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.netreach.tunnels.plugins.module_utils import _tunnel_metrics as metrics
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel import parse_tunnel
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_render import render_ssh_config
from test_tunnel_plan import TUNNEL

LABEL_VALUE = r'"(?:[^"\\\n]|\\\\|\\"|\\n)*"'
SAMPLE_RE = re.compile(rf"^([a-z_]+)\{{((?:[a-z_]+={LABEL_VALUE},?)*)\}} (-?[0-9]+)$")


def parse_exposition(text: str) -> dict:
    """A strict reader of the text format as node_exporter's textfile collector takes it: every metric's HELP
    then TYPE before its samples, one family per name, label values escaped. Name -> [(labels, value)]."""
    assert text.endswith("\n")
    families, current, kinds = {}, None, {}
    for line in text.split("\n")[:-1]:  # only \n ends a line in the text format
        if line.startswith("# HELP "):
            name = line.split()[2]
            assert name not in families, f"{name} twice"
            families[name], current = [], name
        elif line.startswith("# TYPE "):
            words = line.split()
            assert words[2] == current and words[3] in ("gauge", "counter")
            kinds[current] = words[3]
        else:
            match = SAMPLE_RE.match(line)
            assert match, f"not a sample line: {line!r}"
            assert match.group(1) == current and current in kinds
            pairs = re.findall(rf"([a-z_]+)=({LABEL_VALUE})", match.group(2))
            values = {key: re.sub(r'\\(.)', lambda m: "\n" if m.group(1) == "n" else m.group(1), value[1:-1])
                      for key, value in pairs}
            families[current].append((values, int(match.group(3))))
    return families


def tunnel_config(**changes):
    tunnel = parse_tunnel(dict(TUNNEL, proxy=None, **changes))
    return metrics.read_config(tunnel.name, render_ssh_config(tunnel))


def test_the_ssh_config_we_render_reads_back_as_server_and_forwards():
    config = tunnel_config(jump_hosts=["hop@bastion:2222"], local_forwards=["127.0.0.1:12345:localhost:119"],
                           remote_forwards=["2222:localhost:22"], dynamic_forwards=["3128"])
    assert config.server == "newshost"  # not the jump host
    assert [(fwd.kind, fwd.listen) for fwd in config.forwards] == [
        ("local", "127.0.0.1:12345"), ("remote", "2222"), ("dynamic", "3128")]


def test_discover_reads_every_tunnel_directory_with_an_ssh_config(tmp_path):
    tunnel = parse_tunnel(dict(TUNNEL, proxy=None))
    for name in ("news", "keyonly", "Odd Name"):
        (tmp_path / name).mkdir()
    (tmp_path / "news" / "ssh_config").write_text(render_ssh_config(tunnel))
    (tmp_path / "Odd Name" / "ssh_config").write_text(render_ssh_config(tunnel))
    assert [config.name for config in metrics.discover(str(tmp_path))] == ["news"]
    assert metrics.discover(str(tmp_path / "missing")) == []


def test_systemctl_show_gives_running_restarts_start_and_the_cgroup_processes(tmp_path):
    (tmp_path / "system.slice" / "t").mkdir(parents=True)
    (tmp_path / "system.slice" / "t" / "cgroup.procs").write_text("41\n42\n")
    show = metrics.parse_show("ActiveState=active\nSubState=running\nNRestarts=3\nExecMainStartTimestamp=@1700000000\n"
                              "ControlGroup=/system.slice/t\nMainPID=41\n")
    status = metrics.status_from_show(show, str(tmp_path))
    assert (status.running, status.restarts, status.started, status.pids) == (True, 3, 1700000000.0, ["41", "42"])
    between = metrics.status_from_show(metrics.parse_show("ActiveState=activating\nSubState=auto-restart\n"
                                                          "NRestarts=4\nExecMainStartTimestamp=\nMainPID=0\n"))
    assert (between.running, between.restarts, between.started, between.pids) == (False, 4, 0.0, [])


def test_the_starter_state_adds_its_own_restarts_and_the_session_start(tmp_path):
    # The starter runs ssh again itself: systemd counted 1 restart (of the starter), the starter 5 more; its ssh took
    # over at 1700000100.5 in this start of the unit (same invocation), after the unit started at 1700000000.
    (tmp_path / "news").mkdir()
    (tmp_path / "news" / "state").write_text("failures=1 started=12.0 since=1700000100.5 invocation=inv2 restarts=5\n")
    starter = metrics.read_starter_state("news", str(tmp_path))
    show = "ActiveState=active\nSubState=running\nNRestarts=1\nExecMainStartTimestamp=@1700000000\n"
    status = metrics.status_from_show(metrics.parse_show(show + "InvocationID=inv2\n"), str(tmp_path), starter)
    assert (status.restarts, status.started) == (6, 1700000100.5)
    # A hand-over of an earlier start of the unit is not this session's start; a starter waiting out its backoff has
    # no session (no "since"): the unit's own start stands, and the metric says 0 while the session is down.
    earlier = metrics.status_from_show(metrics.parse_show(show + "InvocationID=inv3\n"), str(tmp_path), starter)
    assert (earlier.restarts, earlier.started) == (6, 1700000000.0)
    waiting = metrics.status_from_show(metrics.parse_show(show + "InvocationID=inv2\n"), str(tmp_path),
                                       {"failures": "2", "restarts": "x"})
    assert (waiting.restarts, waiting.started) == (1, 1700000000.0)
    assert metrics.read_starter_state("missing", str(tmp_path)) == {}


def test_one_systemctl_call_gives_every_unit_s_status(monkeypatch, tmp_path):
    calls = []

    def show(args, **_kwargs):
        calls.append(args)
        blocks = [f"Id=netreach-tunnel@{name}.service\nActiveState={state}\nSubState={sub}\nNRestarts={restarts}\n"
                  for name, state, sub, restarts in [("news", "active", "running", 2), ("socks", "activating", "start-pre", 7)]]
        return subprocess.CompletedProcess(args, 0, "\n".join(blocks), "")

    monkeypatch.setattr(metrics.subprocess, "run", show)
    statuses = metrics.unit_statuses(["news", "socks", "gone"], runtime_root=str(tmp_path))
    assert len(calls) == 1 and calls[0][-3:] == [metrics.UNIT.format(name) for name in ("news", "socks", "gone")]
    assert [(statuses[name].running, statuses[name].restarts) for name in ("news", "socks", "gone")] == [
        (True, 2), (False, 7), (False, 0)]
    assert metrics.unit_statuses([]) == {}


def test_a_hybrid_host_s_cgroup_is_found_in_the_systemd_hierarchy(tmp_path):
    (tmp_path / "systemd" / "docker" / "c" / "t").mkdir(parents=True)
    (tmp_path / "systemd" / "docker" / "c" / "t" / "cgroup.procs").write_text("7\n8\n")
    show = {"ActiveState": "active", "SubState": "running", "ControlGroup": "/docker/c/t", "MainPID": "7"}
    assert metrics.status_from_show(show, str(tmp_path)).pids == ["7", "8"]
    assert metrics.status_from_show(show, str(tmp_path / "none")).pids == ["7"]  # no cgroup file: the main process


def test_another_user_s_sockets_are_read_as_that_user(tmp_path):
    """What the metrics service does where root may not read other users' descriptors (no CAP_SYS_PTRACE)."""
    uid = 65534 if os.geteuid() == 0 else os.geteuid()
    holder = subprocess.Popen(["/usr/bin/python3", "-c", "import socket, sys; s = socket.socket(); s.bind(('127.0.0.1', 0)); "
                               "print(s.fileno(), flush=True); sys.stdin.read()"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, user=uid, group=uid)
    try:
        fd = holder.stdout.readline().strip()
        expected = os.readlink(f"/proc/{holder.pid}/fd/{fd}")[len("socket:["):-1]
        assert expected in metrics.socket_inodes_as_owner(f"/proc/{holder.pid}/fd", uid, uid)
        with pytest.raises(PermissionError):
            metrics.socket_inodes_as_owner(str(tmp_path / "gone"), uid, uid)
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)


def fake_proc(tmp_path, pid: str, inode: str, state: str):
    fd = tmp_path / pid / "fd"
    fd.mkdir(parents=True)
    os.symlink(f"socket:[{inode}]", fd / "3")
    os.symlink("/dev/null", fd / "0")
    (tmp_path / pid / "net").mkdir()
    header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    row = f"   0: 0100007F:0016 0200007F:D431 {state} 00000000:00000000 00:00000000 00000000  1000        0 {inode} 1\n"
    (tmp_path / pid / "net" / "tcp").write_text(header + row)
    (tmp_path / pid / "net" / "tcp6").write_text(header)


def test_a_session_is_established_only_with_an_established_tcp_socket(tmp_path):
    fake_proc(tmp_path, "10", "5001", "01")
    fake_proc(tmp_path, "11", "5002", "0A")  # listening only
    assert metrics.session_established(["10"], str(tmp_path))
    assert metrics.session_established(["99", "11", "10"], str(tmp_path))  # a pid that ended is skipped
    assert not metrics.session_established(["11"], str(tmp_path))
    assert not metrics.session_established([], str(tmp_path))


@pytest.mark.parametrize("listen, expected", [
    ("12345", (socket.AF_INET, ("127.0.0.1", 12345))),
    ("0.0.0.0:12345", (socket.AF_INET, ("127.0.0.1", 12345))),
    ("*:12345", (socket.AF_INET, ("127.0.0.1", 12345))),
    ("localhost:12345", (socket.AF_INET, ("127.0.0.1", 12345))),
    ("10.1.2.3:80", (socket.AF_INET, ("10.1.2.3", 80))),
    ("[::1]:8080", (socket.AF_INET6, ("::1", 8080))),
    ("[::]:8080", (socket.AF_INET6, ("::1", 8080))),
    ("/run/x.sock", (socket.AF_UNIX, "/run/x.sock")),
])
def test_listen_specs_are_probed_where_they_listen(listen, expected):
    assert metrics.listen_address(listen) == expected


def serve_once(reply: bytes | None):
    """A loopback listener answering its first connection with REPLY (None: just accept); returns its port."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def answer():
        conn, _addr = server.accept()
        with conn:
            if reply is not None:
                conn.recv(3)
                conn.sendall(reply)
        server.close()

    threading.Thread(target=answer, daemon=True).start()
    return server.getsockname()[1]


def closed_port() -> int:
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        return probe_socket.getsockname()[1]


def test_a_local_forward_is_up_while_its_listener_accepts():
    assert metrics.probe(metrics.Forward("local", f"127.0.0.1:{serve_once(None)}"))
    assert not metrics.probe(metrics.Forward("local", f"127.0.0.1:{closed_port()}"))


def test_a_dynamic_forward_is_up_only_when_it_answers_the_socks5_greeting():
    assert metrics.probe(metrics.Forward("dynamic", str(serve_once(b"\x05\x00"))))
    assert not metrics.probe(metrics.Forward("dynamic", str(serve_once(b"HTTP"))), timeout=1)
    assert not metrics.probe(metrics.Forward("dynamic", str(closed_port())))


def test_a_unix_socket_forward_is_probed_on_its_path(tmp_path):
    path = str(tmp_path / "fwd.sock")
    assert not metrics.probe(metrics.Forward("local", path))
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(path)
        server.listen(1)
        assert metrics.probe(metrics.Forward("local", path))


def running(restarts=0, started=1700000000.0):
    return metrics.UnitStatus(running=True, restarts=restarts, started=started, pids=["1"])


def test_a_tunnel_is_up_only_with_its_session_and_every_forward():
    config = tunnel_config(local_forwards=["12345:localhost:119"], remote_forwards=["2222:localhost:22"])
    up = metrics.measure(config, running(), established=lambda pids: True, prober=lambda fwd: True)
    assert up.up and up.forwards_up == [True, True]
    listener_down = metrics.measure(config, running(), established=lambda pids: True, prober=lambda fwd: False)
    # The remote forward stands on the session (the server accepted it); the local one failed its probe.
    assert not listener_down.up and listener_down.forwards_up == [False, True]
    no_session = metrics.measure(config, running(), established=lambda pids: False, prober=lambda fwd: True)
    assert not no_session.up and no_session.forwards_up == [False, False]
    probed = []
    stopped = metrics.measure(config, metrics.UnitStatus(), established=lambda pids: True, prober=probed.append)
    assert not stopped.up and probed == []  # a unit that does not run is not probed


def test_the_textfile_has_help_type_and_a_sample_per_tunnel_and_forward():
    news = tunnel_config(local_forwards=["12345:localhost:119", "12346:localhost:80"])
    reverse = tunnel_config(name="reverse", server="bastion", local_forwards=[], remote_forwards=["2222:localhost:22"])
    states = [metrics.measure(news, running(restarts=2), lambda pids: True, lambda fwd: fwd.listen == "12345"),
              metrics.measure(reverse, running(started=1700000500.0), lambda pids: True, lambda fwd: True)]
    families = parse_exposition(metrics.render(states))
    assert sorted(families) == sorted(name for name, _kind, _help in metrics.METRICS)
    assert families["netreach_tunnel_up"] == [({"tunnel": "news", "server": "newshost"}, 0),
                                              ({"tunnel": "reverse", "server": "bastion"}, 1)]
    assert families["netreach_forward_up"] == [
        ({"tunnel": "news", "kind": "local", "listen": "12345"}, 1),
        ({"tunnel": "news", "kind": "local", "listen": "12346"}, 0),
        ({"tunnel": "reverse", "kind": "remote", "listen": "2222"}, 1)]
    assert families["netreach_tunnel_restarts_total"] == [({"tunnel": "news"}, 2), ({"tunnel": "reverse"}, 0)]
    assert families["netreach_tunnel_up_since_seconds"] == [({"tunnel": "news"}, 1700000000),
                                                            ({"tunnel": "reverse"}, 1700000500)]
    down = metrics.measure(news, metrics.UnitStatus(restarts=5, started=1700000000.0), lambda pids: True, bool)
    assert parse_exposition(metrics.render([down]))["netreach_tunnel_up_since_seconds"] == [({"tunnel": "news"}, 0)]


def test_no_tunnels_give_a_valid_file_with_the_families_only():
    families = parse_exposition(metrics.render([]))
    assert all(samples == [] for samples in families.values()) and len(families) == 4


@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=30))
def test_label_values_are_escaped_and_read_back_unchanged(value):
    config = metrics.TunnelConfig("news", server=value, forwards=[])
    state = metrics.TunnelState(config, metrics.UnitStatus(), False, [])
    assert parse_exposition(metrics.render([state]))["netreach_tunnel_up"] == [({"tunnel": "news", "server": value}, 0)]


def test_the_textfile_is_replaced_whole_and_leaves_no_scratch_file(tmp_path):
    target = tmp_path / metrics.TEXTFILE
    target.write_text("old\n")
    os.chmod(target, 0o600)
    inode = os.stat(target).st_ino
    metrics.write_atomically(str(tmp_path), metrics.TEXTFILE, "new\n")
    assert target.read_text() == "new\n" and os.stat(target).st_ino != inode  # renamed over, not rewritten
    assert os.stat(target).st_mode & 0o777 == 0o644 and os.listdir(tmp_path) == [metrics.TEXTFILE]


def test_a_failed_write_keeps_the_old_file_and_removes_the_scratch_file(tmp_path, monkeypatch):
    target = tmp_path / metrics.TEXTFILE
    target.write_text("old\n")

    def refuse(_src, _dst):
        raise OSError("disk full")

    monkeypatch.setattr(metrics.os, "replace", refuse)
    with pytest.raises(OSError):
        metrics.write_atomically(str(tmp_path), metrics.TEXTFILE, "new\n")
    assert target.read_text() == "old\n" and os.listdir(tmp_path) == [metrics.TEXTFILE]


def test_main_writes_the_textfile_of_the_discovered_tunnels(tmp_path, monkeypatch):
    config = tunnel_config(local_forwards=[f"127.0.0.1:{closed_port()}:localhost:119"])
    monkeypatch.setattr(metrics, "discover", lambda: [config])
    monkeypatch.setattr(metrics, "unit_statuses",
                        lambda names: {name: metrics.UnitStatus(running=True, restarts=1, pids=[]) for name in names})
    assert metrics.main([str(tmp_path)]) == 0
    families = parse_exposition((tmp_path / metrics.TEXTFILE).read_text())
    assert families["netreach_tunnel_up"] == [({"tunnel": "news", "server": "newshost"}, 0)]
    assert families["netreach_tunnel_restarts_total"] == [({"tunnel": "news"}, 1)]
    assert metrics.main([]) == 2 and metrics.main(["relative"]) == 2
