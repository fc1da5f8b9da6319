"""The bad-input catalogue's data: every row is (module, parameters, field the error must name).

One source for the unit test (tests/unit/catalogue/test_bad_input.py, against the parsers) and the badinput
Molecule scenario (through ansible, against real hosts). An empty value where the module has a default (proto,
forward_policy, a masquerade source) is the default, not bad input.
"""
from __future__ import annotations

from ansible_collections.netreach.tunnels.plugins.module_utils._nat import parse_nat
from ansible_collections.netreach.tunnels.plugins.module_utils._engine import ConfinementError
from ansible_collections.netreach.tunnels.plugins.module_utils._proxy import TARGETS, parse_proxy_settings, parse_targets
from ansible_collections.netreach.tunnels.plugins.module_utils._session import SessionError, parse_name, parse_session
from ansible_collections.netreach.tunnels.plugins.module_utils._session_apply import session_targets
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel import parse_identity, parse_request
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_fleet import client_entries
from ansible_collections.netreach.tunnels.plugins.module_utils._metrics_plan import parse_metrics
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_server import parse_entries, parse_server

TUNNEL = dict(
    name="news", server="newshost.example.org", port=22, user="tunnel", run_as="netreach-tunnel",
    known_hosts=["newshost.example.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA"], jump_hosts=[], proxy=None,
    local_forwards=["12345:localhost:119"], remote_forwards=[], dynamic_forwards=[], engine="ssh",
    keepalive_interval=5, keepalive_count_max=3, connect_timeout=10, restart_delay=1, restart_max_delay=30,
)
ENTRY = {"account": "tunnel", "client": "laptop", "tunnel": "news", "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA"}
INJECTIONS = ["a\nb", "a\rb", "a b", 'a"b', "a'b", "a;b", "a%b", "-oProxyCommand=sh", "a,b", "a#b", "a\tb", "$(id)", "a`b`"]

CASES: list[tuple[str, dict, str]] = []


def tunnel_case(field: str, **changes) -> None:
    CASES.append(("ssh_tunnel", {**TUNNEL, **changes}, field))


# names and users
# (A number is no bad name for the module: its argument spec turns 7 into "7". The tunnel_server role reads
# declarations raw from inventory, so the fleet cases below hold the number.)
for bad in ["", "News", "a/b", "a b", "a\nb", "-a", "a.b", "a%b", "é", "x" * 64, None]:
    tunnel_case("name", name=bad)
for key in ("user", "run_as"):
    for bad in ["", "Root", "a b", "a\nb", "-a", "a:b", "x" * 33, 0]:
        tunnel_case(key, **{key: bad})
# ports and numbers
for bad in [0, 65536, -1, "abc", "22a", "", True, 1.5, None]:
    tunnel_case("port", port=bad)
for key, bad in [("keepalive_interval", 0), ("keepalive_interval", 3601), ("keepalive_count_max", "3x"),
                 ("connect_timeout", 0), ("restart_delay", -1), ("restart_max_delay", 0), ("keepalive_interval", True)]:
    tunnel_case(key, **{key: bad})
tunnel_case("restart_max_delay", restart_delay=10, restart_max_delay=5)
tunnel_case("engine", engine="mosh")
# hosts: option injection into ssh_config through any host field
for bad in INJECTIONS + ["", "::1::2", "[::1]", "fe80::1%eth0"]:
    tunnel_case("server", server=bad)
for bad in INJECTIONS[:8]:
    tunnel_case("jump_hosts[0]", jump_hosts=[f"tunnel@{bad}:22"])
tunnel_case("jump_hosts[0]", jump_hosts=["tunnel@bastion:0"])
tunnel_case("jump_hosts[0]", jump_hosts=["Bad User@bastion:22"])
tunnel_case("jump_hosts[0]", jump_hosts=[{"host": "bastion"}])
# forwards of every malformed shape
for spec in ["", "12345", "12345:localhost", "0:localhost:119", "65536:localhost:119", "12345:localhost:0",
             "12345:localhost:abc", "a:b:c:d:e", "12345::119", "::1:12345:localhost:119", "[::1:12345:h:1",
             "12345:local host:119", "12345:localhost:119\nProxyCommand sh", "12345:-oProxyCommand=sh:119",
             "12345:h%h:119", "12345:h\"x:119"]:
    CASES.append(("ssh_tunnel", {**TUNNEL, "local_forwards": [spec]}, "local_forwards[0]"))
