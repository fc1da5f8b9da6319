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


# The head of a real `nft list table inet netreach` (nft 1.0.6): the comment is the line after the first.
LISTED = 'table inet netreach {\n\tcomment "netreach 0123456789abcdef fedcba9876543210"\n\tchain prerouting {\n\t}\n}\n'


def test_the_comment_is_read_and_written_where_nft_lists_it():
    from ansible_collections.netreach.tunnels.plugins.module_utils._nat_apply import table_comment, with_comment
    assert table_comment(LISTED) == "netreach 0123456789abcdef fedcba9876543210"
    bare = LISTED.replace('\tcomment "netreach 0123456789abcdef fedcba9876543210"\n', "")
    assert table_comment(bare) == "" and with_comment(bare, "netreach 0123456789abcdef fedcba9876543210") == LISTED
    # A comment further down (a chain's, a rule's) is not the table's.
    assert table_comment(bare.replace("\tchain prerouting {\n", '\tchain prerouting {\n\t\tcomment "x"\n')) == ""


def test_the_listing_digest_leaves_the_comment_out_and_sees_every_other_line():
    from ansible_collections.netreach.tunnels.plugins.module_utils._nat_apply import listing_digest, with_comment
    bare = LISTED.replace('\tcomment "netreach 0123456789abcdef fedcba9876543210"\n', "")
    assert listing_digest(LISTED) == listing_digest(bare) == listing_digest(with_comment(bare, "other"))
    assert listing_digest(LISTED.replace("prerouting", "postrouting")) != listing_digest(LISTED)
