"""Scale-out: the collection's site playbook (converge.yml: site.yml, gateways included) rerun on the converged
fleet with every setting a large fleet uses. Molecule's idempotence step has rerun them with the linear strategy;
here, every run with 20 forks and pipelining: strategy free in serial batches (changes nothing); a changed
declaration (a third tunnel on every client) rolled out the same way; then --limit to two clients and the
servers under strategy free (changes nothing: the fleet converged on the changed declaration, and the other
clients keep their server entries). After every run, real traffic through every client's tunnels (-L banner
read, page fetched through SOCKS, and the third tunnel once declared), and through the gateway.

fleet-c1 declares 20 tunnels (the two of every client and 18 bulk ones), the others 2: every rerun reaches c1 in
as many tasks as c2 (at most three in the tunnel plays), and one run that drops 10 of c1's tunnels leaves exactly
10, with the server entries of the dropped ones gone.

The tunnel play (the third of tunnels.yml) runs only on the clients with something to do (issue 17): a rerun where
nothing changed reaches every client in two tasks (the keys step, client_proxy) and the tunnel play in none; a
change to one client's declaration runs it on that client alone; a server's new host key runs it on the clients
whose tunnels log in to that server, which carry traffic again after it.

The tests run in file order; the fleet ends on the changed declaration."""
from __future__ import annotations

import json
import pathlib

import labtest
import pytest

CLIENTS = ["c1", "c2", "c3", "c4"]
SERVERS = ["bastion", "target"]
NEWS = "200 netreach fleet news"
PAGE = "netreach fleet target page"
PLAYBOOK = str(pathlib.Path(__file__).resolve().parents[1] / "converge.yml")
FORKS = "20"
# The changed declaration: every client gets a third tunnel, -L12380 to the target's web page through the bastion.
WEB_TUNNEL = {"name": "web", "server": "fleet-bastion", "local_forwards": ["12380:fleet-target:80"]}
# fleet-c1's bulk tunnels (molecule.yml): bulkNN listens on 127.0.0.1:13000+NN; the removal keeps the first 8.
BULK = [f"bulk{index:02}" for index in range(1, 19)]
BULK_KEPT = 8
TUNNEL_PLAY = "Run the tunnels on every client"
TUNNEL_PLAYS = ("Create the tunnel keys on every tunnel client", TUNNEL_PLAY)
# A client's rerun where nothing changed: the keys step (ssh_tunnels keys_first) and client_proxy.
SETTLED_CLIENT_TASKS = ["Create the key pair of every tunnel of this host and plan the rest of its declaration",
                        "Write the proxy declaration to every layer of the client"]
SERVER_PLAY = "Configure the tunnel servers for exactly the declared tunnels"
# Task actions that run on the controller only: they never reach the host.
CONTROLLER_ACTIONS = {f"{prefix}{action}" for prefix in ("", "ansible.builtin.") for action in (
    "set_fact", "assert", "include_tasks", "import_tasks", "include_role", "validate_argument_spec", "debug", "meta")}

lab_host = labtest.host


def everyone() -> set[str]:
    return {labtest.container(short) for short in CLIENTS + SERVERS}


def run(monkeypatch, *options: str, strategy: str = "linear", pipelining: bool = False, document: bool = False):
    """converge.yml once more with these settings; fails on any failed or unreachable host."""
    monkeypatch.setenv("ANSIBLE_STRATEGY", strategy)
    monkeypatch.setenv("ANSIBLE_PIPELINING", "1" if pipelining else "0")
    result = labtest.playbook_results(PLAYBOOK, "--forks", FORKS, *options, timeout=900)
    stats = result["stats"]
    print(f"\nstrategy={strategy} pipelining={pipelining} forks={FORKS} {' '.join(options)}")
    for host, counts in sorted(stats.items()):
        print(f"  {host}: ok={counts['ok']} changed={counts['changed']} failed={counts['failures']} "
              f"unreachable={counts['unreachable']}")
    bad = {host: counts for host, counts in stats.items() if counts["failures"] or counts["unreachable"]}
    assert not bad, f"failed or unreachable hosts: {bad}"
    return result if document else stats


def reaching_tasks(document: dict, host: str, plays: tuple[str, ...] | None) -> tuple[list[str], int]:
    """The tasks of PLAYS (None: every play) whose result on HOST reached the host (not skipped, not a
    controller-only action), and how many module runs they made there (each loop item not skipped is one)."""
    names, runs = [], 0
    for play in document["plays"]:
        if plays is not None and play["play"]["name"] not in plays:
            continue
        for task in play["tasks"]:
            result = task["hosts"].get(host)
            if not result or result.get("skipped") or result.get("action") in CONTROLLER_ACTIONS:
                continue
            names.append(task["task"]["name"])
            items = result.get("results")
            runs += sum(1 for item in items if not item.get("skipped")) if isinstance(items, list) else 1
    return names, runs


