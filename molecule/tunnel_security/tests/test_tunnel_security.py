"""The server end of netreach tunnels: every tunnel key may do exactly what its tunnel declares, and no more.

playbooks/tunnels.yml configured the bastion and server13 from the clients' declarations (molecule.yml). The
tests first send real traffic through each tunnel, then take each tunnel's own private key from the client and
drive it with a scripted SSH client (paramiko) through the requests sshd knows: direct-tcpip opens (-L, -D),
tcpip-forward listens (-R), shell, exec, pty, X11, agent and tun. The matrix (request x expected x got) is
printed; molecule.yml makes pytest show it for passing tests too.
"""
from __future__ import annotations

import html
import ipaddress
import json
import os
import subprocess
import time

import labtest
import pytest
import yaml
from sshprobe import Probe

CLIENTS = ["client", "client13"]
TUNNELS = ["web", "chain", "socks", "reverse"]
REVERSE_PORTS = {"client": 17070, "client13": 17071}
WEB_PAGE = "netreach target page"
NEWS_BANNER = "200 netreach news ready"
UP_TIMEOUT = 30.0


lab_host = labtest.host


wait_until = labtest.wait_until


def reverse_answers(client: str) -> bool:
    out = lab_host("bastion").run(f"nc -w 2 127.0.0.1 {REVERSE_PORTS[client]} </dev/null").stdout
    return f"client reverse service {labtest.container(client)}" in out


def web_answers(client: str) -> bool:
    return WEB_PAGE in lab_host(client).run("curl -s -m 5 http://127.0.0.1:12380/").stdout


@pytest.fixture(scope="module")
def key_dir(tmp_path_factory) -> str:
    """Each tunnel's private key, copied from its client (the test plays the client with the tunnel's key)."""
    directory = tmp_path_factory.mktemp("tunnel-keys")
    for client in CLIENTS:
        for tunnel in TUNNELS:
            path = directory / f"{client}-{tunnel}"
            key = subprocess.run(["docker", "exec", labtest.container(client), "cat",
                                  f"/etc/netreach/tunnels/{tunnel}/id_ed25519"],
                                 check=True, capture_output=True, text=True).stdout
            path.write_text(key)
            path.chmod(0o600)
    return str(directory)


def probe(key_dir: str, client: str, tunnel: str, server: str) -> Probe:
    container = labtest.container(server)
    host_key = " ".join(lab_host(server).check_output("cat /etc/ssh/ssh_host_ed25519_key.pub").split()[:2])
    return Probe(labtest.container_ip(container, "corp"), 22, "tunnel", os.path.join(key_dir, f"{client}-{tunnel}"),
                 host_key=host_key)


# --- traffic through every declared tunnel -----------------------------------------------------------------


@pytest.mark.parametrize("client", CLIENTS)
def test_every_declared_tunnel_carries_traffic(client):
    host = lab_host(client)
    assert wait_until(lambda: web_answers(client), UP_TIMEOUT) is not None, "web (-L through bastion) is down"
    assert wait_until(lambda: NEWS_BANNER in host.run("nc -w 3 127.0.0.1 12319 </dev/null").stdout, UP_TIMEOUT) \
        is not None, "chain (-L through bastion as jump host to server13) is down"
    page = host.run(f"curl -s -m 5 --socks5-hostname 127.0.0.1:3128 http://{labtest.container('target')}/").stdout
    assert WEB_PAGE in page, "socks (-D on the bastion) did not fetch the target page"
    assert wait_until(lambda: reverse_answers(client), UP_TIMEOUT) is not None, "reverse (-R on the bastion) is down"


# --- the forward-control matrix ----------------------------------------------------------------------------