for spec in ["2222", "2222:localhost", "0:localhost:22", "2222:localhost:99999", "2222:a b:22"]:
    CASES.append(("ssh_tunnel", {**TUNNEL, "local_forwards": [], "remote_forwards": [spec]}, "remote_forwards[0]"))
for spec in ["0", "65536", "127.0.0.1:0", "a b:3128", "3128:localhost:80", "[::1:3128", "3128\nX"]:
    CASES.append(("ssh_tunnel", {**TUNNEL, "local_forwards": [], "dynamic_forwards": [spec]}, "dynamic_forwards[0]"))
CASES.append(("ssh_tunnel", {**TUNNEL, "local_forwards": [{"port": 1, "host": "h"}]}, "local_forwards[0]"))
CASES.append(("ssh_tunnel", {**TUNNEL, "local_forwards": [{"port": 1, "host": "h", "host_port": 1, "extra": 1}]},
              "local_forwards[0]"))
CASES.append(("ssh_tunnel", {**TUNNEL, "local_forwards": []}, "local_forwards"))
CASES.append(("ssh_tunnel", {**TUNNEL, "local_forwards": ["12345:a:1", "127.0.0.1:12345:b:2"]}, "local_forwards"))
CASES.append(("ssh_tunnel", {**TUNNEL, "local_forwards": ["3128:a:1"], "dynamic_forwards": ["127.0.0.1:3128"]},
              "dynamic_forwards"))
# known_hosts, key path, proxy
for bad in ["", "host", "host ssh-ed25519", "host ssh-dss AAAA", "host ssh-ed25519 AAAA\nother ssh-ed25519 BBBB",
            "# comment", "@ ssh-ed25519 AAAA", 7]:
    tunnel_case("known_hosts[0]", known_hosts=[bad])
for bad in ["relative/key", "/etc/../key", "/etc/key with space", "/etc/key\n", "/etc/key;rm"]:
    tunnel_case("identity_file", identity_file=bad)
for proxy, field in [({"type": "ftp", "host": "p", "port": 8080}, "proxy.type"),
                     ({"type": "http", "host": "p q", "port": 8080}, "proxy.host"),
                     ({"type": "http", "host": "p", "port": 0}, "proxy.port"),
                     ({"type": "http", "host": "p", "port": 8080, "username": "u"}, "proxy"),
                     ({"type": "http", "host": "p", "port": 8080, "username": "u:v", "password": "Row-pw-123"}, "proxy.username"),
                     ({"type": "http", "host": "p", "port": 8080, "username": "u", "password": "a\nb"}, "proxy.password"),
                     ({"type": "http", "host": "p", "port": 8080, "pasword": "typo"}, "proxy"),
                     ("http://proxy:8080", "proxy"),
                     ({"type": "http", "host": "p", "port": 8080, "username": "alice", "password": "Row-pw-123",
                       "auth": "ntlm"}, "proxy.domain"),
                     ({"type": "http", "host": "p", "port": 8080, "username": "CORP\\alice", "password": "a\x00b",
                       "auth": "ntlm"}, "proxy.password"),
                     ({"type": "socks5", "host": "p", "port": 8080, "username": "CORP\\alice", "auth": "ntlm"},
                      "proxy.auth")]:
    tunnel_case(field, proxy=proxy)


# tunnel_server entries
def entry_case(field: str, **changes) -> None:
    CASES.append(("tunnel_server", {**ENTRY, **changes}, field))


for bad in INJECTIONS[:8] + ["Root", ""]:
    entry_case("entries[0].account", account=bad)
for bad in INJECTIONS[:8] + [""]:
    entry_case("entries[0].client", client=bad)
    entry_case("entries[0].tunnel", tunnel=bad)
