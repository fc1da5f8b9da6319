"""The nat_rules plan against a fake root (tests/unit/nat_fakehost.py): four steps, the armed transaction,
confinement, a read-only /proc/sys."""
from __future__ import annotations

import os

import pytest

from ansible_collections.netreach.tunnels.plugins.module_utils._engine import Plan
from ansible_collections.netreach.tunnels.plugins.module_utils._nat import parse_nat
from ansible_collections.netreach.tunnels.plugins.module_utils._nat_apply import plan_nat
from ansible_collections.netreach.tunnels.plugins.module_utils._nat_boot import read_only_mount
from fakehost import Failed, snapshot
from nat_fakehost import DECLARED, NFT, Kernel, NatModule, confirm, files, run


@pytest.fixture
def kernel(tmp_path) -> Kernel:
    return Kernel(str(tmp_path))


def test_four_steps_apply_confirm_and_rerun_report_no_change(kernel, tmp_path):
    before = snapshot(str(tmp_path))
    checked, module = run(kernel, check=True)
    assert checked["changed"] and snapshot(str(tmp_path)) == before and kernel.table is None
    assert not [c for c in module.commands if c[:2] in ([NFT, "-f"], ["systemctl", "enable"]) or c[0] == "sysctl"]
    assert "dnat ip to 10.10.0.5:80" in checked["diff"]["after"] and "pending_confirm" not in checked
    applied, _module = run(kernel)
    assert applied["changed"] and "dnat ip to 10.10.0.5:80" in kernel.table
    assert set(checked) | {"pending_confirm"} == set(applied)  # check mode reports the same result shape
    assert checked["table"] == applied["table"]
    assert not os.path.exists(tmp_path / "etc/netreach/nat/netreach.nft"), "persisted before the confirmation"
    confirm(kernel, applied)
    assert (tmp_path / "etc/netreach/nat/netreach.nft").read_text().endswith(kernel.table)
    assert not os.path.exists(tmp_path / "run/netreach"), "the confirmation left staged files"
    assert "netreach-nat.service" in kernel.enabled
    again, module = run(kernel, check=True)
    rerun, module = run(kernel)
    assert not again["changed"] and not rerun["changed"] and "pending_confirm" not in rerun
    assert not [c for c in module.commands if c[:2] == [NFT, "-f"] or c[0] in ("systemd-run", "sysctl")]


def test_the_transaction_stages_through_the_engine_and_arms_before_it_applies(kernel, tmp_path):
    result, module = run(kernel)
    names = [c[0] if c[0] != NFT else " ".join(c[:2]) for c in module.commands]
    assert names.index("systemd-run") < names.index(f"{NFT} -f")
    pending = result["pending_confirm"]
    staged = sorted(os.listdir(tmp_path / "run/netreach/nat"))
    token = pending["token"]
    assert staged == sorted(f"{kind}-{token}.nft" for kind in ("boot", "pending", "rollback"))
    assert os.stat(tmp_path / "run/netreach/nat").st_mode & 0o777 == 0o700
    assert os.stat(tmp_path / f"run/netreach/nat/rollback-{token}.nft").st_mode & 0o777 == 0o600
    arm = next(c for c in module.commands if c[0] == "systemd-run")
    assert "--on-active=30s" in arm and arm[-1] == (f"{NFT} -f /run/netreach/nat/rollback-{token}.nft && "
                                                    f"touch /run/netreach/nat/rolled-back-{token}")
    assert set(pending) == {"token", "timeout", "timer", "marker"}  # no shell command: the module confirms
    assert pending["timer"] == f"netreach-nat-rollback-{token}.timer" and pending["timeout"] == 30


def test_a_new_change_supersedes_a_pending_one(kernel, tmp_path):
    first, _module = run(kernel)
    second, module = run(kernel, forward_policy="accept")
    assert ["systemctl", "stop", "netreach-nat-rollback-*.timer"] in module.commands
    staged = os.listdir(tmp_path / "run/netreach/nat")
    assert staged and not [name for name in staged if first["pending_confirm"]["token"] in name]
    confirm(kernel, second)


def test_a_failed_apply_disarms_and_persists_nothing(kernel, tmp_path):
    original = kernel.run

    def refuse(args, data):
        return (1, "", "Error: Could not process rule") if args[:2] == [NFT, "-f"] else original(args, data)
    kernel.run = refuse
    with pytest.raises(Failed) as failure:
        run(kernel)
    assert "failed, the host kept its previous state" in failure.value.result["msg"]
    assert not os.path.exists(tmp_path / "etc/netreach/nat/netreach.nft") and kernel.table is None


def test_without_the_confirm_step_the_change_is_persisted_at_once(kernel, tmp_path):
    result, module = run(kernel, timeout=0)
    assert "pending_confirm" not in result and not [c for c in module.commands if c[0] == "systemd-run"]
    assert (tmp_path / "etc/netreach/nat/netreach.nft").read_text().endswith(kernel.table)
    assert not run(kernel, timeout=0)[0]["changed"]


