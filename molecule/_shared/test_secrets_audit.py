"""Secrets audit, run in the verify step of every scenario (the base config adds this file to each one).

The base config runs every playbook of the scenario (create, prepare, check, converge, idempotence) at -vvv with
--diff and logs all of ansible's output to ansible.log in the scenario's ephemeral directory. This audit collects
the scenario's secrets (every password-like inventory value, the secrets the scenario declares in its audit.yml,
every private key found on its hosts) and asserts that none of them shows in that log, in any host's journal or
in any host's process list, and that every file holding one is 0600 and owned by the right user. It runs after the
scenario's own tests (molecule/_shared/conftest.py orders it last), so it also sees what their ad hoc runs did.
"""
from __future__ import annotations

import functools
import json
import os
import re
import subprocess

import audit
import labtest
import pytest
import yaml

# Directories searched on each host for files holding a secret or a private key. Left out: /proc, /sys, /dev,
# /usr (packages), the package databases and caches, and the journal's binary files (its text is checked below).
SEARCHED = ["/etc", "/root", "/home", "/srv", "/opt", "/tmp", "/var/tmp", "/var/lib", "/var/spool", "/var/log",
            "/var/backups", "/usr/local", "/run"]
SKIPPED = ["/var/lib/dpkg", "/var/lib/apt", "/var/lib/systemd/catalog", "/var/log/journal", "/run/systemd/journal"]

# Runs on a host with its own python3; reads the needles from stdin so that no secret is ever on a command line.
FINDER = r"""
import grp, json, os, pwd, re, stat, subprocess, sys
request = json.load(sys.stdin)
needles = [n.encode() for n in request["needles"]]
markers = [b"PRIVATE KEY-----", b"PuTTY-User-Key-File-"]
found = []
for top in request["searched"]:
    for root, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if os.path.join(root, d) not in request["skipped"]]
        for name in files:
            path = os.path.join(root, name)
            try:
                st = os.lstat(path)
                if not stat.S_ISREG(st.st_mode) or st.st_size > 4 * 1024 * 1024:
                    continue
                with open(path, "rb") as handle:
                    data = handle.read()
            except OSError:
                continue
            hits = [i for i, n in enumerate(needles) if n in data]
            key = any(m in data for m in markers)
            # cntlm's PassNTLMv2/PassNT (client_proxy's NTLM hop): hashes as good as the password to the proxy.
            hashes = [h.decode() for h in re.findall(rb"^Pass(?:NTLMv2|NT|LM)[ \t]+([0-9A-Fa-f]{32})[ \t]*$", data, re.M)]
            if hits or key or hashes:
                try:
                    user = pwd.getpwuid(st.st_uid).pw_name
                except KeyError:
                    user = str(st.st_uid)
                try:
                    dir_group = grp.getgrgid(os.stat(root).st_gid).gr_name
                except KeyError:
                    dir_group = str(os.stat(root).st_gid)
                public = ""
                if key and os.path.isfile(path + ".pub"):
                    with open(path + ".pub", encoding="utf-8", errors="replace") as handle:
                        public = handle.read()
                found.append({"path": path, "mode": st.st_mode, "user": user, "dir_group": dir_group, "needles": hits,
                              "hashes": hashes, "text": data.decode("utf-8", "replace") if key else "",
                              "public": public})
homes = {e.pw_name: e.pw_dir for e in pwd.getpwall() if e.pw_dir == "/root" or e.pw_dir.startswith("/home/")}
units = subprocess.run(["systemctl", "list-units", "--all", "--plain", "--no-legend", "--no-pager", "netreach-tunnel@*"],
                       stdout=subprocess.PIPE, universal_newlines=True).stdout.split()
tunnel_users = {}
for unit in units:
    if unit.startswith("netreach-tunnel@") and unit.endswith(".service"):
        user = subprocess.run(["systemctl", "show", "-p", "User", "--value", unit], stdout=subprocess.PIPE,
                              universal_newlines=True).stdout.strip()
        tunnel_users[unit[len("netreach-tunnel@"):-len(".service")]] = user or "root"
print(json.dumps({"found": found, "homes": homes, "tunnel_users": tunnel_users}))
"""


def running_containers() -> list[str]:
    """The scenario's lab hosts (from Molecule's inventory): every container of it that runs."""
    with open(os.environ["MOLECULE_INVENTORY_FILE"], encoding="utf-8") as handle:
        hosts = sorted((yaml.safe_load(handle) or {}).get("all", {}).get("hosts", {}))
    return [name for name in hosts if name != "localhost"]


