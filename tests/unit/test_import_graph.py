# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The layering of plugins/ (hack/import-graph.py): every import points down, and the checker notices one that does not."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "hack" / "import-graph.py"


def load_checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("import_graph", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_import_of_plugins_points_down() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "every one points down" in done.stderr
    assert "layer 2: API client" in done.stdout and "module_utils._client                     -> _errors\n" in done.stdout


PREFIX = "ansible_collections.kubedebug.ephemeral.plugins.module_utils"


def checker_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str]) -> ModuleType:
    """The checker, pointed at a tree of module_utils files with the given sources."""
    checker = load_checker()
    plugins = tmp_path / "plugins" / "module_utils"
    plugins.mkdir(parents=True)
    for name, source in files.items():
        (plugins / name).write_text(source)
    monkeypatch.setattr(checker, "ROOT", tmp_path)
    return checker


def test_an_upward_import_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    checker = checker_over(
        tmp_path,
        monkeypatch,
        {
            "_errors.py": "",
            "_client.py": f"from {PREFIX}._spec import plan_pods\n",
            "_spec.py": f"from {PREFIX}._errors import KubedebugError\n",
        },
    )
    assert checker.main([]) == 1
    assert checker.layer_of("module_utils._spec") > checker.layer_of("module_utils._client")
    edges = {name: checker.imports_of(path) for name, path in checker.plugin_files().items()}
    assert edges == {
        "module_utils._client": {"module_utils._spec"},
        "module_utils._errors": set(),
        "module_utils._spec": {"module_utils._errors"},
    }


def test_the_upward_import_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    files = {"_client.py": f"import {PREFIX}._spec\n", "_spec.py": "", "_stray.py": ""}
    checker = checker_over(tmp_path, monkeypatch, files)
    assert checker.main([]) == 1
    err = capsys.readouterr().err
    assert "module_utils._client (layer 2) imports module_utils._spec (layer 4): arrows must point down" in err
    assert "module_utils._stray: not placed in a layer" in err


def test_a_tree_whose_imports_point_down_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    checker = checker_over(tmp_path, monkeypatch, {"_errors.py": "", "_client.py": f"from {PREFIX}._errors import X\n"})
    assert checker.main([]) == 0
    assert "1 imports in 2 files, every one points down" in capsys.readouterr().err
