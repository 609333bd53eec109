# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Writes a report's files into one directory on the controller, in one task (used by the playbooks).

Arguments (plugins/modules/report_files.py documents them): ``dest`` (the directory, created with its parents),
``files`` (file name -> content, rendered by the task's templating), ``mode`` and ``directory_mode``.

Why not ``file`` + ``copy`` + ``template``: each of those runs modules (``stat``, then ``copy`` or ``file``), each
a Python process of its own with a payload built for it, about 1.5 s of fleet_diagnostics.yml's 5 s floor for
three small files (bench/results/startup.md). Written here, on the controller, they cost milliseconds, with the
same results: atomic writes, the modes asked for, ``changed`` only when a file's content or mode (or the
directory) changed, a diff per file under ``--diff`` and nothing written in check mode.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ansible import constants as C
from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase


@dataclass(frozen=True)
class Change:
    """What writing one file (or creating the directory) changes."""

    path: str
    content: bool  # the content is new or differs
    mode: bool  # the mode differs (or the file is new)
    before: str  # the current content, for the diff ("" when there is no file)
    before_size: int  # its size in bytes: a diff skips contents larger than max_diff_size


def _diff_limit() -> int:
    # The copy module's limit (ansible.cfg max_diff_size); ansible.constants sets it from the configuration at run time.
    return int(getattr(C, "MAX_FILE_SIZE_FOR_DIFF", 104448))


def _mode(value: Any, option: str) -> int:
    """An octal mode given as a string (``"0644"``), as the builtin modules take it; refused otherwise."""
    text = str(value)
    if isinstance(value, bool) or not text.isdigit() or any(digit > "7" for digit in text) or int(text, 8) > 0o7777:
        raise AnsibleActionFail(f"report_files: {option} must be an octal mode written as a string such as '0644', got {value!r}")
    return int(text, 8)


def check_arguments(args: Mapping[str, Any]) -> tuple[str, dict[str, str], int, int]:
    """``dest``, ``files``, ``mode`` and ``directory_mode`` from the task's arguments, or a clear failure."""
    unknown = sorted(set(args) - {"dest", "files", "mode", "directory_mode"})
    if unknown:
        raise AnsibleActionFail(f"report_files: unsupported arguments {', '.join(unknown)}; it takes dest, files, mode and directory_mode")
    dest = args.get("dest")
    if not isinstance(dest, str) or not dest.strip():
        raise AnsibleActionFail(f"report_files: dest must be the path of a directory, got {dest!r}")
    files = args.get("files")
    if not isinstance(files, Mapping) or not files:
        raise AnsibleActionFail("report_files: files must be a dict of file names and their contents, with at least one file")
    checked: dict[str, str] = {}
    for name, content in files.items():
        if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\0" in name:
            raise AnsibleActionFail(f"report_files: {name!r} in files is not a plain file name: the files are written into dest, never elsewhere")
        if not isinstance(content, str):
            raise AnsibleActionFail(f"report_files: the content of {name} must be a string, got {type(content).__name__} (use to_nice_json for data)")
        checked[name] = content
    # Absolute, so the result (and the playbook's message) says where the files are: a relative dest is taken from the
    # directory ansible-playbook runs in, as a relative path on the controller always was.
    absolute = os.path.abspath(os.path.expanduser(dest))
    return absolute, checked, _mode(args.get("mode", "0644"), "mode"), _mode(args.get("directory_mode", "0755"), "directory_mode")


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def plan(dest: str, files: Mapping[str, str], mode: int, directory_mode: int) -> tuple[bool, list[Change]]:
    """What writing ``files`` into ``dest`` would change: (the directory is created or its mode set, the files' changes)."""
    if os.path.exists(dest) and not os.path.isdir(dest):
        raise AnsibleActionFail(f"report_files: dest {dest} exists and is not a directory: choose another output directory")
    directory = not os.path.isdir(dest) or stat.S_IMODE(os.stat(dest).st_mode) != directory_mode
    changes = []
    for name, content in files.items():
        path = os.path.join(dest, name)
        if os.path.isdir(path):
            raise AnsibleActionFail(f"report_files: {path} is a directory: remove it or choose another output directory")
        current = _read(path)
        new = content.encode("utf-8")
        same_mode = current is not None and stat.S_IMODE(os.stat(path).st_mode) == mode
        before = to_text(current or b"", errors="surrogate_or_replace") if len(current or b"") <= _diff_limit() else ""
        changes.append(Change(path, current != new, not same_mode, before, len(current or b"")))
    return directory, changes


def _write(path: str, content: str, mode: int) -> None:
    # A reader (a browser, a CI artifact upload) never sees half a file: write beside it, then rename.
    directory = os.path.dirname(path)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content.encode("utf-8"))
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def apply(dest: str, files: Mapping[str, str], mode: int, directory_mode: int, changes: list[Change]) -> None:
    """Create ``dest`` (and its parents) and write or chmod what ``plan`` found changed."""
    missing = []
    path = dest
    while not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    for created in reversed(missing):
        os.mkdir(created)
        os.chmod(created, directory_mode)  # os.mkdir's mode is filtered by the umask
    os.chmod(dest, directory_mode)
    for (_name, content), change in zip(files.items(), changes, strict=True):
        if change.content:
            _write(change.path, content, mode)
        elif change.mode:
            os.chmod(change.path, mode)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("dest", "files", "mode", "directory_mode"))
    _requires_connection = False

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        dest, files, mode, directory_mode = check_arguments(self._task.args)
        try:
            directory, changes = plan(dest, files, mode, directory_mode)
            if not self._task.check_mode:
                apply(dest, files, mode, directory_mode, changes)
        except OSError as exc:
            raise AnsibleActionFail(f"report_files: could not write into {dest}: {exc.strerror or exc} ({exc.filename or dest})") from exc
        changed = [c for c in changes if c.content or c.mode]
        result.update(changed=directory or bool(changed), dest=dest, files=[c.path for c in changes], changed_files=[c.path for c in changed])
        if self._task.diff:
            result["diff"] = [_diff(c, files[os.path.basename(c.path)]) for c in changes if c.content]
        return result


def _diff(change: Change, after: str) -> dict[str, Any]:
    """One file's diff as the copy module shows it: contents larger than max_diff_size are skipped with its words."""
    limit = _diff_limit()
    diff: dict[str, Any] = {"before_header": change.path, "after_header": change.path, "before": change.before, "after": after}
    if change.before_size > limit:
        diff["dst_larger"] = limit
    if len(after.encode("utf-8")) > limit:
        diff["src_larger"] = limit
    if "dst_larger" in diff or "src_larger" in diff:
        diff["before"] = diff["after"] = ""
    return diff