def docker_exec(container: str, argv: list[str], stdin: str = "") -> str:
    done = subprocess.run(["docker", "exec", "-i", container, *argv], input=stdin, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, f"{container}: {argv[0]} failed: {done.stderr[-2000:]}"
    return done.stdout


@functools.cache
def declared() -> dict:
    """The scenario's audit.yml: secrets its playbooks or tests use outside the inventory, and lab files (not the
    collection's) that hold one with the reason they are not 0600."""
    path = os.path.join(os.environ["MOLECULE_SCENARIO_DIRECTORY"], "audit.yml")
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


@functools.cache
def passwords() -> frozenset[str]:
    """Every password-like value of the scenario: its inventory (molecule.yml and what Molecule wrote) and its audit.yml."""
    values: set[str] = set()
    with open(os.environ["MOLECULE_FILE"], encoding="utf-8") as handle:
        values |= audit.secret_values((yaml.safe_load(handle) or {}).get("provisioner", {}).get("inventory", {}))
    for root, dummy, files in os.walk(os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])):
        for name in files:
            with open(os.path.join(root, name), encoding="utf-8") as handle:
                try:
                    values |= audit.secret_values(yaml.safe_load(handle))
                except yaml.YAMLError:
                    continue
    values |= set(declared().get("secrets", []))
    short = [value for value in values if len(value) < audit.MIN_SECRET_LENGTH]
    assert not short, f"{len(short)} lab secret(s) shorter than {audit.MIN_SECRET_LENGTH} characters: finding one would prove nothing"
    return frozenset(values)


@functools.cache
def host_findings() -> dict:
    """Per container: the files holding a password or a private key, homes and tunnel users."""
    needles = sorted({spelling for secret in passwords() for spelling in audit.spellings(secret)})
    request = json.dumps({"needles": needles, "searched": SEARCHED, "skipped": SKIPPED})
    return {name: json.loads(docker_exec(name, ["python3", "-c", FINDER], request)) for name in running_containers()}


@functools.cache
def needles() -> dict[str, str]:
    """Every string that must not show up, mapped to what it is: each password spelling and each private key line."""
    found = {}
    for number, secret in enumerate(sorted(passwords()), 1):
        for spelling in audit.spellings(secret):
            found[spelling] = f"password #{number}"
    for container, findings in host_findings().items():
        for item in findings["found"]:
            for line in audit.key_material(item["text"], item["public"]):
                found[line] = f"private key {container}:{item['path']}"
            for digest in item.get("hashes", []):
                found[digest] = f"NTLM hash {container}:{item['path']}"
    return found


def captured_log() -> str:
    path = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "ansible.log")
    assert os.path.exists(path), f"no captured ansible output at {path}: run the scenario through its converge first"
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.read()


def test_the_captured_output_holds_the_verbose_converge():
    """The audit below means something only if the log really holds the converge at -vvv with --diff."""
    text = captured_log()
    runs = len(re.findall(r"PLAYBOOK: converge\.yml", text))
    print(f"\nsecrets audit: captured ansible output {len(text) / 1e6:.1f} MB, converge runs in it: {runs}")
    assert runs >= 1, "the captured output holds no converge run"
    # -vvv: the connection plugin reports every command it runs on a host.
    assert re.search(r"<[^>]+> ESTABLISH DOCKER CONNECTION", text), "the captured output is not at -vvv"


def test_no_secret_in_the_captured_ansible_output():
    leaks = audit.find_leaks(captured_log(), needles(), "the captured ansible output")
    keys = sum(1 for what in needles().values() if what.startswith("private key"))
    print(f"\nsecrets audit: {len(passwords())} password(s), {keys} private key line(s) from "
          f"{len({w for w in needles().values() if w.startswith('private key')})} key file(s) checked")
    assert not leaks, "\n".join(leaks)


@pytest.mark.parametrize("container", running_containers())
def test_no_secret_in_the_journal_or_the_process_list(container):
    journal = docker_exec(container, ["journalctl", "--no-pager", "-a", "-o", "verbose"])
    processes = docker_exec(container, ["ps", "-eww", "-o", "user=,pid=,args="])
    leaks = audit.find_leaks(journal, needles(), f"the journal of {container}")
    leaks += audit.find_leaks(processes, needles(), f"the process list of {container}")
    assert not leaks, "\n".join(leaks)


@pytest.mark.parametrize("container", running_containers())
def test_every_file_holding_a_secret_is_0600_and_owned_by_its_user(container):
    findings = host_findings()[container]
    lab_files = (declared().get("lab_files") or {}).get(container, {})
    files = [{**item, "what": "a private key" if item["text"] else "an NTLM hash" if item.get("hashes") else "a password"}
             for item in findings["found"] if item["needles"] or item.get("hashes") or audit.is_private_key(item["text"])]
    print(f"\nsecrets audit: {container}: {len(files)} file(s) holding a secret: "
          + ", ".join(sorted(item["path"] for item in files)))
    problems = audit.file_problems(files, findings["homes"], findings["tunnel_users"], lab_files)
    assert not problems, "\n".join(problems)
