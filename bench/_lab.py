"""Shared pieces of the benchmarks: a two-container lab of their own, commands in it, the report section."""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


def create_network(name: str, internal: bool = False) -> None:
    subprocess.run(["docker", "network", "create", "--label", "netreach.lab=1", *(["--internal"] if internal else []), name],
                   check=True, capture_output=True)


def start_container(name: str, networks: list[str], label: str, image: str = "netreach-lab:bookworm") -> None:
    """A lab container booting systemd (options of shared/LAB.md), on NETWORKS, labelled with the benchmark's LABEL."""
    subprocess.run(["docker", "run", "-d", "--name", name, "--hostname", name, "--network", networks[0],
                    "--label", "netreach.lab=1", "--label", f"netreach.lab.scenario={label}",
                    "--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN", "--cap-add", "NET_RAW",
                    "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
                    "--cgroupns", "host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--tmpfs", "/run",
                    "--tmpfs", "/run/lock", "--tmpfs", "/tmp", "-e", "container=docker", image],
                   check=True, capture_output=True)
    for network in networks[1:]:
        subprocess.run(["docker", "network", "connect", network, name], check=True, capture_output=True)


def wait_booted(names: list[str], timeout: float = 300) -> None:
    """Wait until systemd in every container has finished booting (TIMEOUT seconds for all: a loaded machine
    boots many containers slowly)."""
    deadline = time.monotonic() + timeout
    for name in names:
        state = ""
        while time.monotonic() < deadline:
            state = subprocess.run(["docker", "exec", name, "systemctl", "is-system-running"],
                                   capture_output=True, text=True).stdout.strip()
            if state in ("running", "degraded"):
                break
            time.sleep(1)
        else:
            jobs = subprocess.run(["docker", "exec", name, "systemctl", "list-jobs", "--no-pager"],
                                  capture_output=True, text=True)
            status = subprocess.run(["docker", "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", name],
                                    capture_output=True, text=True).stdout.strip()
            raise RuntimeError(f"{name}: systemd did not finish booting within {timeout:.0f} s (state {state!r}, "
                               f"container {status}): {jobs.stdout}{jobs.stderr}")


class Lab:
    """A client and a server container from the lab image on a docker network of the benchmark's own."""

    def __init__(self, name: str) -> None:
        self.network = f"nrlab-bench-{name}-net"
        self.client, self.server = f"bench-{name}-client", f"bench-{name}-server"
        self.label = f"bench-{name}"

    def sh(self, container: str, command: str, check: bool = True) -> str:
        done = subprocess.run(["docker", "exec", container, "sh", "-c", command], capture_output=True, text=True)
        if check and done.returncode != 0:
            raise RuntimeError(f"{container}: {command}: {done.stderr or done.stdout}")
        return done.stdout

    def start(self) -> None:
        self.stop()
        create_network(self.network)
        for name in (self.client, self.server):
            start_container(name, [self.network], self.label)
        wait_booted([self.client, self.server])

    def stop(self) -> None:
        subprocess.run(["docker", "rm", "-f", self.client, self.server], capture_output=True)
        subprocess.run(["docker", "network", "rm", self.network], capture_output=True)

    def module(self, module: str, args: dict) -> dict:
        """Run a module of the installed collection on the client, as a user would ad hoc."""
        env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
        done = subprocess.run(["ansible", "all", "-i", f"{self.client},", "-c", "community.docker.docker",
                               "-e", "ansible_python_interpreter=/usr/bin/python3", "-m", module, "-a", json.dumps(args)],
                              capture_output=True, text=True, env=env, check=False)
        result = json.loads(done.stdout)["plays"][0]["tasks"][0]["hosts"][self.client]
        if result.get("failed"):
            raise RuntimeError(result.get("msg"))
        return result

    def put(self, container: str, path: str, text: str) -> None:
        """TEXT written to PATH in CONTAINER."""
        subprocess.run(["docker", "exec", "-i", container, "sh", "-c", f"cat > {path}"], input=text, text=True,
                       check=True, capture_output=True)

    def tunnel_to_server(self, name: str, forwards: list[str], **params) -> str:
        """A netreach tunnel from the client to the server's tunnel account (PARAMS: more ssh_tunnel options);
        returns the server's known_hosts line."""
        self.sh(self.server, "id tunnel >/dev/null 2>&1 || useradd -m -s /bin/sh tunnel; "
                             "install -d -m 700 -o tunnel /home/tunnel/.ssh; systemctl start ssh")
        known = f"{self.server} " + " ".join(self.sh(self.server, "cat /etc/ssh/ssh_host_ed25519_key.pub").split()[:2])
        result = self.module("netreach.tunnels.ssh_tunnel", {
            "name": name, "server": self.server, "user": "tunnel", "known_hosts": [known], "local_forwards": forwards,
            **params})
        self.sh(self.server, f"grep -qF '{result['public_key']}' /home/tunnel/.ssh/authorized_keys 2>/dev/null || "
                             f"echo '{result['public_key']}' >> /home/tunnel/.ssh/authorized_keys; "
                             "chown tunnel /home/tunnel/.ssh/authorized_keys")
        return known


def write_section(title: str, intro: str, lines: list[str]) -> None:
    """Replace (or add) the section TITLE of docs/benchmarks.md."""
    path = ROOT / "docs" / "benchmarks.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n\nFigures measured on the lab (2 cores, docker containers).\n"
    section = f"## {title}\n\n{intro}\n\n" + "\n".join(lines) + "\n"
    marker = f"## {title}\n"
    if marker in text:
        head, rest = text.split(marker, 1)
        following = rest.find("\n## ")
        text = head + section + ("\n" + rest[following + 1:] if following >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def save_results(name: str, data: dict) -> None:
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
