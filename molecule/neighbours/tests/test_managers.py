"""netreach.tunnels.nat_rules beside Debian's firewalld and ufw (issue 14), proven by packets.

converge.yml (molecule/_shared/gateway_lab) declares the gateway with both managers off. Each manager is then
switched on in turn with its defaults (firewalld: the default zone on every interface; ufw: `ufw --force enable`),
which kills the masquerade (and with ufw the forward too); the declaration applied again carries both, after the
apply, after the manager's own reload and restart, and after `docker restart` of the gateway; `state: absent` takes
back exactly what we added to the manager's configuration. When our part of a manager's configuration is taken
away behind Ansible's back and the manager reloaded (the flows die), playbooks/status.yml reports the gateway's
forwards as drifted, and the next run puts them back.
"""
from __future__ import annotations

import json
import os
import re
import subprocess

import labtest
from gatewaylab import INSIDE_PAGE, addr, declaration, fetch, lab_host, outside_if, restart_gateway, run_module, \
    snapshot, wait_until

# What of each manager's configuration we may touch, hashed: the state absent must bring back exactly.
FIREWALLD_CONFIG = "find /etc/firewalld -printf '%p %m\\n' | sort; find /etc/firewalld -type f | sort | xargs sha256sum"
UFW_CONFIG = "find /etc/ufw -printf '%p %m\\n' | sort; find /etc/ufw -type f | sort | xargs sha256sum"


def forward_works() -> bool:
    return f"{INSIDE_PAGE}; you are {addr('outside', 'outside')}" in fetch("outside", f"http://{addr('gw', 'outside')}:8080/")


def masquerade_works() -> bool:
    return f"you are {addr('gw', 'outside')}" in fetch("inside", f"http://{addr('outside', 'outside')}/")


def masquerade6_works() -> bool:
    return f"you are {addr('gw', 'outside', 6)}" in fetch("inside", f"http://[{addr('outside', 'outside', 6)}]/")


def assert_traffic(when: str, unit: str) -> None:
    # Right after a restart the manager may still be loading its rules: give it a few seconds.
    assert wait_until(forward_works, 30) is not None, f"no forward {when}:\n{labtest.journal(lab_host('gw'), unit)}"
    assert masquerade_works(), f"no masquerade {when}"
    assert masquerade6_works(), f"no IPv6 masquerade {when}"


def apply_beside(manager: str, config: str, unit: str) -> str:
    """Check mode shows the change and changes nothing; the apply carries the traffic; the rerun changes nothing.
    Returns the manager's configuration as it was before our part went in."""
    gw = lab_host("gw")
    original = gw.check_output(config)
    before = snapshot()
    checked = run_module(declaration(), check=True)
    assert not checked.get("failed") and checked["changed"], checked
    assert snapshot() == before and gw.check_output(config) == original, "check mode changed the gateway"
    applied = run_module(declaration())
    assert not applied.get("failed") and applied["changed"], applied
    assert not [c for c in applied["neighbours"]["dropping_chains"] if c["owner"] not in (manager, None)], applied
    assert_traffic(f"after the apply beside {manager}", unit)
    assert not run_module(declaration())["changed"], f"the rerun beside {manager} changed something"
    return original


def status_line(tmp_path) -> str:
    """playbooks/status.yml against the lab, the gateway role declaring what converge.yml does: the forward row of
    tcp 8080 to the inside server (its state in the last column)."""
    declared = declaration()
    variables = tmp_path / "gateway-vars.json"
    variables.write_text(json.dumps({
        "gateway_masquerade": declared["masquerade"], "gateway_port_forwards": declared["port_forwards"],
        "gateway_forward_policy": declared["forward_policy"], "gateway_rollback_timeout": declared["rollback_timeout"],
        "status_report": str(tmp_path / "status.html")}), encoding="utf-8")
    completed = subprocess.run(["ansible-playbook", "netreach.tunnels.status", "-i", os.environ["MOLECULE_INVENTORY_FILE"],
                                "-e", f"@{variables}"], capture_output=True, text=True, timeout=300, check=False,
                               env=dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0"))
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-2000:]
    row = re.search(rf"{labtest.container('gw')} +tcp 8080 on {outside_if()} -> {addr('inside', 'inside')}:80 +([a-z]+)",
                    completed.stdout)
    assert row, completed.stdout[-3000:]
    return row.group(1)


