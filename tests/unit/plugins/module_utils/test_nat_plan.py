"""The nat_rules plan against a fake root: a fake kernel answers nft, systemctl and unshare; the confirm script the
plan stages runs for real in a shell, its paths moved into the fake root."""
from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from ansible_collections.netreach.tunnels.plugins.module_utils._engine import Plan
from ansible_collections.netreach.tunnels.plugins.module_utils._nat import parse_nat
from ansible_collections.netreach.tunnels.plugins.module_utils._nat_apply import plan_nat
from ansible_collections.netreach.tunnels.plugins.module_utils._nat_boot import read_only_mount
from fakehost import Failed, FakeModule, snapshot

NFT = "/usr/sbin/nft"
DECLARED = dict(masquerade=[{"out_interface": "eth0", "source": "10.10.0.0/24"}], snat=[],
                port_forwards=[{"proto": "tcp", "port": 8080, "to": "10.10.0.5:80", "in_interface": "eth0"}],
                forward_policy="drop", ip_forward=True)
ARMED = "/run/netreach/nat"


class Kernel:
    """What the fake host's kernel and systemd hold: our table (nft input text) and the enabled units."""

    def __init__(self, root: str, proc: dict | None = None) -> None:
        self.root = root
        self.table: str | None = None
        self.enabled: set[str] = set()
        self.foreign: list[dict] = []  # other tables' items of `nft -j list ruleset`
        self.units: dict[str, str] = {}  # LoadState of units that exist
        for name, value in (proc or {"net/ipv4/ip_forward": "1", "net/ipv6/conf/all/forwarding": "1"}).items():
            path = os.path.join(root, "proc/sys", name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as stream:
                stream.write(value + "\n")
        os.makedirs(os.path.join(root, "run/systemd/system"), exist_ok=True)

    @staticmethod
    def listing(table: str | None) -> tuple[str, str]:
        rules = [line.strip() for line in (table or "").splitlines()]
        items = [{"metainfo": {"version": "1.0.6"}}, {"table": {"family": "inet", "name": "netreach", "handle": 7}}]
        items += [{"rule": {"expr": rule, "handle": i}} for i, rule in enumerate(rules)]
        return json.dumps({"nftables": items}), table or ""

    @staticmethod
    def table_of(replace: str) -> str | None:
        return replace.split("delete table inet netreach\n", 1)[1] or None

    def real(self, path: str) -> str:
        return os.path.join(self.root, path.lstrip("/"))

    def run(self, args: list[str], data: str | None) -> tuple[int, str, str]:
        if args[:4] == [NFT, "-j", "list", "ruleset"]:
            ours = json.loads(self.listing(self.table)[0])["nftables"][1:] if self.table else []
            return 0, json.dumps({"nftables": [{"metainfo": {}}] + self.foreign + ours}), ""
        if args[:3] == ["systemctl", "show", "--property=LoadState"]:
            return 0, self.units.get(args[-1], "not-found") + "\n", ""
        if args[:2] == [NFT, "-j"] or args[:2] == [NFT, "list"]:
            if self.table is None:
                return 1, "", "Error: No such file or directory; did you mean table 'netreach'?"
            listing, text = self.listing(self.table)
            return 0, listing if args[1] == "-j" else text, ""
        if args[0].endswith("unshare"):
            listing, text = self.listing(self.table_of(data))
            return 0, f"{listing}\n@@\n{text}", ""
        if args[:2] == [NFT, "-f"]:
            with open(self.real(args[2]), encoding="utf-8") as stream:
                self.table = self.table_of(stream.read())
            return 0, "", ""
        if args[:2] in (["systemctl", "enable"], ["systemctl", "reenable"], ["systemctl", "disable"]):
            (self.enabled.discard if args[1] == "disable" else self.enabled.add)(args[2])
        if args[:2] == ["systemctl", "is-enabled"]:
            return (0 if args[-1] in self.enabled else 1), "", ""
        if args[0] == "/bin/sh":
            return self.confirm(args[1])
        return 0, "", ""

    def confirm(self, script: str) -> tuple[int, str, str]:
        """Run the staged confirm script with its paths in the fake root; systemctl is a shell function here."""
        with open(self.real(script), encoding="utf-8") as stream:
            text = re.sub(r'(?<=[\s"])/(etc|run)/', f"{self.root}/\\1/", stream.read())
        stub = ('systemctl() { case "$1" in is-active) case "$3" in *.timer) return 0;; esac; return 1;; '
                'disable) echo "disable $3" >> "$SYSTEMCTL_LOG";; esac; return 0; }\n')
        log = os.path.join(self.root, "systemctl.log")
        done = subprocess.run(["/bin/sh", "-c", stub + text.split("\n", 1)[1]], capture_output=True, text=True,
                              env=dict(os.environ, SYSTEMCTL_LOG=log), check=False)
        if os.path.exists(log):
            with open(log, encoding="utf-8") as stream:
                for line in stream:
                    self.enabled.discard(line.split()[1])
            os.unlink(log)
        return done.returncode, done.stdout, done.stderr


class NatModule(FakeModule):
    def __init__(self, kernel: Kernel, **kwargs) -> None:
        super().__init__(kernel.root, **kwargs)
        self.kernel = kernel

    def run_command(self, args, data=None, **_kwargs):
        args = [str(arg) for arg in args]
        self.commands.append(args)
        return self.kernel.run(args, data)


def run(kernel: Kernel, check: bool = False, state: str = "present", persist: bool = True, timeout: int = 30,
        **changes) -> tuple[dict, NatModule]:
    module = NatModule(kernel, check_mode=check)
    rules = parse_nat({**DECLARED, **changes}) if state == "present" else None
    plan = Plan(module)
    return plan.commit(**plan_nat(plan, rules, persist, timeout)), module


def confirm(kernel: Kernel, result: dict) -> None:
    rc, out, err = kernel.confirm(result["pending_confirm"]["command"].split()[1])
    assert (rc, out.strip()) == (0, "confirmed"), err


def files(root) -> dict:
    """Our files and our staged files, by path relative to the fake root."""
    return {os.path.relpath(path, str(root)): entry for path, entry in snapshot(str(root)).items()
            if "/netreach" in path or "sysctl.d" in path or "systemd/system/netreach" in path}


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
    assert staged == sorted(f"{kind}-{token}{suffix}" for kind, suffix in
                            (("boot", ".nft"), ("confirm", ".sh"), ("pending", ".nft"), ("rollback", ".nft")))
    assert os.stat(tmp_path / "run/netreach/nat").st_mode & 0o777 == 0o700
    assert os.stat(tmp_path / f"run/netreach/nat/confirm-{token}.sh").st_mode & 0o777 == 0o700
    arm = next(c for c in module.commands if c[0] == "systemd-run")
    assert "--on-active=30s" in arm and arm[-1] == (f"{NFT} -f /run/netreach/nat/rollback-{token}.nft && "
                                                    f"touch /run/netreach/nat/rolled-back-{token}")
    assert pending["command"] == f"/bin/sh /run/netreach/nat/confirm-{token}.sh"
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


# --- the neighbours -------------------------------------------------------------------------------------------

SAMPLES = os.path.join(os.path.dirname(__file__), "nft_samples")


def foreign(name: str) -> list[dict]:
    with open(os.path.join(SAMPLES, name), encoding="utf-8") as stream:
        return [item for item in json.load(stream)["nftables"] if "metainfo" not in item]


@pytest.mark.parametrize("check", [True, False])
def test_the_neighbours_are_in_the_result_in_check_mode_too(kernel, check):
    kernel.units["nftables.service"] = "loaded"
    kernel.enabled.add("nftables.service")
    kernel.foreign = foreign("nftables-service-stock.json")
    result, _module = run(kernel, check=check)
    assert result["neighbours"] == {"nftables_service": {"installed": True, "enabled": True, "active": False},
                                    "firewalld": {"active": False}, "dropping_chains": []}


@pytest.mark.parametrize("check", [True, False])
def test_a_foreign_drop_fails_before_any_change_naming_table_and_chain(kernel, tmp_path, check):
    kernel.foreign = foreign("handmade.json")
    before = snapshot(str(tmp_path))
    module = NatModule(kernel, check_mode=check)
    with pytest.raises(Failed) as failure:
        plan_nat(Plan(module), parse_nat(DECLARED), True, 30)
    msg = failure.value.result["msg"]
    assert failure.value.result["field"] == "foreign_drop" and msg.startswith("foreign_drop: ")
    for chain in ("table inet handmade chain forward_filter (hook forward, policy accept, ends in reject)",
                  "table inet handmade chain nat_post (hook postrouting, policy drop)",
                  "table inet handmade chain pre_filter"):
        assert chain in msg
    assert "nothing was changed" in msg and "foreign_drop: ignore" in msg
    assert snapshot(str(tmp_path)) == before and kernel.table is None
    assert [c for c in module.commands if c[:2] != [NFT, "-j"] and c[0] != "systemctl"] == []


def test_foreign_drop_ignore_applies_and_reports_the_chains(kernel):
    kernel.foreign = foreign("docker-forward-drop.json")
    result, _module = run(kernel, foreign_drop="ignore")
    assert result["changed"] and kernel.table is not None
    assert [(c["table"], c["chain"], c["owner"]) for c in result["neighbours"]["dropping_chains"]] == \
        [("ip filter", "FORWARD", "docker")]
    # absent never fails on a neighbour: taking our table back cannot drop anything more.
    confirm(kernel, result)
    assert run(kernel, state="absent")[0]["changed"]


def test_with_nftables_service_installed_its_reload_loads_our_table_again(kernel, tmp_path):
    kernel.units["nftables.service"] = "loaded"
    confirm(kernel, run(kernel)[0])
    dropin = tmp_path / "etc/systemd/system/nftables.service.d/netreach-nat.conf"
    text = dropin.read_text()
    assert "ExecStartPost=-/usr/sbin/nft -f /etc/netreach/nat/netreach.nft" in text
    assert "ExecReload=-/usr/sbin/nft -f /etc/netreach/nat/netreach.nft" in text
    unit = (tmp_path / "etc/systemd/system/netreach-nat.service").read_text()
    assert "After=local-fs.target nftables.service" in unit
    assert not run(kernel)[0]["changed"]
    (tmp_path / "etc/systemd/system/nftables.service.d/admin.conf").write_text("[Service]\n")
    confirm(kernel, run(kernel, state="absent")[0])
    assert not dropin.exists() and (tmp_path / "etc/systemd/system/nftables.service.d/admin.conf").exists()
    os.unlink(tmp_path / "etc/systemd/system/nftables.service.d/admin.conf")
    confirm(kernel, run(kernel)[0])
    confirm(kernel, run(kernel, state="absent")[0])
    assert not (tmp_path / "etc/systemd/system/nftables.service.d").exists()


def test_a_changed_unit_is_reenabled(kernel, tmp_path):
    confirm(kernel, run(kernel)[0])
    unit = tmp_path / "etc/systemd/system/netreach-nat.service"
    unit.write_text(unit.read_text().replace("After=local-fs.target nftables.service", "After=local-fs.target"))
    result, module = run(kernel)
    assert result["changed"] and ["systemctl", "reenable", "netreach-nat.service"] in module.commands
