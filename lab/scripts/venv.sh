#!/usr/bin/env bash
# Create .venv from the pinned requirements; reuse it while the requirements and Python are unchanged.
set -euo pipefail
cd "$(dirname "$0")/../.."

venv=.venv
python=${PYTHON:-python3}
want=$( (cat requirements/test.txt; "${python}" -VV) | sha256sum | cut -c1-16)
if [[ -x "${venv}/bin/python" && "$(cat "${venv}/.inputs-hash" 2>/dev/null)" == "${want}" ]]; then
    exit 0
fi
echo "creating ${venv} (${want})"
rm -rf "${venv}"
"${python}" -m venv "${venv}"
"${venv}/bin/pip" install -q -r requirements/test.txt 2> >(grep -v "^WARNING: Location" >&2)
echo "${want}" >"${venv}/.inputs-hash"
