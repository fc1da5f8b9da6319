"""netreach.tunnels.ssh_tunnel proven by traffic.

Both clients (Debian 12 and 13, on corp) run the five tunnels of converge.yml. These tests send real traffic
through each tunnel to newshost, which sits on "inside" only, then break things (killed sessions, an sshd
restart, a cut network, a restarted client, changed host keys) and measure how the tunnels react. Measured
times are printed; molecule.yml makes pytest show them for passing tests too.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator

import labtest
import pytest
import yaml
from testinfra.host import Host

CLIENTS = ["client", "client13"]
# Port on the bastion that reaches each client's sshd through its "reverse" tunnel (see converge.yml).
REVERSE_PORTS = {"client": 2222, "client13": 2223}
NEWS_BANNER = "200 netreach news ready"
WEB_PAGE = "netreach newshost page"
PROXY_LOG = "/var/log/tinyproxy/tinyproxy.log"
# How long a tunnel may take to come up from scratch (the units retry with a growing delay).
UP_TIMEOUT = 20.0
# Matches the sshd processes of the tunnel account's sessions (sshd-session on OpenSSH 10).
TUNNEL_SESSIONS = "'^sshd(-session)?: tunnel'"


lab_host = labtest.host


def unit(tunnel: str) -> str:
    return f"netreach-tunnel@{tunnel}.service"


def read_port(host: Host, port: int) -> str:
    """What a TCP connection to 127.0.0.1:PORT on HOST reads before the peer closes or stays silent 3 s."""
    return host.run(f"nc -w 3 127.0.0.1 {port} </dev/null").stdout


wait_until = labtest.wait_until


def wait_for_banner(client: str, port: int, tunnel: str, timeout: float = UP_TIMEOUT) -> float:
    """Seconds until CLIENT reads the news banner through PORT of TUNNEL; fails with the unit's journal."""
    host = lab_host(client)
    seconds = wait_until(lambda: NEWS_BANNER in read_port(host, port), timeout)
    assert seconds is not None, (
        f"{client}: no news banner on 127.0.0.1:{port} within {timeout:.0f} s; {unit(tunnel)} logged:\n"
        f"{labtest.journal(host, unit(tunnel))}"
    )
    return seconds


def bastion_corp_ip() -> str:
    return labtest.container_ip(labtest.container("bastion"), "corp")


def kill_tunnel_sessions() -> int:
    """Kill every sshd session of the tunnel account on the bastion; the exit code of pkill (0: killed some)."""
    return lab_host("bastion").run(f"pkill -KILL -u tunnel -f {TUNNEL_SESSIONS}").rc


@contextlib.contextmanager
def nft_drop(host: Host, *rules: tuple[str, str]) -> Iterator[None]:
    """While the block runs, HOST drops the packets of RULES: (chain "input" or "output", nft match)."""
    host.run("nft delete table inet labtest")  # left over from an interrupted run
    try:
        host.check_output("nft add table inet labtest")
        for chain in ("input", "output"):
            host.check_output(f"nft 'add chain inet labtest {chain} {{ type filter hook {chain} priority 0; }}'")
        for chain, match in rules:
            host.check_output(f"nft add rule inet labtest {chain} {match} drop")
        yield
    finally:
        host.run("nft delete table inet labtest")


def proxy_connects() -> int:
    """How many CONNECT requests to an SSH port the corp proxy has logged."""
    return int(lab_host("proxy").run(f"grep -cE 'Request .*: CONNECT [^ ]+:22 ' {PROXY_LOG}").stdout.strip() or 0)


# --- traffic through every tunnel, on both clients ---------------------------------------------------------


@pytest.mark.parametrize("client", CLIENTS)
def test_newshost_is_out_of_the_clients_reach_without_a_tunnel(client):
    # Control for everything below: newshost sits on "inside" only, so its services reach a client through a
    # tunnel or not at all.
    newshost = labtest.container_ip(labtest.container("newshost"), "inside")
    direct = lab_host(client).run(f"nc -z -w 3 {newshost} 119")
    assert direct.rc != 0, f"{client} reached {newshost}:119 directly"


