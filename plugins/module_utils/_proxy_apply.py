# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: planning ProxySettings on the host. Not a public API.
"""Decide what every proxy layer needs on this host as steps of one engine Plan: the files and managed blocks,
the reloads, and last the consumers' read-backs. Nothing here writes: the engine does, at commit."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Callable

from ansible_collections.netreach.tunnels.plugins.module_utils._engine import Plan, target, target_of
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_apply import unit_target
from ansible_collections.netreach.tunnels.plugins.module_utils._proxy import (
    PATHS,
    POLICY_PATHS,
    ProxyError,
    ProxySettings,
    merge_block,
    merge_policies,
    remove_block,
    render_apt,
    render_dnf_lines,
    render_docker,
    render_environment_lines,
    render_git_lines,
    render_npm_lines,
    render_pip_lines,
    render_profile,
    render_proxy_policy,
    render_sudo,
    render_systemd,
    render_wget_lines,
)
from ansible_collections.netreach.tunnels.plugins.module_utils._proxy_hop import (
    CNTLM,
    HOP_CONFIG,
    HOP_UNIT,
    HOP_USER,
    NtlmHop,
    render_cntlm_config,
    render_hop_unit,
)
from ansible_collections.netreach.tunnels.plugins.module_utils._proxy_readback import (
    expected_readbacks,
    parse_apt_dump,
    parse_key_lines,
    parse_pip_config_list,
    parse_show_environment,
    readback_problem,
)


def etc(*parts: str):
    """A file of ours under /etc: a symbolic link anywhere below /etc on the way is refused, never followed."""
    return target("/etc", *parts, field="targets")


FILES = {layer: target_of("/etc", path, field="targets") for layer, path in PATHS.items()}
# The browsers' system-wide file (under /etc) and their distribution one (in the installation's distribution
# directory: the anchor, since Debian's firefox-esr ships it as a link of root's to /usr/share/firefox-esr).
POLICY_TARGETS = {app: (target_of("/etc", system, field="targets"),
                        target_of(dist.rsplit("/", 1)[0], dist, field="targets"))
                  for app, (system, dist) in POLICY_PATHS.items()}
# Files that stay when our block was all they held: the system expects them to exist.
KEEP_WHEN_EMPTY = {FILES["environment"]}


@dataclass(frozen=True)
class LayerFile:
    """One file of a layer: a managed BLOCK of lines in a shared file, or a whole file of ours."""

    file: str  # the key of FILES
    render: Callable  # (settings, warnings) -> the block's lines or the file's text
    block: bool = False
    section: str | None = None  # the INI section our block belongs in
    validate: tuple[str, ...] = ()  # the consumer's own parser, run on the new file where it is installed
    mode: int | None = None  # None: 0600 when the file holds the password, else 0644


LAYERS = {
    "environment": (LayerFile("environment", lambda s, _w: render_environment_lines(s), block=True),
                    LayerFile("profile", lambda s, _w: render_profile(s))),
    "systemd": (LayerFile("systemd", lambda s, _w: render_systemd(s)),),
    "apt": (LayerFile("apt", render_apt, validate=("apt-config", "-c", "%s", "dump")),),
    "dnf": (LayerFile("dnf", render_dnf_lines, block=True, section="main"),),
    "docker": (LayerFile("docker", lambda s, _w: render_docker(s)),),
    "git": (LayerFile("git", render_git_lines, block=True, validate=("git", "config", "--file", "%s", "--list")),),
    "pip": (LayerFile("pip", render_pip_lines, block=True, section="global"),),
    "npm": (LayerFile("npm", render_npm_lines, block=True),),
    "wget": (LayerFile("wget", render_wget_lines, block=True),),
    "sudo": (LayerFile("sudo", lambda _s, _w: render_sudo(), mode=0o440, validate=("visudo", "-c", "-q", "-f", "%s")),),
}
# The consumer's own reader of each layer and how to parse what it prints.
READBACKS = {
    "systemd": (["systemctl", "show-environment"], parse_show_environment),
    "apt": (["apt-config", "dump"], parse_apt_dump),
    "git": (["git", "config", "--system", "--get", "http.proxy"], lambda out: {"http.proxy": out.rstrip("\n")}),
    "npm": (["npm", "config", "get", "proxy", "https-proxy", "--globalconfig", "/etc/npmrc"], parse_key_lines),
    "pip": (["pip3", "config", "list"], parse_pip_config_list),
}


class ProxyPlan:
    """One module run: the plan of every layer, the warnings."""

    def __init__(self, module, settings: ProxySettings | None) -> None:
        self.module = module
        self.settings = settings
        self.plan = Plan(module, secrets=settings.secrets if settings else [])
        self.warnings: list[str] = []

    def _mode(self, content: str | None) -> int:
        password = self.settings.password if self.settings else None
        if not password or not content:
            return 0o644
        for spelling in self.settings.secrets:
            content = content.replace(spelling, password)
        return 0o600 if password in content else 0o644

    def _validator(self, command: tuple[str, ...]) -> list[str] | None:
        """The command that checks a new file with the consumer's own parser, where the consumer is installed."""
        return list(command) if command and self.module.get_bin_path(command[0]) else None

    def layer_file(self, spec: LayerFile) -> bool:
        """Plan one file of a layer (its removal when there are no settings); whether it changes."""
        tgt = FILES[spec.file]
        rendered = spec.render(self.settings, self.warnings) if self.settings is not None else None
        content = rendered
        if spec.block:
            current = self.plan.read(tgt)
            if rendered is None:
                if current is None or remove_block(current) == current:
                    return False
                content = remove_block(current)
                if not content.strip() and tgt not in KEEP_WHEN_EMPTY:
                    content = None
            else:
                content = merge_block(current, rendered, spec.section)
        mode = spec.mode if spec.mode is not None else self._mode(content)
        return self.plan.file(tgt, content, mode, validate=self._validator(spec.validate) if content is not None else None)

    def policies(self, app: str) -> None:
        system, dist = POLICY_TARGETS[app]
        # The application reads the system-wide file when it exists, else the distribution one: merge into the one
        # it reads; removal cleans both.
        if self.settings is None:
            tgts = [system, dist]
        else:
            tgts = [system if self.plan.kind(system) is not None or self.plan.kind(dist) != "file" else dist]
        policy = render_proxy_policy(self.settings, self.warnings) if self.settings else None
        for tgt in tgts:
            current = self.plan.read(tgt)
            if policy is None and current is None:
                continue
            try:
                content = merge_policies(current, policy)
            except (ValueError, ProxyError) as exc:
                self.plan.fail("targets", f"targets: {app}: {tgt.path} is not a valid policies.json ({exc})")
            if policy is None and content == current:
                continue
            self.plan.file(tgt, content, 0o644)

    def layer(self, name: str) -> bool:
        """Plan layer NAME; whether one of its files changes."""
        if name in POLICY_TARGETS:
            self.policies(name)
            return False
        if name == "dnf" and self.settings is not None and self.plan.kind(etc("dnf")) != "dir":
            self.warnings.append("dnf: /etc/dnf does not exist on this host (dnf is not installed); skipped")
            return False
        changed = [self.layer_file(spec) for spec in LAYERS[name]]  # every file planned, not the first changed
        return any(changed)

    def systemd_running(self) -> bool:
        return bool(self.module.get_bin_path("systemctl")) and \
            self.plan.kind(target("/run", "systemd", "system")) == "dir"

    def reloads(self, changed: set[str]) -> None:
        if not self.systemd_running():
            return
        if "systemd" in changed:
            # The manager reads DefaultEnvironment= when it starts: re-execute it so new services see the change.
            self.plan.command(["systemctl", "daemon-reexec"], changed=False)
        if "docker" in changed:
            rc, out, _err = self.plan.query(["systemctl", "list-unit-files", "--no-legend", "docker.service"])
            if rc == 0 and "docker.service" in out:
                self.plan.command(["systemctl", "daemon-reload"], changed=False)
                self.plan.unit("docker.service", action="try-restart")

    def npm_shows_proxies(self) -> bool:
        """npm 10 and later refuse to print a proxy URL that holds credentials ("option is protected")."""
        if not self.settings.username:
            return True
        rc, out, _err = self.plan.query(["npm", "--version"])
        return rc == 0 and out.strip().split(".")[0].isdigit() and int(out.strip().split(".")[0]) < 10

    def read_backs(self, layers: tuple[str, ...]) -> None:
        """Last steps: each written layer's consumer, where installed, must see what was declared."""
        expected = expected_readbacks(self.settings)
        for layer in layers:
            if layer not in READBACKS or not expected[layer]:
                continue
            args, parse = READBACKS[layer]
            if not self.module.get_bin_path(args[0]) or (layer == "systemd" and not self.systemd_running()) \
                    or (layer == "npm" and not self.npm_shows_proxies()):
                continue
            wanted = expected[layer]
            self.plan.read_back(args, lambda out, parse=parse, wanted=wanted: readback_problem(wanted, parse(out)),
                                layer=layer)


