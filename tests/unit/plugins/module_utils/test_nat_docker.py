"""The declared flows beside Docker: rendered as `iptables -S` prints them, read back from real iptables-nft 1.8.9
output (nft_samples/*tables-S-*.txt: the rendered chain loaded twice with iptables-restore --noflush, then listed)."""
from __future__ import annotations

import os

from ansible_collections.netreach.tunnels.plugins.module_utils._nat import parse_nat
from ansible_collections.netreach.tunnels.plugins.module_utils._nat_docker import (
    docker_user_families,
    listed,
    normalise,
    render_chain,
    render_jump,
    render_removal,
    render_restore,
    render_unit,
)

SAMPLES = os.path.join(os.path.dirname(__file__), "nft_samples")
RULES = parse_nat(dict(
    masquerade=[{"out_interface": "eth0", "source": "10.10.0.0/24"}, {"out_interface": "wan*"}], snat=[],
    port_forwards=[{"proto": "tcp", "port": 8080, "to": "10.10.0.5:80", "in_interface": "eth0"},
                   {"proto": "udp", "port": "5000-5002", "to": "10.10.0.6", "source": "192.0.2.0/24"},
                   {"proto": "tcp", "port": 2222, "to": "[fd00::5]:22"}]))


def sample(name: str) -> str:
    with open(os.path.join(SAMPLES, name), encoding="utf-8") as stream:
        return stream.read()


def test_what_iptables_lists_after_loading_the_chain_twice_is_exactly_the_rendered_chain():
    for family, name in (("ip", "iptables-S-netreach-nat-ip.txt"), ("ip6", "ip6tables-S-netreach-nat.txt")):
        assert listed(sample(name)) == [normalise(rule) for rule in render_chain(RULES, family)]


def test_each_forward_is_accepted_both_ways_by_conntrack_state_and_each_source_out_and_back():
    rules = render_chain(RULES, "ip")
    assert rules[0] == "-d 10.10.0.5 -i eth0 -p tcp -m tcp --dport 80 -m conntrack --ctstate DNAT -j ACCEPT"
    assert rules[1] == "-s 10.10.0.5 -p tcp -m tcp --sport 80 -m conntrack --ctstate DNAT -j ACCEPT"
    assert "-s 192.0.2.0/24 -d 10.10.0.6 -p udp -m udp --dport 5000:5002 -m conntrack --ctstate DNAT -j ACCEPT" in rules
    assert rules[-2:] == ["-o wan+ -j ACCEPT", "-i wan+ -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"]
    assert not [rule for rule in rules if "fd00::" in rule]


def test_restore_declares_the_chain_so_a_reload_flushes_it_first():
    text = render_restore(render_chain(RULES, "ip6"))
    assert text.splitlines()[:2] == ["*filter", ":NETREACH-NAT - [0:0]"] and text.endswith("COMMIT\n")
    assert "DOCKER-USER" not in text  # Docker's chain only gets the jump


def test_jump_removal_and_unit():
    assert render_jump("iptables") == ("iptables -C DOCKER-USER -j NETREACH-NAT 2>/dev/null || "
                                       "iptables -I DOCKER-USER 1 -j NETREACH-NAT")
    assert "-D DOCKER-USER -j NETREACH-NAT" in render_removal("iptables") and "-X NETREACH-NAT" in render_removal("iptables")
    unit = render_unit([("/usr/sbin/iptables", "/usr/sbin/iptables-restore", "/etc/netreach/nat/docker-user-ip.rules")])
    assert "After=docker.service" in unit and "WantedBy=docker.service" in unit
    assert "ExecStart=/usr/sbin/iptables-restore --noflush /etc/netreach/nat/docker-user-ip.rules" in unit


def test_only_dockers_own_forward_chain_is_handled():
    chains = [{"table": "ip filter", "chain": "FORWARD", "owner": "docker"},
              {"table": "ip6 filter", "chain": "FORWARD", "owner": None},
              {"table": "inet firewalld", "chain": "filter_FORWARD", "owner": "firewalld"}]
    assert docker_user_families(chains) == ["ip"]