def matrix_rows(client: str, other: str) -> list[tuple[str, str, str, str, bool]]:
    """(tunnel key, server, request, argument, expected granted)."""
    target, server13 = labtest.container("target"), labtest.container("server13")
    rows = [
        ("web", "bastion", "open", f"{target}:80", True),
        ("web", "bastion", "open", f"{target}:119", False),
        ("web", "bastion", "open", f"{target}:8119", False),
        ("web", "bastion", "open", f"{server13}:22", False),
        ("web", "bastion", "open", "localhost:22", False),
        ("web", "bastion", "listen", "localhost:9999", False),
        ("web", "bastion", "listen", f"localhost:{REVERSE_PORTS[client]}", False),
        ("web", "server13", "auth", "", False),
        ("chain", "bastion", "open", f"{server13}:22", True),
        ("chain", "bastion", "open", f"{target}:119", False),
        ("chain", "bastion", "open", f"{target}:80", False),
        ("chain", "server13", "open", f"{target}:119", True),
        ("chain", "server13", "open", f"{target}:80", False),
        ("chain", "server13", "open", f"{target}:8119", False),
        ("chain", "server13", "listen", "localhost:9999", False),
        ("socks", "bastion", "open", f"{target}:80", True),
        ("socks", "bastion", "open", f"{target}:8119", True),  # the explicit -D opt-in: any destination
        ("socks", "bastion", "listen", "localhost:9999", False),
        ("socks", "server13", "auth", "", False),
        ("reverse", "bastion", "listen", f"localhost:{REVERSE_PORTS[other]}", False),
        ("reverse", "bastion", "listen", "localhost:9999", False),
        ("reverse", "bastion", "listen", "0.0.0.0:9999", False),
        ("reverse", "bastion", "open", f"{target}:80", False),
        ("reverse", "bastion", "open", "localhost:22", False),
    ]
    for tunnel, server in (("web", "bastion"), ("chain", "server13"), ("reverse", "bastion")):
        rows += [(tunnel, server, request, "", False) for request in ("shell", "exec", "pty", "x11", "agent", "tun")]
    return rows


def ask(p: Probe, request: str, argument: str) -> tuple[bool, str]:
    host, _, port = argument.rpartition(":")
    proof = "netreach-session-proof"
    return {
        "auth": p.authenticates,
        "open": lambda: p.direct_tcpip(host, int(port)),
        "listen": lambda: p.tcpip_forward(host, int(port)),
        "shell": lambda: p.shell(proof),
        "exec": lambda: p.exec_command(f"echo {proof}", proof),
        "pty": p.pty,
        "x11": p.x11,
        "agent": p.agent,
        "tun": p.tun,
    }[request]()


@pytest.mark.parametrize("client", CLIENTS)
def test_each_tunnel_key_may_do_exactly_what_its_tunnel_declares(client, key_dir):
    other = next(name for name in CLIENTS if name != client)
    rows, wrong = [], []
    for tunnel, server, request, argument, expected in matrix_rows(client, other):
        got, detail = ask(probe(key_dir, client, tunnel, server), request, argument)
        rows.append(f"{tunnel:8} {server:9} {request:6} {argument:32} {'grant' if expected else 'refuse':7} "
                    f"{'grant' if got else 'refuse':7} {detail}")
        if got != expected:
            wrong.append(rows[-1])
    print(f"\nforward-control matrix for the keys of {client} ({len(rows)} requests, {len(wrong)} wrong):")
    print(f"{'key':8} {'server':9} {'request':6} {'argument':32} {'expect':7} {'got':7} detail")
    print("\n".join(rows))
    assert not wrong, "requests that did not get what the declaration allows:\n" + "\n".join(wrong)


CONTROL_ACCOUNT = "netreach-control"


@pytest.fixture(scope="module")
def control_key(tmp_path_factory) -> str:
    """A key for an ordinary account on the bastion (shell, no restrictions): the probes' positive control."""
    path = tmp_path_factory.mktemp("control") / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    bastion = lab_host("bastion")
    bastion.run_test(f"id {CONTROL_ACCOUNT} || useradd -m -s /bin/sh {CONTROL_ACCOUNT}")
    bastion.run_test(f"install -d -m 700 -o {CONTROL_ACCOUNT} /home/{CONTROL_ACCOUNT}/.ssh")
    bastion.run_test(f"echo '{(path.parent / 'id_ed25519.pub').read_text().strip()}' > /home/{CONTROL_ACCOUNT}/.ssh/authorized_keys")
    bastion.run_test(f"chown {CONTROL_ACCOUNT} /home/{CONTROL_ACCOUNT}/.ssh/authorized_keys")
    return str(path)


