"""tunnel_clients_to_run: the clients whose full tunnel call has anything to do, from their keys_first facts and
the servers' host key facts; a client without a result (failed keys step, --syntax-check) is always kept."""
from __future__ import annotations

from ansible_collections.netreach.tunnels.plugins.filter.tunnels import tunnel_clients_to_run

BASTION_KEY = "AAAAC3NzaC1lZDI1NTE5AAAABASTION"
TARGET_KEY = "AAAAC3NzaC1lZDI1NTE5AAAATARGET"
DECLARED_KEY = "outside.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAOUTSIDE"
TUNNELS = [{"name": "news", "server": "target", "jump_hosts": ["tunnel@bastion:22"], "local_forwards": ["1:h:1"]},
           {"name": "socks", "server": "bastion", "dynamic_forwards": ["127.0.0.1:3128"], "server_allow_dynamic": True},
           {"name": "far", "server": "outside.example", "known_hosts": [DECLARED_KEY], "local_forwards": ["2:h:1"]},
           {"name": "gone", "state": "absent"}]
PINNED = {"news": [f"bastion ssh-ed25519 {BASTION_KEY}", f"target ssh-ed25519 {TARGET_KEY}"],
          "socks": [f"bastion ssh-ed25519 {BASTION_KEY}"], "far": [DECLARED_KEY]}
INVENTORY = ["c1", "c2", "bastion", "target"]


def hostvars(**clients) -> dict:
    """The servers' host key facts and each client's declaration with the keys_first fact CLIENTS give."""
    found = {"bastion": {"ansible_ssh_host_key_ed25519_public": BASTION_KEY},
             "target": {"ansible_ssh_host_key_ed25519_public": TARGET_KEY}}
    for name, fact in clients.items():
        found[name] = {"tunnel_client_tunnels": TUNNELS}
        if fact is not None:
            found[name]["tunnel_client_keys_first"] = fact
    return found


def settled(**changes) -> dict:
    return dict({"pending": False, "pinned": PINNED}, **changes)


def test_settled_clients_are_left_out():
    assert tunnel_clients_to_run(["c1", "c2"], hostvars(c1=settled(), c2=settled()), INVENTORY) == []


def test_a_pending_client_is_kept():
    assert tunnel_clients_to_run(["c1", "c2"], hostvars(c1=settled(), c2=settled(pending=True)), INVENTORY) == ["c2"]


def test_a_client_without_a_result_is_kept_in_order():
    assert tunnel_clients_to_run(["c2", "c1"], hostvars(c1=None, c2=None), INVENTORY) == ["c2", "c1"]
    # --syntax-check: no hostvars at all.
    assert tunnel_clients_to_run(["c1"], {}, INVENTORY) == ["c1"]
    assert tunnel_clients_to_run(None, {}, INVENTORY) == []


def test_a_server_with_a_new_host_key_brings_back_its_clients():
    variables = hostvars(c1=settled(), c2=settled(pinned=dict(PINNED, news=PINNED["news"][:1])))
    assert tunnel_clients_to_run(["c1", "c2"], variables, INVENTORY) == ["c2"]
    variables["target"]["ansible_ssh_host_key_ed25519_public"] = "AAAAC3NzaC1lZDI1NTE5AAAANEW"
    assert tunnel_clients_to_run(["c1", "c2"], variables, INVENTORY) == ["c1", "c2"]


def test_a_changed_declared_known_hosts_line_brings_back_the_client():
    variables = hostvars(c1=settled())
    variables["c1"]["tunnel_client_defaults"] = {"known_hosts": ["extra ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAX"]}
    assert tunnel_clients_to_run(["c1"], variables, INVENTORY) == ["c1"]


def test_a_tunnel_pinned_nothing_yet_or_missing_brings_back_the_client():
    missing = {name: lines for name, lines in PINNED.items() if name != "far"}
    assert tunnel_clients_to_run(["c1"], hostvars(c1=settled(pinned=missing)), INVENTORY) == ["c1"]


def test_hops_without_host_key_facts_bring_back_the_client():
    variables = hostvars(c1=settled())
    del variables["bastion"]["ansible_ssh_host_key_ed25519_public"]
    assert tunnel_clients_to_run(["c1"], variables, INVENTORY) == ["c1"]


def test_without_learning_host_keys_only_the_declared_lines_count():
    variables = hostvars(c1=settled(pinned={"news": [], "socks": [], "far": [DECLARED_KEY]}))
    variables["c1"]["tunnel_client_learn_host_keys"] = False
    assert tunnel_clients_to_run(["c1"], variables, INVENTORY) == []


def test_a_malformed_fact_keeps_the_client():
    for fact in ({"pending": "no", "pinned": PINNED}, {"pending": False}, "settled"):
        assert tunnel_clients_to_run(["c1"], hostvars(c1=fact), INVENTORY) == ["c1"]
