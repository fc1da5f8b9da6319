"""Every row of the bad-input catalogue, through ansible, against real hosts: each fails naming its field and
leaves the host byte for byte as it was.

The rows come from tests/unit/catalogue/cases.py, the table the unit tests feed to the parsers: one source. All
rows run in one generated ansible-playbook run (a task per row, pipelined: one docker exec each), shared by a few
workers (inventory aliases of the two hosts) that run side by side. After every BATCH rows of a worker a `raw` task
takes the digest of its host's snapshot (/etc, unit lists, nft ruleset): a row that changed anything moves the
digests from then on, and the full snapshots before and after the run show what changed.
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
from catalogue import traps  # noqa: E402

CLIENT, SERVER = "client", "server"
# Rows of one worker between two digests of its host's snapshot (a digest costs about as much as a row).
BATCH = 20
# Workers per host: aliases of the host in a generated inventory, each running its share of the rows in parallel.
WORKERS = {CLIENT: 6, SERVER: 3}
# Where each module's rows run: the tunnel server's pieces on the server, the client's on the client.
HOSTS = {"ssh_tunnel": CLIENT, "ssh_tunnels": CLIENT, "tunnel_key": CLIENT, "nat_rules": CLIENT, "client_proxy": CLIENT, "client_session": CLIENT,
         "tunnel_server": SERVER, "tunnel_server role": SERVER}


def module_args(module: str, params: dict) -> dict:
    """A catalogue row as the module's arguments."""
    if module == "client_session":
        params = dict(params)
        params["format"] = params.pop("_format")
        return params
    if module == "tunnel_server" and "accounts" not in params:
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
                 "vars": {"tunnel_server_clients_group": "badinput_fleet",
                          **({"tunnel_server_accounts": params["accounts"]} if "accounts" in params else {})}}],
             "rescue": [{"name": f"case {index}: failed", "ansible.builtin.debug": {"msg": "{{ ansible_failed_result.msg }}"}}]},
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


def first_failure(task_results: list[tuple[str, dict]], host: str) -> dict | None:
    """The failed result of a row's task, or for the role's rows what their rescue reported of the failed task."""
    for name, result in task_results:
        if result.get(host, {}).get("failed") or (name.endswith(": failed") and host in result):
            return result[host]
    return None


def worker_rows() -> dict[tuple[str, int], list[int]]:
    """The rows each worker runs: a host's rows dealt round-robin over its WORKERS aliases, the role's rows (which
    change the inventory) all on the first worker of the server, which runs no other rows."""
    rows: dict[tuple[str, int], list[int]] = {(short, n): [] for short in WORKERS for n in range(WORKERS[short])}
    dealt = collections.Counter()
    for index, (module, params, field) in enumerate(CASES):
        short = HOSTS[module]
        if module == "tunnel_server role":
            worker = 0
        elif short == SERVER:
            worker = 1 + dealt[short] % (WORKERS[short] - 1)
        else:
            worker = dealt[short] % WORKERS[short]
        dealt[short] += 1
        rows[(short, worker)].append(index)
    return rows


