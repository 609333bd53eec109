#!/usr/bin/env bash
# Static checks with the "latest" controller venv:
#   ruff check (pyproject.toml [tool.ruff]), yamllint (.yamllint), ansible-lint (.ansible-lint).
# Runs every linter even if an earlier one fails; exits non-zero if any failed.
set -euo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

venv=$(bash "$ROOT/hack/venv.sh" latest | tail -n1)
bin="$venv/bin"

# Keep ansible-lint's and ansible's caches inside the git-ignored .cache/.
export ANSIBLE_HOME="$ROOT/.cache/ansible-home"
# Roles and playbooks use the collection by its FQCN: make this checkout resolvable as it.
ANSIBLE_COLLECTIONS_PATH=$(bash "$ROOT/hack/collections.sh")
export ANSIBLE_COLLECTIONS_PATH
export XDG_CACHE_HOME="$ROOT/.cache/xdg"
export RUFF_CACHE_DIR="$ROOT/.cache/ruff"
export PATH="$bin:$PATH"

failed=()
run() {
    local name=$1
    shift
    echo "== $name" >&2
    if "$@"; then
        echo "== $name: ok" >&2
    else
        echo "== $name: FAILED" >&2
        failed+=("$name")
    fi
}

run "ruff check" "$bin/ruff" check .
run yamllint "$bin/yamllint" --strict .
run ansible-lint "$bin/ansible-lint" --strict

if ((${#failed[@]})); then
    echo "lint.sh: failed: ${failed[*]}" >&2
    exit 1
fi
echo "lint.sh: all linters passed" >&2
