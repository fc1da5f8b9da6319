#!/usr/bin/env bash
# The one way the checkout becomes importable as netreach.tunnels: build the tarball exactly as it would be
# published, and install it into build/collections. ansible-playbook, ansible-doc, ansible-test, pytest and
# Molecule all read the collection from there (ANSIBLE_COLLECTIONS_PATH / PYTHONPATH set by the Makefile).
set -euo pipefail
cd "$(dirname "$0")/../.."

rm -rf build/dist build/collections/ansible_collections/netreach/tunnels
mkdir -p build/dist build/collections
ansible-galaxy collection build --force --output-path build/dist . >/dev/null
tarball=$(ls build/dist/netreach-tunnels-*.tar.gz)
ansible-galaxy collection install --offline --force -p build/collections "${tarball}" >/dev/null
echo "installed ${tarball} into build/collections"
