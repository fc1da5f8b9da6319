# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: the small programs the tunnel units run on the target. Not a
# public API. ssh_tunnel installs them under /usr/local/lib/netreach/: the proxy hop is a Python file of its own
# (_tunnel_proxy_hop.py, like the servers' reaper _tunnel_reaper.py), the backoff a shell script.
"""Helper programs installed on tunnel clients: the proxy hop and the restart backoff."""

from __future__ import annotations

import re

from ansible_collections.netreach.tunnels.plugins.module_utils import _tunnel_proxy_hop

# Restart backoff: `start DELAY MAX` sleeps before a start that follows quick failures (DELAY, doubling up to MAX,
# plus up to a second of jitter); `stop GATE` counts a failure unless the session lasted GATE seconds (longer than any
# failed connection attempt can take), which resets it.
TUNNEL_BACKOFF = r'''#!/bin/sh
# netreach tunnel backoff; state lives in the unit's RuntimeDirectory (kept across restarts).
set -eu
state=${RUNTIME_DIRECTORY:?needs RuntimeDirectory}
case "$1" in
start)
    delay=$2 max=$3
    failures=$(cat "$state/failures" 2>/dev/null || echo 0)
    wait=0
    if [ "$failures" -gt 1 ]; then
        wait=$delay n=2
        while [ "$n" -lt "$failures" ] && [ "$wait" -lt "$max" ]; do wait=$((wait * 2)); n=$((n + 1)); done
        [ "$wait" -gt "$max" ] && wait=$max
        jitter=$(( $(od -An -N2 -tu2 /dev/urandom) % 1000 ))
        sleep "$wait.$(printf '%03d' "$jitter")"
    fi
    date +%s >"$state/started"
    ;;
stop)
    started=$(cat "$state/started" 2>/dev/null || echo 0)
    failures=$(cat "$state/failures" 2>/dev/null || echo 0)
    if [ $(( $(date +%s) - started )) -ge "$2" ]; then echo 1 >"$state/failures"; else echo $((failures + 1)) >"$state/failures"; fi
    ;;
esac
'''


FUTURE = "from __future__ import annotations\n"


def source_text(module) -> str:
    """The source of a module of ours. Through its loader: in a module run the file lies inside AnsiballZ's zip,
    where open() cannot reach it."""
    return module.__loader__.get_data(module.__file__).decode("utf-8")


def program_text(program, *inlined) -> str:
    """The text of a program that is a module of ours (_tunnel_proxy_hop, _tunnel_reaper, _tunnel_metrics), as it
    is installed on the host: one file. Each module of INLINED (standard library only, like _textfile) replaces the
    program's one-line `from MODULE import ...`, its text from after its `from __future__` line on."""
    text = source_text(program)
    for library in inlined:
        line = re.search(rf"^from {re.escape(library.__name__)} import [^\n(]+\n", text, re.MULTILINE)
        if line is None:
            raise ValueError(f"{program.__name__} has no one-line import of {library.__name__} to inline")
        body = source_text(library).split(FUTURE, 1)[1]
        text = f"{text[:line.start()]}# inlined from {library.__name__.rpartition('.')[2]}.py{body}{text[line.end():]}"
    return text


PROXY_CONNECT = program_text(_tunnel_proxy_hop)
HELPERS = {"proxy-connect": PROXY_CONNECT, "tunnel-backoff": TUNNEL_BACKOFF}
