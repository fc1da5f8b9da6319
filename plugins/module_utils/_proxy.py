# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: the client proxy model. Not a public API; it may change at any time.
#
# parse_proxy_settings() turns module parameters into ProxySettings (or raises DeclarationError naming the bad
# field); the render_*() functions and the read-back parsers (what a consumer's own tool prints, parsed back)
# are pure: text in, text out. Nothing here touches the host.
"""One proxy declaration rendered for every layer that reads its own proxy configuration."""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field, replace
from urllib.parse import quote

from ansible_collections.netreach.tunnels.plugins.module_utils import _blocks
from ansible_collections.netreach.tunnels.plugins.module_utils._declaration import (
    DEFAULT_HOP_PORT,
    DeclarationError,
    bracket,
    check_host,
    check_port,
    check_text,
    ntlm_identity,
)
from ansible_collections.netreach.tunnels.plugins.module_utils._proxy_hop import NTLM_AUTH, NtlmHop

TARGETS = ("environment", "systemd", "apt", "dnf", "docker", "git", "pip", "npm", "wget", "sudo", "firefox",
           "thunderbird")
BROWSER_MODES = ("manual", "system", "autoConfig", "none")
HTTP_SCHEMES = ("http", "https")
SOCKS_SCHEMES = ("socks4", "socks4a", "socks5", "socks5h")
DEFAULT_PORTS = {"http": 80, "https": 443, "socks4": 1080, "socks4a": 1080, "socks5": 1080, "socks5h": 1080}

BEGIN = "# BEGIN netreach.tunnels client_proxy (managed block, do not edit)"
END = "# END netreach.tunnels client_proxy"

URL_RE = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<userinfo>[^@/]*@)?"
                    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[^:/\[\]]+)(?::(?P<port>[0-9]{1,5}))?/?$")


# The one declaration error of the collection; the old name stays for the tests and callers that use it.
ProxyError = DeclarationError


@dataclass(frozen=True)
class ProxyURL:
    scheme: str
    host: str  # IPv6 without brackets
    port: int

    @property
    def hostport(self) -> str:
        return f"{bracket(self.host)}:{self.port}"

    def url(self, username: str | None = None, password: str | None = None) -> str:
        """The URL with credentials percent-encoded (every reserved character, so ':' and '@' stay data)."""
        auth = ""
        if username:
            auth = quote(username, safe="")
            if password:
                auth += ":" + quote(password, safe="")
            auth += "@"
        return f"{self.scheme}://{auth}{self.hostport}"


@dataclass(frozen=True)
class NoProxyEntry:
    kind: str  # "host" | "ip" | "domain" | "cidr"
    value: str  # domains keep their leading dot

    @property
    def bare(self) -> str:
        return self.value.lstrip(".")


@dataclass(frozen=True)
class ProxySettings:
    http: ProxyURL | None
    https: ProxyURL | None
    socks: ProxyURL | None
    no_proxy: tuple[NoProxyEntry, ...]
    username: str | None
    password: str | None = field(repr=False)
    targets: tuple[str, ...]
    browser_mode: str = "manual"
    browser_autoconfig_url: str | None = None
    browser_locked: bool = False
    # How often git percent-decodes proxy credentials with proxyAuthMethod=basic: twice for git 2.39.5 + libcurl
    # 7.88.1 (Debian 12: "%41" reaches the proxy as "A"), once for 2.47.3 + 8.14.1 (Debian 13); measured.
    git_decodes: int = 1
    # auth ntlm: the local hop every layer points at (then username and password are None here).
    hop: NtlmHop | None = None

    def url(self, proxy: ProxyURL | None) -> str | None:
        return proxy.url(self.username, self.password) if proxy else None

    def git_url(self, proxy: ProxyURL | None) -> str | None:
        """The URL for git's http.proxy: the credentials' "%" encoded again for each extra decode."""
        url = self.url(proxy)
        if not url or not self.username or self.git_decodes <= 1:
            return url
        scheme, rest = url.split("://", 1)
        auth, hostport = rest.rsplit("@", 1)
        for _extra in range(self.git_decodes - 1):
            auth = auth.replace("%", "%25")
        return f"{scheme}://{auth}@{hostport}"

    @property
    def secrets(self) -> list[str]:
        """Every spelling of the password that can appear in a rendered file, for masking diffs."""
        if self.hop:
            return self.hop.secrets
        if not self.password:
            return []
        encoded = quote(self.password, safe="")
        return [self.password, encoded, systemd_escape(encoded), encoded.replace("%", "%25")]

    @property
    def env(self) -> list[tuple[str, str]]:
        """Variables for the environment, lower case first (curl and most tools prefer it), then upper case."""
        pairs = []
        for name, proxy in (("http_proxy", self.http), ("https_proxy", self.https), ("all_proxy", self.socks)):
            if proxy:
                pairs.append((name, self.url(proxy)))
        if self.no_proxy and pairs:
            pairs.append(("no_proxy", ",".join(entry.value for entry in self.no_proxy)))
        return pairs + [(name.upper(), value) for name, value in pairs]


