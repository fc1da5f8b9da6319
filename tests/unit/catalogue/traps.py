"""Symbolic-link traps: links planted where the collection keeps its files, and the module calls that must refuse
them, naming the field, without following them or changing anything.

One source for the badinput Molecule scenario (its prepare plants SETUP on a host of its own, its test runs ROWS
there and compares the host byte for byte) and for the unit test that checks the rows are well formed. The apply
layer's unit tests plant the same kinds of link under a fake root.
"""
from __future__ import annotations

from .cases import ENTRY, TUNNEL

# Shell commands (run as root on the traps host, in order) that plant the links and what they point at.
SETUP: list[str] = [
    "mkdir -p /srv/data /srv/userssh /srv/userputty /srv/acctssh /etc/netreach/tunnels /etc/systemd/system",
    "echo precious > /srv/data/precious && echo precious > /srv/data/id_ed25519 && echo '# unit' > /srv/data/unit",
    "echo 'Host keep' > /srv/userssh/config && echo 'ssh-ed25519 AAAA keep' > /srv/acctssh/authorized_keys",
    # A tunnel directory that is a link to a directory of someone else's files.
    "ln -sfn /srv/data /etc/netreach/tunnels/trap",
    # A tunnel's unit file that is a link.
    "ln -sfn /srv/data/unit /etc/systemd/system/netreach-tunnel@linkunit.service",
    # A session owner whose ~/.ssh is a link ...
    "id trapuser >/dev/null 2>&1 || useradd --create-home --shell /bin/bash trapuser",
    "rm -rf /home/trapuser/.ssh && ln -sfn /srv/userssh /home/trapuser/.ssh",
    # ... and whose ~/.putty is a link.
    "echo keep > /srv/userputty/keep && rm -rf /home/trapuser/.putty && ln -sfn /srv/userputty /home/trapuser/.putty",
    # A tunnel account whose ~/.ssh is a link.
    "id trapacct >/dev/null 2>&1 || useradd --create-home --shell /bin/sh trapacct",
    "rm -rf /home/trapacct/.ssh && ln -sfn /srv/acctssh /home/trapacct/.ssh",
]

SESSION = {"name": "trapped", "host": "badinput-server", "user": "tunnel", "owner": "trapuser", "format": "openssh",
           "local_forwards": ["12347:localhost:22"]}

# (module, module arguments, the field the error must name)
ROWS: list[tuple[str, dict, str]] = [
    ("ssh_tunnel", {"name": "trap", "state": "absent", "remove_key": True}, "name"),
    ("ssh_tunnel", {"name": "trap", "state": "absent"}, "name"),
    ("ssh_tunnel", {**TUNNEL, "name": "trap", "state": "started"}, "name"),
    ("ssh_tunnel", {**TUNNEL, "name": "trap", "state": "present"}, "name"),
    ("ssh_tunnel", {"name": "linkunit", "state": "absent"}, "name"),
    ("ssh_tunnel", {**TUNNEL, "name": "linkunit", "state": "stopped"}, "name"),
    ("tunnel_key", {"name": "trap"}, "name"),
    ("client_session", dict(SESSION), "name"),
    ("client_session", {**SESSION, "state": "absent"}, "name"),
    ("client_session", {**SESSION, "format": "putty"}, "name"),
    ("tunnel_server", {"accounts": ["trapacct"], "entries": [{**ENTRY, "account": "trapacct"}]}, "accounts"),
    ("tunnel_server", {"accounts": ["trapacct"], "entries": [], "state": "absent"}, "accounts"),
]