def tunnel_play_hosts(document: dict) -> set[str]:
    """The hosts the tunnel play (every batch of it) ran on: a host outside the play has no result there."""
    return {host for play in document["plays"] if play["play"]["name"] == TUNNEL_PLAY
            for task in play["tasks"] for host in task["hosts"]}


def assert_tasks_do_not_grow_with_tunnels(document: dict, compare: tuple[str, str] = ("c1", "c2")) -> None:
    """The first of COMPARE (fleet-c1: 20 tunnels or what is left of them) reaches its host in as many tasks and
    module runs as the second (2 or 3 tunnels) when the tunnel play ran on both or on neither, at most three in
    the tunnel plays; printed with the servers' counts."""
    counts = {short: reaching_tasks(document, labtest.container(short), TUNNEL_PLAYS) for short in CLIENTS}
    for short in SERVERS:
        counts[short] = reaching_tasks(document, labtest.container(short), (SERVER_PLAY,))
    for short, (names, runs) in counts.items():
        print(f"  {short}: {len(names)} tasks reached the host ({runs} module runs): {names}")
    ran = tunnel_play_hosts(document)
    first, second = compare
    assert (labtest.container(first) in ran) == (labtest.container(second) in ran), (compare, sorted(ran))
    assert counts[first] == counts[second], counts
    assert all(len(counts[short][0]) <= 3 for short in CLIENTS), counts


def assert_settled_clients_reached_twice(document: dict, clients: list[str]) -> None:
    """Each of CLIENTS was reached by the keys step and client_proxy only, over the whole run."""
    for short in clients:
        names, runs = reaching_tasks(document, labtest.container(short), None)
        names = [name.split(" : ", 1)[-1] for name in names]  # without the role's prefix
        assert names == SETTLED_CLIENT_TASKS and runs == 2, (short, names, runs)


def bulk_ports(names) -> list[int]:
    return [13000 + int(name[4:]) for name in names]


def assert_bulk_traffic(kept: list[str]) -> None:
    """Each of fleet-c1's bulk tunnels in KEPT serves the target's page; the dropped ones listen no more."""
    client = lab_host("c1")
    for name, port in zip(kept, bulk_ports(kept)):
        fetched = labtest.wait_until(lambda port=port: PAGE in client.run(
            f"curl -s -m 5 --noproxy '*' http://127.0.0.1:{port}/").stdout, 45)
        assert fetched is not None, f"c1: no page through {name} (127.0.0.1:{port})\n" \
                                    f"{labtest.journal(client, f'netreach-tunnel@{name}')}"
    for port in bulk_ports(sorted(set(BULK) - set(kept))):
        assert not client.socket(f"tcp://127.0.0.1:{port}").is_listening, f"c1 still listens on {port}"


def c1_units() -> set[str]:
    listed = lab_host("c1").check_output("ls /etc/systemd/system")
    return {name[len("netreach-tunnel@"):-len(".service")] for name in listed.split()
            if name.startswith("netreach-tunnel@") and name.endswith(".service")}


def assert_nothing_changed(stats: dict, hosts: set[str]) -> None:
    assert set(stats) == hosts, f"the run covered {sorted(stats)}, expected {sorted(hosts)}"
    changed = {host: counts["changed"] for host, counts in stats.items() if counts["changed"]}
    assert not changed, f"a rerun on the converged fleet changed: {changed}"


def carries_traffic(short: str) -> bool:
    client = lab_host(short)
    banner = client.run("nc -w 3 127.0.0.1 12345 </dev/null").stdout
    page = client.run(f"curl -s -m 5 --socks5-hostname 127.0.0.1:3128 http://{labtest.container('target')}/").stdout
    return NEWS in banner and PAGE in page


def assert_traffic(clients: list[str] = CLIENTS) -> None:
    for short in clients:
        if labtest.wait_until(lambda short=short: carries_traffic(short), 45) is None:
            host = lab_host(short)
            pytest.fail(f"{short}: no banner through -L12345 or no page through SOCKS 3128\n"
                        f"{labtest.journal(host, 'netreach-tunnel@news')}\n{labtest.journal(host, 'netreach-tunnel@socks')}")


def server_labels(short: str) -> list[str]:
    """The netreach labels (client/tunnel) of the tunnel account's authorized_keys on a server."""
    keys = lab_host(short).check_output("cat $(getent passwd tunnel | cut -d: -f6)/.ssh/authorized_keys")
    return sorted(line.split()[-1].split(":", 1)[1] for line in keys.splitlines() if line.strip())


