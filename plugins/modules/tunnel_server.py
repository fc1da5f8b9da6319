#!/usr/bin/python
# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: tunnel_server
short_description: Server end of netreach SSH tunnels, restricted to exactly the declared forwards
version_added: 0.1.0
description:
  - Writes one C(authorized_keys) entry per tunnel key and tunnel account, with C(restrict,port-forwarding) and
    exactly the declared C(permitopen) targets and C(permitlisten) binds. Lines it did not write are left as they are.
  - Writes an sshd drop-in with a C(Match User) block per tunnel account (no TTY, X11, agent, tun, user rc or
    shell; C(PermitOpen)/C(PermitListen) limited to the union of the account's entries; C(GatewayPorts) only for
    a non-loopback remote bind; C(ClientAliveInterval)/C(ClientAliveCountMax) to reap dead sessions), validates
    the whole sshd configuration with C(sshd -t) and reloads sshd (never restarts it). When C(sshd -t) rejects it,
    the previous drop-in is put back and the task fails.
  - Runs C(netreach-tunnel-reaper.service), which hands a remote forward's port from a stale session of a tunnel
    account to the client that reconnects for it (see the collection README, "Stale reverse listeners").
  - The entries are usually computed by the P(netreach.tunnels.tunnel_server_entries#filter) filter from the
    clients' C(tunnel_client_tunnels), as the P(netreach.tunnels.tunnel_server#role) role does.
author: netreach developers (@netreach)
options:
  entries:
    description:
      - The entries for this host. Each names the O(accounts) account, the client (inventory name) and tunnel it
        belongs to, the tunnel's public key, the C(opens) (V(host:port)) and C(listens) (V([host:]port)) it may use,
        and C(any_open) for a tunnel whose dynamic forward was allowed to open any destination.
      - Since 0.3.0 also C(socket_opens) (Unix socket paths on this host its local forwards lead to) and
        C(socket_listens) (socket paths its remote forwards listen on); paths are validated as in
        M(netreach.tunnels.ssh_tunnel)'s O(netreach.tunnels.ssh_tunnel#module:local_forwards).
    type: list
    elements: dict
    default: []
  accounts:
    description:
      - Tunnel accounts of this host; each gets a C(Match User) block. Never V(root). Every account an entry of
        O(entries) logs in to must be listed here, or the task fails naming the entry (C(entries[N].account))
        before anything changes, so an admin account is never turned into a tunnel account.
      - They must exist unless O(create_accounts) makes them.
    type: list
    elements: str
    required: true
  create_accounts:
    description:
      - Make each of O(accounts) a dedicated system account that cannot log in, before its C(authorized_keys) is
        written. A missing one is created (C(useradd --system), home C(/home/NAME) created, shell
        C(/usr/sbin/nologin), password locked); an existing system account with a login shell or a usable
        password gets the shell C(/usr/sbin/nologin) and a locked password (C(usermod)), which the diff says. The
        account is read back afterwards, and the task fails if it is not in that state.
      - An existing ordinary account (uid 0, or uid at least C(UID_MIN) of C(/etc/login.defs)) is refused, naming
        O(accounts), before anything changes. It belongs to a person or an admin, who would be locked out.
      - Ignored with O(state=absent) (the accounts stay). The P(netreach.tunnels.tunnel_server#role) role sets it.
      - V(false) leaves the accounts to another task; they must then exist when the module runs (in check mode a
        missing one is reported as a change).
    type: bool
    default: false
    version_added: 0.3.0
  managed_clients:
    description:
      - Clients this run speaks for. Their entries become exactly O(entries); entries of other clients already on
        the host are kept, so a run limited to some clients never drops the others' keys.
      - Omit to speak for every client, so that entries not in O(entries) are removed.
    type: list
    elements: str
  known_clients:
    description: Every client that may hold entries here; entries of a client not listed are removed (it left the inventory).
    type: list
    elements: str
  client_alive_interval:
    description: C(ClientAliveInterval) for the tunnel accounts, in seconds.
    type: int
    default: 15
  client_alive_count_max:
    description: C(ClientAliveCountMax) for the tunnel accounts.
    type: int
    default: 3
  sshd_dropin:
    description: Path of the sshd drop-in, a C(.conf) file directly in C(/etc/ssh/sshd_config.d/); the main
      sshd_config must include that directory.
    type: path
    default: /etc/ssh/sshd_config.d/50-netreach-tunnels.conf
  ports:
    description:
      - The ports sshd listens on, written as C(Port) lines of the drop-in, for example V([22, 443]) where a proxy
        allows C(CONNECT) to 443 only. The configuration is checked with C(sshd -t) before it goes live and sshd is
        reloaded, never restarted, so established sessions (the tunnels among them) stay up.
      - With any port given sshd listens on these only, so list V(22) to keep it. Each port from 1 to 65535, none twice.
      - Empty leaves the ports to C(sshd_config).
    type: list
    elements: int
    default: []
    version_added: 0.3.0
  rollback_timeout:
    description:
      - "Seconds a change of the drop-in or the accounts' C(authorized_keys) waits, once sshd has reloaded it, for
        the controller's confirmation over a fresh connection; if none comes (the change refused the managing
        connection's port, account or key), the host puts the previous files back by itself and reloads sshd, and
        the task fails with C(Rolled back: ... because ...). C(0) applies at once, without a confirm step.
        Otherwise 10 to 3600."
      - The previous files are kept and a transient systemd timer armed before anything is written; the drop-in is
        still checked with C(sshd -t) before it goes live, and sshd is reloaded a moment after the module returned,
        by a transient unit of the host. The confirmation must get through the new configuration (the action
        plugin closes the connection it used first). A reboot before the confirmation boots the last confirmed
        files.
      - Needs systemd on the host. The reaper is not part of the armed change.
      - See R(Confirm or roll back,ansible_collections.netreach.tunnels.docsite.rollback).
    type: int
    default: 0
    version_added: 0.3.0
  reaper:
    description: Run the stale remote forward reaper.
    type: bool
    default: true
  state:
    description: V(absent) removes every entry this module wrote, the drop-in and the reaper.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - netreach.tunnels.attributes
notes:
  - A dynamic forward (C(-D)) lets its key open any destination on the server, which C(permitopen) cannot narrow;
    the filter refuses it unless the tunnel sets C(server_allow_dynamic=true).
  - Unix-socket forwards (since 0.3.0). C(AllowStreamLocalForwarding) is V(no) for every tunnel account except
    those with an entry that declares a socket, and then only in the declared direction (V(local), V(remote)).
    A socket a local forward leads to is pinned exactly, in C(permitopen) and C(PermitOpen) as C([/path]:*).
    A socket a remote forward listens on cannot be pinned (sshd matches C(permitlisten) against TCP listens
    only), so the account may listen on any path it can write, and with C(StreamLocalBindUnlink yes) (set for such
    accounts, so a reconnecting session takes over its socket) replace any socket it may remove. Give such
    tunnels an account of their own. See the socket forwards guide of the collection docs.
  - Each account's C(authorized_keys) is C(~/.ssh/authorized_keys) of its home; a symbolic C(~/.ssh) or
    C(authorized_keys) is refused, never followed. O(accounts) and O(sshd_dropin) are validated alike for
    O(state=present) and O(state=absent).
  - In check mode, an account that does not exist yet is reported as a change (with O(create_accounts), as the
    account to be created).
"""

EXAMPLES = r"""
- name: Authorise a client's news tunnel on the bastion, nothing more, in a locked account made for it
  netreach.tunnels.tunnel_server:
    accounts: [tunnel]
    create_accounts: true
    entries:
      - account: tunnel
        client: laptop1
        tunnel: news
        public_key: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHd0K7bS7hT2mAu8VWTXxkzXz2VXr0VXr0VXr0VXr0VX
        opens: ["newshost:119"]
    managed_clients: [laptop1]

- name: Let sshd listen on 443 too, for clients behind a proxy that allows CONNECT to 443 only
  netreach.tunnels.tunnel_server:
    accounts: [tunnel]
    ports: [22, 443]
    managed_clients: []

- name: The same, put back by the server unless this controller gets in again within a minute
  netreach.tunnels.tunnel_server:
    accounts: [tunnel]
    ports: [22, 443]
    managed_clients: []
    rollback_timeout: 60
"""

RETURN = r"""
authorized:
  description: Per account, the client/tunnel labels of the entries this module manages there.
  returned: success
  type: dict
  sample: {tunnel: ["laptop1/news"]}
sshd_dropin:
  description: Path of the sshd drop-in.
  returned: success
  type: str
  sample: /etc/ssh/sshd_config.d/50-netreach-tunnels.conf
sshd_reloaded:
  description: Whether sshd was reloaded (in check mode, whether it would be; with O(rollback_timeout), the
    delayed apply reloads it).
  returned: success
  type: bool
confirmed:
  description: With O(rollback_timeout), whether the armed change was confirmed over a fresh connection.
  returned: when a change was armed
  type: bool
  version_added: 0.3.0
rolled_back:
  description: With O(rollback_timeout), the changes the host put back by itself because no confirmation came.
  returned: when an armed change was not confirmed
  type: list
  elements: str
  version_added: 0.3.0
ansible_facts:
  description:
    - This host's SSH host keys as the C(ssh_pub_keys) facts of M(ansible.builtin.setup) (for example
      C(ansible_ssh_host_key_ed25519_public) and C(ansible_ssh_host_key_ed25519_public_keytype)), read from
      C(/etc/ssh/ssh_host_*_key.pub), so the clients pin them without a fact-gathering round.
  returned: success
  type: dict
  version_added: 0.3.0
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.netreach.tunnels.plugins.module_utils._declaration import DeclarationError
from ansible_collections.netreach.tunnels.plugins.module_utils._engine import Plan
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_server import parse_server
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_server_apply import plan_server


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            entries=dict(type="list", elements="dict", default=[]),
            accounts=dict(type="list", elements="str", required=True),
            create_accounts=dict(type="bool", default=False),
            managed_clients=dict(type="list", elements="str"),
            known_clients=dict(type="list", elements="str"),
            client_alive_interval=dict(type="int", default=15),
            client_alive_count_max=dict(type="int", default=3),
            sshd_dropin=dict(type="path", default="/etc/ssh/sshd_config.d/50-netreach-tunnels.conf"),
            ports=dict(type="list", elements="int", default=[]),
            rollback_timeout=dict(type="int", default=0),
            reaper=dict(type="bool", default=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        supports_check_mode=True,
    )
    try:
        server = parse_server(module.params)
    except DeclarationError as exc:
        module.fail_json(msg=str(exc), field=exc.field)
    plan = Plan(module)
    extra = plan_server(plan, server)
    module.exit_json(**plan.commit(**extra))


if __name__ == "__main__":
    main()
