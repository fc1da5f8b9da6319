# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The proxy option, written once for every module that takes it (argspec: _declaration.proxy_argument_spec).

netreach.tunnels.proxy: types http and socks5; netreach.tunnels.proxy.socks4: http, socks5 and socks4.
"""

from __future__ import annotations


class ModuleDocFragment:
    # Two literal texts: ansible-test reads doc fragments as constants, so they cannot be built from one.
    DOCUMENTATION = r"""
options:
  proxy:
    description:
      - The proxy on the way to the first SSH hop, as a dict (a proxy URL does not fit here).
      - A password is never shown in a diff, a log or a process list.
    type: dict
    suboptions:
      type:
        description: Proxy protocol.
        type: str
        choices: [http, socks5]
        default: http
      host:
        description: Proxy host name or address (an IPv6 address with or without brackets).
        type: str
        required: true
      port:
        description: Proxy port.
        type: int
        required: true
      username:
        description: Proxy user name (C(DOMAIN\user) is fine; no C(:)).
        type: str
      password:
        description: Proxy password; needs O(proxy.username).
        type: str
      auth:
        description:
          - How the proxy authenticates. V(ntlm) (NTLM, Windows shops) goes through the local hop that
            M(netreach.tunnels.client_proxy) runs with O(netreach.tunnels.client_proxy#module:auth=ntlm); the
            connection then goes to C(http://127.0.0.1:)O(proxy.hop_port) without credentials, and the password given
            here is written nowhere.
        type: str
        choices: [basic, ntlm]
        default: basic
        version_added: 0.3.0
      domain:
        description: The NTLM domain, unless O(proxy.username) is C(DOMAIN\user); only with O(proxy.auth=ntlm).
        type: str
        version_added: 0.3.0
      hop_port:
        description: The loopback port of the local NTLM hop (O(netreach.tunnels.client_proxy#module:hop_port)).
        type: int
        default: 3130
        version_added: 0.3.0
"""

    SOCKS4 = r"""
options:
  proxy:
    description:
      - The proxy on the way to the first SSH hop, as a dict (a proxy URL does not fit here).
      - A password is never shown in a diff, a log or a process list.
    type: dict
    suboptions:
      type:
        description: Proxy protocol.
        type: str
        choices: [http, socks5, socks4]
        default: http
      host:
        description: Proxy host name or address (an IPv6 address with or without brackets).
        type: str
        required: true
      port:
        description: Proxy port.
        type: int
        required: true
      username:
        description: Proxy user name (C(DOMAIN\user) is fine; no C(:)).
        type: str
      password:
        description: Proxy password; needs O(proxy.username).
        type: str
      auth:
        description:
          - How the proxy authenticates. V(ntlm) (NTLM, Windows shops) goes through the local hop that
            M(netreach.tunnels.client_proxy) runs with O(netreach.tunnels.client_proxy#module:auth=ntlm); the
            connection then goes to C(http://127.0.0.1:)O(proxy.hop_port) without credentials, and the password given
            here is written nowhere.
        type: str
        choices: [basic, ntlm]
        default: basic
        version_added: 0.3.0
      domain:
        description: The NTLM domain, unless O(proxy.username) is C(DOMAIN\user); only with O(proxy.auth=ntlm).
        type: str
        version_added: 0.3.0
      hop_port:
        description: The loopback port of the local NTLM hop (O(netreach.tunnels.client_proxy#module:hop_port)).
        type: int
        default: 3130
        version_added: 0.3.0
"""