def worker_name(short: str, number: int) -> str:
    # The role's rows run where the server is called "bastion", the server their declarations name.
    return "bastion" if (short, number) == (SERVER, 0) else f"{labtest.container(short)}-w{number}"


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Run every row once; per row: (its failed result, the digest after its batch); the snapshots around the run."""
    for module, params, field in CASES:
        assert not TEMPLATE_MARKS.search(json.dumps(params)), f"{module} row for {field} would be templated by ansible"
    directory = tmp_path_factory.mktemp("badinput")
    workers, worker_of = {}, {}
    for (short, number), rows in worker_rows().items():
        name = worker_name(short, number)
        workers[name] = {"ansible_connection": "community.docker.docker", "ansible_host": labtest.container(short)}
        tasks = []
        for start in range(0, len(rows), BATCH):
            batch = rows[start:start + BATCH]
            tasks += [task for index in batch for task in case_tasks(index, CASES[index][0], CASES[index][1])]
            tasks.append(digest_task(batch))
        worker_of.update({index: name for index in rows})
        (directory / f"{name}.yml").write_text(json.dumps(tasks, indent=1))
    (directory / "workers.yml").write_text(json.dumps({"badinput_workers": {"hosts": workers}}))
    include = {"name": "Run this worker's rows",
               "ansible.builtin.include_tasks": str(directory) + "/{{ inventory_hostname }}.yml"}
    # Each worker (an alias of a lab host) works through its own rows; the free strategy lets them run side by side.
    # The role's rows follow in a play of their own: add_host needs the linear strategy.
    plays = [{"name": "Bad input to the modules", "hosts": "badinput_workers:!bastion", "gather_facts": False,
              "strategy": "free", "tasks": [include]},
             {"name": "Bad input to the tunnel_server role", "hosts": "bastion", "gather_facts": False,
              "tasks": [include]}]
    playbook = directory / "catalogue.yml"
    playbook.write_text(json.dumps(plays, indent=1))
    hosts = {short: labtest.host(short) for short in WORKERS}
    before = {short: labtest.snapshot(host) for short, host in hosts.items()}
    digests = {short: labtest.snapshot_digest(host) for short, host in hosts.items()}
    start = time.monotonic()
    # Pipelining: one docker exec per module run instead of five (temp dir, copy, chmod, run, clean up).
    os.environ["ANSIBLE_PIPELINING"] = "1"
    try:
        document = labtest.playbook_results(str(playbook), "-i", str(directory / "workers.yml"), "--forks",
                                            str(len(workers)), timeout=2700)
    finally:
        del os.environ["ANSIBLE_PIPELINING"]
    elapsed = time.monotonic() - start
    after = {short: labtest.snapshot(host) for short, host in hosts.items()}
    tasks: dict[str, list[dict]] = collections.defaultdict(list)
    for play_result in document["plays"]:
        for task in play_result["tasks"]:
            match = re.match(r"case (\d+)", task["task"]["name"])
            if match:
                tasks[match.group(1)].append((task["task"]["name"], task["hosts"]))
            match = re.match(r"digest after cases ([\d,]+)$", task["task"]["name"])
            if match:
                for index in match.group(1).split(","):
                    tasks["digest " + index].append((task["task"]["name"], task["hosts"]))
    results = {}
    for index in range(len(CASES)):
        worker = worker_of[index]
        digest_runs = tasks.get(f"digest {index}", [])
        digest = digest_runs[0][1].get(worker, {}).get("stdout", "").strip() if digest_runs else None
        results[index] = (first_failure(tasks.get(str(index), []), worker), digest)
    counts = collections.Counter(module for module, params, field in CASES)
    print("\nbad-input catalogue on the hosts: " + ", ".join(f"{m} {n}" for m, n in sorted(counts.items()))
          + f"; {len(CASES)} cases in {elapsed:.0f} s by {len(workers)} workers, digests included")
    return {"results": results, "digests": digests, "before": before, "after": after}


def test_the_hosts_are_unchanged_after_the_whole_catalogue(outcomes):
    for short in WORKERS:
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
    baseline = outcomes["digests"][HOSTS[module]]
    changed = sorted(set((digest or "").split()) - set(baseline.split()))
    assert digest == baseline, (f"{labtest.container(HOSTS[module])} had changed by the digest after case {index} "
                                f"({module}, {field}): {' '.join(changed) or 'no digest'} (before: {baseline})")


@pytest.fixture(scope="module")
def trapped(tmp_path_factory):
    """Plant the links of the traps on their host, run every trap row there once; the rows' results and the
    host's snapshots before and after."""
    host = labtest.host("traps")
    for command in traps.SETUP:
        planted = host.run(command)
        assert planted.rc == 0, f"planting a trap failed: {command}: {planted.stderr}"
    tasks = [{"name": f"trap {index}", f"netreach.tunnels.{module}": args, "ignore_errors": True}
             for index, (module, args, field) in enumerate(traps.ROWS)]
    playbook = tmp_path_factory.mktemp("traps") / "traps.yml"
    playbook.write_text(json.dumps([{"name": "Symbolic-link traps", "hosts": labtest.container("traps"),
                                     "gather_facts": False, "tasks": tasks}], indent=1))
    before = labtest.snapshot(host)
    document = labtest.playbook_results(str(playbook), timeout=600)
    after = labtest.snapshot(host)
    results = {}
    for task in document["plays"][0]["tasks"]:
        match = re.match(r"trap (\d+)$", task["task"]["name"])
        if match:
            results[int(match.group(1))] = task["hosts"][labtest.container("traps")]
    return {"results": results, "before": before, "after": after}


@pytest.mark.parametrize(("index", "module", "field"), [(i, r[0], r[2]) for i, r in enumerate(traps.ROWS)],
                         ids=[f"{i}-{r[0]}-{r[1].get('state', 'default')}" for i, r in enumerate(traps.ROWS)])
def test_a_planted_link_is_refused_naming_the_field(trapped, index, module, field):
    result = trapped["results"][index]
    message = str(result.get("msg", ""))
    assert result.get("failed"), f"trap {index} ({module} {traps.ROWS[index][1]}) did not fail: {result}"
    assert names_field(field, message) and "symbolic link" in message, f"trap {index}: {message}"


def test_the_traps_host_and_what_its_links_point_at_are_unchanged(trapped):
    changes = labtest.snapshot_changes(trapped["before"], trapped["after"])
    assert not changes, "the traps host changed:\n" + "\n".join(changes[:50])
    assert any(path.startswith("/srv/data/") for path in trapped["before"]["etc"]), "the snapshot misses /srv"
