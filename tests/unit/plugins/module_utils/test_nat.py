from __future__ import annotations

import ipaddress
import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.netreach.tunnels.plugins.module_utils._nat import (
    NatError,
    normalise_listing,
    parse_nat,
    parse_target,
    render_replace,
    render_table,
)

SEED = dict(
    masquerade=[{"out_interface": "eth0", "source": "10.10.0.0/24"}],
    snat=[{"out_interface": "eth0", "source": "10.20.0.0/24", "to": "198.51.100.7"}],
    port_forwards=[
        {"proto": "tcp", "port": 8080, "to": "10.10.0.5:80", "in_interface": "eth0"},
        {"proto": "udp", "port": "5000-5010", "to": "10.10.0.6", "source": "203.0.113.0/24"},
        {"proto": "tcp", "port": 2222, "to": "[fd00::5]:22"},
    ],
    forward_policy="drop",
    ip_forward=True,
)


def nat(**changes):
    return parse_nat({**SEED, **changes})


def rules_of(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines()]


def test_seed_renders_dnat_snat_masquerade_and_the_forward_filter():
    lines = rules_of(render_table(nat()))
    assert 'iifname "eth0" meta nfproto ipv4 fib daddr type local tcp dport 8080 dnat ip to 10.10.0.5:80' in lines
    assert ("meta nfproto ipv4 ip saddr 203.0.113.0/24 fib daddr type local udp dport 5000-5010 dnat ip to 10.10.0.6"
            in lines)
    assert "meta nfproto ipv6 fib daddr type local tcp dport 2222 dnat ip6 to [fd00::5]:22" in lines
    assert 'oifname "eth0" ip saddr 10.10.0.0/24 masquerade' in lines
    assert 'oifname "eth0" ip saddr 10.20.0.0/24 snat ip to 198.51.100.7' in lines
    assert "type filter hook forward priority filter; policy drop;" in lines
    assert lines.index("ct state established,related accept") < lines.index(
        'iifname "eth0" ip daddr 10.10.0.5 tcp dport 80 ct status dnat accept')
    assert "ip saddr 203.0.113.0/24 ip daddr 10.10.0.6 udp dport 5000-5010 ct status dnat accept" in lines


def test_forward_policy_accept_has_no_established_rule():
    text = render_table(nat(forward_policy="accept"))
    assert "policy accept;" in text and "ct state established" not in text


def test_masquerade_without_source_covers_both_families():
    lines = rules_of(render_table(nat(masquerade=[{"out_interface": "wan*"}], snat=[])))
    assert 'oifname "wan*" meta nfproto ipv4 masquerade' in lines
    assert 'oifname "wan*" meta nfproto ipv6 masquerade' in lines


def test_hairpin_adds_dnat_from_the_masqueraded_network_and_masquerades_it():
    lines = rules_of(render_table(nat(hairpin=True)))
    assert ("meta nfproto ipv4 ip saddr 10.10.0.0/24 fib daddr type local tcp dport 8080 dnat ip to 10.10.0.5:80"
            in lines)
    assert "ip saddr 10.10.0.0/24 ip daddr 10.10.0.5 tcp dport 80 ct status dnat masquerade" in lines
    assert "ip saddr 10.10.0.0/24 ip daddr 10.10.0.5 tcp dport 80 ct status dnat accept" in lines


def test_hairpin_needs_a_source_network():
    with pytest.raises(NatError) as err:
        nat(hairpin=True, masquerade=[{"out_interface": "eth0"}], snat=[])
    assert err.value.field == "hairpin"


def test_replace_names_only_our_table_and_never_flushes():
    text = render_replace(render_table(nat()))
    assert text.splitlines()[1:3] == ["table inet netreach {}", "delete table inet netreach"]
    assert "flush" not in text
    assert set(re.findall(r"^(?:table|delete table) (\S+ \S+)", text, re.M)) == {"inet netreach"}
    assert render_replace(None).endswith("delete table inet netreach\n")


