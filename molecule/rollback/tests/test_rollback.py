"""Confirm or roll back, on a device the controller reaches only through the device's own reverse tunnel.

The controller manages the device over SSH with a ProxyCommand through the bastion to the port the device's
tunnel "mgmt" forwards there (the device's sshd listens on its loopback only). Through that path: a bad change
(a server port the bastion does not listen on) cuts the path; the device puts the previous tunnel back by itself
and the task fails saying "Rolled back"; a good change is confirmed over a fresh connection riding the new
tunnel; a controller killed during the wait (its process group: ansible's worker, a session of its own, lives
on) confirms nothing, and the device rolls back by itself; a reboot during the wait leaves the device on the
last confirmed tunnel. The server end: a tunnel_server change that stops sshd listening on the port the
controller uses (it manages the bastion over SSH to its localhost:22) is rolled back by the bastion, a good one
is confirmed. Out-of-band observation goes through docker (the Molecule inventory), never the managed path.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

import labtest
import pytest
from labtest import wait_until

MODULE = "netreach.tunnels.ssh_tunnel"
CONFIG = "/etc/netreach/tunnels/mgmt/ssh_config"
PENDING = "/var/lib/netreach/pending/tunnel-mgmt"
TIMEOUT = 30
SERVER_MODULE = "netreach.tunnels.tunnel_server"
DROPIN = "/etc/ssh/sshd_config.d/50-netreach-tunnels.conf"
SERVER_PENDING = "/var/lib/netreach/pending/sshd-50-netreach-tunnels"
# The bastion's tunnel account as the role made it; no client of its own (managed_clients: []): the device's
# entry is kept, so only the ports change.
SERVER = dict(accounts=["tunnel"], managed_clients=[], rollback_timeout=TIMEOUT)


def device():
    return labtest.host("device")


def config() -> str:
    return device().check_output(f"cat {CONFIG}")


def interval() -> int:
    """The tunnel's ServerAliveInterval now: each change below declares another one."""
    return int(re.search(r"ServerAliveInterval (\d+)", config()).group(1))


def load() -> str:
    return " ".join(open("/proc/loadavg", encoding="utf-8").read().split()[:3])


def bastion():
    return labtest.host("bastion")


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    """An inventory that reaches the device as root through the bastion's localhost:2222 (the device's -R)."""
    return managed_path(tmp_path_factory.mktemp("through-tunnel"), "device", 2222)


@pytest.fixture(scope="module")
def server_path(tmp_path_factory):
    """An inventory that reaches the bastion as root over SSH to its localhost:22: the connection a tunnel_server
    change of the ports may refuse."""
    return managed_path(tmp_path_factory.mktemp("to-bastion"), "bastion", 22)


def managed_path(directory, short_name: str, port: int) -> dict:
    """Root on SHORT_NAME over SSH through the bastion's localhost:PORT (a ProxyCommand through docker exec)."""
    name = f"rollback-{short_name}"
    key = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "lab_ssh_key")
    known_hosts = directory / "known_hosts"
    host_key = labtest.host(short_name).check_output("cat /etc/ssh/ssh_host_ed25519_key.pub").split()[:2]
    known_hosts.write_text(f"{name} {' '.join(host_key)}\n", encoding="utf-8")
    proxy = f"docker exec -i {labtest.container('bastion')} nc localhost {port}"
    # ServerAlive: a connection whose path a restart cut is noticed (the proxy's nc does not see the close itself).
    alive = "-o ServerAliveInterval=3 -o ServerAliveCountMax=2"
    options = ["-o", f"ProxyCommand={proxy}", "-o", f"UserKnownHostsFile={known_hosts}", "-o", "ConnectTimeout=5",
               *alive.split()]
    inventory = directory / "inventory.ini"
    inventory.write_text(
        f"{name}-ssh ansible_host={name} ansible_user=root ansible_ssh_private_key_file={key} "
        "ansible_python_interpreter=/usr/bin/python3 ansible_ssh_pipelining=true "
        f"ansible_ssh_common_args='-o \"ProxyCommand={proxy}\" -o UserKnownHostsFile={known_hosts} "
        f"-o ConnectTimeout=5 {alive}'\n", encoding="utf-8")
    ssh = ["ssh", "-i", key, *options, "-o", "BatchMode=yes", f"root@{name}", "true"]

    def reachable() -> bool:
        try:
            return subprocess.run(ssh, capture_output=True, timeout=15, check=False).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    assert wait_until(reachable, 90) is not None, f"the controller cannot reach {name} through localhost:{port}"
    return {"inventory": str(inventory), "host": f"{name}-ssh", "reachable": reachable}