for bad in ["", "AAAA", "ssh-dss AAAA", "ssh-ed25519 AAAA\nssh-ed25519 BBBB", "ssh-ed25519 AA\"AA", 7]:
    entry_case("entries[0].public_key", public_key=bad)
for bad in ['h:1",command="sh', "h", "h:abc", "h :1", "h:1\n", "[::1:1"]:
    entry_case("entries[0].opens", opens=[bad])
for bad in ['1",command="sh', "a:b:c", "h: 1", "1\n"]:
    entry_case("entries[0].listens", listens=[bad])
entry_case("entries[0].opens", opens="h:1")
entry_case("entries[0].any_open", any_open="yes")


# the fleet view: what the tunnel_server role reads from clients' tunnel_client_tunnels
def fleet_case(field: str, declaration) -> None:
    CASES.append(("tunnel_server role", {"tunnels": [declaration]}, field))


fleet_case("laptop: tunnel_client_tunnels[0]", "not a dict")
fleet_case("laptop: tunnel_client_tunnels[0].dynamic_forwards",
           {"name": "socks", "server": "bastion", "dynamic_forwards": ["3128"]})
fleet_case("laptop: tunnel_client_tunnels[0].server_allow_dynamic",
           {"name": "socks", "server": "bastion", "dynamic_forwards": ["3128"], "server_allow_dynamic": "yes"})
fleet_case("laptop: tunnel_client_tunnels[0].local_forwards[0].port",
           {"name": "news", "server": "bastion", "local_forwards": ["0:h:1"]})
fleet_case("laptop: tunnel_client_tunnels[0].name", {"name": "Bad Name", "server": "bastion", "local_forwards": ["1:h:1"]})
# Types the modules' argument specs would convert ("3" to 3, 7 to "7") stay what inventory holds here.
fleet_case("laptop: tunnel_client_tunnels[0].name", {"name": 7, "server": "bastion", "local_forwards": ["1:h:1"]})
fleet_case("laptop: tunnel_client_tunnels[0].keepalive_count_max",
           {"name": "news", "server": "bastion", "local_forwards": ["1:h:1"], "keepalive_count_max": "3"})
fleet_case("laptop: tunnel_client_tunnels[0].jump_hosts[0]",
           {"name": "news", "server": "n", "jump_hosts": ["bastion:0"], "local_forwards": ["1:h:1"]})


# The role's account checks, made by the module before anything changes (its only task): root is never a tunnel
# account, and every account a tunnel logs in to (its user, a jump host's user) is one of tunnel_server_accounts.
def role_accounts_case(field: str, accounts: list, declaration: dict) -> None:
    CASES.append(("tunnel_server role", {"tunnels": [declaration], "accounts": accounts}, field))


NEWS = {"name": "news", "server": "bastion", "local_forwards": ["1:h:1"]}
role_accounts_case("accounts", ["root"], {**NEWS, "user": "root"})
role_accounts_case("accounts", ["tunnel", "root"], NEWS)
role_accounts_case("accounts", ["tunnel", "Bad User"], NEWS)
role_accounts_case("entries[0].account", ["tunnel"], {**NEWS, "user": "admin"})
role_accounts_case("entries[0].account", ["tunnel"],
                   {**NEWS, "server": "n", "jump_hosts": ["admin@bastion:22"]})


# nat_rules
NAT = dict(masquerade=[{"out_interface": "eth0", "source": "10.10.0.0/24"}], snat=[],
           port_forwards=[{"proto": "tcp", "port": 8080, "to": "10.10.0.5:80", "in_interface": "eth0"}],
           forward_policy="drop", ip_forward=True)


def nat_case(field: str, **changes) -> None:
    CASES.append(("nat_rules", {**NAT, **changes}, field))


for bad in ["10.10.0.0/33", "10.10.0.1/24", "fd00::/129", "10.10.0.0/24; flush ruleset", "any", "10.10.0.0/24 x"]:
    nat_case("masquerade[0].source", masquerade=[{"out_interface": "eth0", "source": bad}])
