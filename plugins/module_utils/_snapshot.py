# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: a read-only snapshot of pods for an incident bundle.

Used by the ``pod_snapshot_info`` module. Pure: the API's pod and event JSON in,
records out. ``_snapshot_manager.SnapshotManager`` does the I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ansible_collections.kubedebug.ephemeral.plugins.module_utils._errors import KubedebugError, first_of
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._options import check_limits
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._pods import container_state, pod_ref

DEFAULT_EVENTS_LIMIT = 20
DEFAULT_TAIL_LINES = 100
# Bounded so that a chatty container cannot exhaust the controller: two logs
# (current and previous) per container, for every pod selected.
DEFAULT_LIMIT_BYTES = 256 * 1024
EVENT_FIELD_SELECTOR = "involvedObject.kind=Pod"

RECORD_KEYS = (
    "namespace", "pod", "node", "phase", "reason", "message", "start_time", "conditions", "containers", "events",
    "logs", "error",
)  # fmt: skip
CONDITION_KEYS = ("type", "status", "reason", "message", "last_transition_time")
CONTAINER_KEYS = ("name", "kind", "image", "ready", "restart_count", "state", "last_termination")
TERMINATION_KEYS = ("reason", "exit_code", "started_at", "finished_at")
EVENT_KEYS = ("type", "reason", "message", "count", "first_seen", "last_seen", "source")
LOG_KEYS = ("current", "previous", "current_truncated", "previous_truncated")

# spec field, status field and the record's kind, in the order containers are reported.
CONTAINER_KINDS = (
    ("initContainers", "initContainerStatuses", "init"),
    ("containers", "containerStatuses", "container"),
    ("ephemeralContainers", "ephemeralContainerStatuses", "ephemeral"),
)


@dataclass(frozen=True)
class Options:
    events_limit: int = DEFAULT_EVENTS_LIMIT
    logs: bool = True
    tail_lines: int | None = DEFAULT_TAIL_LINES
    limit_bytes: int | None = DEFAULT_LIMIT_BYTES
    parallel: int = 10


def options_from(get: Callable[[str], Any]) -> Options:
    """Options from the module's ``params.get``."""
    return Options(
        events_limit=get("events_limit"),
        logs=get("logs"),
        tail_lines=get("tail_lines"),
        limit_bytes=get("limit_bytes"),
        parallel=get("parallel"),
    )


def validate_options(opts: Options) -> None:
    check_limits({"tail_lines": opts.tail_lines, "limit_bytes": opts.limit_bytes})
    if opts.events_limit < 0:
        raise KubedebugError(f"events_limit must be >= 0; got {opts.events_limit}")
    if opts.parallel < 1:
        raise KubedebugError(f"parallel must be >= 1; got {opts.parallel}")


# --------------------------------------------------------------------------- pods


