"""netreach.tunnels.client_session proven by ssh, plink and the files WinSCP reads: each session through Squid
(or the tunnel host) with the servers' host keys pinned from inventory facts, and refused once a key changes."""
from __future__ import annotations

import time
from urllib.parse import unquote

from squidlab import REPO_PAGE, client, lab_host, through_proxy


def test_plain_ssh_name_logs_in_through_squids_sessions_port():
    out = through_proxy("ssh -o BatchMode=yes repo-via-proxy hostname", "proxy-repo:443", method="CONNECT",
                        user=None, name="ssh (sessions port, no authentication)")
    assert out.strip() == "proxy-repo"


def test_plain_ssh_name_logs_in_through_the_tunnel_host_and_opens_its_socks_forward():
    assert client().check_output("ssh -o BatchMode=yes repo-via-tunnel hostname").strip() == "proxy-repo"
    command = ("ssh -o BatchMode=yes -f -o ExitOnForwardFailure=yes repo-via-tunnel sleep 15 && "
               "curl -sSf --max-time 10 --socks5-hostname 127.0.0.1:3129 http://proxy-repo/")
    assert REPO_PAGE in client().check_output(command)


def test_each_session_trusts_only_its_own_pinned_keys():
    host = client()
    assert not host.file("/root/.ssh/known_hosts").exists, "root's known_hosts would hide what the sessions pin"
    config = host.check_output("ssh -G repo-via-proxy")
    assert "stricthostkeychecking true" in config and \
        "userknownhostsfile /root/.ssh/config.d/netreach-repo-via-proxy.known_hosts" in config
    pinned = host.file("/root/.ssh/config.d/netreach-repo-via-proxy.known_hosts").content_string
    assert pinned.startswith("[proxy-repo]:443 ssh-ed25519 "), pinned
    hostkeys = host.file("/root/.putty/sshhostkeys")
    assert hostkeys.mode == 0o600 and "ssh-ed25519@443:proxy-repo 0x" in hostkeys.content_string
    reg = host.file("/root/.putty/netreach-repo%20news.reg").content_string
    assert "[HKEY_CURRENT_USER\\Software\\SimonTatham\\PuTTY\\SshHostKeys]\r\n" in reg
    assert '"ssh-ed25519@443:proxy-repo"="0x' in reg


def test_putty_session_file_is_named_the_way_putty_escapes_it():
    assert client().file("/root/.putty/sessions/repo%20news").mode == 0o600
    assert client().file("/root/.putty/sessions/other").exists


def test_plink_load_logs_in_through_squid_as_the_declared_user_with_the_pinned_key():
    """No -hostkey: plink -batch finds the server's key in ~/.putty/sshhostkeys, where the session pinned it."""
    out = through_proxy("plink -load 'repo news' -batch hostname", "proxy-repo:443", method="CONNECT", name="plink")
    assert out.strip() == "proxy-repo"


def test_plink_opens_the_d3128_forward_of_the_session():
    host = client()
    host.run("rm -f /tmp/plink.pid")
    host.check_output("setsid sh -c 'echo $$ > /tmp/plink.pid; exec timeout 60 plink -load \"repo news\" -batch "
                      "-N' >/tmp/plink.log 2>&1 < /dev/null &")
    try:
        deadline = time.monotonic() + 20
        result = None
        while time.monotonic() < deadline:
            result = host.run("curl -sSf --max-time 5 --socks5-hostname 127.0.0.1:3128 http://proxy-repo/")
            if result.rc == 0:
                break
            time.sleep(0.5)
        assert result is not None and REPO_PAGE in result.stdout, \
            f"no page through plink's D3128: {result and result.stderr}\n{host.run('cat /tmp/plink.log').stdout}"
    finally:
        host.run("test -s /tmp/plink.pid && kill -- -$(cat /tmp/plink.pid)")


def test_after_the_servers_key_changes_ssh_and_plink_refuse():
    repo, host = lab_host("repo"), client()
    repo.check_output("mkdir -p /root/hostkeys && cp -p /etc/ssh/ssh_host_* /root/hostkeys/ && rm /etc/ssh/ssh_host_* "
                      "&& ssh-keygen -A -q && systemctl restart ssh")
    try:
        ssh = host.run("ssh -o BatchMode=yes -o ConnectTimeout=10 repo-via-proxy true")
        assert ssh.rc != 0 and "REMOTE HOST IDENTIFICATION HAS CHANGED" in ssh.stderr, ssh.stderr
        plink = host.run("timeout 30 plink -load 'repo news' -batch true")
        assert plink.rc != 0 and "POTENTIAL SECURITY BREACH" in plink.stderr, plink.stdout + plink.stderr
        tunnel = host.run("ssh -o BatchMode=yes -o ConnectTimeout=10 repo-via-tunnel true")
        assert tunnel.rc != 0 and "Host key verification failed" in tunnel.stderr, tunnel.stderr
    finally:
        repo.check_output("cp -p /root/hostkeys/ssh_host_* /etc/ssh/ && rm -rf /root/hostkeys && systemctl restart ssh")
    assert host.check_output("ssh -o BatchMode=yes repo-via-proxy hostname").strip() == "proxy-repo"


def test_winscp_ini_keeps_other_sections_and_carries_the_documented_keys():
    text = client().file("/root/WinSCP.ini").content_string
    assert text.startswith("[Configuration\\Interface]\r\nRandomSeedFile=%25APPDATA%25%5Cwinscp.rnd\r\n"
                           "[Sessions\\other%20site]\r\nHostName=other.example.org\r\n")
    section = text.split("[Sessions\\corp/repo%20site]\r\n", 1)[1]
    keys = dict(line.split("=", 1) for line in section.split("\r\n") if "=" in line)
    host_keys = {name: unquote(keys.pop(name, "")).split(";") for name in ("HostKey", "TunnelHostKey")}
    assert keys == {"HostName": "proxy-repo", "PortNumber": "22", "UserName": "lab", "FSProtocol": "2",
                    "ProxyMethod": "3", "ProxyHost": "proxy-proxy", "ProxyPort": "8080", "Tunnel": "1",
                    "TunnelHostName": "proxy-proxy", "TunnelPortNumber": "22", "TunnelUserName": "lab"}
    # WinSCP's SHA-256 fingerprints ("ssh-ed25519 255 BASE64="), the same digests ssh-keygen prints.
    for name, server in (("HostKey", "repo"), ("TunnelHostKey", "proxy")):
        digest = lab_host(server).check_output("ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub").split()[1]
        assert f"ssh-ed25519 255 {digest.removeprefix('SHA256:')}=" in host_keys[name], (name, host_keys[name])
        assert len(host_keys[name]) == 3, host_keys[name]  # ed25519, ecdsa and rsa