@pytest.mark.parametrize(
    ("value", "address", "port"),
    [("10.0.0.5", "10.0.0.5", None), ("10.0.0.5:80", "10.0.0.5", 80), ("[fd00::5]:22", "fd00::5", 22),
     ("fd00::5", "fd00::5", None), ("[fd00::5]", "fd00::5", None)],
)
def test_targets(value, address, port):
    parsed_address, parsed_port = parse_target(value, "to")
    assert (str(parsed_address), parsed_port) == (address, port)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"masquerade": [{"out_interface": "eth0", "source": "10.10.0.0/33"}]}, "masquerade[0].source"),
        ({"masquerade": [{"out_interface": "eth0", "source": "10.10.0.1/24"}]}, "masquerade[0].source"),
        ({"masquerade": [{"source": "10.10.0.0/24"}]}, "masquerade[0].out_interface"),
        ({"masquerade": [{"out_interface": 'eth0" accept', "source": "10.10.0.0/24"}]}, "masquerade[0].out_interface"),
        ({"snat": [{"out_interface": "eth0", "to": "host.example"}]}, "snat[0].to"),
        ({"snat": [{"out_interface": "eth0", "source": "10.0.0.0/8", "to": "fd00::1"}]}, "snat[0].to"),
        ({"port_forwards": [{"port": 0, "to": "10.0.0.5"}]}, "port_forwards[0].port"),
        ({"port_forwards": [{"port": 70000, "to": "10.0.0.5"}]}, "port_forwards[0].port"),
        ({"port_forwards": [{"port": "10-5", "to": "10.0.0.5"}]}, "port_forwards[0].port"),
        ({"port_forwards": [{"port": True, "to": "10.0.0.5"}]}, "port_forwards[0].port"),
        ({"port_forwards": [{"port": "80;", "to": "10.0.0.5"}]}, "port_forwards[0].port"),
        ({"port_forwards": [{"port": 80, "to": ":80"}]}, "port_forwards[0].to"),
        ({"port_forwards": [{"port": 80}]}, "port_forwards[0].to"),
        ({"port_forwards": [{"port": 80, "to": "web.example:80"}]}, "port_forwards[0].to"),
        ({"port_forwards": [{"port": 80, "to": "[10.0.0.5]:80"}]}, "port_forwards[0].to"),
        ({"port_forwards": [{"port": 80, "to": "10.0.0.5:80 counter"}]}, "port_forwards[0].to"),
        ({"port_forwards": [{"port": "80-81", "to": "10.0.0.5:80"}]}, "port_forwards[0].to"),
        ({"port_forwards": [{"proto": "icmp", "port": 80, "to": "10.0.0.5"}]}, "port_forwards[0].proto"),
        ({"port_forwards": [{"port": 80, "to": "10.0.0.5", "in_interface": "eth 0"}]}, "port_forwards[0].in_interface"),
        ({"port_forwards": [{"port": 80, "to": "10.0.0.5", "in_interface": "eth0;"}]}, "port_forwards[0].in_interface"),
        ({"port_forwards": [{"port": 80, "to": "10.0.0.5", "in_interface": "averyveryverylongname"}]},
         "port_forwards[0].in_interface"),
        ({"port_forwards": [{"port": 80, "to": "10.0.0.5", "source": "fd00::/64"}]}, "port_forwards[0].source"),
        ({"port_forwards": [{"port": 80, "to": "10.0.0.5", "bogus": 1}]}, "port_forwards[0]"),
        ({"port_forwards": [{"port": 80, "to": "10.0.0.5"}, {"port": "70-90", "to": "10.0.0.6"}]},
         "port_forwards[1].port"),
        ({"port_forwards": [{"port": 80, "to": "10.0.0.5", "source": "10.0.0.0/8"},
                            {"port": 80, "to": "10.0.0.6", "source": "10.1.0.0/16"}]}, "port_forwards[1].port"),
        ({"forward_policy": "reject"}, "forward_policy"),
    ],
)
def test_bad_input_names_the_field(changes, field):
    with pytest.raises(NatError) as err:
        nat(**changes)
    assert err.value.field == field
    assert str(err.value).startswith(f"{field}: ")


def test_forwards_may_share_a_port_across_families_interfaces_and_disjoint_sources():
    nat(port_forwards=[
        {"port": 80, "to": "10.0.0.5"}, {"port": 80, "to": "[fd00::5]:80"},
        {"port": 81, "to": "10.0.0.5", "in_interface": "eth0"}, {"port": 81, "to": "10.0.0.6", "in_interface": "eth1"},
        {"port": 82, "to": "10.0.0.5", "source": "10.1.0.0/16"}, {"port": 82, "to": "10.0.0.6", "source": "10.2.0.0/16"},
        {"proto": "udp", "port": 80, "to": "10.0.0.7"},
    ])


