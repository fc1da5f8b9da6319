# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: the small programs the tunnel units run on the target. Not a
# public API. ssh_tunnel installs them under /usr/local/lib/netreach/, each a Python file of its own (like the
# servers' reaper _tunnel_reaper.py): the proxy hop (_tunnel_proxy_hop.py) and the starter every tunnel unit runs,
# which does the restart backoff and a direct tunnel's first connection (_tunnel_start.py).
"""Helper programs installed on tunnel clients: the proxy hop and the tunnel starter."""

from __future__ import annotations

from ansible_collections.netreach.tunnels.plugins.module_utils import _tunnel_proxy_hop, _tunnel_start


def program_text(program) -> str:
    """The text of a program that is a module of ours (_tunnel_proxy_hop, _tunnel_reaper), as it is installed on
    the host. Through its loader: in a module run the file lies inside AnsiballZ's zip, where open() cannot reach it."""
    return program.__loader__.get_data(program.__file__).decode("utf-8")


PROXY_CONNECT = program_text(_tunnel_proxy_hop)
TUNNEL_START = program_text(_tunnel_start)
# Earlier releases' units ran a shell backoff, tunnel-backoff: it stays where it is installed, for the units of
# tunnels that no run has rewritten yet.
HELPERS = {"proxy-connect": PROXY_CONNECT, "tunnel-start": TUNNEL_START}
