"""netreach.tunnels.nat_rules beside its neighbours (issue 14), proven by packets, after test_gateway.py's steps.

Last, because Debian's nftables.service begins with `flush ruleset`. Each neighbour in turn: a foreign nft table
with policy drop (fails before any change), a stand-in for dockerd's iptables setup (FORWARD policy drop,
DOCKER-USER), Debian's nftables.service with its stock configuration; each after the apply, after the neighbour's
restart or reload, and after `docker restart` of the gateway.
"""
from __future__ import annotations

import labtest
from gatewaylab import INSIDE_PAGE, addr, declaration, fetch, lab_host, our_table, restart_gateway, run_module, \
    snapshot, wait_until

# --- neighbours (issue 14): last, because Debian's nftables.service begins with `flush ruleset` ---------------


def assert_forward_and_masquerade_carry_traffic(when: str) -> None:
    page = fetch("outside", f"http://{addr('gw', 'outside')}:8080/")
    assert f"{INSIDE_PAGE}; you are {addr('outside', 'outside')}" in page, f"no forward {when}: {page!r}\n{our_table()}"
    page = fetch("inside", f"http://{addr('outside', 'outside')}/")
    assert f"you are {addr('gw', 'outside')}" in page, f"no masquerade {when}: {page!r}"


def test_a_foreign_drop_without_a_supported_hook_fails_before_any_change_naming_table_and_chain():
    gw = lab_host("gw")
    gw.check_output("nft add table inet labdrop && nft 'add chain inet labdrop forward "
                    "{ type filter hook forward priority 5; policy drop; }'")
    try:
        before = snapshot()
        changed = declaration(port_forwards=declaration()["port_forwards"] + [
            {"proto": "tcp", "port": 9091, "to": f"{addr('inside', 'inside')}:80"}])
        for check in (True, False):
            result = run_module(changed, check=check)
            assert result.get("failed") and result.get("field") == "foreign_drop", result
            assert "table inet labdrop chain forward (hook forward, policy drop)" in result["msg"], result
        assert snapshot() == before, "the refused run changed the gateway"
        # What the failure protects from: the forward is dead behind that policy.
        assert fetch("outside", f"http://{addr('gw', 'outside')}:8080/") == ""
        ignored = run_module(dict(changed, foreign_drop="ignore"))
        assert ignored["changed"] and ignored["neighbours"]["dropping_chains"][0]["table"] == "inet labdrop", ignored
    finally:
        gw.run("nft delete table inet labdrop")
    assert run_module(declaration())["changed"]
    assert_forward_and_masquerade_carry_traffic("after the foreign table went")


# A stand-in for dockerd's firewall setup, as Docker 20.10 does it at every start: DOCKER-USER created (kept when
# it exists), jumped to first from FORWARD, FORWARD's policy drop. It runs at boot like docker.service does.
DOCKER_STANDIN = """[Unit]
Description=Lab stand-in for dockerd's iptables setup (ip filter FORWARD policy drop, DOCKER-USER)
After=network.target
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'iptables -N DOCKER-USER 2>/dev/null; iptables -C DOCKER-USER -j RETURN 2>/dev/null || \
iptables -A DOCKER-USER -j RETURN; iptables -C FORWARD -j DOCKER-USER 2>/dev/null || iptables -I FORWARD -j DOCKER-USER; \
iptables -P FORWARD DROP'
[Install]
WantedBy=multi-user.target
"""


