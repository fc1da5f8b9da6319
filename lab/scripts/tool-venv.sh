#!/usr/bin/env bash
# A cached venv for one tool set of `make test` / `make docs` that cannot share .venv (another ansible-core,
# or pins that clash with the test tools): requirements/NAME.txt installed into
# ~/.cache/netreach-tunnels/venvs/NAME-HASH, HASH over that file and the Python version, so a machine that
# already has it reuses it. Prints the venv's directory on stdout (progress goes to stderr).
#
# usage: lab/scripts/tool-venv.sh NAME            create (if needed) and print the venv of requirements/NAME.txt
#        lab/scripts/tool-venv.sh --freeze NAME   resolve requirements/NAME.in afresh and rewrite NAME.txt
set -euo pipefail
cd "$(dirname "$0")/../.."

python=${PYTHON:-python3}
cache=${NETREACH_CACHE:-${HOME}/.cache/netreach-tunnels}/venvs
quiet_pip() { "$@" 2> >(grep -v -e "^WARNING: Location" >&2); }

if [[ ${1:-} == --freeze ]]; then
    name=${2:?usage: tool-venv.sh --freeze NAME}
    scratch=$(mktemp -d)
    trap 'rm -rf "${scratch}"' EXIT
    "${python}" -m venv "${scratch}/venv"
    quiet_pip "${scratch}/venv/bin/pip" install -q -r "requirements/${name}.in" >&2
    "${scratch}/venv/bin/pip" freeze --exclude-editable >"requirements/${name}.txt"
    echo "requirements/${name}.txt: $(wc -l <"requirements/${name}.txt") pins" >&2
    exit 0
fi

name=${1:?usage: tool-venv.sh NAME}
requirements=requirements/${name}.txt
[[ -f ${requirements} ]] || { echo "no ${requirements}" >&2; exit 2; }
hash=$( (cat "${requirements}"; "${python}" -VV) | sha256sum | cut -c1-16)
venv=${cache}/${name}-${hash}
if [[ ! -x ${venv}/bin/python || ! -f ${venv}/.complete ]]; then
    echo "creating ${venv}" >&2
    rm -rf "${venv}"
    mkdir -p "${cache}"
    "${python}" -m venv "${venv}"
    quiet_pip "${venv}/bin/pip" install -q -r "${requirements}" >&2
    touch "${venv}/.complete"
fi
echo "${venv}"
