#!/usr/bin/env bash
# Build the collection's documentation site (make docs) with antsibull-docs and Sphinx.
#
#   hack/docs.sh [--test] [--out DIR]
#
#   1. the venv .cache/venv/docs (Python 3.11, tests/requirements-docs.txt; pip runs only when
#      the requirements or the interpreter change);
#   2. antsibull-docs lint-collection-docs --plugin-docs: the plugin and role docs, the guides
#      (docs/docsite/rst, extra-docs.yml) and links.yml must be clean, or the script stops;
#   3. antsibull-docs sphinx-init writes the Sphinx project into .cache/docs (generated, git-ignored;
#      KD_DOCS_DIR to put it elsewhere), antsibull-docs collection its pages into .cache/docs/rst;
#   4. sphinx-build (-W --keep-going, nitpicky) writes the site into .cache/docs/build/html (--out DIR
#      or KD_DOCS_OUT to put it elsewhere) and its warnings into .cache/docs/warnings.txt.
#   --test: then run tests/docs with the venv's pytest, also when Sphinx warned (it says what).
#
# Nothing is downloaded but the venv's packages: links to docs.ansible.com (ansible.builtin
# plugins, the docsite's pages) resolve through a local intersphinx inventory that
# hack/docs-inventory.py writes, and no other inventory is configured.
set -euo pipefail

# shellcheck source=hack/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

SITE_TITLE="kubedebug.ephemeral"
SITE_URL="https://kubedebug.github.io/ephemeral/"

usage() {
    echo "usage: $0 [--test] [--out DIR]" >&2
    exit 2
}

run_tests=false
out="${KD_DOCS_OUT:-}"
while (($#)); do
    case "$1" in
        --test) run_tests=true ;;
        --out)
            [[ $# -ge 2 ]] || usage
            out=$2
            shift
            ;;
        *) usage ;;
    esac
    shift
done

docs="${KD_DOCS_DIR:-$ROOT/.cache/docs}"
mkdir -p -- "$(dirname -- "$docs")"
docs=$(cd -- "$(dirname -- "$docs")" && pwd)/$(basename -- "$docs")
# The project is generated anew each time: never remove a directory this script did not write.
mark="$docs/.written-by-hack-docs.sh"
if [[ -d "$docs" && ! -f "$mark" && -n "$(ls -A -- "$docs")" ]]; then
    kd_log "$docs is not empty and was not written by this script: set KD_DOCS_DIR to another directory"
    exit 1
fi
mkdir -p -- "$docs"
touch -- "$mark"
[[ -n "$out" ]] || out="$docs/build/html"
mkdir -p -- "$out"
out=$(cd -- "$out" && pwd)

# --- 1. The venv (hack/venv.sh docs). -------------------------------------------------------
venv=$(bash "$ROOT/hack/venv.sh" docs | tail -n 1)

# antsibull-docs runs ansible and ansible-doc from PATH; they find the checkout as the
# collection kubedebug.ephemeral through the .cache/collections link, and only there.
export PATH="$venv/bin:$PATH"
collections=$(bash "$ROOT/hack/collections.sh")
export ANSIBLE_COLLECTIONS_PATH="$collections"
export ANSIBLE_HOME="$ROOT/.cache/ansible-home"
export XDG_CACHE_HOME="$ROOT/.cache/xdg"
export PYTHONDONTWRITEBYTECODE=1
collection="$collections/ansible_collections/kubedebug/ephemeral"

# --- 2. Lint the docs. -------------------------------------------------------------------------
rm -rf -- "$docs"
mkdir -p -- "$docs"
touch -- "$mark"
kd_log "antsibull-docs lint-collection-docs --plugin-docs"
lint_rc=0
antsibull-docs lint-collection-docs --plugin-docs "$collection" >"$docs/lint.txt" 2>&1 || lint_rc=$?
echo "$lint_rc" >"$docs/lint.rc"
if ((lint_rc != 0)); then
    cat "$docs/lint.txt" >&2
    kd_log "lint-collection-docs failed (exit $lint_rc): fix the docs above"
    exit 1
fi

# --- 3. The Sphinx project and the collection's pages. -----------------------------------------
kd_log "sphinx-init into $docs"
antsibull-docs sphinx-init --use-current --squash-hierarchy --fail-on-error \
    --dest-dir "$docs" \
    --project "$SITE_TITLE" --title "$SITE_TITLE" \
    --copyright "kubedebug.ephemeral contributors" \
    --extra-conf "html_baseurl=$SITE_URL" \
    kubedebug.ephemeral >/dev/null
"$venv/bin/python" "$ROOT/hack/docs-inventory.py" "$docs/ansible_devel.inv"
cat >>"$docs/conf.py" <<'EOF'

# hack/docs.sh: no intersphinx inventory is downloaded. References to the Ansible docsite
# (ansible.builtin plugins, the pages antsibull-docs' templates name) resolve through a local
# inventory written by hack/docs-inventory.py; relative to the source directory (rst/).
intersphinx_mapping = {
    'ansible_devel': ('https://docs.ansible.com/projects/ansible/devel/', '../ansible_devel.inv'),
}
EOF

mkdir -p -- "$docs/rst"
chmod og-w "$docs/rst" # antsibull-docs wants that directory only writable by itself
kd_log "antsibull-docs collection"
(cd "$docs" && antsibull-docs --config-file antsibull-docs.cfg collection \
    --use-current --squash-hierarchy --fail-on-error --cleanup everything \
    --dest-dir rst kubedebug.ephemeral >/dev/null)

# --- 4. The HTML. ------------------------------------------------------------------------------
kd_log "sphinx-build into $out"
sphinx_rc=0
sphinx-build -b html -c "$docs" -d "$docs/build/doctrees" -W --keep-going -q \
    -w "$docs/warnings.txt" "$docs/rst" "$out" || sphinx_rc=$?
echo "$sphinx_rc" >"$docs/sphinx.rc"
if ((sphinx_rc != 0)); then
    kd_log "sphinx-build failed (exit $sphinx_rc; its warnings, above, are in $docs/warnings.txt)"
fi
kd_log "$(find "$out" -name '*.html' | wc -l) pages in $out (index.html)"

if $run_tests; then
    kd_log "pytest tests/docs"
    test_rc=0
    KD_DOCS_DIR="$docs" KD_DOCS_OUT="$out" "$venv/bin/python" -m pytest -p no:cacheprovider -q "$ROOT/tests/docs" || test_rc=$?
    ((test_rc == 0)) || exit "$test_rc"
fi
exit "$sphinx_rc"
