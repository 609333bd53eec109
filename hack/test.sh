#!/usr/bin/env bash
# The whole test suite, as `make test` and CI run it:
#   lint -> sanity and unit tests on both controllers -> docs site -> integration tests on the
#   controllers in $INTEGRATION_CONTROLLERS against the embedded local cluster.
# The cluster is started once and, if this run started it, stopped at the end.
set -euo pipefail
# shellcheck source=hack/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
: "${CONTROLLERS:=stable latest}"
: "${INTEGRATION_CONTROLLERS:=stable latest}"

step() { printf '\n==== %s ====\n' "$*"; }
start=$(date +%s)

# The control plane builds while the Python side installs (2 cores: Go is the long pole).
# First: the real node's runc build needs libseccomp's headers from these.
step "Debian packages"; bash hack/prereqs.sh
step "control plane and real node binaries (background)"
# In a session of its own, so that a failing step can stop the whole build (go and its compilers).
setsid bash -c 'bash hack/build-control-plane.sh && bash hack/build-node.sh' \
  > "${TMPDIR:-/tmp}/kd-build-$$.log" 2>&1 &
build_pid=$!
stop_build() { kill -- "-$build_pid" 2>/dev/null || true; }
trap stop_build EXIT

for c in $CONTROLLERS; do step "virtualenv: $c"; bash hack/venv.sh "$c"; done
# The clean venv of the oldest claimed ansible-core (meta/runtime.yml), for the installed-tarball test.
step "virtualenv: floor"; bash hack/venv.sh floor
step "lint"; bash hack/lint.sh
for c in $CONTROLLERS; do step "sanity: $c"; bash hack/sanity.sh "$c"; done
for c in $CONTROLLERS; do step "unit: $c"; bash hack/unit.sh "$c"; done
# The docs site: lint-collection-docs, antsibull-docs + Sphinx with warnings as errors, a page for every plugin and role.
step "docs"; bash hack/docs.sh --test

step "waiting for the control plane and node build"
if ! wait "$build_pid"; then
  cat "${TMPDIR:-/tmp}/kd-build-$$.log" >&2
  echo "error: building the control plane or the real node failed (log above)" >&2
  exit 1
fi
tail -n 1 "${TMPDIR:-/tmp}/kd-build-$$.log"; rm -f "${TMPDIR:-/tmp}/kd-build-$$.log"

started_cluster=false
if ! bash hack/cluster.sh status; then started_cluster=true; fi
cleanup() { if $started_cluster && [ "${KD_KEEP_CLUSTER:-0}" != 1 ]; then bash hack/cluster.sh down || true; fi; }
trap - EXIT
trap cleanup EXIT
step "cluster up"; bash hack/cluster.sh up
# The fault tests bring up, break and repair a control plane of their own
# (tests/integration/test_faults_cluster.py, ~6 min): once per run, with the first controller.
faults=1
for c in $INTEGRATION_CONTROLLERS; do
  step "integration: $c"
  KD_FAULTS_CLUSTER=$faults bash hack/integration.sh "$c"
  faults=0
done
step "all tests passed in $(( $(date +%s) - start ))s"
