#!/usr/bin/env bash
# Prepare this machine (Debian 12, root) for the lab: apt packages, then a running docker daemon.
# Idempotent: packages already installed and a daemon already answering are left as they are.
set -euo pipefail

apt_packages=(docker.io debootstrap make git rsync python3-venv ca-certificates)

missing=()
for pkg in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null | grep -q '^install ok installed$' || missing+=("${pkg}")
done
if (( ${#missing[@]} )); then
    echo "installing apt packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
    echo "starting dockerd"
    if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
        systemctl start docker
    else
        # A session of its own: dockerd must outlive the shell (and process group) that started it.
        setsid nohup dockerd >>/var/log/dockerd.log 2>&1 </dev/null &
    fi
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && break
        sleep 1
    done
    docker info >/dev/null 2>&1 || { echo "dockerd did not come up: see /var/log/dockerd.log" >&2; exit 1; }
fi

# Every lab container runs systemd as root of the host's user namespace, and each systemd takes several inotify
# instances: the kernel's default of 128 per user runs out at about 20 containers (systemd then logs "Failed to
# create inotify object: Too many open files" and its boot never finishes). Raise it for the running kernel.
for setting in fs.inotify.max_user_instances=8192 fs.inotify.max_user_watches=1048576; do
    name=${setting%%=*} wanted=${setting#*=}
    if (( $(sysctl -n "${name}") < wanted )); then
        sysctl -q -w "${setting}" || { echo "cannot raise ${name} to ${wanted} (needed by the lab)" >&2; exit 1; }
        echo "raised ${name} to ${wanted}"
    fi
done
