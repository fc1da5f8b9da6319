"""The gateway lab's helpers, shared by the scenarios gateway and neighbours: the lab's addresses from docker, the
declaration of converge.yml (molecule/_shared/gateway_lab) in the module's terms, ad-hoc runs of nat_rules, traffic
probes and the gateway's restart. Traffic goes only to the lab's own containers."""
from __future__ import annotations

import functools
import json
import os
import subprocess

import labtest

MODULE = "netreach.tunnels.nat_rules"
INSIDE_PAGE = f"netreach {labtest.container('inside')} page on port 80"
# What every snapshot of the gateway covers: the whole ruleset without counters, and our files and timers.
SNAPSHOT = ("nft -s list ruleset; ls -la --time-style=+%s.%N /etc/netreach/nat /run/netreach/nat "
            "/etc/systemd/system/netreach-nat.service /etc/sysctl.d/90-netreach-nat.conf 2>&1; "
            "cat /etc/netreach/nat/netreach.nft 2>&1; systemctl list-timers --all --no-legend 'netreach-*'")


lab_host = labtest.host


@functools.cache
def addr(name: str, segment: str, version: int = 4) -> str:
    container = labtest.container(name)
    return labtest.container_ip(container, segment) if version == 4 else labtest.container_ip6(container, segment)


@functools.cache
def subnets(segment: str) -> list[str]:
    out = subprocess.run(["docker", "network", "inspect", "--format", "{{ json .IPAM.Config }}",
                          labtest.network_name(segment)], check=True, capture_output=True, text=True).stdout
    return [entry["Subnet"] for entry in json.loads(out)]


def inside_subnets() -> list[str]:
    return subnets("inside")


@functools.cache
def outside_if() -> str:
    """Docker attaches the gateway's networks in no fixed order: the outside interface holds that address."""
    return lab_host("gw").check_output(f"ip -o -4 addr show to {addr('gw', 'outside')}/32").split()[1]


def declaration(**changes) -> dict:
    """The declaration of converge.yml, in the module's terms."""
    v4, v6 = (next(net for net in inside_subnets() if (":" in net) == is_v6) for is_v6 in (False, True))
    args = {
        "masquerade": [{"out_interface": outside_if(), "source": v4}, {"out_interface": outside_if(), "source": v6}],
        "port_forwards": [
            {"proto": "tcp", "port": 8080, "to": f"{addr('inside', 'inside')}:80", "in_interface": outside_if()},
            {"proto": "tcp", "port": 8080, "to": f"[{addr('inside', 'inside', 6)}]:80", "in_interface": outside_if()},
            {"proto": "udp", "port": "5000-5002", "to": addr("inside", "inside")},
        ],
        "forward_policy": "drop",
        "ip_forward": True,
        # The confirmation is a module run over a fresh connection: on a loaded 2-core machine arming to
        # disarming took 13-16 s (docker connection), so the window is the module's default.
        "rollback_timeout": 30,
    }
    return {**args, **changes}


def run_module(args: dict, check: bool = False, inventory: str | None = None, host: str | None = None) -> dict:
    """Run nat_rules ad hoc from the controller, as a user would; the host's result."""
    host = host or labtest.container("gw")
    env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    command = ["ansible", host, "-i", inventory or os.environ["MOLECULE_INVENTORY_FILE"], "--diff",
               "-m", MODULE, "-a", json.dumps(args)] + (["--check"] if check else [])
    completed = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False, env=env)
    # The scenario's profile_tasks callback prints timing lines around the json callback's document.
    start = 0 if completed.stdout.startswith("{") else completed.stdout.find("\n{") + 1
    assert completed.stdout[start:start + 1] == "{", f"ansible printed no JSON result: {completed.stdout}{completed.stderr}"
    document, _ = json.JSONDecoder().raw_decode(completed.stdout[start:])
    return document["plays"][0]["tasks"][0]["hosts"][host]


def fetch(client: str, url: str) -> str:
    return lab_host(client).run(f"curl -s -g -m 3 '{url}'").stdout


def udp(client: str, address: str, port: int) -> str:
    return lab_host(client).run(f"echo ping | nc -u -w 2 {address} {port}").stdout


def snapshot() -> str:
    return lab_host("gw").check_output(SNAPSHOT)


def our_table() -> str:
    return lab_host("gw").run("nft -s list table inet netreach").stdout


wait_until = labtest.wait_until


def restart_gateway() -> None:
    subprocess.run(["docker", "restart", labtest.container("gw")], check=True, capture_output=True, timeout=120)
    # Right after the restart, systemd (PID 1) may not yet answer at all.
    booted = wait_until(lambda: lab_host("gw").run("systemctl is-system-running --wait").stdout.strip()
                        in ("running", "degraded"), 60, 1)
    assert booted is not None, "the gateway did not finish booting within 60 s"