for bad in INJECTIONS + ["averyveryverylongname", "", "eth0}", "eth0{"]:
    nat_case("masquerade[0].out_interface", masquerade=[{"out_interface": bad, "source": "10.10.0.0/24"}])
for bad in [0, 65536, -1, "abc", "10-5", "80;", "80-", True, 1.5, "", "1-70000"]:
    nat_case("port_forwards[0].port", port_forwards=[{"port": bad, "to": "10.10.0.5:80"}])
for bad in [":80", "web.example:80", "[10.0.0.5]:80", "10.0.0.5:80 counter", "10.0.0.5:0", "10.0.0.5:99999",
            "fd00::5:22:x", "10.0.0.256", "10.0.0.5:80\naccept", ""]:
    nat_case("port_forwards[0].to", port_forwards=[{"port": 80, "to": bad}])
for bad in INJECTIONS[:8]:
    nat_case("port_forwards[0].in_interface", port_forwards=[{"port": 80, "to": "10.0.0.5", "in_interface": bad}])
for proto in ["icmp", "TCP;", "all", "tcp udp"]:
    nat_case("port_forwards[0].proto", port_forwards=[{"proto": proto, "port": 80, "to": "10.0.0.5"}])
nat_case("port_forwards[0].source", port_forwards=[{"port": 80, "to": "10.0.0.5", "source": "fd00::/64"}])
nat_case("port_forwards[0]", port_forwards=[{"port": 80, "to": "10.0.0.5", "bogus": 1}])
nat_case("port_forwards[1].port", port_forwards=[{"port": 80, "to": "10.0.0.5"}, {"port": "70-90", "to": "10.0.0.6"}])
nat_case("snat[0].to", snat=[{"out_interface": "eth0", "source": "10.20.0.0/24", "to": "host.example"}])
nat_case("snat[0].to", snat=[{"out_interface": "eth0", "source": "10.20.0.0/24", "to": "fd00::1"}])
for bad in ["reject", "DROP;", "drop accept"]:
    nat_case("forward_policy", forward_policy=bad)
for bad in ["accept", "FAIL", "fail;", "ignore all"]:
    nat_case("foreign_drop", foreign_drop=bad)

# client_proxy
PROXY = dict(http_proxy="http://proxy.corp:8080", https_proxy="http://proxy.corp:8080", socks_proxy=None,
             no_proxy=["localhost"], username=None, password=None, targets=list(TARGETS))


def proxy_case(field: str, **changes) -> None:
    CASES.append(("client_proxy", {**PROXY, **changes}, field))


for bad in ["ftp://proxy:21", "proxy.corp:8080", "http://", "http://proxy:0", "http://proxy:99999", "http://pro xy:8080",
            "http://proxy:8080\nX", "http://proxy:8080/path\"", "javascript:alert(1)", "http://user:pw@proxy:8080"]:
    proxy_case("http_proxy", http_proxy=bad)
# NTLM (issue 15 item 4): a domain is needed, credentials with a line break or NUL never reach the hop's file
for changes, field in [({"username": "alice"}, "domain"), ({"username": "CORP\\alice", "domain": "OTHER"}, "domain"),
                       ({"domain": "CORP\nProxy evil:1"}, "domain"), ({"domain": "CO\x00RP"}, "domain"),
                       ({"username": "CORP\\al\nice"}, "username"), ({"username": "CORP\\al\x00ice"}, "username"),
                       ({"password": "pw\nListen 0.0.0.0:3128"}, "password"), ({"password": "p\x00w"}, "password"),
                       ({"password": None}, "password"), ({"hop_port": 0}, "hop_port")]:
    proxy_case(field, **{"auth": "ntlm", "username": "CORP\\alice", "password": "Row-pw-123", **changes})
proxy_case("domain", domain="CORP", username="alice", password="Row-pw-123")
for bad in ["http://proxy:8080", "socks5h://", "socks5h://h:0", "socks9://h:1"]:
    proxy_case("socks_proxy", socks_proxy=bad)
for bad in ["a b", "a\nb", "a,b", 'a"b', "10.0.0.0/33", ""]:
    proxy_case("no_proxy[0]", no_proxy=[bad])
