# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: the gateway NAT model. Not a public API; it may change at any time.
#
# parse_nat() turns module parameters into NatRules (or raises DeclarationError naming the bad field); render_*() are
# pure functions from NatRules to nft input text; normalise_listing() makes `nft -j list table` output
# comparable. Nothing here touches the host.
"""The gateway NAT model: masquerade, SNAT and port forwards parsed, validated and rendered for nft."""

from __future__ import annotations

import ipaddress
import json
import re
import typing
from dataclasses import dataclass

from ansible_collections.netreach.tunnels.plugins.module_utils._declaration import (
    DeclarationError,
    check_address,
    check_keys,
    check_network,
    check_port,
)

FAMILY = "inet"
TABLE = "netreach"
TABLE_SPEC = f"{FAMILY} {TABLE}"
# Interface names as the kernel allows them (at most 15 characters), minus everything nft or a shell could
# read as syntax; a trailing * is nft's wildcard ("eth*").
IFNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$|^[A-Za-z0-9_.-]{1,14}\*$")
PORT_RANGE_RE = re.compile(r"^([0-9]{1,5})(?:-([0-9]{1,5}))?$")
PROTOS = ("tcp", "udp")
POLICIES = ("accept", "drop")
FOREIGN_DROP = ("fail", "ignore")
HEADER = "# netreach.tunnels nat_rules: this table is replaced as a whole on every change; edits here are lost.\n"

Address = typing.Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
Network = typing.Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


# The one error of the declaration layer; the old name stays for callers that import it.
NatError = DeclarationError


@dataclass(frozen=True)
class SourceNat:
    """One masquerade (to=None) or SNAT entry: traffic from SOURCE leaving OUT_INTERFACE."""

    out_interface: str
    source: Network | None
    to: Address | None = None

    @property
    def families(self) -> tuple[str, ...]:
        if self.source is not None:
            return (nft_family(self.source.version),)
        if self.to is not None:
            return (nft_family(self.to.version),)
        return ("ip", "ip6")


@dataclass(frozen=True)
class PortForward:
    proto: str
    port_first: int
    port_last: int
    to_addr: Address
    to_port: int | None
    in_interface: str | None
    source: Network | None

    @property
    def family(self) -> str:
        return nft_family(self.to_addr.version)

    @property
    def ports(self) -> str:
        return str(self.port_first) if self.port_first == self.port_last else f"{self.port_first}-{self.port_last}"

    @property
    def target_ports(self) -> str:
        return str(self.to_port) if self.to_port is not None else self.ports

    @property
    def target(self) -> str:
        if self.to_port is None:
            return str(self.to_addr)
        address = f"[{self.to_addr}]" if self.to_addr.version == 6 else str(self.to_addr)
        return f"{address}:{self.to_port}"


@dataclass(frozen=True)
class NatRules:
    masquerade: tuple[SourceNat, ...]
    snat: tuple[SourceNat, ...]
    port_forwards: tuple[PortForward, ...]
    hairpin: bool
    forward_policy: str
    ip_forward: bool | None
    foreign_drop: str = "fail"


def nft_family(version: int) -> str:
    return "ip" if version == 4 else "ip6"


# --- parsing ---------------------------------------------------------------------------------------------


def check_interface(value, field_name: str) -> str:
    if not isinstance(value, str) or not IFNAME_RE.fullmatch(value):
        raise DeclarationError(field_name, f"{value!r} is not an interface name (at most 15 of A-Z a-z 0-9 _ . -, "
                                           "optionally ending in *)")
    return value


def parse_port_range(value, field_name: str) -> tuple[int, int]:
    """A single port (8080 or "8080") or a range "5000-5010"."""
    if isinstance(value, int) and not isinstance(value, bool):
        port = check_port(value, field_name)
        return port, port
    match = PORT_RANGE_RE.fullmatch(value) if isinstance(value, str) else None
    if not match:
        raise DeclarationError(field_name, f"expected a port (1-65535) or a range FIRST-LAST, got {value!r}")
    first = check_port(match.group(1), field_name)
    last = check_port(match.group(2), field_name) if match.group(2) else first
    if last < first:
        raise DeclarationError(field_name, f"range {value!r} ends before it starts")
    return first, last


