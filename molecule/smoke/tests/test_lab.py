"""The lab proves itself: systemd, sshd key logins, nftables NAT and segment isolation on both images."""
from __future__ import annotations


import labtest
import pytest

# Short names of the lab hosts (containers are named <scenario>-<short name>) and their Debian codenames.
IMAGES = {"bookworm": "bookworm", "trixie": "trixie", "inside": "bookworm"}


lab_host = labtest.host


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_systemd_boots_to_running_on_the_expected_debian(name):
    host = lab_host(name)
    state = host.run("systemctl is-system-running").stdout.strip()
    failed = host.run("systemctl --failed --no-legend --plain").stdout
    assert state == "running", f"{name}: systemd is {state!r}; failed units:\n{failed}"
    assert host.system_info.codename == IMAGES[name]
    assert host.service("ssh").is_running


@pytest.mark.parametrize(("client", "server"), [("bookworm", "trixie"), ("trixie", "bookworm")])
def test_sshd_accepts_a_key_login_from_a_second_container(client, server):
    result = lab_host(client).run(
        "runuser -u smoke -- ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o ConnectTimeout=5 "
        f"smoke@{labtest.container(server)} 'hostname; . /etc/os-release; echo $VERSION_CODENAME'"
    )
    assert result.rc == 0, result.stderr
    assert result.stdout.split() == [labtest.container(server), IMAGES[server]]


def test_ssh_refuses_a_host_whose_key_is_not_pinned():
    # Same login, but with an empty known_hosts file: pinning is what makes the login above trustworthy.
    result = lab_host("bookworm").run(
        "runuser -u smoke -- ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/dev/null "
        f"-o ConnectTimeout=5 smoke@{labtest.container('trixie')} true"
    )
    assert result.rc != 0
    assert "Host key verification failed" in result.stderr


@pytest.mark.parametrize("name", ["bookworm", "trixie"])
def test_nft_adds_and_lists_a_nat_rule(name):
    host = lab_host(name)
    host.run("nft delete table ip smoke_nat")
    try:
        for command in (
            "nft add table ip smoke_nat",
            "nft 'add chain ip smoke_nat postrouting { type nat hook postrouting priority srcnat; }'",
            "nft add rule ip smoke_nat postrouting ip saddr 10.99.0.0/24 oifname eth0 masquerade",
        ):
            result = host.run(command)
            assert result.rc == 0, f"{command}: {result.stderr}"
        listing = host.check_output("nft list table ip smoke_nat")
        assert "ip saddr 10.99.0.0/24" in listing and "masquerade" in listing
    finally:
        host.run("nft delete table ip smoke_nat")


def test_inside_is_not_reachable_from_outside():
    target = labtest.container_ip(labtest.container("inside"), "inside")
    # Positive control: the gateway, which sits on both segments, does reach the inside host's sshd.
    via_gateway = lab_host("trixie").run(f"nc -z -w 3 {target} 22")
    assert via_gateway.rc == 0, f"control failed: the inside host's sshd is not answering ({via_gateway.stderr})"
    from_outside = lab_host("bookworm").run(f"nc -z -w 3 {target} 22")
    assert from_outside.rc != 0, f"{target}:22 on 'inside' answered a host on 'outside'"