def test_the_probes_see_what_an_unrestricted_account_is_granted(control_key):
    """Without this, a probe that could only ever answer "refused" would make the matrix pass."""
    bastion = labtest.container("bastion")
    host_key = " ".join(lab_host("bastion").check_output("cat /etc/ssh/ssh_host_ed25519_key.pub").split()[:2])
    control = Probe(labtest.container_ip(bastion, "corp"), 22, CONTROL_ACCOUNT, control_key, host_key=host_key)
    # X11 is left out: sshd refuses it without xauth, which the lab images do not have, so no control can show
    # a grant; the matrix still shows the tunnel keys' X11 requests refused.
    expected = {"shell": True, "exec": True, "pty": True, "agent": True, "open": True, "listen": True}
    argument = {"open": f"{labtest.container('target')}:8119", "listen": "localhost:9999"}
    rows, wrong = [], []
    for request, granted in expected.items():
        got, detail = ask(control, request, argument.get(request, ""))
        rows.append(f"{CONTROL_ACCOUNT:16} {request:6} {'grant' if granted else 'refuse':7} {'grant' if got else 'refuse':7} {detail}")
        if got != granted:
            wrong.append(rows[-1])
    print("\npositive control on the bastion (an ordinary account, no restrictions):\n" + "\n".join(rows))
    assert not wrong, "the probes misread what sshd granted:\n" + "\n".join(wrong)


def test_reverse_key_may_listen_on_exactly_its_own_port(key_dir):
    client = lab_host("client")
    client.run_test("systemctl stop netreach-tunnel@reverse")
    try:
        port_free = wait_until(lambda: not lab_host("bastion").socket(f"tcp://127.0.0.1:{REVERSE_PORTS['client']}").is_listening, 20)
        assert port_free is not None, "the bastion still listens on the reverse port after the tunnel stopped"
        got, detail = probe(key_dir, "client", "reverse", "bastion").tcpip_forward("localhost", REVERSE_PORTS["client"])
        print(f"\nreverse key, listen localhost:{REVERSE_PORTS['client']} on bastion: expected grant, got {detail}")
        assert got, detail
    finally:
        client.run_test("systemctl start netreach-tunnel@reverse")
    assert wait_until(lambda: reverse_answers("client"), UP_TIMEOUT) is not None


# --- the stale reverse listener ----------------------------------------------------------------------------


def test_reverse_tunnel_takes_its_port_back_from_a_stale_session_under_traffic():
    """The client loses its connection state (every connection to the bastion black-holed, as a NAT gateway that
    forgot them would) while traffic keeps hitting the forwarded port on the bastion. The client notices by its
    keepalives and reconnects; the bastion's old session still holds the port until the reaper ends it."""
    client, bastion = lab_host("client"), lab_host("bastion")
    assert wait_until(lambda: reverse_answers("client"), UP_TIMEOUT) is not None
    port = REVERSE_PORTS["client"]
    bastion_ip = labtest.container_ip(labtest.container("bastion"), "corp")
    bastion.run_test(f"systemd-run --unit netreach-test-load sh -c "
                     f"'while :; do nc -w 1 127.0.0.1 {port} </dev/null >/dev/null; sleep 0.3; done'")
    ports = client.check_output(f"ss -Htn state established '( dport = :22 and dst {bastion_ip} )' | awk '{{print $3}}'")
    old = sorted({line.rpartition(":")[2] for line in ports.splitlines() if line})
    assert old, "the client has no connection to the bastion"
    ended_before = reaper_ended()
    client.run_test("nft add table inet netreach_test")
    client.run_test("nft add chain inet netreach_test out '{ type filter hook output priority 0; }'")
    client.run_test("nft add chain inet netreach_test in '{ type filter hook input priority 0; }'")
    client.run_test(f"nft add rule inet netreach_test out ip daddr {bastion_ip} tcp sport '{{ {', '.join(old)} }}' drop")
    client.run_test(f"nft add rule inet netreach_test in ip saddr {bastion_ip} tcp dport '{{ {', '.join(old)} }}' drop")
    try:
        start = time.monotonic()
        seconds = wait_until(lambda: reverse_answers("client") and reaper_ended() > ended_before, 90, interval=0.25)
        refused = client.run("journalctl --no-pager -u netreach-tunnel@reverse | grep -c 'remote port forwarding failed'").stdout.strip()
        print(f"\nreverse tunnel back {time.monotonic() - start:.1f} s after the client lost its connections "
              f"(client keepalive detection included; {refused} refused reconnect(s) logged)\nreaper said:\n{reaper_log()}")
        assert seconds is not None and seconds <= 60, f"the reverse tunnel did not come back within 60 s\n{reaper_log()}"
    finally:
        client.run("nft delete table inet netreach_test")
        bastion.run("systemctl stop netreach-test-load")