def parse_target(value, field_name: str) -> tuple[Address, int | None]:
    """`to` of a forward: "addr", "addr:port", "v6addr" or "[v6addr]:port"."""
    if not isinstance(value, str) or not value:
        raise DeclarationError(field_name, f"expected ADDRESS, ADDRESS:PORT or [IPV6]:PORT, got {value!r}")
    if value.startswith("["):
        end = value.find("]")
        rest = value[end + 1:] if end > 0 else ""
        if end < 0 or (rest and not rest.startswith(":")):
            raise DeclarationError(field_name, f"{value!r}: expected [IPV6] or [IPV6]:PORT")
        address = check_address(value[1:end], field_name)
        if address.version != 6:
            raise DeclarationError(field_name, f"{value!r}: brackets are for IPv6 addresses only")
        port = check_port(rest[1:], field_name) if rest else None
        return address, port
    if value.count(":") == 1:
        host, port_text = value.split(":")
        if not host:
            raise DeclarationError(field_name, f"{value!r} has no address")
        address = check_address(host, field_name)
        return address, check_port(port_text, field_name)
    return check_address(value, field_name), None


def _overlap(first: Network | None, second: Network | None) -> bool:
    return first is None or second is None or first.overlaps(second)


def parse_forward(value, field_name: str) -> PortForward:
    check_keys(value, {"proto", "port", "to", "in_interface", "source"}, field_name, {"port", "to"})
    proto = value.get("proto") or "tcp"
    if proto not in PROTOS:
        raise DeclarationError(f"{field_name}.proto", f"expected one of {', '.join(PROTOS)}, got {proto!r}")
    first, last = parse_port_range(value["port"], f"{field_name}.port")
    to_addr, to_port = parse_target(value["to"], f"{field_name}.to")
    if to_port is not None and first != last:
        raise DeclarationError(f"{field_name}.to", "a port range forwards to the same ports: give the address without a port")
    in_interface = value.get("in_interface")
    in_interface = check_interface(in_interface, f"{field_name}.in_interface") if in_interface else None
    source = value.get("source")
    source = check_network(source, f"{field_name}.source") if source else None
    if source is not None and source.version != to_addr.version:
        raise DeclarationError(f"{field_name}.source", f"{source} is IPv{source.version} but to is IPv{to_addr.version}")
    return PortForward(proto, first, last, to_addr, to_port, in_interface, source)


def check_overlaps(forwards: tuple[PortForward, ...]) -> None:
    """Refuse two forwards of one protocol and family sharing a port, unless in_interface or source tell them apart.

    A sweep over the forwards sorted by first port: only those whose ranges still reach the current port are compared,
    so 10,000 distinct forwards cost a sort, not 50 million comparisons. The pair named is the one the declaration
    order meets first (the later forward, then its earliest partner)."""
    order = sorted(range(len(forwards)), key=lambda k: (forwards[k].proto, forwards[k].family, forwards[k].port_first))
    clashes, group, active = [], None, []
    for i in order:
        forward = forwards[i]
        if (forward.proto, forward.family) != group:
            group, active = (forward.proto, forward.family), []
        active = [j for j in active if forwards[j].port_last >= forward.port_first]
        for j in active:
            other = forwards[j]
            if ((forward.in_interface is None or other.in_interface is None or forward.in_interface == other.in_interface)
                    and _overlap(forward.source, other.source)):
                clashes.append((max(i, j), min(i, j)))
        active.append(i)
    if clashes:
        later, earlier = min(clashes)
        forward, other = forwards[later], forwards[earlier]
        raise DeclarationError(f"port_forwards[{later}].port",
                               f"{forward.proto} {forward.ports} overlaps port_forwards[{earlier}] ({other.proto} {other.ports})")


def parse_source_nat(value, field_name: str, snat: bool) -> SourceNat:
    allowed = {"out_interface", "source", "to"} if snat else {"out_interface", "source"}
    check_keys(value, allowed, field_name, {"out_interface", "to"} if snat else {"out_interface"})
    out_interface = check_interface(value["out_interface"], f"{field_name}.out_interface")
    source = value.get("source")
    source = check_network(source, f"{field_name}.source") if source else None
    to = check_address(value["to"], f"{field_name}.to") if snat else None
    if to is not None and source is not None and to.version != source.version:
        raise DeclarationError(f"{field_name}.to", f"{to} is IPv{to.version} but source is IPv{source.version}")
    return SourceNat(out_interface, source, to)


