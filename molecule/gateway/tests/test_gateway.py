"""netreach.tunnels.nat_rules proven by packets.

gateway-gw sits on "outside" and "inside"; gateway-inside reaches anything only through it (prepare.yml
points its default routes there); gateway-outside is a client on the outside segment. converge.yml declares
the seed's gateway through the gateway role. Lab services answer with the source address they saw.

The lockout tests manage the gateway over SSH on the outside segment, as a controller would: the docker
connection Molecule uses cannot be cut by a ruleset, SSH can.
"""
from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
import time

import labtest
import pytest

from gatewaylab import (INSIDE_PAGE, MODULE, addr, declaration, fetch, inside_subnets, lab_host, our_table,
                        outside_if, restart_gateway, run_module, snapshot, subnets, udp, wait_until)

# --- traffic through the declared gateway -------------------------------------------------------------------


def test_tcp_forward_reaches_the_inside_web_page_with_the_clients_own_address():
    page = fetch("outside", f"http://{addr('gw', 'outside')}:8080/")
    assert f"{INSIDE_PAGE}; you are {addr('outside', 'outside')}" in page, page


def test_udp_forward_of_a_port_range_reaches_the_inside_service():
    answer = udp("outside", addr("gw", "outside"), 5001)
    assert f"netreach gateway-inside udp on port 5001; you are {addr('outside', 'outside')}" in answer, answer


def test_ipv6_forward_reaches_the_inside_web_page():
    page = fetch("outside", f"http://[{addr('gw', 'outside', 6)}]:8080/")
    assert f"{INSIDE_PAGE}; you are {addr('outside', 'outside', 6)}" in page, page


def test_forwards_at_size_go_through_hash_maps_and_interval_maps_and_carry_traffic():
    # Beyond four forwards a scope is looked up in maps and sets: single ports in hash ones, port ranges in interval
    # ones. Fillers to TEST-NET addresses put each of the three declared forwards' scopes past that threshold.
    base = declaration()
    v4, v6, ports = base["port_forwards"]
    fillers = [{"proto": "tcp", "port": 9100 + i, "to": f"192.0.2.{i + 1}:80", "in_interface": outside_if()} for i in range(30)]
    fillers += [{"proto": "tcp", "port": 9200 + i, "to": f"[2001:db8::{i + 1}]:80", "in_interface": outside_if()} for i in range(5)]
    fillers += [{"proto": "udp", "port": f"{6000 + 10 * i}-{6002 + 10 * i}", "to": "192.0.2.9"} for i in range(5)]
    try:
        applied = run_module({**base, "port_forwards": [v4, v6, ports] + fillers})
        assert applied["changed"] and applied.get("confirmed"), applied
        table = our_table()
        definitions = dict(re.findall(r"\n\t(?:map|set) (\w+) \{\n\t\ttype [^\n]*\n(\t\tflags interval\n)?", table))
        assert {name for name, interval in definitions.items() if interval} == {"fwd2_addrs", "fwd2_target_ranges"}, table
        assert {"fwd0_ports", "fwd0_targets", "fwd1_ports", "fwd1_targets"} <= set(definitions), table
        assert "dnat ip to 192.0.2" not in table and "dnat ip to meta l4proto . th dport map @fwd0_ports" in table
        page = fetch("outside", f"http://{addr('gw', 'outside')}:8080/")
        assert f"{INSIDE_PAGE}; you are {addr('outside', 'outside')}" in page, page
        page = fetch("outside", f"http://[{addr('gw', 'outside', 6)}]:8080/")
        assert f"{INSIDE_PAGE}; you are {addr('outside', 'outside', 6)}" in page, page
        answer = udp("outside", addr("gw", "outside"), 5001)
        assert f"netreach gateway-inside udp on port 5001; you are {addr('outside', 'outside')}" in answer, answer
        again = run_module({**base, "port_forwards": [v4, v6, ports] + fillers})
        assert not again["changed"], again
    finally:
        assert run_module(base)["changed"]
    assert "map fwd" not in our_table()


@pytest.mark.parametrize("version", [4, 6])
def test_masquerade_shows_the_gateways_address_to_the_outside(version):
    target = addr("outside", "outside", version)
    page = fetch("inside", f"http://[{target}]/" if version == 6 else f"http://{target}/")
    assert f"netreach gateway-outside page on port 80; you are {addr('gw', 'outside', version)}" in page, page