def reaper_log() -> str:
    return lab_host("bastion").run("journalctl --no-pager -n 5 -o cat -u netreach-tunnel-reaper").stdout


def reaper_ended() -> int:
    """How many sessions the bastion's reaper has ended so far."""
    return int(lab_host("bastion").run("journalctl --no-pager -o cat -u netreach-tunnel-reaper | grep -c 'ended session'").stdout.strip() or 0)


# --- sshd is validated before reload -----------------------------------------------------------------------

SERVER_SNAPSHOT = "cat /etc/ssh/sshd_config.d/50-netreach-tunnels.conf /home/tunnel/.ssh/authorized_keys | sha256sum"


def test_a_drop_in_sshd_rejects_is_put_back_and_sshd_keeps_serving():
    bastion = lab_host("bastion")
    before = bastion.check_output(SERVER_SNAPSHOT)
    bastion.run_test("echo 'NoSuchOption yes' > /etc/ssh/sshd_config.d/00-netreach-test-broken.conf")
    try:
        result = labtest.run_module(labtest.container("bastion"), "netreach.tunnels.tunnel_server",
                                    {"accounts": ["tunnel"], "client_alive_interval": 16, "managed_clients": []})
    finally:
        bastion.run_test("rm -f /etc/ssh/sshd_config.d/00-netreach-test-broken.conf")
    assert result.get("failed") and "sshd -t rejected" in result["msg"], result
    assert bastion.check_output(SERVER_SNAPSHOT) == before, "a rejected drop-in changed the server"
    assert bastion.run("sshd -t").rc == 0
    assert web_answers("client"), "sshd stopped serving tunnels"


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"accounts": ["tunnel"], "entries": [{"account": "tunnel", "client": "c", "tunnel": "t",
          "public_key": "ssh-ed25519 AAAA", "opens": ['h:1",command="sh']}]}, "entries[0].opens"),
        ({"accounts": ["tunnel"], "entries": [{"account": "tunnel", "client": "c d", "tunnel": "t",
          "public_key": "ssh-ed25519 AAAA"}]}, "entries[0].client"),
        ({"accounts": ["tunnel"], "entries": [{"account": "tunnel", "client": "c", "tunnel": "t",
          "public_key": "ssh-ed25519 AAAA\nssh-ed25519 BBBB"}]}, "entries[0].public_key"),
        ({"accounts": ["no-such-account"]}, "accounts"),
        ({"accounts": ["root"], "create_accounts": True}, "accounts"),
        ({"accounts": ["tunnel"], "create_accounts": True, "entries": [{"account": "admin", "client": "c", "tunnel": "t",
          "public_key": "ssh-ed25519 AAAA"}]}, "entries[0].account"),
        ({"accounts": ["tunnel"], "client_alive_interval": 0}, "client_alive_interval"),
    ],
)
def test_bad_server_input_fails_naming_the_field_and_changes_nothing(args, field):
    bastion = lab_host("bastion")
    before = bastion.check_output(SERVER_SNAPSHOT)
    result = labtest.run_module(labtest.container("bastion"), "netreach.tunnels.tunnel_server", args)
    assert result.get("failed") and result.get("field") == field, result
    assert bastion.check_output(SERVER_SNAPSHOT) == before


# --- the tunnel accounts: made by the module, locked, shell-less ------------------------------------------------


def account_state(server: str) -> tuple[list[str], str]:
    """getent's passwd line of the tunnel account on SERVER (split) and its `passwd -S` status letter."""
    host = lab_host(server)
    return host.check_output("getent passwd tunnel").split(":"), host.check_output("passwd -S tunnel").split()[1]


@pytest.mark.parametrize("server", ["bastion", "server13"])
def test_the_tunnels_log_in_to_a_locked_shell_less_system_account_the_module_made(server):
    entry, status = account_state(server)
    print(f"\n{server}: getent passwd tunnel: {':'.join(entry)}; passwd -S: {status}")
    assert entry[6] == "/usr/sbin/nologin" and entry[5] == "/home/tunnel" and 0 < int(entry[2]) < 1000, entry
    assert status == "L", f"the tunnel account's password is not locked ({status})"
    # The tunnels that carry traffic (test_every_declared_tunnel_carries_traffic) logged in to it, by key.
    client = "client" if server == "bastion" else "client13"
    assert wait_until(lambda: web_answers(client), UP_TIMEOUT) is not None
    log = lab_host(server).run("journalctl --no-pager -o cat -u ssh | grep -c 'Accepted publickey for tunnel '").stdout
    assert int(log.strip() or 0) > 0, "sshd logged no key login to the tunnel account"


