#!/usr/bin/python
# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: client_proxy
short_description: One proxy declaration written to every layer of a client that reads its own proxy settings
version_added: 0.1.0
description:
  - Writes the HTTP, HTTPS and SOCKS proxy of a client host to the environment (C(/etc/environment) and
    C(/etc/profile.d/netreach-proxy.sh), upper- and lower-case variables), the systemd manager
    (C(DefaultEnvironment) in C(/etc/systemd/system.conf.d/netreach-proxy.conf), so services see it), apt,
    dnf, the docker daemon, git, pip, npm, wget, sudo (C(env_keep)) and the Firefox ESR and Thunderbird
    enterprise policies.
  - Files shared with the administrator (C(/etc/environment), C(/etc/gitconfig), C(/etc/pip.conf), C(/etc/npmrc),
    C(/etc/wgetrc), C(/etc/dnf/dnf.conf)) get a managed block; the other files are the module's own. O(state=absent)
    removes exactly those blocks and files, nothing else.
  - O(no_proxy) is written in the form each consumer understands (CIDR networks where it matches them, per-host
    C(DIRECT) for apt, URL patterns for git); entries a consumer cannot express are left out there with a warning.
  - Files that hold the password are mode 0600 (then only root and services read them); diffs mask it.
author: netreach developers (@netreach)
options:
  http_proxy:
    description: Proxy for HTTP, C(http://host:port) (or C(https://)). No credentials in the URL.
    type: str
  https_proxy:
    description: Proxy for HTTPS, same form as O(http_proxy).
    type: str
  socks_proxy:
    description:
      - SOCKS proxy, C(socks5h://host:port) (also C(socks5), C(socks4), C(socks4a)); for example the dynamic forward
        of a tunnel. Written as C(all_proxy) and as the browsers' SOCKS proxy.
    type: str
  no_proxy:
    description: Hosts, C(.domains), IP addresses and CIDR networks reached without the proxy.
    type: list
    elements: str
    default: []
  username:
    description: Proxy user name; written percent-encoded into the proxy URLs.
    type: str
  password:
    description: Proxy password; written percent-encoded into the proxy URLs of files that are then 0600.
    type: str
  auth:
    description:
      - How the proxy authenticates. V(basic) writes the credentials into each layer's proxy URL.
      - V(ntlm) (NTLM, the common case in Windows shops) runs a local authenticating hop instead, cntlm (Debian's
        package C(cntlm)) as C(netreach-proxy-hop.service), a hardened unit of its own user C(netreach-proxy-hop),
        listening on C(127.0.0.1:)O(hop_port). Every layer then points at C(http://127.0.0.1:)O(hop_port) without
        credentials, and the credentials live only in the hop's configuration C(/etc/netreach/proxy-hop/cntlm.conf)
        (0600, its user's; cntlm's C(PassNTLMv2) hash, never the password itself). O(http_proxy) is the proxy the
        hop talks to (O(https_proxy), if given, must be the same proxy).
      - Tunnels and sessions reach the same hop through their O(netreach.tunnels.ssh_tunnel#module:proxy.auth=ntlm).
    type: str
    choices: [basic, ntlm]
    default: basic
    version_added: 0.3.0
  domain:
    description: The NTLM domain, unless O(username) is C(DOMAIN\user); with O(auth=ntlm) one of the two is required.
    type: str
    version_added: 0.3.0
  hop_port:
    description: The loopback port the local NTLM hop listens on (O(auth=ntlm)).
    type: int
    default: 3130
    version_added: 0.3.0
  ntlm_auth:
    description:
      - What the NTLM hop answers with (cntlm's C(Auth)). V(NTLMv2) (with its C(PassNTLMv2) hash) is what Active
        Directory proxies expect; V(NTLM2SR) and V(NTLM) (with C(PassNT)) are for a proxy whose challenge carries
        no target information, where cntlm cannot answer with NTLMv2 (it logs C(No target info block)).
    type: str
    choices: [NTLMv2, NTLM2SR, NTLM]
    default: NTLMv2
    version_added: 0.3.0
  targets:
    description: Layers to configure (or, with O(state=absent), to clean).
    type: list
    elements: str
    choices: [environment, systemd, apt, dnf, docker, git, pip, npm, wget, sudo, firefox, thunderbird]
    default: [environment, systemd, apt, dnf, docker, git, pip, npm, wget, sudo, firefox, thunderbird]
  browser_mode:
    description: C(Mode) of the browsers' Proxy policy.
    type: str
    choices: [manual, system, autoConfig, none]
    default: manual
  browser_autoconfig_url:
    description: PAC URL for O(browser_mode=autoConfig).
    type: str
  browser_locked:
    description: Lock the browsers' proxy settings (C(Locked) in the Proxy policy).
    type: bool
    default: false
  state:
    description: C(present) writes the settings; C(absent) removes every block and file the module wrote (and the
      NTLM hop, its unit and its configuration; its system user stays).
    type: str
    choices: [present, absent]
    default: present
attributes:
  check_mode:
    description: Reports what would change and changes nothing.
    support: full
  diff_mode:
    description: Shows every file before and after; the password is masked.
    support: full
notes:
  - After writing a layer the module reads it back through its consumer, where that is installed, as the last
    step - C(systemctl show-environment), C(apt-config dump), C(git config --system --get http.proxy),
    C(npm config get), C(pip3 config list) - and fails naming the layer when the consumer sees something else.
  - In C(DefaultEnvironment) and the docker drop-in a C(%) (of a percent-encoded password, say) is written as
    C(%%), because systemd expands specifiers there.
  - Every file is written through the collection's change engine - a symbolic link on the way to a target below
    C(/etc) is refused, never followed.
  - The docker daemon is restarted only when its drop-in changed and docker is installed; the systemd manager is
    re-executed when its drop-in changed, so services started afterwards see the proxy.
  - Debian's Firefox ESR reads C(/etc/firefox/policies/policies.json) (C(/etc/) plus its application name, which is
    C(Firefox) for firefox-esr too) when it exists, else C(/usr/lib/firefox-esr/distribution/policies.json);
    Thunderbird C(/etc/thunderbird/policies/policies.json), else C(/usr/lib/thunderbird/distribution/policies.json).
    The module merges its C(Proxy) policy into the file that is read, keeping every other policy.
"""

EXAMPLES = r"""
- name: Corporate proxy on 8080 for every layer of the client
  netreach.tunnels.client_proxy:
    http_proxy: http://proxy.corp.example:8080
    https_proxy: http://proxy.corp.example:8080
    no_proxy: [localhost, 127.0.0.1, "::1", .corp.example, 10.0.0.0/8]

- name: Thunderbird (and Firefox) through the SOCKS forward of a tunnel on 127.0.0.1:3128
  netreach.tunnels.client_proxy:
    socks_proxy: socks5h://127.0.0.1:3128
    targets: [firefox, thunderbird]
    browser_locked: true

- name: An NTLM proxy through the local hop (cntlm on 127.0.0.1:3130; every layer points there)
  netreach.tunnels.client_proxy:
    http_proxy: http://proxy.corp.example:8080
    auth: ntlm
    username: CORP\alice
    password: "{{ vault_corp_password }}"
    no_proxy: [localhost, 127.0.0.1, .corp.example]

- name: Remove everything client_proxy wrote
  netreach.tunnels.client_proxy:
    state: absent
"""

RETURN = r"""
files:
  description: Files that changed (or would change in check mode).
  returned: always
  type: list
  elements: str
  sample: [/etc/environment, /etc/profile.d/netreach-proxy.sh]
warnings_list:
  description: The warnings of this run (also shown as warnings), e.g. no_proxy entries a consumer cannot express.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.netreach.tunnels.plugins.module_utils._declaration import DeclarationError
from ansible_collections.netreach.tunnels.plugins.module_utils._proxy import (
    BROWSER_MODES,
    TARGETS,
    parse_proxy_settings,
    parse_targets,
)
from ansible_collections.netreach.tunnels.plugins.module_utils._proxy_apply import plan_proxy


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            http_proxy=dict(type="str"),
            https_proxy=dict(type="str"),
            socks_proxy=dict(type="str"),
            no_proxy=dict(type="list", elements="str", default=[]),
            username=dict(type="str"),
            password=dict(type="str", no_log=True),
            auth=dict(type="str", choices=["basic", "ntlm"], default="basic"),
            domain=dict(type="str"),
            hop_port=dict(type="int", default=3130),
            ntlm_auth=dict(type="str", choices=["NTLMv2", "NTLM2SR", "NTLM"], default="NTLMv2"),
            targets=dict(type="list", elements="str", choices=list(TARGETS), default=list(TARGETS)),
            browser_mode=dict(type="str", choices=list(BROWSER_MODES), default="manual"),
            browser_autoconfig_url=dict(type="str"),
            browser_locked=dict(type="bool", default=False),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    settings = None
    try:
        # absent validates the layers it cleans exactly as present does
        layers = parse_targets(params)
        if params["state"] == "present":
            settings = parse_proxy_settings(params)
    except DeclarationError as exc:
        module.fail_json(msg=str(exc), field=exc.field)
    result = plan_proxy(module, settings, layers)
    for warning in result["warnings_list"]:
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
