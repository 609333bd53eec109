#!/usr/bin/env bash
# Makes the checkout importable as ansible_collections.kubedebug.ephemeral
# (a symlink under .cache/collections) and prints the collections path.
set -euo pipefail
# shellcheck source=hack/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
collections="$ROOT/.cache/collections"
link="$collections/ansible_collections/kubedebug/ephemeral"
mkdir -p -- "$(dirname -- "$link")"
if [[ "$(readlink -- "$link" 2>/dev/null)" != "$ROOT" ]]; then
    rm -rf -- "$link"
    ln -s -- "$ROOT" "$link"
fi
echo "$collections"