@pytest.mark.parametrize("client", CLIENTS)
def test_seed_tunnel_reaches_newshost_itself_through_the_jump_host(client):
    seconds = wait_for_banner(client, 12345, "seed")
    print(f"{client}: seed tunnel (jump via bastion) answered after {seconds:.1f} s")


@pytest.mark.parametrize("client", CLIENTS)
def test_third_tunnel_forwards_news_and_web_of_newshost_via_bastion(client):
    wait_for_banner(client, 12346, "third")
    page = lab_host(client).run("curl -s --max-time 5 http://127.0.0.1:12380/").stdout
    assert WEB_PAGE in page, f"{client}: 127.0.0.1:12380 gave {page!r}"


@pytest.mark.parametrize("client", CLIENTS)
def test_socks_tunnel_proxies_to_newshost_by_name(client):
    host = lab_host(client)
    fetch = f"curl -s --max-time 5 --socks5-hostname 127.0.0.1:3128 http://{labtest.container('newshost')}/"
    seconds = wait_until(lambda: WEB_PAGE in host.run(fetch).stdout, UP_TIMEOUT)
    assert seconds is not None, f"{client}: no page through SOCKS 127.0.0.1:3128:\n{labtest.journal(host, unit('socks'))}"


@pytest.mark.parametrize("client", CLIENTS)
def test_reverse_tunnel_brings_a_bastion_port_to_the_clients_sshd(client):
    bastion = lab_host("bastion")
    port = REVERSE_PORTS[client]
    seconds = wait_until(lambda: read_port(bastion, port).startswith("SSH-2.0-"), UP_TIMEOUT)
    assert seconds is not None, (
        f"bastion: no SSH banner on 127.0.0.1:{port}; {client}'s {unit('reverse')} logged:\n"
        f"{labtest.journal(lab_host(client), unit('reverse'))}"
    )
    # The host key tells whose sshd answered: it must be this client's own.
    scanned = bastion.run(f"ssh-keyscan -T 3 -t ed25519 -p {port} 127.0.0.1").stdout.split()
    own_key = lab_host(client).file("/etc/ssh/ssh_host_ed25519_key.pub").content_string.split()
    assert own_key[1] in scanned, f"bastion:{port} answered with host key {scanned}, not {client}'s {own_key[1]}"


@pytest.mark.parametrize("client", CLIENTS)
def test_viaproxy_tunnel_goes_through_the_http_proxy_when_port_22_is_blocked(client):
    host = lab_host(client)
    bastion = bastion_corp_ip()
    connects_before = proxy_connects()
    with nft_drop(host, ("output", f"ip daddr {bastion} tcp dport 22")):
        blocked = host.run(f"nc -z -w 3 {bastion} 22")
        assert blocked.rc != 0, f"control failed: {client} still reaches {bastion}:22 directly"
        host.check_output(f"systemctl restart {unit('viaproxy')}")
        seconds = wait_for_banner(client, 12347, "viaproxy")
    print(f"{client}: viaproxy tunnel answered {seconds:.1f} s after its restart with port 22 blocked")
    assert proxy_connects() > connects_before, (
        f"the proxy logged no new CONNECT:\n{lab_host('proxy').run(f'tail -n 20 {PROXY_LOG}').stdout}"
    )


AUTH_PROXY_LOG = "/var/log/tinyproxy/auth.log"


def proxy_password() -> str:
    """The lab's proxy password, as the scenario's inventory declares it."""
    scenario = os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "molecule", labtest.scenario(), "molecule.yml")
    with open(scenario, encoding="utf-8") as handle:
        return yaml.safe_load(handle)["provisioner"]["inventory"]["group_vars"]["tunnel_clients"]["tunnels_proxy_password"]