def server_module(args: dict, *options: str) -> dict:
    bastion = labtest.container("bastion")
    document = labtest._ansible_json(["ansible", bastion, "-m", "netreach.tunnels.tunnel_server", "-a", json.dumps(args),
                                      *options], 120)
    return document["plays"][0]["tasks"][0]["hosts"][bastion]


def test_an_existing_tunnel_account_given_a_shell_and_a_password_is_locked_again():
    """Someone gave the tunnel account a login shell and a password: check mode reports it and changes nothing, a
    run locks the account again (the diff says so), the next run changes nothing, and the tunnels keep working."""
    bastion = lab_host("bastion")
    bastion.run_test("usermod --shell /bin/bash --password '$6$netreach$notarealhashnotarealhash' tunnel")
    args = {"accounts": ["tunnel"], "create_accounts": True, "managed_clients": []}
    try:
        checked = server_module(args, "--check", "--diff")
        assert checked["changed"] and account_state("bastion")[1] == "P", checked
        said = checked["diff"]["after"] if isinstance(checked["diff"], dict) else checked["diff"][0]["after"]
        print(f"\ncheck mode's diff: {said.strip()}")
        assert "# account tunnel: existing, brought to the locked state: shell /bin/bash -> /usr/sbin/nologin, " \
               "password locked" in said
        applied = server_module(args, "--diff")
        assert applied["changed"] and not applied.get("failed"), applied
        entry, status = account_state("bastion")
        assert entry[6] == "/usr/sbin/nologin" and status == "L", (entry, status)
        assert not server_module(args)["changed"], "a second run changed the locked account again"
    finally:
        bastion.run("usermod --shell /usr/sbin/nologin --lock tunnel")
    assert wait_until(lambda: web_answers("client"), UP_TIMEOUT) is not None, "the tunnels stopped"


def test_an_ordinary_account_is_never_made_a_tunnel_account():
    """A person's account (uid from UID_MIN up, a shell, a password) listed as a tunnel account: the module refuses
    it naming accounts, and neither the account nor the server's files change."""
    bastion = lab_host("bastion")
    bastion.run_test("id netreach-person || useradd --create-home --shell /bin/bash "
                     "--password '$6$netreach$notarealhashnotarealhash' netreach-person")
    before = (bastion.check_output("getent passwd netreach-person"), bastion.check_output("passwd -S netreach-person"),
              bastion.check_output(SERVER_SNAPSHOT))
    result = server_module({"accounts": ["tunnel", "netreach-person"], "create_accounts": True, "managed_clients": []})
    print(f"\nan ordinary account as a tunnel account: {result.get('msg')}")
    assert result.get("failed") and result.get("field") == "accounts" and "ordinary account" in result["msg"], result
    assert (bastion.check_output("getent passwd netreach-person"), bastion.check_output("passwd -S netreach-person"),
            bastion.check_output(SERVER_SNAPSHOT)) == before


# --- failures say why -----------------------------------------------------------------------------------------

PROXY_PORT = 8888
# tinyproxy as a corporate proxy would be set: CONNECT only to 443, so a tunnel to the bastion's sshd is refused.
PROXY_CONF = f"Port {PROXY_PORT}\nListen 0.0.0.0\nTimeout 30\nMaxClients 10\nConnectPort 443\nLogLevel Info\n"


def black_hole() -> str:
    """An address of the corp network that no container holds: nothing answers there, connections time out."""
    out = subprocess.run(["docker", "network", "inspect", labtest.network_name("corp")], check=True,
                         capture_output=True, text=True).stdout
    network = json.loads(out)[0]
    used = {entry["IPv4Address"].split("/")[0] for entry in network["Containers"].values()}
    subnet = ipaddress.ip_network(next(c["Subnet"] for c in network["IPAM"]["Config"] if "." in c["Subnet"]))
    return str(next(address for address in reversed(list(subnet.hosts())[-16:]) if str(address) not in used))


