#!/usr/bin/env bash
# `make docs` and the docs stage of `make test`: lint the collection's docs, then build the HTML site into
# build/docs/html as Ansible's own collection docs are built: antsibull-docs writes the pages of every module,
# filter and role and the guides of docs/docsite/, Sphinx renders them with docs/site/conf.py. Any warning of
# either tool fails the build. Needs no `make collection`: it builds its own copy.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
venv=$(bash lab/scripts/tool-venv.sh docs)
export PATH="${venv}/bin:${PATH}" NO_COLOR=1 ANSIBLE_NOCOLOR=1

# The docs are those of the collection as published: the checkout built into a tarball (build_ignore applies)
# and unpacked as ansible_collections/netreach/tunnels in a scratch tree, where ansible-doc finds it. (Linting
# the checkout itself makes antsibull-docs copy the lab, the venv link and build/ along: 20 times slower.)
scratch=$(mktemp -d)
trap 'rm -rf "${scratch}"' EXIT
collection=${scratch}/ansible_collections/netreach/tunnels
mkdir -p "${collection}"
ansible-galaxy collection build --force --output-path "${scratch}" . >/dev/null
tar -xzf "${scratch}"/netreach-tunnels-*.tar.gz -C "${collection}"
export ANSIBLE_COLLECTIONS_PATH="${scratch}" PYTHONPATH=

echo "antsibull-docs lint-collection-docs --plugin-docs"
antsibull-docs lint-collection-docs --plugin-docs "${collection}"

src=build/docs/rst
rm -rf "${src}" build/docs/html build/docs/doctrees
mkdir -p "${src}"
chmod og-w "${src}"  # antsibull-docs wants its directory writable by itself only
antsibull-docs --config-file docs/site/antsibull-docs.cfg collection --use-current --fail-on-error \
    --dest-dir "${src}" netreach.tunnels
cp docs/site/index.rst docs/site/ansible_references.rst "${src}/"

# The release notes page: CHANGELOG.md's content, rendered by antsibull-changelog as reStructuredText.
cp -r changelogs galaxy.yml "${scratch}/"
sed -i 's/^- file: CHANGELOG.md$/- file: CHANGELOG.rst/; s/^  format: md$/  format: rst/' "${scratch}/changelogs/config.yaml"
(cd "${scratch}" && antsibull-changelog generate --is-collection)
cp "${scratch}/CHANGELOG.rst" "${src}/release_notes.rst"

python3 lab/scripts/docs_topology.py . "${src}/collections/netreach/tunnels/docsite"

sphinx-build -q -W --keep-going -b html -c docs/site -d build/docs/doctrees "${src}" build/docs/html
echo "docs site: ${root}/build/docs/html/index.html ($(find build/docs/html -name '*.html' | wc -l) pages)"
