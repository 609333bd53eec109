"""Run a recipe script for real on the test host, the way the debug container does.

A recipe runs as ``sh -c "<prelude.sh + script>" <name> [args...]`` and its container
log (stdout and stderr together) is parsed as JSON lines. ``run_script`` does the
same with ``subprocess`` and fails the test unless every stdout line is one JSON
object and stderr is empty (in the container it would land between the lines).

``shell`` is ``"sh"`` (the host's /bin/sh, dash on Debian) or ``"busybox"``: then the
script runs under ``busybox sh`` with a PATH holding nothing but busybox applets, as
in a busybox debug image, so that no GNU tool stands in for a missing applet.
``SHELLS`` lists the shells this host has, for ``pytest.mark.parametrize``.

Which busybox: ``$KD_BUSYBOX`` (an absolute path, e.g. the binary of Debian's
busybox-static unpacked with ``dpkg-deb -x``), else the one on PATH. Builds differ in
their applets (Debian's ``busybox`` and ``busybox-static`` do): a test that needs an
applet asks the build it runs (``busybox_applets()``), never assumes.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
ROLES = ROOT / "roles"
PRELUDE = ROLES / "recipe" / "files" / "prelude.sh"


def _select_busybox() -> str | None:
    chosen = os.environ.get("KD_BUSYBOX")
    if not chosen:
        return shutil.which("busybox")
    if not (os.path.isabs(chosen) and os.path.isfile(chosen) and os.access(chosen, os.X_OK)):
        raise RuntimeError(f"KD_BUSYBOX={chosen!r} is not an executable file given by its absolute path: unset it to use the busybox on PATH")
    return chosen


BUSYBOX = _select_busybox()
SHELLS: tuple[str, ...] = ("sh", "busybox") if BUSYBOX else ("sh",)
# CI installs busybox (hack/prereqs.sh): there, a missing busybox must not quietly halve the tests.
if os.environ.get("CI") == "true" and "busybox" not in SHELLS:
    raise RuntimeError("busybox is not installed: run hack/prereqs.sh")


@cache
def busybox_applets() -> frozenset[str]:
    """The applets of the busybox under test, as it lists them (``busybox`` itself included)."""
    if BUSYBOX is None:
        raise RuntimeError("busybox is not installed (hack/prereqs.sh), and KD_BUSYBOX is not set")
    # busybox-static lists "busybox" among its applets, the dynamic build does not.
    return frozenset(subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()) | {"busybox"}


@cache
def busybox_bin() -> str:
    """A directory with one symlink per busybox applet, ``busybox`` included (removed at exit)."""
    assert BUSYBOX is not None
    directory = tempfile.mkdtemp(prefix="recipe-busybox-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    for applet in sorted(busybox_applets()):
        os.symlink(BUSYBOX, os.path.join(directory, applet))
    return directory


@cache
def busybox_only_dir() -> str:
    """A directory holding nothing but ``busybox`` (the one under test): first on PATH, recipes that call
    ``busybox APPLET`` run that one, not whichever busybox the host has (removed at exit)."""
    assert BUSYBOX is not None
    directory = tempfile.mkdtemp(prefix="recipe-busybox-only-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    os.symlink(BUSYBOX, os.path.join(directory, "busybox"))
    return directory


def host_path() -> str:
    """The host's PATH, with the busybox under test in front when there is one."""
    return f"{busybox_only_dir()}{os.pathsep}{os.environ['PATH']}" if BUSYBOX else os.environ["PATH"]


def script_text(script_path: str | os.PathLike[str]) -> str:
    """The prelude followed by the recipe script, as the role hands them to ``sh -c``."""
    return PRELUDE.read_text(encoding="utf-8") + "\n" + Path(script_path).read_text(encoding="utf-8")


def script_command(script_path: str | os.PathLike[str], name: str, *args: str, shell: str = "sh") -> tuple[list[str], dict[str, str]]:
    """``(argv, env)`` that run the recipe with ``shell`` (see the module docstring)."""
    env = dict(os.environ, LC_ALL="C.UTF-8")
    if shell == "sh":
        argv = ["sh"]
        env["PATH"] = host_path()
    elif shell == "busybox":
        argv = [BUSYBOX or "busybox", "sh"]
        env["PATH"] = busybox_bin()
    else:
        raise ValueError(f"unknown shell: {shell}")
    return [*argv, "-c", script_text(script_path), name, *args], env


def parse_json_lines(stdout: bytes) -> list[dict[str, Any]]:
    """Every line of ``stdout`` as a JSON object; AssertionError on anything else.

    Decoded as the collection decodes container logs (UTF-8, errors replaced).
    """
    text = stdout.decode("utf-8", errors="replace")
    assert text == "" or text.endswith("\n"), f"output does not end with a newline: {text[-200:]!r}"
    records = []
    for number, line in enumerate(text.split("\n")[:-1], start=1):
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise AssertionError(f"line {number} is not JSON: {exc}: {line[:300]!r}") from None
        assert isinstance(record, dict), f"line {number} is not a JSON object: {line[:300]!r}"
        records.append(record)
    return records


def run_script(
    script_path: str | os.PathLike[str],
    name: str,
    *args: str,
    shell: str = "sh",
    expect_rc: int | None = 0,
    timeout: float = 120,
) -> list[dict[str, Any]]:
    """Run the recipe and return its output lines, parsed; fails on non-JSON output, stderr or another exit code."""
    argv, env = script_command(script_path, name, *args, shell=shell)
    proc = subprocess.run(argv, capture_output=True, env=env, timeout=timeout, check=False)
    assert proc.stderr == b"", f"{name} wrote to stderr (the container log would mix it in): {proc.stderr[:500]!r}"
    records = parse_json_lines(proc.stdout)
    if expect_rc is not None:
        assert proc.returncode == expect_rc, f"{name} exited {proc.returncode}, expected {expect_rc}"
    return records
