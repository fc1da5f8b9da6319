#!/usr/bin/env bash
# Run the test stages of `make test` (all of them, or the ones named) and report each with its wall time.
# Every stage runs even when an earlier one failed; the exit code is non-zero when any stage failed.
#
# usage: lab/scripts/test.sh [unit|argspecs|lint|sanity|changelog|docs|promrules|importer|matrix|controller-2.16|molecule ...]
#
# The ansible-core matrix: .venv holds 2.19 (unit, sanity, molecule); `matrix` runs the unit tests and sanity
# again on 2.16, 2.17 and 2.18, and `controller-2.16` runs the smoke scenario with a 2.16 controller, each from
# a cached venv of requirements/core-<version>.txt (lab/scripts/tool-venv.sh).
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
    # Runs the ansible-test first on PATH: .venv's, or a matrix venv's.
    local pip_version
    pip_version=$(python3 -c 'import ansible_test._internal.python_requirements as r, re; print(re.search(r"pip=.([0-9.]+).", open(r.__file__).read()).group(1))')
    mkdir -p ~/.ansible/test/cache
    cp lab/scripts/get_pip_offline.py ~/.ansible/test/cache/get_pip_${pip_version//./_}.py
    (cd "${installed}" && ansible-test sanity --venv --python "$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')" --color no) \
        > >(grep -v -e '^WARNING: Location' -e '^Looking in' -e '^ *Downloading' -e '━' >&1)
}

stage_changelog() {
    # The fragments and changelog.yaml are valid, and CHANGELOG.md is what they generate (`make changelog`).
    antsibull-changelog lint || return 1
    antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml || return 1
    local scratch rc=0
    scratch=$(mktemp -d)
    cp -r changelogs galaxy.yml CHANGELOG.md "${scratch}/"
    (cd "${scratch}" && antsibull-changelog generate --is-collection) || rc=1
    if ! diff -u CHANGELOG.md "${scratch}/CHANGELOG.md"; then
        echo "CHANGELOG.md is not what changelogs/changelog.yaml generates: run make changelog"; rc=1
    fi
    rm -rf "${scratch}"
    return "${rc}"
}

stage_docs() {
    # antsibull-docs lint, then the Sphinx build with warnings as errors (the same as `make docs`).
    bash lab/scripts/docs.sh
}

stage_promrules() {
    # The example alert rules the collection ships (extras/prometheus/), with Debian's promtool from the
    # neighbours lab image (a host install of Debian's prometheus package would start a server on the host):
    # `promtool check rules`, then the rule tests of tests/prometheus/.
    local image=netreach-lab:bookworm-neighbours
    docker image inspect "${image}" >/dev/null 2>&1 || { echo "promrules: ${image} is missing: run make images"; return 1; }
    docker run --rm --network none -v "${root}:/src:ro" -w /src --entrypoint /bin/sh "${image}" -c \
        'promtool check rules extras/prometheus/*.rules.yml && promtool test rules tests/prometheus/*.test.yml'
}

stage_importer() {
    # Galaxy's importer (the checks Galaxy runs on upload, ansible-lint included) on the tarball as published:
    # it must finish with no error and no warning line.
    local venv tarball out=build/importer
    venv=$(bash lab/scripts/tool-venv.sh importer) || return 1
    rm -rf "${out}" && mkdir -p "${out}"
    ansible-galaxy collection build --force --output-path "${out}" . >/dev/null || return 1
    tarball=$(ls "${out}"/netreach-tunnels-*.tar.gz)
    (cd "${out}" && GALAXY_IMPORTER_CONFIG="${root}/lab/scripts/galaxy-importer.cfg" PATH="${venv}/bin:${PATH}" \
        PYTHONPATH= ANSIBLE_COLLECTIONS_PATH= "${venv}/bin/python" -m galaxy_importer.main "$(basename "${tarball}")") \
        >"${out}/importer.log" 2>&1
    local rc=$?
    grep -v -e '^Loading ' -e '^$' "${out}/importer.log"
    local complaints
    complaints=$(grep -c -E '^(WARNING|ERROR|CRITICAL)' "${out}/importer.log")
    echo "importer: $(grep -c '^Loading ' "${out}/importer.log") content items loaded, ${complaints} warnings or errors"
    (( rc == 0 && complaints == 0 )) && grep -q '^Importer processing completed successfully' "${out}/importer.log"
}

