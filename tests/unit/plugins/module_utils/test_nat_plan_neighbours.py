"""The nat_rules plan beside its neighbours (tests/unit/nat_fakehost.py, real nft samples in nft_samples/):
nftables.service, Docker's DOCKER-USER, a foreign drop."""
from __future__ import annotations

import json
import os

import pytest

from ansible_collections.netreach.tunnels.plugins.module_utils._engine import Plan
from ansible_collections.netreach.tunnels.plugins.module_utils._nat import parse_nat
from ansible_collections.netreach.tunnels.plugins.module_utils._nat_apply import plan_nat
from fakehost import Failed, snapshot
from nat_fakehost import DECLARED, NFT, Kernel, NatModule, confirm, files, run


@pytest.fixture
def kernel(tmp_path) -> Kernel:
    return Kernel(str(tmp_path))


SAMPLES = os.path.join(os.path.dirname(__file__), "nft_samples")


def foreign(name: str) -> list[dict]:
    with open(os.path.join(SAMPLES, name), encoding="utf-8") as stream:
        return [item for item in json.load(stream)["nftables"] if "metainfo" not in item]


@pytest.mark.parametrize("check", [True, False])
def test_the_neighbours_are_in_the_result_in_check_mode_too(kernel, check):
    kernel.units["nftables.service"] = "loaded"
    kernel.enabled.add("nftables.service")
    kernel.foreign = foreign("nftables-service-stock.json")
    result, _module = run(kernel, check=check)
    assert result["neighbours"] == {"nftables_service": {"installed": True, "enabled": True, "active": False},
                                    "firewalld": {"active": False, "enabled": False},
                                    "ufw": {"enabled": False, "active": False}, "docker": {"docker_user": [], "accepted_in": []},
                                    "dropping_chains": []}


@pytest.mark.parametrize("check", [True, False])
def test_a_foreign_drop_fails_before_any_change_naming_table_and_chain(kernel, tmp_path, check):
    kernel.foreign = foreign("handmade.json")
    before = snapshot(str(tmp_path))
    module = NatModule(kernel, check_mode=check)
    with pytest.raises(Failed) as failure:
        plan_nat(Plan(module), parse_nat(DECLARED), True, 30)
    msg = failure.value.result["msg"]
    assert failure.value.result["field"] == "foreign_drop" and msg.startswith("foreign_drop: ")
    for chain in ("table inet handmade chain forward_filter (hook forward, policy accept, ends in reject)",
                  "table inet handmade chain nat_post (hook postrouting, policy drop)",
                  "table inet handmade chain pre_filter"):
        assert chain in msg
    assert "nothing was changed" in msg and "foreign_drop: ignore" in msg
    assert snapshot(str(tmp_path)) == before and kernel.table is None
    assert [c for c in module.commands if c[:2] != [NFT, "-j"] and c[0] != "systemctl"] == []


def test_foreign_drop_ignore_applies_and_reports_the_chains(kernel):
    kernel.foreign = foreign("handmade.json")
    result, _module = run(kernel, foreign_drop="ignore")
    assert result["changed"] and kernel.table is not None
    assert [c["chain"] for c in result["neighbours"]["dropping_chains"]] == ["pre_filter", "forward_filter", "nat_post"]
    # absent never fails on a neighbour: taking our table back cannot drop anything more.
    confirm(kernel, result)
    assert run(kernel, state="absent")[0]["changed"]


def test_beside_dockers_forward_drop_exactly_the_declared_flows_are_accepted_in_docker_user(kernel, tmp_path):
    kernel.foreign = foreign("docker-forward-drop.json")
    checked, module = run(kernel, check=True)
    assert checked["changed"] and kernel.chains == {} and not kernel.jumps
    assert "ip filter NETREACH-NAT (jumped to from DOCKER-USER): 4 rules" in checked["diff"]["after"]
    applied, _module = run(kernel)
    confirm(kernel, applied)
    assert kernel.chains == {"ip": [
        "-d 10.10.0.5 -i eth0 -p tcp -m tcp --dport 80 -m conntrack --ctstate DNAT -j ACCEPT",
        "-s 10.10.0.5 -p tcp -m tcp --sport 80 -m conntrack --ctstate DNAT -j ACCEPT",
        "-s 10.10.0.0/24 -o eth0 -j ACCEPT",
        "-d 10.10.0.0/24 -i eth0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"]} and kernel.jumps == {"ip"}
    unit = (tmp_path / "etc/systemd/system/netreach-nat-docker.service").read_text()
    assert "After=docker.service" in unit and "WantedBy=docker.service" in unit
    assert "ExecStart=/usr/sbin/iptables-restore --noflush /etc/netreach/nat/docker-user-ip.rules" in unit
    assert (tmp_path / "etc/netreach/nat/docker-user-ip.rules").read_text().startswith("*filter\n:NETREACH-NAT - [0:0]\n")
    assert "netreach-nat-docker.service" in kernel.enabled
    assert not run(kernel, check=True)[0]["changed"] and not run(kernel)[0]["changed"]
    kernel.jumps.clear()  # Docker's DOCKER-USER rebuilt without our jump: put right
    assert run(kernel)[0]["changed"] and kernel.jumps == {"ip"}
    confirm(kernel, run(kernel, state="absent")[0])
    assert kernel.chains == {} and not kernel.jumps and files(tmp_path).keys() == {"etc/netreach", "etc/sysctl.d"}
    assert "netreach-nat-docker.service" not in kernel.enabled


def test_with_nftables_service_installed_its_reload_loads_our_table_again(kernel, tmp_path):
    kernel.units["nftables.service"] = "loaded"
    confirm(kernel, run(kernel)[0])
    dropin = tmp_path / "etc/systemd/system/nftables.service.d/netreach-nat.conf"
    text = dropin.read_text()
    assert "ExecStartPost=-/usr/sbin/nft -f /etc/netreach/nat/netreach.nft" in text
    assert "ExecReload=-/usr/sbin/nft -f /etc/netreach/nat/netreach.nft" in text
    unit = (tmp_path / "etc/systemd/system/netreach-nat.service").read_text()
    assert "After=local-fs.target nftables.service" in unit
    assert not run(kernel)[0]["changed"]
    (tmp_path / "etc/systemd/system/nftables.service.d/admin.conf").write_text("[Service]\n")
    confirm(kernel, run(kernel, state="absent")[0])
    assert not dropin.exists() and (tmp_path / "etc/systemd/system/nftables.service.d/admin.conf").exists()
    os.unlink(tmp_path / "etc/systemd/system/nftables.service.d/admin.conf")
    confirm(kernel, run(kernel)[0])
    confirm(kernel, run(kernel, state="absent")[0])
    assert not (tmp_path / "etc/systemd/system/nftables.service.d").exists()


def test_a_changed_unit_is_reenabled(kernel, tmp_path):
    confirm(kernel, run(kernel)[0])
    unit = tmp_path / "etc/systemd/system/netreach-nat.service"
    unit.write_text(unit.read_text().replace("After=local-fs.target nftables.service", "After=local-fs.target"))
    result, module = run(kernel)
    assert result["changed"] and ["systemctl", "reenable", "netreach-nat.service"] in module.commands
