#!/usr/bin/env bash
# `make demo`: bring up the embedded lab, run the main job against it, and print what it proved.
# The lab stays up for you to explore (docker exec -it demo-bookworm bash); `make demo-down` removes it.
set -euo pipefail
cd "$(dirname "$0")/../.."
export MOLECULE_NO_LOG=false NO_COLOR=1 ANSIBLE_NOCOLOR=1
log=build/demo.log
mkdir -p build
: >"${log}"

step() {
    local title=$1; shift
    printf '%-58s' "${title}"
    if "$@" >>"${log}" 2>&1; then echo "ok"; else echo "FAILED (see ${log})"; exit 1; fi
}

# Molecule remembers the instances it created. After `make lab-down`, a machine restart or a killed run that
# memory can claim containers docker no longer runs, and `molecule create` would skip them: start from what
# docker has. A complete, running lab is reused as it is.
platforms=$(grep -c '^  - name: ' molecule/demo/molecule.yml)
running=$(docker ps -q --filter label=netreach.lab.scenario=demo --filter status=running | wc -l)
if [[ "${running}" -ne "${platforms}" ]]; then
    step "removing what an earlier run left behind" molecule destroy -s demo
fi
step "bringing up the lab containers and networks" molecule create -s demo
step "running the main job (converge)" molecule converge -s demo
step "rerunning it: must change nothing (idempotence)" molecule idempotence -s demo
step "verifying with real clients in the lab" molecule verify -s demo

echo
echo "what the lab proved:"
python3 lab/scripts/demo_summary.py "${log}"
echo
echo "fleet status (playbooks/status.yml):"
sed -n '/^status table:/,/^HTML report:/p' "${log}" | sed '1d; s/^/  /'
echo
echo "lab containers:"
docker ps --filter label=netreach.lab.scenario=demo --format '  {{.Names}}\t{{.Image}}\t{{.Status}}'
echo
echo "full log: ${log};  remove the lab with: make demo-down"
