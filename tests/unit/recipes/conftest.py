"""Run the recipe scripts (roles/recipe/files/<name>.sh) for real on this host.

A recipe runs in the debug container as ``sh -c "<prelude.sh>\\n<script>" <name> [args...]``
(see roles/recipe/tasks/main.yml) and must print one JSON object per line on stdout and
nothing on stderr: the container's log holds both streams, and the ephemeral_results lookup
stops parsing at the first line that is not JSON.

The ``run_recipe`` fixture does exactly that, once per shell a debug image may have:

* ``sh``: /bin/sh (dash on Debian) with this host's tools;
* ``bash-posix``: bash --posix (/bin/sh in RHEL/UBI-based images);
* ``busybox-sh``: ``busybox sh`` with this host's tools;
* ``busybox-image``: ``busybox sh`` with a PATH holding nothing but busybox applets, like
  the busybox debug image (no getent, curl, bash or real netcat).

Shells that are not installed are skipped. ``hide=`` runs a recipe with some tools taken
off its PATH (to exercise the fallbacks), ``stubs=`` puts fake tools first on it.

The busybox is ``$KD_BUSYBOX`` when set, else the one on PATH (recipe_runner.BUSYBOX); in
the shells with this host's tools it comes first on PATH, so that a recipe calling
``busybox nc`` runs the busybox under test. Tests ask ``run_recipe.has(tool)`` what the
recipe will find, rather than assume what a busybox build has.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from recipe_runner import BUSYBOX, busybox_bin, host_path

ROOT = Path(__file__).resolve().parents[3]
PRELUDE = ROOT / "roles" / "recipe" / "files" / "prelude.sh"
BASH = shutil.which("bash")


def recipe_script(name: str) -> str:
    """The text the recipe role hands to ``sh -c``: the prelude, a newline and the recipe."""
    script = ROOT / "roles" / "recipe" / "files" / f"{name}.sh"
    return PRELUDE.read_text(encoding="utf-8") + "\n" + script.read_text(encoding="utf-8")


@dataclass(frozen=True)
class Shell:
    """How to start a shell, and whether it sees only busybox applets on its PATH."""

    name: str
    argv: tuple[str, ...]
    busybox_image: bool = False


SHELLS = [
    pytest.param(Shell("sh", ("/bin/sh",)), id="sh"),
    pytest.param(Shell("bash-posix", (BASH or "bash", "--posix")), id="bash-posix", marks=pytest.mark.skipif(BASH is None, reason="bash is not installed")),
    pytest.param(
        Shell("busybox-sh", (BUSYBOX or "busybox", "sh")), id="busybox-sh", marks=pytest.mark.skipif(BUSYBOX is None, reason="busybox is not installed")
    ),
    pytest.param(
        Shell("busybox-image", (BUSYBOX or "busybox", "sh"), busybox_image=True),
        id="busybox-image",
        marks=pytest.mark.skipif(BUSYBOX is None, reason="busybox is not installed"),
    ),
]


def parse_json_lines(stdout: bytes, context: str) -> list[dict[str, Any]]:
    """Every line of a recipe's output as a JSON object; fails the test on anything else."""
    try:
        text = stdout.decode("utf-8")
    except UnicodeDecodeError as exc:
        pytest.fail(f"{context}: output is not UTF-8: {exc}\n{stdout!r}")
    lines = text.split("\n")
    if lines[-1] != "":
        pytest.fail(f"{context}: output does not end in a newline:\n{text}")
    records = []
    for number, line in enumerate(lines[:-1], start=1):
        try:
            record = json.loads(line)
        except ValueError as exc:
            pytest.fail(f"{context}: line {number} is not JSON ({exc}): {line!r}\n--- output:\n{text}")
        if not isinstance(record, dict):
            pytest.fail(f"{context}: line {number} is not a JSON object: {line!r}")
        records.append(record)
    return records