for bad in ["firefox-esr", "chrome", "", "apt;"]:
    proxy_case("targets[0]", targets=[bad])
proxy_case("http_proxy", http_proxy=None, https_proxy=None, socks_proxy=None)
proxy_case("password", password="secret")

# client_session
SESSION = dict(name="bastion-news", host="newshost.example.org", user="alice", port=22, proxy=None, tunnel=None,
               local_forwards=["12345:localhost:119"], dynamic_forwards=["3128"], remote_forwards=[])


def session_case(field: str, fmt: str = "openssh", **changes) -> None:
    CASES.append(("client_session", {**SESSION, **changes, "_format": fmt}, field))


for bad in ["a b", "a/b", "a\nb", "", "a=b"]:
    session_case("name", name=bad)
for bad in ["a]b", "a=b", "a\nb", "[x"]:
    session_case("name", "winscp", name=bad)
for bad in INJECTIONS[:8] + [""]:
    session_case("host", host=bad)
for bad in [0, 65536, "abc"]:
    session_case("port", port=bad)
session_case("format", "mobaxterm")
session_case("proxy.type", proxy={"type": "ftp", "host": "p", "port": 1})
session_case("proxy.host", proxy={"type": "http", "host": "p q", "port": 1})
session_case("proxy.port", proxy={"type": "http", "host": "p", "port": 0})
# (Passwords long enough that ansible's no_log masking of their value cannot cut into the error message.)
session_case("proxy.password", "putty", proxy={"type": "http", "host": "p", "port": 1, "password": "Row-pw-123"})
session_case("tunnel", "putty", proxy={"type": "http", "host": "p", "port": 1}, tunnel={"host": "b", "port": 22, "user": "t"})
for bad in ["0:localhost:119", "12345:a b:119", "12345:localhost:119\nProxyCommand sh"]:
    session_case("local_forwards[0]", local_forwards=[bad])
# client_session known_hosts: lines like the tunnels take, no line breaks, markers or patterns; PuTTY and WinSCP
# need a line for every server the session logs in to.
SESSION_KEY = "AAAAC3NzaC1lZDI1NTE5AAAAIHo3AHjIuHszXOGnyGddz/nLsSXEp4d+j5UqpEw1cdwr"
for fmt in ("openssh", "putty", "winscp"):
    for bad in [f"newshost.example.org ssh-ed25519 {SESSION_KEY}\nevil.example ssh-ed25519 {SESSION_KEY}",
                f"newshost.example.org ssh-ed25519 {SESSION_KEY}\r\n", f"newshost.example.org ssh-ed25519 {SESSION_KEY}\x00",
                f"@cert-authority *.example.org ssh-ed25519 {SESSION_KEY}", f"@revoked newshost.example.org ssh-ed25519 {SESSION_KEY}",
                f"*.example.org ssh-ed25519 {SESSION_KEY}", f"newshost.example.org ssh-rsa {SESSION_KEY}",
                "newshost.example.org ssh-ed25519 not-base64", f"newshost.example.org ssh-dss {SESSION_KEY}", ""]:
        session_case("known_hosts[0]", fmt, known_hosts=[bad])
session_case("known_hosts", "putty", known_hosts=[f"other.example.org ssh-ed25519 {SESSION_KEY}"])
session_case("known_hosts", "putty", port=443, known_hosts=[f"newshost.example.org ssh-ed25519 {SESSION_KEY}"])
session_case("known_hosts", "winscp", tunnel={"host": "bastion.example.org", "port": 22, "user": "t"},
             known_hosts=[f"newshost.example.org ssh-ed25519 {SESSION_KEY}"])
# Hostile names in every state and format: absent validates the name exactly as present (it builds the same
# paths). "a/b" is a WinSCP site folder and a PuTTY name PuTTY escapes into one file name: refused for OpenSSH only.
HOSTILE_NAMES = ["../../../root/.ssh", ".", "..", "../tunnels", " ../x", "a/b", "/etc/passwd", "/root/.ssh/config"]
for state in ("present", "absent"):
    for fmt in ("openssh", "putty", "winscp"):
        for bad in HOSTILE_NAMES:
            if bad != "a/b" or fmt == "openssh":
                session_case("name", fmt, name=bad, state=state)
    # a given path or reg_path outside the owner's home (root's: /root)
    session_case("path", "winscp", path="/etc/WinSCP.ini", state=state)
    session_case("path", "openssh", path="/root/../etc/ssh/ssh_config", state=state)
    session_case("reg_path", "putty", reg_path="/tmp/x.reg", state=state)
