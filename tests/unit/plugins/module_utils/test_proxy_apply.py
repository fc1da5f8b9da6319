from __future__ import annotations

import pytest

from ansible_collections.netreach.tunnels.plugins.module_utils._proxy import PATHS
from ansible_collections.netreach.tunnels.plugins.module_utils._proxy_apply import ProxyHost


class FakeModule:
    """Records the commands a ProxyHost runs; answers `systemctl list-unit-files` as a host with or without docker."""

    def __init__(self, docker_installed: bool, check_mode: bool = False) -> None:
        self.check_mode = check_mode
        self.docker_installed = docker_installed
        self.commands: list[list[str]] = []

    def run_command(self, args):
        self.commands.append(list(args))
        if args[:2] == ["systemctl", "list-unit-files"]:
            return 0, "docker.service enabled enabled\n" if self.docker_installed else "", ""
        return 0, "", ""

    def fail_json(self, **kwargs):
        raise AssertionError(kwargs)


@pytest.fixture(autouse=True)
def systemctl_present(monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: f"/usr/bin/{name}")


@pytest.mark.parametrize(
    ("installed", "changed", "restarted"),
    [(True, [PATHS["docker"]], True), (False, [PATHS["docker"]], False), (True, [PATHS["apt"]], False)],
)
def test_docker_restarts_only_when_installed_and_its_drop_in_changed(installed, changed, restarted):
    module = FakeModule(installed)
    ProxyHost(module)._reload(changed)
    assert (["systemctl", "try-restart", "docker.service"] in module.commands) is restarted


def test_the_manager_is_re_executed_when_its_drop_in_changed_and_nothing_runs_in_check_mode():
    module = FakeModule(False)
    ProxyHost(module)._reload([PATHS["systemd"]])
    assert ["systemctl", "daemon-reexec"] in module.commands
    check = FakeModule(True, check_mode=True)
    ProxyHost(check)._reload([PATHS["systemd"], PATHS["docker"]])
    assert check.commands == []
