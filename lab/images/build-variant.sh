#!/usr/bin/env bash
# Build a lab image with neighbours: the base image of SUITE plus the packages of packages-VARIANT.txt, in an
# image of its own (netreach-lab:SUITE-VARIANT), so the heavy neighbours (firewalld, ufw, Squid, Prometheus,
# Firefox ESR) stay out of the scenarios that do not need them. The base image's tree is exported, apt installs
# the packages in a chroot (apt orders their configuration; debootstrap's --include leaves some half-configured)
# and the result is imported. Every service the packages bring is installed disabled: a scenario starts what it
# proves. Labelled with a hash of its inputs (the base image's hash among them) and reused while that matches.
#
# usage: lab/images/build-variant.sh SUITE VARIANT        (e.g. bookworm neighbours)
set -euo pipefail

suite=${1:?usage: build-variant.sh SUITE VARIANT}
variant=${2:?usage: build-variant.sh SUITE VARIANT}
here=$(cd "$(dirname "$0")" && pwd)
base="netreach-lab:${suite}"
image="netreach-lab:${suite}-${variant}"
list="${here}/packages-${variant}.txt"
log="/var/tmp/netreach-lab-${suite}-${variant}.log"

bash "${here}/build.sh" "${suite}" >/dev/null
base_hash=$(docker image inspect --format '{{ index .Config.Labels "netreach.lab.hash" }}' "${base}")
inputs_hash=$(printf '%s\n' "${base_hash}" | cat - "${list}" "$0" | sha256sum | cut -c1-16)
inputs_hash="${suite}-${variant}-${inputs_hash}"
current=$(docker image inspect --format '{{ index .Config.Labels "netreach.lab.hash" }}' "${image}" 2>/dev/null || true)
if [[ "${current}" == "${inputs_hash}" ]]; then
    echo "lab image ${image} is current (${inputs_hash})"
    exit 0
fi

echo "building lab image ${image} (${inputs_hash}) from ${base}"
start=$(date +%s)
packages=$(grep -v '^\s*#' "${list}" | grep -v '^\s*$' | sort -u | paste -sd' ' -)
rootfs=$(mktemp -d /var/tmp/netreach-lab-rootfs.XXXXXX)
cleanup() { umount "${rootfs}/proc" 2>/dev/null || true; rm -rf "${rootfs}"; }
trap cleanup EXIT
container=$(docker create "${base}")
docker export "${container}" | tar -C "${rootfs}" -x
docker rm "${container}" >/dev/null

cp /etc/resolv.conf "${rootfs}/etc/resolv.conf"
printf '#!/bin/sh\nexit 101\n' >"${rootfs}/usr/sbin/policy-rc.d"
chmod 0755 "${rootfs}/usr/sbin/policy-rc.d"
mount -t proc proc "${rootfs}/proc"
chroot "${rootfs}" sh -c "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends ${packages}" >"${log}" 2>&1 || { tail -n 30 "${log}" >&2; exit 1; }
for unit in squid firewalld ufw prometheus prometheus-node-exporter prometheus-node-exporter-apt.timer cntlm \
    nftables tinyproxy; do
    chroot "${rootfs}" systemctl disable "${unit}" >/dev/null 2>&1 || true
done
chroot "${rootfs}" apt-get clean
umount "${rootfs}/proc"
rm -rf "${rootfs}/usr/sbin/policy-rc.d" "${rootfs}"/var/lib/apt/lists/* "${rootfs}"/usr/share/doc/* "${rootfs}"/usr/share/man/*
: >"${rootfs}/etc/resolv.conf"

tar -C "${rootfs}" -c . | docker import \
    --change 'CMD ["/lib/systemd/systemd"]' \
    --change 'ENV container=docker' \
    --change "LABEL netreach.lab.hash=${inputs_hash}" \
    - "${image}" >/dev/null
echo "built lab image ${image} in $(( $(date +%s) - start )) s"