@pytest.mark.parametrize("client", CLIENTS)
def test_authproxy_tunnel_logs_in_to_the_proxy_and_the_password_shows_nowhere(client):
    host, password = lab_host(client), proxy_password()
    wait_for_banner(client, 12349, "authproxy")
    proxy = lab_host("proxy")
    refused = proxy.run(f"curl -s -o /dev/null -w '%{{http_code}}' -x http://127.0.0.1:8081 http://{labtest.container('bastion')}:22/").stdout
    assert refused == "407", f"control failed: the proxy on 8081 let a request without credentials through ({refused})"
    assert "CONNECT" in proxy.run(f"cat {AUTH_PROXY_LOG}").stdout, "the authenticating proxy logged no CONNECT"
    auth_file = host.file("/etc/netreach/tunnels/authproxy/proxy_auth")
    assert auth_file.exists and auth_file.mode == 0o600 and auth_file.user == "netreach-tunnel", \
        "the proxy credentials file is not 0600 netreach-tunnel"
    places = {
        "process list": host.run("ps -eo args").stdout,
        "unit": host.run(f"systemctl cat {unit('authproxy')}").stdout,
        "journal": host.run("journalctl --no-pager -b").stdout,
        "tunnel files other than the credentials": host.run(
            "find /etc/netreach/tunnels/authproxy -type f ! -name proxy_auth -exec cat {} +").stdout,
    }
    for place, text in places.items():
        assert password not in text, f"{client}: the proxy password shows in the {place}"


def test_the_proxy_password_stays_out_of_verbose_and_diff_output():
    """Run the module as a user debugging would (-vvv --diff), changing the tunnel so a diff is shown."""
    password = proxy_password()
    args = {"name": "authproxy2", "server": "tunnels-bastion", "user": "tunnel",
            "identity_file": "/etc/netreach/tunnels/authproxy/id_ed25519",
            "known_hosts": lab_host("client").file("/etc/netreach/tunnels/authproxy/known_hosts").content_string.splitlines(),
            "proxy": {"type": "http", "host": "tunnels-proxy", "port": 8081, "username": "netreach", "password": password},
            }
    try:
        for port in (12350, 12351):
            args["local_forwards"] = [f"{port}:tunnels-newshost:119"]
            completed = subprocess.run(
                ["ansible", labtest.container("client"), "-i", os.environ["MOLECULE_INVENTORY_FILE"], "-vvv", "--diff",
                 "-m", "netreach.tunnels.ssh_tunnel", "-a", json.dumps(args)],
                capture_output=True, text=True, timeout=120, check=False)
            output = completed.stdout + completed.stderr
            assert "CHANGED" in output, output[-2000:]
            assert password not in output, "the proxy password shows in -vvv --diff output"
        wait_for_banner("client", 12351, "authproxy2")
    finally:
        labtest.run_module(labtest.container("client"), "netreach.tunnels.ssh_tunnel", {"name": "authproxy2", "state": "absent"})


def negotiated_cipher(host: Host, tunnel: str) -> str:
    """The cipher a fresh ssh with TUNNEL's own ssh_config negotiates with its server (forwards cleared)."""
    config = f"/etc/netreach/tunnels/{tunnel}/ssh_config"
    out = host.run(f"runuser -u netreach-tunnel -- timeout 8 ssh -v -F {config} -o ClearAllForwardings=yes "
                   f"netreach-{tunnel}").stderr
    found = re.search(r"kex: server->client cipher: (\S+)", out)
    assert found, f"no cipher in ssh -v of {tunnel}: {out[-2000:]}"
    return found.group(1)


@pytest.mark.parametrize("client", CLIENTS)
def test_ssh_options_cipher_carries_traffic_and_is_negotiated(client):
    host = lab_host(client)
    wait_for_banner(client, 12360, "cipher")
    effective = host.check_output("ssh -G -F /etc/netreach/tunnels/cipher/ssh_config netreach-cipher")
    # Not the default's first choice (AES-GCM where the CPU has AES): the override is what was negotiated.
    assert "ciphers chacha20-poly1305@openssh.com\n" in effective + "\n", effective
    assert negotiated_cipher(host, "cipher") == "chacha20-poly1305@openssh.com"
    # Without ssh_options, a client with AES instructions prefers AES-GCM (the lab shares the host's CPU).
    has_aes = host.run("grep -qwE '^(flags|Features).*aes' /proc/cpuinfo").rc == 0
    default = host.check_output("ssh -G -F /etc/netreach/tunnels/third/ssh_config netreach-third | sed -n 's/^ciphers //p'")
    assert default.startswith("aes128-gcm@openssh.com,") == has_aes, default
    print(f"{client}: cipher tunnel negotiated chacha20-poly1305@openssh.com; third prefers {default.split(',')[0]}")


