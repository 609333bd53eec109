#!/usr/bin/env bash
# The reliability tests at full size (`make stress`): the same tests `make test` runs
# small, with KD_STRESS=1 (tests/sizes.py) — thousands of generated inputs, faults over
# a thousand pods. Needs the binaries (make binaries); starts the cluster if it is down
# and stops it again at the end if it started it.
#
#   hack/stress.sh [stable|latest]   (default: stable)
set -euo pipefail
# shellcheck source=hack/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
controller=${1:-stable}
export KD_STRESS=1
start=$(date +%s)
bash hack/venv.sh "$controller"
bash hack/unit.sh "$controller" -m stress -q
started_cluster=false
if ! bash hack/cluster.sh status; then started_cluster=true; fi
cleanup() { if $started_cluster && [ "${KD_KEEP_CLUSTER:-0}" != 1 ]; then bash hack/cluster.sh down || true; fi; }
trap cleanup EXIT
bash hack/cluster.sh up >/dev/null
bash hack/integration.sh "$controller" -m stress
echo "stress: passed in $(( $(date +%s) - start ))s"