@pytest.fixture(scope="module")
def declaration():
    """The tunnel as the role declared it (its pinned bastion key read back from the device)."""
    known_hosts = device().check_output("cat /etc/netreach/tunnels/mgmt/known_hosts").splitlines()
    return dict(name="mgmt", server="rollback-bastion", user="tunnel", restart_delay=1, restart_max_delay=5,
                known_hosts=[line for line in known_hosts if line and not line.startswith("#")],
                remote_forwards=["2222:localhost:22"])


def start(path, args: dict, module: str = MODULE) -> subprocess.Popen:
    env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
               ANSIBLE_VERBOSITY="0")
    return subprocess.Popen(["ansible", path["host"], "-i", path["inventory"], "-m", module, "-a", json.dumps(args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)


def outcome(path, process: subprocess.Popen, timeout: int = 400) -> dict:
    stdout, stderr = process.communicate(timeout=timeout)
    start_at = stdout.find("{")
    assert start_at >= 0, f"ansible printed no JSON: {stdout}{stderr}"
    document, _ = json.JSONDecoder().raw_decode(stdout[start_at:])
    return document["plays"][0]["tasks"][0]["hosts"][path["host"]]


def run(path, args: dict, module: str = MODULE) -> dict:
    """One module run through the managed path, to its end; the controller never outlives a failed step."""
    process = start(path, args, module)
    try:
        return outcome(path, process)
    finally:
        stop(process)


def workers(process: subprocess.Popen) -> list[int]:
    """The controller's forked workers (its children). Each is a session of its own (ansible's WorkerProcess
    calls setsid), so killing the controller's process group leaves them running."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as stream:
                fields = stream.read().rpartition(")")[2].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == process.pid:
            found.append(int(entry))
    return found


def running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as stream:
            return stream.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def kill_controller(process: subprocess.Popen) -> list[int]:
    """Kill the controller's whole process group, as a user or a CI job does; returns its workers' pids."""
    forked = workers(process) if process.poll() is None else []
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate()
    return forked


def stop(process: subprocess.Popen, forked: list[int] | None = None) -> None:
    """Kill the controller and its workers' sessions: nothing of a step outlives it."""
    for pid in [*kill_controller(process), *(forked or [])]:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def applied(host=device, pending=PENDING) -> bool:
    return host().run(f"test -e {pending}/applied && test ! -e {pending}/rolled-back").rc == 0


def root_logins(host, since: float) -> int:
    """Root logins over SSH on HOST from the epoch second after SINCE on, from its sshd's journal."""
    text = host().run(f"journalctl --no-pager -q -o cat --since=@{int(since) + 1} _COMM=sshd _COMM=sshd-session"
                      ).stdout
    return sum("Accepted publickey for root" in line for line in text.splitlines())


def marker_seconds(host, pending: str) -> float:
    """Seconds on HOST's clock from the change going live (its apply's marker) to its rollback's marker."""
    times = host().check_output(f"stat -c %.3Y {pending}/applied {pending}/rolled-back").split()
    return float(times[1]) - float(times[0])


def applying() -> bool:
    """The host holds the armed change with its delayed apply (the module's last step, seconds before the apply
    runs), or the apply ran: the controller now waits to confirm, and cannot before the apply is done. Seen from
    the transient units themselves (--all: the apply's service is loaded while its timer waits), so a loaded
    machine's slow polling still sees it before the controller could confirm."""
    units = device().run("systemctl list-units --all --no-legend --plain 'netreach-apply-tunnel-mgmt-*'").stdout
    return bool(units.strip()) or applied()


def on_device(text: str, timeout: float = 300) -> float | None:
    """Seconds until TEXT shows up in the tunnel's ssh_config (read through docker, not the tunnel)."""
    return wait_until(lambda: text in config(), timeout, 0.2)


@pytest.fixture(autouse=True)
def settled():
    """Each step starts once no earlier change waits for its confirmation or rollback (on a loaded machine the
    host may still be rolling back the previous step's change)."""
    armed = "systemctl list-units --no-legend --plain 'netreach-rollback-*' 'netreach-apply-*'"
    for host in (device, bastion):
        assert wait_until(lambda: not host().run(armed).stdout.strip(), 400, 1) is not None, "a change never settled"


def test_a_bad_change_through_the_tunnel_is_rolled_back_by_the_device(path, declaration):
    confirmed = config()
    process = start(path, dict(declaration, port=2200, rollback_timeout=TIMEOUT))
    try:
        assert on_device("Port 2200") is not None, "the bad change never reached the device"
        written_at = time.monotonic()
        assert wait_until(applied, 300, 0.2) is not None, "the host never restarted the tunnel on the bad change"
        applied_at = time.monotonic()
        assert not path["reachable"](), "the wrong server port did not cut the path"
        # Bounded generously: the figure is printed; on a loaded machine systemd's timers fire late.
        back = wait_until(lambda: path["reachable"]() and "Port 2200" not in config(), TIMEOUT + 90, 0.5)
        assert back is not None, "the device did not come back through its tunnel"
        seconds = time.monotonic() - applied_at
        print(f"device manageable through its tunnel again {seconds:.1f} s after the bad change went live "
              f"({time.monotonic() - written_at:.1f} s after it was written; rollback_timeout {TIMEOUT} s, target "
              f"{TIMEOUT + 10} s; load average {load()})")
        result = outcome(path, process)
    finally:
        stop(process)
    print(f"task message: {result.get('msg')}")
    assert result.get("failed") and result.get("rolled_back") == ["tunnel mgmt"], result
    assert result["msg"].startswith("Rolled back: tunnel mgmt: the change was not confirmed because"), result["msg"]
    assert config() == confirmed, "the device does not run the last confirmed tunnel"
    assert device().service("netreach-tunnel@mgmt.service").is_running


def test_a_good_change_is_confirmed_over_the_new_tunnel(path, declaration):
    good = interval() + 1
    started = time.monotonic()
    result = run(path, dict(declaration, keepalive_interval=good, rollback_timeout=TIMEOUT))
    print(f"good change confirmed in {time.monotonic() - started:.1f} s (attempts: {result.get('confirm_attempts')})")
    assert result.get("changed") and result.get("confirmed") is True, result
    assert f"ServerAliveInterval {good}" in config()
    assert not device().file(PENDING).exists, "the confirmed change left its snapshot behind"
    again = run(path, dict(declaration, keepalive_interval=good, rollback_timeout=TIMEOUT))
    assert not again["changed"] and "confirmed" not in again, again
    assert path["reachable"]()


def test_a_controller_killed_during_the_wait_confirms_nothing_and_the_device_rolls_back(path, declaration):
    confirmed = interval()
    process = start(path, dict(declaration, keepalive_interval=confirmed + 1, rollback_timeout=TIMEOUT))
    forked = []
    try:
        # The module has armed the change (its last step): the controller is about to wait. Killed right there.
        assert wait_until(applying, 300, 0.1) is not None
        killed_at = time.time()
        forked = kill_controller(process)
        orphans = [pid for pid in forked if running(pid)]
        print(f"controller (process group {process.pid}) killed; its workers {forked}, sessions of their own, still "
              f"running: {orphans}")
        assert f"ServerAliveInterval {confirmed + 1}" in config()
        rolled = wait_until(lambda: device().file(f"{PENDING}/rolled-back").exists, TIMEOUT + 90, 0.5)
        assert rolled is not None, "the device kept a change nobody confirmed:\n" + device().run(
            f"ls -la {PENDING}; systemctl list-units --all --no-legend --plain 'netreach-*'; "
            "journalctl --no-pager -n 150 | grep -iE 'netreach|rollback|confirm|Accepted'").stdout
        logins = root_logins(device, killed_at)
        back = wait_until(path["reachable"], 60, 0.5)
        print(f"device rolled back by itself {marker_seconds(device, PENDING):.1f} s after the change went live "
              f"(rollback_timeout {TIMEOUT} s, target {TIMEOUT + 10} s), manageable through its tunnel again "
              f"{time.time() - killed_at:.1f} s after the kill; root logins after the kill until the rollback: "
              f"{logins}; load average {load()}")
        assert logins == 0, "something logged in and could have confirmed after the controller was killed"
        assert wait_until(lambda: not any(running(pid) for pid in orphans), 30) is not None, \
            "the orphaned worker did not give up"
    finally:
        stop(process, forked)
    assert back is not None, "the device is not manageable through its tunnel after its rollback"
    assert interval() == confirmed, "the device kept a change nobody confirmed"
    assert "not confirmed within" in device().check_output(f"cat {PENDING}/rolled-back")
    assert device().service("netreach-tunnel@mgmt.service").is_running


def test_a_reboot_during_the_wait_boots_the_last_confirmed_tunnel(path, declaration):
    confirmed = interval()
    process = start(path, dict(declaration, keepalive_interval=confirmed + 1, rollback_timeout=300))
    try:
        assert wait_until(applying, 300, 0.1) is not None
    finally:
        stop(process)
    assert f"ServerAliveInterval {confirmed + 1}" in config()
    restarted = time.monotonic()
    subprocess.run(["docker", "restart", labtest.container("device")], check=True, capture_output=True, timeout=120)
    back = wait_until(path["reachable"], 120, 0.5)
    assert back is not None, f"no tunnel after the reboot:\n{labtest.journal(device(), 'netreach-confirm-boot')}"
    print(f"device manageable through its tunnel {time.monotonic() - restarted:.1f} s after docker restart")
    assert interval() == confirmed, "the device booted a change nobody confirmed"
    assert "restarted before the change was confirmed" in device().check_output(f"cat {PENDING}/rolled-back")
    # The next change supersedes the rolled-back one and is confirmed.
    result = run(path, dict(declaration, keepalive_interval=confirmed + 2, rollback_timeout=TIMEOUT))
    assert result.get("confirmed") is True, result
    assert not device().run("systemctl list-timers --all --no-legend 'netreach-rollback-*'").stdout.strip()


def dropin() -> str:
    return bastion().check_output(f"cat {DROPIN}")


def test_a_server_change_that_refuses_the_managing_connection_is_rolled_back(server_path, path):
    confirmed = dropin()
    assert "Port " not in confirmed, "the role left the ports to sshd_config"
    process = start(server_path, dict(SERVER, ports=[2022]), SERVER_MODULE)
    try:
        assert wait_until(lambda: applied(bastion, SERVER_PENDING), 300, 0.2) is not None, \
            "the bastion never reloaded sshd on the change"
        applied_at = time.monotonic()
        assert "Port 2022" in dropin()
        assert not server_path["reachable"](), "sshd still takes the managing connection on port 22"
        back = wait_until(lambda: server_path["reachable"]() and "Port 2022" not in dropin(), TIMEOUT + 90, 0.5)
        assert back is not None, "the bastion did not take the managing connection again"
        print(f"bastion manageable again {time.monotonic() - applied_at:.1f} s after the bad change went live "
              f"(rolled back {marker_seconds(bastion, SERVER_PENDING):.1f} s after it; rollback_timeout {TIMEOUT} s, "
              f"target {TIMEOUT + 10} s; load average {load()})")
        result = outcome(server_path, process)
    finally:
        stop(process)
    print(f"task message: {result.get('msg')}")
    assert result.get("failed") and result.get("rolled_back") == ["sshd drop-in 50-netreach-tunnels.conf"], result
    assert result["msg"].startswith("Rolled back: sshd drop-in 50-netreach-tunnels.conf: the change was not "
                                    "confirmed because"), result["msg"]
    assert "put the previous authorized_keys and sshd drop-in back" in result["msg"]
    assert dropin() == confirmed
    assert path["reachable"](), "the device's tunnel did not live through the server's two reloads"


def test_a_good_server_change_is_confirmed_over_a_fresh_connection(server_path):
    result = run(server_path, dict(SERVER, ports=[22, 2022]), SERVER_MODULE)
    assert result.get("changed") and result.get("confirmed") is True, result
    assert bastion().socket("tcp://0.0.0.0:2022").is_listening
    assert not bastion().file(SERVER_PENDING).exists, "the confirmed change left its snapshot behind"
    again = run(server_path, dict(SERVER, ports=[22, 2022]), SERVER_MODULE)
    assert not again["changed"] and "confirmed" not in again, again
