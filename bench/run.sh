#!/usr/bin/env bash
# `make bench`: the benchmarks against the embedded cluster, each side by side with the
# kubectl commands users would otherwise run:
#   fleet_add     adding a debug container to N pods (bench/fleet_add.py)
#   fleet_recipe  a recipe's round trip over N pods, results as data (bench/fleet_recipe.py)
#   startup       (on request only) the playbook floor, before/after: bench/run.sh startup --checkout base=DIR
#
#   bench/run.sh [fleet_add|fleet_recipe|startup] [ARGS...]
# With no name every benchmark runs, one after the other; ARGS (say --sizes 10,50) go to each.
set -euo pipefail
# shellcheck source=hack/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/../hack/lib.sh"
benches=(fleet_add fleet_recipe)
if [[ ${1:-} == fleet_add || ${1:-} == fleet_recipe || ${1:-} == startup ]]; then
    benches=("$1")
    shift
fi
# The cluster first: hack/cluster.sh runs with this shell's PATH, not the venv's.
kubeconfig=$(bash "$ROOT/hack/cluster.sh" up | tail -n 1 | cut -d= -f2-)
kd_profile_env latest
"$KD_VENV/bin/python" -c 'import matplotlib' 2>/dev/null || "$KD_VENV/bin/python" -m pip install -q -r "$ROOT/bench/requirements.txt"
for bench in "${benches[@]}"; do
    echo "== $bench" >&2
    "$KD_VENV/bin/python" "$ROOT/bench/$bench.py" --kubeconfig "$kubeconfig" --kubectl "$KD_BIN/kubectl" "$@"
done
