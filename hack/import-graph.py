# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Print the import graph of plugins/ by layer, and fail if an import points up or sideways.

    python3 hack/import-graph.py            # the layers and every arrow
    python3 hack/import-graph.py --dot      # the same as Graphviz

The layers are the architecture (README "Architecture"): each file may import
only files of a lower layer, plus the files listed in SAME_LAYER_OK. Reads the
sources with ast; imports nothing of the collection.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "ansible_collections.kubedebug.ephemeral.plugins."

# Bottom first. A file missing here is reported, so a new file must be placed on purpose.
LAYERS: list[tuple[str, list[str]]] = [
    ("errors", ["module_utils._errors"]),
    ("connection and plain data", ["module_utils._auth", "module_utils._outcome", "module_utils._options"]),
    ("API client (HTTP, retries, error translation)", ["module_utils._client"]),
    ("pod readers and selection", ["module_utils._pods", "module_utils._selection"]),
    (
        "pure planning and records",
        [
            "module_utils._spec",
            "module_utils._preflight",
            "module_utils._results",
            "module_utils._snapshot",
            "module_utils._debugged",
            "plugin_utils._recipes",
        ],
    ),
    (
        "managers (one per front end)",
        [
            "module_utils._container_manager",
            "module_utils._results_manager",
            "module_utils._snapshot_manager",
            "module_utils._debugged_manager",
        ],
    ),
    ("front-end glue", ["module_utils._module", "plugin_utils._lookup"]),
    ("front ends", ["modules.*", "lookup.*", "filter.*", "action.*", "doc_fragments.*"]),
]


def layer_of(name: str) -> int | None:
    for index, (_title, members) in enumerate(LAYERS):
        for member in members:
            if member == name or (member.endswith(".*") and name.startswith(member[:-1])):
                return index
    return None


def plugin_files() -> dict[str, Path]:
    files = {}
    for path in sorted((ROOT / "plugins").rglob("*.py")):
        if path.name == "__init__.py":
            continue
        rel = path.relative_to(ROOT / "plugins").with_suffix("")
        files[".".join(rel.parts)] = path
    return files


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PREFIX):
            found.add(node.module[len(PREFIX) :])
        elif isinstance(node, ast.Import):
            found.update(a.name[len(PREFIX) :] for a in node.names if a.name.startswith(PREFIX))
    return found


def main(argv: list[str]) -> int:
    files = plugin_files()
    edges = {name: sorted(imports_of(path)) for name, path in files.items()}
    problems = [f"{name}: not placed in a layer (edit LAYERS in {Path(__file__).name})" for name in files if layer_of(name) is None]
    for name, targets in edges.items():
        here = layer_of(name)
        for target in targets:
            there = layer_of(target)
            if here is not None and there is not None and there >= here:
                problems.append(f"{name} (layer {here}) imports {target} (layer {there}): arrows must point down")
    if "--dot" in argv:
        print("digraph plugins {\n  rankdir=BT;")
        for name, targets in edges.items():
            for target in targets:
                print(f'  "{name}" -> "{target}";')
        print("}")
    else:
        for index, (title, _members) in reversed(list(enumerate(LAYERS))):
            print(f"layer {index}: {title}")
            for name in sorted(n for n in files if layer_of(n) == index):
                arrows = ", ".join(t.split(".")[-1] for t in edges[name]) or "-"
                print(f"  {name:40} -> {arrows}")
    sys.stdout.flush()
    for problem in problems:
        print(f"import-graph: {problem}", file=sys.stderr)
    if not problems:
        print(f"import-graph: {sum(map(len, edges.values()))} imports in {len(files)} files, every one points down", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
