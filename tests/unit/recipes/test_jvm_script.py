"""roles/recipe/files/jvm.sh, run for real on this host against a real JVM (see recipe_runner).

The JVM is a single-file source launch (``java Deadlock.java``) with two threads
deadlocked on two monitors and a third holding a lock while it sleeps. The script
attaches with the host's jcmd. Under busybox (``shell="busybox"``) the PATH holds
the busybox applets and a directory with only jcmd in it: busybox has no java, but
the script's own parsing (discovery, counting, the histogram rows) must work in
busybox ash, which is what a busybox-based image with a copied-in JDK would run.
Without that directory, the busybox image has neither jcmd nor jattach: that
case is checked as well.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from recipe_runner import ROLES, SHELLS, parse_json_lines, run_script, script_command

SCRIPT = ROLES / "recipe" / "files" / "jvm.sh"
JCMD = shutil.which("jcmd")
JAVA = shutil.which("java")

pytestmark = pytest.mark.skipif(JCMD is None or JAVA is None, reason="java and jcmd (a JDK) are not installed")

THREAD_NAMES = ("kd-deadlock-a", "kd-deadlock-b", "kd-lock-holder")

DEADLOCK_JAVA = """
public class Deadlock {
    static final Object A = new Object();
    static final Object B = new Object();
    static final Object HELD = new Object();

    static void pause(long ms) {
        try { Thread.sleep(ms); } catch (InterruptedException e) { }
    }

