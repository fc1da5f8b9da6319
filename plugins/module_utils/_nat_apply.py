# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: applying NatRules to the host. Not a public API.
"""Compare the declared NAT table with the kernel's, report it (check and diff mode), then apply it atomically.

A change to the kernel is armed first: a transient systemd timer restores the previous table unless the
change is confirmed in time. Confirming (by the action plugin, over a fresh connection) disarms the timer and
only then makes the new state the one that boots; an unconfirmed change is never persisted.
"""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import tempfile

from ansible_collections.netreach.tunnels.plugins.module_utils._nat import (
    TABLE_SPEC,
    NatRules,
    normalise_listing,
    render_replace,
    render_table,
)

BOOT_DIR = "/etc/netreach/nat"
BOOT_RULES = f"{BOOT_DIR}/netreach.nft"
UNIT = "netreach-nat.service"
UNIT_PATH = f"/etc/systemd/system/{UNIT}"
SYSCTL_PATH = "/etc/sysctl.d/90-netreach-nat.conf"
# Volatile on purpose: a pending change and its rollback do not survive a reboot, so a reboot boots the
# last confirmed state and nothing can confirm a change that is no longer running.
RUN_DIR = "/run/netreach/nat"
ROLLBACK_UNIT = "netreach-nat-rollback-{token}"
FORWARD_SYSCTLS = ("net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding")


def render_unit(nft: str) -> str:
    return f"""\
# netreach.tunnels nat_rules: restores the last confirmed NAT table at boot, before the network comes up.
[Unit]
Description=netreach gateway NAT and port forwards (last confirmed state)
DefaultDependencies=no
Wants=network-pre.target
Before=network-pre.target shutdown.target
After=local-fs.target
Conflicts=shutdown.target
ConditionPathExists={BOOT_RULES}

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart={nft} -f {BOOT_RULES}

[Install]
WantedBy=sysinit.target
"""


def render_sysctl(enabled: bool) -> str:
    value = 1 if enabled else 0
    return "# netreach.tunnels nat_rules: packet forwarding of the gateway.\n" + "".join(
        f"{name} = {value}\n" for name in FORWARD_SYSCTLS)