def parse_url(field_name: str, value: str, schemes: tuple[str, ...]) -> ProxyURL:
    check_text(value, field_name)
    match = URL_RE.match(value)
    if not match:
        raise ProxyError(field_name, f"{value!r} is not a proxy URL like {schemes[0]}://host:port")
    scheme = match.group("scheme").lower()
    if scheme not in schemes:
        raise ProxyError(field_name, f"scheme {scheme!r} is not one of {', '.join(schemes)}")
    if match.group("userinfo"):
        raise ProxyError(field_name, "put credentials in username and password, not in the URL")
    port = int(match.group("port")) if match.group("port") else DEFAULT_PORTS[scheme]
    if not 1 <= port <= 65535:
        raise ProxyError(field_name, f"port {port} is out of range 1-65535")
    return ProxyURL(scheme, check_host(match.group("host"), field_name, brackets=True), port)


def parse_no_proxy_entry(field_name: str, value: str) -> NoProxyEntry:
    value = check_text(str(value).strip(), field_name)
    if value.startswith("*."):
        value = value[1:]
    if "/" in value:
        try:
            return NoProxyEntry("cidr", str(ipaddress.ip_network(value, strict=False)))
        except ValueError:
            raise ProxyError(field_name, f"{value!r} is not a CIDR network") from None
    try:
        return NoProxyEntry("ip", str(ipaddress.ip_address(value)))
    except ValueError:
        pass
    try:
        if value.startswith("."):
            return NoProxyEntry("domain", "." + check_host(value[1:], field_name))
        return NoProxyEntry("host", check_host(value, field_name))
    except DeclarationError:
        raise ProxyError(field_name, f"{value!r} is not a host, .domain, IP address or CIDR network") from None


def parse_targets(params: dict) -> tuple[str, ...]:
    """The layers to write (present) or clean (absent), each once, in the order given."""
    targets: list[str] = []
    for index, target in enumerate(params.get("targets") or []):
        if target not in TARGETS:
            raise ProxyError(f"targets[{index}]", f"unknown target {target!r}; known: {', '.join(TARGETS)}")
        if target not in targets:
            targets.append(target)
    return tuple(targets)


def parse_proxy_settings(params: dict) -> ProxySettings:
    http = parse_url("http_proxy", params["http_proxy"], HTTP_SCHEMES) if params.get("http_proxy") else None
    https = parse_url("https_proxy", params["https_proxy"], HTTP_SCHEMES) if params.get("https_proxy") else None
    socks = parse_url("socks_proxy", params["socks_proxy"], SOCKS_SCHEMES) if params.get("socks_proxy") else None
    if not (http or https or socks):
        raise ProxyError("http_proxy", "declare at least one of http_proxy, https_proxy and socks_proxy")
    entries: list[NoProxyEntry] = []
    for index, value in enumerate(params.get("no_proxy") or []):
        entry = parse_no_proxy_entry(f"no_proxy[{index}]", value)
        if entry not in entries:
            entries.append(entry)
    username = check_text(params["username"], "username") if params.get("username") else None
    password = check_text(params["password"], "password") if params.get("password") else None
    if password and not username:
        raise ProxyError("password", "a password needs a username")
    targets = parse_targets(params)
    mode = params.get("browser_mode") or "manual"
    if mode not in BROWSER_MODES:
        raise ProxyError("browser_mode", f"{mode!r} is not one of {', '.join(BROWSER_MODES)}")
    autoconfig = params.get("browser_autoconfig_url")
    if mode == "autoConfig":
        if not autoconfig:
            raise ProxyError("browser_autoconfig_url", "browser_mode autoConfig needs browser_autoconfig_url")
        check_text(autoconfig, "browser_autoconfig_url")
        if not re.match(r"^(https?|file)://\S+$", autoconfig):
            raise ProxyError("browser_autoconfig_url", f"{autoconfig!r} is not an http(s):// or file:// URL")
    settings = ProxySettings(http, https, socks, tuple(entries), username, password, tuple(targets), mode,
                             autoconfig, bool(params.get("browser_locked")))
    auth = params.get("auth") or "basic"
    if auth not in ("basic", "ntlm"):
        raise ProxyError("auth", f"{auth!r} is not one of basic, ntlm")
    if params.get("domain") is not None:
        check_text(params["domain"], "domain")
    if auth == "basic":
        if params.get("domain"):
            raise ProxyError("domain", "only auth ntlm takes a domain")
        return settings
    return through_hop(settings, params)


