#!/usr/bin/python
# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: ssh_tunnel
short_description: Persistent SSH tunnel (-L, -R, -D) run as a hardened systemd unit
version_added: 0.1.0
description:
  - Declares one SSH tunnel on a client and runs it as the systemd unit C(netreach-tunnel@NAME.service), which
    reconnects fast, backs off with jitter on repeated failures and never gives up.
  - Host keys are pinned in the tunnel's own known_hosts file; C(StrictHostKeyChecking=yes) always.
  - The tunnel's files live in C(/etc/netreach/tunnels/NAME/); the proxy password, if any, only in a 0600 file.
author: netreach developers (@netreach)
options:
  name:
    description: Tunnel name, C([a-z0-9][a-z0-9_-]*); the unit is C(netreach-tunnel@NAME.service).
    type: str
    required: true
  server:
    description: Host to SSH to. Forward targets named C(localhost) are the server's localhost, as with ssh.
    type: str
  port:
    description: SSH port of O(server).
    type: int
    default: 22
  user:
    description: Account on the server (and on jump hosts that name none).
    type: str
    default: tunnel
  identity_file:
    description:
      - Private key. Default C(/etc/netreach/tunnels/NAME/id_ed25519), an ed25519 key created if missing, 0600,
        owned by O(run_as). Any other path is read only (see the notes).
    type: path
  known_hosts:
    description:
      - Pinned host keys of the server and every jump host, as known_hosts lines (C(host keytype key);
        C([host]:port keytype key) for a port other than 22).
    type: list
    elements: str
    default: []
  jump_hosts:
    description: ProxyJump chain, each C([user@]host[:port]), first hop first.
    type: list
    elements: str
    default: []
  engine:
    description: C(ssh) (systemd supervises C(ssh -N)) or C(autossh).
    type: str
    choices: [ssh, autossh]
    default: ssh
  keepalive_interval:
    description:
      - ServerAliveInterval in seconds. The default finds a dead path in about 8 s (interval x (count + 1)); a tunnel
        that should ride out longer cuts without reconnecting needs interval x (count + 1) longer than the cut, and
        then needs as long to notice a path that never comes back.
    type: int
    default: 2
  keepalive_count_max:
    description: ServerAliveCountMax; a dead link is detected after about interval x (count + 1) seconds.
    type: int
    default: 3
  connect_timeout:
    description:
      - ConnectTimeout in seconds. A direct tunnel (no jump host, no proxy) connects through the collection's starter,
        which sends a new connection attempt every 0.25 s and gives each this long; after it, the journal says
        C(Connection timed out) and the attempts go on until the path answers, so a healed cut is used within a
        quarter of a second. A refusal ends the attempt and the unit retries through the backoff.
    type: int
    default: 10
  restart_delay:
    description: Seconds before a restart; repeated quick failures back off from here.
    type: int
    default: 1
  restart_max_delay:
    description: Upper bound of the backoff in seconds.
    type: int
    default: 30
  run_as:
    description: Unprivileged system user that runs the tunnel; created if missing.
    type: str
    default: netreach-tunnel
  state:
    description: C(present) writes the files only; C(started), C(stopped), C(restarted) also set the unit's state;
      C(absent) removes the unit and the tunnel's files.
    type: str
    choices: [started, stopped, restarted, present, absent]
    default: started
  enabled:
    description: Start the tunnel at boot.
    type: bool
    default: true
  remove_key:
    description: With O(state=absent), also remove the identity file.
    type: bool
    default: false
extends_documentation_fragment:
  - netreach.tunnels.proxy
  - netreach.tunnels.forwards
  - netreach.tunnels.ssh_options
  - netreach.tunnels.rollback
  - netreach.tunnels.attributes
notes:
  - The proxy password, if any, lives only in C(/etc/netreach/tunnels/NAME/proxy_auth) (0600, owned by O(run_as)),
    read by the proxy helper.
  - An O(identity_file) outside C(/etc/netreach/tunnels/NAME/) is yours; the module only reads it (and its C(.pub))
    and never creates, chowns or removes it; it must exist and be readable by O(run_as).
  - O(state=absent) validates O(name) exactly as every other state; it removes only the unit
    C(netreach-tunnel@NAME.service) and the files in C(/etc/netreach/tunnels/NAME/), never following a symbolic link.
"""

EXAMPLES = r"""
- name: Reach the news server's port 119 on localhost:12345 (ssh -L12345:localhost:119 newshost)
  netreach.tunnels.ssh_tunnel:
    name: news
    server: newshost.example.org
    known_hosts: ["newshost.example.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleExampleExampleExampleExampleEx"]
    local_forwards: ["12345:localhost:119"]

- name: SOCKS proxy on 127.0.0.1:3128 (PuTTY D3128) through the corporate HTTP proxy
  netreach.tunnels.ssh_tunnel:
    name: socks
    server: bastion.example.org
    known_hosts: ["bastion.example.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleExampleExampleExampleExampleEx"]
    proxy: {type: http, host: proxy.corp, port: 8080}
    dynamic_forwards: ["127.0.0.1:3128"]
"""

RETURN = r"""
unit:
  description: The tunnel's systemd unit.
  returned: always
  type: str
  sample: netreach-tunnel@news.service
command:
  description: The command line the unit runs (no secrets).
  returned: success
  type: list
  elements: str
public_key:
  description: The identity's public key line, for the server end; empty in check mode before the key exists.
  returned: success
  type: str
forwards:
  description:
    - The forwards as parsed, each with C(kind), C(bind_address), C(port), C(host) and C(host_port).
    - Since 0.3.0 also C(listen_socket) and C(target_socket), the Unix-socket ends (null for a TCP end).
  returned: success
  type: list
  elements: dict
confirmed:
  description: With O(rollback_timeout), whether the armed change was confirmed over a fresh connection.
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
from ansible_collections.netreach.tunnels.plugins.module_utils._engine import Plan
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel import parse_request, unit_name
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_apply import plan_removal, plan_tunnel, public_key
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_many import (
    STATES,
    proxy_password,
    tunnel_argument_spec,
)
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_render import ssh_command


def main() -> None:
    module = AnsibleModule(
        argument_spec=tunnel_argument_spec(),
        required_if=[("state", state, ["server"]) for state in STATES if state != "absent"],
        supports_check_mode=True,
    )
    params = module.params
    try:
        request = parse_request(params)
    except DeclarationError as exc:
        module.fail_json(msg=str(exc), field=exc.field)
    plan = Plan(module, secrets=[proxy_password(params)])
    if isinstance(request, str):
        plan_removal(plan, request, params["remove_key"])
        module.exit_json(**plan.commit(unit=unit_name(request)))
    plan_tunnel(plan, request, params["state"], params["enabled"])
    result = plan.commit(unit=request.unit, command=ssh_command(request),
                         forwards=[fwd.as_dict() for fwd in request.forwards])
    module.exit_json(public_key=public_key(plan, request.identity), **result)


if __name__ == "__main__":
    main()
