#!/usr/bin/python
# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: client_session
short_description: One SSH session spec written as an OpenSSH Host block, a PuTTY session or a WinSCP site
version_added: 0.1.0
description:
  - Declares one SSH session (target host, user, port, an HTTP or SOCKS proxy, an SSH tunnel/jump host and port
    forwards) and writes it in the format of one client.
  - C(openssh) writes Host blocks (C(ProxyJump) for the tunnel host, C(ProxyCommand) with C(nc) for the proxy,
    C(LocalForward), C(RemoteForward), C(DynamicForward)) to C(~/.ssh/config.d/netreach-NAME.conf) and puts an
    C(Include) of that directory at the top of C(~/.ssh/config), so plain C(ssh NAME) uses it.
  - C(putty) writes the Linux session file C(~/.putty/sessions/NAME) (name escaped the way PuTTY does) for
    C(putty -load NAME) and C(plink -load NAME), and the same session as a Windows C(.reg) export.
  - C(winscp) writes the site as a C([Sessions\NAME]) section of a C(WinSCP.ini) with WinSCP's documented raw
    site settings (C(ProxyMethod), C(ProxyHost), C(ProxyPort), C(Tunnel), C(TunnelHostName), ...).
  - With O(known_hosts), the session trusts only those host keys - OpenSSH through a known_hosts file of the
    session (C(UserKnownHostsFile), C(StrictHostKeyChecking yes)), PuTTY through its block in
    C(~/.putty/sshhostkeys) (and the C(SshHostKeys) key of the C(.reg) export), WinSCP through the site's
    C(HostKey) (and C(TunnelHostKey)) fingerprints. A changed server key then makes each client refuse.
  - Only the session's own file, block or section is written or removed; everything else in a shared file stays.
