#!/usr/bin/env bash
# Make a debootstrapped root file system boot cleanly as a systemd container of the lab.
# usage: rootfs-setup.sh ROOTFS
set -euo pipefail
root=${1:?usage: rootfs-setup.sh ROOTFS}

in_root() { chroot "${root}" "$@"; }

# Every container must get its own identity: no machine-id and no SSH host keys baked in.
: >"${root}/etc/machine-id"
rm -f "${root}"/etc/ssh/ssh_host_*_key "${root}"/etc/ssh/ssh_host_*_key.pub
cat >"${root}/etc/systemd/system/lab-ssh-host-keys.service" <<'UNIT'
[Unit]
Description=Generate this container's own SSH host keys
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
UNIT
in_root systemctl enable lab-ssh-host-keys.service >/dev/null 2>&1

# Units that cannot work in a container (no consoles, no kernel modules, read-only /sys parts).
for unit in getty@tty1.service console-getty.service systemd-remount-fs.service \
    systemd-modules-load.service sys-kernel-config.mount sys-kernel-debug.mount \
    sys-kernel-tracing.mount systemd-firstboot.service systemd-udevd.service \
    systemd-udev-trigger.service systemd-sysctl.service; do
    ln -sf /dev/null "${root}/etc/systemd/system/${unit}"
done

# Lab daemons start only in the scenarios that ask for them.
in_root systemctl disable tinyproxy.service >/dev/null 2>&1 || true

# A small, quiet journal and apt that never asks.
mkdir -p "${root}/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\nRuntimeMaxUse=32M\n' >"${root}/etc/systemd/journald.conf.d/lab.conf"
printf 'APT::Install-Recommends "false";\n' >"${root}/etc/apt/apt.conf.d/90lab"
in_root apt-get clean
rm -rf "${root}"/var/lib/apt/lists/* "${root}"/usr/share/doc/* "${root}"/usr/share/man/*
