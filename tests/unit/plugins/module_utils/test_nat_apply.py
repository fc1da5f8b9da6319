from __future__ import annotations

from ansible_collections.netreach.tunnels.plugins.module_utils._nat_apply import (
    BOOT_RULES,
    UNIT_PATH,
    NatHost,
    render_sysctl,
    render_unit,
)


class FakeModule:
    """Just enough of AnsibleModule for NatHost's pure parts."""

    check_mode = False
    _diff = True
    tmpdir = "/tmp"

    @staticmethod
    def get_bin_path(name, required=False):
        return f"/usr/sbin/{name}"


def script(armed: bool, persist: bool = True) -> list[str]:
    host = NatHost(FakeModule())
    boot = {BOOT_RULES: "table inet netreach {}\n", UNIT_PATH: render_unit("/usr/sbin/nft")} if persist else \
        {BOOT_RULES: None, UNIT_PATH: None}
    return host._confirm_script("abc123", boot, armed).splitlines()


def test_an_armed_change_is_persisted_only_while_its_rollback_still_waits():
    lines = script(armed=True)
    check = lines.index("systemctl is-active --quiet netreach-nat-rollback-abc123.timer || { echo not-armed; exit 3; }")
    stop = lines.index("systemctl stop netreach-nat-rollback-abc123.timer")
    persist = next(i for i, line in enumerate(lines) if line.startswith("mv -f") and line.endswith(BOOT_RULES))
    assert check < stop < persist
    # A restore that already ran (or is running) wins: nothing is persisted after it.
    assert max(i for i, line in enumerate(lines) if "rolled-back-abc123" in line) < persist
    assert lines[-1] == "echo confirmed"


def test_without_the_confirm_step_the_boot_state_is_written_at_once():
    lines = script(armed=False)
    assert not any("is-active" in line for line in lines)
    assert "systemctl enable --quiet netreach-nat.service" in lines


def test_persist_false_removes_only_our_boot_files():
    lines = script(armed=True, persist=False)
    removals = [line for line in lines if line.startswith("rm ")]
    assert removals[0] == f"rm -f {BOOT_RULES} {UNIT_PATH}"
    assert all("abc123" in line for line in removals[1:])


def test_unit_restores_the_confirmed_file_before_the_network():
    unit = render_unit("/usr/sbin/nft")
    assert "Before=network-pre.target" in unit and f"ExecStart=/usr/sbin/nft -f {BOOT_RULES}" in unit
    assert "flush" not in unit


def test_sysctl_sets_both_families():
    assert render_sysctl(True).splitlines()[1:] == ["net.ipv4.ip_forward = 1", "net.ipv6.conf.all.forwarding = 1"]
