# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: the declared flows accepted beside Docker. Not a public API.
"""Docker sets `ip filter FORWARD` to policy drop and sends every forwarded packet through DOCKER-USER first: the
chain Docker documents for the host's own rules. We keep our accepts in a chain of our own, NETREACH-NAT, and put
one jump to it at the top of DOCKER-USER: loading the chain again (iptables-restore --noflush flushes a chain it
declares) and adding the jump only when it is missing is idempotent, at apply and at boot alike. NETREACH-NAT
accepts exactly the declared flows: the DNATed connections of each port forward (both directions: conntrack's DNAT
state) and the traffic of each masquerade and SNAT entry (out, and its replies). Rendered as `iptables -S` prints
rules; `normalise` makes the two comparable. Pure functions: the plan runs the commands."""

from __future__ import annotations

from ansible_collections.netreach.tunnels.plugins.module_utils._nat import NatRules

DOCKER_USER = "DOCKER-USER"
CHAIN = "NETREACH-NAT"
TOOLS = {"ip": ("iptables", "iptables-restore"), "ip6": ("ip6tables", "ip6tables-restore")}


def _ifname(name: str) -> str:
    return name[:-1] + "+" if name.endswith("*") else name


def _ports(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}:{last}"


def _accept(*parts: str) -> str:
    return " ".join(part for part in parts if part) + " -j ACCEPT"


def render_chain(rules: NatRules, family: str) -> list[str]:
    """The rules of NETREACH-NAT for FAMILY (ip or ip6), as `iptables -S` prints them (without -A CHAIN)."""
    lines = []
    for forward in rules.port_forwards:
        if forward.family != family:
            continue
        ports = str(forward.to_port) if forward.to_port else _ports(forward.port_first, forward.port_last)
        match = f"-p {forward.proto} -m {forward.proto}"
        lines.append(_accept(f"-s {forward.source}" if forward.source else "", f"-d {forward.to_addr}",
                             f"-i {_ifname(forward.in_interface)}" if forward.in_interface else "", match,
                             f"--dport {ports} -m conntrack --ctstate DNAT"))
        lines.append(_accept(f"-s {forward.to_addr}", match, f"--sport {ports} -m conntrack --ctstate DNAT"))
    for entry in rules.masquerade + rules.snat:
        if family not in entry.families:
            continue
        out = _ifname(entry.out_interface)
        lines.append(_accept(f"-s {entry.source}" if entry.source else "", f"-o {out}"))
        lines.append(_accept(f"-d {entry.source}" if entry.source else "", f"-i {out}",
                             "-m conntrack --ctstate RELATED,ESTABLISHED"))
    return lines


def render_restore(chain: list[str]) -> str:
    """iptables-restore --noflush input: NETREACH-NAT created or flushed, then filled, in one transaction."""
    return "\n".join(["*filter", f":{CHAIN} - [0:0]"] + [f"-A {CHAIN} {rule}" for rule in chain] + ["COMMIT"]) + "\n"


def render_jump(tool: str) -> str:
    """Shell: the jump to our chain at the top of DOCKER-USER, added only when it is missing."""
    return f"{tool} -C {DOCKER_USER} -j {CHAIN} 2>/dev/null || {tool} -I {DOCKER_USER} 1 -j {CHAIN}"


def render_removal(tool: str) -> str:
    """Shell: the jump and our chain taken back; Docker's own rules stay as they are."""
    return (f"while {tool} -D {DOCKER_USER} -j {CHAIN} 2>/dev/null; do :; done; "
            f"{tool} -F {CHAIN} 2>/dev/null; {tool} -X {CHAIN} 2>/dev/null; true")


def render_unit(restores: list[tuple[str, str, str]]) -> str:
    """A unit that loads our chains again after docker.service starts (at boot). RESTORES: (tool, restore, file)."""
    starts = "".join(f"ExecStart={restore} --noflush {path}\nExecStart=/bin/sh -c '{render_jump(tool)}'\n"
                     for tool, restore, path in restores)
    return f"""\
# netreach.tunnels nat_rules: the declared flows accepted in Docker's DOCKER-USER chain, again after Docker starts.
[Unit]
Description=netreach gateway: the declared flows accepted beside Docker (DOCKER-USER)
After=docker.service

[Service]
Type=oneshot
RemainAfterExit=yes
{starts}
[Install]
WantedBy=docker.service
"""


def normalise(rule: str) -> str:
    """A rule in one spelling: host prefixes (/32, /128) and quotes dropped, as `iptables -S` may print them."""
    words = []
    for word in rule.replace('"', "").split():
        words.append(word[:-3] if word.endswith("/32") else word[:-4] if word.endswith("/128") else word)
    return " ".join(words)


def listed(listing: str, chain: str = CHAIN) -> list[str]:
    """The rules of CHAIN in `iptables -S CHAIN` output, normalised, without the leading -A CHAIN."""
    prefix = f"-A {chain} "
    return [normalise(line[len(prefix):]) for line in listing.splitlines() if line.startswith(prefix)]


def docker_user_families(chains: list[dict]) -> list[str]:
    """The families (ip, ip6) whose `filter` table Docker owns with a dropping FORWARD: where our chain goes."""
    return sorted({c["table"].split()[0] for c in chains if c["owner"] == "docker" and c["chain"] == "FORWARD"
                   and c["table"].split()[0] in TOOLS})
