"""The gateway metrics program: netreach_nat_applied from the kernel's listing against the confirmed record, the
textfile it renders (read back by a strict reader of the text format), nft's answers, and main."""
from __future__ import annotations

import json
import os
import stat

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.netreach.tunnels.plugins.module_utils import _nat_metrics as metrics
from ansible_collections.netreach.tunnels.plugins.module_utils._nat import TABLE_SPEC
from ansible_collections.netreach.tunnels.plugins.module_utils._nat_apply import with_comment
from test_tunnel_metrics import parse_exposition

BARE = ("table inet netreach {\n\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n"
        "\t\tiifname \"eth0\" meta nfproto ipv4 fib daddr type local tcp dport 8080 dnat ip to 10.10.0.5:80\n\t}\n}\n")
COMMENT = f"netreach 0123456789abcdef {metrics.listing_digest(BARE)}"
LISTED = with_comment(BARE, COMMENT)
RECORD = metrics.read_record(metrics.render_record(COMMENT, 2))


def sample(text: str, name: str) -> int:
    family = parse_exposition(text)[name]
    assert [labels for labels, _value in family] == [{"table": TABLE_SPEC}]
    return family[0][1]


def test_the_table_is_ours_to_name():
    assert f"{metrics.FAMILY} {metrics.TABLE}" == TABLE_SPEC


def test_the_confirmed_table_reads_1_with_its_forward_count():
    text = metrics.render(RECORD, LISTED)
    assert sample(text, "netreach_nat_applied") == 1 and sample(text, "netreach_nat_forwards") == 2
    assert list(parse_exposition(text)) == ["netreach_nat_applied", "netreach_nat_forwards"]


@pytest.mark.parametrize("listing", [
    None,  # the table is gone
    BARE,  # replaced by one without our comment
    LISTED.replace("\t}\n}\n", "\t\ttcp dport 22 accept\n\t}\n}\n"),  # a rule added by hand
    LISTED.replace("dport 8080", "dport 8081"),  # a rule changed by hand
    with_comment(BARE, COMMENT.replace("0123", "3210")),  # another table (another rendering) with a valid listing
    "",
])
def test_a_table_gone_or_different_reads_0(listing):
    assert sample(metrics.render(RECORD, listing), "netreach_nat_applied") == 0


def test_nothing_confirmed_yet_reads_0_and_no_forwards():
    text = metrics.render(None, LISTED)
    assert sample(text, "netreach_nat_applied") == 0 and sample(text, "netreach_nat_forwards") == 0


@pytest.mark.parametrize("text", [None, "", "{", "[]", '{"comment": "netreach x", "forwards": 1}',
                                  '{"comment": 3, "forwards": 1}', '{"comment": "netreach a b", "forwards": "2"}',
                                  '{"comment": "netreach a b", "forwards": true}'])
def test_a_record_that_is_not_ours_is_none(text):
    assert metrics.read_record(text) is None


@given(st.integers(min_value=0, max_value=10 ** 6), st.text(alphabet="0123456789abcdef", min_size=16, max_size=16))
def test_the_record_reads_back_as_written(forwards, digest):
    comment = f"netreach {digest} {digest}"
    assert metrics.read_record(metrics.render_record(comment, forwards)) == {
        "table": TABLE_SPEC, "comment": comment, "forwards": forwards}


def fake_nft(tmp_path, script: str) -> str:
    path = tmp_path / "nft"
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)
    return str(path)


def test_nft_s_listing_no_table_and_a_failure_are_three_answers(tmp_path):
    listed = tmp_path / "listed"
    listed.write_text(LISTED)
    assert metrics.kernel_listing(fake_nft(tmp_path, f'[ "$*" = "list table inet netreach" ] && cat {listed}')) == LISTED
    gone = fake_nft(tmp_path, "echo 'Error: No such file or directory; did you mean table x?' >&2; exit 1")
    assert metrics.kernel_listing(gone) is None
    refused = fake_nft(tmp_path, "echo 'Error: Operation not permitted' >&2; exit 1")
    with pytest.raises(RuntimeError, match="Operation not permitted"):
        metrics.kernel_listing(refused)


def test_main_writes_the_textfile_from_the_record_and_the_kernel(tmp_path, monkeypatch):
    record = tmp_path / "confirmed.json"
    record.write_text(metrics.render_record(COMMENT, 3))
    monkeypatch.setattr(metrics, "CONFIRMED", str(record))
    monkeypatch.setattr(metrics.shutil, "which", lambda name, path: "/usr/sbin/nft")
    monkeypatch.setattr(metrics, "kernel_listing", lambda nft: LISTED)
    out = tmp_path / "textfile"
    out.mkdir()
    assert metrics.main([str(out)]) == 0
    text = (out / metrics.TEXTFILE).read_text()
    assert sample(text, "netreach_nat_applied") == 1 and sample(text, "netreach_nat_forwards") == 3
    assert stat.S_IMODE(os.stat(out / metrics.TEXTFILE).st_mode) == 0o644 and os.listdir(out) == [metrics.TEXTFILE]
    monkeypatch.setattr(metrics, "kernel_listing", lambda nft: None)
    assert metrics.main([str(out)]) == 0
    assert sample((out / metrics.TEXTFILE).read_text(), "netreach_nat_applied") == 0
    assert metrics.main([]) == 2 and metrics.main(["relative"]) == 2


def test_main_keeps_the_old_textfile_when_nft_cannot_tell(tmp_path, monkeypatch, capsys):
    def refused(nft):
        raise RuntimeError("nft list table inet netreach failed: Operation not permitted")
    monkeypatch.setattr(metrics.shutil, "which", lambda name, path: "/usr/sbin/nft")
    monkeypatch.setattr(metrics, "kernel_listing", refused)
    (tmp_path / metrics.TEXTFILE).write_text("old\n")
    assert metrics.main([str(tmp_path)]) == 1
    assert (tmp_path / metrics.TEXTFILE).read_text() == "old\n" and "Operation not permitted" in capsys.readouterr().err


def test_the_record_is_json_of_the_comment_and_the_count():
    assert json.loads(metrics.render_record(COMMENT, 2)) == {"table": TABLE_SPEC, "comment": COMMENT, "forwards": 2}


def test_main_without_nft_says_so_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(metrics.shutil, "which", lambda name, path: None)
    assert metrics.main([str(tmp_path)]) == 1
    assert os.listdir(tmp_path) == [] and "no nft in " in capsys.readouterr().err