def test_normalise_listing_drops_handles_and_metainfo():
    listing = {"nftables": [{"metainfo": {"version": "1.0.6"}},
                            {"table": {"family": "inet", "name": "netreach", "handle": 7}},
                            {"rule": {"chain": "forward", "handle": 3, "expr": [{"accept": None}]}}]}
    assert normalise_listing(json.dumps(listing)) == [{"table": {"family": "inet", "name": "netreach"}},
                                                      {"rule": {"chain": "forward", "expr": [{"accept": None}]}}]


# --- properties: whatever is accepted renders to one rule per line, with nothing but declared syntax ---------

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)
PORTS = st.one_of(st.integers(min_value=-5, max_value=70000), TEXT, st.builds(lambda a, b: f"{a}-{b}", st.integers(0, 70000), st.integers(0, 70000)))
TARGETS = st.one_of(TEXT, st.ip_addresses().map(str), st.builds(lambda a, p: f"{a}:{p}", st.ip_addresses(v=4), PORTS),
                    st.builds(lambda a, p: f"[{a}]:{p}", st.ip_addresses(v=6), PORTS))
IFNAMES = st.one_of(st.none(), TEXT, st.text(alphabet="abcxyz0189.*", min_size=1, max_size=16))
NETWORKS = st.one_of(st.none(), TEXT, st.builds(lambda a, p: f"{a}/{p}", st.ip_addresses(), st.integers(0, 129)))
FORWARDS = st.fixed_dictionaries({"proto": st.sampled_from(["tcp", "udp"]), "port": PORTS, "to": TARGETS,
                                  "in_interface": IFNAMES, "source": NETWORKS})
FUZZED_SOURCES = st.fixed_dictionaries({"out_interface": IFNAMES, "source": NETWORKS})


@st.composite
def valid_forwards(draw):
    """Forwards the model accepts (mostly): the interesting half of what must render safely."""
    address = draw(st.ip_addresses())
    first = draw(st.integers(1, 65535))
    ranged = draw(st.booleans())
    port = f"{first}-{draw(st.integers(first, 65535))}" if ranged else first
    to_port = None if ranged or draw(st.booleans()) else draw(st.integers(1, 65535))
    to = str(address) if to_port is None else (f"[{address}]:{to_port}" if address.version == 6 else f"{address}:{to_port}")
    source = draw(st.one_of(st.none(), st.integers(0, address.max_prefixlen).map(
        lambda prefix: str(ipaddress.ip_network(f"{address}/{prefix}", strict=False)))))
    return {"proto": draw(st.sampled_from(["tcp", "udp"])), "port": port, "to": to,
            "in_interface": draw(st.one_of(st.none(), st.from_regex(r"\A[a-z0-9._-]{1,14}\*?\Z"))), "source": source}


VALID_SOURCES = st.builds(lambda name, net: {"out_interface": name, "source": net}, st.sampled_from(["eth0", "wan*", "ens3.10"]),
                          st.one_of(st.none(), st.sampled_from(["10.10.0.0/24", "fd00:1::/64", "192.0.2.0/28"])))
SOURCES = st.one_of(FUZZED_SOURCES, VALID_SOURCES)
# What a rendered rule line may consist of: nft keywords, addresses, numbers and quoted interface names.
RULE_LINE = re.compile(r'^[\ta-z0-9 .:/\[\]{},;_*-]*("[A-Za-z0-9_.*-]+"[\ta-z0-9 .:/\[\]{},;_*-]*)*$')


@given(st.lists(st.one_of(valid_forwards(), valid_forwards(), FORWARDS), max_size=4), st.lists(SOURCES, max_size=2),
       st.booleans())
def test_accepted_declarations_render_only_safe_lines(forwards, sources, hairpin):
    try:
        rules = parse_nat({"port_forwards": forwards, "masquerade": sources, "hairpin": hairpin})
    except NatError as err:
        assert err.field and "\n" not in err.field
        return
    text = render_replace(render_table(rules))
    for line in text.splitlines()[1:]:
        assert RULE_LINE.fullmatch(line), line
        assert line.count('"') % 2 == 0
    # Every forward is one DNAT line (plus hairpin variants), so no value can split or add a rule.
    assert sum("dnat" in line for line in text.splitlines()) >= len(forwards)
    assert "\r" not in text and "#" not in text.split("\n", 1)[1]


@given(TARGETS)
def test_parse_target_accepts_only_addresses(value):
    try:
        address, port = parse_target(value, "to")
    except NatError:
        return
    assert re.fullmatch(r"[0-9a-f.:]+", str(address))
    assert port is None or 1 <= port <= 65535
