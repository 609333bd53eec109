#!/usr/bin/env bash
# Run the unit tests (tests/unit) with one controller profile's venv.
#
#   hack/unit.sh stable|latest [extra pytest args]
#
# The repo is made importable as ansible_collections.kubedebug.ephemeral via a
# symlink in .cache/collections (hack/collections.sh), which goes on PYTHONPATH and
# ANSIBLE_COLLECTIONS_PATH (kd_profile_env, hack/lib.sh). pytest's exit status is
# passed through unchanged (5 = no tests collected is a failure for callers).
set -euo pipefail

# shellcheck source=hack/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

usage() {
    echo "usage: $0 stable|latest [pytest args...]" >&2
    exit 2
}
[[ $# -ge 1 ]] || usage
profile=$1
shift
case "$profile" in
    stable | latest) ;;
    *) usage ;;
esac

kd_profile_env "$profile"
cd "$ROOT"
# The whole suite unless the arguments name test files or directories of their own.
paths=(tests/unit)
for arg in "$@"; do
    [[ $arg != -* && -e $arg ]] && paths=() && break
done
exec "$KD_VENV/bin/python" -m pytest -p no:cacheprovider "$@" "${paths[@]}"
