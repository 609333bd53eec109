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


def test_an_upward_import_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    checker = load_checker()
    plugins = tmp_path / "plugins" / "module_utils"
    plugins.mkdir(parents=True)
    (plugins / "_errors.py").write_text("")
    (plugins / "_client.py").write_text("from ansible_collections.kubedebug.ephemeral.plugins.module_utils._spec import plan_pods\n")
    (plugins / "_spec.py").write_text("from ansible_collections.kubedebug.ephemeral.plugins.module_utils._errors import KubedebugError\n")
    (plugins / "_stray.py").write_text("")
    monkeypatch.setattr(checker, "ROOT", tmp_path)
    assert checker.main([]) == 1
    assert checker.layer_of("module_utils._spec") > checker.layer_of("module_utils._client")
    edges = {name: checker.imports_of(path) for name, path in checker.plugin_files().items()}
    assert edges["module_utils._client"] == {"module_utils._spec"}


def test_the_upward_import_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    checker = load_checker()
    plugins = tmp_path / "plugins" / "module_utils"
    plugins.mkdir(parents=True)
    (plugins / "_client.py").write_text("import ansible_collections.kubedebug.ephemeral.plugins.module_utils._spec\n")
    (plugins / "_spec.py").write_text("")
    (plugins / "_stray.py").write_text("")
    monkeypatch.setattr(checker, "ROOT", tmp_path)
    assert checker.main([]) == 1
    err = capsys.readouterr().err
    assert "module_utils._client (layer 2) imports module_utils._spec (layer 4): arrows must point down" in err
    assert "module_utils._stray: not placed in a layer" in err
