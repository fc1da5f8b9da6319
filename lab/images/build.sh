#!/usr/bin/env bash
# Build the lab base image for one Debian suite with debootstrap + docker import.
# No registry is reachable, so images come from Debian's archive (the mirror this machine's apt uses).
# The image is labelled with a hash of its inputs; an image whose label matches is reused as it is.
#
# usage: lab/images/build.sh SUITE        (bookworm | trixie)
set -euo pipefail

suite=${1:?usage: build.sh SUITE}
here=$(cd "$(dirname "$0")" && pwd)
image="netreach-lab:${suite}"
cache_dir=/var/cache/netreach-lab/debs-${suite}

packages=$(grep -v '^\s*#' "${here}/packages.txt" | grep -v '^\s*$' | sort | paste -sd, -)
inputs_hash=$(cat "${here}/packages.txt" "${here}/build.sh" "${here}/rootfs-setup.sh" | sha256sum | cut -c1-16)
inputs_hash="${suite}-${inputs_hash}"

current=$(docker image inspect --format '{{ index .Config.Labels "netreach.lab.hash" }}' "${image}" 2>/dev/null || true)
if [[ "${current}" == "${inputs_hash}" ]]; then
    echo "lab image ${image} is current (${inputs_hash})"
    exit 0
fi

# The Debian mirror this machine's apt already uses: the image uses the same one.
mirror=$(python3 "${here}/apt_mirror.py")

echo "building lab image ${image} (${inputs_hash}) from ${mirror}"
start=$(date +%s)
rootfs=$(mktemp -d /var/tmp/netreach-lab-rootfs.XXXXXX)
trap 'rm -rf "${rootfs}"' EXIT
mkdir -p "${cache_dir}"

debootstrap --variant=minbase --cache-dir="${cache_dir}" --include="${packages}" \
    "${suite}" "${rootfs}" "${mirror}" >"/var/tmp/netreach-lab-debootstrap-${suite}.log" 2>&1 || {
    tail -n 30 "/var/tmp/netreach-lab-debootstrap-${suite}.log" >&2
    exit 1
}
bash "${here}/rootfs-setup.sh" "${rootfs}"

tar -C "${rootfs}" -c . | docker import \
    --change 'CMD ["/lib/systemd/systemd"]' \
    --change 'ENV container=docker' \
    --change "LABEL netreach.lab.hash=${inputs_hash}" \
    - "${image}" >/dev/null
echo "built lab image ${image} in $(( $(date +%s) - start )) s"
