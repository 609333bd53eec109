# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for the report_files action: what it writes, when it reports a change, and what it refuses.

The functions are tested on a temporary directory; one ansible-playbook run (no cluster) checks the task a
playbook writes: check mode, --diff, the real run and the rerun.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.errors import AnsibleActionFail

from ansible_collections.kubedebug.ephemeral.plugins.action.report_files import apply, check_arguments, plan

FILES = {"summary.json": '{\n  "pods": 10\n}\n', "report.html": "<!DOCTYPE html>\n<p>10 pods</p>\n"}


@pytest.fixture
def strict_umask() -> Iterator[None]:
    """A umask that would leave 0700/0600 behind: the modes asked for must be set whatever the umask."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def write(dest: Path, files: dict[str, str] | None = None, mode: int = 0o644, directory_mode: int = 0o755) -> tuple[bool, list[str]]:
    """Plan and apply, as the action does: (the directory changed, the paths of the files that changed)."""
    files = FILES if files is None else files
    directory, changes = plan(str(dest), files, mode, directory_mode)
    apply(str(dest), files, mode, directory_mode, changes)
    return directory, [c.path for c in changes if c.content or c.mode]


def test_creates_the_directory_with_its_parents_and_the_files(tmp_path: Path, strict_umask: None) -> None:
    dest = tmp_path / "out" / "fleet-sweep-1"
    directory, changed = write(dest)
    assert directory and changed == [str(dest / "summary.json"), str(dest / "report.html")]
    assert {p.name: p.read_text() for p in dest.iterdir()} == FILES  # and no temporary file left behind
    assert mode_of(tmp_path / "out") == mode_of(dest) == 0o755
    assert mode_of(dest / "summary.json") == mode_of(dest / "report.html") == 0o644


def test_a_rerun_changes_nothing(tmp_path: Path) -> None:
    write(tmp_path)
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    assert write(tmp_path) == (False, [])
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == before  # not even rewritten


def test_only_what_differs_changes(tmp_path: Path) -> None:
    write(tmp_path)
    (tmp_path / "report.html").chmod(0o600)
    directory, changes = plan(str(tmp_path), {**FILES, "summary.json": "{}\n"}, 0o644, 0o755)
    assert not directory
    assert [(Path(c.path).name, c.content, c.mode) for c in changes] == [("summary.json", True, False), ("report.html", False, True)]
    assert changes[0].before == FILES["summary.json"]
    apply(str(tmp_path), {**FILES, "summary.json": "{}\n"}, 0o644, 0o755, changes)
    assert (tmp_path / "summary.json").read_text() == "{}\n" and mode_of(tmp_path / "report.html") == 0o644


def test_a_directory_mode_that_differs_is_a_change(tmp_path: Path) -> None:
    write(tmp_path)
    tmp_path.chmod(0o700)
    assert write(tmp_path) == (True, [])
    assert mode_of(tmp_path) == 0o755


def test_plan_writes_nothing(tmp_path: Path) -> None:
    directory, changes = plan(str(tmp_path / "new"), FILES, 0o644, 0o755)
    assert directory and all(c.content and c.mode and c.before == "" for c in changes)
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"files": FILES}, "dest must be the path of a directory, got None"),
        ({"dest": "", "files": FILES}, "dest must be the path of a directory"),
        ({"dest": "/tmp/x"}, "files must be a dict of file names and their contents"),
        ({"dest": "/tmp/x", "files": {}}, "with at least one file"),
        ({"dest": "/tmp/x", "files": {"../escape.html": "x"}}, "'../escape.html' in files is not a plain file name"),
        ({"dest": "/tmp/x", "files": {"sub/report.html": "x"}}, "'sub/report.html' in files is not a plain file name"),
        ({"dest": "/tmp/x", "files": {"..": "x"}}, "'..' in files is not a plain file name"),
        ({"dest": "/tmp/x", "files": {"summary.json": {"pods": 1}}}, "the content of summary.json must be a string, got dict (use to_nice_json"),
        ({"dest": "/tmp/x", "files": FILES, "mode": "644x"}, "mode must be an octal mode written as a string such as '0644', got '644x'"),
        ({"dest": "/tmp/x", "files": FILES, "mode": "0999"}, "mode must be an octal mode"),
        ({"dest": "/tmp/x", "files": FILES, "directory_mode": True}, "directory_mode must be an octal mode"),
        ({"dest": "/tmp/x", "files": FILES, "owner": "root"}, "unsupported arguments owner; it takes dest, files, mode and directory_mode"),
    ],
)
def test_bad_arguments_are_refused(args: dict[str, Any], message: str) -> None:
    with pytest.raises(AnsibleActionFail) as excinfo:
        check_arguments(args)
    assert message in str(excinfo.value)


def test_arguments_are_read() -> None:
    assert check_arguments({"dest": "~/out", "files": FILES, "mode": "0600", "directory_mode": "0700"}) == (
        os.path.expanduser("~/out"),
        FILES,
        0o600,
        0o700,
    )


def test_a_relative_dest_is_taken_from_the_working_directory_and_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # ansible-playbook's working directory: never the playbook's (it may be inside a read-only installed collection).
    monkeypatch.chdir(tmp_path)
    assert check_arguments({"dest": "kubedebug-reports/fleet/fleet-1", "files": FILES})[0] == str(tmp_path / "kubedebug-reports" / "fleet" / "fleet-1")
    assert check_arguments({"dest": "./out/../out2/", "files": FILES})[0] == str(tmp_path / "out2")
    assert check_arguments({"dest": "/srv/reports/x/", "files": FILES})[0] == "/srv/reports/x"


def test_dest_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "out").write_text("")
    with pytest.raises(AnsibleActionFail, match="dest .*/out exists and is not a directory: choose another output directory"):
        plan(str(tmp_path / "out"), FILES, 0o644, 0o755)


def test_a_file_name_taken_by_a_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "report.html").mkdir()
    with pytest.raises(AnsibleActionFail, match="report.html is a directory: remove it or choose another output directory"):
        plan(str(tmp_path), FILES, 0o644, 0o755)


# --------------------------------------------------------------------------- the task, through ansible-playbook


def collections_path() -> str:
    """hack/unit.sh sets ANSIBLE_COLLECTIONS_PATH; a bare pytest run gets it from hack/collections.sh."""
    root = Path(__file__).resolve().parents[4]
    return (
        os.environ.get("ANSIBLE_COLLECTIONS_PATH")
        or subprocess.run(["bash", str(root / "hack" / "collections.sh")], capture_output=True, text=True, check=True).stdout.strip()
    )


def run_play(tmp_path: Path, dest: Path | str, *args: str, cwd: Path | None = None) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    (tmp_path / "report.html.j2").write_text("<p>{{ pods }} pods of {{ '{{' }} hostile }}</p>\n")
    play = [{
        "hosts": "localhost", "gather_facts": False, "vars": {"pods": 10},
        "tasks": [
            {"name": "write", "register": "written", "kubedebug.ephemeral.report_files": {
                "dest": str(dest), "files": {
                    "summary.json": "{{ {'pods': pods} | to_nice_json(indent=2) }}\n",
                    "report.html": "{{ lookup('ansible.builtin.template', 'report.html.j2') }}",
                }}},
            {"name": "save", "ansible.builtin.copy": {"content": "{{ written | to_json }}", "dest": str(tmp_path / "result.json")},
             "check_mode": False, "diff": False},
        ],
    }]  # fmt: skip
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play, sort_keys=False))
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": collections_path(), "ANSIBLE_NOCOLOR": "1", "ANSIBLE_PYTHON_INTERPRETER": sys.executable}
    cmd = [str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,", "-c", "local", *args, str(tmp_path / "play.yml")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc, json.loads((tmp_path / "result.json").read_text())


def test_the_task_in_check_mode_with_diff_then_for_real_then_again(tmp_path: Path) -> None:
    dest = tmp_path / "out" / "fleet-1"
    proc, checked = run_play(tmp_path, dest, "--check", "--diff")
    assert checked["changed"] and not (tmp_path / "out").exists()
    assert checked["changed_files"] == [str(dest / "summary.json"), str(dest / "report.html")]
    assert "+<p>10 pods of {{ hostile }}</p>" in proc.stdout  # the diff, and template text in the output stays text

    _proc, done = run_play(tmp_path, dest)
    assert done["changed"] and done["files"] == done["changed_files"]
    assert json.loads((dest / "summary.json").read_text()) == {"pods": 10}
    assert (dest / "report.html").read_text() == "<p>10 pods of {{ hostile }}</p>\n"

    _proc, again = run_play(tmp_path, dest, "--diff")
    assert not again["changed"] and again["changed_files"] == []


def test_the_task_with_a_relative_dest_writes_under_the_working_directory_of_ansible_playbook(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    _proc, done = run_play(tmp_path, "reports/fleet-1", cwd=work)
    dest = work / "reports" / "fleet-1"
    assert done["dest"] == str(dest)  # absolute: the playbooks show it
    assert done["files"] == [str(dest / "summary.json"), str(dest / "report.html")]
    assert json.loads((dest / "summary.json").read_text()) == {"pods": 10}
    assert not (tmp_path / "reports").exists()  # not beside the playbook