# client_proxy takes no name; absent validates the layers it cleans as present does
for bad in ["../etc", "/etc/gitconfig", "."]:
    proxy_case("targets[0]", targets=[bad], state="absent")


class ConfinedPlan:
    """The one part of a Plan that session_targets() uses: a ConfinementError becomes a DeclarationError."""

    def guard(self, function, *args, **kwargs):
        try:
            return function(*args, **kwargs)
        except ConfinementError as exc:
            raise SessionError(exc.field, exc.message) from None


# tunnels: hostile names and paths in every state (absent validates exactly as present: issue 13)
HOSTILE_NAMES = ["../../../root/.ssh", ".", "..", "../tunnels", " ../x", "a/b", "/etc/passwd", "../../../srv/x"]
TUNNEL_STATES = ["started", "stopped", "restarted", "present", "absent"]
SERVER = dict(accounts=["tunnel"], entries=[ENTRY], managed_clients=None, known_clients=None, client_alive_interval=15,
              client_alive_count_max=3, sshd_dropin="/etc/ssh/sshd_config.d/50-netreach-tunnels.conf", reaper=True)
for state in TUNNEL_STATES:
    for bad in HOSTILE_NAMES:
        CASES.append(("ssh_tunnel", {**TUNNEL, "name": bad, "state": state, "remove_key": True}, "name"))
for bad in HOSTILE_NAMES:
    CASES.append(("tunnel_key", {"name": bad, "identity_file": None, "run_as": "netreach-tunnel"}, "name"))
for bad in ["relative/key", "/etc/../root/.ssh/id_ed25519", "/etc/netreach/tunnels/news/./id", "/etc/key\n", "/"]:
    CASES.append(("tunnel_key", {"name": "news", "identity_file": bad, "run_as": "netreach-tunnel"}, "identity_file"))
for bad in ["", "Root", "../x", "a b"]:
    CASES.append(("tunnel_key", {"name": "news", "identity_file": None, "run_as": bad}, "run_as"))
for state in ("present", "absent"):
    for bad in ["root", "../../root", "a/b", "..", " ../x", "/etc", ""]:
        CASES.append(("tunnel_server", {**SERVER, "state": state, "accounts": [bad]}, "accounts"))
    for bad in ["/etc/ssh/sshd_config.d/../../x.conf", "/etc/passwd", "/root/.ssh/authorized_keys",
                "/etc/ssh/sshd_config.d/x", "/etc/ssh/sshd_config.d/sub/x.conf", "/etc/ssh/sshd_config.d/.conf"]:
        CASES.append(("tunnel_server", {**SERVER, "state": state, "sshd_dropin": bad}, "sshd_dropin"))
    for bad in HOSTILE_NAMES[:6]:
        CASES.append(("tunnel_server", {**SERVER, "state": state, "entries": [{**ENTRY, "account": bad}]},
                      "entries[0].account"))
        CASES.append(("tunnel_server", {**SERVER, "state": state, "entries": [{**ENTRY, "tunnel": bad}]},
                      "entries[0].tunnel"))

# tunnel_server ports (issue 15 item 3): sshd's listening ports, each 1-65535, none twice
for ports, field in [([0], "ports[0]"), ([22, 65536], "ports[1]"), ([22, 443, 22], "ports[2]"), ([443, 443], "ports[1]"),
                     ([-1], "ports[0]")]:
    CASES.append(("tunnel_server", {**SERVER, "ports": ports}, field))

# tunnels: ssh_options (issue 16): keywords that unpin host keys or run commands, our own options twice, values
# that would break a line or add a keyword, and keywords off the allow-list
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_ssh_options import OWN, REFUSED  # noqa: E402

