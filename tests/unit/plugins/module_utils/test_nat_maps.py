"""nat_rules at size: forwards through maps and sets (one lookup whatever their number), and the no-op rerun that
needs no scratch namespace (tests/unit/nat_fakehost.py)."""
from __future__ import annotations

import pytest

from ansible_collections.netreach.tunnels.plugins.module_utils._declaration import DeclarationError
from ansible_collections.netreach.tunnels.plugins.module_utils._nat import parse_nat, render_table as render_rules_only
from ansible_collections.netreach.tunnels.plugins.module_utils._nat_maps import RULES_UP_TO, render_table
from nat_fakehost import DECLARED, Kernel, confirm, run


def many(count: int) -> list[dict]:
    return [{"proto": "tcp", "port": 10000 + i, "to": f"192.0.2.{1 + i % 250}:{80 + i // 250}"} for i in range(count)]


def test_small_scopes_keep_one_rule_per_forward():
    rules = parse_nat(DECLARED)
    assert render_table(rules) == render_rules_only(rules)


def test_a_large_scope_is_one_map_lookup_and_one_set_lookup_whatever_the_number():
    for count in (RULES_UP_TO + 1, 1000, 10000):
        text = render_table(parse_nat({**DECLARED, "port_forwards": many(count)}))
        assert text.count("dnat ip to meta l4proto . th dport map @fwd0_ports") == 1
        assert text.count("@fwd0_targets ct status dnat accept") == 1
        assert text.count(" : 192.0.2.") == count and "dnat ip to 192.0.2" not in text


def test_ranges_ipv6_scopes_and_hairpin_through_maps():
    forwards = many(5) + [{"proto": "udp", "port": f"{6000 + 10 * i}-{6005 + 10 * i}", "to": "192.0.2.9"} for i in range(5)]
    forwards += [{"proto": "tcp", "port": 20000 + i, "to": f"[fd00::{i + 1}]:22", "in_interface": "eth0"} for i in range(5)]
    text = render_table(parse_nat({**DECLARED, "port_forwards": forwards, "hairpin": True}))
    assert "map fwd0_addrs" in text and "udp . 6000-6005 : 192.0.2.9" in text and "192.0.2.9 . udp . 6000-6005" in text
    assert "type inet_proto . inet_service : ipv6_addr . inet_service" in text and "tcp . 20000 : fd00::1 . 22" in text
    assert 'iifname "eth0" meta nfproto ipv6 fib daddr type local meta l4proto { tcp, udp } dnat ip6 to' in text
    assert "ip saddr 10.10.0.0/24 meta l4proto { tcp, udp } ip daddr . meta l4proto . th dport @fwd0_targets " \
           "ct status dnat masquerade" in text


def _definition(text: str, name: str) -> str:
    start = text.index(f" {name} {{")
    return text[start:text.index("}", text.index("elements", start))]


def test_single_ports_use_hash_lookups_and_only_ranges_the_interval_kind():
    # An interval lookup in a concatenation (nft's pipapo) costs more the more elements it holds; a hash does not.
    assert "flags interval" not in render_table(parse_nat({**DECLARED, "port_forwards": many(1000)}))
    forwards = many(5) + [{"proto": "udp", "port": f"{6000 + 10 * i}-{6005 + 10 * i}", "to": "192.0.2.9"} for i in range(3)]
    text = render_table(parse_nat({**DECLARED, "port_forwards": forwards}))
    for name in ("fwd0_ports", "fwd0_targets"):
        assert "flags interval" not in _definition(text, name)
    for name in ("fwd0_addrs", "fwd0_target_ranges"):
        assert "flags interval" in _definition(text, name)
    assert "udp . 6000-6005 : 192.0.2.9" in _definition(text, "fwd0_addrs")
    assert "192.0.2.5 . tcp . 81" not in text and "192.0.2.5 . tcp . 80" in _definition(text, "fwd0_targets")
    assert "192.0.2.9 . udp . 6010-6015" in _definition(text, "fwd0_target_ranges")
    for name in ("fwd0_ports", "fwd0_addrs"):
        assert text.count(f"dport map @{name}\n") == 1
    for name in ("fwd0_targets", "fwd0_target_ranges"):
        assert text.count(f"@{name} ct status dnat accept") == 1


