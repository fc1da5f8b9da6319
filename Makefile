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

.PHONY: help setup host venv images collection unit argspecs lint sanity molecule scenario test demo demo-down lab-down bench clean

help:
	@echo "make test       set up everything on this machine, then run every test"
	@echo "make demo       set up everything, bring up the lab and run the main job against it"
	@echo "make demo-down  remove the demo lab;  make lab-down  remove every lab container and network"
	@echo "make bench      run the benchmarks and update docs/benchmarks.md (takes most of an hour)"

setup: host venv images

host:
	@bash lab/scripts/host-setup.sh

venv: host
	@bash lab/scripts/venv.sh

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

molecule: setup collection
	@bash lab/scripts/test.sh molecule

# One scenario, for development: make scenario S=tunnels (ARGS=converge to run one molecule step instead).
scenario: setup collection
	@molecule $(or $(ARGS),test) -s $(S)

test: setup collection
	@bash lab/scripts/test.sh

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
