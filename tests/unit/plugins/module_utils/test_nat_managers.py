"""nat_rules beside firewalld and ufw: the renderers, and the plan on the fake gateway (tests/unit/nat_fakehost.py)
with real listings and Debian's own before*.rules (nft_samples/)."""
from __future__ import annotations

import json
import os

import pytest

from ansible_collections.netreach.tunnels.plugins.module_utils._nat import parse_nat
from ansible_collections.netreach.tunnels.plugins.module_utils._nat_managers import (
    BEGIN,
    END,
    policy_loaded,
    render_policy,
    ufw_enabled,
    ufw_lines,
    ufw_text,
)
from fakehost import Failed, snapshot
from nat_fakehost import DECLARED, Kernel, confirm, run

SAMPLES = os.path.join(os.path.dirname(__file__), "nft_samples")
POLICY = "etc/firewalld/policies/netreach-nat.xml"


def sample(name: str) -> str:
    with open(os.path.join(SAMPLES, name), encoding="utf-8") as stream:
        return stream.read()


def items(name: str) -> list[dict]:
    return [item for item in json.loads(sample(name))["nftables"] if "metainfo" not in item]


def put(root, path: str, text: str) -> None:
    full = os.path.join(str(root), path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w", encoding="utf-8") as stream:
        stream.write(text)
    os.chmod(full, 0o640)


def read(root, path: str) -> str | None:
    full = os.path.join(str(root), path)
    return open(full, encoding="utf-8").read() if os.path.exists(full) else None


def test_the_policy_accepts_each_source_once_and_forwards_need_none():
    rules = parse_nat({**DECLARED, "snat": [{"out_interface": "eth1", "source": "10.10.0.0/24", "to": "192.0.2.1"}]})
    policy = render_policy(rules)
    assert policy.count('<source address="10.10.0.0/24"/>') == 1 and 'target="CONTINUE"' in policy
    assert '<ingress-zone name="ANY"/>' in policy and '<egress-zone name="ANY"/>' in policy
    assert render_policy(parse_nat({**DECLARED, "masquerade": []})) is None
    everything = render_policy(parse_nat({**DECLARED, "masquerade": [{"out_interface": "eth0"}]}))
    assert 'target="ACCEPT"' in everything and "<rule" not in everything
    assert policy_loaded("netreach-nat (active)\n  target: CONTINUE\n", rules).startswith("firewalld's policy")
    assert policy_loaded("", rules) == "firewalld has no policy netreach-nat after its reload"


@pytest.mark.parametrize("name,family", [("ufw-before.rules", "ip"), ("ufw-before6.rules", "ip6")])
def test_the_ufw_block_goes_before_commit_and_comes_out_exactly(name, family):
    original = sample(name)
    rules = parse_nat({**DECLARED, "port_forwards": DECLARED["port_forwards"] + [
        {"proto": "tcp", "port": 2222, "to": "[fd00::5]:22"}]})
    lines = ufw_lines(rules, family)
    assert lines and all(line.startswith("-A ufw") for line in lines)
    text = ufw_text(original, lines)
    assert text.index(END) < text.index("# don't delete the 'COMMIT' line") < text.rindex("COMMIT")
    assert ufw_text(text, lines) == text
    assert ufw_text(text, []) == original and ufw_text(original, []) == original
    assert BEGIN in ufw_text(text, lines[:1]) and ufw_text(text, lines[:1]).count(BEGIN) == 1


def test_ufw_enabled_is_what_ufw_conf_says():
    assert ufw_enabled("# comment\nENABLED=yes\nLOGLEVEL=low\n") and not ufw_enabled("ENABLED=no\n")
    assert not ufw_enabled(None) and ufw_enabled('ENABLED="yes"')


@pytest.fixture
def firewalld(tmp_path) -> Kernel:
    kernel = Kernel(str(tmp_path))
    kernel.foreign = items("firewalld-default-zone.json")
    kernel.active.add("firewalld.service")
    kernel.enabled.add("firewalld.service")
    os.makedirs(os.path.join(str(tmp_path), "etc/firewalld/policies"))
    return kernel


def test_beside_firewalld_its_chains_are_not_foreign_and_our_policy_is_loaded(firewalld, tmp_path):
    before = snapshot(str(tmp_path))
    checked, _module = run(firewalld, check=True)
    assert checked["changed"] and "netreach-nat.xml" in checked["diff"]["after"]
    assert snapshot(str(tmp_path)) == before and firewalld.firewalld_policy is None
    assert {c["owner"] for c in checked["neighbours"]["dropping_chains"]} == {"firewalld"}
    applied, module = run(firewalld)
    confirm(firewalld, applied)
    assert applied["changed"] and read(tmp_path, POLICY) == render_policy(parse_nat(DECLARED))
    assert ["/usr/sbin/firewall-cmd", "--reload"] in module.commands
    assert "10.10.0.0/24" in firewalld.firewalld_policy
    again, module = run(firewalld)
    assert not again["changed"] and ["/usr/sbin/firewall-cmd", "--reload"] not in module.commands
    # Reloaded behind our back without our file: the next run puts it back and reloads.
    firewalld.firewalld_policy = None
    assert run(firewalld)[0]["changed"] and firewalld.firewalld_policy is not None
    gone, _module = run(firewalld, state="absent")
    confirm(firewalld, gone)
    assert read(tmp_path, POLICY) is None and firewalld.firewalld_policy is None
    assert os.path.isdir(os.path.join(str(tmp_path), "etc/firewalld/policies"))


def test_without_firewalld_its_chains_are_foreign_drops(tmp_path):
    kernel = Kernel(str(tmp_path))
    kernel.foreign = items("firewalld-default-zone.json")
    with pytest.raises(Failed) as failed:
        run(kernel)
    assert failed.value.result["field"] == "foreign_drop" and "inet firewalld" in failed.value.result["msg"]


@pytest.fixture
def ufw(tmp_path) -> Kernel:
    kernel = Kernel(str(tmp_path))
    kernel.foreign = items("ufw-defaults.json")
    put(tmp_path, "etc/ufw/ufw.conf", "ENABLED=yes\nLOGLEVEL=low\n")
    put(tmp_path, "etc/ufw/before.rules", sample("ufw-before.rules"))
    put(tmp_path, "etc/ufw/before6.rules", sample("ufw-before6.rules"))
    return kernel


def test_beside_ufw_our_block_is_loaded_and_absent_restores_its_files_exactly(ufw, tmp_path):
    before = snapshot(str(tmp_path))
    checked, _module = run(ufw, check=True)
    assert checked["changed"] and snapshot(str(tmp_path)) == before
    assert checked["neighbours"]["ufw"] == {"enabled": True, "active": True}
    applied, module = run(ufw)
    confirm(ufw, applied)
    assert applied["changed"] and ["/usr/sbin/ufw", "reload"] in module.commands
    assert BEGIN in read(tmp_path, "etc/ufw/before.rules") and oct(os.stat(
        os.path.join(str(tmp_path), "etc/ufw/before.rules")).st_mode & 0o777) == "0o640"
    assert ufw.tested == ["before.rules"]  # checked by iptables-restore before it went live; no IPv6 flows here
    assert "-d 10.10.0.5 -i eth0 -p tcp -m tcp --dport 80 -m conntrack --ctstate DNAT -j ACCEPT" in ufw.ufw_chains["ufw-before-forward"]
    assert not run(ufw)[0]["changed"]
    ufw.ufw_chains.clear()  # `ufw reload` after someone emptied before.rules' effect: we notice the live chain
    assert run(ufw)[0]["changed"] and ufw.ufw_chains["ufw-before-forward"]
    gone, _module = run(ufw, state="absent")
    confirm(ufw, gone)
    assert gone["changed"]
    assert read(tmp_path, "etc/ufw/before.rules") == sample("ufw-before.rules")
    assert read(tmp_path, "etc/ufw/before6.rules") == sample("ufw-before6.rules")
    assert not [rule for rule in ufw.ufw_chains["ufw-before-forward"] if "10.10.0" in rule]


def test_a_disabled_ufw_is_a_foreign_drop_where_its_chains_are_loaded(ufw, tmp_path):
    put(tmp_path, "etc/ufw/ufw.conf", "ENABLED=no\n")
    with pytest.raises(Failed) as failed:
        run(ufw)
    assert "ip filter chain FORWARD" in failed.value.result["msg"]
