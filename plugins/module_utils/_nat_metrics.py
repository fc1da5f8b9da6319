# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: the gateway metrics, a program of its own. Not a public API.
# nat_rules installs this file, with _textfile.py inlined, as /usr/local/lib/netreach/nat-metrics
# (_tunnel_helpers.program_text) and runs it from netreach-nat-metrics.timer: `python3 nat-metrics DIRECTORY`.
# Standard library only. nat_rules itself uses the digests and the record below (_nat_apply.py, _nat_confirm.py).
"""netreach NAT metrics: whether the kernel holds the table nat_rules last confirmed, as a node_exporter textfile.

nat_rules gives our table (`inet netreach`) a comment with two digests: of the rules it rendered, and of the
kernel's own text listing of them (without the comment). Once a change is confirmed (over a fresh connection, or
at once without a confirm step) it records that comment and the number of declared port forwards in CONFIRMED.
Every run lists our table once (`nft list table inet netreach`) and replaces DIRECTORY/netreach_nat.prom atomically:
netreach_nat_applied is 1 while the listing carries the confirmed comment and still has the listing digest it
names, so a table deleted, replaced or edited by hand (a rule added or removed) reads 0.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys

from ansible_collections.netreach.tunnels.plugins.module_utils._textfile import exposition, labels, write_atomically

FAMILY, TABLE = "inet", "netreach"
CONFIRMED = "/etc/netreach/nat-confirmed.json"
TEXTFILE = "netreach_nat.prom"
NFT_PATH = "/usr/sbin:/sbin:/usr/bin:/bin"
COMMENT_RE = re.compile(r'table [^\n]*\{\n\tcomment "([^"\n]*)"\n')

METRICS = (
    ("netreach_nat_applied", "gauge",
     "1 while the kernel holds the NAT table nat_rules last confirmed, else 0 (the table is gone or differs)."),
    ("netreach_nat_forwards", "gauge", "Port forwards declared in the NAT table nat_rules last confirmed."),
)


def table_comment(text: str) -> str:
    """The comment of our table in its text listing ("" when it has none): the line after `table inet netreach {`."""
    match = COMMENT_RE.match(text)
    return match.group(1) if match else ""


def listing_digest(text: str) -> str:
    """A digest of the kernel's text listing of our table without the table's comment (the comment holds it)."""
    if table_comment(text):
        head, _newline, rest = text.partition("\n")
        text = head + "\n" + rest.split("\n", 1)[1]
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def render_record(comment: str, forwards: int) -> str:
    """CONFIRMED's text: the confirmed table's comment and how many port forwards it declares."""
    return json.dumps({"table": f"{FAMILY} {TABLE}", "comment": comment, "forwards": forwards}, sort_keys=True) + "\n"


def read_record(text: str | None) -> dict | None:
    """The record nat_rules left (None when there is none, or it is not one of ours)."""
    try:
        record = json.loads(text or "")
    except ValueError:
        return None
    if (not isinstance(record, dict) or not isinstance(record.get("comment"), str)
            or len(record["comment"].split()) != 3 or not isinstance(record.get("forwards"), int)
            or isinstance(record["forwards"], bool)):
        return None
    return record


def applied(record: dict | None, listing: str | None) -> bool:
    """Whether LISTING (our table as the kernel lists it; None: there is none) is the table RECORD confirmed."""
    if record is None or listing is None:
        return False
    comment = table_comment(listing)
    return comment == record["comment"] and listing_digest(listing) == comment.split()[2]


def render(record: dict | None, listing: str | None) -> str:
    """The textfile: each metric's HELP and TYPE, then its one sample for our table."""
    table = labels(table=f"{FAMILY} {TABLE}")
    return exposition(METRICS, {
        "netreach_nat_applied": [f"{table} {int(applied(record, listing))}"],
        "netreach_nat_forwards": [f"{table} {record['forwards'] if record else 0}"],
    })


def kernel_listing(nft: str) -> str | None:
    """Our table as the kernel lists it, None when it has none; RuntimeError when nft cannot tell (no rights)."""
    done = subprocess.run([nft, "list", "table", FAMILY, TABLE], capture_output=True, text=True, check=False)
    if done.returncode == 0:
        return done.stdout
    if "No such file or directory" in done.stderr:
        return None
    raise RuntimeError(f"nft list table {FAMILY} {TABLE} failed: {done.stderr.strip()}")


def read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return None


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].startswith("/"):
        sys.stderr.write("usage: nat-metrics DIRECTORY (node_exporter's textfile directory)\n")
        return 2
    nft = shutil.which("nft", path=NFT_PATH)
    if nft is None:
        sys.stderr.write(f"nat-metrics: no nft in {NFT_PATH}\n")
        return 1
    try:
        listing = kernel_listing(nft)
    except RuntimeError as exc:
        # No textfile rather than a wrong one: the old one goes stale (NetreachMetricsStale), the journal says why.
        sys.stderr.write(f"{exc}\n")
        return 1
    write_atomically(argv[0], TEXTFILE, render(read_record(read_text(CONFIRMED)), listing))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