def client_labels(short: str) -> set[str]:
    return {label for server in SERVERS for label in server_labels(server)
            if label.startswith(labtest.container(short) + "/")}


def labels(short: str, names) -> set[str]:
    return {f"{labtest.container(short)}/{name}" for name in names}


def test_every_client_carries_traffic_after_the_converge():
    assert_traffic()
    assert_bulk_traffic(BULK)
    assert c1_units() == {"news", "socks", *BULK}
    assert client_labels("c1") == labels("c1", ["news", "socks", *BULK])
    for short in CLIENTS[1:]:
        assert client_labels(short) == labels(short, ["news", "socks"])


def test_the_gateway_forwards_the_clients_to_the_inside_segment_under_its_own_address():
    target_ip = labtest.container_ip(labtest.container("target"), "inside")
    bastion_ip = labtest.container_ip(labtest.container("bastion"), "inside")
    for short in CLIENTS:
        page = lab_host(short).run(f"curl -s -m 5 --noproxy '*' http://{target_ip}/").stdout
        assert PAGE in page, f"{short} did not reach the target through the gateway"
    log = labtest.journal(lab_host("target"), "netreach-lab-web", lines=200)
    assert f"{bastion_ip} - -" in log, "the target did not see the gateway's address: the bastion did not masquerade"


def test_rerun_under_strategy_free_in_serial_batches_with_20_forks_and_pipelining_changes_nothing(monkeypatch):
    result = run(monkeypatch, "-e", "netreach_serial=2", strategy="free", pipelining=True, document=True)
    assert_nothing_changed(result["stats"], everyone())
    batches = [play["play"]["name"] for play in result["plays"]]
    assert batches.count("Create the tunnel keys on every tunnel client") == len(CLIENTS) // 2, batches
    assert batches.count(SERVER_PLAY) == 1, batches
    assert tunnel_play_hosts(result) == set(), "the tunnel play ran on settled clients"
    assert_tasks_do_not_grow_with_tunnels(result)
    assert_settled_clients_reached_twice(result, CLIENTS)
    assert_traffic()
    assert_bulk_traffic(BULK)


def test_dropping_10_of_the_20_tunnels_in_one_run_leaves_exactly_10_with_their_server_entries_gone(monkeypatch):
    kept = BULK[:BULK_KEPT]
    result = run(monkeypatch, "-e", f"fleet_bulk_keep={BULK_KEPT}", pipelining=True, document=True)
    changed = {host for host, counts in result["stats"].items() if counts["changed"]}
    assert changed == {labtest.container("c1"), labtest.container("bastion")}, result["stats"]
    assert tunnel_play_hosts(result) == {labtest.container("c1")}
    assert_tasks_do_not_grow_with_tunnels(result, compare=("c2", "c3"))
    assert c1_units() == {"news", "socks", *kept}
    assert client_labels("c1") == labels("c1", ["news", "socks", *kept])
    assert_bulk_traffic(kept)
    assert_traffic()


@pytest.fixture(scope="module")
def changed_vars(tmp_path_factory) -> str:
    """Extra vars that give every client the third tunnel (fleet-c1 keeping its 8 bulk ones)."""
    path = tmp_path_factory.mktemp("fleet") / "changed.json"
    path.write_text(json.dumps({"fleet_extra_tunnels": [WEB_TUNNEL], "fleet_bulk_keep": BULK_KEPT}))
    return f"@{path}"


def test_a_changed_declaration_rolls_out_under_strategy_free_in_serial_batches(monkeypatch, changed_vars):
    result = run(monkeypatch, "-e", "netreach_serial=2", "-e", changed_vars, strategy="free", pipelining=True,
                 document=True)
    stats = result["stats"]
    assert {host for host, counts in stats.items() if counts["changed"]} == \
        {labtest.container(short) for short in CLIENTS + ["bastion"]}, stats
    assert tunnel_play_hosts(result) == {labtest.container(short) for short in CLIENTS}
    assert_tasks_do_not_grow_with_tunnels(result)
    for short in CLIENTS:
        client = lab_host(short)
        fetched = labtest.wait_until(lambda client=client: PAGE in client.run(
            "curl -s -m 5 --noproxy '*' http://127.0.0.1:12380/").stdout, 45)
        assert fetched is not None, f"{short}: no page through the new -L12380\n" \
                                    f"{labtest.journal(client, 'netreach-tunnel@web')}"
        bulk = BULK[:BULK_KEPT] if short == "c1" else []
        assert client_labels(short) == labels(short, ["news", "socks", "web", *bulk])
    assert_traffic()
    assert_bulk_traffic(BULK[:BULK_KEPT])


