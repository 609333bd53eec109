#!/usr/bin/env bash
# `make bench`: the benchmarks against the embedded cluster, each side by side with the
# kubectl commands users would otherwise run:
#   fleet_add     adding a debug container to N pods (bench/fleet_add.py)
#   fleet_recipe  a recipe's round trip over N pods, results as data (bench/fleet_recipe.py)
#
#   bench/run.sh [fleet_add|fleet_recipe] [ARGS...]
# With no name every benchmark runs, one after the other; ARGS (say --sizes 10,50) go to each.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
benches=(fleet_add fleet_recipe)
if [[ ${1:-} == fleet_add || ${1:-} == fleet_recipe ]]; then
    benches=("$1")
    shift
fi
venv=$(bash "$ROOT/hack/venv.sh" latest | tail -n 1)
"$venv/bin/python" -c 'import matplotlib' 2>/dev/null || "$venv/bin/python" -m pip install -q -r "$ROOT/bench/requirements.txt"
collections=$(bash "$ROOT/hack/collections.sh")
kubeconfig=$(bash "$ROOT/hack/cluster.sh" up | tail -n 1 | cut -d= -f2-)
export PATH="$venv/bin:$PATH" ANSIBLE_COLLECTIONS_PATH="$collections" ANSIBLE_HOME="$ROOT/.cache/ansible-home"
for bench in "${benches[@]}"; do
    echo "== $bench" >&2
    "$venv/bin/python" "$ROOT/bench/$bench.py" --kubeconfig "$kubeconfig" --kubectl "$ROOT/.cache/bin/kubectl" "$@"
done