def test_a_noop_rerun_compares_the_kernels_listing_without_the_scratch_namespace(tmp_path):
    kernel = Kernel(str(tmp_path))
    declared = {"port_forwards": many(50)}
    applied, module = run(kernel, **declared)
    confirm(kernel, applied)
    assert any(args[0].endswith("unshare") for args in module.commands)
    assert 'comment "netreach ' in kernel.table
    again, module = run(kernel, **declared)
    assert not again["changed"] and not [args for args in module.commands if args[0].endswith("unshare")]
    assert not [args for args in module.commands if args[:2] == ["/usr/sbin/nft", "-c"]]
    # The whole of nft's work on a no-op: the ruleset without set elements, and one full listing of our table.
    assert [args for args in module.commands if args[0] == "/usr/sbin/nft"] == [
        ["/usr/sbin/nft", "-j", "-t", "list", "ruleset"], ["/usr/sbin/nft", "list", "table", "inet", "netreach"]]
    # A table changed behind our back keeps its comment but not its listing: the scratch load and a change again.
    kernel.table = kernel.table.replace("tcp . 10001 :", "tcp . 10999 :")
    changed, module = run(kernel, **declared)
    assert changed["changed"] and any(args[0].endswith("unshare") for args in module.commands)
    # Another declaration: another digest.
    other, _module = run(kernel, port_forwards=many(51))
    assert other["changed"]


def brute_force_clash(forwards: list[dict]) -> str | None:
    """The pairwise check nat_rules made before the sweep: the first later forward overlapping an earlier one."""
    parsed = [parse_nat({"port_forwards": [f]}).port_forwards[0] for f in forwards]
    for i, forward in enumerate(parsed):
        for j, earlier in enumerate(parsed[:i]):
            if (forward.proto == earlier.proto and forward.family == earlier.family
                    and forward.port_first <= earlier.port_last and earlier.port_first <= forward.port_last
                    and (forward.in_interface is None or earlier.in_interface is None
                         or forward.in_interface == earlier.in_interface)
                    and (forward.source is None or earlier.source is None or forward.source.overlaps(earlier.source))):
                return f"port_forwards[{i}].port"
    return None


@pytest.mark.parametrize("forwards", [
    [{"port": "100-200", "to": "192.0.2.1"}, {"port": 150, "to": "192.0.2.2:80"}, {"port": 120, "to": "192.0.2.3:80"}],
    [{"port": 90, "to": "192.0.2.1:1"}, {"port": "80-100", "to": "192.0.2.2"}, {"port": 90, "to": "192.0.2.3:1"}],
    [{"port": 80, "to": "192.0.2.1:1", "in_interface": "eth0"}, {"port": 80, "to": "192.0.2.1:1", "in_interface": "eth1"},
     {"port": 80, "to": "192.0.2.1:1"}],
    [{"port": 80, "to": "192.0.2.1:1", "source": "10.0.0.0/24"}, {"port": 80, "to": "192.0.2.1:1", "source": "10.0.1.0/24"},
     {"port": 80, "to": "[fd00::1]:1"}, {"proto": "udp", "port": 80, "to": "192.0.2.1:1"}],
    [{"port": "1-65535", "to": "192.0.2.1"}, {"port": 65535, "to": "192.0.2.1:9", "source": "10.0.0.0/8"}],
])
def test_the_overlap_sweep_names_the_pair_the_pairwise_check_named(forwards):
    expected = brute_force_clash(forwards)
    try:
        parse_nat({"port_forwards": forwards})
        found = None
    except DeclarationError as error:
        found = error.field
    assert found == expected
