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
    description: Private key path; default C(/etc/netreach/tunnels/NAME/id_ed25519), the only path where a key is
      created. Any other path must exist already (see the notes).
    type: path
  run_as:
    description: User the tunnel runs as, owner of the key.
    type: str
    default: netreach-tunnel
extends_documentation_fragment:
  - netreach.tunnels.attributes
notes:
  - An O(identity_file) outside C(/etc/netreach/tunnels/NAME/) is yours; the module only reads its C(.pub) and
    never creates, chowns or removes it.
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

from ansible_collections.netreach.tunnels.plugins.module_utils._declaration import DeclarationError
from ansible_collections.netreach.tunnels.plugins.module_utils._engine import Plan
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel import parse_identity
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_apply import plan_key, public_key


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
        identity = parse_identity(module.params)
    except DeclarationError as exc:
        module.fail_json(msg=str(exc), field=exc.field)
    plan = Plan(module)
    plan_key(plan, identity)
    result = plan.commit(identity_file=identity.path)
    module.exit_json(public_key=public_key(plan, identity), **result)


if __name__ == "__main__":
    main()