def failing_tunnels(client: str) -> dict[str, tuple[dict, str, str]]:
    """Tunnels that fail for one cause each: name -> (declaration, expected cause, text of the expected line)."""
    bastion, server13 = labtest.container("bastion"), labtest.container("server13")
    bastion_key = " ".join(lab_host("bastion").check_output("cat /etc/ssh/ssh_host_ed25519_key.pub").split()[:2])
    server13_key = " ".join(lab_host("server13").check_output("cat /etc/ssh/ssh_host_ed25519_key.pub").split()[:2])
    hole = black_hole()
    ports = iter(range(12401, 12420))

    def web() -> dict:
        return {"local_forwards": [f"{next(ports)}:{labtest.container('target')}:80"]}

    tunnels = {
        # The bastion's name pinned with server13's key: what a man in the middle would look like.
        "why-hostkey": ({"server": bastion, "known_hosts": [f"{bastion} {server13_key}"], **web()},
                        "host_key_mismatch", f"Host key for {bastion} has changed"),
        "why-unknownkey": ({"server": bastion, "known_hosts": [f"{server13} {server13_key}"], **web()},
                           "host_key_unknown", f"host key is known for {bastion}"),
        # Its own new key, which no tunnel_server entry authorises.
        "why-denied": ({"server": bastion, "known_hosts": [f"{bastion} {bastion_key}"], **web()},
                       "permission_denied", f"tunnel@{bastion}: Permission denied (publickey"),
        # The reverse tunnel's key asks for a port its permitlisten does not name.
        "why-listen": ({"server": bastion, "known_hosts": [f"{bastion} {bastion_key}"],
                        "identity_file": "/etc/netreach/tunnels/reverse/id_ed25519",
                        "remote_forwards": ["17999:localhost:7070"]},
                       "remote_forward_refused", "remote port forwarding failed for listen port 17999"),
        "why-dns": ({"server": "nosuch-host.invalid", "known_hosts": [f"nosuch-host.invalid {bastion_key}"], **web()},
                    "name_unresolved", "Could not resolve hostname nosuch-host.invalid: Name or service not known"),
        "why-refused": ({"server": bastion, "port": 2222, "known_hosts": [f"[{bastion}]:2222 {bastion_key}"], **web()},
                        "connection_refused", f"connect to host {bastion} port 2222: Connection refused"),
        "why-timeout": ({"server": hole, "connect_timeout": 2, "known_hosts": [f"{hole} {bastion_key}"], **web()},
                        "connection_timed_out", f"connect to host {hole} port 22: "),
        "why-proxy": ({"server": bastion, "known_hosts": [f"{bastion} {bastion_key}"],
                       "proxy": {"type": "http", "host": bastion, "port": PROXY_PORT}, **web()},
                      "proxy_refused", f"proxy-connect: the proxy refused CONNECT {bastion}:22: HTTP/1.1 403 "),
    }
    for declaration, _cause, _line in tunnels.values():
        declaration.update(restart_delay=1, restart_max_delay=5)
    return tunnels


def declare(client: str, tunnels: dict, state: str) -> dict:
    items = [dict(declaration, name=name, state=state) if state != "absent"
             else {"name": name, "state": "absent", "remove_key": True}
             for name, (declaration, _cause, _line) in tunnels.items()]
    result = labtest.run_module(labtest.container(client), "netreach.tunnels.ssh_tunnels",
                                {"tunnels": items, "exclusive": False}, timeout=600)
    assert not result.get("failed"), result
    return result


@pytest.fixture
def refusing_proxy():
    bastion = lab_host("bastion")
    bastion.run_test(f"printf '{PROXY_CONF}' > /run/netreach-test-proxy.conf")
    bastion.run_test("systemd-run --unit netreach-test-proxy /usr/bin/tinyproxy -d -c /run/netreach-test-proxy.conf")
    assert wait_until(lambda: bastion.socket(f"tcp://0.0.0.0:{PROXY_PORT}").is_listening, 20) is not None
    yield
    bastion.run("systemctl stop netreach-test-proxy")


