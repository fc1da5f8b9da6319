"""Scale-out: the collection's site playbook (converge.yml: site.yml, gateways included) rerun on the converged
fleet with every setting a large fleet uses. Molecule's idempotence step has rerun them with the linear strategy;
here, every run with 20 forks and pipelining: strategy free in serial batches (changes nothing); a changed
declaration (a third tunnel on every client) rolled out the same way; then --limit to two clients and the
servers under strategy free (changes nothing: the fleet converged on the changed declaration, and the other
clients keep their server entries). After every run, real traffic through every client's tunnels (-L banner
read, page fetched through SOCKS, and the third tunnel once declared), and through the gateway.

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


def test_every_client_carries_traffic_after_the_converge():
    assert_traffic()
    for short in CLIENTS:
        assert client_labels(short) == {f"{labtest.container(short)}/news", f"{labtest.container(short)}/socks"}


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
    assert batches.count("Run the tunnels on every client") == len(CLIENTS) // 2, batches
    assert batches.count("Configure the tunnel servers for exactly the declared tunnels") == 1, batches
    assert_traffic()


@pytest.fixture(scope="module")
def changed_vars(tmp_path_factory) -> str:
    """Extra vars that give every client the third tunnel."""
    tunnels = labtest.host("c1").ansible.get_variables()["tunnel_client_tunnels"] + [WEB_TUNNEL]
    path = tmp_path_factory.mktemp("fleet") / "changed.json"
    path.write_text(json.dumps({"tunnel_client_tunnels": tunnels}))
    return f"@{path}"


def test_a_changed_declaration_rolls_out_under_strategy_free_in_serial_batches(monkeypatch, changed_vars):
    stats = run(monkeypatch, "-e", "netreach_serial=2", "-e", changed_vars, strategy="free", pipelining=True)
    assert {host for host, counts in stats.items() if counts["changed"]} == \
        {labtest.container(short) for short in CLIENTS + ["bastion"]}, stats
    for short in CLIENTS:
        client = lab_host(short)
        fetched = labtest.wait_until(lambda client=client: PAGE in client.run(
            "curl -s -m 5 --noproxy '*' http://127.0.0.1:12380/").stdout, 45)
        assert fetched is not None, f"{short}: no page through the new -L12380\n" \
                                    f"{labtest.journal(client, 'netreach-tunnel@web')}"
        assert client_labels(short) == {f"{labtest.container(short)}/{name}" for name in ("news", "socks", "web")}
    assert_traffic()


def test_rerun_limited_to_two_clients_changes_nothing_and_keeps_the_others_working(monkeypatch, changed_vars):
    before = {server: server_labels(server) for server in SERVERS}
    limited = [labtest.container(short) for short in ["c1", "c2", *SERVERS]]
    stats = run(monkeypatch, "--limit", ",".join(limited), "-e", changed_vars, strategy="free", pipelining=True)
    assert_nothing_changed(stats, set(limited))
    after = {server: server_labels(server) for server in SERVERS}
    assert after == before, "the servers dropped or changed entries of clients outside the limit"
    for short in ["c3", "c4"]:
        assert client_labels(short) == {f"{labtest.container(short)}/{name}" for name in ("news", "socks", "web")}
    assert_traffic(["c3", "c4", "c1", "c2"])
