#!/usr/bin/python
# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: nat_rules
short_description: Gateway NAT and port forwards as one atomic, persistent nftables table
version_added: 0.1.0
description:
  - Declares the whole NAT state of a gateway (masquerade, SNAT, port forwards, the forward filter) as the
    nftables table C(inet netreach), and replaces that table in one atomic C(nft -f) transaction.
  - Owns only its own table; never flushes the ruleset. Docker's, firewalld's and every other table stay as they are.
    A foreign chain that would drop the declared flows fails the task before any change (see O(foreign_drop)),
    never a green task with dead forwards.
  - Idempotent against the kernel itself. The declared table is loaded in a throw-away network namespace (this
    kernel's own check of the rules) and its listing compared with C(nft list table inet netreach), so a table
    changed behind Ansible's back is put right.
  - At size, the forwards of one scope (family, O(port_forwards[].in_interface), O(port_forwards[].source)) beyond
    four go through nft maps and sets, single ports through hash ones (one lookup per packet whatever their number),
    port ranges through interval ones. The table's comment holds
    digests of the rendered rules and of the kernel's listing of them, so a no-op rerun lists the ruleset without set
    elements (C(nft -t)) and our table once, and needs no scratch namespace.
  - Lockout protection. Before a change reaches the kernel, a transient systemd timer is armed that restores
    the previous table after O(rollback_timeout) seconds. The action plugin then opens a fresh connection to
    the host and confirms the change (disarms the timer). If it cannot reach the host, the host rolls back by
    itself and the task fails saying so. Only a confirmed state is persisted, so only a confirmed state boots.
  - Persistence is the unit C(netreach-nat.service), which loads C(/etc/netreach/nat/netreach.nft) early at
    boot, before C(network-pre.target).
  - With a read-only C(/proc/sys) (a gateway in a container), O(ip_forward) already as declared writes nothing at
    runtime; a value that differs fails before any change (set it in the container's sysctls).
  - Needs root with C(CAP_SYS_ADMIN) (to load the declared table in a scratch network namespace), nft, and
    systemd when O(rollback_timeout) is not 0.
author: netreach developers (@netreach)
options:
  masquerade:
    description: Traffic leaving O(masquerade[].out_interface) (from O(masquerade[].source) if given) gets the
      address of that interface. The forward filter lets this traffic out.
    type: list
    elements: dict
    default: []
    suboptions:
      out_interface:
        description: Interface the traffic leaves by; a trailing C(*) matches a prefix.
        type: str
        required: true
      source:
        description: Source network in CIDR notation; without it both IPv4 and IPv6 are masqueraded.
        type: str
  snat:
    description: Like O(masquerade) with a fixed source address O(snat[].to).
    type: list
    elements: dict
    default: []
    suboptions:
      out_interface:
        description: Interface the traffic leaves by.
        type: str
        required: true
      source:
        description: Source network in CIDR notation.
        type: str
      to:
        description: Source address to set (same IP version as O(snat[].source)).
        type: str
        required: true
  port_forwards:
    description:
      - Destination NAT of connections to the gateway's own addresses. Forwards of one protocol and family
        must not overlap on a port unless their O(port_forwards[].in_interface) or O(port_forwards[].source) differ.
    type: list
    elements: dict
    default: []
    suboptions:
      proto:
        description: C(tcp) or C(udp).
        type: str
        default: tcp
      port:
        description: Port of the gateway, C(8080), or a range C("5000-5010") that keeps the ports.
        type: raw
        required: true
      to:
        description: Target C(ADDRESS), C(ADDRESS:PORT), C(IPV6) or C([IPV6]:PORT); its IP version selects
          the packets forwarded. Without a port the port stays the same.
        type: str
        required: true
      in_interface:
        description: Forward only what arrives on this interface.
        type: str
      source:
        description: Forward only connections from this network (CIDR).
        type: str
  hairpin:
    description:
      - Let hosts of the O(masquerade) and O(snat) source networks use the port forwards through the
        gateway's addresses too (their connections to the target are masqueraded so replies return via the gateway).
    type: bool
    default: false
  forward_policy:
    description:
      - C(accept) leaves forwarding open. C(drop) forwards only established connections, the declared port
        forwards and the traffic of O(masquerade) and O(snat) entries.
      - The policy applies to every forwarded packet of the host, Docker's containers included.
    type: str
    choices: [accept, drop]
    default: accept
  ip_forward:
    description:
      - Set C(net.ipv4.ip_forward) and C(net.ipv6.conf.all.forwarding) at runtime and in
        C(/etc/sysctl.d/90-netreach-nat.conf).
      - When not given, the running values are left alone, and a C(/etc/sysctl.d/90-netreach-nat.conf) written by
        an earlier run is removed (the declaration no longer asks for it at boot).
    type: bool
  foreign_drop:
    description:
      - What to do when another table has a base chain on prerouting, forward or postrouting whose policy is
        drop or whose last rule drops or rejects (firewalld, ufw, a hand-made table) - it may drop the declared
        flows, and this module does not change other tables.
      - Docker's C(ip filter FORWARD) policy drop is handled as Docker documents it - the chain C(NETREACH-NAT),
        jumped to first from C(DOCKER-USER), accepts exactly the declared flows (each forward's DNATed
        connections, each masquerade and SNAT entry's traffic and replies), and C(netreach-nat-docker.service)
        loads it again after C(docker.service) starts at boot.
      - firewalld (active or enabled) is told through its own configuration - the policy
        C(/etc/firewalld/policies/netreach-nat.xml) (any zone to any zone) accepts the traffic of each masquerade
        and SNAT entry, and C(firewall-cmd --reload) loads it (firewalld accepts DNATed connections itself); it
        survives firewalld's reload, restart and reboot. Its table stays firewalld's; without a declaration for it
        the policy goes.
      - ufw (C(ENABLED=yes) in C(/etc/ufw/ufw.conf)) gets a managed block in C(/etc/ufw/before.rules) and
        C(before6.rules), appended to its C(ufw-before-forward) chain, accepting exactly the declared flows, then
        C(ufw reload); C(state=absent) restores those files exactly as they were.
      - C(fail) fails before changing anything, naming each such table and chain. C(ignore) applies anyway
        (when you accept the flows in that table yourself). The chains are reported in RV(neighbours) either way.
    type: str
    choices: [fail, ignore]
    default: fail
  persist:
    description:
      - Make the confirmed table the one that boots (C(netreach-nat.service), ordered after C(nftables.service)).
        C(false) removes the boot state.
      - Where C(nftables.service) is installed (its ruleset begins with C(flush ruleset)), a drop-in
        C(/etc/systemd/system/nftables.service.d/netreach-nat.conf) loads the last confirmed table again after
        every start, restart and reload of it; C(/etc/nftables.conf) is not edited.
    type: bool
    default: true
  rollback_timeout:
    description:
      - Seconds after which the host restores the previous table unless the action plugin has confirmed the
        change over a fresh connection. C(0) applies without the confirm step.
    type: int
    default: 30
  metrics_dir:
    description:
      - node_exporter's textfile directory (Debian's is C(/var/lib/prometheus/node-exporter)). With it,
        C(netreach-nat-metrics.timer) writes C(netreach_nat.prom) there every O(metrics_interval) seconds,
        atomically - C(netreach_nat_applied) (1 while the kernel holds the table this module last confirmed, that is its
        comment's digests match the kernel's listing; 0 when the table is gone or differs) and
        C(netreach_nat_forwards) (the port forwards that table declares), both labelled C(table="inet netreach").
      - A confirmed change records what the metrics compare with in C(/etc/netreach/nat-confirmed.json).
      - Without it (the default), and with O(state=absent), the timer, its program, the record and the textfile it
        wrote are removed, if present.
      - The directory is made (0755) when it is missing; an absolute path of plain components.
    type: path
    version_added: 0.3.0
  confirm:
    description:
      - Internal, set by the action plugin only (a task that sets it fails). Confirms the change with this token
        over a fresh connection. The module stops the change's rollback timer unless the rollback has already
        run, then makes the staged table the boot state (or removes our boot state) and clears the staged files,
        all through the collection's change engine.
    type: str
    version_added: 0.3.0
  state:
    description: C(present) applies the declaration; C(absent) removes our table, boot state, sysctl.d file and
      metrics timer.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - netreach.tunnels.metrics
attributes:
  check_mode:
    description: Reports what would change (the rules before and after) and changes nothing.
    support: full
  diff_mode:
    description: Shows our table as the kernel lists it before and after, and the boot state.
    support: full
  action:
    description: The action plugin confirms an applied change over a fresh connection.
    support: full
"""

EXAMPLES = r"""
- name: Masquerade the inside network and forward port 8080 of the gateway to an inside web server
  netreach.tunnels.nat_rules:
    masquerade:
      - {out_interface: eth0, source: 10.10.0.0/24}
    port_forwards:
      - {proto: tcp, port: 8080, to: "10.10.0.5:80", in_interface: eth0}
      - {proto: udp, port: "5000-5010", to: "10.10.0.6", source: 203.0.113.0/24}
      - {proto: tcp, port: 2222, to: "[fd00::5]:22"}
    forward_policy: drop
    ip_forward: true
    rollback_timeout: 30
    metrics_dir: /var/lib/prometheus/node-exporter

- name: Remove the gateway's NAT table and its boot state
  netreach.tunnels.nat_rules:
    state: absent
"""

RETURN = r"""
table:
  description: Our table as nft lists it after the run (empty with O(state=absent)).
  returned: always
  type: str
neighbours:
  description: What else filters the gateway's packets on the hooks our table uses, found at every run (check mode too).
  returned: always
  type: dict
  contains:
    nftables_service:
      description: Whether C(nftables.service) is installed, enabled and active.
      type: dict
      returned: always
    firewalld:
      description: Whether C(firewalld.service) is active and enabled (our policy is written when either is).
      type: dict
      returned: always
    ufw:
      description: Whether ufw is enabled in C(ufw.conf) (our block is written then) and its chains are loaded.
      type: dict
      returned: always
    docker:
      description: The families (C(ip), C(ip6)) with Docker's C(DOCKER-USER) chain (C(docker_user)) and those where
        our C(NETREACH-NAT) chain accepts the declared flows (C(accepted_in)).
      type: dict
      returned: always
    dropping_chains:
      description: Foreign base chains on prerouting, forward or postrouting with policy drop or a last rule that
        drops or rejects - table, chain, hook, priority, policy, ends_in, owner (docker, firewalld, ufw or null).
      type: list
      elements: dict
      returned: always
flows_changed:
  description: Whether the declared flows' state changed in this run (or would, in check mode) - the kernel's table,
    its boot state, the sysctl or a neighbour's configuration; the metrics timer and its record apart.
    C(playbooks/status.yml) calls a gateway drifted when this is true.
  returned: always
  type: bool
  version_added: 0.3.0
metrics:
  description: Whether the metrics timer, its service or its program changed in this run.
  returned: always
  type: bool
  version_added: 0.3.0
confirmed:
  description: Whether a change of the kernel's table was confirmed over a fresh connection.
  returned: when a change was applied with O(rollback_timeout) greater than 0
  type: bool
rolled_back:
  description: Whether the host restored the previous table because the change could not be confirmed.
  returned: when a change could not be confirmed
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.netreach.tunnels.plugins.module_utils._declaration import DeclarationError
from ansible_collections.netreach.tunnels.plugins.module_utils._engine import Plan
from ansible_collections.netreach.tunnels.plugins.module_utils._metrics_plan import metrics_argument_spec, parse_metrics
from ansible_collections.netreach.tunnels.plugins.module_utils._nat import (
    check_rollback_timeout,
    nat_argument_spec,
    parse_nat,
)
from ansible_collections.netreach.tunnels.plugins.module_utils._nat_confirm import plan_confirm


def main() -> None:
    module = AnsibleModule(argument_spec=dict(nat_argument_spec(), **metrics_argument_spec()), supports_check_mode=True)
    params = module.params
    if params["confirm"] is not None:
        plan = Plan(module)
        plan_confirm(plan, params["confirm"])
        module.exit_json(**plan.commit(confirmed=True))
    # Imported here: the confirm run above, inside the rollback window, needs none of the model.
    from ansible_collections.netreach.tunnels.plugins.module_utils._nat_apply import plan_nat
    try:
        check_rollback_timeout(params["rollback_timeout"])
        # Validated with state=absent too (which removes the metrics): a bad value fails either way.
        metrics = parse_metrics(params["metrics_dir"], params["metrics_interval"])
        rules = parse_nat(params) if params["state"] == "present" else None
    except DeclarationError as exc:
        module.fail_json(msg=str(exc), field=exc.field)
    plan = Plan(module)
    extras = plan_nat(plan, rules, params["persist"], params["rollback_timeout"], metrics)
    # The action plugin takes pending_confirm off the result and confirms the change over a fresh connection.
    module.exit_json(**plan.commit(**extras))


if __name__ == "__main__":
    main()
