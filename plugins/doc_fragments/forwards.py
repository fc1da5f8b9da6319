# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The SSH forward options (-L, -R, -D), written once for every module that takes them."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  local_forwards:
    description:
      - C(-L) forwards, as ssh's C([bind_address:]port:host:hostport) or dicts with the keys C(bind_address),
        C(port), C(host), C(host_port).
      - Since 0.3.0 the target may be a Unix socket on the server, C([bind_address:]port:/path/to.sock) or the
        dict key C(target_socket) instead of C(host)/C(host_port). The server end pins exactly that path (see the
        P(netreach.tunnels.tunnel_server#module) module). A local forward always listens on a TCP port.
      - A socket path is absolute and normalised (no C(.), C(..), C(//) or trailing C(/)), of letters, digits and
        C(._/@+-) only (no spaces, control characters, C(:), C(%) or C($)), at most 107 bytes (C(sun_path)).
    type: list
    elements: raw
    default: []
  remote_forwards:
    description:
      - C(-R) forwards, same shapes as O(local_forwards).
      - Since 0.3.0 a remote forward may listen on a Unix socket on the server, C(/path/to.sock:host:hostport) or the
        dict key C(listen_socket) instead of C(bind_address)/C(port) (its directory must exist and be writable by
        the tunnel account; sshd creates the socket with mode 0600, C(StreamLocalBindMask)), and may lead to a
        socket on the client, C([bind_address:]port:/path/to.sock) or C(target_socket), for example
        C(2375:/run/docker.sock). The tunnel unit's sandbox hides C(/tmp), C(/var/tmp), C(/home), C(/root) and
        C(/run/user) from it, so a client-side target socket there is refused.
      - Socket paths are checked as for O(local_forwards).
    type: list
    elements: raw
    default: []
  dynamic_forwards:
    description: C(-D) SOCKS forwards, as C([bind_address:]port) or dicts with C(bind_address) and C(port).
    type: list
    elements: raw
    default: []
"""
