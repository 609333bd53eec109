#!/usr/bin/env bash
# `make bench`: fleet benchmark against the embedded cluster (see bench/fleet_add.py).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
venv=$(bash "$ROOT/hack/venv.sh" latest | tail -n 1)
"$venv/bin/python" -c 'import matplotlib' 2>/dev/null || "$venv/bin/python" -m pip install -q -r "$ROOT/bench/requirements.txt"
collections=$(bash "$ROOT/hack/collections.sh")
kubeconfig=$(bash "$ROOT/hack/cluster.sh" up | tail -n 1 | cut -d= -f2-)
export PATH="$venv/bin:$PATH" ANSIBLE_COLLECTIONS_PATH="$collections" ANSIBLE_HOME="$ROOT/.cache/ansible-home"
exec "$venv/bin/python" "$ROOT/bench/fleet_add.py" --kubeconfig "$kubeconfig" --kubectl "$ROOT/.cache/bin/kubectl" "$@"