for keyword in sorted(REFUSED) + sorted(OWN) + ["stricthostkeychecking", "PROXYCOMMAND"]:
    tunnel_case(f"ssh_options.{keyword}", ssh_options={keyword: "yes"})
for bad in ["aes128-ctr\nProxyCommand sh -c id", "aes128-ctr\rLocalCommand id", "aes128-ctr ProxyCommand",
            "aes128-%h", "aes128-ctr#x", '"aes128-ctr"', "", "aes128-ctr,", "aes128-ctr\x0bx", "aes128-ctr\u2028x"]:
    tunnel_case("ssh_options.Ciphers", ssh_options={"Ciphers": bad})
for keyword, bad in [("IPQoS", "af21 cs1 ef"), ("IPQoS", "af21  cs1"), ("IPQoS", "af21\ncs1"), ("Compression", "maybe"),
                     ("RekeyLimit", "1G 1h 1h"), ("RekeyLimit", "15"), ("ConnectionAttempts", 0),
                     ("ConnectionAttempts", "3 4"), ("AddressFamily", "inet4"), ("LogLevel", "DEBUG9"),
                     ("Ciphers", ["aes128-ctr"]), ("MACs", None)]:
    tunnel_case(f"ssh_options.{keyword}", ssh_options={keyword: bad})
for options in [{"Ciphers": "aes128-ctr", "ciphers": "aes256-ctr"}, {"Tunnel": "yes"}, {"Port\n22": "x"},
                {"Cipher s": "x"}, {"": "x"}]:
    tunnel_case("ssh_options", ssh_options=options)
tunnel_case("ssh_options", ssh_options="Ciphers aes128-ctr")
tunnel_case("ssh_options", ssh_options=["Ciphers=aes128-ctr"])

# tunnels: Unix-socket forwards (issue 16): paths with '..', spaces, relative, too long for sun_path, or with
# characters ssh_config would expand; a local forward listening on a socket; a client-side socket the unit's
# sandbox hides; and the same paths in tunnel_server entries
from ansible_collections.netreach.tunnels.plugins.module_utils._declaration import SOCKET_PATH_MAX  # noqa: E402

SOCKET_PATHS_BAD = ["/run/../etc/x.sock", "/run/./x.sock", "/run//x.sock", "/run/x/", "run/x.sock", "x.sock",
                    "/run/my socket.sock", "/run/x\n.sock", "/run/x\t.sock", "/run/x\x00.sock", "/run/%h.sock",
                    "/run/${HOME}.sock", '/run/x".sock', "/" + "s" * SOCKET_PATH_MAX, "", 7]
for bad in SOCKET_PATHS_BAD:
    tunnel_case("local_forwards[0].target_socket", local_forwards=[{"port": 12370, "target_socket": bad}])
    tunnel_case("remote_forwards[0].listen_socket", local_forwards=[],
                remote_forwards=[{"listen_socket": bad, "host": "localhost", "host_port": 22}])
    entry_case("entries[0].socket_opens", socket_opens=[bad])
    entry_case("entries[0].socket_listens", socket_listens=[bad])
for spec in ["12370:/run/../x.sock", "12370:relative/x.sock", "12370:/" + "s" * SOCKET_PATH_MAX]:
    tunnel_case("local_forwards[0].target_socket", local_forwards=[spec])
for spec in ["12370:/run/my socket", "12370:/run/x.sock\nProxyCommand sh"]:
    tunnel_case("local_forwards[0]", local_forwards=[spec])
for spec in ["/run/../x.sock:localhost:22", "/run//x.sock:localhost:22"]:
    tunnel_case("remote_forwards[0].listen_socket", local_forwards=[], remote_forwards=[spec])
