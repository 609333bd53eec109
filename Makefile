# kubedebug.ephemeral — developer entry points. See README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help

CONTROLLERS ?= stable latest
INTEGRATION_CONTROLLERS ?= stable latest
export CONTROLLERS INTEGRATION_CONTROLLERS

.PHONY: help test stress lint sanity unit integration binaries cluster-up cluster-down demo bench docs

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

test: ## everything: lint, sanity, unit and integration tests (builds what it needs)
	@bash hack/test.sh

stress: ## the reliability tests at full size (faults, throttling, races, generated input; tests/sizes.py)
	@bash hack/stress.sh $(CONTROLLER)

lint: ## ruff, yamllint, ansible-lint, mypy (plugins/), shellcheck, import graph
	@bash hack/lint.sh

sanity: ## ansible-test sanity on each controller in CONTROLLERS
	@for c in $(CONTROLLERS); do bash hack/sanity.sh $$c || exit 1; done

unit: ## unit tests on each controller in CONTROLLERS
	@for c in $(CONTROLLERS); do bash hack/unit.sh $$c || exit 1; done

integration: ## integration tests against the local cluster (INTEGRATION_CONTROLLERS)
	@bash hack/cluster.sh up >/dev/null && for c in $(INTEGRATION_CONTROLLERS); do bash hack/integration.sh $$c || exit 1; done

binaries: ## build the pinned control plane and real node binaries into .cache/bin
	@bash hack/build-control-plane.sh && bash hack/build-node.sh

cluster-up: ## start (or reuse) the local cluster, KWOK nodes and the real node; last line is KUBECONFIG=<path>
	@bash hack/cluster.sh up

cluster-down: ## stop the local cluster and everything it started
	@bash hack/cluster.sh down

demo: ## start the cluster, deploy the sample workload, run the incident playbook on it
	@bash hack/demo.sh

docs: ## build the docs site into .cache/docs/build/html
	@bash hack/docs.sh

bench: ## benchmarks vs kubectl and a minimal client (BENCH=fleet_add, fleet_recipe or fleet_scale: only that one; BENCH_ARGS=--large: 5,000 pods)
	@bash bench/run.sh $(BENCH) $(BENCH_ARGS)