def test_snat_shows_the_declared_address_to_the_outside():
    gw = lab_host("gw")
    outside_net = ipaddress.ip_network(next(net for net in subnets("outside") if ":" not in net))
    # An address of the outside segment that docker leaves unused, held by the gateway as a second address.
    public = str(outside_net.network_address + 200)
    masquerade_v4, masquerade_v6 = declaration()["masquerade"]
    gw.check_output(f"ip addr add {public}/{outside_net.prefixlen} dev {outside_if()}")
    try:
        snat = {"out_interface": outside_if(), "source": masquerade_v4["source"], "to": public}
        assert run_module(declaration(masquerade=[masquerade_v6], snat=[snat]))["changed"]
        page = fetch("inside", f"http://{addr('outside', 'outside')}/")
        assert f"netreach gateway-outside page on port 80; you are {public}" in page, page
    finally:
        assert run_module(declaration())["changed"]
        gw.run(f"ip addr del {public}/{outside_net.prefixlen} dev {outside_if()}")


def test_forward_policy_drop_blocks_an_undeclared_port():
    outside = lab_host("outside")
    inside_net = next(net for net in inside_subnets() if ":" not in net)
    direct = f"http://{addr('inside', 'inside')}:81/"
    outside.run(f"ip route del {inside_net}")
    outside.check_output(f"ip route add {inside_net} via {addr('gw', 'outside')}")
    try:
        assert fetch("outside", direct) == "", "inside:81 answered a routed connection under forward_policy drop"
        # Control: the same connection passes once the policy is accept, so drop is what stopped it.
        assert run_module(declaration(forward_policy="accept"))["changed"]
        assert f"port 81; you are {addr('outside', 'outside')}" in fetch("outside", direct)
        assert run_module(declaration())["changed"]
        assert fetch("outside", direct) == "", "inside:81 still answers after forward_policy went back to drop"
        assert INSIDE_PAGE in fetch("outside", f"http://{addr('gw', 'outside')}:8080/")
    finally:
        outside.run(f"ip route del {inside_net}")
        run_module(declaration())


def test_hairpin_lets_the_inside_use_the_forward_through_the_gateways_outside_address():
    url = f"http://{addr('gw', 'outside')}:8080/"
    assert fetch("inside", url) == "", "the inside reached the forward without hairpin"
    try:
        assert run_module(declaration(hairpin=True))["changed"]
        page = fetch("inside", url)
        # Masqueraded to the gateway's inside address, so the reply goes back through the gateway.
        assert f"{INSIDE_PAGE}; you are {addr('gw', 'inside')}" in page, page
    finally:
        assert run_module(declaration())["changed"]


def test_foreign_tables_survive_the_apply():
    gw = lab_host("gw")
    assert "tcp dport 9999" in gw.check_output("nft -s list table inet labforeign")
    # Docker's own NAT rules for its embedded DNS, in the gateway's network namespace.
    assert "DOCKER_OUTPUT" in gw.check_output("nft -s list table ip nat")


# --- the module's contract: check mode, idempotence, absent, bad input ---------------------------------------


def test_four_steps_from_absent_and_absent_leaves_foreign_tables_and_nothing_of_ours():
    gw = lab_host("gw")
    foreign = gw.check_output("nft -s list table inet labforeign")
    removed = run_module({"state": "absent", "rollback_timeout": 10})
    assert removed["changed"], removed
    # Before the declaration (and after absent) the outside cannot reach the inside service.
    assert fetch("outside", f"http://{addr('gw', 'outside')}:8080/") == ""
    assert udp("outside", addr("gw", "outside"), 5001) == ""
    assert gw.check_output("nft -s list table inet labforeign") == foreign
    assert "DOCKER_OUTPUT" in gw.check_output("nft -s list table ip nat")
    assert gw.run("nft list table inet netreach").rc != 0
    leftovers = gw.run("ls -d /etc/netreach/nat /run/netreach /etc/systemd/system/netreach-nat.service "
                       "/etc/sysctl.d/90-netreach-nat.conf 2>/dev/null").stdout
    assert leftovers == "", f"state=absent left files behind: {leftovers}"
    assert not run_module({"state": "absent"})["changed"], "a second removal reported a change"

    before = snapshot()
    checked = run_module(declaration(), check=True)
    assert checked["changed"] and "dnat ip to" in checked["diff"]["after"], checked
    assert snapshot() == before, "check mode changed the gateway"
    applied = run_module(declaration())
    assert applied["changed"] and applied.get("confirmed"), applied
    assert INSIDE_PAGE in fetch("outside", f"http://{addr('gw', 'outside')}:8080/")
    assert not run_module(declaration(), check=True)["changed"], "check mode reports a change after the apply"
    again = run_module(declaration())
    assert not again["changed"], again