author: netreach developers (@netreach)
options:
  name:
    description:
      - Session name. OpenSSH uses it as the Host alias (letters, digits, C(.), C(_), C(-)); PuTTY and WinSCP take
        printable ASCII and escape it in file names and section names the way they do.
    type: str
    required: true
  host:
    description: Host to connect to.
    type: str
  port:
    description: SSH port of O(host).
    type: int
    default: 22
  user:
    description: Login account on O(host).
    type: str
  tunnel:
    description: SSH tunnel (jump) host the session goes through; with O(proxy), the proxy carries the hop to it.
    type: dict
    suboptions:
      host:
        description: Tunnel host.
        type: str
        required: true
      port:
        description: Tunnel host's SSH port.
        type: int
        default: 22
      user:
        description: Account on the tunnel host.
        type: str
  local_forwards:
    description: C(-L) forwards as C([bind_address:]port:host:hostport).
    type: list
    elements: str
    default: []
  remote_forwards:
    description: C(-R) forwards, same form as O(local_forwards).
    type: list
    elements: str
    default: []
  dynamic_forwards:
    description: C(-D) SOCKS forwards as C([bind_address:]port), e.g. C(3128) (PuTTY's C(D3128)).
    type: list
    elements: str
    default: []
  known_hosts:
    description:
      - Host keys the session trusts, as known_hosts lines (C(host keytype base64key), C([host]:port) for a port
        other than 22, several names separated by commas, or one hashed name) like the tunnels take them. Markers
        (C(@cert-authority), C(@revoked)) and patterns are refused.
      - PuTTY and WinSCP need a line for every server the session logs in to (O(host) on O(port), and the
        O(tunnel) host); the role netreach.tunnels.proxy_client fills this in from the inventory hosts' facts.
      - Empty (the default) pins nothing - the client asks on the first connection.
    type: list
    elements: str
    default: []
  identity_file:
    description: Private key file (OpenSSH key for C(openssh), C(.ppk) for C(putty) and C(winscp)).
    type: str
  format:
    description: Client format to write.
    type: str
    choices: [openssh, putty, winscp]
    default: openssh
  path:
    description:
      - Where to write. Defaults per format in the home of O(owner) - C(~/.ssh/config.d/netreach-NAME.conf),
        C(~/.putty/sessions/NAME) (escaped), C(~/WinSCP.ini).
      - A given path must be below the home of O(owner); a symbolic link on the way (C(~/.ssh),
        C(~/.ssh/config.d), C(~/.putty), a directory of the given path) is refused, never followed.
    type: path
  reg_path:
    description:
      - Where the PuTTY C(.reg) export goes; default C(~/.putty/netreach-NAME.reg) (name escaped). Below the home
        of O(owner), like O(path).
    type: path
  owner:
    description: Local account whose home the defaults use and who owns the files (mode 0600).
    type: str
    default: root
  state:
    description: C(present) writes the session; C(absent) removes exactly the session's file, block or section.
    type: str
    choices: [present, absent]
    default: present
attributes:
  check_mode:
    description: Reports what would change and changes nothing.
    support: full
  diff_mode:
    description: Shows the files before and after; the proxy password is masked.
    support: full
extends_documentation_fragment:
  - netreach.tunnels.proxy.socks4
notes:
  - A proxy password (O(proxy.password)) is written into PuTTY sessions only. OpenSSH's C(nc) proxy command cannot
    send one, and a WinSCP site keeps it out of its file. The session files are 0600 in any case.
"""

EXAMPLES = r"""
- name: PuTTY session with a SOCKS forward on 3128 (PuTTY's D3128) through the corporate HTTP proxy
  netreach.tunnels.client_session:
    name: bastion-news
    host: newshost.example.org
    user: alice
    proxy: {type: http, host: proxy.corp.example, port: 8080}
    local_forwards: ["12345:localhost:119"]
    dynamic_forwards: ["3128"]
    format: putty
    owner: alice

- name: WinSCP site through an HTTP proxy on 8080 and an SSH tunnel host
  netreach.tunnels.client_session:
    name: bastion-news
    host: newshost.example.org
    user: alice
    proxy: {type: http, host: proxy.corp.example, port: 8080}
    tunnel: {host: bastion.corp.example, port: 22, user: tunnel}
    format: winscp
    owner: alice
    path: /home/alice/windows-profile/WinSCP.ini

- name: The same session for plain `ssh bastion-news`
  netreach.tunnels.client_session:
    name: bastion-news
    host: newshost.example.org
    user: alice
    tunnel: {host: bastion.corp.example, user: tunnel}
    dynamic_forwards: ["3128"]
    format: openssh
    owner: alice
"""

RETURN = r"""
files:
  description: Files that changed (or would change in check mode).
  returned: always
  type: list
  elements: str
path:
  description: The session's file (an OpenSSH session's known_hosts file sits beside it, NAME.known_hosts).
  returned: always
  type: str
"""

import pwd

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.netreach.tunnels.plugins.module_utils._declaration import DeclarationError, proxy_argument_spec
from ansible_collections.netreach.tunnels.plugins.module_utils._engine import Plan
from ansible_collections.netreach.tunnels.plugins.module_utils._session import (
    FORMATS,
    SESSION_PROXY_TYPES,
    parse_name,
    parse_session,
)
from ansible_collections.netreach.tunnels.plugins.module_utils._session_apply import plan_session


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            host=dict(type="str"),
            port=dict(type="int", default=22),
            user=dict(type="str"),
            proxy=proxy_argument_spec(SESSION_PROXY_TYPES),
            tunnel=dict(type="dict", options=dict(
                host=dict(type="str", required=True),
                port=dict(type="int", default=22),
                user=dict(type="str"),
            )),
            local_forwards=dict(type="list", elements="str", default=[]),
            remote_forwards=dict(type="list", elements="str", default=[]),
            dynamic_forwards=dict(type="list", elements="str", default=[]),
            identity_file=dict(type="str"),
            known_hosts=dict(type="list", elements="str", default=[], no_log=False),
            format=dict(type="str", choices=list(FORMATS), default="openssh"),
            path=dict(type="path"),
            reg_path=dict(type="path"),
            owner=dict(type="str", default="root"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        required_if=[("state", "present", ["host"])],
        supports_check_mode=True,
    )
    params = module.params
    try:
        home = pwd.getpwnam(params["owner"]).pw_dir
    except KeyError:
        module.fail_json(msg=f"owner: no local account {params['owner']!r}", field="owner")
    session = None
    try:
        # absent validates the name exactly as present does: it makes the same paths
        parse_name(params["name"], params["format"])
        if params["state"] == "present":
            session = parse_session(params, params["format"])
    except DeclarationError as exc:
        module.fail_json(msg=str(exc), field=exc.field)
    plan = Plan(module, secrets=session.secrets if session else [])
    path, warnings = plan_session(plan, params, home, session)
    if session is not None and not session.known_hosts:
        warnings.append("known_hosts: none given; the client trusts the key it sees on the first connection")
    for warning in warnings:
        module.warn(warning)
    module.exit_json(**plan.commit(files=plan.changed_paths(), path=path))


if __name__ == "__main__":
    main()
