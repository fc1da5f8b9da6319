# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: applying ProxySettings to the host. Not a public API.
"""Decide what every proxy target needs on this host, report it (check and diff mode), and only then write."""

from __future__ import annotations

import os
import shutil

from ansible_collections.netreach.tunnels.plugins.module_utils._files import FilePlan, read_text
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

# Files that stay when our block was all they held: the system expects them to exist.
KEEP_WHEN_EMPTY = {PATHS["environment"]}


class ProxyHost:
    """One module run: the planned file changes, the services to reload, the warnings."""

    def __init__(self, module) -> None:
        self.module = module
        self.plan = FilePlan()
        self.warnings: list[str] = []

    def _mode(self, content: str | None, settings: ProxySettings | None) -> int:
        secret = settings is not None and settings.password and content and settings.password in _decoded(content, settings)
        return 0o600 if secret else 0o644

    def _block_file(self, path: str, lines: list[str] | None, section: str | None,
                    settings: ProxySettings | None, validate: list[str] | None = None) -> None:
        current = read_text(path)
        if lines is None:
            if current is None:
                return
            content: str | None = remove_block(current)
            if content == current:
                return
            if not content.strip() and path not in KEEP_WHEN_EMPTY:
                content = None
        else:
            content = merge_block(current, lines, section)
        self.plan.put(path, content, self._mode(content, settings), validate=validate if content is not None else None)

    def _own_file(self, path: str, content: str | None, settings: ProxySettings | None, mode: int | None = None,
                  validate: list[str] | None = None) -> bool:
        return self.plan.put(path, content, mode if mode is not None else self._mode(content, settings),
                             validate=validate)

    def _policies(self, target: str, settings: ProxySettings | None) -> None:
        system_path, dist_path = POLICY_PATHS[target]
        # Firefox reads the system-wide file when it exists, else the distribution one: merge into the one read.
        paths = [system_path, dist_path] if settings is None else \
            [system_path if os.path.exists(system_path) or not os.path.isfile(dist_path) else dist_path]
        policy = render_proxy_policy(settings, self.warnings) if settings else None
        for path in paths:
            current = read_text(path)
            if policy is None and current is None:
                continue
            try:
                content = merge_policies(current, policy)
            except (ValueError, ProxyError) as exc:
                self.module.fail_json(msg=f"targets: {target}: {path} is not a valid policies.json ({exc})",
                                      field="targets")
            if policy is None and content == current:
                continue
            self.plan.put(path, content, 0o644)

    # --- the run -------------------------------------------------------------------------------------
    def run(self, settings: ProxySettings | None, targets: tuple[str, ...]) -> dict:
        """Plan every target for SETTINGS (None: remove what we wrote), then apply and reload what changed."""
        if settings is not None:
            self.plan.secrets = settings.secrets
        present = settings is not None
        warn = self.warnings
        for target in targets:
            if target == "environment":
                self._block_file(PATHS["environment"], render_environment_lines(settings) if present else None, None, settings)
                self._own_file(PATHS["profile"], render_profile(settings) if present else None, settings)
            elif target == "systemd":
                self._own_file(PATHS["systemd"], render_systemd(settings) if present else None, settings)
            elif target == "apt":
                self._own_file(PATHS["apt"], render_apt(settings, warn) if present else None, settings,
                               validate=_validator("apt-config", "-c", "%s", "dump"))
            elif target == "dnf":
                if present and not os.path.isdir(os.path.dirname(PATHS["dnf"])):
                    warn.append("dnf: /etc/dnf does not exist on this host (dnf is not installed); skipped")
                    continue
                self._block_file(PATHS["dnf"], render_dnf_lines(settings, warn) if present else None, "main", settings)
            elif target == "docker":
                self._own_file(PATHS["docker"], render_docker(settings) if present else None, settings)
            elif target == "git":
                self._block_file(PATHS["git"], render_git_lines(settings, warn) if present else None, None, settings,
                                 validate=_validator("git", "config", "--file", "%s", "--list"))
            elif target == "pip":
                self._block_file(PATHS["pip"], render_pip_lines(settings, warn) if present else None, "global", settings)
            elif target == "npm":
                self._block_file(PATHS["npm"], render_npm_lines(settings, warn) if present else None, None, settings)
            elif target == "wget":
                self._block_file(PATHS["wget"], render_wget_lines(settings, warn) if present else None, None, settings)
            elif target == "sudo":
                self._own_file(PATHS["sudo"], render_sudo() if present else None, settings, mode=0o440,
                               validate=["visudo", "-c", "-q", "-f", "%s"])
            elif target in POLICY_PATHS:
                self._policies(target, settings)
        changed_paths = self.plan.changed_paths
        self.plan.apply(self.module)
        self._reload(changed_paths)
        result = dict(changed=self.plan.changed, files=changed_paths, warnings_list=list(self.warnings))
        if self.module._diff:
            result["diff"] = self.plan.diff()
        return result

    def _reload(self, changed_paths: list[str]) -> None:
        if self.module.check_mode or not shutil.which("systemctl"):
            return
        if PATHS["systemd"] in changed_paths:
            # The manager reads DefaultEnvironment= when it starts: re-execute it so new services see the change.
            self._run(["systemctl", "daemon-reexec"])
        if PATHS["docker"] in changed_paths and self._docker_installed():
            self._run(["systemctl", "daemon-reload"])
            self._run(["systemctl", "try-restart", "docker.service"])

    def _docker_installed(self) -> bool:
        rc, out, _err = self.module.run_command(["systemctl", "list-unit-files", "--no-legend", "docker.service"])
        return rc == 0 and "docker.service" in out

    def _run(self, args: list[str]) -> None:
        rc, out, err = self.module.run_command(args)
        if rc != 0:
            self.module.fail_json(msg=f"{' '.join(args)} failed: {err.strip() or out.strip()}", rc=rc)


def _validator(tool: str, *args: str) -> list[str] | None:
    """The command that checks a new file with the consumer's own parser, where the consumer is installed."""
    return [tool, *args] if shutil.which(tool) else None


def _decoded(content: str, settings: ProxySettings) -> str:
    """CONTENT with every spelling of the password turned into the password, to tell whether it holds it."""
    for secret in settings.secrets:
        content = content.replace(secret, settings.password)
    return content
