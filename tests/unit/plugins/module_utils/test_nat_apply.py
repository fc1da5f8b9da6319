from __future__ import annotations

from ansible_collections.netreach.tunnels.plugins.module_utils._nat_apply import BOOT_RULES
from ansible_collections.netreach.tunnels.plugins.module_utils._nat_boot import render_sysctl, render_unit

BOOT = BOOT_RULES.path


def test_unit_restores_the_confirmed_file_before_the_network():
    unit = render_unit("/usr/sbin/nft", BOOT)
    assert "Before=network-pre.target" in unit and f"ExecStart=/usr/sbin/nft -f {BOOT}" in unit
    assert "flush" not in unit


def test_sysctl_sets_both_families():
    assert render_sysctl(True).splitlines()[1:] == ["net.ipv4.ip_forward = 1", "net.ipv6.conf.all.forwarding = 1"]