def test_tunnel_info_and_the_status_report_say_why_each_failing_tunnel_is_down(refusing_proxy, tmp_path):
    """One tunnel per cause the lab can produce, on both clients (OpenSSH 9.2 and 10.0) at once; tunnel_info names
    the cause and ssh's (or the proxy helper's) line, never systemd's; the healthy tunnels report no error, their
    IPv6 bind failure a warning; the status table and report show the causes."""
    tunnels = {client: failing_tunnels(client) for client in CLIENTS}
    for client in CLIENTS:
        declare(client, tunnels[client], "started")
    try:
        got: dict = {client: {} for client in CLIENTS}

        def diagnosed(client: str) -> bool:
            result = labtest.run_module(labtest.container(client), "netreach.tunnels.tunnel_info", {})
            got[client].update({tunnel["name"]: tunnel for tunnel in result["tunnels"]})
            return all(got[client].get(name, {}).get("cause") == cause
                       for name, (_decl, cause, _line) in tunnels[client].items()) \
                and all(got[client].get(name, {}).get("healthy") for name in TUNNELS)

        # The units back off up to 5 s between attempts; a loaded machine makes each attempt slow.
        seconds = wait_until(lambda: all([diagnosed(client) for client in CLIENTS]), 240, interval=2)
        print(f"\nevery cause diagnosed after {seconds} s (load average {os.getloadavg()[0]:.1f})")
        wrong = []
        for client in CLIENTS:
            for name in sorted(got[client]):
                tunnel = got[client][name]
                print(f"  {client:8} {name:15} {tunnel['state']:12} healthy={tunnel['healthy']!s:5} "
                      f"{tunnel['cause'] or '-':23} {tunnel['last_error'] or '-'}  warnings={tunnel['warnings']}")
            wrong += [(client, name, got[client].get(name, {}).get("cause"), got[client].get(name, {}).get("last_error"))
                      for name, (_decl, cause, line) in tunnels[client].items()
                      if got[client].get(name, {}).get("cause") != cause or line not in got[client][name]["last_error"]]
            wrong += [(client, name, "healthy tunnel", got[client][name]) for name in TUNNELS
                      if not got[client][name]["healthy"] or got[client][name]["cause"] or got[client][name]["last_error"]]
        assert not wrong, wrong
        assert not any("Failed with result" in got[client][name]["last_error"] for client in CLIENTS for name in got[client])
        warnings = [warning for client in CLIENTS for name in TUNNELS for warning in got[client][name]["warnings"]]
        assert any("Cannot assign requested address" in warning for warning in warnings), \
            "the IPv6 loopback bind failure of the healthy tunnels is not shown as a warning"
        status_report_shows_causes(tunnels, tmp_path / "status.html")
    finally:
        for client in CLIENTS:
            declare(client, tunnels[client], "absent")