def test_rerun_limited_to_two_clients_changes_nothing_and_keeps_the_others_working(monkeypatch, changed_vars):
    before = {server: server_labels(server) for server in SERVERS}
    limited = [labtest.container(short) for short in ["c1", "c2", *SERVERS]]
    result = run(monkeypatch, "--limit", ",".join(limited), "-e", changed_vars, strategy="free", pipelining=True,
                 document=True)
    assert_nothing_changed(result["stats"], set(limited))
    assert tunnel_play_hosts(result) == set()
    assert_tasks_do_not_grow_with_tunnels(result)
    after = {server: server_labels(server) for server in SERVERS}
    assert after == before, "the servers dropped or changed entries of clients outside the limit"
    for short in ["c3", "c4"]:
        assert client_labels(short) == {f"{labtest.container(short)}/{name}" for name in ("news", "socks", "web")}
    assert_traffic(["c3", "c4", "c1", "c2"])


# A tunnel fleet-c3 alone adds: -L12381 to the target's web page through the bastion.
C3_TUNNEL = {"name": "web2", "server": "fleet-bastion", "local_forwards": ["12381:fleet-target:80"]}


@pytest.fixture(scope="module")
def c3_vars(tmp_path_factory) -> str:
    """The changed declaration, and fleet-c3's own extra tunnel."""
    path = tmp_path_factory.mktemp("fleet") / "c3.json"
    path.write_text(json.dumps({"fleet_extra_tunnels": [WEB_TUNNEL], "fleet_bulk_keep": BULK_KEPT,
                                "fleet_host_tunnels": {labtest.container("c3"): [C3_TUNNEL]}}))
    return f"@{path}"


def test_a_rerun_where_nothing_changed_runs_the_tunnel_play_on_no_host(monkeypatch, changed_vars):
    result = run(monkeypatch, "-e", changed_vars, pipelining=True, document=True)
    assert_nothing_changed(result["stats"], everyone())
    assert tunnel_play_hosts(result) == set(), "the tunnel play ran on settled clients"
    assert_settled_clients_reached_twice(result, CLIENTS)
    assert_traffic()


def test_a_change_to_one_client_runs_the_tunnel_play_on_that_client_only(monkeypatch, c3_vars):
    result = run(monkeypatch, "-e", c3_vars, pipelining=True, document=True)
    changed = {host for host, counts in result["stats"].items() if counts["changed"]}
    assert changed == {labtest.container("c3"), labtest.container("bastion")}, result["stats"]
    assert tunnel_play_hosts(result) == {labtest.container("c3")}
    assert_settled_clients_reached_twice(result, ["c1", "c2", "c4"])
    client = lab_host("c3")
    fetched = labtest.wait_until(lambda: PAGE in client.run("curl -s -m 5 --noproxy '*' http://127.0.0.1:12381/").stdout,
                                 45)
    assert fetched is not None, f"c3: no page through the new -L12381\n{labtest.journal(client, 'netreach-tunnel@web2')}"
    assert client_labels("c3") == labels("c3", ["news", "socks", "web", "web2"])
    assert_traffic()


def pinned_bastion_keys(short: str) -> str:
    return lab_host(short).check_output("cat /etc/netreach/tunnels/socks/known_hosts")


def test_a_new_host_key_of_the_bastion_runs_the_tunnel_play_on_its_clients_which_carry_traffic_again(
        monkeypatch, c3_vars):
    bastion = lab_host("bastion")
    old_key = bastion.check_output("cat /etc/ssh/ssh_host_ed25519_key.pub").split()[1]
    bastion.check_output("rm -f /etc/ssh/ssh_host_ed25519_key /etc/ssh/ssh_host_ed25519_key.pub && "
                         "ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key && systemctl restart ssh")
    new_key = bastion.check_output("cat /etc/ssh/ssh_host_ed25519_key.pub").split()[1]
    assert new_key != old_key and old_key in pinned_bastion_keys("c1")
    result = run(monkeypatch, "-e", c3_vars, pipelining=True, document=True)
    # Every client's tunnels log in to the bastion (news through it as jump host, socks and web to it).
    clients = {labtest.container(short) for short in CLIENTS}
    assert tunnel_play_hosts(result) == clients
    changed = {host for host, counts in result["stats"].items() if counts["changed"]}
    assert changed == clients, result["stats"]
    for short in CLIENTS:
        pinned = pinned_bastion_keys(short)
        assert new_key in pinned and old_key not in pinned, (short, pinned)
    # The tunnels restarted on the new pins: traffic through each of them means the new key was accepted.
    assert_traffic()
    assert_bulk_traffic(BULK[:BULK_KEPT])
