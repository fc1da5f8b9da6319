# The two commands of the README: `make demo` and `make test`. Everything they need is set up here,
# on a fresh Debian 12 machine as root: apt packages, dockerd, .venv and the lab images (all cached).
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := $(CURDIR)/.venv
# Outside the checkout: ansible-test lists files through git, and would see an install under the checkout
# as ignored files and test nothing.
COLLECTIONS := $(HOME)/.cache/netreach-tunnels/$(shell echo $(CURDIR) | sha256sum | cut -c1-12)/collections
export NETREACH_COLLECTIONS := $(COLLECTIONS)
INSTALLED := $(COLLECTIONS)/ansible_collections/netreach/tunnels
LAB_SUITES := bookworm trixie
# Images with the neighbours a feature is proven beside (lab/images/packages-VARIANT.txt), as SUITE:VARIANT.
LAB_VARIANTS := bookworm:neighbours

export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export PYTHONPATH := $(COLLECTIONS)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: help setup host venv tool-venvs images collection unit argspecs lint sanity changelog-lint docs-test promrules importer ee matrix \
	controller-2.16 molecule scenario test docs changelog demo demo-down lab-down bench clean

help:
	@echo "make test       set up everything on this machine, then run every test"
	@echo "make demo       set up everything, bring up the lab and run the main job against it"
	@echo "make demo-down  remove the demo lab;  make lab-down  remove every lab container and network"
	@echo "make docs       build the docs site into build/docs/html (open build/docs/html/index.html)"
	@echo "make changelog  release the fragments into changelogs/changelog.yaml and CHANGELOG.md (galaxy.yml's version)"
	@echo "make bench      run the benchmarks and update docs/benchmarks.md (takes most of an hour)"

setup: host venv images

host:
	@bash lab/scripts/host-setup.sh

venv: host
	@bash lab/scripts/venv.sh

# The tool sets that cannot share .venv: the docs site, Galaxy's importer, ansible-core 2.16/2.17/2.18.
tool-venvs: host
	@for name in docs importer ee core-2.16 core-2.17 core-2.18; do bash lab/scripts/tool-venv.sh $$name >/dev/null || exit 1; done

images: host
	@for suite in $(LAB_SUITES); do bash lab/images/build.sh $$suite || exit 1; done
	@for variant in $(LAB_VARIANTS); do bash lab/images/build-variant.sh $${variant%%:*} $${variant#*:} || exit 1; done

collection: venv
	@bash lab/scripts/install-collection.sh

unit: collection
	@bash lab/scripts/test.sh unit

argspecs: collection
	@bash lab/scripts/test.sh argspecs

lint: collection
	@bash lab/scripts/test.sh lint

sanity: collection
	@bash lab/scripts/test.sh sanity

changelog-lint: venv
	@bash lab/scripts/test.sh changelog

docs-test: host
	@bash lab/scripts/test.sh docs

# The example Prometheus alert rules (extras/prometheus/) through promtool check and test, in the lab image.
promrules: images
	@bash lab/scripts/test.sh promrules

importer: venv
	@bash lab/scripts/test.sh importer

# The execution environment's build context (ansible-builder create), as the `ee` stage checks it.
ee: venv
	@bash lab/scripts/test.sh ee

matrix: collection tool-venvs
	@bash lab/scripts/test.sh matrix

controller-2.16: setup collection tool-venvs
	@bash lab/scripts/test.sh controller-2.16

molecule: setup collection
	@bash lab/scripts/test.sh molecule

# One scenario, for development: make scenario S=tunnels (ARGS=converge to run one molecule step instead).
scenario: setup collection
	@molecule $(or $(ARGS),test) -s $(S)

test: setup tool-venvs collection
	@bash lab/scripts/test.sh

# The docs site: antsibull-docs pages for every module, filter and role, the guides of docs/site/, Sphinx HTML.
docs: host
	@bash lab/scripts/docs.sh

# Release the changelog fragments as galaxy.yml's version (again, if it is already released: later fragments
# join it), then regenerate CHANGELOG.md. Needs the installed collection to list new modules and plugins.
changelog: collection
	@PATH=$$(bash lab/scripts/tool-venv.sh docs)/bin:$$PATH antsibull-changelog release --update-existing --reload-plugins

demo: setup collection
	@bash lab/scripts/demo.sh

# The benchmark report (docs/benchmarks.md): every bench/*.py, one after the other; long, not part of `make test`.
bench: setup collection
	@for script in bench/[a-z]*.py; do echo "=== $$script"; python3 "$$script" || exit 1; done

demo-down: venv
	@molecule destroy -s demo >/dev/null 2>&1 || true
	@bash lab/scripts/lab-down.sh demo

lab-down:
	@bash lab/scripts/lab-down.sh

clean: lab-down
	rm -rf build .cache .pytest_cache
