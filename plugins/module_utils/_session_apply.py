# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: planning a Session's files on the host. Not a public API.
"""Decide which file, block or section a session needs (or no longer needs), before anything is written."""

from __future__ import annotations

import os

from ansible_collections.netreach.tunnels.plugins.module_utils._files import FilePlan, read_text
from ansible_collections.netreach.tunnels.plugins.module_utils._proxy import cut_block
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
)


def default_paths(params: dict, home: str) -> tuple[str, str | None]:
    """The session's file (and the PuTTY .reg export) for PARAMS, defaulting into HOME."""
    name, fmt = params["name"], params["format"]
    if fmt == "openssh":
        return params["path"] or f"{home}/.ssh/config.d/netreach-{name}.conf", None
    if fmt == "putty":
        reg = params["reg_path"] or f"{home}/.putty/netreach-{putty_file_name(name)}.reg"
        return params["path"] or f"{home}/.putty/sessions/{putty_file_name(name)}", reg
    return params["path"] or f"{home}/WinSCP.ini", None


def plan_session(params: dict, home: str, session: Session | None) -> tuple[FilePlan, str, list[str]]:
    """The file changes for SESSION (None: remove it), the session's file and the warnings."""
    path, reg_path = default_paths(params, home)
    plan = FilePlan(secrets=session.secrets if session else [])
    owner = params["owner"]
    warnings: list[str] = []
    if params["format"] == "openssh":
        plan_openssh(plan, params, path, home, session, owner)
    elif params["format"] == "putty":
        plan.put(path, render_putty(session) if session else None, 0o600, owner)
        plan.put(reg_path, render_putty_reg(session) if session else None, 0o600, owner)
    else:
        current = read_text(path)
        section = WINSCP_SECTION_PREFIX + registry_escape(params["name"])
        new = merge_ini_section(current, section, render_winscp_section(session, warnings) if session else None)
        if current is not None or session is not None:
            plan.put(path, new if new.strip() or current is None else None, 0o600, owner)
    return plan, path, warnings


def plan_openssh(plan: FilePlan, params: dict, path: str, home: str, session: Session | None, owner: str) -> None:
    name = params["name"]
    current = read_text(path)
    without, position = cut_block(current or "", f"{OPENSSH_BEGIN}{name}", f"{OPENSSH_END}{name}")
    if session is None:
        content = without if without.strip() else None
    else:
        lines = without.splitlines(keepends=True)
        at = len(lines) if position is None else position
        content = "".join(lines[:at]) + render_openssh(session) + "".join(lines[at:])
    if current is not None or content is not None:
        plan.put(path, content, 0o600, owner)
    if params["path"]:
        return
    # The default file lives in ~/.ssh/config.d: ~/.ssh/config includes that directory while any of ours is there.
    config_dir = os.path.dirname(path)
    others = [entry for entry in (os.listdir(config_dir) if os.path.isdir(config_dir) else [])
              if entry.startswith("netreach-") and entry.endswith(".conf") and entry != os.path.basename(path)]
    config = f"{home}/.ssh/config"
    include = f"{config_dir}/netreach-*.conf" if session is not None or others else None
    current_config = read_text(config)
    new_config = merge_include(current_config, include)
    if current_config is None and include is None:
        return
    plan.put(config, new_config if new_config.strip() else None, 0o600, owner)