def assert_drift_seen_and_put_right(manager: str, remove: str, tmp_path) -> None:
    """Our part of MANAGER's configuration removed behind Ansible's back (REMOVE, which reloads the manager): the
    flows die, status.yml says drifted, the next run carries them again."""
    lab_host("gw").check_output(remove)
    assert wait_until(lambda: not masquerade_works(), 10) is not None, f"the masquerade survived {remove}"
    assert status_line(tmp_path) == "drifted", f"status.yml did not see what {remove} did beside {manager}"
    assert run_module(declaration())["changed"]
    assert_traffic(f"after the run that put our part of {manager}'s configuration back", manager)


def take_back(manager: str, config: str, original: str) -> None:
    gw = lab_host("gw")
    assert run_module({"state": "absent"})["changed"]
    assert gw.check_output(config) == original, f"state absent left something of ours in {manager}'s configuration"
    assert not run_module({"state": "absent"})["changed"]
    assert run_module(declaration())["changed"]


def test_beside_firewalld_its_own_policy_carries_forward_and_masquerade(tmp_path):
    gw = lab_host("gw")
    gw.check_output("systemctl enable --now firewalld.service && firewall-cmd --state")
    try:
        assert wait_until(lambda: not masquerade_works(), 10) is not None, "firewalld let the masquerade through"
        original = apply_beside("firewalld", FIREWALLD_CONFIG, "firewalld")
        assert "netreach-nat (active)" in gw.check_output("firewall-cmd --info-policy=netreach-nat")
        assert "netreach" not in gw.check_output("nft list table inet firewalld | grep -v netreach-nat || true")
        gw.check_output("firewall-cmd --reload")
        assert_traffic("after firewall-cmd --reload", "firewalld")
        gw.check_output("systemctl restart firewalld.service")
        assert_traffic("after systemctl restart firewalld", "firewalld")
        restart_gateway()
        assert lab_host("gw").check_output("firewall-cmd --state").strip() == "running"
        assert_traffic("after docker restart of the gateway beside firewalld", "firewalld")
        assert not run_module(declaration())["changed"]
        assert status_line(tmp_path) == "applied"
        assert_drift_seen_and_put_right(
            "firewalld", "rm /etc/firewalld/policies/netreach-nat.xml && firewall-cmd --reload", tmp_path)
        take_back("firewalld", FIREWALLD_CONFIG, original)
    finally:
        gw.run("systemctl disable --now firewalld.service")
    assert_traffic("after firewalld went", "netreach-nat")


def test_beside_ufw_its_before_rules_carry_forward_and_masquerade(tmp_path):
    gw = lab_host("gw")
    # Debian's package enables ufw.service, which loads the rules at boot; the lab image ships it disabled.
    gw.check_output("systemctl enable ufw.service && ufw --force enable")
    try:
        assert not forward_works() and not masquerade_works(), "ufw's defaults let the flows through"
        original = apply_beside("ufw", UFW_CONFIG, "ufw")
        assert "NETREACH" not in gw.check_output("iptables -S; ip6tables -S")
        gw.check_output("ufw reload")
        assert_traffic("after ufw reload", "ufw")
        restart_gateway()
        assert "Status: active" in lab_host("gw").check_output("ufw status")
        assert_traffic("after docker restart of the gateway beside ufw", "ufw")
        assert not run_module(declaration())["changed"]
        assert_drift_seen_and_put_right(
            "ufw", "sed -i '/^# BEGIN netreach.tunnels nat_rules/,/^# END netreach.tunnels nat_rules/d' "
                   "/etc/ufw/before.rules /etc/ufw/before6.rules && ufw reload", tmp_path)
        take_back("ufw", UFW_CONFIG, original)
    finally:
        gw.run("ufw --force disable; systemctl disable ufw.service")
    assert_traffic("after ufw went", "netreach-nat")