# --- Unix-socket forwards (issue 16): the sockets tunnel and the bastion's "sockets" account ----------------

SOCKET_PAGE = "netreach bastion socket page on /run/netreach-lab/web.sock"
# Where each client's sockets tunnel offers the client's sshd on the bastion (molecule.yml host_vars).
SOCKET_LISTENS = {"client": "/home/sockets/tunnels-client.sock", "client13": "/home/sockets/tunnels-client13.sock"}
# The socket tests wait longer than UP_TIMEOUT: each opens fresh sessions on a lab that may share a loaded machine.
SOCKET_TIMEOUT = 45.0
# The first line a Unix stream socket sends, within 10 s (socat gives up 0.5 s after its stdin ends).
READ_LINE = ("python3 -c 'import socket, sys; s = socket.socket(socket.AF_UNIX); s.settimeout(10); "
             "s.connect(sys.argv[1]); print(s.makefile().readline().strip())'")


def fetch_page(host: Host, port: int) -> str:
    return host.run(f"curl -s --max-time 5 http://127.0.0.1:{port}/").stdout


def banner_through_socket(path: str) -> str:
    """The first line read from the Unix socket PATH on the bastion (as root)."""
    return lab_host("bastion").run(f"{READ_LINE} {path}").stdout.strip()


def own_banner(client: str) -> str:
    return read_port(lab_host(client), 22).split("\n")[0].strip()


def try_socket_forward(client: str, tunnel: str, account: str, port: int, path: str) -> str:
    """What a fresh ssh -L 127.0.0.1:PORT:PATH with TUNNEL's key, logged in to ACCOUNT on the bastion, serves."""
    directory = f"/etc/netreach/tunnels/{tunnel}"
    ssh = (f"runuser -u netreach-tunnel -- timeout 60 ssh -F /dev/null -i {directory}/id_ed25519 -o IdentitiesOnly=yes "
           f"-o UserKnownHostsFile={directory}/known_hosts -o GlobalKnownHostsFile=/dev/null "
           f"-o StrictHostKeyChecking=yes -o BatchMode=yes -o ExitOnForwardFailure=yes -N "
           f"-L 127.0.0.1:{port}:{path} {account}@tunnels-bastion")
    # Ask once ssh listens on PORT (or gave up): what comes back is what sshd made of the socket request.
    listening = f"for i in $(seq 60); do nc -z 127.0.0.1 {port} && break; sleep 0.5; done"
    out = lab_host(client).run(f"{ssh} & {listening}; curl -s --max-time 10 http://127.0.0.1:{port}/; kill %1; wait")
    return out.stdout


def sshd_log_since(since: int) -> str:
    return lab_host("bastion").run(f"journalctl --no-pager -o cat -u ssh --since @{since}").stdout


@pytest.mark.parametrize("client", CLIENTS)
def test_local_forward_reaches_a_unix_socket_service_on_the_server(client):
    host = lab_host(client)
    seconds = wait_until(lambda: SOCKET_PAGE in fetch_page(host, 12370), SOCKET_TIMEOUT)
    assert seconds is not None, (
        f"{client}: no socket page on 127.0.0.1:12370:\n{labtest.journal(host, unit('sockets'))}")
    print(f"{client}: 127.0.0.1:12370 served the bastion's /run/netreach-lab/web.sock page after {seconds:.1f} s")


