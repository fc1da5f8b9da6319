"""Every row of the bad-input catalogue, through ansible, against real hosts: each fails naming its field and
leaves the host byte for byte as it was.

The rows come from tests/unit/catalogue/cases.py, the table the unit tests feed to the parsers: one source. All
rows run in one generated ansible-playbook run (a task per row, pipelined: one docker exec each), so every row is
checked without 300 separate ansible runs. After every BATCH rows a `raw` task takes the digest of the host's
snapshot (/etc, unit lists, nft ruleset): a row that changed anything moves its batch's digest, and the full
snapshots before and after the run show what changed.
"""
from __future__ import annotations

import collections
import json
import os
import re
import sys
import time

import labtest
import pytest

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "tests", "unit"))
from catalogue.cases import CASES, ENTRY  # noqa: E402  (the catalogue lives with the unit tests)

CLIENT, SERVER = "client", "server"
# Rows between two digests of a host's snapshot (a digest costs about as much as a row).
BATCH = 10
# Where each module's rows run: the tunnel server's pieces on the server, the client's on the client.
HOSTS = {"ssh_tunnel": CLIENT, "nat_rules": CLIENT, "client_proxy": CLIENT, "client_session": CLIENT,
         "tunnel_server": SERVER, "tunnel_server role": SERVER}


def module_args(module: str, params: dict) -> dict:
    """A catalogue row as the module's arguments."""
    if module == "client_session":
        params = dict(params)
        params["format"] = params.pop("_format")
        return params
    if module == "tunnel_server":
        return {"entries": [params], "accounts": ["tunnel"]}
    return params


def case_tasks(index: int, module: str, params: dict) -> list[dict]:
    """The tasks of one row."""
    if module == "tunnel_server role":
        # The role reads clients' declarations from inventory: a client "laptop" holding the row's declarations.
        bad = [
            {"name": f"case {index}: declare the client", "ansible.builtin.add_host": {
                "name": "laptop", "groups": "badinput_fleet", "tunnel_client_tunnels": params["tunnels"],
                "tunnel_client_public_keys": {"news": ENTRY["public_key"], "socks": ENTRY["public_key"]}}},
            {"name": f"case {index}", "block": [
                {"ansible.builtin.import_role": {"name": "netreach.tunnels.tunnel_server"},
                 "vars": {"tunnel_server_clients_group": "badinput_fleet"}}],
             "rescue": [{"name": f"case {index}: failed", "ansible.builtin.meta": "noop"}]},
        ]
    else:
        bad = [{"name": f"case {index}", f"netreach.tunnels.{module}": module_args(module, params),
                "ignore_errors": True}]
    return bad


def digest_task(indexes: list[int]) -> dict:
    """What the host looks like after the rows INDEXES."""
    return {"name": "digest after cases " + ",".join(map(str, indexes)), "ansible.builtin.raw": DIGEST_COMMAND,
            "changed_when": False}


def shell_quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\"'\"'") + "'"


DIGEST_COMMAND = " ".join(shell_quote(arg) for arg in labtest.snapshot_command("--digest"))
TEMPLATE_MARKS = re.compile(r"{{|{%|{#")


def names_field(field: str, message: str) -> bool:
    """Whether MESSAGE names FIELD: our parsers spell the whole path (local_forwards[0].host_port); Ansible's own
    argument checks name the option and its parents without list indexes ("... found in proxy")."""
    if field in message:
        return True
    parts = re.sub(r"\[\d+\]", "", field).split(".")
    return all(re.search(rf"(?<![\w-]){re.escape(part)}(?![\w-])", message) for part in parts)


