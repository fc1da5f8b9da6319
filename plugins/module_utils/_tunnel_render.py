# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: the files of a tunnel, rendered from the model and read back. Not a
# public API; it may change at any time.
"""Pure renderers of a Tunnel's ssh_config, known_hosts, proxy credentials and systemd unit, and the one reader
of an ssh_config we rendered (tunnel_info and the bind-conflict check read it back here)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from ansible_collections.netreach.tunnels.plugins.module_utils._declaration import bracket
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel import Tunnel
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_ssh_options import config_lines

HELPER_DIR = "/usr/local/lib/netreach"
FORWARD_KINDS = {"LocalForward": "local", "RemoteForward": "remote", "DynamicForward": "dynamic"}


def _common_options(tunnel: Tunnel, aes_hardware: bool) -> list[str]:
    return [
        f"User {tunnel.user}",
        f"IdentityFile {tunnel.identity_file}",
        "IdentitiesOnly yes",
        f"UserKnownHostsFile {tunnel.known_hosts_path}",
        "GlobalKnownHostsFile /dev/null",
        "StrictHostKeyChecking yes",
        "UpdateHostKeys no",
        "BatchMode yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        f"ConnectTimeout {tunnel.connect_timeout}",
        f"ServerAliveInterval {tunnel.keepalive_interval}",
        f"ServerAliveCountMax {tunnel.keepalive_count_max}",
        "ControlMaster no",
        "ControlPath none",
        "ForwardAgent no",
        "ForwardX11 no",
        *config_lines(tunnel.ssh_options, aes_hardware),
    ]


def proxy_command(tunnel: Tunnel) -> str:
    proxy = tunnel.proxy
    args = ["/usr/bin/python3", f"{HELPER_DIR}/proxy-connect", "--type", proxy.type,
            "--proxy", f"{bracket(proxy.host)}:{proxy.port}"]
    if proxy.username:
        args += ["--auth-file", tunnel.proxy_auth_path]
    return " ".join(args) + " %h %p"


def render_ssh_config(tunnel: Tunnel, aes_hardware: bool = False) -> str:
    """The tunnel's own ssh_config: every hop pinned and non-interactive, the first hop via the proxy; every
    hop with the tunnel's ssh_options, and AES-GCM first where the client has AES instructions (AES_HARDWARE)."""
    lines = [f"# Managed by netreach.tunnels.ssh_tunnel for tunnel {tunnel.name}; local changes are overwritten."]
    hop_aliases = [f"netreach-{tunnel.name}-hop{index}" for index in range(len(tunnel.jump_hosts))]
    for index, hop in enumerate(tunnel.jump_hosts):
        lines += ["", f"Host {hop_aliases[index]}", f"    HostName {hop.host}", f"    Port {hop.port}"]
        options = _common_options(tunnel, aes_hardware)
        if hop.user:
            options[0] = f"User {hop.user}"
        lines += [f"    {option}" for option in options]
        if index == 0 and tunnel.proxy:
            lines.append(f"    ProxyCommand {proxy_command(tunnel)}")
        elif index > 0:
            lines.append(f"    ProxyJump {hop_aliases[index - 1]}")
    lines += ["", f"Host netreach-{tunnel.name}", f"    HostName {tunnel.server}", f"    Port {tunnel.port}"]
    lines += [f"    {option}" for option in _common_options(tunnel, aes_hardware)]
    lines += ["    ExitOnForwardFailure yes", "    SessionType none", "    RequestTTY no"]
    if hop_aliases:
        lines.append(f"    ProxyJump {hop_aliases[-1]}")
    elif tunnel.proxy:
        lines.append(f"    ProxyCommand {proxy_command(tunnel)}")
    for fwd in tunnel.forwards:
        if fwd.kind == "local":
            lines.append(f"    LocalForward {fwd.listen} {fwd.target}")
        elif fwd.kind == "remote":
            lines.append(f"    RemoteForward {fwd.listen} {fwd.target}")
        else:
            lines.append(f"    DynamicForward {fwd.listen}")
    return "\n".join(lines) + "\n"


def render_known_hosts(tunnel: Tunnel) -> str:
    return "".join(f"{line}\n" for line in tunnel.known_hosts)


def is_direct(tunnel: Tunnel) -> bool:
    """Whether the tunnel's ssh makes the TCP connection to its server itself (no jump host, no proxy): then the
    starter makes it instead (tunnel-start --connect, ssh -o ProxyCommand=-)."""
    return not tunnel.jump_hosts and not tunnel.proxy and tunnel.engine == "ssh"


def ssh_command(tunnel: Tunnel) -> list[str]:
    """The command the unit runs (no secrets in it: the proxy password stays in a 0600 file): the starter, which
    waits out the backoff and, for a direct tunnel, connects, then runs ssh (or autossh) as its child, and again
    whenever it ends."""
    base = ["-F", tunnel.ssh_config_path, "-N"]
    start = ["/usr/bin/python3", "-I", "-S", f"{HELPER_DIR}/tunnel-start", "--delay", str(tunnel.restart_delay),
             "--max-delay", str(tunnel.restart_max_delay), "--gate", str(session_gate(tunnel))]
    if tunnel.engine == "autossh":
        return start + ["--", "/usr/bin/autossh", "-M", "0", *base, f"netreach-{tunnel.name}"]
    if not is_direct(tunnel):
        return start + ["--", "/usr/bin/ssh", *base, f"netreach-{tunnel.name}"]
    options = dict(tunnel.ssh_options)
    start += ["--connect", tunnel.server, str(tunnel.port), "--connect-timeout", str(tunnel.connect_timeout),
              "--family", options.get("AddressFamily", "any"), "--tcp-keepalive", options.get("TCPKeepAlive", "yes")]
    return start + ["--", "/usr/bin/ssh", *base, "-o", "ProxyCommand=-", f"netreach-{tunnel.name}"]