def conditions(pod: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The pod's conditions, in the order the API lists them."""
    return [
        {
            "type": c.get("type"),
            "status": c.get("status"),
            "reason": c.get("reason"),
            "message": c.get("message"),
            "last_transition_time": c.get("lastTransitionTime"),
        }
        for c in (pod.get("status") or {}).get("conditions") or []
    ]


def last_termination(status: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """How the previous instance of a container ended (``lastState.terminated``), or None."""
    terminated = ((status or {}).get("lastState") or {}).get("terminated")
    if not terminated:
        return None
    return {
        "reason": terminated.get("reason"),
        "exit_code": terminated.get("exitCode"),
        "started_at": terminated.get("startedAt"),
        "finished_at": terminated.get("finishedAt"),
    }


def container_records(pod: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Init, regular and ephemeral containers, each in the order of the pod's spec."""
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    out = []
    for spec_key, status_key, kind in CONTAINER_KINDS:
        statuses = {s.get("name"): s for s in status.get(status_key) or []}
        for container in spec.get(spec_key) or []:
            name = container.get("name")
            current = statuses.get(name)
            out.append(
                {
                    "name": name,
                    "kind": kind,
                    "image": container.get("image"),
                    "ready": bool((current or {}).get("ready", False)),
                    "restart_count": (current or {}).get("restartCount") or 0,
                    "state": container_state(current),
                    "last_termination": last_termination(current),
                }
            )
    return out


def pod_record(pod: Mapping[str, Any]) -> dict[str, Any]:
    """What the pod itself says; ``events`` and ``logs`` are None until read."""
    namespace, name = pod_ref(pod)
    status = pod.get("status") or {}
    record: dict[str, Any] = dict.fromkeys(RECORD_KEYS)
    record.update(
        namespace=namespace,
        pod=name,
        node=(pod.get("spec") or {}).get("nodeName"),
        phase=status.get("phase"),
        reason=status.get("reason"),
        message=status.get("message"),
        start_time=status.get("startTime"),
        conditions=conditions(pod),
        containers=container_records(pod),
    )
    return record


def missing_record(namespace: str, pod: str, error: str) -> dict[str, Any]:
    """The record of a pod that could not be read: every field None but the error."""
    record: dict[str, Any] = dict.fromkeys(RECORD_KEYS)
    record.update(namespace=namespace, pod=pod, error=error)
    return record


def add_error(record: dict[str, Any], message: str) -> None:
    """Add ``message`` to the record's ``error`` (messages are joined with "; ", each once)."""
    current = record["error"]
    if not current:
        record["error"] = message
    elif message not in current.split("; "):
        record["error"] = f"{current}; {message}"


def snapshot_failure(records: list[dict[str, Any]]) -> str | None:
    """The error to raise when there were pods to read and not one of them could be read."""
    errors = [r["error"] for r in records if r["containers"] is None]
    if not records or len(errors) < len(records):
        return None
    return "nothing could be read: " + first_of(errors)


# --------------------------------------------------------------------------- events


def _seconds(value: Any) -> float | None:
    """A Time (``...Z``) or MicroTime (``....123456Z``) as the API writes them, in seconds since the epoch."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    except ValueError:
        return None
    if parsed.tzinfo is None:  # not what the API writes; read as UTC
        return (parsed - dt.datetime(1970, 1, 1)).total_seconds()
    return parsed.timestamp()


def event_record(event: Mapping[str, Any]) -> dict[str, Any]:
    """One core/v1 Event, whichever API wrote it.

    Events recorded through core/v1 (the kubelet's) carry ``count``,
    ``firstTimestamp``, ``lastTimestamp`` and ``source.component``; those written
    through events.k8s.io (the scheduler's) carry ``eventTime``, an optional
    ``series`` and ``reportingComponent`` (``reportingController`` there) instead.
    """
    series = event.get("series") or {}
    created = (event.get("metadata") or {}).get("creationTimestamp")
    first_seen = event.get("firstTimestamp") or event.get("eventTime") or event.get("lastTimestamp") or created
    last_seen = series.get("lastObservedTime") or event.get("lastTimestamp") or event.get("eventTime") or first_seen
    return {
        "type": event.get("type"),
        "reason": event.get("reason"),
        "message": event.get("message"),
        "count": series.get("count") or event.get("count") or 1,
        "first_seen": first_seen,
        "last_seen": last_seen,
        "source": (event.get("source") or {}).get("component") or event.get("reportingComponent") or None,
    }


def _event_order(item: tuple[dict[str, Any], Mapping[str, Any]]) -> tuple[Any, ...]:
    record, event = item
    return (
        _seconds(record["last_seen"]) or 0.0,
        _seconds(record["first_seen"]) or 0.0,
        (event.get("metadata") or {}).get("name") or "",
    )


def events_by_pod(events: Iterable[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The records of a namespace's pod events, grouped by pod name, each list oldest first (newest last)."""
    grouped: dict[str, list[tuple[dict[str, Any], Mapping[str, Any]]]] = {}
    for event in events:
        involved = event.get("involvedObject") or {}
        if involved.get("kind", "Pod") != "Pod" or not involved.get("name"):
            continue
        grouped.setdefault(involved["name"], []).append((event_record(event), event))
    return {name: [r for r, _event in sorted(items, key=_event_order)] for name, items in grouped.items()}


def newest(records: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """The last ``limit`` of ``records`` (already ordered oldest first)."""
    return records[-limit:] if limit > 0 else []


# --------------------------------------------------------------------------- logs


def log_reads(record: Mapping[str, Any]) -> list[tuple[str, bool, bool]]:
    """``(container, current, previous)`` for each regular container: which of its logs to read.

    A container that never started has no current log (the kubelet would answer
    400); only one that has restarted has a previous one.
    """
    reads = []
    for container in record["containers"] or []:
        if container["kind"] != "container":
            continue
        status = container["state"]["status"]
        never_started = status == "pending" or (status == "waiting" and container["last_termination"] is None)
        reads.append((container["name"], not never_started, container["restart_count"] > 0))
    return reads


def log_entry(current: bytes | None, previous: bytes | None, limit_bytes: int | None) -> dict[str, Any]:
    """One container's entry in ``logs`` from the bytes read (None: not read, or nothing to read)."""

    def text(data: bytes | None) -> str | None:
        return None if data is None else data.decode("utf-8", errors="replace")

    def truncated(data: bytes | None) -> bool:
        return data is not None and limit_bytes is not None and len(data) >= limit_bytes

    return {
        "current": text(current),
        "previous": text(previous),
        "current_truncated": truncated(current),
        "previous_truncated": truncated(previous),
    }


def log_error(container: str, previous: bool, exc: KubedebugError) -> str:
    """The record's error for a log that could not be read.

    A permission refusal is the same for every container (and said once); any
    other failure names the container and which of its logs.
    """
    if exc.status == 403:
        return exc.msg
    return f"{'previous' if previous else 'current'} log of container {container!r}: {exc.msg}"
