"""Prints how many bad inputs the catalogue holds per module at the end of the run."""
from __future__ import annotations

from .cases import CASES


def pytest_terminal_summary(terminalreporter):
    counts: dict[str, int] = {}
    for case in CASES:
        counts[case[0]] = counts.get(case[0], 0) + 1
    terminalreporter.write_line(
        "bad-input catalogue: " + ", ".join(f"{module} {count}" for module, count in sorted(counts.items()))
        + f"; {sum(counts.values())} cases")