def session_gate(tunnel: Tunnel) -> int:
    """Seconds a start must last to count as a session, not a failed attempt: longer than any connection attempt
    (ConnectTimeout) can take, and 5 s. tunnel_info counts a remote-only tunnel up by the same measure."""
    return tunnel.connect_timeout + 5


# What a tunnel unit may do: nothing but run ssh as run_as and reach the network.
HARDENING = (
    "NoNewPrivileges=yes",
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "PrivateTmp=yes",
    "PrivateDevices=yes",
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "ProtectKernelLogs=yes",
    "ProtectControlGroups=yes",
    "ProtectClock=yes",
    "ProtectHostname=yes",
    "ProtectProc=invisible",
    "ProcSubset=pid",
    "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
    "RestrictNamespaces=yes",
    "RestrictRealtime=yes",
    "RestrictSUIDSGID=yes",
    "LockPersonality=yes",
    "MemoryDenyWriteExecute=yes",
    "RemoveIPC=yes",
    "UMask=0077",
    "SystemCallArchitectures=native",
    "SystemCallFilter=@system-service",
    "SystemCallFilter=~@privileged @resources",
)


# Between a stop and the next start of the starter (the outer net: the starter runs ssh again itself): as short as
# systemd allows without spinning. Measured in the lab (systemd 252):
# 100ms cost a killed session 0.2-0.3 s before the restart (the restart timer's accuracy comes on top), 1ms about
# 0.01 s; a unit that fails before it runs anything restarted 4 times a second with either (0 made it 450).
RESTART_SEC = "1ms"


def render_unit(tunnel: Tunnel) -> str:
    """The systemd unit of one tunnel: never gives up, backs off, and runs with as little as it needs."""
    # systemd >= 254 has RestartSteps/RestartMaxDelaySec, but its restart counter only resets on a manual start:
    # a tunnel that reconnected a few times over weeks would wait restart_max_delay after every later drop.
    # The starter (tunnel-start) keeps its own count in the RuntimeDirectory and resets it after a session.
    restart = [
        f"RestartSec={RESTART_SEC}",
        "RuntimeDirectory=netreach-tunnel/%i",
        "RuntimeDirectoryPreserve=restart",
    ]
    environment = []
    if tunnel.engine == "autossh":
        environment = ["Environment=AUTOSSH_GATETIME=0", f"Environment=AUTOSSH_POLL={min(60, tunnel.keepalive_interval * 6)}"]
    capabilities = "CAP_NET_BIND_SERVICE" if tunnel.needs_low_port else ""
    lines = [
        "# Managed by netreach.tunnels.ssh_tunnel; local changes are overwritten.",
        "[Unit]",
        f"Description=netreach SSH tunnel {tunnel.name} to {tunnel.server}",
        "Wants=network-online.target",
        "After=network-online.target",
        "StartLimitIntervalSec=0",
        "",
        "[Service]",
        "Type=simple",
        f"User={tunnel.run_as}",
        *environment,
        f"ExecStart={shlex.join(ssh_command(tunnel))}",
        "Restart=always",
        *restart,
        "TimeoutStartSec=infinity",
        *HARDENING,
        f"CapabilityBoundingSet={capabilities}",
        f"AmbientCapabilities={capabilities}",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
    ]
    return "\n".join(lines) + "\n"


def render_proxy_auth(tunnel: Tunnel) -> str | None:
    """The proxy hop's credentials file (None: the tunnel needs none)."""
    if tunnel.proxy and tunnel.proxy.username:
        return f"{tunnel.proxy.username}:{tunnel.proxy.password}\n"
    return None


@dataclass
class RenderedConfig:
    """What an ssh_config of ours says, read back: the server, the jump hosts in order, the forwards."""

    server: str = ""
    jump_hosts: list = field(default_factory=list)
    forwards: list = field(default_factory=list)  # dicts: kind, listen, target

    @property
    def client_listens(self) -> list[str]:
        """The listen specs bound on the client (local and dynamic forwards)."""
        return [fwd["listen"] for fwd in self.forwards if fwd["kind"] != "remote"]


def parse_ssh_config(name: str, text: str | None) -> RenderedConfig:
    """Read back an ssh_config that render_ssh_config wrote for tunnel NAME (None: no file)."""
    rendered = RenderedConfig()
    in_main = False
    for line in (text or "").splitlines():
        words = line.split()
        if len(words) < 2:
            continue
        if words[0] == "Host":
            in_main = words[1] == f"netreach-{name}"
        elif words[0] == "HostName":
            if in_main:
                rendered.server = words[1]
            else:
                rendered.jump_hosts.append(words[1])
        elif in_main and words[0] in FORWARD_KINDS:
            rendered.forwards.append({"kind": FORWARD_KINDS[words[0]], "listen": words[1],
                                      "target": words[2] if len(words) > 2 else None})
    return rendered