stage_ee() {
    # The execution environment for AWX/AAP: `ansible-builder create` writes the build context (the image
    # itself needs a registry for its base). The context must carry the collection as published, its Python
    # and system dependencies and the step that installs the collection.
    local venv context=build/ee-context
    venv=$(bash lab/scripts/tool-venv.sh ee) || return 1
    rm -rf "${context}" ee/netreach-tunnels.tar.gz
    ansible-galaxy collection build --force --output-path build/ee-dist . >/dev/null || return 1
    cp build/ee-dist/netreach-tunnels-*.tar.gz ee/netreach-tunnels.tar.gz
    "${venv}/bin/ansible-builder" create -f execution-environment.yml --context "${context}" --output-filename Containerfile
    local rc=$?
    rm -f ee/netreach-tunnels.tar.gz
    (( rc == 0 )) || return 1
    local missing=0 expectation
    for expectation in "Containerfile:ansible-galaxy collection install" "Containerfile:EE_BASE_IMAGE=\"localhost/netreach-ee-base:latest\"" \
        "_build/requirements.txt:paramiko" "_build/bindep.txt:openssh-client" "_build/requirements.yml:ee/netreach-tunnels.tar.gz"; do
        grep -rqF -- "${expectation#*:}" "${context}/${expectation%%:*}" \
            || { echo "ee: ${context}/${expectation%%:*} lacks '${expectation#*:}'"; missing=1; }
    done
    [[ -f ${context}/_build/ee/netreach-tunnels.tar.gz ]] || { echo "ee: the collection tarball is not in the context"; missing=1; }
    (( missing == 0 )) && echo "ee: build context in ${context} ($(find "${context}" -type f | wc -l) files)"
}

matrix_versions=(2.16 2.17 2.18)

stage_matrix() {
    # Unit tests and sanity on each older ansible-core; 2.19 is .venv's (the unit and sanity stages).
    local version venv core rc=0 start
    for version in "${matrix_versions[@]}"; do
        venv=$(bash lab/scripts/tool-venv.sh "core-${version}") || { rc=1; continue; }
        core=$("${venv}/bin/python" -c 'import ansible.release; print(ansible.release.__version__)')
        for part in unit sanity; do
            start=$(date +%s)
            if PATH="${venv}/bin:${PATH}" "stage_${part}" >"${logs}/matrix-${version}-${part}.log" 2>&1; then
                echo "  ansible-core ${version} ${part}: passed in $(( $(date +%s) - start )) s (ansible-core ${core})"
            else
                rc=1
                echo "  ansible-core ${version} ${part}: FAILED in $(( $(date +%s) - start )) s; last lines of ${logs}/matrix-${version}-${part}.log:"
                tail -n 40 "${logs}/matrix-${version}-${part}.log" | sed "s/^/    /"
            fi
        done
    done
    return "${rc}"
}

stage_controller-2.16() {
    # One Molecule scenario with an ansible-core 2.16 controller: molecule, ansible-playbook, community.docker
    # (from the ansible 9 package) and testinfra all from the 2.16 venv.
    local venv
    venv=$(bash lab/scripts/tool-venv.sh core-2.16) || return 1
    echo "  controller: ansible-core $("${venv}/bin/python" -c 'import ansible.release; print(ansible.release.__version__)'), molecule from ${venv}"
    if PATH="${venv}/bin:${PATH}" molecule test -s smoke >"${logs}/controller-2.16-smoke.log" 2>&1; then
        grep -E '^(PLAY RECAP|.* (PASSED|FAILED))' "${logs}/controller-2.16-smoke.log" | sed 's/^/  /' | tail -n 20
    else
        echo "  smoke on ansible-core 2.16 FAILED; last lines of ${logs}/controller-2.16-smoke.log:"
        tail -n 60 "${logs}/controller-2.16-smoke.log" | sed 's/^/    /'
        return 1
    fi
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
            echo "  scenario $1: FAILED in $(( $(date +%s) - start )) s; what failed (pytest and Ansible), then the last lines of $2/molecule-$1.log:"
            sed "s/\x1b\[[0-9;]*m//g" "$2/molecule-$1.log" \
                | grep -E -e "(FAILED|ERROR) [^ ]+\.py::" -e "^[^a-z]*E   " -e "fatal: \[|FAILED! =>" \
                | head -n 60 | sed "s/^/    ! /"
            tail -n 60 "$2/molecule-$1.log" | sed "s/^/    /"
            exit 1
        fi' _ {} "${logs}"
}

stages=("$@")
(( ${#stages[@]} )) || stages=(unit argspecs lint sanity changelog docs promrules importer ee matrix controller-2.16 molecule)
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
