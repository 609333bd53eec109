"""roles/recipe/files/filesystem.sh, run for real on this host (see recipe_runner).

With ``--pid <this process>``, /proc/<pid>/root is the host's /, so absolute paths
under tmp_path are the real files the test made, and /proc/<pid>/mounts the host's
mount table.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from recipe_runner import ROLES, SHELLS, run_script

SCRIPT = ROLES / "recipe" / "files" / "filesystem.sh"
PSEUDO = {"proc", "sysfs", "cgroup", "cgroup2", "devpts", "mqueue"}
DIR_ENTRIES = {"a", ".hidden", "..dots", "sp ace", 'ünï"code', "new\nline", "ctl\x01\x1f", "back\\slash"}


@pytest.fixture(params=SHELLS)
def shell(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    """Files and directories to look at; every name is awkward in JSON or in sh."""
    quoted = tmp_path / 'q"uote \\ file.txt'
    quoted.write_bytes(b'hello "world"\n\\n\x00\xff')
    quoted.chmod(0o640)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(70_000))  # more than the default --max-bytes (65536)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    directory = tmp_path / "d i r"
    directory.mkdir()
    for name in DIR_ENTRIES:
        (directory / name).write_text("x")
    many = tmp_path / "many"
    many.mkdir()
    for number in range(205):
        (many / f"f{number:03d}").write_text("")
    link = tmp_path / "link"
    link.symlink_to(quoted)  # absolute target: resolved inside the target's root
    rel_link = directory / "up"
    rel_link.symlink_to("../big.bin")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # reading it would block: must be refused, not read
    return {
        "quoted": quoted,
        "big": big,
        "empty": empty,
        "dir": directory,
        "many": many,
        "link": link,
        "rel_link": rel_link,
        "fifo": fifo,
        "missing": tmp_path / "missing",
    }


def run(shell: str, *args: str, expect_rc: int | None = 0) -> list[dict[str, Any]]:
    return run_script(SCRIPT, "filesystem", "--pid", str(os.getpid()), *args, shell=shell, expect_rc=expect_rc)


def by_target(records: list[dict[str, Any]], check: str) -> dict[str, dict[str, Any]]:
    return {rec["target"]: rec for rec in records if rec["check"] == check}


def assert_file(rec: dict[str, Any], path: Path, max_bytes: int, resolved: Path | None = None) -> None:
    data = path.read_bytes()
    assert rec["ok"] is True, rec
    assert rec["detail"] == ""
    assert rec["resolved"] == os.path.realpath(resolved or path)
    assert rec["size"] == len(data)
    assert rec["mode"] == f"{stat.S_IMODE(path.stat().st_mode):04o}"
    assert rec["sha256"] == hashlib.sha256(data).hexdigest()
    assert base64.b64decode(rec["content_base64"], validate=True) == data[:max_bytes]
    assert rec["truncated"] is (len(data) > max_bytes)


def check_summary(records: list[dict[str, Any]], pid: int) -> None:
    body = records[:-1]
    filesystems = sum(rec["check"] == "disk_usage" for rec in body)
    assert records[-1] == {
        "check": "summary",
        "target": "filesystem",
        "ok": all(rec["ok"] for rec in body),
        "detail": f"{filesystems} filesystems, {len(body) - filesystems} paths",
        "count": len(body),
        "pid": pid,
    }


def mountpoint_of(path: Path) -> str:
    """The longest mountpoint in /proc/self/mounts holding ``path``."""
    best = "/"
    with open("/proc/self/mounts", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            point = line.split()[1]
            for escape, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
                point = point.replace(escape, char)
            if (str(path) + "/").startswith(point.rstrip("/") + "/") and len(point) > len(best):
                best = point
    return best


def test_files(shell: str, tree: dict[str, Path]) -> None:
    paths = [tree[key] for key in ("quoted", "big", "empty", "link", "rel_link")]
    records = run(shell, *map(str, paths))
    check_summary(records, os.getpid())
    files = by_target(records, "file")
    assert_file(files[str(tree["quoted"])], tree["quoted"], 65536)
    assert files[str(tree["quoted"])]["mode"] == "0640"
    assert_file(files[str(tree["big"])], tree["big"], 65536)
    assert files[str(tree["big"])]["truncated"] is True
    assert_file(files[str(tree["empty"])], tree["empty"], 65536)
    assert files[str(tree["empty"])]["content_base64"] == ""
    assert_file(files[str(tree["link"])], tree["quoted"], 65536, resolved=tree["quoted"])
    assert_file(files[str(tree["rel_link"])], tree["big"], 65536, resolved=tree["big"])
    assert records[-1]["ok"] is True


@pytest.mark.parametrize("max_bytes", [0, 1, 1000, 70_000])
def test_max_bytes(shell: str, tree: dict[str, Path], max_bytes: int) -> None:
    records = run(shell, "--max-bytes", str(max_bytes), str(tree["big"]), str(tree["quoted"]))
    files = by_target(records, "file")
    assert_file(files[str(tree["big"])], tree["big"], max_bytes)
    assert_file(files[str(tree["quoted"])], tree["quoted"], max_bytes)


def test_directories(shell: str, tree: dict[str, Path]) -> None:
    records = run(shell, str(tree["dir"]), str(tree["many"]))
    dirs = by_target(records, "dir")
    small = dirs[str(tree["dir"])]
    assert small["ok"] is True
    assert small["resolved"] == str(tree["dir"])
    assert small["mode"] == f"{stat.S_IMODE(tree['dir'].stat().st_mode):04o}"
    assert set(small["entries"]) == DIR_ENTRIES | {"up"}
    assert small["count"] == len(DIR_ENTRIES) + 1
    assert small["truncated"] is False
    many = dirs[str(tree["many"])]
    assert len(many["entries"]) == 200
    assert set(many["entries"]) <= {f"f{number:03d}" for number in range(205)}
    assert many["count"] == 205
    assert many["truncated"] is True
    check_summary(records, os.getpid())


def test_bad_paths(shell: str, tree: dict[str, Path]) -> None:
    records = run(shell, str(tree["missing"]), str(tree["fifo"]), "relative/path", "--", "--dashes")
    files = by_target(records, "file")
    assert files[str(tree["missing"])]["ok"] is False
    assert files[str(tree["missing"])]["detail"] == "no such file or directory"
    assert files[str(tree["fifo"])]["ok"] is False
    assert files[str(tree["fifo"])]["detail"] == "not a regular file or directory: fifo"
    for relative in ("relative/path", "--dashes"):
        assert files[relative]["ok"] is False
        assert files[relative]["detail"].startswith("not an absolute path")
    check_summary(records, os.getpid())
    assert records[-1]["ok"] is False


def test_disk_usage(shell: str, tmp_path: Path) -> None:
    records = run(shell)
    check_summary(records, os.getpid())
    usage = by_target(records, "disk_usage")
    assert len(usage) == len(records) - 1  # no paths asked: disk usage only
    rec = usage[mountpoint_of(tmp_path)]
    fs = os.statvfs(tmp_path)
    assert abs(rec["size_kb"] - fs.f_blocks * fs.f_frsize // 1024) <= 1
    for rec in usage.values():
        assert rec["fstype"] not in PSEUDO
        assert not rec["target"].startswith(("/proc/", "/sys/")) and rec["target"] not in ("/proc", "/sys")
        for key in ("size_kb", "used_kb", "avail_kb"):
            assert isinstance(rec[key], int) and rec[key] >= 0, rec
        if rec["use_percent"] is None:  # a filesystem of size 0 (df shows "-")
            assert rec["size_kb"] == 0 and rec["ok"] is True, rec
            continue
        assert isinstance(rec["use_percent"], int) and 0 <= rec["use_percent"] <= 100, rec
        assert rec["ok"] is (rec["use_percent"] < 90)
        assert rec["detail"].startswith(f"{rec['fstype']} on {rec['device']}: {rec['use_percent']}% used")


def test_default_pid_is_not_ours(shell: str) -> None:
    records = run_script(SCRIPT, "filesystem", shell=shell)
    pid = records[-1]["pid"]
    assert isinstance(pid, int)
    assert pid not in (os.getpid(), os.getppid())  # ancestors of the script are its own


def test_unreadable_target(shell: str) -> None:
    records = run_script(SCRIPT, "filesystem", "--pid", "999999999", "/etc/hostname", shell=shell)
    assert records[0]["check"] == "target"
    assert records[0]["ok"] is False
    assert records[-1] == {"check": "summary", "target": "filesystem", "ok": False, "detail": "target not readable", "count": 0, "pid": 999999999}


@pytest.mark.parametrize(
    ("args", "detail"),
    [
        (["--pid"], "--pid needs a value"),
        (["--max-bytes", "lots"], "--max-bytes wants a number, not: lots"),
        (["--pid=x"], "--pid wants a number, not: x"),
        (["--frobnicate"], "unknown option: --frobnicate"),
    ],
)
def test_bad_arguments(shell: str, args: list[str], detail: str) -> None:
    records = run_script(SCRIPT, "filesystem", *args, shell=shell, expect_rc=2)
    assert [rec["check"] for rec in records] == ["args", "summary"]
    assert records[0]["ok"] is False
    assert records[0]["detail"].startswith(detail + " (usage: filesystem")
    assert records[1]["ok"] is False


def test_no_jinja_markers() -> None:
    """The roles hand the script around in Ansible variables: nothing in it may look like a template."""
    text = SCRIPT.read_text(encoding="utf-8")
    for marker in ("{{", "{%", "{#"):
        assert marker not in text