def through_hop(settings: ProxySettings, params: dict) -> ProxySettings:
    """auth ntlm: the hop authenticates to the declared HTTP proxy; every layer gets the hop, no credentials."""
    upstream = settings.http or settings.https
    if upstream is None:
        raise ProxyError("http_proxy", "auth ntlm needs the proxy the hop talks to in http_proxy")
    if settings.http and settings.https and settings.https.hostport != settings.http.hostport:
        raise ProxyError("https_proxy", "with auth ntlm the hop talks to one proxy: https_proxy must be http_proxy")
    if upstream.scheme != "http":
        raise ProxyError("http_proxy", "the NTLM hop (cntlm) talks to an http:// proxy")
    user, domain = ntlm_identity(settings.username, params.get("domain"))
    if not settings.password:
        raise ProxyError("password", "auth ntlm needs the password (the hop keeps only its NTLMv2 hash)")
    port = check_port(DEFAULT_HOP_PORT if params.get("hop_port") is None else params["hop_port"], "hop_port")
    ntlm_auth = params.get("ntlm_auth") or "NTLMv2"
    if ntlm_auth not in NTLM_AUTH:
        raise ProxyError("ntlm_auth", f"{ntlm_auth!r} is not one of {', '.join(NTLM_AUTH)}")
    hop = NtlmHop(upstream.host, upstream.port, user, domain, settings.password, port, ntlm_auth)
    local = ProxyURL("http", "127.0.0.1", port)
    return replace(settings, http=local if settings.http else None, https=local if settings.https else None,
                   username=None, password=None, hop=hop)


# --- managed blocks in files we share with the administrator --------------------------------------------

def cut_block(text: str) -> tuple[str, int | None]:
    return _blocks.cut_block(text, BEGIN, END)


def remove_block(text: str) -> str:
    return _blocks.cut_block(text, BEGIN, END)[0]


def merge_block(text: str | None, lines: list[str], section: str | None = None) -> str:
    return _blocks.merge_block(text, lines, BEGIN, END, section)


# --- renderers -------------------------------------------------------------------------------------------

OWNED_HEADER = "# Written by netreach.tunnels client_proxy; state=absent removes this file."
ENV_NAMES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
             "NO_PROXY", "ftp_proxy", "FTP_PROXY")
PATHS = {
    "environment": "/etc/environment",
    "profile": "/etc/profile.d/netreach-proxy.sh",
    "systemd": "/etc/systemd/system.conf.d/netreach-proxy.conf",
    "apt": "/etc/apt/apt.conf.d/80netreach-proxy",
    "dnf": "/etc/dnf/dnf.conf",
    "docker": "/etc/systemd/system/docker.service.d/netreach-proxy.conf",
    "git": "/etc/gitconfig",
    "pip": "/etc/pip.conf",
    "npm": "/etc/npmrc",
    "wget": "/etc/wgetrc",
    "sudo": "/etc/sudoers.d/netreach-proxy",
}
# Where Debian's packages read enterprise policies: the system-wide file, SysConfD/policies/policies.json with
# SysConfD = /etc/ + the application's name in lower case ("Firefox" for firefox-esr too, so /etc/firefox),
# read first when it exists; else the installation's distribution directory.
POLICY_PATHS = {
    "firefox": ("/etc/firefox/policies/policies.json", "/usr/lib/firefox-esr/distribution/policies.json"),
    "thunderbird": ("/etc/thunderbird/policies/policies.json", "/usr/lib/thunderbird/distribution/policies.json"),
}


