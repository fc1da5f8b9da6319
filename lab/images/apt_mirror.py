"""Print the Debian archive URI that this machine's apt uses (deb822 or one-line sources)."""
from __future__ import annotations

import pathlib
import re
import sys

SOURCES = [pathlib.Path("/etc/apt/sources.list.d/debian.sources"), pathlib.Path("/etc/apt/sources.list")]
SOURCES += sorted(pathlib.Path("/etc/apt/sources.list.d").glob("*.sources"))
SOURCES += sorted(pathlib.Path("/etc/apt/sources.list.d").glob("*.list"))


def main() -> int:
    for path in SOURCES:
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            match = re.match(r"^URIs:\s*(\S+)", line) or re.match(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)", line)
            if match and match.group(1).rstrip("/").endswith("/debian"):
                print(match.group(1).rstrip("/"))
                return 0
    print("no Debian archive found in apt sources", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