@pytest.mark.parametrize("client", CLIENTS)
def test_remote_forward_offers_the_clients_sshd_as_a_socket_on_the_server(client):
    path = SOCKET_LISTENS[client]
    seconds = wait_until(lambda: banner_through_socket(path).startswith("SSH-2.0-"), SOCKET_TIMEOUT)
    assert seconds is not None, (
        f"bastion: no SSH banner on {path}:\n{labtest.journal(lab_host(client), unit('sockets'))}")
    # Debian 12 and 13 run different OpenSSH releases: the banner tells whose sshd answered.
    banner, own = banner_through_socket(path), own_banner(client)
    assert banner == own, f"{path} answered {banner!r}; {client}'s own sshd says {own!r}"
    # And the host key proves it: an ssh from the bastion through the socket meets this client's own key.
    verbose = lab_host("bastion").run(
        f"timeout 30 ssh -v -o 'ProxyCommand=socat - UNIX-CONNECT:{path}' -o StrictHostKeyChecking=no "
        "-o UserKnownHostsFile=/dev/null -o BatchMode=yes -o PreferredAuthentications=none nobody@through-socket true"
    ).stderr
    fingerprint = lab_host(client).check_output("ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub").split()[1]
    assert f"Server host key: ssh-ed25519 {fingerprint}" in verbose, verbose[-1500:]
    mode = lab_host("bastion").check_output(f"stat -c '%F %a %U' {path}")
    print(f"bastion: {path} ({mode}) answered with {client}'s sshd after {seconds:.1f} s")
    assert mode == "socket 600 sockets", mode


def test_tunnel_info_reports_socket_forwards_at_both_ends():
    client = labtest.run_module(labtest.container("client"), "netreach.tunnels.tunnel_info", {"names": ["sockets"]})
    (tunnel,) = client["tunnels"]
    ends = {(fwd["kind"], fwd["socket"]) for fwd in tunnel["forwards"]}
    assert ends == {("local", "target"), ("remote", "listen")}, tunnel["forwards"]
    assert tunnel["healthy"], tunnel
    server = labtest.run_module(labtest.container("bastion"), "netreach.tunnels.tunnel_info", {})
    sockets = {entry["listen"]: entry for entry in server["server_listens"] if entry.get("socket")}
    assert set(sockets) == set(SOCKET_LISTENS.values()), server["server_listens"]
    assert all(entry["listening"] and entry["account"] == "sockets" for entry in sockets.values()), sockets


def test_an_account_without_socket_forwards_is_refused_stream_local_forwarding():
    since = int(time.time()) - 1
    # Control: the sockets tunnel's key and account get the page through a fresh ssh -L to the socket.
    assert SOCKET_PAGE in try_socket_forward("client", "sockets", "sockets", 12371, "/run/netreach-lab/web.sock")
    # The tunnel account declares no socket forward: the same request is refused by sshd.
    refused = try_socket_forward("client", "third", "tunnel", 12372, "/run/netreach-lab/web.sock")
    assert "socket page" not in refused, refused
    logged = sshd_log_since(since)
    assert re.search(r"refused streamlocal port forward: .*target /run/netreach-lab/web.sock", logged), logged[-2000:]


def test_a_socket_account_opens_only_its_declared_socket():
    since = int(time.time()) - 1
    other = "/run/netreach-lab/other.sock"
    served = lab_host("bastion").run(f"curl -s --max-time 3 --unix-socket {other} http://lab/").stdout
    assert "socket page on /run/netreach-lab/other.sock" in served, f"control failed: {other} serves {served!r}"
    refused = try_socket_forward("client", "sockets", "sockets", 12373, other)
    assert "socket page" not in refused, refused
    assert f"Received request to connect to path {other}, but the request was denied" in sshd_log_since(since)


def test_a_reconnecting_session_takes_over_the_socket_a_killed_one_left():
    path = SOCKET_LISTENS["client"]
    assert wait_until(lambda: banner_through_socket(path).startswith("SSH-2.0-"), SOCKET_TIMEOUT) is not None
    bastion = lab_host("bastion")
    assert bastion.run("pkill -KILL -u sockets -f '^sshd(-session)?: sockets'").rc == 0
    # The killed session could not remove its socket: the file stays until the next session replaces it.
    assert bastion.file(path).exists, f"{path} vanished with the killed session"
    # Bounded generously: the unit backs off after a session it lost, and a loaded machine stretches each step; the
    # point is that the new session binds over the stale file at all (without StreamLocalBindUnlink it cannot).
    seconds = wait_until(lambda: banner_through_socket(path).startswith("SSH-2.0-"), 180)
    assert seconds is not None, f"{path} does not answer again:\n{labtest.journal(lab_host('client'), unit('sockets'))}"
    print(f"bastion: {path} answered again {seconds:.1f} s after its session was killed")


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("tunnel", ["seed", "third", "socks", "reverse", "viaproxy", "authproxy", "cipher", "sockets"])
def test_every_tunnel_runs_as_an_enabled_unit(client, tunnel):
    # After the traffic above, every unit is up; enabled is what brings it back after a reboot.
    service = lab_host(client).service(unit(tunnel))
    assert service.is_enabled, f"{client}: {unit(tunnel)} is not enabled"
    assert service.is_running, f"{client}: {unit(tunnel)} is not running:\n{labtest.journal(lab_host(client), unit(tunnel))}"