def systemd_escape(value: str) -> str:
    """A value for a unit file's Environment=, where % starts a specifier."""
    return value.replace("%", "%%")


def warn_unsupported(warnings: list[str], consumer: str, entries: list[NoProxyEntry], why: str) -> None:
    if entries:
        warnings.append(f"no_proxy: {consumer} {why}; not applied there: {', '.join(e.value for e in entries)}")


def render_environment_lines(settings: ProxySettings) -> list[str]:
    return [f'{name}="{value}"' for name, value in settings.env]


def render_profile(settings: ProxySettings) -> str:
    lines = [OWNED_HEADER, "# Proxy variables for login shells (upper and lower case)."]
    lines += [f"export {name}='{value}'" for name, value in settings.env]
    return "\n".join(lines) + "\n"


def render_systemd(settings: ProxySettings) -> str:
    # DefaultEnvironment= expands specifiers: a percent-encoded password's "%" must be "%%", or systemd drops
    # the whole assignment (and the proxy silently vanishes from every service).
    assignments = " ".join(f'"{name}={systemd_escape(value)}"' for name, value in settings.env)
    return f"{OWNED_HEADER}\n# Every service started by the system manager sees the proxy.\n[Manager]\nDefaultEnvironment={assignments}\n"


def render_docker(settings: ProxySettings) -> str:
    lines = [OWNED_HEADER, "# dockerd pulls images through the proxy.", "[Service]"]
    lines += [f'Environment="{name}={systemd_escape(value)}"' for name, value in settings.env if name.isupper()]
    return "\n".join(lines) + "\n"


def render_apt(settings: ProxySettings, warnings: list[str]) -> str:
    lines = [OWNED_HEADER]
    for scheme, proxy in (("http", settings.http), ("https", settings.https or settings.http)):
        if proxy:
            lines.append(f'Acquire::{scheme}::Proxy "{settings.url(proxy)}";')
    direct = [e for e in settings.no_proxy if e.kind == "host" or (e.kind == "ip" and ":" not in e.value)]
    for entry in direct:
        for scheme, proxy in (("http", settings.http), ("https", settings.https or settings.http)):
            if proxy:
                lines.append(f'Acquire::{scheme}::Proxy::{entry.value} "DIRECT";')
    warn_unsupported(warnings, "apt", [e for e in settings.no_proxy if e not in direct],
                     "takes DIRECT only per host name or IPv4 address (no domains, CIDR or IPv6)")
    if settings.socks and not (settings.http or settings.https):
        warnings.append("apt: only http_proxy/https_proxy are written for apt; socks_proxy is not used there")
    return "\n".join(lines) + "\n"


def render_dnf_lines(settings: ProxySettings, warnings: list[str]) -> list[str]:
    proxy = settings.https or settings.http or settings.socks
    lines = [f"proxy={proxy.url()}"]
    if settings.username:
        lines.append(f"proxy_username={settings.username}")
    if settings.password:
        lines.append(f"proxy_password={settings.password}")
    warn_unsupported(warnings, "dnf", list(settings.no_proxy), "has no no_proxy setting in dnf.conf")
    return lines


def render_git_lines(settings: ProxySettings, warnings: list[str]) -> list[str]:
    proxy = settings.http or settings.https or settings.socks
    lines = ["[http]", f"\tproxy = {settings.git_url(proxy)}"]
    if settings.username:
        # With its default (anyauth) git's dumb-HTTP object fetches meet the proxy's 407 without answering it.
        lines.append("\tproxyAuthMethod = basic")
    for entry in settings.no_proxy:
        if entry.kind == "cidr":
            continue
        host = f"*{entry.value}" if entry.kind == "domain" else bracket(entry.value)
        for scheme in ("http", "https"):
            lines += [f'[http "{scheme}://{host}"]', '\tproxy = ""']
    warn_unsupported(warnings, "git", [e for e in settings.no_proxy if e.kind == "cidr"],
                     "matches URLs by host name, not by network")
    return lines


