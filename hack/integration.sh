#!/usr/bin/env bash
# Integration tests (pytest driving ansible-playbook) against the embedded
# local cluster, with one controller profile's virtualenv (see hack/venv.sh).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
controller=${1:?usage: $0 stable|latest [pytest args]}
shift
venv=$(bash "$ROOT/hack/venv.sh" "$controller" | tail -n 1)
collections=$(bash "$ROOT/hack/collections.sh")
cd "$ROOT"
export PATH="$venv/bin:$PATH"
export PYTHONPATH="$collections${PYTHONPATH:+:$PYTHONPATH}"
export ANSIBLE_COLLECTIONS_PATH="$collections"
export ANSIBLE_HOME="$ROOT/.cache/ansible-home"
export PYTHONDONTWRITEBYTECODE=1
# The whole suite unless the arguments name test files or directories of their own.
paths=(tests/integration)
for arg in "$@"; do
    [[ $arg != -* && -e $arg ]] && paths=() && break
done
exec "$venv/bin/python" -m pytest -p no:cacheprovider -ra "$@" "${paths[@]}"
