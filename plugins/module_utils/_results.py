# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: collect what ephemeral containers did.

Shared by the ``ephemeral_results`` lookup and the ``ephemeral_container_info``
module, so both return the same records with the same keys. The functions that
turn pods and log text into records are pure; ``collect`` does the I/O through
``_client.EphemeralClient``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ansible_collections.kubedebug.ephemeral.plugins.module_utils._client import EphemeralClient
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._errors import KubedebugError
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._selection import Selection, not_found, select
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._spec import container_state, pod_ref

PARSE_MODES = ("raw", "lines", "json", "json_lines")
WAIT_MODES = ("none", "running", "terminated")
# A chatty container must not exhaust the controller: logs are bounded unless the
# user raises the bound on purpose.
DEFAULT_LIMIT_BYTES = 1024 * 1024

RECORD_KEYS = (
    "namespace", "pod", "node", "container", "image", "target_container", "state", "reason", "message", "exit_code",
    "started_at", "finished_at", "duration_seconds", "logs", "output", "truncated", "parse_error", "error",
)  # fmt: skip


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
    more = f"; and {len(errors) - 3} more" if len(errors) > 3 else ""
    return "nothing could be collected: " + "; ".join(errors[:3]) + more


def empty_selection_warning(selection: Selection, records: list[dict[str, Any]]) -> str | None:
    """The warning when a selector found nothing to report (a named pod always gives a record)."""
    if records or selection.refs:
        return None
    return "the selection matched no pods with ephemeral containers"


def validate_options(opts: Options) -> None:
    if opts.parse not in PARSE_MODES:
        raise KubedebugError(f"parse must be one of {', '.join(PARSE_MODES)}; got {opts.parse!r}")
    if opts.wait_for not in WAIT_MODES:
        raise KubedebugError(f"wait_for must be one of {', '.join(WAIT_MODES)}; got {opts.wait_for!r}")
    for name in ("tail_lines", "limit_bytes"):
        value = getattr(opts, name)
        if value is not None and value < 1:
            raise KubedebugError(f"{name} must be a positive number (or unset); got {value}")
    if opts.wait_timeout < 0 or opts.parallel < 1:
        raise KubedebugError("wait_timeout must be >= 0 and parallel >= 1")


def parse_output(text: str, mode: str) -> tuple[Any, str | None]:
    """Parse log text; returns ``(output, error)`` and never raises on bad content."""
    if mode == "raw":
        return text, None
    # Log lines end in "\n" only; str.splitlines() would also break JSON strings
    # that hold U+2028, U+2029 or U+0085 unescaped (which JSON allows).
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    if mode == "lines":
        return lines, None
    if mode == "json":
        try:
            return json.loads(text), None
        except ValueError as exc:
            return None, f"logs are not one JSON document: {exc}"
    out = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except ValueError as exc:
            return out, f"line {number} is not JSON: {exc}: {line[:200]!r}"
    return out, None


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
    record.update(namespace=namespace, pod=pod, container=container, truncated=False, error=error)
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


def pod_done(pod: Mapping[str, Any], containers: Iterable[str], wait_for: str) -> bool:
    """Whether every selected container of ``pod`` has reached ``wait_for``."""
    for record in records_for_pod(pod, containers):
        if record["error"]:
            continue  # a container the pod lacks will not appear by waiting
        if wait_for == "running" and record["state"] not in ("running", "terminated"):
            return False
        if wait_for == "terminated" and record["state"] != "terminated":
            return False
    return True


def sort_records(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(records, key=lambda r: (r["namespace"], r["pod"], r["container"] or ""))


def collect(client: EphemeralClient, selection: Selection, opts: Options) -> list[dict[str, Any]]:
    """Records for every selected pod and container, ordered by namespace, pod and container."""
    validate_options(opts)
    pods, absent = select(client, selection)
    missing = [empty_record(namespace, name, None, not_found(namespace, name)) for namespace, name in absent]
    if opts.wait_for != "none":
        targets: dict[str, list[str]] = {}
        for pod in pods:
            if not pod_done(pod, opts.containers, opts.wait_for):
                namespace, name = pod_ref(pod)
                targets.setdefault(namespace, []).append(name)
        if targets:
            # A container still short of wait_for at the timeout is reported as it is.
            latest = client.wait_for_pods(
                targets, lambda p: pod_done(p, opts.containers, opts.wait_for), opts.wait_timeout
            )
            gone = sorted(ref for ref, pod in latest.items() if pod == {})
            missing += [empty_record(ns, name, None, f"pod {ns}/{name} was deleted while waiting") for ns, name in gone]
            pods = [latest.get(pod_ref(p)) or p for p in pods if pod_ref(p) not in gone]
    records = [r for pod in pods for r in records_for_pod(pod, opts.containers)]
    if opts.logs:
        with ThreadPoolExecutor(max_workers=opts.parallel) as pool:
            list(pool.map(lambda r: add_logs(client, r, opts), [r for r in records if not r["error"]]))
    return sort_records(records + missing)


def add_logs(client: EphemeralClient, record: dict[str, Any], opts: Options) -> None:
    """Fetch one container's logs into ``record``; a failure becomes the record's error."""
    if record["state"] in ("pending", "waiting"):
        return  # never started: there is nothing to read (the API would answer 400)
    try:
        data = client.read_logs(
            record["namespace"],
            record["pod"],
            record["container"],
            tail_lines=opts.tail_lines,
            limit_bytes=opts.limit_bytes,
        )
    except KubedebugError as exc:
        record["error"] = exc.msg
        return
    record["truncated"] = opts.limit_bytes is not None and len(data) >= opts.limit_bytes
    text = data.decode("utf-8", errors="replace")
    record["logs"] = text
    if opts.parse != "raw" and record["truncated"]:
        # The last line was cut by limit_bytes: parse whole lines only.
        text = text[: text.rfind("\n") + 1]
    record["output"], record["parse_error"] = parse_output(text, opts.parse)
