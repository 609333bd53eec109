#!/usr/bin/env bash
# Create or reuse the virtualenv of one controller profile.
#
#   hack/venv.sh stable   Python 3.11, ansible-core 2.19, kubernetes 32
#   hack/venv.sh latest   Python 3.13, ansible-core 2.21, kubernetes 37 (+ ansible-lint)
#   hack/venv.sh floor    Python 3.11, the oldest ansible-core (meta/runtime.yml requires_ansible)
#   hack/venv.sh docs     Python 3.11, antsibull-docs and Sphinx (hack/docs.sh)
#                         and kubernetes client the collection claims; nothing else (no pytest): the
#                         clean controller tests/integration/test_installed_collection.py installs
#                         the built collection into and runs ansible-playbook from, by path
#
# The venv lives in .cache/venv/<profile>. pip runs only when the stamp file
# in the venv does not match the requirements file (tests/requirements-<profile>.txt)
# and the interpreter it was built from. Progress goes to stderr; the last line
# on stdout is the venv path, so callers can do: venv=$(hack/venv.sh stable | tail -n1)
set -euo pipefail

# shellcheck source=hack/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

usage() {
    echo "usage: $0 stable|latest|floor|docs" >&2
    exit 2
}

[[ $# -eq 1 ]] || usage
profile=$1
case "$profile" in
    stable) pyver=3.11 ;;
    latest) pyver=3.13 ;;
    floor | docs) pyver=3.11 ;;
    *) usage ;;
esac

KD_LOG_PREFIX="venv.sh[$profile]:"

# Is "$1" a Python interpreter of version $pyver?
is_pyver() {
    [[ -n "$1" && -x "$1" ]] || return 1
    local got
    got=$("$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || return 1
    [[ "$got" == "$pyver" ]]
}

find_python() {
    local cand prefix
    # 1. pyenv (resolves 3.11 -> newest installed 3.11.x)
    if command -v pyenv >/dev/null 2>&1; then
        if prefix=$(pyenv prefix "$pyver" 2>/dev/null); then
            cand="$prefix/bin/python$pyver"
            if is_pyver "$cand"; then echo "$cand"; return 0; fi
        fi
    fi
    # 2. pyenv installs even without pyenv on PATH (newest patch release first)
    local -a dirs
    mapfile -t dirs < <(printf '%s\n' "${PYENV_ROOT:-$HOME/.pyenv}/versions/$pyver".* | sort -V -r)
    for cand in "${dirs[@]}"; do
        cand="$cand/bin/python$pyver"
        if is_pyver "$cand"; then echo "$cand"; return 0; fi
    done
    # 3. pythonX.Y on PATH (may be a pyenv shim, so check it really runs)
    if cand=$(command -v "python$pyver" 2>/dev/null) && is_pyver "$cand"; then
        echo "$cand"
        return 0
    fi
    return 1
}

req="$ROOT/tests/requirements-$profile.txt"
[[ -f "$req" ]] || { kd_log "missing $req"; exit 1; }

python=$(find_python) || { kd_log "no Python $pyver found (pyenv or python$pyver on PATH)"; exit 1; }
python=$("$python" -c 'import os, sys; print(os.path.realpath(sys.executable))')

venv="$ROOT/.cache/venv/$profile"
stamp="$venv/.requirements.sha256"
want=$( { sha256sum <"$req"; echo "$python"; "$python" -VV; } | sha256sum | cut -d' ' -f1)

# Recreate the venv if its interpreter is gone or is not the one we want.
if [[ -d "$venv" ]]; then
    if ! is_pyver "$venv/bin/python" \
        || [[ "$(cat "$venv/.base-python" 2>/dev/null)" != "$python" ]]; then
        kd_log "venv interpreter changed or broken, recreating $venv"
        rm -rf -- "$venv"
    fi
fi

if [[ ! -d "$venv" ]]; then
    kd_log "creating $venv with $python"
    mkdir -p "$(dirname -- "$venv")"
    "$python" -m venv "$venv"
    echo "$python" >"$venv/.base-python"
fi

if [[ "$(cat "$stamp" 2>/dev/null)" == "$want" ]]; then
    kd_log "up to date ($req)"
else
    kd_log "installing $req"
    rm -f -- "$stamp"
    # pip's own progress is sent to stderr so stdout ends with the venv path.
    "$venv/bin/python" -m pip install --disable-pip-version-check -q -r "$req" >&2
    "$venv/bin/python" -m pip check >&2
    echo "$want" >"$stamp"
fi

echo "$venv"