    public static void main(String[] args) throws Exception {
        Thread a = new Thread(() -> { synchronized (A) { pause(300); synchronized (B) { } } }, "kd-deadlock-a");
        Thread b = new Thread(() -> { synchronized (B) { pause(300); synchronized (A) { } } }, "kd-deadlock-b");
        Thread holder = new Thread(() -> { synchronized (HELD) { pause(600000); } }, "kd-lock-holder");
        a.setDaemon(true);
        b.setDaemon(true);
        holder.setDaemon(true);
        a.start();
        b.start();
        holder.start();
        while (a.getState() != Thread.State.BLOCKED || b.getState() != Thread.State.BLOCKED) {
            pause(20);
        }
        System.out.println("ready");
        System.out.flush();
        pause(600000);
    }
}
"""


@pytest.fixture(params=SHELLS)
def shell(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def jvm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The pid of a running JVM whose threads kd-deadlock-a and kd-deadlock-b are deadlocked."""
    directory = tmp_path_factory.mktemp("jvm")
    source = directory / "Deadlock.java"
    source.write_text(DEADLOCK_JAVA, encoding="utf-8")
    proc = subprocess.Popen([JAVA or "java", str(source)], cwd=directory, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the JVM exits (EOF) if it cannot compile or start
        assert line == b"ready\n", f"the JVM did not start: {line!r} {proc.stdout.read(2000)!r}"
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def jcmd_only_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding nothing but jcmd (for the busybox runs)."""
    directory = tmp_path_factory.mktemp("jcmd-only")
    (directory / "jcmd").symlink_to(os.path.realpath(JCMD or "jcmd"))
    return directory


def run_jvm(*args: str, shell: str, extra_path: Path | None = None) -> list[dict[str, Any]]:
    """Like ``run_script``, with ``extra_path`` appended to the PATH (busybox runs get jcmd that way)."""
    argv, env = script_command(SCRIPT, "jvm", *args, shell=shell)
    if extra_path is not None:
        env["PATH"] = f"{env['PATH']}{os.pathsep}{extra_path}"
    proc = subprocess.run(argv, capture_output=True, env=env, timeout=180, check=False)
    assert proc.stderr == b"", f"jvm wrote to stderr: {proc.stderr[:500]!r}"
    assert proc.returncode == 0, f"jvm exited {proc.returncode}"
    return parse_json_lines(proc.stdout)


def records_for(records: list[dict[str, Any]], pid: int) -> dict[str, dict[str, Any]]:
    return {rec["check"]: rec for rec in records if rec["target"] == str(pid)}


def check_thread_dump(rec: dict[str, Any], pid: int) -> None:
    assert rec["check"] == "thread_dump"
    assert rec["tool"] == "jcmd"
    assert rec["deadlocks"] == 1
    assert rec["ok"] is False, "a deadlock makes the dump not ok"
    assert "1 deadlock(s) found" in rec["detail"]
    assert isinstance(rec["threads"], int)
    assert rec["threads"] >= 4  # main, the three named threads, plus the JVM's own
    assert rec["truncated"] is False
    dump = rec["dump"]
    assert dump.startswith(f"{pid}:\n")
    assert "Full thread dump" in dump
    for name in THREAD_NAMES:
        assert f'"{name}"' in dump
    assert "Found one Java-level deadlock:" in dump
    assert "Found 1 deadlock." in dump


def check_histogram(rec: dict[str, Any]) -> None:
    assert rec["check"] == "heap_histogram"
    assert rec["ok"] is True, rec["detail"]
    assert rec["tool"] == "jcmd"
    top = rec["top"]
    assert len(top) == 20
    assert [row["rank"] for row in top] == list(range(1, 21))
    for row in top:
        assert set(row) == {"rank", "instances", "bytes", "class", "module"}
        assert isinstance(row["instances"], int) and row["instances"] > 0
        assert isinstance(row["bytes"], int) and row["bytes"] > 0
        assert isinstance(row["class"], str) and row["class"]
    assert [row["bytes"] for row in top] == sorted((row["bytes"] for row in top), reverse=True)
    assert isinstance(rec["total_bytes"], int) and rec["total_bytes"] >= sum(row["bytes"] for row in top)
    assert isinstance(rec["total_instances"], int) and rec["total_instances"] > 0


def test_pid(jvm: int, shell: str, jcmd_only_bin: Path) -> None:
    records = run_jvm("--pid", str(jvm), shell=shell, extra_path=jcmd_only_bin if shell == "busybox" else None)
    assert [rec["check"] for rec in records] == ["thread_dump", "heap_histogram", "summary"]
    check_thread_dump(records[0], jvm)
    check_histogram(records[1])
    assert records[-1] == {"check": "summary", "target": "jvm", "ok": False, "detail": "1 JVMs", "count": 1}


def test_default_finds_every_jvm(jvm: int, shell: str, jcmd_only_bin: Path) -> None:
    """Without --pid the JVM is found in /proc; the script and its jcmd children are not listed.

    --no-histogram: on a shared host another JVM may be found too, and GC.class_histogram
    would force a full GC in it.
    """
    records = run_jvm("--no-histogram", shell=shell, extra_path=jcmd_only_bin if shell == "busybox" else None)
    ours = records_for(records, jvm)
    assert set(ours) == {"thread_dump"}
    check_thread_dump(ours["thread_dump"], jvm)
    assert "heap_histogram" not in {rec["check"] for rec in records}
    dumps = [rec for rec in records if rec["check"] == "thread_dump"]
    summary = records[-1]
    assert summary["check"] == "summary" and summary["target"] == "jvm"
    assert summary["count"] == len(dumps) and summary["ok"] is False
    # Every process listed is a JVM, not this test (an ancestor) or a jcmd the script ran.
    assert str(os.getpid()) not in {rec["target"] for rec in dumps}


def test_max_bytes(jvm: int) -> None:
    records = run_script(SCRIPT, "jvm", "--pid", str(jvm), "--max-bytes", "500", "--no-histogram")
    rec = records[0]
    assert rec["truncated"] is True
    assert 490 <= len(rec["dump"].encode()) <= 500  # a trailing newline is dropped
    assert rec["deadlocks"] == 1, "counted before truncation"
    assert "truncated to 500 of" in rec["detail"]
    assert [r["check"] for r in records] == ["thread_dump", "summary"]


def test_no_jdk_in_busybox_image(jvm: int) -> None:
    """A plain busybox image has neither jcmd nor jattach: one clear ok-false line per check."""
    if "busybox" not in SHELLS:
        pytest.skip("busybox is not installed")
    records = run_script(SCRIPT, "jvm", "--pid", str(jvm), shell="busybox")
    dump, histogram, summary = records
    assert dump["check"] == "thread_dump" and dump["ok"] is False
    assert "neither jcmd nor jattach" in dump["detail"]
    assert dump["tool"] == "" and dump["dump"] == "" and dump["threads"] == 0
    assert histogram["check"] == "heap_histogram" and histogram["ok"] is False and histogram["top"] == []
    assert summary == {"check": "summary", "target": "jvm", "ok": False, "detail": "1 JVMs", "count": 1}


@pytest.fixture(scope="module")
def jattach_stub_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding only a jattach stand-in: jattach's header lines, then what jcmd prints."""
    directory = tmp_path_factory.mktemp("jattach-only")
    stub = directory / "jattach"
    stub.write_text(
        "#!/bin/sh\n"
        "case $2 in threaddump) cmd=Thread.print ;; inspectheap) cmd=GC.class_histogram ;; *) exit 1 ;; esac\n"
        'echo "Connected to remote JVM"\n'
        'echo "JVM response code = 0"\n'
        f'exec {JCMD} "$1" "$cmd"\n',
        encoding="utf-8",
    )
    stub.chmod(0o755)
    return directory


def test_jattach_fallback(jvm: int, jattach_stub_bin: Path) -> None:
    """Without jcmd (a busybox PATH), jattach is used; its header lines are not part of the dump."""
    if "busybox" not in SHELLS:
        pytest.skip("busybox is not installed")
    records = run_jvm("--pid", str(jvm), shell="busybox", extra_path=jattach_stub_bin)
    dump, histogram, summary = records
    assert dump["tool"] == "jattach" and histogram["tool"] == "jattach"
    assert dump["deadlocks"] == 1 and "Connected to remote JVM" not in dump["dump"]
    assert dump["dump"].startswith(f"{jvm}:\n")
    assert histogram["ok"] is True and len(histogram["top"]) == 20
    assert summary["count"] == 1


def test_not_a_jvm(shell: str) -> None:
    """--pid of a process that is not a JVM: ok false, and no jcmd (whose SIGQUIT would kill it)."""
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        records = run_jvm("--pid", str(sleeper.pid), shell=shell)
        assert sleeper.poll() is None, "the process was signalled"
    finally:
        sleeper.kill()
        sleeper.wait()
    rec = records[0]
    assert rec["check"] == "thread_dump" and rec["ok"] is False
    assert rec["detail"].startswith(f"pid {sleeper.pid} is not a JVM")
    assert [r["check"] for r in records] == ["thread_dump", "summary"]
    assert records[-1]["ok"] is False


def test_missing_pid() -> None:
    records = run_script(SCRIPT, "jvm", "--pid", "999999999")
    assert records[0]["ok"] is False and records[0]["detail"] == "no process 999999999"
    assert records[-1] == {"check": "summary", "target": "jvm", "ok": False, "detail": "1 JVMs", "count": 1}


@pytest.mark.parametrize("args", [("--pid",), ("--pid", "x"), ("--max-bytes", "0"), ("--bogus",)])
def test_bad_arguments(args: tuple[str, ...]) -> None:
    records = run_script(SCRIPT, "jvm", *args, expect_rc=2)
    assert [rec["check"] for rec in records] == ["args", "summary"]
    assert all(rec["ok"] is False for rec in records)
    assert "usage: jvm" in records[0]["detail"]
