# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: the small programs the tunnel units run on the target. Not a
# public API. ssh_tunnel installs them under /usr/local/lib/netreach/, each a Python file of its own (like the
# servers' reaper _tunnel_reaper.py): the proxy hop (_tunnel_proxy_hop.py) and the starter every tunnel unit runs,
# which does the restart backoff and a direct tunnel's first connection (_tunnel_start.py).
"""Helper programs installed on tunnel clients: the proxy hop and the tunnel starter."""

from __future__ import annotations

import re

from ansible_collections.netreach.tunnels.plugins.module_utils import _tunnel_proxy_hop, _tunnel_start


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
TUNNEL_START = program_text(_tunnel_start)
# Earlier releases' units ran a shell backoff, tunnel-backoff: it stays where it is installed, for the units of
# tunnels that no run has rewritten yet.
HELPERS = {"proxy-connect": PROXY_CONNECT, "tunnel-start": TUNNEL_START}
