"""Confirm or roll back, on a device the controller reaches only through the device's own reverse tunnel.

The controller manages the device over SSH with a ProxyCommand through the bastion to the port the device's
tunnel "mgmt" forwards there (the device's sshd listens on its loopback only). Through that path: a bad change
(a server port the bastion does not listen on) cuts the path; the device puts the previous tunnel back by itself
and the task fails saying "Rolled back"; a good change is confirmed over a fresh connection riding the new
tunnel; a reboot during the wait leaves the device on the last confirmed tunnel. (A controller killed during
the wait is not proven here: the lab's test found the new tunnel still in place rollback_timeout + 90 s after the
kill, see issue 16.) Out-of-band observation goes through docker (the Molecule inventory), never the tunnel.
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


def device():
    return labtest.host("device")


def config() -> str:
    return device().check_output(f"cat {CONFIG}")


def interval() -> int:
    """The tunnel's ServerAliveInterval now: each change below declares another one."""
    return int(re.search(r"ServerAliveInterval (\d+)", config()).group(1))


def load() -> str:
    return " ".join(open("/proc/loadavg", encoding="utf-8").read().split()[:3])


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    """An inventory that reaches the device as root through the bastion's localhost:2222 (the device's -R)."""
    directory = tmp_path_factory.mktemp("through-tunnel")
    key = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "lab_ssh_key")
    known_hosts = directory / "known_hosts"
    host_key = device().check_output("cat /etc/ssh/ssh_host_ed25519_key.pub").split()[:2]
    known_hosts.write_text(f"rollback-device {' '.join(host_key)}\n", encoding="utf-8")
    proxy = f"docker exec -i {labtest.container('bastion')} nc localhost 2222"
    # ServerAlive: a connection whose path a restart cut is noticed (the proxy's nc does not see the close itself).
    alive = "-o ServerAliveInterval=3 -o ServerAliveCountMax=2"
    options = ["-o", f"ProxyCommand={proxy}", "-o", f"UserKnownHostsFile={known_hosts}", "-o", "ConnectTimeout=5",
               *alive.split()]
    inventory = directory / "inventory.ini"
    inventory.write_text(
        f"rollback-device-ssh ansible_host=rollback-device ansible_user=root ansible_ssh_private_key_file={key} "
        "ansible_python_interpreter=/usr/bin/python3 ansible_ssh_pipelining=true "
        f"ansible_ssh_common_args='-o \"ProxyCommand={proxy}\" -o UserKnownHostsFile={known_hosts} "
        f"-o ConnectTimeout=5 {alive}'\n", encoding="utf-8")
    ssh = ["ssh", "-i", key, *options, "-o", "BatchMode=yes", "root@rollback-device", "true"]

    def reachable() -> bool:
        try:
            return subprocess.run(ssh, capture_output=True, timeout=15, check=False).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    assert wait_until(reachable, 90) is not None, "the controller cannot reach the device through its tunnel"
    return {"inventory": str(inventory), "host": "rollback-device-ssh", "reachable": reachable}


@pytest.fixture(scope="module")
def declaration():
    """The tunnel as the role declared it (its pinned bastion key read back from the device)."""
    known_hosts = device().check_output("cat /etc/netreach/tunnels/mgmt/known_hosts").splitlines()
    return dict(name="mgmt", server="rollback-bastion", user="tunnel", restart_delay=1, restart_max_delay=5,
                known_hosts=[line for line in known_hosts if line and not line.startswith("#")],
                remote_forwards=["2222:localhost:22"])


def start(path, args: dict) -> subprocess.Popen:
    env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
               ANSIBLE_VERBOSITY="0")
    return subprocess.Popen(["ansible", path["host"], "-i", path["inventory"], "-m", MODULE, "-a", json.dumps(args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)


def outcome(path, process: subprocess.Popen, timeout: int = 400) -> dict:
    stdout, stderr = process.communicate(timeout=timeout)
    start_at = stdout.find("{")
    assert start_at >= 0, f"ansible printed no JSON: {stdout}{stderr}"
    document, _ = json.JSONDecoder().raw_decode(stdout[start_at:])
    return document["plays"][0]["tasks"][0]["hosts"][path["host"]]


def run(path, args: dict) -> dict:
    """One module run through the tunnel, to its end; the controller never outlives a failed step."""
    process = start(path, args)
    try:
        return outcome(path, process)
    finally:
        stop(process)


def stop(process: subprocess.Popen) -> None:
    """Kill the controller as a whole: ansible runs each task in a forked worker (with its ssh), which would
    otherwise go on and confirm after its parent died."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate()


def applied() -> bool:
    return device().run(f"test -e {PENDING}/applied && test ! -e {PENDING}/rolled-back").rc == 0


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
    assert wait_until(lambda: not device().run(armed).stdout.strip(), 400, 1) is not None, "a change never settled"


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