def _list(params: dict, name: str) -> list:
    value = params.get(name) or []
    if not isinstance(value, list):
        raise DeclarationError(name, f"expected a list, got {value!r}")
    return value


def parse_nat(params: dict) -> NatRules:
    """Validate module parameters into NatRules; raises DeclarationError naming the first bad field."""
    masquerade = tuple(parse_source_nat(item, f"masquerade[{i}]", False) for i, item in enumerate(_list(params, "masquerade")))
    snat = tuple(parse_source_nat(item, f"snat[{i}]", True) for i, item in enumerate(_list(params, "snat")))
    forwards = tuple(parse_forward(item, f"port_forwards[{i}]") for i, item in enumerate(_list(params, "port_forwards")))
    check_overlaps(forwards)
    policy = params.get("forward_policy") or "accept"
    if policy not in POLICIES:
        raise DeclarationError("forward_policy", f"expected one of {', '.join(POLICIES)}, got {policy!r}")
    hairpin = params.get("hairpin") or False
    if not isinstance(hairpin, bool):
        raise DeclarationError("hairpin", f"expected a boolean, got {hairpin!r}")
    ip_forward = params.get("ip_forward")
    if ip_forward is not None and not isinstance(ip_forward, bool):
        raise DeclarationError("ip_forward", f"expected a boolean, got {ip_forward!r}")
    foreign_drop = params.get("foreign_drop") or "fail"
    if foreign_drop not in FOREIGN_DROP:
        raise DeclarationError("foreign_drop", f"expected one of {', '.join(FOREIGN_DROP)}, got {foreign_drop!r}")
    rules = NatRules(masquerade, snat, forwards, hairpin, policy, ip_forward, foreign_drop)
    if hairpin and forwards and not any(_hairpin_sources(rules, forward.family) for forward in forwards):
        raise DeclarationError("hairpin", "needs masquerade or snat entries with a source network in the forwards' family")
    return rules


def check_rollback_timeout(value: int) -> int:
    if value < 0:
        raise DeclarationError("rollback_timeout", "must be 0 (no confirm step) or a number of seconds")
    return value


def nat_argument_spec() -> dict:
    """The argument spec of nat_rules (documented in its DOCUMENTATION); masquerade and snat share one entry."""
    source_nat = dict(out_interface=dict(type="str", required=True), source=dict(type="str"))
    return dict(
        masquerade=dict(type="list", elements="dict", default=[], options=source_nat),
        snat=dict(type="list", elements="dict", default=[], options=dict(source_nat, to=dict(type="str", required=True))),
        port_forwards=dict(type="list", elements="dict", default=[], options=dict(
            proto=dict(type="str", default="tcp"), port=dict(type="raw", required=True),
            to=dict(type="str", required=True), in_interface=dict(type="str"), source=dict(type="str"))),
        hairpin=dict(type="bool", default=False),
        forward_policy=dict(type="str", choices=list(POLICIES), default="accept"),
        ip_forward=dict(type="bool"),
        foreign_drop=dict(type="str", choices=list(FOREIGN_DROP), default="fail"),
        persist=dict(type="bool", default=True),
        rollback_timeout=dict(type="int", default=30),
        metrics_dir=dict(type="path"),
        metrics_interval=dict(type="int", default=15),
        confirm=dict(type="str"),
        state=dict(type="str", choices=["present", "absent"], default="present"),
    )


# --- rendering -------------------------------------------------------------------------------------------


def _match(family: str, direction: str, network: Network | None) -> str:
    return f"{family} {direction} {network} " if network is not None else ""


def _iif(name: str | None) -> str:
    return f'iifname "{name}" ' if name else ""


def _hairpin_sources(rules: NatRules, family: str) -> list[Network]:
    return [entry.source for entry in rules.masquerade + rules.snat
            if entry.source is not None and nft_family(entry.source.version) == family]


