# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: the NAT table at size. Not a public API; it may change at any time.
"""Port forwards through nft maps and sets, so one lookup decides a packet whatever the number of forwards.

Forwards are grouped by scope (family, in_interface, source). A scope of more than RULES_UP_TO forwards gets, instead
of one DNAT and one accept rule per forward: a map `proto . port -> address . port` (and `proto . port -> address`
for ranges that keep their ports), a set `address . proto . port` of the targets, and one rule per map and set.
Single ports go into hash maps and sets; only port ranges into the interval kind.
Smaller scopes keep one rule per forward, which `nft list` shows as they were declared. Pure functions.
"""

from __future__ import annotations

import dataclasses

from ansible_collections.netreach.tunnels.plugins.module_utils._nat import (
    NatRules,
    PortForward,
    _hairpin_sources,
    _iif,
    _match,
    _overlap,
    assemble_table,
    render_rules,
)

RULES_UP_TO = 4
ADDR_TYPE = {"ip": "ipv4_addr", "ip6": "ipv6_addr"}


def scopes(forwards: tuple[PortForward, ...]) -> list[tuple[tuple, list[PortForward]]]:
    """The forwards grouped by (family, in_interface, source), in declaration order."""
    grouped: dict[tuple, list[PortForward]] = {}
    for forward in forwards:
        grouped.setdefault((forward.family, forward.in_interface, forward.source), []).append(forward)
    return list(grouped.items())


def _element_key(forward: PortForward) -> str:
    return f"{forward.proto} . {forward.ports}"


def _definition(kind: str, name: str, key: str, value: str | None, elements: list[str], interval: bool) -> str:
    typed = f"{key} : {value}" if value else key
    flags = "\t\tflags interval\n" if interval else ""
    return (f"\t{kind} {name} {{\n\t\ttype {typed}\n{flags}"
            f"\t\telements = {{ {', '.join(elements)} }}\n\t}}")


def _sets(name: str, family: str, forwards: list[PortForward]) -> tuple[list[str], list[str], list[str]]:
    """The map and set definitions of one scope, the names of its DNAT maps and those of its target sets (the
    empty ones left out).

    Single ports go into hash maps and sets (one hash lookup whatever their number); only port ranges need the
    interval kind, whose lookup in a concatenation costs more the more elements it holds."""
    addr = ADDR_TYPE[family]
    single = [f for f in forwards if f.port_first == f.port_last]
    ranges = [f for f in forwards if f.port_first != f.port_last]
    maps = (  # (suffix, value type, elements, interval)
        ("ports", f"{addr} . inet_service", [f"{_element_key(f)} : {f.to_addr} . {f.target_ports}" for f in single], False),
        ("addrs", addr, [f"{_element_key(f)} : {f.to_addr}" for f in ranges], True),  # a range keeps its ports
    )
    targets = (
        ("targets", single, False),
        ("target_ranges", ranges, True),
    )
    lines, map_names, set_names = [], [], []
    for suffix, value, elements, interval in maps:
        if elements:
            lines.append(_definition("map", f"{name}_{suffix}", "inet_proto . inet_service", value, elements, interval))
            map_names.append(f"{name}_{suffix}")
    for suffix, members, interval in targets:
        elements = list(dict.fromkeys(f"{f.to_addr} . {f.proto} . {f.target_ports}" for f in members))
        if elements:
            lines.append(_definition("set", f"{name}_{suffix}", f"{addr} . inet_proto . inet_service", None, elements,
                                     interval))
            set_names.append(f"{name}_{suffix}")
    return lines, map_names, set_names


def _dnat(family: str, in_interface: str | None, source, map_name: str) -> str:
    return (f"{_iif(in_interface)}meta nfproto {'ipv4' if family == 'ip' else 'ipv6'} {_match(family, 'saddr', source)}"
            f"fib daddr type local meta l4proto {{ tcp, udp }} dnat {family} to meta l4proto . th dport map @{map_name}")


def render_mapped(rules: NatRules) -> tuple[NatRules, list[str], dict[str, list[str]]]:
    """RULES without the forwards of large scopes, the definitions of their maps and sets, and their rules."""
    small, definitions = [], []
    chains: dict[str, list[str]] = {"prerouting": [], "postrouting": [], "forward": []}
    for index, ((family, in_interface, source), forwards) in enumerate(scopes(rules.port_forwards)):
        if len(forwards) <= RULES_UP_TO:
            small.extend(forwards)
            continue
        name = f"fwd{index}"
        lines, maps, sets = _sets(name, family, forwards)
        definitions.extend(lines)
        chains["prerouting"] += [_dnat(family, in_interface, source, map_name) for map_name in maps]
        for set_name in sets:
            targets = f"{family} daddr . meta l4proto . th dport @{set_name} ct status dnat"
            if rules.hairpin:
                for hairpin in _hairpin_sources(rules, family):
                    if in_interface and _overlap(hairpin, source) and set_name == sets[0]:
                        chains["prerouting"] += [_dnat(family, None, hairpin, map_name) for map_name in maps]
                    chains["postrouting"].append(f"{_match(family, 'saddr', hairpin)}meta l4proto {{ tcp, udp }} {targets} masquerade")
                    chains["forward"].append(f"{_match(family, 'saddr', hairpin)}meta l4proto {{ tcp, udp }} {targets} accept")
            chains["forward"].append(f"{_iif(in_interface)}{_match(family, 'saddr', source)}meta l4proto {{ tcp, udp }} "
                                     f"{targets} accept")
    return dataclasses.replace(rules, port_forwards=tuple(small)), definitions, chains


def render_table(rules: NatRules, comment: str | None = None) -> str:
    """Our table as nft input: NAT of the declared forwards and sources, and the forward filter; COMMENT (the
    digests the no-op check compares) on the table."""
    rest, definitions, mapped = render_mapped(rules)
    chains = render_rules(rest)
    preamble = [f'\tcomment "{comment}"'] if comment else []
    return assemble_table(rules, {name: linear + mapped[name] for name, linear in chains.items()},
                          preamble + list(definitions))
