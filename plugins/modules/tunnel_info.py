#!/usr/bin/python
# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: tunnel_info
short_description: State of the netreach SSH tunnels of a host, with live probes through their forwards
version_added: 0.1.0
description:
  - For every C(netreach-tunnel@NAME.service) on the host, the unit's state, since when it is up, how often systemd
    restarted it, why it is down, and for each forward whether its socket is listening and a live probe through it
    (a TCP connect to a local forward, a SOCKS5 greeting to a dynamic one).
  - Why a tunnel is down is read from what ssh and the proxy helper printed in the unit's last start that printed
    anything (the journal's C(_SYSTEMD_INVOCATION_ID)), never from systemd's own lines about the unit; the line
    that says it most precisely is RV(tunnels[].last_error) and its kind RV(tunnels[].cause).
  - "A healthy tunnel has neither; what its current start printed that looks like a failure (such as
    C(bind [::1]:12345: Cannot assign requested address) on a host without IPv6 loopback) is in
    RV(tunnels[].warnings)."
  - Remote forwards listen on the server; on a tunnel server the module also lists the remote forward binds that
    M(netreach.tunnels.tunnel_server) authorised there and whether something listens on them.
  - Changes nothing; safe in check mode.
author: netreach developers (@netreach)
options:
  names:
    description: Only these tunnels (default all).
    type: list
    elements: str
  probe:
    description: Probe each local and dynamic forward with a connection.
    type: bool
    default: true
  probe_timeout:
    description: Seconds a probe may take.
    type: float
    default: 3
  journal_lines:
    description: How many of the unit's last journal entries are read for the cause of a failure.
    type: int
    default: 50
extends_documentation_fragment:
  - netreach.tunnels.attributes.info
"""

EXAMPLES = r"""
- name: What are the tunnels of this host doing?
  netreach.tunnels.tunnel_info:
  register: tunnels

- name: Fail when a tunnel is down, saying why
  ansible.builtin.assert:
    that: tunnels.tunnels | rejectattr('healthy') | list | length == 0
    fail_msg: "{{ tunnels.tunnels | rejectattr('healthy') | map(attribute='last_error') | list }}"
"""

RETURN = r"""
tunnels:
  description: One entry per tunnel.
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: Tunnel name., type: str}
    unit: {description: Unit name., type: str}
    server: {description: The server the tunnel logs in to., type: str}
    jump_hosts: {description: "The jump hosts on the way, in order.", type: list, elements: str}
    state: {description: "systemd ActiveState (active, activating, failed, inactive)", type: str}
    sub_state: {description: systemd SubState., type: str}
    enabled: {description: Whether the unit is enabled., type: bool}
    since:
      description:
        - Epoch seconds since the current session's ssh runs (null when not running, and while the unit's starter
          waits out its backoff or connects).
      type: float
    uptime_seconds: {description: Seconds the current connection has been up., type: int}
    restarts:
      description:
        - Restarts of the tunnel's ssh since its unit was last started by hand. Those its starter made itself (it
          runs ssh again without a unit restart) plus systemd's (NRestarts).
      type: int
    cause:
      description:
        - Why the tunnel is down, empty for a healthy tunnel (and for one that printed nothing yet).
        - C(proxy_refused) (the proxy refused CONNECT, or a SOCKS5 proxy the request or the credentials),
          C(proxy_unreachable), C(host_key_mismatch) (the server's key is not the pinned one), C(host_key_unknown)
          (no key pinned for that name), C(host_key_rejected), C(permission_denied) (the server does not accept the
          key), C(remote_forward_refused) (the server refused a remote forward, such as a port outside the key's
          C(permitlisten)), C(local_forward_failed) (a local port is taken), C(name_unresolved),
          C(connection_refused), C(connection_timed_out) (also no route to the host), C(connection_lost) (the
          server stopped answering keepalives), C(connection_closed), or C(other) (a failure none of these
          describes; see RV(tunnels[].last_error)).
      type: str
      version_added: 0.3.0
    last_error:
      description:
        - "The line ssh or the proxy helper printed that states the cause, such as C(proxy-connect: the proxy refused
          CONNECT bastion:22: HTTP/1.1 403 Forbidden); empty for a healthy tunnel."
        - Before 0.3.0, the last error-looking line of the unit's journal, systemd's included.
      type: str
    warnings:
      description: Lines of the same start that went wrong without taking the tunnel down (an IPv6 bind, a channel
        the server refused).
      type: list
      elements: str
      version_added: 0.3.0
    forwards:
      description:
        - The forwards, each with C(kind), C(listen), C(target), C(listening), C(probe_ok) and C(probe).
        - C(socket) (added in 0.3.0) says which end is a Unix socket path (V(listen), V(target), V(both)) or is
          null for TCP at both ends. A local forward to a socket is probed like any other, through its TCP listen.
      type: list
      elements: dict
    healthy:
      description: Active with every client-side forward listening and probed OK; a tunnel with only remote
        forwards (nothing on this host to probe) once its current start lasted longer than a connection attempt
        (its ConnectTimeout and 5 s).
      type: bool
server_listens:
  description:
    - Remote forward binds authorised on this host, each with C(entry), C(listen) and C(listening).
    - Since 0.3.0 also the socket paths remote forwards declare here, each with C(account), C(listen) (the path),
      C(socket=true) and C(listening) (a socket in LISTEN at that path, read from C(/proc/net/unix)).
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.netreach.tunnels.plugins.module_utils._engine import Plan
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_info import collect


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            names=dict(type="list", elements="str"),
            probe=dict(type="bool", default=True),
            probe_timeout=dict(type="float", default=3),
            journal_lines=dict(type="int", default=50),
        ),
        supports_check_mode=True,
    )
    module.exit_json(**collect(Plan(module), module.params))


if __name__ == "__main__":
    main()
