# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: planning a Session's files on the host. Not a public API.
"""Decide which file, block or section a session needs (or no longer needs) as steps of one engine Plan.

Every path lies in the owner's home: the defaults are the home plus parts made from the validated session name,
a given `path`/`reg_path` must be below the home. A symbolic link on the way (~/.ssh, ~/.ssh/config.d, ~/.putty)
is refused, never followed, naming `name` for a default path (made from it) and `path`/`reg_path` for a given one."""

from __future__ import annotations

from ansible_collections.netreach.tunnels.plugins.module_utils import _blocks
from ansible_collections.netreach.tunnels.plugins.module_utils._engine import Plan, Target, target, target_of
from ansible_collections.netreach.tunnels.plugins.module_utils._session import (
    OPENSSH_BEGIN,
    OPENSSH_END,
    WINSCP_SECTION_PREFIX,
    Session,
    merge_include,
    merge_ini_section,
    putty_file_name,
    registry_escape,
    render_openssh,
    render_putty,
    render_putty_reg,
    render_winscp_section,
    putty_session_host_keys,
)
from ansible_collections.netreach.tunnels.plugins.module_utils._session_hostkeys import (
    merge_putty_hostkeys,
    render_known_hosts,
)


def session_targets(plan: Plan, params: dict, home: str) -> tuple[Target, Target | None]:
    """The session's file (and the PuTTY .reg export): a given path confined to HOME, else the default."""
    name, fmt = params["name"], params["format"]

    def given_or(field: str, *default: str) -> Target:
        # A given path answers for itself; a default one is the home plus parts made from the session name.
        if params.get(field):
            return plan.guard(target_of, home, params[field], field)
        return plan.guard(target, home, *default, field="name")

    if fmt == "openssh":
        return given_or("path", ".ssh", "config.d", f"netreach-{name}.conf"), None
    if fmt == "putty":
        escaped = putty_file_name(name)
        return given_or("path", ".putty", "sessions", escaped), given_or("reg_path", ".putty", f"netreach-{escaped}.reg")
    return given_or("path", "WinSCP.ini"), None


def plan_session(plan: Plan, params: dict, home: str, session: Session | None) -> tuple[str, list[str]]:
    """Plan SESSION's files (None: their removal); the session's file and the warnings."""
    tgt, reg = session_targets(plan, params, home)
    owner = params["owner"]
    warnings: list[str] = []
    if params["format"] == "openssh":
        plan_openssh(plan, params, tgt, home, session, owner)
    elif params["format"] == "putty":
        plan.file(tgt, render_putty(session) if session else None, 0o600, owner)
        plan.file(reg, render_putty_reg(session) if session else None, 0o600, owner)
        plan_putty_hostkeys(plan, params, home, session)
    else:
        current = plan.read(tgt)
        section = WINSCP_SECTION_PREFIX + registry_escape(params["name"])
        new = merge_ini_section(current, section, render_winscp_section(session, warnings) if session else None)
        if current is not None or session is not None:
            plan.file(tgt, new if new.strip() or current is None else None, 0o600, owner)
    return tgt.path, warnings


def plan_putty_hostkeys(plan: Plan, params: dict, home: str, session: Session | None) -> None:
    """The session's block of pinned keys in ~/.putty/sshhostkeys, the file every PuTTY session reads."""
    tgt = plan.guard(target, home, ".putty", "sshhostkeys", field="name")
    current = plan.read(tgt)
    entries = putty_session_host_keys(session) if session else None
    new = merge_putty_hostkeys(current, params["name"], entries)
    if current is not None or new:
        plan.file(tgt, new if new.strip() or current is None else None, 0o600, params["owner"])


def known_hosts_target(plan: Plan, params: dict, tgt: Target, home: str) -> Target:
    """The session's own known_hosts file beside its ssh_config file."""
    if params.get("path"):
        return plan.guard(target_of, home, params["path"] + ".known_hosts", "path")
    return plan.guard(target, home, ".ssh", "config.d", f"netreach-{params['name']}.known_hosts", field="name")


def plan_openssh(plan: Plan, params: dict, tgt: Target, home: str, session: Session | None, owner: str) -> None:
    name = params["name"]
    known_hosts = known_hosts_target(plan, params, tgt, home)
    pinned = bool(session and session.known_hosts)
    if pinned and any(char in known_hosts.path for char in " \t\"'\\"):
        plan.fail("path", f"{known_hosts.path!r}: ssh_config cannot name a known_hosts file with blanks or quotes")
    plan.file(known_hosts, render_known_hosts(session.known_hosts) if pinned else None, 0o600, owner)
    current = plan.read(tgt)
    without, position = _blocks.cut_block(current or "", f"{OPENSSH_BEGIN}{name}", f"{OPENSSH_END}{name}")
    if session is None:
        content = without if without.strip() else None
    else:
        lines = without.splitlines(keepends=True)
        at = len(lines) if position is None else position
        content = "".join(lines[:at]) + render_openssh(session, known_hosts.path if pinned else None) \
            + "".join(lines[at:])
    if current is not None or content is not None:
        plan.file(tgt, content, 0o600, owner)
    if params.get("path"):
        return
    # The default file lives in ~/.ssh/config.d: ~/.ssh/config includes that directory while any of ours is there.
    config_dir = tgt.parent
    others = [entry for entry in plan.listdir(config_dir)
              if entry.startswith("netreach-") and entry.endswith(".conf") and entry != tgt.parts[-1]]
    config = plan.guard(target, home, ".ssh", "config", field="name")
    include = f"{config_dir.path}/netreach-*.conf" if session is not None or others else None
    current_config = plan.read(config)
    if current_config is None and include is None:
        return
    new_config = merge_include(current_config, include)
    plan.file(config, new_config if new_config.strip() else None, 0o600, owner)