class RecipeRunner:
    """``run_recipe(name, *args)``: run a recipe in one shell and return its parsed lines."""

    def __init__(self, shell: Shell, workdir: Path) -> None:
        self.shell = shell
        self._workdir = workdir
        self._paths: dict[tuple[str, ...], str] = {}
        self._which: dict[tuple[str, str], str | None] = {}
        self.last_stderr = b""

    def base_path(self) -> str:
        """The PATH the shell runs with when nothing is hidden."""
        if self.shell.busybox_image:
            return busybox_bin()
        return host_path()

    def path(self, hide: Iterable[str] = ()) -> str:
        """The base PATH without the commands in ``hide`` (a directory of symlinks to the rest)."""
        key = tuple(sorted(set(hide)))
        if not key:
            return self.base_path()
        if key not in self._paths:
            target = self._workdir / f"path-{self.shell.name}-{'-'.join(key)}"
            target.mkdir()
            for directory in self.base_path().split(os.pathsep):
                if not directory or not os.path.isdir(directory):
                    continue
                for entry in os.scandir(directory):
                    link = target / entry.name
                    if entry.name in key or link.exists() or link.is_symlink():
                        continue
                    if entry.is_file() and os.access(entry.path, os.X_OK):
                        link.symlink_to(entry.path)
            self._paths[key] = str(target)
        return self._paths[key]

    def which(self, tool: str, hide: Iterable[str] = (), stubs: Path | None = None) -> str | None:
        """What the recipe's ``have``/``command -v`` finds for ``tool``, asked of the shell itself: a path, or the bare
        name when the shell runs it itself (a builtin, or an applet of a busybox built with a standalone shell, as
        Debian's busybox-static is: it runs its own nslookup, ip, wget... whatever PATH holds); None when not found."""
        path = self.path(hide)
        if stubs is not None:
            path = f"{stubs}{os.pathsep}{path}"
        key = (tool, path)
        if key not in self._which:
            argv = [*self.shell.argv, "-c", 'command -v "$1"', "which", tool]
            proc = subprocess.run(argv, capture_output=True, text=True, env={"PATH": path, "LC_ALL": "C"}, timeout=30, check=False)
            self._which[key] = (proc.stdout.strip() or None) if proc.returncode == 0 else None
        return self._which[key]

    def has(self, tool: str, hide: Iterable[str] = ()) -> bool:
        """Whether the recipe would find ``tool`` (see ``which``)."""
        return self.which(tool, hide) is not None

    def runs_stub(self, tool: str, stubs: Path, hide: Iterable[str] = ()) -> bool:
        """Whether the recipe would run the stub ``stubs/tool`` for ``tool``, rather than an applet of its shell."""
        return self.which(tool, hide, stubs) == str(stubs / tool)

    def __call__(
        self,
        name: str,
        *args: str,
        hide: Iterable[str] = (),
        stubs: Path | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 60,
        wrap: Sequence[str] = (),
    ) -> list[dict[str, Any]]:
        path = self.path(hide)
        if stubs is not None:
            path = f"{stubs}{os.pathsep}{path}"
        run_env = {key: value for key, value in os.environ.items() if not key.lower().endswith("_proxy") and not key.startswith("KD_")}
        run_env.update({"PATH": path, "LC_ALL": "C"})
        run_env.update(env or {})
        # wrap: a command that runs the shell elsewhere (private_resolver's nsenter into its namespaces).
        argv = [*wrap, *self.shell.argv, "-c", recipe_script(name), name, *args]
        proc = subprocess.run(argv, capture_output=True, env=run_env, timeout=timeout, check=False, cwd=self._workdir)
        context = f"{self.shell.name}: {name} {list(args)!r}"
        self.last_stderr = proc.stderr
        assert proc.returncode == 0, f"{context}: exit status {proc.returncode}\n{proc.stderr.decode(errors='replace')}"
        # stderr goes to the same container log as stdout: anything there breaks parsing.
        assert proc.stderr == b"", f"{context}: wrote to stderr:\n{proc.stderr.decode(errors='replace')}"
        return parse_json_lines(proc.stdout, context)


@pytest.fixture(scope="session")
def recipe_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("recipes")


@pytest.fixture(scope="session", params=SHELLS)
def recipe_shell(request: pytest.FixtureRequest) -> Shell:
    return request.param


@pytest.fixture(scope="session")
def run_recipe(recipe_shell: Shell, recipe_workdir: Path) -> RecipeRunner:
    """Run a recipe in each available shell: ``run_recipe("dns", "localhost") -> list[dict]``."""
    workdir = recipe_workdir / recipe_shell.name
    workdir.mkdir(exist_ok=True)
    return RecipeRunner(recipe_shell, workdir)


@pytest.fixture
def make_stub(tmp_path: Path) -> Callable[[str, str], Path]:
    """``make_stub(name, body)``: an executable /bin/sh script standing in for a tool; returns its directory."""
    directory = tmp_path / "stubs"

    def make(name: str, body: str) -> Path:
        directory.mkdir(exist_ok=True)
        path = directory / name
        path.write_text("#!/bin/sh\n" + body, encoding="utf-8")
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        return directory

    return make
