#!/usr/bin/python
# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: tunnel_key
short_description: The key pair of a netreach SSH tunnel, created on the client
version_added: 0.1.0
description:
  - Makes sure the tunnel's ed25519 key exists (created if missing, 0600, owned by O(run_as), which is created as
    an unprivileged system user if missing) and returns its public key, without configuring the tunnel itself.
  - The fleet playbook runs it on the clients first, so the servers can authorise the keys before the tunnels
    start; M(netreach.tunnels.ssh_tunnel) uses the same key file.
author: netreach developers (@netreach)
options:
  name:
    description: Tunnel name, as in M(netreach.tunnels.ssh_tunnel).
    type: str
    required: true
  identity_file:
    description: Private key path; default C(/etc/netreach/tunnels/NAME/id_ed25519).
    type: path
  run_as:
    description: User the tunnel runs as, owner of the key.
    type: str
    default: netreach-tunnel
attributes:
  check_mode:
    description: Reports whether the key or user would be created and creates nothing.
    support: full
  diff_mode:
    description: Names the key and user that are created; never shows key material.
    support: full
"""

EXAMPLES = r"""
- name: Create the key of the news tunnel and learn its public half
  netreach.tunnels.tunnel_key:
    name: news
  register: news_key
"""

RETURN = r"""
public_key:
  description: The public key (empty in check mode when the key does not exist yet).
  returned: success
  type: str
  sample: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI... netreach-tunnel-news
identity_file:
  description: The private key's path.
  returned: success
  type: str
  sample: /etc/netreach/tunnels/news/id_ed25519
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel import TunnelError, parse_tunnel
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_apply import TunnelHost


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            identity_file=dict(type="path"),
            run_as=dict(type="str", default="netreach-tunnel"),
        ),
        supports_check_mode=True,
    )
    try:
        # The tunnel model validates the name, key path and user; the forward is only there to satisfy it.
        tunnel = parse_tunnel(dict(module.params, server="localhost", user="tunnel", local_forwards=["1:localhost:1"],
                                   keepalive_interval=5, keepalive_count_max=3, connect_timeout=10,
                                   restart_delay=1, restart_max_delay=30))
    except TunnelError as exc:
        module.fail_json(msg=str(exc), field=exc.field)
    host = TunnelHost(module)
    host.ensure_key_only(tunnel)
    module.exit_json(**host.result(public_key=host.public_key(tunnel), identity_file=tunnel.identity_file))


if __name__ == "__main__":
    main()