HOP_DIR_TARGET = target("/etc", *HOP_CONFIG.split("/")[2:-1], field="auth")
HOP_CONFIG_TARGET = HOP_DIR_TARGET.child(HOP_CONFIG.rpartition("/")[2])


def plan_hop(plan: Plan, hop: NtlmHop | None) -> None:
    """The local NTLM hop: its user, its 0600 configuration (the only place of the credentials) and its unit,
    restarted when either changed; None: the hop taken away, when it is there."""
    unit = unit_target(HOP_UNIT, field="auth")
    if hop is None:
        if plan.kind(unit) is not None:
            plan.command(["systemctl", "disable", "--now", HOP_UNIT], check=False)
            plan.remove(unit)
            plan.daemon_reload()
        plan.remove_tree(HOP_DIR_TARGET)
        return
    if plan.kind(target(*CNTLM.rsplit("/", 1), field="auth")) != "file":
        plan.fail("auth", f"auth ntlm runs cntlm as the local hop, and {CNTLM} is not installed (Debian package cntlm)")
    plan.system_user(HOP_USER)
    plan.directory(HOP_DIR_TARGET, 0o700, HOP_USER)
    changed = plan.file(HOP_CONFIG_TARGET, render_cntlm_config(hop), 0o600, HOP_USER, show=False)
    changed |= plan.file(unit, render_hop_unit(), 0o644)
    plan.daemon_reload()
    active, _enabled = plan.unit_state(HOP_UNIT)
    plan.unit(HOP_UNIT, ("restart" if active else "start") if changed or not active else None, enabled=True)