def test_a_table_changed_behind_ansibles_back_is_put_right():
    gw = lab_host("gw")
    gw.check_output("nft delete chain inet netreach forward")
    result = run_module(declaration())
    assert result["changed"] and "chain forward" in result["diff"]["after"], result
    assert "chain forward" in our_table()


def test_check_mode_shows_the_new_rule_and_touches_nothing():
    before = snapshot()
    extra = {"proto": "tcp", "port": 9090, "to": f"{addr('inside', 'inside')}:81"}
    result = run_module(declaration(port_forwards=declaration()["port_forwards"] + [extra]), check=True)
    assert result["changed"], result
    assert "tcp dport 9090" in result["diff"]["after"] and "tcp dport 9090" not in result["diff"]["before"]
    assert snapshot() == before, "check mode changed the gateway"
    assert fetch("outside", f"http://{addr('gw', 'outside')}:9090/") == ""


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"masquerade": [{"out_interface": "eth0", "source": "10.10.0.0/33"}]}, "masquerade[0].source"),
        ({"port_forwards": [{"port": 70000, "to": "10.10.0.5:80"}]}, "port_forwards[0].port"),
        ({"port_forwards": [{"port": 8081, "to": ":80"}]}, "port_forwards[0].to"),
        ({"port_forwards": [{"port": 8081, "to": "10.10.0.5:80"}, {"port": "8000-8100", "to": "10.10.0.6"}]},
         "port_forwards[1].port"),
        ({"port_forwards": [{"port": 8081, "to": "10.10.0.5", "in_interface": 'eth0" accept'}]},
         "port_forwards[0].in_interface"),
        ({"port_forwards": [{"port": 8081, "to": "10.10.0.5", "in_interface": "eth0 ; flush ruleset"}]},
         "port_forwards[0].in_interface"),
        ({"port_forwards": [{"port": 8081, "to": "10.10.0.5:80; flush ruleset"}]}, "port_forwards[0].to"),
        ({"snat": [{"out_interface": "eth0", "to": "gateway.example"}]}, "snat[0].to"),
    ],
)
def test_bad_input_fails_naming_the_field_and_changes_nothing(change, field):
    before = snapshot()
    result = run_module(declaration(**change))
    assert result.get("failed") and result.get("field") == field, result
    assert result["msg"].startswith(f"{field}:"), result["msg"]
    assert snapshot() == before, "a rejected declaration changed the gateway"


def test_ip_forward_on_a_read_only_proc_sys_writes_nothing_or_fails_before_any_change():
    gw = lab_host("gw")
    # Docker mounts the gateway's /proc/sys read-only; molecule.yml sets forwarding on through its sysctls.
    assert " ro," in gw.check_output("grep ' /proc/sys ' /proc/self/mounts")
    before = snapshot()
    assert not run_module(declaration())["changed"], "forwarding already on: nothing to write"
    result = run_module(declaration(ip_forward=False))
    assert result.get("failed") and result.get("field") == "ip_forward", result
    assert result["msg"].startswith("ip_forward: net.ipv4.ip_forward is 1") and "container's sysctls" in result["msg"]
    assert snapshot() == before, "the refused ip_forward changed the gateway"


# --- lockout protection over SSH -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ssh_lab(tmp_path_factory):
    """An inventory that manages the gateway over SSH on the outside segment, its host key pinned."""
    return labtest.ssh_inventory(tmp_path_factory.mktemp("ssh"), "gw", addr("gw", "outside"), "the test")


