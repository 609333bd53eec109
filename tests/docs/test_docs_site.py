# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The docs site that hack/docs.sh builds: every plugin, role and guide has its page, and no warning.

Run by ``bash hack/docs.sh --test`` (with the docs venv's pytest) after the build; it reads the build from
KD_DOCS_DIR (the generated Sphinx project, default .cache/docs) and KD_DOCS_OUT (the HTML, default
<KD_DOCS_DIR>/build/html). What to expect is read from the checkout, never listed here: the modules
(plugins/modules), lookups (plugins/lookup), filters (the names each plugins/filter file's FilterModule
returns), roles (roles/*/meta/argument_specs.yml) and guides (docs/docsite/extra-docs.yml).
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COLLECTION = "kubedebug.ephemeral"
DOCS = Path(os.environ.get("KD_DOCS_DIR") or ROOT / ".cache" / "docs")
HTML = Path(os.environ.get("KD_DOCS_OUT") or DOCS / "build" / "html")

# The only warnings tolerated: an intersphinx inventory that could not be fetched (none is configured
# to be fetched, so there should be none of these either).
UNREACHABLE_INVENTORY = re.compile(r"intersphinx inventory .* not fetchable|failed to reach any of the inventories", re.IGNORECASE)


def plugin_names(kind: str) -> list[str]:
    """The plugins of plugins/<kind> by file name (files starting with _ are private helpers)."""
    return sorted(p.stem for p in (ROOT / "plugins" / kind).glob("*.py") if not p.name.startswith("_"))


def filter_names() -> list[str]:
    """Every filter name: the keys of the dict each plugins/filter file's FilterModule.filters() returns."""
    names = []
    for path in sorted((ROOT / "plugins" / "filter").glob("*.py")):
        if path.name.startswith("_"):
            continue
        found = []
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and node.name == "FilterModule":
                for item in node.body:
                    if isinstance(item, ast.FunctionDef) and item.name == "filters":
                        for ret in ast.walk(item):
                            if isinstance(ret, ast.Return) and isinstance(ret.value, ast.Dict):
                                found += [k.value for k in ret.value.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)]
        assert found, f"{path.relative_to(ROOT)}: no FilterModule.filters() returning a dict literal, so its filter names are unknown to this test"
        names += found
    return sorted(names)


def role_names() -> list[str]:
    return sorted(p.parent.parent.name for p in (ROOT / "roles").glob("*/meta/argument_specs.yml"))


def guide_names() -> list[str]:
    extra = yaml.safe_load((ROOT / "docs" / "docsite" / "extra-docs.yml").read_text(encoding="utf-8"))
    return [entry for section in extra["sections"] for entry in section["toctree"]]


def pages() -> list[tuple[str, str, str]]:
    """(kind, name, page relative to the HTML root) of everything the site must have."""
    wanted = [("module", name, f"{name}_module.html") for name in plugin_names("modules")]
    wanted += [("lookup", name, f"{name}_lookup.html") for name in plugin_names("lookup")]
    wanted += [("filter", name, f"{name}_filter.html") for name in filter_names()]
    wanted += [("role", name, f"{name}_role.html") for name in role_names()]
    wanted += [("guide", name, f"docsite/{name}.html") for name in guide_names()]
    return wanted


@pytest.fixture(scope="session", autouse=True)
def built() -> None:
    if not (HTML / "index.html").is_file():
        pytest.fail(f"no site in {HTML}: build it first with bash hack/docs.sh (or run bash hack/docs.sh --test)")


def read(page: str) -> str:
    return (HTML / page).read_text(encoding="utf-8")


def test_the_checkout_has_something_of_each_kind() -> None:
    kinds = {wanted[0] for wanted in pages()}
    assert kinds == {"module", "lookup", "filter", "role", "guide"}


def test_lint_collection_docs_passed() -> None:
    status = DOCS / "lint.rc"
    assert status.is_file(), f"{status} is missing: hack/docs.sh writes the exit status of antsibull-docs lint-collection-docs there"
    rc = status.read_text(encoding="utf-8").strip()
    assert rc == "0", f"antsibull-docs lint-collection-docs exited {rc}:\n{(DOCS / 'lint.txt').read_text(encoding='utf-8')}"


def test_sphinx_gave_no_warnings() -> None:
    warnings_file = DOCS / "warnings.txt"
    assert warnings_file.is_file(), f"{warnings_file} is missing: hack/docs.sh has sphinx-build write its warnings there"
    lines = [line for line in warnings_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    unexpected = [line for line in lines if not UNREACHABLE_INVENTORY.search(line)]
    assert not unexpected, "Sphinx warned:\n" + "\n".join(unexpected)


def test_no_inventory_is_downloaded() -> None:
    """The build reaches no network: every intersphinx inventory is a local file."""
    conf: dict[str, object] = {"__file__": str(DOCS / "conf.py")}
    exec(compile((DOCS / "conf.py").read_text(encoding="utf-8"), str(DOCS / "conf.py"), "exec"), conf)
    mapping = conf.get("intersphinx_mapping") or {}
    assert isinstance(mapping, dict)
    for name, (_url, inventory) in mapping.items():
        locations = inventory if isinstance(inventory, tuple) else (inventory,)
        for location in locations:
            assert location is not None and not str(location).startswith(("http://", "https://")), (
                f"intersphinx_mapping[{name!r}] would download {location or 'the objects.inv of its URL'}"
            )
            assert (DOCS / "rst" / str(location)).resolve().is_file(), f"intersphinx_mapping[{name!r}]: {location} does not exist"


def test_site_title_and_address() -> None:
    index = read("index.html")
    assert f"<title>{COLLECTION}" in index or f"&mdash; {COLLECTION}" in index
    assert 'rel="canonical" href="https://kubedebug.github.io/ephemeral/index.html"' in index


@pytest.mark.parametrize(("kind", "name", "page"), pages(), ids=str)
def test_page(kind: str, name: str, page: str) -> None:
    assert (HTML / page).is_file(), f"the {kind} {name} has no page {page}"
    text = read(page)
    if kind == "guide":
        # The page was built from the guide's source: it has the anchor of the source's label.
        source = ROOT / "docs" / "docsite" / "rst" / f"{name}.rst"
        assert source.is_file(), f"extra-docs.yml lists {name}, which has no {source.relative_to(ROOT)}"
        label = re.search(r"^\.\. _([^:]+):\s*$", source.read_text(encoding="utf-8"), re.MULTILINE)
        assert label, f"{source.relative_to(ROOT)} has no label (.. _ansible_collections.kubedebug.ephemeral.docsite.{name}:)"
        anchor = re.sub(r"[^a-z0-9]+", "-", label.group(1).lower()).strip("-")
        assert f'id="{anchor}"' in text, f"{page} has no anchor {anchor}: not built from {source.relative_to(ROOT)}?"
    else:
        assert f"{COLLECTION}.{name}" in text, f"{page} does not name {COLLECTION}.{name}"


@pytest.mark.parametrize(("kind", "name", "page"), pages(), ids=str)
def test_index_links_to(kind: str, name: str, page: str) -> None:
    assert f'href="{page}"' in read("index.html"), f"index.html does not link to the {kind} {name} ({page})"