@pytest.mark.parametrize("client", CLIENTS)
def test_tunnel_units_are_hardened(client):
    # systemd's own exposure score, 0 (locked down) to 10 (unprotected); the target is 2.0 at most.
    output = lab_host(client).check_output(f"systemd-analyze security --no-pager {unit('third')} | tail -n 1")
    match = re.search(r"exposure level for \S+: ([0-9.]+)", output)
    assert match, output
    print(f"{client}: systemd-analyze security exposure of {unit('third')}: {match.group(1)}")
    assert float(match.group(1)) <= 2.0, output


# --- the module run ad hoc: bad input changes nothing, autossh engine, removal -------------------------------

# What the module may touch on a client: a digest of it must not move when a declaration is rejected.
SNAPSHOT = ("tar --sort=name -cf - /etc/netreach /etc/systemd/system /usr/local/lib/netreach /etc/passwd /etc/group "
            "2>/dev/null | sha256sum; systemctl list-units --all --plain --no-legend 'netreach-tunnel@*' | sha256sum")


def run_module(client: str, **args) -> dict:
    """Run netreach.tunnels.ssh_tunnel on CLIENT from the controller, as a user would ad hoc; the host's result."""
    return labtest.run_module(labtest.container(client), "netreach.tunnels.ssh_tunnel", args)


VALID = {"server": "tunnels-bastion", "user": "tunnel", "known_hosts": ["tunnels-bastion ssh-ed25519 AAAAC3NzaC1lZDI1NTE5"]}


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"name": "bad/name", "local_forwards": ["12390:localhost:22"]}, "name"),
        ({"name": "badport", "port": 0, "local_forwards": ["12390:localhost:22"]}, "port"),
        ({"name": "inject", "local_forwards": ["12390:localhost:22\nProxyCommand sh"]}, "local_forwards[0]"),
        ({"name": "inject2", "server": "tunnels-bastion -oProxyCommand=sh", "local_forwards": ["12390:h:1"]}, "server"),
        ({"name": "dup", "local_forwards": ["12346:tunnels-newshost:119"]}, "local_forwards"),
    ],
)
def test_bad_input_fails_naming_the_field_and_changes_nothing(args, field):
    host = lab_host("client")
    before = host.check_output(SNAPSHOT)
    result = run_module("client", **{**VALID, **args})
    assert result.get("failed") and result.get("field") == field, result
    assert result["msg"].startswith(f"{field}:"), result["msg"]
    assert host.check_output(SNAPSHOT) == before, "a rejected declaration changed the host"


def test_autossh_engine_carries_traffic_and_absent_removes_the_tunnel():
    host = lab_host("client")
    auto = {**VALID, "name": "auto", "engine": "autossh", "local_forwards": ["12348:tunnels-newshost:119"],
            "identity_file": "/etc/netreach/tunnels/third/id_ed25519",
            "known_hosts": host.file("/etc/netreach/tunnels/third/known_hosts").content_string.splitlines()}
    assert run_module("client", **auto)["changed"]
    wait_for_banner("client", 12348, "auto")
    assert host.run("pgrep -u netreach-tunnel -x autossh").rc == 0, "the auto tunnel does not run autossh"
    assert not run_module("client", **auto)["changed"], "a second identical run reported a change"
    removed = run_module("client", name="auto", state="absent")
    assert removed["changed"] and not host.file("/etc/systemd/system/netreach-tunnel@auto.service").exists
    assert NEWS_BANNER not in read_port(host, 12348), "12348 still answers after state=absent"
    assert not run_module("client", name="auto", state="absent")["changed"], "a second removal reported a change"