tunnel_case("remote_forwards[0].target_socket", local_forwards=[], remote_forwards=["2375:/tmp/docker.sock"])
tunnel_case("local_forwards[0].listen_socket", local_forwards=["/run/netreach/x.sock:localhost:80"])
tunnel_case("local_forwards[0]", local_forwards=[{"port": 1, "target_socket": "/run/x.sock", "host": "h"}])
tunnel_case("remote_forwards", local_forwards=[], remote_forwards=["/run/x.sock:h:1", "/run/x.sock:h:2"])
entry_case("entries[0].socket_opens", socket_opens="/run/x.sock")
fleet_case("laptop: tunnel_client_tunnels[0].remote_forwards[0].listen_socket",
           {"name": "news", "server": "bastion", "remote_forwards": ["/home/tunnel/../x.sock:localhost:22"]})

# issue 16 (metrics): ssh_tunnels' textfile directory goes into a unit file as it is, its interval into a timer.
for bad in ["relative/dir", "/var/lib/../etc", "/var/lib/./x", "/", "/var/lib/node exporter", "/var/lib/x\nExecStart=/bin/sh",
            "/var//lib", "/var/lib/-x;id", "/var/lib/x%h"]:
    CASES.append(("ssh_tunnels", {"tunnels": [], "metrics_dir": bad}, "metrics_dir"))
for bad in [0, -1, 3601, 10 ** 9]:
    CASES.append(("ssh_tunnels", {"tunnels": [], "metrics_dir": "/var/lib/prometheus/node-exporter",
                                  "metrics_interval": bad}, "metrics_interval"))

# issue 16 (gateway metrics): nat_rules' textfile directory and interval, refused with state=absent too.
for bad in ["relative/dir", "/var/lib/../etc", "/", "/var/lib/node exporter", "/var/lib/x\nExecStart=/bin/sh",
            "/var//lib", "/var/lib/-x;id"]:
    nat_case("metrics_dir", metrics_dir=bad)
nat_case("metrics_dir", metrics_dir="relative/dir", state="absent")
for bad in [0, -1, 3601, 10 ** 9]:
    nat_case("metrics_interval", metrics_dir="/var/lib/prometheus/node-exporter", metrics_interval=bad)

# tunnels: rollback_timeout (issue 16): negative, below the floor of 10 s, huge.
for bad in (-1, -3600, 1, 9, 3601, 86400, 10 ** 12):
    tunnel_case("rollback_timeout", rollback_timeout=bad)
# ... and the server end's (its role variable tunnel_server_rollback_timeout passes it through as it is).
for bad in (-1, -3600, 9, 3601, 86400, 10 ** 12):
    CASES.append(("tunnel_server", {**SERVER, "rollback_timeout": bad}, "rollback_timeout"))


def run_case(module: str, params: dict):
    """Feed one row to the parser its module (or the role's filter) runs first."""
    if module == "ssh_tunnel":
        return parse_request(params)
    if module == "tunnel_key":
        return parse_identity(params)
    if module == "ssh_tunnels":
        return parse_metrics(params.get("metrics_dir"), params.get("metrics_interval", 15))
    if module == "nat_rules":
        parse_metrics(params.get("metrics_dir"), params.get("metrics_interval", 15))
        return parse_nat(params) if params.get("state", "present") == "present" else None
    if module == "client_proxy":
        parse_targets(params)
        return parse_proxy_settings(params) if params.get("state", "present") == "present" else None
    if module == "client_session":
        params = dict(params)
        fmt = params.pop("_format")
        parse_name(params.get("name"), fmt)
        if params.get("path") or params.get("reg_path"):
            # the module's confinement of a given path to the owner's home, as the engine checks it
            return session_targets(ConfinedPlan(), {"format": fmt, "name": params["name"], **params}, "/root")
        return parse_session(params, fmt) if params.get("state", "present") == "present" else None
    if module == "tunnel_server":
        # A whole module call (with its accounts), or one entry among valid ones.
        return parse_server(params) if "accounts" in params else parse_entries([params])
    # The role: the filter's entries, then the module's own checks of them against the role's accounts.
    entries = client_entries("laptop", params["tunnels"], {}, {"news": ENTRY["public_key"],
                                                               "socks": ENTRY["public_key"]}, "bastion")
    return parse_server({**SERVER, "accounts": params.get("accounts", ["tunnel"]), "create_accounts": True,
                         "entries": [entry.as_dict() for entry in entries]})
