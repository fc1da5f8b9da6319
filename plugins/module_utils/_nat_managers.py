# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: the declared flows accepted by firewalld and ufw. Not a public API.
"""firewalld and ufw each keep a forward chain of their own that rejects or drops what they were not told about;
both are told through their own configuration, and their tables stay theirs.

firewalld: one policy of ours, /etc/firewalld/policies/netreach-nat.xml, from any zone to any zone, accepting the
traffic of each masquerade and SNAT entry (by source; all of it for an entry without a source). firewalld's forward
chain accepts DNATed connections (`ct status dnat accept`) and replies of established ones by itself, so the port
forwards need no rule there. firewalld reads the policy at every start and `--reload`.

ufw: a managed block in /etc/ufw/before.rules (IPv4) and before6.rules (IPv6), the files ufw-framework(8) tells
administrators to edit, appending to ufw's own ufw-before-forward chain exactly the rules NETREACH-NAT holds beside
Docker (each forward's DNATed connections, each masquerade and SNAT entry's traffic and replies). ufw loads them at
every start and `ufw reload`. Pure functions: the plan runs the commands."""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from ansible_collections.netreach.tunnels.plugins.module_utils._blocks import block, cut_block
from ansible_collections.netreach.tunnels.plugins.module_utils._nat import NatRules
from ansible_collections.netreach.tunnels.plugins.module_utils._nat_docker import render_chain

POLICY = "netreach-nat"
BEGIN = "# BEGIN netreach.tunnels nat_rules: the declared flows (do not edit; the next run rewrites this block)"
END = "# END netreach.tunnels nat_rules"
# ufw's files and its chain in each: (file name under /etc/ufw, chain, iptables tool).
UFW = {"ip": ("before.rules", "ufw-before-forward", "iptables"),
       "ip6": ("before6.rules", "ufw6-before-forward", "ip6tables")}
# before*.rules end their *filter section with this comment and COMMIT: our block goes right before them.
UFW_ANCHOR = "# don't delete the 'COMMIT' line"


def policy_rules(rules: NatRules) -> list[str]:
    """The rich rules of our policy, as `firewall-cmd --info-policy` lists them; [] when nothing needs one."""
    lines = []
    for entry in rules.masquerade + rules.snat:
        if entry.source is None:
            return ["(target ACCEPT)"]
        line = f'rule family="{"ipv4" if entry.source.version == 4 else "ipv6"}" source address="{entry.source}" accept'
        if line not in lines:
            lines.append(line)
    return lines


def render_policy(rules: NatRules) -> str | None:
    """Our firewalld policy (XML), or None when the declaration needs none (port forwards only)."""
    lines = policy_rules(rules)
    if not lines:
        return None
    target = "ACCEPT" if lines == ["(target ACCEPT)"] else "CONTINUE"
    xml = ['<?xml version="1.0" encoding="utf-8"?>',
           "<!-- netreach.tunnels nat_rules: the declared masquerade and SNAT traffic; rewritten by every run. -->",
           f'<policy target="{target}" priority="-1">',
           f"  <short>{POLICY}</short>",
           "  <description>netreach.tunnels nat_rules: forwarded traffic of the declared masquerade and SNAT "
           "entries</description>",
           '  <ingress-zone name="ANY"/>',
           '  <egress-zone name="ANY"/>']
    if target == "CONTINUE":
        for entry in rules.masquerade + rules.snat:
            family = "ipv4" if entry.source.version == 4 else "ipv6"
            rule = f'  <rule family="{family}"><source address={quoteattr(str(entry.source))}/><accept/></rule>'
            if rule not in xml:
                xml.append(rule)
    xml.append("</policy>")
    return "\n".join(xml) + "\n"


def policy_loaded(info: str, rules: NatRules) -> str | None:
    """`firewall-cmd --info-policy` output checked against the declaration: None, or what is wrong."""
    if not info.startswith(POLICY):
        return f"firewalld has no policy {POLICY} after its reload"
    wanted = policy_rules(rules)
    if wanted == ["(target ACCEPT)"]:
        return None if "target: ACCEPT" in info else f"firewalld's policy {POLICY} does not accept"
    missing = [line for line in wanted if line not in info]
    return f"firewalld's policy {POLICY} lacks {'; '.join(missing)}" if missing else None


def ufw_lines(rules: NatRules | None, family: str) -> list[str]:
    """The lines of our block in ufw's before*.rules of FAMILY (ip, ip6)."""
    if rules is None:
        return []
    chain = UFW[family][1]
    return [f"-A {chain} {rule}" for rule in render_chain(rules, family)]


def ufw_text(text: str, lines: list[str]) -> str:
    """TEXT (a before*.rules) with our block holding LINES right before its final COMMIT, or without it."""
    without, position = cut_block(text, BEGIN, END)
    if not lines:
        return without
    out = without.splitlines(keepends=True)
    if position is None:
        anchors = [i for i, line in enumerate(out) if line.startswith(UFW_ANCHOR)]
        commits = [i for i, line in enumerate(out) if line.strip() == "COMMIT"]
        position = anchors[-1] if anchors else commits[-1] if commits else len(out)
    return "".join(out[:position]) + block(lines, BEGIN, END) + "".join(out[position:])


def ufw_enabled(conf: str | None) -> bool:
    """Whether /etc/ufw/ufw.conf says ENABLED=yes (what `ufw enable` writes; ufw.service loads the rules at boot)."""
    for line in (conf or "").splitlines():
        key, _sep, value = line.partition("=")
        if key.strip() == "ENABLED":
            return value.strip().strip("\"'").lower() == "yes"
    return False
