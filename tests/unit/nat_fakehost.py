"""The fake gateway of the nat_rules plan tests: a fake kernel answers nft, iptables, systemctl, systemd-run and
unshare; the confirm run is nat_rules' own (`confirm: TOKEN`) against the same fake root (tests/unit/fakehost.py
stands the temporary directory for '/')."""
from __future__ import annotations

import json
import os
import re

from ansible_collections.netreach.tunnels.plugins.module_utils._engine import Plan
from ansible_collections.netreach.tunnels.plugins.module_utils._nat import parse_nat
from ansible_collections.netreach.tunnels.plugins.module_utils._nat_apply import plan_nat
from ansible_collections.netreach.tunnels.plugins.module_utils._nat_confirm import plan_confirm
from fakehost import FakeModule, snapshot, systemctl_show, unit_properties

NFT = "/usr/sbin/nft"
DECLARED = dict(masquerade=[{"out_interface": "eth0", "source": "10.10.0.0/24"}], snat=[],
                port_forwards=[{"proto": "tcp", "port": 8080, "to": "10.10.0.5:80", "in_interface": "eth0"}],
                forward_policy="drop", ip_forward=True)


class Kernel:
    """What the fake host's kernel and systemd hold: our table (nft input text) and the enabled units."""

    def __init__(self, root: str, proc: dict | None = None) -> None:
        self.root = root
        self.table: str | None = None
        self.enabled: set[str] = set()
        self.foreign: list[dict] = []  # other tables' items of `nft -j list ruleset`
        self.units: dict[str, str] = {}  # LoadState of units that exist
        self.chains: dict[str, list[str]] = {}  # NETREACH-NAT's rules by family, where it exists
        self.jumps: set[str] = set()  # families whose DOCKER-USER jumps to NETREACH-NAT
        self.tested: list[str] = []  # files iptables-restore --test checked
        self.active: set[str] = set()  # units whose ActiveState is active
        self.firewalld_policy: str | None = None  # our policy as firewalld loaded it at its last reload
        self.ufw_chains: dict[str, list[str]] = {}  # ufw's before-forward rules by chain, as at its last reload
        for name, value in (proc or {"net/ipv4/ip_forward": "1", "net/ipv6/conf/all/forwarding": "1"}).items():
            path = os.path.join(root, "proc/sys", name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as stream:
                stream.write(value + "\n")
        os.makedirs(os.path.join(root, "run/systemd/system"), exist_ok=True)

    @staticmethod
    def listing(table: str | None) -> tuple[str, str]:
        # nft 1.0.6's JSON lists no table comment; its text does.
        rules = [line.strip() for line in (table or "").splitlines() if not line.strip().startswith('comment "')]
        items = [{"metainfo": {"version": "1.0.6"}}, {"table": {"family": "inet", "name": "netreach", "handle": 7}}]
        items += [{"rule": {"expr": rule, "handle": i}} for i, rule in enumerate(rules)]
        return json.dumps({"nftables": items}), table or ""

    @staticmethod
    def table_of(replace: str) -> str | None:
        return replace.split("delete table inet netreach\n", 1)[1] or None

    def real(self, path: str) -> str:
        return os.path.join(self.root, path.lstrip("/"))

    def run(self, args: list[str], data: str | None) -> tuple[int, str, str]:
        if args[:5] == [NFT, "-j", "-t", "list", "ruleset"]:
            ours = json.loads(self.listing(self.table)[0])["nftables"][1:] if self.table else []
            ours += [{"chain": {"family": family, "table": "filter", "name": "NETREACH-NAT"}} for family in self.chains]
            return 0, json.dumps({"nftables": [{"metainfo": {}}] + self.foreign + ours}), ""
        family = "ip6" if args[0].split("/")[-1].startswith("ip6") else "ip"
        if args[0].endswith("tables-restore") and "--test" in args:
            self.tested.append(args[-1].rsplit("/", 1)[-1])
            return 0, "", ""
        if args[0].endswith("tables-restore"):
            self.chains[family] = [line[len("-A NETREACH-NAT "):] for line in data.splitlines() if line.startswith("-A ")]
            return 0, "", ""
        if args[0].endswith("tables") and args[1] == "-S" and args[2].startswith("ufw"):
            return 0, "".join(f"-A {args[2]} {rule}\n" for rule in self.ufw_chains.get(args[2], [])), ""
        if args[0].endswith("tables") and args[1] == "-S":
            if family not in self.chains:
                return 1, "", "iptables: No chain/target/match by that name."
            return 0, "-N NETREACH-NAT\n" + "".join(f"-A NETREACH-NAT {rule}\n" for rule in self.chains[family]), ""
        if args[0].endswith("tables") and args[1] == "-C":
            return (0 if family in self.jumps else 1), "", ""
        if args[:2] == ["/bin/sh", "-c"]:
            family = "ip6" if "ip6tables" in args[2] else "ip"
            if " -I DOCKER-USER" in args[2]:
                self.jumps.add(family)
            elif " -X NETREACH-NAT" in args[2]:
                self.jumps.discard(family)
                self.chains.pop(family, None)
            return 0, "", ""
        if args[:2] == ["systemctl", "show"] and args[2] == "--property=ActiveState,UnitFileState,LoadState":
            return systemctl_show(lambda unit: unit_properties(unit in self.active, unit in self.enabled,
                                                               unit in self.units))(args)
        if args[0].endswith("firewall-cmd") or args[0].endswith("ufw"):
            return self.manager(args)
        if args[:3] == ["systemctl", "show", "--property=LoadState"]:
            return 0, self.units.get(args[-1], "not-found") + "\n", ""
        if args[:2] == [NFT, "-j"] or args[:2] == [NFT, "list"]:
            if self.table is None:
                return 1, "", "Error: No such file or directory; did you mean table 'netreach'?"
            listing, text = self.listing(self.table)
            return 0, listing if args[1] == "-j" else text, ""
        if args[0].endswith("unshare"):
            return 0, self.listing(self.table_of(data))[1], ""
        if args[:2] == [NFT, "-f"]:
            with open(self.real(args[2]), encoding="utf-8") as stream:
                self.table = self.table_of(stream.read())
            return 0, "", ""
        if args[:2] in (["systemctl", "enable"], ["systemctl", "reenable"], ["systemctl", "disable"]):
            (self.enabled.discard if args[1] == "disable" else self.enabled.add)(args[2])
        if args[:2] == ["systemctl", "is-enabled"]:
            return (0 if args[-1] in self.enabled else 1), "", ""
        return self.timers(args)

    def timers(self, args: list[str]) -> tuple[int, str, str]:
        """systemd-run arms a timer (active until stopped); a rollback service is never found running."""
        if args[0] == "systemd-run":
            self.active.add(next(arg for arg in args if arg.startswith("--unit="))[len("--unit="):] + ".timer")
        elif args[:2] == ["systemctl", "stop"]:
            self.active = {unit for unit in self.active if not re.fullmatch(args[2].replace("*", ".*"), unit)}
        elif args[:2] in (["systemctl", "start"], ["systemctl", "restart"]):
            self.active.add(args[2])
        elif args[:3] == ["systemctl", "disable", "--now"]:
            self.active.discard(args[3])
            self.enabled.discard(args[3])
        elif args[:3] == ["systemctl", "is-active", "--quiet"]:
            return (0 if args[3] in self.active else 3), "", ""
        return 0, "", ""

    def manager(self, args: list[str]) -> tuple[int, str, str]:
        """firewall-cmd --reload / --info-policy and ufw reload, reading their files in the fake root."""
        if args[1] == "--reload":
            path = self.real("/etc/firewalld/policies/netreach-nat.xml")
            self.firewalld_policy = open(path, encoding="utf-8").read() if os.path.exists(path) else None
        elif args[1].startswith("--info-policy"):
            if self.firewalld_policy is None:
                return 112, "", "Error: INVALID_POLICY: netreach-nat"
            target = re.search(r'target="(\w+)"', self.firewalld_policy).group(1)
            rules = re.findall(r'<rule family="(\w+)"><source address="([^"]+)"/><accept/></rule>', self.firewalld_policy)
            return 0, f"netreach-nat (active)\n  target: {target}\n  rich rules: \n" + "".join(
                f'\trule family="{family}" source address="{source}" accept\n' for family, source in rules), ""
        elif args[1] == "reload":
            for name, chain in (("before.rules", "ufw-before-forward"), ("before6.rules", "ufw6-before-forward")):
                with open(self.real(f"/etc/ufw/{name}"), encoding="utf-8") as stream:
                    self.ufw_chains[chain] = [line.split(" ", 2)[2] for line in stream.read().splitlines()
                                              if line.startswith(f"-A {chain} ")]
        return 0, "", ""


class NatModule(FakeModule):
    def __init__(self, kernel: Kernel, **kwargs) -> None:
        super().__init__(kernel.root, **kwargs)
        self.kernel = kernel

    def run_command(self, args, data=None, **_kwargs):
        args = [str(arg) for arg in args]
        self.commands.append(args)
        return self.kernel.run(args, data)


def run(kernel: Kernel, check: bool = False, state: str = "present", persist: bool = True, timeout: int = 30,
        metrics: tuple[str | None, int] = (None, 15), **changes) -> tuple[dict, NatModule]:
    module = NatModule(kernel, check_mode=check)
    rules = parse_nat({**DECLARED, **changes}) if state == "present" else None
    plan = Plan(module)
    return plan.commit(**plan_nat(plan, rules, persist, timeout, metrics)), module


def confirm(kernel: Kernel, result: dict, check: bool = False) -> tuple[dict, NatModule]:
    """nat_rules' confirm run (as the action plugin starts it over a fresh connection) for RESULT's change."""
    module = NatModule(kernel, check_mode=check)
    plan = Plan(module)
    plan_confirm(plan, result["pending_confirm"]["token"])
    confirmed = plan.commit(confirmed=True)
    assert confirmed["changed"] and confirmed["confirmed"]
    return confirmed, module


def files(root) -> dict:
    """Our files and our staged files, by path relative to the fake root."""
    return {os.path.relpath(path, str(root)): entry for path, entry in snapshot(str(root)).items()
            if "/netreach" in path or "sysctl.d" in path or "systemd/system/netreach" in path}