def render_pip_lines(settings: ProxySettings, warnings: list[str]) -> list[str]:
    proxy = settings.http or settings.https or settings.socks
    warn_unsupported(warnings, "pip", list(settings.no_proxy),
                     "has no no_proxy setting in pip.conf (it honours the environment's no_proxy)")
    return [f"proxy = {settings.url(proxy)}"]


def render_npm_lines(settings: ProxySettings, warnings: list[str]) -> list[str]:
    lines = []
    if settings.http:
        lines.append(f"proxy={settings.url(settings.http)}")
    if settings.https or settings.http:
        lines.append(f"https-proxy={settings.url(settings.https or settings.http)}")
    names = [e.value for e in settings.no_proxy if e.kind != "cidr"]
    if names:
        lines.append(f"noproxy={','.join(names)}")
    warn_unsupported(warnings, "npm", [e for e in settings.no_proxy if e.kind == "cidr"], "does not match CIDR networks")
    return lines


def render_wget_lines(settings: ProxySettings, warnings: list[str]) -> list[str]:
    lines = ["use_proxy = on"]
    if settings.http:
        lines.append(f"http_proxy = {settings.url(settings.http)}")
    if settings.https or settings.http:
        lines.append(f"https_proxy = {settings.url(settings.https or settings.http)}")
    names = [e.value for e in settings.no_proxy if e.kind != "cidr"]
    if names:
        lines.append(f"no_proxy = {','.join(names)}")
    warn_unsupported(warnings, "wget", [e for e in settings.no_proxy if e.kind == "cidr"], "does not match CIDR networks")
    return lines


def render_sudo() -> str:
    return f'{OWNED_HEADER}\n# sudo keeps the proxy variables.\nDefaults env_keep += "{" ".join(ENV_NAMES)}"\n'


def render_proxy_policy(settings: ProxySettings, warnings: list[str]) -> dict:
    """The Proxy policy of Firefox and Thunderbird enterprise policies."""
    policy: dict = {"Mode": settings.browser_mode, "Locked": settings.browser_locked}
    if settings.browser_mode == "autoConfig":
        policy["AutoConfigURL"] = settings.browser_autoconfig_url
    if settings.browser_mode == "manual":
        if settings.http:
            policy["HTTPProxy"] = settings.http.hostport
        if settings.https or settings.http:
            policy["SSLProxy"] = (settings.https or settings.http).hostport
        if settings.socks:
            policy["SOCKSProxy"] = settings.socks.hostport
            policy["SOCKSVersion"] = 4 if settings.socks.scheme.startswith("socks4") else 5
            policy["UseProxyForDNS"] = settings.socks.scheme in ("socks5h", "socks4a")
        policy["UseHTTPProxyForAllProtocols"] = False
    if settings.no_proxy and settings.browser_mode == "manual":
        policy["Passthrough"] = ", ".join(entry.value for entry in settings.no_proxy)
    if settings.username and settings.browser_mode == "manual":
        # Firefox asks once and keeps the login; AutoLogin answers the proxy's 407 with it from then on.
        policy["AutoLogin"] = True
        warnings.append("firefox/thunderbird: the Proxy policy has no credentials; the browser asks for them once")
    return policy


def merge_policies(text: str | None, policy: dict | None) -> str | None:
    """policies.json TEXT with the Proxy policy set to POLICY (None: removed); every other policy stays.
    Returns None when nothing would be left of a file that held only the Proxy policy."""
    document = json.loads(text) if text and text.strip() else {}
    if not isinstance(document, dict) or not isinstance(document.get("policies", {}), dict):
        raise ProxyError("targets", "policies.json does not hold an object with a 'policies' object")
    policies = dict(document.get("policies", {}))
    if policy is None:
        policies.pop("Proxy", None)
    else:
        policies["Proxy"] = policy
    if not policies and set(document) <= {"policies"}:
        return None
    document["policies"] = policies
    return json.dumps(document, indent=2, sort_keys=False) + "\n"
