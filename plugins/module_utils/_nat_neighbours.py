# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: what else filters the gateway's packets. Not a public API.
"""The gateway's neighbours read from `nft -j list ruleset`: every foreign base chain on a hook our table uses
(prerouting, forward, postrouting) that can drop what we forward - its policy is drop, or its last rule ends in
drop or reject - with a guess at who owns it (Docker, firewalld, ufw). Pure functions: the plan runs the query."""

from __future__ import annotations

import json

from ansible_collections.netreach.tunnels.plugins.module_utils._nat import FAMILY, TABLE

HOOKS = ("prerouting", "forward", "postrouting")
DROPS = ("drop", "reject")


def _verdict(rule: dict) -> str | None:
    """The verdict a rule ends in: drop, reject (nft's own or iptables-nft's xt target), another, or None."""
    expr = rule.get("expr") or []
    if not expr or not isinstance(expr[-1], dict):
        return None
    last = expr[-1]
    if "xt" in last and isinstance(last["xt"], dict) and last["xt"].get("type") == "target":
        return str(last["xt"].get("name", "")).lower() or None
    for verdict in ("drop", "reject", "accept", "return", "jump", "goto", "queue"):
        if verdict in last:
            return verdict
    return None


def _owner(family: str, table: str, chains: set[tuple[str, str, str]]) -> str | None:
    names = {name for fam, tab, name in chains if (fam, tab) == (family, table)}
    if table == "firewalld":
        return "firewalld"
    if "DOCKER-USER" in names:
        return "docker"
    if any(name.startswith("ufw") for name in names):
        return "ufw"
    return None


def _items(listing: str | list) -> list:
    """The items of `nft -j list ruleset`, from its text or already parsed (a run parses the listing once)."""
    return listing if isinstance(listing, list) else json.loads(listing or "{}").get("nftables", [])


def dropping_chains(listing: str | list) -> list[dict]:
    """Foreign base chains on our hooks that may drop forwarded traffic, in the kernel's order of priority."""
    items = _items(listing)
    chains, last_rule = {}, {}
    for item in items:
        if "chain" in item:
            chain = item["chain"]
            chains[(chain.get("family"), chain.get("table"), chain.get("name"))] = chain
        elif "rule" in item:
            rule = item["rule"]
            last_rule[(rule.get("family"), rule.get("table"), rule.get("chain"))] = rule
    found = []
    for key, chain in chains.items():
        family, table, name = key
        if (family, table) == (FAMILY, TABLE) or chain.get("hook") not in HOOKS:
            continue
        policy = chain.get("policy", "accept")
        ends_in = _verdict(last_rule[key]) if key in last_rule else None
        if policy != "drop" and ends_in not in DROPS:
            continue
        found.append({"table": f"{family} {table}", "chain": name, "hook": chain["hook"],
                      "priority": chain.get("prio", 0), "policy": policy, "ends_in": ends_in,
                      "owner": _owner(family, table, set(chains))})
    return sorted(found, key=lambda entry: (HOOKS.index(entry["hook"]), entry["priority"], entry["table"]))


def filter_chains(listing: str | list, name: str) -> list[str]:
    """The families (ip, ip6) whose iptables `filter` table has a chain NAME (DOCKER-USER, ours beside it)."""
    items = _items(listing)
    return sorted({item["chain"].get("family") for item in items if "chain" in item
                   and item["chain"].get("table") == "filter" and item["chain"].get("name") == name
                   and item["chain"].get("family") in ("ip", "ip6")})


def ufw_chains(listing: str | list) -> bool:
    """Whether ufw's chains are loaded (ufw-before-forward in ip filter, ufw6-before-forward in ip6 filter)."""
    items = _items(listing)
    return any("chain" in item and item["chain"].get("table") == "filter"
               and item["chain"].get("name") in ("ufw-before-forward", "ufw6-before-forward") for item in items)


def neighbours(listing: str | list, nftables_service: tuple[bool, bool, bool], firewalld: tuple[bool, bool],
               ufw_enabled: bool = False) -> dict:
    """The result's `neighbours`: nftables.service (installed, enabled, active), firewalld (active, enabled), ufw
    (enabled in ufw.conf, its chains loaded), Docker's DOCKER-USER (and where our chain beside it is), the dropping
    chains."""
    installed, enabled, active = nftables_service
    return {"nftables_service": {"installed": installed, "enabled": enabled, "active": active},
            "firewalld": {"active": firewalld[0], "enabled": firewalld[1]},
            "ufw": {"enabled": ufw_enabled, "active": ufw_chains(listing)},
            "docker": {"docker_user": filter_chains(listing, "DOCKER-USER"),
                       "accepted_in": filter_chains(listing, "NETREACH-NAT")},
            "dropping_chains": dropping_chains(listing)}
