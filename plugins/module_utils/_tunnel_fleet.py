# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: the fleet view of tunnels. Not a public API.
"""What the tunnel servers need from the clients' declarations (the entries) and what the clients pin of the
servers (known_hosts lines from their facts): the two ends of the inventory joined, no I/O."""

from __future__ import annotations

from ansible_collections.netreach.tunnels.plugins.module_utils._declaration import DeclarationError, bracket
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel import KNOWN_HOSTS_RE, parse_tunnel
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_server import (
    SERVER_ONLY_KEYS,
    Entry,
    check_entry_name,
    check_public_key,
)

# What the client role passes ssh_tunnel when a declaration leaves it out (the module's defaults).
TUNNEL_DEFAULTS = {"port": 22, "user": "tunnel", "run_as": "netreach-tunnel", "keepalive_interval": 2,
                   "keepalive_count_max": 3, "connect_timeout": 10, "restart_delay": 1, "restart_max_delay": 30}


def client_entries(client: str, declarations: list, defaults: dict, public_keys: dict, server: str,
                   skip_missing_keys: bool = False) -> list[Entry]:
    """The entries SERVER needs for the tunnels CLIENT declares (declarations as the client role takes them).

    SKIP_MISSING_KEYS leaves out tunnels whose key does not exist yet (check mode on a fresh client).
    """
    check_entry_name(client, "client")
    entries = []
    for index, declared in enumerate(declarations or []):
        field_name = f"{client}: tunnel_client_tunnels[{index}]"
        if not isinstance(declared, dict):
            raise DeclarationError(field_name, "expected a dict of ssh_tunnel parameters")
        params = dict(TUNNEL_DEFAULTS)
        params.update(defaults or {})
        params.update(declared)
        allow_dynamic = params.pop("server_allow_dynamic", False)
        if not isinstance(allow_dynamic, bool):
            raise DeclarationError(f"{field_name}.server_allow_dynamic", "must be true or false")
        try:
            tunnel = parse_tunnel(params)
        except DeclarationError as exc:
            raise DeclarationError(f"{field_name}.{exc.field}", exc.message) from None
        hops = [(hop.host, hop.port, hop.user or tunnel.user) for hop in tunnel.jump_hosts]
        hops.append((tunnel.server, tunnel.port, tunnel.user))
        if not any(host == server for host, dummy, dummy2 in hops):
            continue
        key = public_keys.get(tunnel.name) if isinstance(public_keys, dict) else None
        if not key and skip_missing_keys:
            continue
        if not key:
            raise DeclarationError(f"{field_name}", f"no public key known for tunnel {tunnel.name} of {client}")
        key = check_public_key(key, f"{client}: public key of tunnel {tunnel.name}")
        for position, (host, dummy, account) in enumerate(hops):
            if host != server:
                continue
            if position < len(hops) - 1:
                next_host, next_port, dummy = hops[position + 1]
                entries.append(Entry(account, client, tunnel.name, key, opens=(f"{bracket(next_host)}:{next_port}",)))
                continue
            dynamic = any(fwd.kind == "dynamic" for fwd in tunnel.forwards)
            if dynamic and not allow_dynamic:
                raise DeclarationError(f"{field_name}.dynamic_forwards",
                                       f"tunnel {tunnel.name} of {client} has a dynamic (-D) forward, which lets its "
                                       "key open any destination on the server; set server_allow_dynamic: true on "
                                       "the tunnel to allow that")
            local = [fwd for fwd in tunnel.forwards if fwd.kind == "local"]
            remote = [fwd for fwd in tunnel.forwards if fwd.kind == "remote"]
            opens = tuple(sorted({fwd.target for fwd in local if not fwd.target_socket}))
            # ssh asks for "localhost" when a remote forward names no bind address; OpenSSH reads a bare port in
            # permitlisten as any address, which GatewayPorts would then let the key bind on every interface.
            listens = tuple(sorted({fwd.listen if fwd.bind_address else f"localhost:{fwd.port}"
                                    for fwd in remote if not fwd.listen_socket}))
            # A remote forward's target socket is on the client: the server only sees its TCP listen.
            entries.append(Entry(account, client, tunnel.name, key, opens, listens, any_open=dynamic,
                                 socket_opens=tuple(sorted({fwd.target_socket for fwd in local if fwd.target_socket})),
                                 socket_listens=tuple(sorted({fwd.listen_socket for fwd in remote
                                                              if fwd.listen_socket}))))
    return entries


def known_hosts_name(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


def known_hosts_lines(host: str, port: int, facts: dict) -> list[str]:
    """known_hosts lines for HOST:PORT from its gathered ansible_ssh_host_key_*_public facts."""
    lines = []
    for fact, key_type in (("ansible_ssh_host_key_ed25519_public", "ssh-ed25519"),
                           ("ansible_ssh_host_key_ecdsa_public", None),
                           ("ansible_ssh_host_key_rsa_public", "ssh-rsa")):
        key = facts.get(fact)
        if not key:
            continue
        key_type = key_type or facts.get("ansible_ssh_host_key_ecdsa_public_keytype") or "ecdsa-sha2-nistp256"
        line = f"{known_hosts_name(host, port)} {key_type} {key}"
        if KNOWN_HOSTS_RE.fullmatch(line):
            lines.append(line)
    return lines


def pinned_known_hosts(owner: str, hops: list[tuple[str, int]], hostvars, inventory: list) -> list[str]:
    """known_hosts lines pinning every inventory host of HOPS ((host, port) an ssh client logs in to), from that
    host's own facts, each line once; OWNER ("tunnel x", "session y") names the declaration in the error when an
    inventory host has no host key facts."""
    lines: list[str] = []
    names = set(inventory)
    for host, port in hops:
        if host not in names:
            continue
        found = known_hosts_lines(host, port, hostvars[host])
        if not found:
            raise DeclarationError(owner, f"no SSH host key facts for {host}; gather them (setup: gather_subset "
                                          "ssh_pub_keys) or give known_hosts")
        lines += [line for line in found if line not in lines]
    return lines


def client_declaration(tunnels: list, name: str, defaults: dict | None = None, pinned: dict | None = None) -> dict:
    """The ssh_tunnel parameters of tunnel NAME of a client: its declaration over the client's DEFAULTS, without
    the keys only the server end reads, with the known_hosts of both and the host keys PINNED from facts."""
    declared = [tunnel for tunnel in tunnels or [] if isinstance(tunnel, dict) and tunnel.get("name") == name]
    if len(declared) != 1:
        raise DeclarationError("tunnel_client_tunnels", f"{len(declared)} declarations of tunnel {name!r}, not one")
    params = dict(defaults or {}, **declared[0])
    known_hosts = []
    sources = ((defaults or {}).get("known_hosts"), declared[0].get("known_hosts"), (pinned or {}).get(name))
    for line in [line for lines in sources for line in lines or []]:
        if line not in known_hosts:
            known_hosts.append(line)
    params["known_hosts"] = known_hosts
    # ssh_options of the defaults under the tunnel's own, keyword by keyword (issue 16).
    options = [(defaults or {}).get("ssh_options"), declared[0].get("ssh_options")]
    if all(isinstance(item, dict) for item in options):
        params["ssh_options"] = {**options[0], **options[1]}
    return {key: value for key, value in params.items() if key not in SERVER_ONLY_KEYS}
