#!/usr/bin/env bash
# Run the test stages of `make test` (all of them, or the ones named) and report each with its wall time.
# Every stage runs even when an earlier one failed; the exit code is non-zero when any stage failed.
#
# usage: lab/scripts/test.sh [unit|argspecs|lint|sanity|molecule ...]
set -uo pipefail
cd "$(dirname "$0")/../.."
export NO_COLOR=1 ANSIBLE_NOCOLOR=1 PY_COLORS=0
root=$(pwd)
installed=${NETREACH_COLLECTIONS:?run through make}/ansible_collections/netreach/tunnels
logs=${root}/build/test-logs
mkdir -p "${logs}"

stage_unit() {
    # pytest exits 5 when it collected nothing: that is "no unit tests yet", not a failure; every other
    # non-zero code is a real failure and is passed on.
    pytest -p no:cacheprovider -q tests/unit
    local rc=$?
    if (( rc == 5 )); then echo "no unit tests collected"; return 0; fi
    return "${rc}"
}

stage_argspecs() {
    python3 tests/tools/check_argspecs.py roles
}

stage_lint() {
    ansible-lint --profile production --offline
}

stage_sanity() {
    # ansible-test fetches a pip bootstrap script from a server this machine cannot reach; give it ours.
    local pip_version
    pip_version=$(python3 -c 'import ansible_test._internal.python_requirements as r, re; print(re.search(r"pip=.([0-9.]+).", open(r.__file__).read()).group(1))')
    mkdir -p ~/.ansible/test/cache
    cp lab/scripts/get_pip_offline.py ~/.ansible/test/cache/get_pip_${pip_version//./_}.py
    (cd "${installed}" && ansible-test sanity --venv --python "$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')" --color no) \
        > >(grep -v -e '^WARNING: Location' -e '^Looking in' -e '^ *Downloading' -e '━' >&1)
}

stage_molecule() {
    local scenarios
    scenarios=$(find molecule -mindepth 2 -maxdepth 2 -name molecule.yml -not -path 'molecule/_*' -not -path 'molecule/demo/*' | xargs -n1 dirname | xargs -n1 basename | sort)
    echo "scenarios: ${scenarios//$'\n'/ }"
    # Two at a time: the machine has two cores, and a scenario mostly waits on containers.
    printf '%s\n' ${scenarios} | xargs -P "${MOLECULE_JOBS:-2}" -I{} bash -c '
        start=$(date +%s)
        if molecule test -s "$1" >"$2/molecule-$1.log" 2>&1; then
            echo "  scenario $1: passed in $(( $(date +%s) - start )) s"
        else
            echo "  scenario $1: FAILED in $(( $(date +%s) - start )) s; last lines of $2/molecule-$1.log:"
            tail -n 60 "$2/molecule-$1.log" | sed "s/^/    /"
            exit 1
        fi' _ {} "${logs}"
}

stages=("$@")
(( ${#stages[@]} )) || stages=(unit argspecs lint sanity molecule)
passed=0 failed=0 failed_names=()
for stage in "${stages[@]}"; do
    echo "=== ${stage}"
    start=$(date +%s)
    if "stage_${stage}"; then
        passed=$((passed + 1))
        echo "=== ${stage}: passed in $(( $(date +%s) - start )) s"
    else
        failed=$((failed + 1)); failed_names+=("${stage}")
        echo "=== ${stage}: FAILED in $(( $(date +%s) - start )) s"
    fi
done
(( failed )) && echo "failed stages: ${failed_names[*]}"
echo "stages: ${passed} passed, ${failed} failed"
(( failed == 0 ))
