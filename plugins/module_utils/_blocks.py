# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: managed blocks in files shared with the administrator
# (/etc/environment, /etc/gitconfig, ~/.ssh/config). Not a public API; it may change at any time.
"""Pure text functions: find, cut, and place a block between a BEGIN and an END marker line."""

from __future__ import annotations


def block(lines: list[str], begin: str, end: str) -> str:
    return "\n".join([begin, *lines, end]) + "\n"


def cut_block(text: str, begin: str, end: str) -> tuple[str, int | None]:
    """TEXT without the block (and nothing else), and the line number where the block started."""
    out, inside, position = [], False, None
    for line in text.splitlines(keepends=True):
        stripped = line.rstrip("\r\n")
        if stripped == begin and not inside:
            inside, position = True, len(out) if position is None else position
        elif inside and stripped == end:
            inside = False
        elif not inside:
            out.append(line)
    return "".join(out), position


def merge_block(text: str | None, lines: list[str], begin: str, end: str, section: str | None = None) -> str:
    """TEXT with the block holding LINES: where the block was, else right after the [SECTION] header (an INI
    file keeps a single section of that name), else at the end, with the header inside the block when the file
    had none."""
    without, position = cut_block(text or "", begin, end)
    out = without.splitlines(keepends=True)
    if out and not out[-1].endswith("\n"):
        out[-1] += "\n"
    header = None
    if section is not None:
        header = next((i for i, line in enumerate(out) if line.strip().lower() == f"[{section}]".lower()), None)
        if header is None:
            lines = [f"[{section}]", *lines]
    new = block(lines, begin, end)
    if header is not None and (position is None or position <= header):
        position = header + 1
    if position is None:
        position = len(out)
    return "".join(out[:position]) + new + "".join(out[position:])
