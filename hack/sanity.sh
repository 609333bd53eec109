#!/usr/bin/env bash
# Run `ansible-test sanity` for the collection with one controller profile,
# without containers: ansible-test builds one venv per sanity test (--venv)
# under ~/.ansible/test/venv, installing its pinned requirements from PyPI.
#
#   hack/sanity.sh stable|latest [extra ansible-test sanity args, e.g. --test pep8]
#
# ansible-test only accepts a collection at .../ansible_collections/NS/NAME, so
# the git-tracked and untracked-not-ignored files are copied to
# .cache/sanity/ansible_collections/kubedebug/ephemeral and tested there.
set -euo pipefail

# shellcheck source=hack/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

usage() {
    echo "usage: $0 stable|latest [ansible-test sanity args...]" >&2
    exit 2
}
[[ $# -ge 1 ]] || usage
profile=$1
shift
case "$profile" in
    stable | latest) ;;
    *) usage ;;
esac

KD_LOG_PREFIX="sanity.sh[$profile]:"

# The venv only: ansible-test finds the collection in the copy below, and must not be
# pointed at the checkout (kd_profile_env's PYTHONPATH, ANSIBLE_COLLECTIONS_PATH).
kd_venv "$profile"
python="$KD_VENV/bin/python"
pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')

# --- 1. Copy the collection to a path ansible-test accepts. ------------------
top="$ROOT/.cache/sanity"
dest="$top/ansible_collections/kubedebug/ephemeral"
rm -rf -- "$top"
mkdir -p -- "$dest"
(
    cd "$ROOT"
    # -co --exclude-standard: tracked + untracked-not-ignored. Skip tracked
    # files deleted from the work tree, which tar could not read.
    git ls-files -z -co --exclude-standard \
        | while IFS= read -r -d '' f; do
            if [[ -e "$f" || -L "$f" ]]; then printf '%s\0' "$f"; fi
        done \
        | tar --null --no-recursion -T - -cf -
) | tar -C "$dest" -xf -

# The copy sits inside our own (ignored) .cache/, so ansible-test would find
# the outer repo's .git, where none of these files are listed. A fresh repo
# without commits makes `git ls-files -co` in the copy list exactly the copied
# files (ansible-test's git source provider), honouring the copied .gitignore.
git -C "$dest" init -q

# --- 2. Stand-in for pip's bootstrap script. ---------------------------------
# `--venv` bootstraps pip in each empty venv with get-pip.py downloaded from
# ansible's CI host, cached as ~/.ansible/test/cache/get_pip_<X_Y>.py; that host
# is unreachable here. The stand-in installs the bundled pip with ensurepip, then
# the requested pip version from the package index. ansible-test runs it as
# `python get_pip_X_Y.py --disable-pip-version-check pip==X.Y [--no-setuptools] [--no-wheel]`.
pip_version=$("$python" - <<'EOF'
import sys
from types import SimpleNamespace

from ansible_test._internal.python_requirements import get_venv_packages

print(get_venv_packages(SimpleNamespace(version="%d.%d" % sys.version_info[:2]))["pip"])
EOF
)
get_pip="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
marker="# kubedebug.ephemeral hack/sanity.sh get-pip stand-in"
if [[ -f "$get_pip" ]] && ! grep -qF -- "$marker" "$get_pip"; then
    kd_log "keeping existing $get_pip (not ours)"
else
    mkdir -p -- "$(dirname -- "$get_pip")"
    cat >"$get_pip.tmp" <<EOF
$marker
"""Install pip $pip_version without downloading get-pip.py: ensurepip, then pip from the index."""
import ensurepip
import os
import subprocess
import sys

# ensurepip drops PIP_* variables and points PIP_CONFIG_FILE at /dev/null in
# os.environ; the real install must see the user's pip settings (index, certs).
env = dict(os.environ)
ensurepip.bootstrap(upgrade=True)
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install"] + args, env=env))
EOF
    mv -f -- "$get_pip.tmp" "$get_pip"
fi

# --- 3. Run. -----------------------------------------------------------------
kd_log "$("$KD_VENV/bin/ansible-test" --version) sanity --venv --python $pyver in $dest"
cd "$dest"
exec "$KD_VENV/bin/ansible-test" sanity --venv --python "$pyver" "$@"
