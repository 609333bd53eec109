"""roles/recipe/files/python.sh, run for real on this host against a real Python process (see recipe_runner).

py-spy comes from the test venv (tests/requirements-*.txt pin it): the script runs with
a PATH that has a directory holding nothing but py-spy appended, after the host PATH
(``sh``) or after the busybox applets (``busybox``, so that py-spy's JSON is read by
busybox ash with busybox tools only). py-spy needs ptrace: where this host does not
allow it (Yama ptrace_scope 3, or 1/2 without CAP_SYS_PTRACE: the script is not an
ancestor of the process it dumps) the tests expect the ok-false line instead.

Without --pid the script would dump every Python process of the host: that mode runs
in a private PID namespace (``unshare --pid --mount-proc``, root only) holding just the
process to dump, as in a pod whose containers share their process namespace.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from recipe_runner import ROLES, SHELLS, parse_json_lines, run_script, script_command

SCRIPT = ROLES / "recipe" / "files" / "python.sh"
PY_SPY = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
if PY_SPY is None and os.environ.get("CI") == "true":
    raise RuntimeError("py-spy is not installed: run hack/venv.sh (tests/requirements-*.txt)")
pytestmark = pytest.mark.skipif(PY_SPY is None, reason="py-spy is not installed (hack/venv.sh installs it)")

PTRACE_HINT = "py-spy needs ptrace"

# The process to dump: a named thread and the main thread, each asleep in a named function.
CHILD_CODE = """
import sys, threading, time

def kd_worker_loop():
    while True:
        time.sleep(1)

def kd_sleepy_function():
    time.sleep(600)

threading.Thread(target=kd_worker_loop, name="kd-worker", daemon=True).start()
print("ready", flush=True)
kd_sleepy_function()
"""


@cache
def ptrace_allowed() -> bool:
    """Whether a process of ours may ptrace a sibling process of the same user."""
    try:
        scope = Path("/proc/sys/kernel/yama/ptrace_scope").read_text(encoding="ascii").strip()
    except OSError:
        scope = "0"  # no Yama: classic same-uid rules
    cap_eff = 0
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith("CapEff:"):
            cap_eff = int(line.split()[1], 16)
    has_sys_ptrace = bool(cap_eff & (1 << 19))
    return scope == "0" or (scope in ("1", "2") and has_sys_ptrace)


@cache
def can_unshare() -> bool:
    """Whether ``unshare --pid --fork --mount-proc`` works here (root, not in a locked-down container)."""
    unshare = shutil.which("unshare")
    if unshare is None or os.geteuid() != 0:
        return False
    proc = subprocess.run([unshare, "--pid", "--fork", "--mount-proc", "--", "true"], capture_output=True, timeout=30, check=False)
    return proc.returncode == 0


@pytest.fixture(params=SHELLS)
def shell(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def py_spy_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding nothing but py-spy."""
    directory = tmp_path_factory.mktemp("py-spy-only")
    (directory / "py-spy").symlink_to(os.path.realpath(PY_SPY or "py-spy"))
    return directory