def status_report_shows_causes(tunnels: dict, report) -> None:
    completed = subprocess.run(
        ["ansible-playbook", "netreach.tunnels.status", "-i", os.environ["MOLECULE_INVENTORY_FILE"],
         "-e", f"status_report={report}", "-e", "status_hosts=tunnel_clients"],
        capture_output=True, text=True, timeout=600, check=False,
        # The table's lines as the play printed them, from the json callback: a human callback folds long lines.
        env=dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1"))
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    # The json callback's document, after whatever ansible printed before it (warnings).
    document = json.JSONDecoder().raw_decode(completed.stdout[completed.stdout.index("{"):])[0]
    lines = [line for text in strings(document) for line in text.splitlines()]
    print("\n".join(line.strip() for line in lines if "tunnel_security-" in line and "  " in line))
    page = html.unescape(report.read_text())
    for client, declared in tunnels.items():
        for name, (_declaration, cause, _line) in declared.items():
            row = [line for line in lines if labtest.container(client) in line and f" {name} " in line]
            # The row names the cause, as its last column.
            assert row and "DOWN" in row[0] and cause.replace("_", " ") in row[0].split(name, 1)[1], (name, row)
            assert f"<title>{name} (down: {cause.replace('_', ' ')})</title>" in page, name
            assert got_line_in_page(page, name), name


def strings(value) -> list[str]:
    """Every string of a json callback's output, however deep."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    return [text for item in value for text in strings(item)] if isinstance(value, list) else []


def got_line_in_page(page: str, name: str) -> bool:
    """The report's table row of tunnel NAME names its cause and ssh's line, not systemd's."""
    rows = [row for row in page.split("<tr") if f"<td>{name}</td>" in row]
    return bool(rows) and all("Failed with result" not in row and "<td>-</td><td>-</td>" not in row for row in rows)


# --- status: tunnel_info and playbooks/status.yml ---------------------------------------------------------


def test_tunnel_info_reports_every_tunnel_healthy_with_live_probes():
    result = labtest.run_module(labtest.container("client"), "netreach.tunnels.tunnel_info", {})
    assert "tunnels" in result and not result["changed"], result
    tunnels = {tunnel["name"]: tunnel for tunnel in result["tunnels"]}
    assert sorted(tunnels) == sorted(TUNNELS)
    for name, tunnel in tunnels.items():
        assert tunnel["state"] == "active" and tunnel["healthy"], (name, tunnel)
        assert tunnel["uptime_seconds"] is not None and tunnel["enabled"]
    assert tunnels["chain"]["jump_hosts"] == [labtest.container("bastion")]
    assert [f["probe"] for f in tunnels["socks"]["forwards"]] == ["SOCKS5 greeting answered"]
    server = labtest.run_module(labtest.container("bastion"), "netreach.tunnels.tunnel_info", {})
    listens = {entry["listen"]: entry["listening"] for entry in server["server_listens"]}
    assert listens == {f"localhost:{port}": True for port in REVERSE_PORTS.values()}, server["server_listens"]


def test_status_playbook_marks_a_stopped_tunnel_down_in_table_and_report(tmp_path):
    client13 = lab_host("client13")
    report = tmp_path / "status.html"
    client13.run_test("systemctl stop netreach-tunnel@web")
    try:
        completed = subprocess.run(
            ["ansible-playbook", "netreach.tunnels.status", "-i", os.environ["MOLECULE_INVENTORY_FILE"],
             "-e", f"status_report={report}"], capture_output=True, text=True, timeout=300, check=False)
    finally:
        client13.run_test("systemctl start netreach-tunnel@web")
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    table = [line for line in completed.stdout.splitlines() if labtest.container("client13") in line and " web " in line]
    print("\n" + "\n".join(line.strip() for line in completed.stdout.splitlines() if "tunnel_security-" in line and "  " in line))
    assert table and "DOWN" in table[0], completed.stdout[-3000:]
    assert "8 tunnels, 1 down" in completed.stdout
    page = report.read_text()
    assert "<svg" in page and 'class="down"' in page and "tunnel_security-server13" in page
    assert wait_until(lambda: web_answers("client13"), UP_TIMEOUT) is not None


# --- removal and --limit (last: they change the declarations) -----------------------------------------------


def declared_tunnels() -> list[dict]:
    """The clients' tunnel_client_tunnels, as molecule.yml declares them."""
    scenario = os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "molecule", labtest.scenario(), "molecule.yml")
    with open(scenario, encoding="utf-8") as handle:
        config = yaml.safe_load(handle)
    return config["provisioner"]["inventory"]["group_vars"]["tunnel_clients"]["tunnel_client_tunnels"]


def test_removed_tunnel_key_stops_authenticating_and_limit_keeps_other_clients(key_dir, tmp_path):
    """Rerun the fleet playbook limited to client and its servers, with web gone from client's list."""
    override = tmp_path / "without-web.yml"
    remaining = [tunnel for tunnel in declared_tunnels() if tunnel["name"] != "web"]
    override.write_text(yaml.safe_dump({"all": {"hosts": {labtest.container("client"): {
        "tunnel_client_tunnels": remaining}}}}))
    limit = ",".join(labtest.container(name) for name in ("client", "bastion", "server13"))
    stats = labtest.run_playbook("netreach.tunnels.tunnels", "-i", str(override), "--limit", limit)
    assert all(host["failures"] == 0 and host["unreachable"] == 0 for host in stats.values()), stats
    assert not probe(key_dir, "client", "web", "bastion").authenticates()[0], "the removed tunnel's key still logs in"
    assert not lab_host("client").file("/etc/systemd/system/netreach-tunnel@web.service").exists, \
        "the role left the undeclared tunnel's unit"
    assert probe(key_dir, "client13", "web", "bastion").authenticates()[0], "--limit dropped client13's key"
    assert web_answers("client13"), "client13's web tunnel stopped"
    assert wait_until(lambda: reverse_answers("client"), UP_TIMEOUT) is not None, "client's other tunnels broke"
