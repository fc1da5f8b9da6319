#!/usr/bin/python
# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: ssh_tunnels
short_description: All of a host's SSH tunnels in one call, the undeclared ones removed
version_added: 0.2.0
description:
  - Declares every SSH tunnel of a host at once, each exactly as M(netreach.tunnels.ssh_tunnel) would (the same
    files, unit, key and pinned host keys), as one plan; check and diff mode cover all the tunnels together.
  - With O(exclusive=true) the netreach tunnels on the host that O(tunnels) does not declare are removed first
    (their units and files; their keys stay), so a renamed tunnel never finds its old self holding a port.
  - With O(keys_only=true) only the tunnels' key pairs (and their O(tunnels[].run_as) users) are made, for the
    servers to authorise them before the tunnels start; nothing else is touched.
  - With O(keys_first=true) the full declaration is given, but again only the keys are made (or reused); the rest
    of the declaration is planned and not carried out, and the call reports whether the full call would change
    anything beyond the keys (RV(pending)) and the host keys each tunnel pins now (RV(pinned)). The fleet
    playbook calls it before the servers' play and runs the full call only on the clients that need it.
  - One call costs about one task whatever the number of tunnels; that is what the fleet playbooks use.
author: netreach developers (@netreach)
options:
  tunnels:
    description:
      - The host's tunnels; each item takes the options of M(netreach.tunnels.ssh_tunnel), documented there in
        full. A name may appear once.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Tunnel name, C([a-z0-9][a-z0-9_-]*).
        type: str
        required: true
      server:
        description: Host to SSH to (required unless O(tunnels[].state=absent)).
        type: str
      port:
        description: SSH port of the server.
        type: int
        default: 22
      user:
        description: Account on the server.
        type: str
        default: tunnel
      identity_file:
        description: Private key; default C(/etc/netreach/tunnels/NAME/id_ed25519).
        type: path
      known_hosts:
        description: Pinned host keys as known_hosts lines.
        type: list
        elements: str
        default: []
      jump_hosts:
        description: "ProxyJump chain, each C([user@]host[:port])."
        type: list
        elements: str
        default: []
      proxy:
        description: The proxy on the way to the first SSH hop, as in M(netreach.tunnels.ssh_tunnel).
        type: dict
        suboptions:
          type:
            description: Proxy protocol.
            type: str
            choices: [http, socks5]
            default: http
          host:
            description: Proxy host.
            type: str
            required: true
          port:
            description: Proxy port.
            type: int
            required: true
          username:
            description: Proxy user name.
            type: str
          password:
            description: Proxy password; never shown in a diff or a log.
            type: str
          auth:
            description: V(ntlm) goes through the local NTLM hop of M(netreach.tunnels.client_proxy), as in
              M(netreach.tunnels.ssh_tunnel).
            type: str
            choices: [basic, ntlm]
            default: basic
            version_added: 0.3.0
          domain:
            description: The NTLM domain, unless the user name is C(DOMAIN\user).
            type: str
            version_added: 0.3.0
          hop_port:
            description: The loopback port of the local NTLM hop.
            type: int
            default: 3130
            version_added: 0.3.0
      engine:
        description: C(ssh) or C(autossh).
        type: str
        choices: [ssh, autossh]
        default: ssh
      keepalive_interval:
        description: ServerAliveInterval in seconds.
        type: int
        default: 2
      keepalive_count_max:
        description: ServerAliveCountMax.
        type: int
        default: 3
      connect_timeout:
        description: ConnectTimeout in seconds.
        type: int
        default: 10
      restart_delay:
        description: Seconds before a restart.
        type: int
        default: 1
      restart_max_delay:
        description: Upper bound of the restart backoff in seconds.
        type: int
        default: 30
      run_as:
        description: Unprivileged system user that runs the tunnel.
        type: str
        default: netreach-tunnel
      state:
        description: As in M(netreach.tunnels.ssh_tunnel); C(absent) removes this tunnel.
        type: str
        choices: [started, stopped, restarted, present, absent]
        default: started
      enabled:
        description: Start the tunnel at boot.
        type: bool
        default: true
      remove_key:
        description: With O(tunnels[].state=absent), also remove the identity file.
        type: bool
        default: false
      ssh_options:
        description:
          - Extra ssh_config keywords from an allow-list, as O(netreach.tunnels.ssh_tunnel#module:ssh_options)
            describes (host-key and command keywords are refused).
        type: dict
        default: {}
      rollback_timeout:
        description:
          - Seconds a change of this tunnel waits for the controller's confirmation over a fresh connection before
            the host puts the previous tunnel back, as O(netreach.tunnels.ssh_tunnel#module:rollback_timeout)
            describes; C(0) (no confirm step) or 10 to 3600. The changes of one run are confirmed together.
        type: int
        default: 0
        version_added: 0.3.0
      local_forwards:
        description:
          - C(-L) forwards, as O(netreach.tunnels.ssh_tunnel#module:local_forwards) describes (a TCP or, since
            0.3.0, a Unix-socket target).
        type: list
        elements: raw
        default: []
      remote_forwards:
        description:
          - C(-R) forwards, as O(netreach.tunnels.ssh_tunnel#module:remote_forwards) describes (since 0.3.0 with
            Unix-socket ends).
        type: list
        elements: raw
        default: []
      dynamic_forwards:
        description: C(-D) SOCKS forwards.
        type: list
        elements: raw
        default: []
  exclusive:
    description:
      - Remove every netreach tunnel on the host (a unit C(netreach-tunnel@NAME.service) with a valid name) that
        O(tunnels) does not declare. Names are validated and paths confined as for O(tunnels[].state=absent); a
        symbolic link where a unit or a tunnel directory belongs fails the run and nothing changes.
    type: bool
    default: false
  keys_only:
    description:
      - Only make the key pairs of O(tunnels) (their name, identity_file and run_as are read).
      - Mutually exclusive with O(keys_first).
    type: bool
    default: false
  keys_first:
    description:
      - Only make the key pairs of O(tunnels) (and their run_as users), as O(keys_only) does, but from the full
        declaration, which is validated and planned as a full call would plan it (O(exclusive) and the metrics
        options included) without being carried out. RV(pending) says whether the full call would change
        anything beyond the keys (a tunnel's files, unit or state, the removal of an undeclared tunnel, the
        metrics timer), RV(pinned) the known_hosts lines each tunnel pins now.
      - Each tunnel is planned with the known_hosts it pins now, not with O(tunnels[].known_hosts), since the host keys
        the full call pins may not be known yet (the fleet playbook gathers the servers' host keys later), so the
        caller compares RV(pinned) with them (the P(netreach.tunnels.tunnel_clients_to_run#filter) filter does).
      - A declaration the full call would refuse fails here, before any key is made.
    type: bool
    default: false
    version_added: 0.3.0
  metrics_dir:
    description:
      - node_exporter's textfile directory (Debian's is C(/var/lib/prometheus/node-exporter)). With it,
        C(netreach-tunnel-metrics.timer) writes C(netreach_tunnels.prom) there every O(metrics_interval) seconds,
        atomically, with the state of every netreach tunnel of the host (C(netreach_tunnel_up),
        C(netreach_forward_up), C(netreach_tunnel_restarts_total), C(netreach_tunnel_up_since_seconds)).
      - Without it (the default) the timer, its program and the textfile it wrote are removed, if present.
      - The directory is made (0755) when it is missing; an absolute path of plain components.
      - Ignored with O(keys_only=true); with O(keys_first=true) only planned.
    type: path
    version_added: 0.3.0
extends_documentation_fragment:
  - netreach.tunnels.attributes
  - netreach.tunnels.metrics
notes:
  - Tunnels not made by this collection are never touched, with O(exclusive) too.
  - The metrics program probes each tunnel (its unit runs and holds an established TCP connection; each local or
    dynamic forward's listener answers); the docs site's metrics page says what each metric means.
"""

EXAMPLES = r"""
- name: Exactly these two tunnels on this host
  netreach.tunnels.ssh_tunnels:
    exclusive: true
    tunnels:
      - name: news
        server: newshost.example.org
        known_hosts: ["newshost.example.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleExampleExampleExampleExampleEx"]
        local_forwards: ["12345:localhost:119"]
      - name: socks
        server: bastion.example.org
        known_hosts: ["bastion.example.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleExampleExampleExampleExampleEx"]
        dynamic_forwards: ["127.0.0.1:3128"]
    metrics_dir: /var/lib/prometheus/node-exporter
  register: tunnels
"""

RETURN = r"""
tunnels:
  description:
    - Per tunnel (declared, or removed by O(exclusive)) C(changed), C(unit), C(state), C(declared); for a tunnel
      that is not absent also C(public_key) (empty in check mode before the key exists), C(command) and
      C(forwards). With O(keys_only) or O(keys_first) C(changed), C(identity_file) and C(public_key).
  returned: success
  type: dict
  sample:
    news:
      changed: false
      unit: netreach-tunnel@news.service
      state: started
      declared: true
      public_key: ssh-ed25519 AAAAC3... netreach-tunnel-news
public_keys:
  description: Tunnel name to public key, for the server end (the tunnels that are not absent).
  returned: success
  type: dict
pending:
  description:
    - With O(keys_first), whether the full call (without O(keys_first)) would change anything on the host beyond
      the keys, each tunnel's known_hosts as RV(pinned) says. V(false) on a settled host.
  returned: with O(keys_first)
  type: bool
  version_added: 0.3.0
pinned:
  description:
    - With O(keys_first), tunnel name to the known_hosts lines that tunnel pins on the host now (an empty list
      before its first run), for the declared tunnels that are not absent.
  returned: with O(keys_first)
  type: dict
  sample:
    news: ["bastion ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleExampleExampleExampleExampleEx"]
  version_added: 0.3.0
metrics:
  description: Whether the metrics timer, its service or its program changed in this run.
  returned: success
  type: bool
  version_added: 0.3.0
removed:
  description: The tunnels this run removes (or would, in check mode); state=absent, or undeclared with O(exclusive).
  returned: success
  type: list
  elements: str
confirmed:
  description: With a O(tunnels[].rollback_timeout), whether every armed change was confirmed over a fresh connection.
  returned: when a change was armed
  type: bool
  version_added: 0.3.0
rolled_back:
  description: The changes the host put back by itself (C(tunnel NAME)); the task failed.
  returned: when an armed change was not confirmed
  type: list
  elements: str
  version_added: 0.3.0
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.netreach.tunnels.plugins.module_utils._declaration import DeclarationError
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_many import (
    SharedPlan,
    parse_tunnels,
    plan_keys,
    plan_tunnels,
    proxy_password,
    tunnel_argument_spec,
)
from ansible_collections.netreach.tunnels.plugins.module_utils._metrics_plan import metrics_argument_spec, parse_metrics
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_keys_first import keys_first
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_metrics_plan import plan_metrics


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            tunnels=dict(type="list", elements="dict", default=[], options=tunnel_argument_spec()),
            exclusive=dict(type="bool", default=False),
            keys_only=dict(type="bool", default=False),
            keys_first=dict(type="bool", default=False),
            **metrics_argument_spec(),
        ),
        mutually_exclusive=[("keys_only", "keys_first")],
        supports_check_mode=True,
    )
    items, keys_only = module.params["tunnels"], module.params["keys_only"]
    try:
        requests = parse_tunnels(items, keys_only)
        metrics_dir, metrics_interval = parse_metrics(module.params["metrics_dir"], module.params["metrics_interval"])
    except DeclarationError as exc:
        module.fail_json(msg=str(exc), field=exc.field)
    secrets = [proxy_password(item) for item in items]
    if module.params["keys_first"]:
        result = keys_first(module, items, requests, module.params["exclusive"], metrics_dir, metrics_interval,
                            secrets)
        module.exit_json(removed=[], metrics=False, **result,
                         public_keys={name: row["public_key"] for name, row in result["tunnels"].items()})
    plan = SharedPlan(module, secrets=secrets)
    if keys_only:
        report = plan_keys(plan, requests)
    else:
        report = plan_tunnels(plan, items, requests, module.params["exclusive"])
    metrics = False if keys_only else plan_metrics(plan, metrics_dir, metrics_interval)
    result = plan.commit()
    tunnels = report()
    removed = sorted(name for name, row in tunnels.items() if row.get("state") == "absent" and row["changed"])
    module.exit_json(tunnels=tunnels, removed=removed, metrics=metrics,
                     public_keys={name: row["public_key"] for name, row in tunnels.items() if "public_key" in row},
                     **result)


if __name__ == "__main__":
    main()