@pytest.fixture(scope="module")
def child() -> Iterator[int]:
    """The pid of a Python process asleep in kd_sleepy_function (main thread) and kd_worker_loop (thread kd-worker)."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD_CODE], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def command(*args: str, shell: str, py_spy_dir: Path | None) -> tuple[list[str], dict[str, str]]:
    argv, env = script_command(SCRIPT, "python", *args, shell=shell)
    if py_spy_dir is not None:
        env["PATH"] = f"{env['PATH']}{os.pathsep}{py_spy_dir}"
    return argv, env


def run(argv: list[str], env: dict[str, str], expect_rc: int = 0) -> list[dict[str, Any]]:
    proc = subprocess.run(argv, capture_output=True, env=env, timeout=120, check=False)
    assert proc.stderr == b"", f"python wrote to stderr: {proc.stderr[:500]!r}"
    assert proc.returncode == expect_rc, f"python exited {proc.returncode}"
    return parse_json_lines(proc.stdout)


def functions(thread: dict[str, Any]) -> list[str]:
    return [frame["function"] for frame in thread["frames"]]


def check_dump(rec: dict[str, Any], target: int | None) -> None:
    """The stack_dump line of CHILD_CODE (any pid when ``target`` is None)."""
    assert rec["check"] == "stack_dump"
    if target is not None:
        assert rec["target"] == str(target)
    if not ptrace_allowed():
        assert rec["ok"] is False
        assert "py-spy could not dump" in rec["detail"] and PTRACE_HINT in rec["detail"]
        assert rec["threads"] == []
        return
    assert rec["ok"] is True, rec["detail"]
    assert rec["tool"] == "py-spy" and rec["truncated"] is False
    threads = {thread["name"]: thread for thread in rec["threads"]}
    assert set(threads) == {"MainThread", "kd-worker"}
    assert functions(threads["MainThread"])[:2] == ["kd_sleepy_function", "<module>"]
    assert "kd_worker_loop" in functions(threads["kd-worker"])
    for thread in rec["threads"]:
        assert isinstance(thread["thread_id"], int)
        assert thread["frames_truncated"] is False
        for frame in thread["frames"]:
            assert set(frame) == {"function", "file", "line"}
            assert isinstance(frame["line"], int) and frame["line"] > 0
    sleepy = threads["MainThread"]["frames"][0]
    assert sleepy == {"function": "kd_sleepy_function", "file": "<string>", "line": 9}
    assert rec["detail"].startswith("2 threads, ")


def test_pid(child: int, shell: str, py_spy_bin: Path) -> None:
    records = run(*command("--pid", str(child), shell=shell, py_spy_dir=py_spy_bin))
    assert [rec["check"] for rec in records] == ["stack_dump", "summary"]
    check_dump(records[0], child)
    assert records[-1] == {"check": "summary", "target": "python", "ok": ptrace_allowed(), "detail": "1 Python processes", "count": 1}


def test_limits(child: int, py_spy_bin: Path) -> None:
    if not ptrace_allowed():
        pytest.skip("py-spy cannot attach here")
    records = run(*command("--pid", str(child), "--max-threads", "1", "--max-frames", "1", shell="sh", py_spy_dir=py_spy_bin))
    rec = records[0]
    assert rec["ok"] is True and rec["truncated"] is True
    assert len(rec["threads"]) == 1 and len(rec["threads"][0]["frames"]) == 1
    assert rec["threads"][0]["frames_truncated"] is True
    assert rec["detail"] == "2 threads, 1 frames (only the first 1 threads kept)"


def test_default_in_own_pid_namespace(shell: str, py_spy_bin: Path, tmp_path: Path) -> None:
    """Without --pid: every Python process of the (PID namespace of the) target, and none of the script's own."""
    if not can_unshare():
        pytest.skip("needs root and unshare --pid --mount-proc")
    argv, env = command(shell=shell, py_spy_dir=py_spy_bin)
    # PID 1 of the namespace starts the Python process, waits until it is ready, then runs the script.
    wrapper = '"$1" -c "$2" >"$3" & child=$!; while [ ! -s "$3" ]; do sleep 0.05; done; shift 3; "$@"; rc=$?; kill "$child"; exit "$rc"'
    full = ["unshare", "--pid", "--fork", "--mount-proc", "--", "/bin/sh", "-c", wrapper, "wrapper", sys.executable, CHILD_CODE, str(tmp_path / "ready"), *argv]
    records = run(full, env)
    assert [rec["check"] for rec in records] == ["stack_dump", "summary"]
    check_dump(records[0], None)
    assert records[-1]["count"] == 1


def test_no_py_spy_in_busybox_image(child: int) -> None:
    if "busybox" not in SHELLS:
        pytest.skip("busybox is not installed")
    records = run_script(SCRIPT, "python", "--pid", str(child), shell="busybox")
    assert records[0]["check"] == "stack_dump" and records[0]["ok"] is False
    assert records[0]["detail"].startswith("py-spy is not in the debug image")
    assert records[0]["threads"] == [] and records[0]["tool"] == ""
    assert records[-1] == {"check": "summary", "target": "python", "ok": False, "detail": "1 Python processes", "count": 1}


def test_not_python(shell: str, py_spy_bin: Path) -> None:
    """A process py-spy cannot read (not Python): ok false with py-spy's reason, no stack trace of py-spy's own."""
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        records = run(*command("--pid", str(sleeper.pid), shell=shell, py_spy_dir=py_spy_bin))
    finally:
        sleeper.kill()
        sleeper.wait()
    rec = records[0]
    assert rec["check"] == "stack_dump" and rec["ok"] is False and rec["threads"] == []
    assert rec["detail"].startswith(f"py-spy could not dump pid {sleeper.pid}: Error: ")
    assert PTRACE_HINT in rec["detail"] and "backtrace" not in rec["detail"]
    assert records[-1]["ok"] is False


def test_missing_pid() -> None:
    records = run_script(SCRIPT, "python", "--pid", "999999999")
    assert records[0]["ok"] is False and records[0]["detail"] == "no process 999999999"


@pytest.mark.parametrize("args", [("--pid",), ("--pid", "x"), ("--max-frames", "0"), ("--max-threads",), ("--bogus",)])
def test_bad_arguments(args: tuple[str, ...]) -> None:
    records = run_script(SCRIPT, "python", *args, expect_rc=2)
    assert [rec["check"] for rec in records] == ["args", "summary"]
    assert all(rec["ok"] is False for rec in records)
    assert "usage: python" in records[0]["detail"]