def git_decodes(plan: Plan, module) -> int:
    """How many times the installed git decodes proxy credentials (see ProxySettings.git_decodes)."""
    if not module.get_bin_path("git"):
        return 1
    rc, out, _err = plan.query(["git", "--version"])
    match = re.search(r"(\d+)\.(\d+)", out) if rc == 0 else None
    return 2 if match and (int(match.group(1)), int(match.group(2))) < (2, 47) else 1


def plan_proxy(module, settings: ProxySettings | None, layers: tuple[str, ...]) -> dict:
    """Plan every layer for SETTINGS (None: remove what we wrote), commit, and return the module's result."""
    proxy = ProxyPlan(module, settings)
    plan_hop(proxy.plan, settings.hop if settings else None)
    if settings is not None and "git" in layers and "%" in (settings.username or "") + (settings.password or ""):
        # Only a "%" in the credentials is hurt by git's extra decoding; other credentials stay as they were.
        proxy.settings = settings = replace(settings, git_decodes=git_decodes(proxy.plan, module))
    changed = {layer for layer in layers if proxy.layer(layer)}
    proxy.reloads(changed)
    if settings is not None:
        proxy.read_backs(layers)
    return proxy.plan.commit(files=proxy.plan.changed_paths(), warnings_list=list(proxy.warnings))