def lockout(timeout: int) -> dict:
    """The declaration plus a forward that sends new SSH connections to the gateway to a closed port inside."""
    forwards = declaration()["port_forwards"] + [
        {"proto": "tcp", "port": 22, "to": f"{addr('inside', 'inside')}:9", "in_interface": outside_if()}]
    return declaration(port_forwards=forwards, rollback_timeout=timeout)


def start_ansible(ssh_lab, args: dict) -> subprocess.Popen:
    env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    return subprocess.Popen(["ansible", ssh_lab["host"], "-i", ssh_lab["inventory"], "-m", MODULE, "-a", json.dumps(args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_lockout_is_rolled_back_by_the_gateway_itself(ssh_lab):
    gw = lab_host("gw")
    confirmed_table = our_table()
    boot = gw.check_output("sha256sum /etc/netreach/nat/netreach.nft")
    timeout = 10
    process = start_ansible(ssh_lab, lockout(timeout))
    try:
        applied = wait_until(lambda: "tcp dport 22" in our_table(), 60, 0.2)
        assert applied is not None, "the lockout ruleset never reached the kernel"
        applied_at = time.monotonic()
        assert not ssh_lab["reachable"](), "the lockout ruleset did not cut the controller's SSH"
        back = wait_until(ssh_lab["reachable"], timeout + 15, 0.5)
        assert back is not None, "the gateway did not become reachable again"
        seconds = time.monotonic() - applied_at
        print(f"gateway reachable over SSH again {seconds:.1f} s after the lockout ruleset was applied "
              f"(rollback_timeout {timeout} s)")
        assert seconds <= timeout + 5
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    document, _ = json.JSONDecoder().raw_decode(stdout[stdout.find("\n{") + 1:])
    result = document["plays"][0]["tasks"][0]["hosts"][ssh_lab["host"]]
    assert result.get("failed") and result.get("rolled_back"), result
    assert "Rolled back" in result["msg"] and "restored the previous netreach table" in result["msg"], result["msg"]
    print(f"task message: {result['msg']}")
    assert our_table() == confirmed_table, "the gateway does not run the previous table after the rollback"
    assert gw.check_output("sha256sum /etc/netreach/nat/netreach.nft") == boot, "the unconfirmed change was persisted"
    # The connection that works again can confirm a harmless change: rollback_timeout over SSH end to end.
    result = run_module(declaration(hairpin=True), inventory=ssh_lab["inventory"], host=ssh_lab["host"])
    assert result["changed"] and result.get("confirmed"), result
    assert not run_module(declaration(hairpin=True), inventory=ssh_lab["inventory"], host=ssh_lab["host"])["changed"]
    assert run_module(declaration())["changed"]


# --- boot ----------------------------------------------------------------------------------------------------


def test_docker_restart_brings_the_confirmed_rules_back_without_ansible():
    confirmed = our_table()
    restart_gateway()
    assert lab_host("gw").service("netreach-nat.service").is_enabled
    assert our_table() == confirmed
    seconds = wait_until(lambda: INSIDE_PAGE in fetch("outside", f"http://{addr('gw', 'outside')}:8080/"), 20)
    assert seconds is not None, f"no forward after the restart; netreach-nat logged:\n{labtest.journal(lab_host('gw'), 'netreach-nat')}"
    assert INSIDE_PAGE in fetch("outside", f"http://[{addr('gw', 'outside', 6)}]:8080/")


def test_an_unconfirmed_change_is_not_what_boots(ssh_lab):
    confirmed = our_table()
    process = start_ansible(ssh_lab, lockout(60))
    try:
        assert wait_until(lambda: "tcp dport 22" in our_table(), 60, 0.2) is not None
        restart_gateway()
        assert our_table() == confirmed, "the gateway booted a change that was never confirmed"
        assert re.search(r"dport 22\b", our_table()) is None
        assert wait_until(ssh_lab["reachable"], 20) is not None, "no SSH after the restart"
        assert INSIDE_PAGE in fetch("outside", f"http://{addr('gw', 'outside')}:8080/")
    finally:
        # The task waits out its 60 s rollback window; what it would report is covered above.
        if process.poll() is None:
            process.kill()
        process.communicate()

