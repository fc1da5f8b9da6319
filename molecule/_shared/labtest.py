"""Helpers shared by the lab's testinfra suites: where containers sit and what their units logged.

Tests run on the controller; they reach containers through testinfra hosts and ask docker itself for the
lab's addresses, so a test never guesses an address and never sends traffic outside the lab's networks.
"""
from __future__ import annotations

import functools
import json
import os
import subprocess
import time
from collections.abc import Callable

import testinfra


def scenario() -> str:
    return os.environ["MOLECULE_SCENARIO_NAME"]


def container(short_name: str) -> str:
    """The container of a lab host: scenarios name their platforms <scenario>-<short name>."""
    return f"{scenario()}-{short_name}"


@functools.cache
def host(short_name: str):
    """The testinfra host of a lab container, reached through the scenario's Molecule inventory."""
    return testinfra.get_host(f"ansible://{container(short_name)}", ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"])


def wait_until(probe: Callable[[], bool], timeout: float, interval: float = 0.5) -> float | None:
    """Seconds until PROBE first held, or None if it did not hold within TIMEOUT seconds."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if probe():
            return time.monotonic() - start
        time.sleep(interval)
    return None


def network_name(segment: str) -> str:
    return f"nrlab-{scenario()}-{segment}"


def container_ip(container: str, segment: str) -> str:
    """The IPv4 address of CONTAINER on the scenario's SEGMENT network."""
    out = subprocess.run(
        ["docker", "inspect", "--format", "{{ json .NetworkSettings.Networks }}", container],
        check=True, capture_output=True, text=True,
    ).stdout
    networks = json.loads(out)
    address = networks[network_name(segment)]["IPAddress"]
    if not address:
        raise AssertionError(f"{container} has no address on {network_name(segment)}")
    return address


def container_ip6(container: str, segment: str) -> str:
    """The global IPv6 address of CONTAINER on the scenario's SEGMENT network (segments with ipv6: true)."""
    out = subprocess.run(
        ["docker", "inspect", "--format", "{{ json .NetworkSettings.Networks }}", container],
        check=True, capture_output=True, text=True,
    ).stdout
    address = json.loads(out)[network_name(segment)]["GlobalIPv6Address"]
    if not address:
        raise AssertionError(f"{container} has no IPv6 address on {network_name(segment)}")
    return address


def ssh_inventory(directory, short_name: str, address: str, purpose: str) -> dict:
    """An inventory in DIRECTORY that manages container SHORT_NAME as root over SSH at ADDRESS with the scenario's
    lab key (prepare.yml authorises it), its ed25519 host key pinned, the way a controller manages a gateway.
    Returns the inventory path, its host name and a reachable() probe; fails unless the controller gets in now."""
    key = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "lab_ssh_key")
    known_hosts = directory / "known_hosts"
    host_key = host(short_name).check_output("cat /etc/ssh/ssh_host_ed25519_key.pub").split()[:2]
    known_hosts.write_text(f"{address} {' '.join(host_key)}\n", encoding="utf-8")
    name = f"{container(short_name)}-ssh"
    inventory = directory / "inventory.ini"
    inventory.write_text(
        f"{name} ansible_host={address} ansible_user=root ansible_ssh_private_key_file={key} "
        f"ansible_python_interpreter=/usr/bin/python3 "
        f"ansible_ssh_common_args='-o UserKnownHostsFile={known_hosts} -o ConnectTimeout=3'\n", encoding="utf-8")
    ssh = ["ssh", "-i", key, "-o", f"UserKnownHostsFile={known_hosts}", "-o", "ConnectTimeout=2", "-o", "BatchMode=yes",
           f"root@{address}", "true"]

    def reachable() -> bool:
        return subprocess.run(ssh, capture_output=True, timeout=15, check=False).returncode == 0

    assert reachable(), f"the controller cannot reach {container(short_name)} over SSH before {purpose}"
    return {"inventory": str(inventory), "host": name, "reachable": reachable}


def journal(host, unit: str, lines: int = 50) -> str:
    """The last lines a unit logged on HOST, for failure messages."""
    return host.run(f"journalctl --no-pager -n {lines} -u {unit}").stdout


def _ansible_json(command: list[str], timeout: int) -> dict:
    """Run an ansible command from the controller against the scenario's inventory with the json callback."""
    # Verbosity 0: the base config runs the scenario's own playbooks at -vvv (for the secrets audit), and verbose
    # lines around the json callback's document would only be noise here.
    env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
               ANSIBLE_VERBOSITY="0")
    completed = subprocess.run(command + ["-i", os.environ["MOLECULE_INVENTORY_FILE"]],
                               capture_output=True, text=True, timeout=timeout, check=False, env=env)
    # The scenarios' profile_tasks callback prints timing lines around the json callback's document.
    text = completed.stdout
    start = 0 if text.startswith("{") else text.find("\n{") + 1
    assert start > 0 or text.startswith("{"), f"ansible printed no JSON result: {text}{completed.stderr}"
    document, _ = json.JSONDecoder().raw_decode(text[start:])
    return document


def run_module(host: str, module: str, args: dict, timeout: int = 120) -> dict:
    """Run MODULE on the lab host HOST (container name) ad hoc, as a user would; HOST's result."""
    # ansible reads "-a '{}'" as a free-form argument: give no -a at all for no arguments.
    document = _ansible_json(["ansible", host, "-m", module] + (["-a", json.dumps(args)] if args else []), timeout)
    return document["plays"][0]["tasks"][0]["hosts"][host]


