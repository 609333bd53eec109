"""roles/recipe/files/processes.sh, run for real on this host (see recipe_runner).

On a host /proc shows every process, and the script's ancestors (pytest among them)
and children count as its own; a child started here is someone else's and must be
listed, with its exact command line.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from recipe_runner import ROLES, SHELLS, parse_json_lines, run_script, script_command, script_text

SCRIPT = ROLES / "recipe" / "files" / "processes.sh"

# Arguments the child is started with: everything JSON must escape, and what the
# script's NUL/newline juggling could get wrong (empty, trailing/only newlines).
TRICKY_ARGS = [
    'a b"c',
    "back\\slash",
    "two\nlines",
    "",
    "ünï©ode ✓",
    "tab\there",
    "ctl\x01\x1b\x7fend",
    "trailing newlines\n\n",
    "\n",
    "cr\r",
    "--exclude-self",
]


@pytest.fixture(params=SHELLS)
def shell(request: pytest.FixtureRequest) -> str:
    return request.param


def wait_for_cmdline(pid: int, argv: list[str], timeout: float = 10) -> None:
    """Wait until ``pid`` has exec'd ``argv`` (Popen returns right after the fork)."""
    expected = b"".join(arg.encode() + b"\0" for arg in argv)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            if fh.read() == expected:
                return
        time.sleep(0.02)
    raise AssertionError(f"pid {pid} did not exec {argv!r}")


@pytest.fixture
def child() -> Iterator[tuple[subprocess.Popen[bytes], list[str]]]:
    """A sleeping Python process with TRICKY_ARGS in its command line."""
    argv = [sys.executable, "-c", "import time; time.sleep(120)", *TRICKY_ARGS]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_cmdline(proc.pid, argv)
        yield proc, argv
    finally:
        proc.kill()
        proc.wait()


def by_pid(records: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {rec["pid"]: rec for rec in records if rec["check"] == "process"}


def check_summary(records: list[dict[str, Any]]) -> None:
    processes = [rec for rec in records if rec["check"] == "process"]
    assert records[-1] == {
        "check": "summary",
        "target": "processes",
        "ok": all(rec["ok"] for rec in processes),
        "detail": f"{len(processes)} processes",
        "count": len(processes),
    }
    assert len(processes) == len(records) - 1


def test_child_listed_with_exact_fields(shell: str, child: tuple[subprocess.Popen[bytes], list[str]]) -> None:
    proc, argv = child
    records = run_script(SCRIPT, "processes", shell=shell)
    check_summary(records)
    rec = by_pid(records)[proc.pid]
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert rec["cmdline"] == argv
    assert rec["target"] == str(proc.pid)
    assert rec["ok"] is True
    assert rec["detail"] == ""
    assert rec["ppid"] == os.getpid()
    assert rec["uid"] == os.getuid()
    assert rec["name"] == os.path.basename(sys.executable)[:15]
    assert rec["state"] in {"R", "S", "D"}
    assert isinstance(rec["state_desc"], str) and rec["state_desc"]
    assert isinstance(rec["threads"], int) and rec["threads"] >= 1
    assert isinstance(rec["open_fds"], int) and rec["open_fds"] >= 3  # stdin, stdout, stderr at least
    assert rec["max_open_files"] == (None if soft == resource.RLIM_INFINITY else soft)
    assert isinstance(rec["rss_kb"], int) and rec["rss_kb"] > 0
    for other in by_pid(records).values():
        assert isinstance(other["cmdline"], list)
        assert other["open_fds"] is None or isinstance(other["open_fds"], int)
        assert other["max_open_files"] is None or isinstance(other["max_open_files"], int)
        assert other["rss_kb"] is None or isinstance(other["rss_kb"], int)


def test_own_processes_left_out(shell: str, child: tuple[subprocess.Popen[bytes], list[str]]) -> None:
    argv, env = script_command(SCRIPT, "processes", "--exclude-self", shell=shell)
    script = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdout, stderr = script.communicate(timeout=120)
    assert stderr == b""
    assert script.returncode == 0
    records = parse_json_lines(stdout)
    check_summary(records)
    pids = by_pid(records)
    assert script.pid not in pids  # itself
    assert os.getpid() not in pids  # an ancestor: pytest
    assert os.getppid() not in pids
    assert child[0].pid in pids  # a sibling is not ours


def test_include_self_lists_the_script(shell: str) -> None:
    argv, env = script_command(SCRIPT, "processes", "--include-self", shell=shell)
    script = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdout, stderr = script.communicate(timeout=120)
    assert stderr == b""
    records = parse_json_lines(stdout)
    check_summary(records)
    rec = by_pid(records)[script.pid]
    # The whole script text is one argument: quotes, backslashes, newlines, round-tripped.
    assert rec["cmdline"][-4:] == ["-c", script_text(SCRIPT), "processes", "--include-self"]
    assert os.getpid() in by_pid(records)


def test_open_files_near_the_limit(shell: str) -> None:
    code = (
        "import os, resource, sys, time\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (16, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))\n"
        "fds = []\n"
        "while True:\n"
        "    try:\n"
        "        fds.append(os.open('/dev/null', os.O_RDONLY))\n"
        "    except OSError:\n"
        "        break\n"
        "sys.stdout.write('ready\\n'); sys.stdout.flush()\n"
        "time.sleep(120)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"
        records = run_script(SCRIPT, "processes", shell=shell)
    finally:
        proc.kill()
        proc.wait()
    check_summary(records)
    rec = by_pid(records)[proc.pid]
    assert rec["open_fds"] == 16
    assert rec["max_open_files"] == 16
    assert rec["ok"] is False
    assert rec["detail"] == "16 open files, >= 90% of the soft limit 16"
    assert records[-1]["ok"] is False


def test_unknown_argument(shell: str) -> None:
    records = run_script(SCRIPT, "processes", "--bogus", 'x"y', shell=shell, expect_rc=2)
    assert records == [
        {
            "check": "args",
            "target": "processes",
            "ok": False,
            "detail": "unknown argument: --bogus (usage: processes [--exclude-self|--include-self])",
        },
        {"check": "summary", "target": "processes", "ok": False, "detail": "bad arguments", "count": 0},
    ]


def test_no_jinja_markers() -> None:
    """The roles hand the script around in Ansible variables: nothing in it may look like a template."""
    text = SCRIPT.read_text(encoding="utf-8")
    for marker in ("{{", "{%", "{#"):
        assert marker not in text
