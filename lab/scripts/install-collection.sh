#!/usr/bin/env bash
# The one way the checkout becomes importable as netreach.tunnels: build the tarball exactly as it would be
# published, and install it into $NETREACH_COLLECTIONS (set by the Makefile, outside the checkout). ansible-playbook, ansible-doc, ansible-test, pytest and
# Molecule all read the collection from there (ANSIBLE_COLLECTIONS_PATH / PYTHONPATH set by the Makefile).
set -euo pipefail
cd "$(dirname "$0")/../.."

collections=${NETREACH_COLLECTIONS:?run through make}
rm -rf build/dist "${collections}/ansible_collections/netreach/tunnels"
mkdir -p build/dist "${collections}"
ansible-galaxy collection build --force --output-path build/dist . >/dev/null
tarball=$(ls build/dist/netreach-tunnels-*.tar.gz)
PYTHONPATH= ansible-galaxy collection install --offline --force -p "${collections}" "${tarball}" >/dev/null
echo "installed ${tarball} into ${collections}"