def _dnat(forward: PortForward, in_interface: str | None, source: Network | None) -> str:
    family = forward.family
    return (f"{_iif(in_interface)}meta nfproto {'ipv4' if family == 'ip' else 'ipv6'} "
            f"{_match(family, 'saddr', source)}fib daddr type local "
            f"{forward.proto} dport {forward.ports} dnat {family} to {forward.target}")


def _to_target(forward: PortForward) -> str:
    return f"{forward.family} daddr {forward.to_addr} {forward.proto} dport {forward.target_ports}"


def render_rules(rules: NatRules) -> dict[str, list[str]]:
    """The rules of each chain of our table, in order."""
    prerouting, postrouting, forward_chain = [], [], []
    for forward in rules.port_forwards:
        prerouting.append(_dnat(forward, forward.in_interface, forward.source))
        if rules.hairpin:
            for source in _hairpin_sources(rules, forward.family):
                if forward.in_interface and _overlap(source, forward.source):
                    # From the inside, the forward's public address arrives on another interface.
                    prerouting.append(_dnat(forward, None, source))
                postrouting.append(f"{_match(forward.family, 'saddr', source)}{_to_target(forward)} ct status dnat masquerade")
                forward_chain.append(f"{_match(forward.family, 'saddr', source)}{_to_target(forward)} ct status dnat accept")
        forward_chain.append(f"{_iif(forward.in_interface)}{_match(forward.family, 'saddr', forward.source)}"
                             f"{_to_target(forward)} ct status dnat accept")
    for entry in rules.masquerade + rules.snat:
        for family in entry.families:
            scope = f'oifname "{entry.out_interface}" '
            if entry.source is None:
                scope += f"meta nfproto {'ipv4' if family == 'ip' else 'ipv6'} "
            scope += _match(family, "saddr", entry.source)
            action = f"snat {family} to {entry.to}" if entry.to is not None else "masquerade"
            postrouting.append(scope + action)
            forward_chain.append(scope + "accept")
    return {"prerouting": prerouting, "postrouting": postrouting, "forward": forward_chain}


def render_table(rules: NatRules) -> str:
    """Our table as nft input with one rule per forward (no maps, no comment). The module applies
    _nat_maps.render_table; this linear rendering is the reference it must equal for scopes of up to four
    forwards (tests/unit/plugins/module_utils/test_nat_maps.py) and what the model's own tests read."""
    return assemble_table(rules, render_rules(rules))


def assemble_table(rules: NatRules, chains: dict[str, list[str]], preamble: list[str] | tuple = ()) -> str:
    """The table text around CHAINS (rules per base chain): PREAMBLE (a comment, map and set definitions), then
    the three base chains with their hooks and the forward policy."""
    heads = {
        "prerouting": "type nat hook prerouting priority dstnat; policy accept;",
        "postrouting": "type nat hook postrouting priority srcnat; policy accept;",
        "forward": f"type filter hook forward priority filter; policy {rules.forward_policy};",
    }
    established = ["ct state established,related accept"] if rules.forward_policy == "drop" else []
    lines = [f"table {TABLE_SPEC} {{", *preamble]
    for name, head in heads.items():
        lines.append(f"\tchain {name} {{")
        lines.append(f"\t\t{head}")
        lines.extend(f"\t\t{rule}" for rule in (established if name == "forward" else []) + chains[name])
        lines.append("\t}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_replace(table_text: str | None) -> str:
    """nft input that replaces our table with TABLE_TEXT (or removes it) in one transaction.

    "table X {}" first makes the delete valid when the table does not exist yet; nothing outside our table is
    named, so every other table of the ruleset stays as it is.
    """
    text = f"{HEADER}table {TABLE_SPEC} {{}}\ndelete table {TABLE_SPEC}\n"
    return text + (table_text or "")


# --- comparing with the kernel ---------------------------------------------------------------------------


def normalise_listing(json_text: str) -> list:
    """`nft -j list table|ruleset` output without handles and metainfo: equal lists mean equal tables."""
    items = json.loads(json_text).get("nftables", [])

    def strip(value):
        if isinstance(value, dict):
            return {key: strip(item) for key, item in value.items() if key != "handle"}
        if isinstance(value, list):
            return [strip(item) for item in value]
        return value

    return [strip(item) for item in items if "metainfo" not in item]
