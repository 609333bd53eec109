#!/usr/bin/env bash
# `make bench`: the benchmarks against the embedded cluster, each side by side with what
# users would otherwise run:
#   fleet_add     adding a debug container to N pods vs kubectl loops (bench/fleet_add.py)
#   fleet_recipe  a recipe's round trip over N pods, results as data (bench/fleet_recipe.py)
#   fleet_scale   100 and 1,000 pods (5,000 with --large) vs kubectl and vs the limit, a
#                 minimal Go client (bench/limit), on a cluster of its own with API Priority
#                 and Fairness on (KD_CLUSTER=kd-scale; stopped at the end unless KD_KEEP_CLUSTER=1)
#   startup       (on request only) the playbook floor, before/after: bench/run.sh startup --checkout base=DIR
#
#   bench/run.sh [fleet_add|fleet_recipe|fleet_scale|startup] [ARGS...]
# With no name every benchmark runs, one after the other; ARGS (say --sizes 10,50) go to each.
set -euo pipefail
# shellcheck source=hack/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/../hack/lib.sh"
benches=(fleet_add fleet_recipe fleet_scale)
if [[ ${1:-} == fleet_add || ${1:-} == fleet_recipe || ${1:-} == fleet_scale || ${1:-} == startup ]]; then
    benches=("$1")
    shift
fi
kubectl=$KD_BIN/kubectl
# The clusters first: hack/cluster.sh runs with this shell's PATH, not the venv's.
if [[ " ${benches[*]} " == *" fleet_add "* || " ${benches[*]} " == *" fleet_recipe "* || " ${benches[*]} " == *" startup "* ]]; then
    kubeconfig=$(bash "$ROOT/hack/cluster.sh" up | tail -n 1 | cut -d= -f2-)
fi
if [[ " ${benches[*]} " == *" fleet_scale "* ]]; then
    kd_log "building bench/limit"
    (cd "$ROOT/bench/limit" && GOTOOLCHAIN=local GOFLAGS=-mod=mod go build -o "$KD_BIN/kd-limit" .)
    # KD_NODES: the cluster starts with 2 simulated nodes; fleet_scale adds what each size needs.
    scale_kubeconfig=$(KD_CLUSTER=kd-scale KD_APF=1 KD_REAL_NODE=0 KD_NODES=2 bash "$ROOT/hack/cluster.sh" up | tail -n 1 | cut -d= -f2-)
    stop_scale() {
        if [ "${KD_KEEP_CLUSTER:-0}" != 1 ]; then
            KD_CLUSTER=kd-scale KD_REAL_NODE=0 bash "$ROOT/hack/cluster.sh" down >/dev/null || true
        fi
    }
    trap stop_scale EXIT
fi
kd_profile_env latest
"$KD_VENV/bin/python" -c 'import matplotlib' 2>/dev/null || "$KD_VENV/bin/python" -m pip install -q -r "$ROOT/bench/requirements.txt"
for bench in "${benches[@]}"; do
    echo "== $bench" >&2
    if [ "$bench" = fleet_scale ]; then
        KWOK_WORKDIR=$KD_CACHE/kwok "$KD_VENV/bin/python" "$ROOT/bench/fleet_scale.py" --kubeconfig "$scale_kubeconfig" \
            --kubectl "$kubectl" --kwokctl "$KD_BIN/kwokctl" --cluster kd-scale --limit "$KD_BIN/kd-limit" "$@"
    else
        "$KD_VENV/bin/python" "$ROOT/bench/$bench.py" --kubeconfig "$kubeconfig" --kubectl "$kubectl" "$@"
    fi
done
