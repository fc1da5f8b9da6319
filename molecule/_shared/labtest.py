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


def journal(host, unit: str, lines: int = 50) -> str:
    """The last lines a unit logged on HOST, for failure messages."""
    return host.run(f"journalctl --no-pager -n {lines} -u {unit}").stdout


def _ansible_json(command: list[str], timeout: int) -> dict:
    """Run an ansible command from the controller against the scenario's inventory with the json callback."""
    env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
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


def run_playbook(playbook: str, *options: str, timeout: int = 600, document: bool = False) -> dict:
    """Run PLAYBOOK (a path or a collection playbook name) against the lab; the json callback's stats per host
    (or with DOCUMENT its whole result: plays, tasks and stats)."""
    result = _ansible_json(["ansible-playbook", playbook, *options], timeout)
    return result if document else result["stats"]