# --- faults, on the Debian 12 client only -------------------------------------------------------------------


def test_third_tunnel_reconnects_fast_after_its_server_session_is_killed():
    wait_for_banner("client", 12346, "third")
    assert kill_tunnel_sessions() == 0, "no sshd session of the tunnel account to kill on bastion"
    seconds = wait_for_banner("client", 12346, "third", timeout=30)
    print(f"client: third tunnel answered again {seconds:.1f} s after its server session was killed")
    assert seconds < 10, f"third tunnel took {seconds:.1f} s to come back after its session was killed"


def test_established_tunnel_survives_an_sshd_restart_on_the_server():
    wait_for_banner("client", 12346, "third")
    lab_host("bastion").check_output("systemctl restart ssh")
    answer = read_port(lab_host("client"), 12346)
    assert NEWS_BANNER in answer, (
        f"third tunnel gave {answer!r} right after sshd restarted:\n{labtest.journal(lab_host('client'), unit('third'))}"
    )


def test_third_tunnel_recovers_after_a_30_s_network_cut():
    wait_for_banner("client", 12346, "third")
    bastion = bastion_corp_ip()
    with nft_drop(lab_host("client"), ("output", f"ip daddr {bastion}"), ("input", f"ip saddr {bastion}")):
        time.sleep(30)
    seconds = wait_for_banner("client", 12346, "third", timeout=45)
    print(f"client: third tunnel answered again {seconds:.1f} s after a 30 s cut to bastion ended")
    assert seconds < 20, f"third tunnel took {seconds:.1f} s to come back after the cut ended"


def test_tunnel_comes_back_by_itself_after_the_client_restarts():
    subprocess.run(["docker", "restart", labtest.container("client")], check=True, capture_output=True, timeout=120)
    start = time.monotonic()
    wait_for_banner("client", 12346, "third", timeout=60)
    print(f"client: third tunnel answered {time.monotonic() - start:.1f} s after docker restart returned")


# --- changed host keys: runs last, it breaks every tunnel to bastion until the keys are restored -------------


@pytest.fixture(scope="module")
def bastion_with_new_host_keys() -> Iterator[int]:
    """Give the bastion new SSH host keys and drop the tunnels' sessions; yields the epoch second it began.

    The old keys come back at the end of the module, so the lab stays usable for another verify run.
    """
    bastion = lab_host("bastion")
    backup = "/root/lab-ssh-host-keys"
    since = int(time.time()) - 1
    bastion.check_output(f"rm -rf {backup} && mkdir {backup} && cp -a /etc/ssh/ssh_host_* {backup}/")
    try:
        bastion.check_output("rm -f /etc/ssh/ssh_host_* && ssh-keygen -A && systemctl restart ssh")
        kill_tunnel_sessions()
        yield since
    finally:
        bastion.run(f"rm -f /etc/ssh/ssh_host_* && cp -a {backup}/. /etc/ssh/ && systemctl restart ssh")


@pytest.mark.parametrize("client", CLIENTS)
def test_tunnel_refuses_a_server_whose_host_key_changed(client, bastion_with_new_host_keys):
    host = lab_host(client)
    journal = f"journalctl --no-pager -u {unit('third')} --since @{bastion_with_new_host_keys}"

    def warned() -> bool:
        logged = host.run(journal).stdout
        return "REMOTE HOST IDENTIFICATION HAS CHANGED" in logged or "Host key verification failed" in logged

    seconds = wait_until(warned, UP_TIMEOUT)
    assert seconds is not None, (
        f"{client}: {unit('third')} logged no host key refusal within {UP_TIMEOUT:.0f} s of the key change:\n"
        f"{labtest.journal(host, unit('third'))}"
    )
    print(f"{client}: third tunnel refused bastion's new host key after {seconds:.1f} s")
    assert NEWS_BANNER not in read_port(host, 12346), f"{client}: 12346 still reaches newshost after the refusal"