def first_failure(task_results: list[dict], host: str) -> dict | None:
    for result in task_results:
        if result.get(host, {}).get("failed"):
            return result[host]
    return None


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Run every row once; per row: (failed, message, digest after it) and the hosts' snapshots around the run."""
    for module, params, field in CASES:
        assert not TEMPLATE_MARKS.search(json.dumps(params)), f"{module} row for {field} would be templated by ansible"
    hosts = {short: labtest.host(short) for short in (CLIENT, SERVER)}
    plays = []
    for short in (CLIENT, SERVER):
        rows = [index for index, (module, params, field) in enumerate(CASES) if HOSTS[module] == short]
        tasks = []
        for start in range(0, len(rows), BATCH):
            batch = rows[start:start + BATCH]
            tasks += [task for index in batch for task in case_tasks(index, CASES[index][0], CASES[index][1])]
            tasks.append(digest_task(batch))
        plays.append({"name": f"bad input on {labtest.container(short)}", "hosts": labtest.container(short),
                      "gather_facts": False, "tasks": tasks})
    playbook = tmp_path_factory.mktemp("badinput") / "catalogue.yml"
    playbook.write_text(json.dumps(plays, indent=1))
    before = {short: labtest.snapshot(host) for short, host in hosts.items()}
    digests = {short: labtest.snapshot_digest(host) for short, host in hosts.items()}
    start = time.monotonic()
    # Pipelining: one docker exec per module run instead of five (temp dir, copy, chmod, run, clean up).
    os.environ["ANSIBLE_PIPELINING"] = "1"
    try:
        document = labtest.playbook_results(str(playbook), timeout=900)
    finally:
        del os.environ["ANSIBLE_PIPELINING"]
    elapsed = time.monotonic() - start
    after = {short: labtest.snapshot(host) for short, host in hosts.items()}
    tasks: dict[str, list[dict]] = collections.defaultdict(list)
    for play in document["plays"]:
        for task in play["tasks"]:
            match = re.match(r"case (\d+)", task["task"]["name"])
            if match:
                tasks[match.group(1)].append(task["hosts"])
            match = re.match(r"digest after cases ([\d,]+)$", task["task"]["name"])
            if match:
                for index in match.group(1).split(","):
                    tasks["digest " + index].append(task["hosts"])
    results = {}
    for index, (module, params, field) in enumerate(CASES):
        host = labtest.container(HOSTS[module])
        failure = first_failure(tasks.get(str(index), []), host)
        digest_runs = tasks.get(f"digest {index}", [])
        digest = digest_runs[0][host].get("stdout", "").strip() if digest_runs else None
        results[index] = (failure, digest)
    counts = collections.Counter(module for module, params, field in CASES)
    print(f"\nbad-input catalogue on the hosts: " + ", ".join(f"{m} {n}" for m, n in sorted(counts.items()))
          + f"; {len(CASES)} cases in {elapsed:.0f} s ({elapsed / len(CASES):.2f} s per case, digests included)")
    return {"results": results, "digests": digests, "before": before, "after": after}


def test_the_hosts_are_unchanged_after_the_whole_catalogue(outcomes):
    for short in (CLIENT, SERVER):
        changes = labtest.snapshot_changes(outcomes["before"][short], outcomes["after"][short])
        assert not changes, f"{labtest.container(short)} changed:\n" + "\n".join(changes[:50])
        assert len(outcomes["before"][short]["etc"]) > 300, "the snapshot saw too little of /etc to mean anything"


@pytest.mark.parametrize(("index", "module", "field"), [(i, c[0], c[2]) for i, c in enumerate(CASES)],
                         ids=[f"{i}-{c[0].replace(' ', '_')}-{c[2]}" for i, c in enumerate(CASES)])
def test_bad_input_fails_naming_the_field_and_changes_nothing(outcomes, index, module, field):
    failure, digest = outcomes["results"][index]
    assert failure is not None, f"case {index} ({module}, {field}) did not fail on the host: {CASES[index][1]!r}"
    message = str(failure.get("msg", ""))
    assert names_field(field, message), f"case {index}: the error does not name {field!r}: {message}"
    assert digest == outcomes["digests"][HOSTS[module]], \
        f"case {index} ({module}, {field}) or another of its batch changed {labtest.container(HOSTS[module])}"
