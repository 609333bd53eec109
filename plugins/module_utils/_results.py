# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: collect what ephemeral containers did.

Shared by the ``ephemeral_results`` lookup and the ``ephemeral_container_info``
module, so both return the same records with the same keys. Pure: pods and log
bytes in, records out. ``_results_manager.ResultsManager`` does the I/O.
"""

from __future__ import annotations

import codecs
import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from ansible_collections.kubedebug.ephemeral.plugins.module_utils._errors import KubedebugError, first_of
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._options import (
    check_choice,
    check_limits,
    check_wait_and_parallel,
)
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._pods import WAIT_MODES, container_state, pod_ref
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._selection import Selection

PARSE_MODES = ("raw", "lines", "json", "json_lines")
# A chatty container must not exhaust the controller: logs are bounded unless the
# user raises the bound on purpose.
DEFAULT_LIMIT_BYTES = 1024 * 1024

RECORD_KEYS = (
    "namespace", "pod", "node", "container", "image", "target_container", "state", "reason", "message", "exit_code",
    "started_at", "finished_at", "duration_seconds", "logs", "output", "truncated", "parse_error", "bad_lines",
    "partial_line", "invalid_utf8", "error",
)  # fmt: skip
# Container output is untrusted and may be huge: a record quotes at most this much of a line it could not use, and
# lists at most this many such lines (parse_error counts them all; logs has them whole).
QUOTE_CHARS = 200
MAX_BAD_LINES = 100
# How many bad line numbers parse_error names before it says "and N more".
MAX_NAMED_LINES = 20
_REPLACEMENT = "\ufffd"
_ENCODED_REPLACEMENT = _REPLACEMENT.encode()


@dataclass(frozen=True)
class Options:
    containers: tuple[str, ...] = ()  # empty: every ephemeral container of each pod
    wait_for: str = "terminated"
    wait_timeout: float = 120
    logs: bool = False
    tail_lines: int | None = None
    limit_bytes: int | None = DEFAULT_LIMIT_BYTES
    parse: str = "raw"
    parallel: int = 10


def options_from(get: Callable[[str], Any]) -> Options:
    """Options from the lookup's ``get_option`` or the info module's ``params.get``."""
    return Options(
        containers=tuple(get("container") or ()),
        wait_for=get("wait_for"),
        wait_timeout=get("wait_timeout"),
        logs=get("logs"),
        tail_lines=get("tail_lines"),
        limit_bytes=get("limit_bytes"),
        parse=get("parse"),
        parallel=get("parallel"),
    )


def collection_failure(records: list[dict[str, Any]]) -> str | None:
    """The error to raise when records exist but not one could be collected."""
    errors = [r["error"] for r in records if r["error"]]
    if not records or len(errors) < len(records):
        return None
    return "nothing could be collected: " + first_of(errors)


def empty_selection_warning(selection: Selection, records: list[dict[str, Any]]) -> str | None:
    """The warning when a selector found nothing to report (a named pod always gives a record)."""
    if records or selection.refs:
        return None
    return "the selection matched no pods with ephemeral containers"


def validate_options(opts: Options) -> None:
    # The lookup's list options are only checked to be lists; a module's are lists of strings already.
    if not all(isinstance(name, str) for name in opts.containers):
        raise KubedebugError(f"container must be a container name or a list of them; got {list(opts.containers)!r}")
    check_choice("parse", opts.parse, PARSE_MODES)
    check_choice("wait_for", opts.wait_for, WAIT_MODES)
    check_limits({"tail_lines": opts.tail_lines, "limit_bytes": opts.limit_bytes})
    check_wait_and_parallel(opts.wait_timeout, opts.parallel)


class Parsed(NamedTuple):
    """What ``parse_output`` made of a log: the output, a readable summary of what failed, and the lines that did."""

    output: Any
    error: str | None = None
    bad_lines: tuple[dict[str, Any], ...] = ()


def _bad_line(number: int, line: str, exc: ValueError) -> dict[str, Any]:
    return {"line": number, "text": line[:QUOTE_CHARS], "error": str(exc)}


def _json_lines_error(bad: list[dict[str, Any]], total: int) -> str | None:
    """``parse_error`` for JSON Lines: how many lines failed, which, and why the first one did."""
    if not bad:
        return None
    first = bad[0]
    detail = f"{first['error']}: {first['text']!r}"
    if total == 1:
        return f"line {first['line']} is not JSON: {detail}"
    named = ", ".join(str(b["line"]) for b in bad[:MAX_NAMED_LINES])
    more = f" and {total - MAX_NAMED_LINES} more" if total > MAX_NAMED_LINES else ""
    listed = f"bad_lines has the first {len(bad)}" if total > len(bad) else "see bad_lines"
    return f"{total} lines are not JSON (lines {named}{more}; {listed}); every other line was parsed. Line {first['line']}: {detail}"


def parse_output(text: str, mode: str) -> Parsed:
    """Parse log text; never raises on bad content, and a bad line never costs the good lines around it."""
    if mode == "raw":
        return Parsed(text)
    # Log lines end in "\n" only; str.splitlines() would also break JSON strings
    # that hold U+2028, U+2029 or U+0085 unescaped (which JSON allows).
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    if mode == "lines":
        return Parsed(lines)
    if mode == "json":
        try:
            return Parsed(json.loads(text))
        except json.JSONDecodeError as exc:
            where = exc.lineno if lines else 1
            line = lines[where - 1] if 0 < where <= len(lines) else ""
            return Parsed(None, f"logs are not one JSON document: {exc}", (_bad_line(where, line, exc),))
    out = []
    bad: list[dict[str, Any]] = []
    total = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except ValueError as exc:
            # A warning or a torn write between good lines: note it and go on, so that nothing after it is lost.
            total += 1
            if len(bad) < MAX_BAD_LINES:
                bad.append(_bad_line(number, line, exc))
    return Parsed(out, _json_lines_error(bad, total), tuple(bad))


def _seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    try:
        return (dt.datetime.strptime(end, fmt) - dt.datetime.strptime(start, fmt)).total_seconds()
    except ValueError:
        return None


def empty_record(namespace: str, pod: str, container: str | None, error: str | None = None) -> dict[str, Any]:
    record: dict[str, Any] = dict.fromkeys(RECORD_KEYS)
    record.update(namespace=namespace, pod=pod, container=container, truncated=False, bad_lines=[], invalid_utf8=0, error=error)
    return record


def records_for_pod(pod: Mapping[str, Any], containers: Iterable[str] = ()) -> list[dict[str, Any]]:
    """One record per selected ephemeral container of ``pod`` (state only, no logs)."""
    namespace, name = pod_ref(pod)
    specs = {c.get("name"): c for c in (pod.get("spec") or {}).get("ephemeralContainers") or []}
    statuses = {s.get("name"): s for s in (pod.get("status") or {}).get("ephemeralContainerStatuses") or []}
    wanted = list(dict.fromkeys(containers)) or list(specs)
    records = []
    for container in wanted:
        if container not in specs:
            names = ", ".join(specs) or "none"
            records.append(
                empty_record(
                    namespace, name, container,
                    f"pod {namespace}/{name} has no ephemeral container named {container!r} (it has: {names})",
                )
            )  # fmt: skip
            continue
        state = container_state(statuses.get(container))
        record = empty_record(namespace, name, container)
        record.update(
            node=(pod.get("spec") or {}).get("nodeName"),
            image=specs[container].get("image"),
            target_container=specs[container].get("targetContainerName"),
            state=state["status"],
            reason=state["reason"],
            message=state["message"],
            exit_code=state["exit_code"],
            started_at=state["started_at"],
            finished_at=state["finished_at"],
            duration_seconds=_seconds_between(state["started_at"], state["finished_at"]),
        )
        records.append(record)
    return records


def sort_records(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(records, key=lambda r: (r["namespace"], r["pod"], r["container"] or ""))


def decode_log(data: bytes, truncated: bool) -> tuple[str, int]:
    """The log as text and how many invalid UTF-8 sequences in it were replaced with U+FFFD.

    A log that ``limit_bytes`` cut may end inside a character: those last bytes are not
    counted as invalid, and not shown, since the rest of the character was never read.
    """
    text = codecs.getincrementaldecoder("utf-8")(errors="replace").decode(data, final=not truncated)
    # U+FFFD the container itself wrote arrives as valid UTF-8 (EF BF BD, which never continues another sequence).
    return text, text.count(_REPLACEMENT) - data.count(_ENCODED_REPLACEMENT)


def _partial_line(text: str) -> dict[str, Any] | None:
    """The last line of a log that limit_bytes cut, when it has no newline yet: it is left out of the output."""
    cut = text.rfind("\n") + 1
    if cut == len(text):
        return None
    return {"line": text.count("\n", 0, cut) + 1, "text": text[cut : cut + QUOTE_CHARS], "chars": len(text) - cut}


def apply_log(record: dict[str, Any], data: bytes | None, opts: Options) -> None:
    """Put one container's log (``None``: there was none to read) and its parsed output into ``record``."""
    if data is None:
        return
    truncated = opts.limit_bytes is not None and len(data) >= opts.limit_bytes
    text, invalid = decode_log(data, truncated)
    record.update(truncated=truncated, logs=text, invalid_utf8=invalid)
    if truncated:
        # The last line was cut by limit_bytes: it is reported, and only whole lines are parsed.
        record["partial_line"] = _partial_line(text)
        if opts.parse != "raw" and record["partial_line"]:
            text = text[: text.rfind("\n") + 1]
    # Unless cut, a last line without a newline is a whole line (a program that exited without writing one).
    parsed = parse_output(text, opts.parse)
    record.update(output=parsed.output, parse_error=parsed.error, bad_lines=list(parsed.bad_lines))


def wants_log(record: Mapping[str, Any]) -> bool:
    """Whether a record's log is worth reading: a container that never started has none (the API answers 400)."""
    return not record["error"] and record["state"] not in ("pending", "waiting")