def test_persist_false_and_absent_take_back_the_boot_state_and_sysctl_file(kernel, tmp_path):
    confirm(kernel, run(kernel)[0])
    assert (tmp_path / "etc/sysctl.d/90-netreach-nat.conf").exists()
    # The kernel's table stays: nothing to arm, the boot state goes at once.
    result, _module = run(kernel, persist=False)
    assert result["changed"] and "pending_confirm" not in result
    assert not (tmp_path / "etc/netreach/nat").exists() and not (tmp_path / "etc/systemd/system/netreach-nat.service").exists()
    assert "netreach-nat.service" not in kernel.enabled
    confirm(kernel, run(kernel, hairpin=False, forward_policy="accept")[0])
    run(kernel, forward_policy="drop")
    # A change of the kernel's table takes the boot state back only once confirmed.
    result, _module = run(kernel, state="absent")
    assert (tmp_path / "etc/netreach/nat/netreach.nft").exists() and kernel.table is None
    confirm(kernel, result)
    # /etc/netreach is shared with the tunnels, /etc/sysctl.d is the system's: both stay.
    assert kernel.table is None and set(files(tmp_path)) == {"etc/netreach", "etc/sysctl.d"}
    assert not run(kernel, state="absent")[0]["changed"]


def test_runtime_forwarding_is_written_only_when_it_differs(tmp_path):
    kernel = Kernel(str(tmp_path), {"net/ipv4/ip_forward": "0", "net/ipv6/conf/all/forwarding": "1"})
    result, module = run(kernel)
    assert [c for c in module.commands if c[0] == "sysctl"] == [["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]]
    assert "net.ipv4.ip_forward = 1 (runtime, was 0)" in result["diff"]["after"]


@pytest.mark.parametrize("trap", ["etc/netreach/nat", "etc/netreach", "run/netreach/nat", "etc/systemd/system/netreach-nat.service"])
@pytest.mark.parametrize("state", ["present", "absent"])
def test_a_symlinked_directory_of_ours_is_refused_and_nothing_changes(kernel, tmp_path, trap, state):
    outside = tmp_path / "srv" / "data"
    outside.mkdir(parents=True)
    (outside / "precious").write_text("keep me")
    (outside / "netreach.nft").write_text("keep me too")
    link = tmp_path / trap
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(str(outside), str(link))
    kernel.table = "table inet netreach {\n}\n"  # so absent has a change to make
    before = snapshot(str(tmp_path))
    with pytest.raises(Failed) as failure:
        run(kernel, state=state)
    field = "rollback_timeout" if trap.startswith("run") else "persist"
    assert failure.value.result["field"] == field and "symbolic link" in failure.value.result["msg"]
    assert snapshot(str(tmp_path)) == before and kernel.table == "table inet netreach {\n}\n"


def test_the_diff_shows_the_kernels_table_and_the_boot_state(kernel):
    result, _module = run(kernel, check=True)
    assert "# nft list table inet netreach\n" in result["diff"]["after"]
    assert "# boot state (/etc/netreach/nat/netreach.nft, netreach-nat.service): the table above, once confirmed" \
        in result["diff"]["after"]


# A container's mounts: /proc/sys read-only over a read-write /proc (docker's default).
CONTAINER_MOUNTS = ("overlay / overlay rw,relatime 0 0\nproc /proc proc rw,nosuid,nodev,noexec,relatime 0 0\n"
                    "proc /proc/sys proc ro,nosuid,nodev,noexec,relatime 0 0\n")


def container(tmp_path, forwarding: str) -> Kernel:
    kernel = Kernel(str(tmp_path), {"net/ipv4/ip_forward": forwarding, "net/ipv6/conf/all/forwarding": forwarding})
    (tmp_path / "proc" / "self").mkdir(parents=True)
    (tmp_path / "proc" / "self" / "mounts").write_text(CONTAINER_MOUNTS)
    return kernel


def test_read_only_proc_sys_with_forwarding_on_writes_nothing_at_runtime(tmp_path):
    kernel = container(tmp_path, "1")
    result, module = run(kernel)
    assert result["changed"] and not [c for c in module.commands if c[0] == "sysctl"]
    assert (tmp_path / "etc/sysctl.d/90-netreach-nat.conf").exists()  # the boot setting is still declared


@pytest.mark.parametrize("check", [False, True])
def test_read_only_proc_sys_with_forwarding_off_fails_before_any_change(tmp_path, check):
    kernel = container(tmp_path, "0")
    before = snapshot(str(tmp_path))
    module = NatModule(kernel, check_mode=check)
    with pytest.raises(Failed) as failure:
        plan_nat(Plan(module), parse_nat(DECLARED), True, 30)
    result = failure.value.result
    assert result["field"] == "ip_forward" and result["msg"].startswith("ip_forward: net.ipv4.ip_forward is 0")
    assert "read-only" in result["msg"] and "container's sysctls" in result["msg"]
    assert "--sysctl net.ipv4.ip_forward=1" in result["msg"]
    assert snapshot(str(tmp_path)) == before and kernel.table is None
    assert not [c for c in module.commands if c[0] not in (NFT, "systemctl") or c[:2] == [NFT, "-f"]
                or c[1] not in ("-j", "show", "is-enabled")]  # only read-only queries ran


@pytest.mark.parametrize(("mounts", "path", "expected"), [
    (CONTAINER_MOUNTS, "/proc/sys/net/ipv4/ip_forward", True),
    (CONTAINER_MOUNTS, "/proc/self/status", False),
    ("proc /proc proc rw 0 0\n", "/proc/sys/net/ipv4/ip_forward", False),
    ("proc /proc proc ro 0 0\nproc /proc/sys proc rw 0 0\n", "/proc/sys/net/ipv4/ip_forward", False),
    ("proc /proc/sysfoo proc ro 0 0\n", "/proc/sys/net", False),
    (None, "/proc/sys/net", False),
])
def test_read_only_mount_takes_the_innermost_mount(mounts, path, expected):
    assert read_only_mount(mounts, path) is expected
