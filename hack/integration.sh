#!/usr/bin/env bash
# Integration tests (pytest driving ansible-playbook) against the embedded
# local cluster, with one controller profile's virtualenv (see hack/venv.sh).
set -euo pipefail
# shellcheck source=hack/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
controller=${1:?usage: $0 stable|latest [pytest args]}
shift
kd_profile_env "$controller"
cd "$ROOT"
# The whole suite unless the arguments name test files or directories of their own.
paths=(tests/integration)
for arg in "$@"; do
    [[ $arg != -* && -e $arg ]] && paths=() && break
done
exec "$KD_VENV/bin/python" -m pytest -p no:cacheprovider -ra "$@" "${paths[@]}"