def test_beside_dockers_forward_drop_the_declared_flows_are_accepted_in_docker_user():
    gw = lab_host("gw")
    gw.check_output(f"cat > /etc/systemd/system/docker.service <<'EOF'\n{DOCKER_STANDIN}EOF\n"
                    "systemctl daemon-reload && systemctl enable --now docker.service")
    try:
        assert fetch("outside", f"http://{addr('gw', 'outside')}:8080/") == "", "Docker's policy did not drop"
        before = snapshot()
        checked = run_module(declaration(), check=True)
        assert checked["changed"] and "DOCKER-USER" in checked["diff"]["after"], checked
        assert snapshot() == before, "check mode changed the gateway"
        assert checked["neighbours"]["docker"] == {"docker_user": ["ip"], "accepted_in": []}, checked
        applied = run_module(declaration())
        # Our own table is as declared already: only the DOCKER-USER part changes, nothing to confirm.
        assert applied["changed"] and "pending_confirm" not in applied, applied
        assert applied["neighbours"]["docker"]["docker_user"] == ["ip"], applied
        assert_forward_and_masquerade_carry_traffic("beside Docker's FORWARD policy drop")
        assert not run_module(declaration())["changed"]
        docker_user = gw.check_output("iptables -S DOCKER-USER")
        assert docker_user.splitlines()[1:] == ["-A DOCKER-USER -j NETREACH-NAT", "-A DOCKER-USER -j RETURN"], docker_user
        gw.check_output("systemctl restart docker.service")
        assert_forward_and_masquerade_carry_traffic("after systemctl restart docker")
        restart_gateway()
        assert "policy DROP" in lab_host("gw").check_output("iptables -S FORWARD | head -1 ; iptables -L FORWARD | head -1")
        seconds = wait_until(lambda: INSIDE_PAGE in fetch("outside", f"http://{addr('gw', 'outside')}:8080/"), 30)
        assert seconds is not None, f"no forward after the reboot:\n{labtest.journal(gw, 'netreach-nat-docker')}"
        assert_forward_and_masquerade_carry_traffic("after docker restart of the gateway beside Docker's policy")
        assert not run_module(declaration())["changed"]
    finally:
        gw.run("systemctl disable --now docker.service; rm -f /etc/systemd/system/docker.service; "
               "systemctl daemon-reload; iptables -P FORWARD ACCEPT; iptables -D FORWARD -j DOCKER-USER; "
               "iptables -F DOCKER-USER; iptables -X DOCKER-USER")
    taken_back = run_module(declaration())
    assert taken_back["changed"] and "NETREACH-NAT" not in gw.check_output("iptables -S"), taken_back
    assert gw.run("systemctl cat netreach-nat-docker.service").rc != 0
    assert_forward_and_masquerade_carry_traffic("after Docker went")


def test_debians_nftables_service_restart_reload_and_boot_keep_forwards_and_masquerade():
    gw = lab_host("gw")
    assert "netreach-nat.conf" in gw.check_output("systemctl cat nftables.service"), "no drop-in for nftables.service"
    try:
        # Debian's stock /etc/nftables.conf: `flush ruleset`, then its inet filter table.
        gw.check_output("systemctl enable --now nftables.service")
        assert_forward_and_masquerade_carry_traffic("after nftables.service started")
        for action in ("restart", "reload"):
            gw.check_output(f"systemctl {action} nftables.service")
            assert "table inet filter" in gw.check_output("nft list tables"), "nftables.service did not load its config"
            assert_forward_and_masquerade_carry_traffic(f"after systemctl {action} nftables")
        checked = run_module(declaration(), check=True)
        assert not checked["changed"], checked
        assert checked["neighbours"]["nftables_service"] == {"installed": True, "enabled": True, "active": True}
        restart_gateway()
        assert "table inet filter" in lab_host("gw").check_output("nft list tables")
        seconds = wait_until(lambda: INSIDE_PAGE in fetch("outside", f"http://{addr('gw', 'outside')}:8080/"), 20)
        assert seconds is not None, f"no forward after the reboot:\n{labtest.journal(gw, 'nftables')}"
        assert_forward_and_masquerade_carry_traffic("after docker restart of the gateway with nftables.service enabled")
    finally:
        gw.run("systemctl disable --now nftables.service")  # its ExecStop flushes the ruleset
    assert run_module(declaration())["changed"], "our table should have gone with nftables.service's stop"
    assert_forward_and_masquerade_carry_traffic("after the rerun")
