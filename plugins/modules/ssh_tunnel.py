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
    description: Private key; an ed25519 key is created if missing, 0600, owned by O(run_as).
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
  proxy:
    description: HTTP CONNECT or SOCKS5 proxy for the first hop.
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
        description: Proxy password, kept in a 0600 file read by the proxy helper.
        type: str
  local_forwards:
    description: C(-L) forwards, as ssh's C([bind_address:]port:host:hostport) or dicts with the keys
      C(bind_address), C(port), C(host), C(host_port).
    type: list
    elements: raw
    default: []
  remote_forwards:
    description: C(-R) forwards, same shapes as O(local_forwards).
    type: list
    elements: raw
    default: []
  dynamic_forwards:
    description: C(-D) SOCKS forwards, as C([bind_address:]port) or dicts with C(bind_address) and C(port).
    type: list
    elements: raw
    default: []
  engine:
    description: C(ssh) (systemd supervises C(ssh -N)) or C(autossh).
    type: str
    choices: [ssh, autossh]
    default: ssh
  keepalive_interval:
    description: ServerAliveInterval in seconds.
    type: int
    default: 5
  keepalive_count_max:
    description: ServerAliveCountMax; a dead link is detected after interval x count seconds.
    type: int
    default: 3
  connect_timeout:
    description: ConnectTimeout in seconds.
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
attributes:
  check_mode:
    description: Reports what would change and changes nothing.
    support: full
  diff_mode:
    description: Shows the rendered ssh_config, known_hosts and unit before and after; secrets are never shown.
    support: full
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
  description: The forwards as parsed.
  returned: success
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel import TunnelError, parse_tunnel, ssh_command
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_apply import TunnelHost


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            server=dict(type="str"),
            port=dict(type="int", default=22),
            user=dict(type="str", default="tunnel"),
            identity_file=dict(type="path"),
            known_hosts=dict(type="list", elements="str", default=[]),
            jump_hosts=dict(type="list", elements="str", default=[]),
            proxy=dict(type="dict", options=dict(
                type=dict(type="str", choices=["http", "socks5"], default="http"),
                host=dict(type="str", required=True),
                port=dict(type="int", required=True),
                username=dict(type="str"),
                password=dict(type="str", no_log=True),
            )),
            local_forwards=dict(type="list", elements="raw", default=[]),
            remote_forwards=dict(type="list", elements="raw", default=[]),
            dynamic_forwards=dict(type="list", elements="raw", default=[]),
            engine=dict(type="str", choices=["ssh", "autossh"], default="ssh"),
            keepalive_interval=dict(type="int", default=5),
            keepalive_count_max=dict(type="int", default=3),
            connect_timeout=dict(type="int", default=10),
            restart_delay=dict(type="int", default=1),
            restart_max_delay=dict(type="int", default=30),
            run_as=dict(type="str", default="netreach-tunnel"),
            state=dict(type="str", choices=["started", "stopped", "restarted", "present", "absent"], default="started"),
            enabled=dict(type="bool", default=True),
            remove_key=dict(type="bool", default=False),
        ),
        required_if=[("state", "started", ["server"]), ("state", "stopped", ["server"]),
                     ("state", "restarted", ["server"]), ("state", "present", ["server"])],
        supports_check_mode=True,
    )
    params = module.params
    host = TunnelHost(module)
    if params["state"] == "absent":
        host.remove(params["name"], params["remove_key"])
        module.exit_json(**host.result(unit=f"netreach-tunnel@{params['name']}.service"))
    try:
        tunnel = parse_tunnel(params)
    except TunnelError as exc:
        module.fail_json(msg=str(exc), field=exc.field)
    host.apply(tunnel, params["state"], params["enabled"])
    module.exit_json(**host.result(
        unit=tunnel.unit,
        command=ssh_command(tunnel),
        public_key=host.public_key(tunnel),
        forwards=[fwd.as_dict() for fwd in tunnel.forwards],
    ))


if __name__ == "__main__":
    main()
