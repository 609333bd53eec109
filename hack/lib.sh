# shellcheck shell=bash
# The setup the hack/ scripts (and bench/run.sh) share. Sourced, never run:
#
#   # shellcheck source=hack/lib.sh
#   source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"      (from hack/; ../hack/lib.sh from bench/)
#
# Sourcing it sets ROOT (the checkout) and, unless the environment has them, KD_CACHE
# (the cluster's binaries and state, .cache) and KD_BIN (where those binaries are). It
# exports nothing by itself; kd_venv and kd_profile_env do.
#
#   kd_log MSG...            MSG on stderr after the script's $KD_LOG_PREFIX
#   kd_venv PROFILE          build or reuse the stable|latest venv (hack/venv.sh); sets
#                            KD_VENV and puts its bin/ first on PATH
#   kd_profile_env PROFILE   kd_venv, and Ansible and Python pointed at this checkout as
#                            the collection kubedebug.ephemeral, caches kept in .cache

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
: "${KD_CACHE:=$ROOT/.cache}"
: "${KD_BIN:=$KD_CACHE/bin}"
# Each script sets its own prefix ("[cluster]", "venv.sh[stable]:", ...).
KD_LOG_PREFIX="${0##*/}:"

kd_log() { printf '%s %s\n' "$KD_LOG_PREFIX" "$*" >&2; }

kd_venv() {
    # venv.sh prints its progress on stderr and the venv path as its last line on stdout.
    KD_VENV=$(bash "$ROOT/hack/venv.sh" "$1" | tail -n 1)
    export PATH="$KD_VENV/bin:$PATH"
}

kd_profile_env() {
    kd_venv "$1"
    local collections
    collections=$(bash "$ROOT/hack/collections.sh")
    # ansible-* find the collection by its FQCN, Python code imports it as
    # ansible_collections.kubedebug.ephemeral (tests, the demo, the benchmarks).
    export ANSIBLE_COLLECTIONS_PATH="$collections"
    export PYTHONPATH="$collections${PYTHONPATH:+:$PYTHONPATH}"
    # Ansible's, ansible-lint's and ruff's state stays in the git-ignored .cache/, and
    # no __pycache__ lands in the checkout.
    export ANSIBLE_HOME="$ROOT/.cache/ansible-home"
    export XDG_CACHE_HOME="$ROOT/.cache/xdg"
    export RUFF_CACHE_DIR="$ROOT/.cache/ruff"
    export PYTHONDONTWRITEBYTECODE=1
}