def run_playbook(playbook: str, *options: str, timeout: int = 600) -> dict:
    """Run PLAYBOOK (a path or a collection playbook name) against the lab; the json callback's stats per host."""
    return playbook_results(playbook, *options, timeout=timeout)["stats"]


def playbook_results(playbook: str, *options: str, timeout: int = 600) -> dict:
    """Run PLAYBOOK against the lab; the json callback's whole document (plays, their tasks and host results)."""
    return _ansible_json(["ansible-playbook", playbook, *options], timeout)


# Runs on a lab host with its own python3: every path under /etc (mode, owner, sha256 of a file's bytes, a symlink's
# target), the systemd unit lists and the nft ruleset, as one JSON document; with --digest only its sha256.
_SNAPSHOT_SCRIPT = r"""
import hashlib, json, os, stat, subprocess, sys
args = sys.argv[1:]
digest = "--digest" in args
excluded = {a for a in args if a != "--digest"}
paths = {}
def record(path):
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        what = "-> " + os.readlink(path)
    elif stat.S_ISREG(st.st_mode):
        with open(path, "rb") as handle:
            what = hashlib.sha256(handle.read()).hexdigest()
    elif stat.S_ISDIR(st.st_mode):
        what = "dir"
    else:
        what = "special"
    paths[path] = "%o %d:%d %s" % (st.st_mode, st.st_uid, st.st_gid, what)
# /etc, and where a hostile name or a planted link would lead a write or removal: homes, /srv, /run/netreach.
for top in ("/etc", "/root", "/home", "/srv", "/run/netreach"):
    if not os.path.lexists(top):
        continue
    record(top)
    for root, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if os.path.join(root, d) not in excluded)
        for name in dirs + sorted(files):
            path = os.path.join(root, name)
            if path not in excluded:
                record(path)
def run(*argv):
    done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    return done.stdout.splitlines() + (["exit %d" % done.returncode] if done.returncode else [])
snapshot = {
    "etc": paths,
    "units": run("systemctl", "list-units", "--all", "--plain", "--no-legend", "--no-pager"),
    "unit_files": run("systemctl", "list-unit-files", "--plain", "--no-legend", "--no-pager"),
    "nft": run("nft", "list", "ruleset"),
}
def sha(value):
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]
if digest:
    # One short digest per part (and per tree of the file part), so a difference says where it is.
    parts = {name: sha(value) for name, value in snapshot.items() if name != "etc"}
    for top in ("/etc", "/root", "/home", "/srv", "/run/netreach"):
        parts[top] = sha({p: v for p, v in paths.items() if p == top or p.startswith(top + "/")})
    print(" ".join("%s=%s" % item for item in sorted(parts.items())))
else:
    print(json.dumps(snapshot, sort_keys=True))
"""

# Paths under /etc that a snapshot leaves out. Empty on purpose: on the lab images nothing under /etc changes by
# itself while a scenario runs (docker writes /etc/hosts, /etc/hostname and /etc/resolv.conf once at start;
# ldconfig and the package manager run only when a playbook installs something). A path goes here only with the
# reason it changes on its own.
# Ansible's own remote temporary files come and go with every task.
SNAPSHOT_EXCLUDED: tuple[str, ...] = ("/root/.ansible",)


def snapshot_command(*options: str) -> list[str]:
    """The command line that prints a snapshot of a lab host (for `raw` tasks and docker exec alike)."""
    return ["python3", "-c", _SNAPSHOT_SCRIPT, *options, *SNAPSHOT_EXCLUDED]


def snapshot(host) -> dict:
    """What a bad input must not change on HOST (a testinfra host): /etc, /root, /home, /srv and /run/netreach,
    the systemd unit lists, the nft ruleset.

    "etc" (all those trees) maps every path to "mode uid:gid sha256-or-link-target"; units and unit_files are the lines of
    `systemctl list-units --all` and `systemctl list-unit-files`; nft is `nft list ruleset`.
    """
    command = snapshot_command()
    result = host.run(" ".join(["%s"] * len(command)), *command)
    assert result.rc == 0, f"snapshot failed: {result.stderr}"
    return json.loads(result.stdout)


def snapshot_digest(host) -> str:
    """Short sha256 digests of each part of HOST's snapshot ("nft=... units=... /etc=..."): equal digests, equal
    snapshots; a difference names the part."""
    command = snapshot_command("--digest")
    result = host.run(" ".join(["%s"] * len(command)), *command)
    assert result.rc == 0, f"snapshot failed: {result.stderr}"
    return result.stdout.strip()


def snapshot_changes(before: dict, after: dict) -> list[str]:
    """Human-readable differences between two snapshots; empty when the host is byte for byte unchanged."""
    changes = []
    for path in sorted(set(before["etc"]) | set(after["etc"])):
        old, new = before["etc"].get(path), after["etc"].get(path)
        if old != new:
            changes.append(f"{path}: {old or 'absent'} -> {new or 'absent'}")
    for part in ("units", "unit_files", "nft"):
        removed = [line for line in before[part] if line not in after[part]]
        added = [line for line in after[part] if line not in before[part]]
        changes += [f"{part}: - {line}" for line in removed] + [f"{part}: + {line}" for line in added]
        if not removed and not added and before[part] != after[part]:
            changes.append(f"{part}: same lines in another order")
    return changes