class NatHost:
    """The host side of one module run: what the kernel and the boot files hold, and how to change them."""

    def __init__(self, module) -> None:
        self.module = module
        self.nft = module.get_bin_path("nft", required=True)
        self.changed = False
        self.before: list[str] = []
        self.after: list[str] = []

    # --- helpers -------------------------------------------------------------------------------------
    def _run(self, args: list[str], check: bool = True, data: str | None = None) -> tuple[int, str, str]:
        rc, out, err = self.module.run_command(args, data=data)
        if check and rc != 0:
            self.module.fail_json(msg=f"{' '.join(args[:3])} failed: {(err or out).strip()}", rc=rc)
        return rc, out, err

    @staticmethod
    def _read(path: str) -> str | None:
        if not os.path.exists(path):
            return None
        with open(path, encoding="utf-8") as handle:
            return handle.read()

    def _write(self, path: str, content: str, mode: int) -> None:
        directory = os.path.dirname(path)
        os.makedirs(directory, mode=0o755, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".netreach-")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
        os.chmod(tmp, mode)
        self.module.atomic_move(tmp, path, unsafe_writes=False, keep_dest_attrs=False)

    def _temp_rules(self, text: str) -> str:
        fd, path = tempfile.mkstemp(prefix="netreach-nat-", suffix=".nft", dir=self.module.tmpdir)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        return path

    # --- what is there, what should be ------------------------------------------------------------------
    def kernel_table(self) -> tuple[list | None, str]:
        """Our table as the kernel has it: normalised JSON (None when absent) and nft's text listing."""
        rc, out, err = self._run([self.nft, "-j", "list", "table", *TABLE_SPEC.split()], check=False)
        if rc != 0:
            if "No such file or directory" in err:
                return None, ""
            self.module.fail_json(msg=f"nft list table {TABLE_SPEC} failed: {err.strip()}", rc=rc)
        text = self._run([self.nft, "list", "table", *TABLE_SPEC.split()])[1]
        return normalise_listing(out), text

    def preflight(self, replace_text: str) -> tuple[list, str]:
        """Check the rules against this kernel (nft -c), then load them in a throw-away network namespace to
        learn how the kernel lists them: the declared table in the kernel's own terms, nothing applied here."""
        path = self._temp_rules(replace_text)
        try:
            rc, out, err = self._run([self.nft, "-c", "-f", path], check=False)
            if rc != 0:
                self.module.fail_json(msg=f"nft rejected the rendered rules (nothing applied): {err.strip()}",
                                      rules=replace_text)
            unshare = self.module.get_bin_path("unshare", required=True)
            script = f'{self.nft} -f "$1" && {self.nft} -j list table {TABLE_SPEC} && echo @@ && {self.nft} list table {TABLE_SPEC}'
            rc, out, err = self._run([unshare, "--net", "--", "/bin/sh", "-c", script, "sh", path], check=False)
            if rc != 0:
                self.module.fail_json(msg="could not load the rules in a scratch network namespace to compare them "
                                          f"with the kernel (needs root with CAP_SYS_ADMIN): {err.strip()}")
        finally:
            os.unlink(path)
        listing, text = out.split("\n@@\n", 1)
        return normalise_listing(listing), text

    def boot_state(self, replace_text: str | None) -> dict[str, str | None]:
        """What the boot files should hold: our rules and unit when persisted, nothing otherwise."""
        if replace_text is None:
            return {BOOT_RULES: None, UNIT_PATH: None}
        return {BOOT_RULES: replace_text, UNIT_PATH: render_unit(self.nft)}

    def _unit_enabled(self) -> bool:
        return os.path.exists(f"/etc/systemd/system/sysinit.target.wants/{UNIT}")

    # --- deciding ------------------------------------------------------------------------------------
    def plan(self, rules: NatRules | None, persist: bool) -> dict:
        replace_text = render_replace(render_table(rules) if rules else None)
        current, current_text = self.kernel_table()
        if rules is not None:
            desired, desired_text = self.preflight(replace_text)
        else:
            desired, desired_text = None, ""
        boot = self.boot_state(replace_text if rules is not None and persist else None)
        boot_changed = any(self._read(path) != content for path, content in boot.items())
        boot_changed |= self._unit_enabled() != (boot[UNIT_PATH] is not None)
        kernel_changed = current != desired
        if kernel_changed:
            self.before.append(f"# nft list table {TABLE_SPEC}\n{current_text}")
            self.after.append(f"# nft list table {TABLE_SPEC}\n{desired_text}")
        if boot_changed:
            self.before.append(f"# boot state ({BOOT_RULES}, {UNIT}): "
                               f"{'present' if self._read(BOOT_RULES) is not None else 'none'}\n")
            self.after.append(f"# boot state ({BOOT_RULES}, {UNIT}): "
                              f"{'the table above, once confirmed' if boot[BOOT_RULES] else 'none'}\n")
        self.changed |= kernel_changed or boot_changed
        return {"replace_text": replace_text, "kernel_changed": kernel_changed, "boot_changed": boot_changed,
                "boot": boot, "current_text": current_text, "desired_text": desired_text, "current": current}

    def plan_sysctl(self, ip_forward: bool | None, state: str) -> dict[str, str]:
        """Runtime values to set; the sysctl.d file is written or removed alongside."""
        wanted_file = render_sysctl(ip_forward) if state == "present" and ip_forward is not None else None
        current_file = self._read(SYSCTL_PATH)
        runtime = {}
        if wanted_file is not None:
            for name in FORWARD_SYSCTLS:
                path = "/proc/sys/" + name.replace(".", "/")
                value = (self._read(path) or "").strip()
                if value and value != ("1" if ip_forward else "0"):
                    runtime[name] = "1" if ip_forward else "0"
        if current_file != wanted_file or runtime:
            self.changed = True
            self.before.append(f"# {SYSCTL_PATH}\n{current_file or ''}" + "".join(f"# {n} (runtime) != {v}\n" for n, v in runtime.items()))
            self.after.append(f"# {SYSCTL_PATH}\n{wanted_file or ''}" + "".join(f"# {n} (runtime) = {v}\n" for n, v in runtime.items()))
        return {"file": wanted_file, "file_changed": current_file != wanted_file, "runtime": runtime}

    # --- acting --------------------------------------------------------------------------------------
    def apply_sysctl(self, plan: dict) -> None:
        if plan["file_changed"]:
            if plan["file"] is None:
                os.unlink(SYSCTL_PATH)
            else:
                self._write(SYSCTL_PATH, plan["file"], 0o644)
        for name, value in plan["runtime"].items():
            self._run(["sysctl", "-q", "-w", f"{name}={value}"])

    def _confirm_script(self, token: str, boot: dict[str, str | None], armed: bool) -> str:
        """Shell steps that make the change the boot state: run by the action plugin over a fresh connection
        (armed: only while the rollback timer is still waiting) or right away when there is no confirm step."""
        timer = ROLLBACK_UNIT.format(token=token) + ".timer"
        lines = ["#!/bin/sh", f"# netreach.tunnels nat_rules: confirm NAT change {token}.", "set -eu"]
        if armed:
            lines += [f"if [ -e {RUN_DIR}/rolled-back-{token} ]; then echo rolled-back; exit 4; fi",
                      f"systemctl is-active --quiet {timer} || {{ echo not-armed; exit 3; }}",
                      f"systemctl stop {timer}",
                      # The timer may have fired just now: let its restore finish before looking for its record.
                      f"while systemctl is-active --quiet {ROLLBACK_UNIT.format(token=token)}.service; do sleep 0.2; done",
                      f"if [ -e {RUN_DIR}/rolled-back-{token} ]; then echo rolled-back; exit 4; fi"]
        if boot[BOOT_RULES] is not None:
            lines += [f"mkdir -p {BOOT_DIR}",
                      f"cp {RUN_DIR}/boot-{token}.nft {BOOT_DIR}/.netreach.nft.new",
                      f"chmod 0644 {BOOT_DIR}/.netreach.nft.new",
                      f"mv -f {BOOT_DIR}/.netreach.nft.new {BOOT_RULES}",
                      f"cp {RUN_DIR}/unit-{token} {UNIT_PATH}.new",
                      f"chmod 0644 {UNIT_PATH}.new",
                      f"mv -f {UNIT_PATH}.new {UNIT_PATH}",
                      "systemctl daemon-reload",
                      f"systemctl enable --quiet {UNIT}"]
        else:
            lines += [f"if [ -e {UNIT_PATH} ]; then systemctl disable --quiet {UNIT}; fi",
                      f"rm -f {BOOT_RULES} {UNIT_PATH}",
                      f"rmdir {BOOT_DIR} 2>/dev/null || true",
                      "systemctl daemon-reload"]
        lines += [f"rm -f {RUN_DIR}/*-{token} {RUN_DIR}/*-{token}.*",
                  f"rmdir {RUN_DIR} /run/netreach 2>/dev/null || true", "echo confirmed"]
        return "\n".join(lines) + "\n"

    def apply(self, plan: dict, rollback_timeout: int) -> dict | None:
        """Change the kernel and/or the boot state as planned. Returns what the action plugin needs to confirm
        an armed change, or None when nothing waits for confirmation."""
        if not (plan["kernel_changed"] or plan["boot_changed"]):
            return None
        token = secrets.token_hex(6)
        self._supersede_pending()
        os.makedirs(RUN_DIR, mode=0o700, exist_ok=True)
        if plan["boot"][BOOT_RULES] is not None:
            self._write(f"{RUN_DIR}/boot-{token}.nft", plan["boot"][BOOT_RULES], 0o600)
            self._write(f"{RUN_DIR}/unit-{token}", plan["boot"][UNIT_PATH], 0o600)
        armed = plan["kernel_changed"] and rollback_timeout > 0
        script = f"{RUN_DIR}/confirm-{token}.sh"
        self._write(script, self._confirm_script(token, plan["boot"], armed), 0o700)
        if plan["kernel_changed"]:
            pending = f"{RUN_DIR}/pending-{token}.nft"
            self._write(pending, plan["replace_text"], 0o600)
            if armed:
                self._arm(token, plan, rollback_timeout)
            rc, out, err = self._run([self.nft, "-f", pending], check=False)
            if rc != 0:
                if armed:
                    self._run(["systemctl", "stop", ROLLBACK_UNIT.format(token=token) + ".timer"], check=False)
                self.module.fail_json(msg=f"nft -f failed, the kernel kept its previous rules: {err.strip()}")
        if armed:
            return {"token": token, "timeout": rollback_timeout, "command": f"/bin/sh {script}",
                    "timer": ROLLBACK_UNIT.format(token=token) + ".timer",
                    "marker": f"{RUN_DIR}/rolled-back-{token}"}
        rc, out, err = self._run(["/bin/sh", script], check=False)
        if rc != 0 or "confirmed" not in out:
            self.module.fail_json(msg=f"writing the boot state failed: {(err or out).strip()}")
        return None

    def _supersede_pending(self) -> None:
        """A new change replaces any earlier one still waiting for confirmation (or rolled back): its timer
        would otherwise roll back on top of this change, and its files would outlive it."""
        if shutil.which("systemctl") and os.path.isdir("/run/systemd/system"):
            self._run(["systemctl", "stop", ROLLBACK_UNIT.format(token="*") + ".timer"], check=False)
        if os.path.isdir(RUN_DIR):
            for entry in os.listdir(RUN_DIR):
                os.unlink(os.path.join(RUN_DIR, entry))

    def _arm(self, token: str, plan: dict, timeout: int) -> None:
        """A transient timer of systemd that puts the previous table back: it runs on the host, whatever
        happens to the connection that applied the change."""
        if not shutil.which("systemd-run") or not os.path.isdir("/run/systemd/system"):
            self.module.fail_json(msg="rollback_timeout needs systemd (systemd-run) on the host; "
                                      "set rollback_timeout: 0 to apply without the confirm step")
        previous = f"{RUN_DIR}/rollback-{token}.nft"
        self._write(previous, render_replace(plan["current_text"] or None), 0o600)
        marker = f"{RUN_DIR}/rolled-back-{token}"
        restore = f"{self.nft} -f {shlex.quote(previous)} && touch {shlex.quote(marker)}"
        self._run(["systemd-run", "--quiet", "--collect", f"--unit={ROLLBACK_UNIT.format(token=token)}",
                   f"--on-active={timeout}s", "--timer-property=AccuracySec=100ms",
                   f"--description=netreach NAT rollback of change {token}", "/bin/sh", "-c", restore])

    def result(self, **extra) -> dict:
        result = dict(changed=self.changed, **extra)
        if self.module._diff:
            result["diff"] = {"before": "".join(self.before), "after": "".join(self.after)}
        return result
