"""The gateway's neighbours, read from real `nft -j list ruleset` output (nft 1.0.6, Debian 12) in nft_samples/:
docker-forward-drop.json   iptables-nft as Docker sets it up: ip filter FORWARD policy drop, DOCKER-USER, DOCKER
docker-container-dns.json  a container on a user-defined docker network: Docker's DNS NAT in ip nat (accept)
nftables-service-stock.json  Debian's /etc/nftables.conf loaded: inet filter, every policy accept
handmade.json              a hand-made inet table: forward ending in reject, postrouting policy drop, a prerouting
                           chain whose last rule drops, an input chain with policy drop (not our hook), and ours
"""
from __future__ import annotations

import os

import pytest

from ansible_collections.netreach.tunnels.plugins.module_utils._nat_neighbours import dropping_chains, neighbours

SAMPLES = os.path.join(os.path.dirname(__file__), "nft_samples")


def sample(name: str) -> str:
    with open(os.path.join(SAMPLES, name), encoding="utf-8") as stream:
        return stream.read()


def test_dockers_forward_policy_drop_is_found_and_owned_by_docker():
    assert dropping_chains(sample("docker-forward-drop.json")) == [
        {"table": "ip filter", "chain": "FORWARD", "hook": "forward", "priority": 0, "policy": "drop",
         "ends_in": "accept", "owner": "docker"}]


@pytest.mark.parametrize("name", ["docker-container-dns.json", "nftables-service-stock.json"])
def test_accepting_neighbours_are_not_dropping_chains(name):
    assert dropping_chains(sample(name)) == []


def test_a_hand_made_table_names_each_dropping_chain_on_our_hooks_and_never_ours():
    found = dropping_chains(sample("handmade.json"))
    assert [(c["table"], c["chain"], c["hook"], c["policy"], c["ends_in"]) for c in found] == [
        ("inet handmade", "pre_filter", "prerouting", "accept", "drop"),
        ("inet handmade", "forward_filter", "forward", "accept", "reject"),
        ("inet handmade", "nat_post", "postrouting", "drop", None),
    ]
    assert all(c["owner"] is None for c in found)
    assert not [c for c in found if c["table"] == "inet netreach" or c["chain"] in ("input", "helper")]


def test_neighbours_report_the_services_too():
    report = neighbours(sample("nftables-service-stock.json"), (True, True, False), (True, False))
    assert report == {"nftables_service": {"installed": True, "enabled": True, "active": False},
                      "firewalld": {"active": True, "enabled": False}, "ufw": {"enabled": False, "active": False},
                      "docker": {"docker_user": [], "accepted_in": []},
                      "dropping_chains": []}
    assert neighbours(sample("docker-forward-drop.json"), (False, False, False), (False, False))["docker"] == \
        {"docker_user": ["ip"], "accepted_in": []}


def test_iptables_nft_targets_and_an_empty_ruleset():
    listing = ('{"nftables": [{"chain": {"family": "ip", "table": "filter", "name": "FORWARD", "hook": "forward", '
               '"prio": 0, "policy": "accept"}}, {"rule": {"family": "ip", "table": "filter", "chain": "FORWARD", '
               '"expr": [{"xt": {"type": "target", "name": "REJECT"}}]}}]}')
    assert dropping_chains(listing)[0]["ends_in"] == "reject"
    assert dropping_chains('{"nftables": []}') == [] and dropping_chains("") == []
