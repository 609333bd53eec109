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
class Selection:
    """Which pods: explicit references, or a selector over namespaces (``None``: all namespaces)."""

    refs: tuple[tuple[str, str], ...] = ()
    namespaces: tuple[str, ...] | None = ()
    label_selector: str | None = None
    field_selector: str | None = None


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


def parse_ref(term: str, default_namespace: str | None) -> tuple[str, str]:
    """``namespace/pod``, or a bare pod name in ``default_namespace``."""
    term = term.strip()
    if term.count("/") == 1:
        namespace, pod = term.split("/")
    elif "/" not in term and default_namespace:
        namespace, pod = default_namespace, term
    elif "/" not in term:
        raise KubedebugError(
            f"pod reference {term!r} has no namespace: write namespace/pod or set the namespace option"
        )
    else:
        raise KubedebugError(f"pod reference {term!r} is not of the form namespace/pod")
    if not namespace or not pod:
        raise KubedebugError(f"pod reference {term!r} is not of the form namespace/pod")
    return namespace, pod


def selection_from(
    pods: Iterable[str], namespace: str | None, label_selector: Iterable[str] | str | None, all_namespaces: bool
) -> Selection:
    """The selection the lookup's terms or the info module's options describe."""
    pods = [p for p in pods if p]
    labels = [label_selector] if isinstance(label_selector, str) else list(label_selector or [])
    labels = [label for label in labels if label]
    if pods and labels:
        raise KubedebugError("name pods or give a label_selector, not both")
    if pods:
        if all_namespaces:
            raise KubedebugError("all_namespaces applies to a label_selector, not to named pods")
        return Selection(refs=tuple(parse_ref(p, namespace) for p in pods))
    if not namespace and not all_namespaces:
        if labels:
            raise KubedebugError("a label_selector needs a namespace (or all_namespaces: true)")
        raise KubedebugError(
            "name the pods (namespace/pod), or give a namespace (or all_namespaces: true) and optionally a label_selector"
        )
    return Selection(namespaces=None if all_namespaces else (namespace or "",), label_selector=",".join(labels) or None)


def collection_failure(records: list[dict[str, Any]]) -> str | None:
    """The error to raise when records exist but not one could be collected."""
    errors = [r["error"] for r in records if r["error"]]
    if not records or len(errors) < len(records):
        return None
    more = f"; and {len(errors) - 3} more" if len(errors) > 3 else ""
    return "nothing could be collected: " + "; ".join(errors[:3]) + more


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


def select(client: EphemeralClient, selection: Selection) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The pods to collect from, and error records for references that do not exist.

    One LIST per namespace (a single-pod namespace uses a field selector).
    """
    if not selection.refs:
        namespaces = None if selection.namespaces is None else list(dict.fromkeys(selection.namespaces))
        pods = client.list_pods(
            namespaces, label_selector=selection.label_selector, field_selector=selection.field_selector
        )
        return pods, []
    wanted: dict[str, list[str]] = {}
    for namespace, name in selection.refs:
        wanted.setdefault(namespace, [])
        if name not in wanted[namespace]:
            wanted[namespace].append(name)
    pods, missing = [], []
    for namespace, names in wanted.items():
        field = f"metadata.name={names[0]}" if len(names) == 1 else None
        found = {p["metadata"]["name"]: p for p in client.list_pods([namespace], field_selector=field)}
        for name in names:
            if name in found:
                pods.append(found[name])
            else:
                missing.append(empty_record(namespace, name, None, f"pod {namespace}/{name} not found"))
    return pods, missing


def collect(client: EphemeralClient, selection: Selection, opts: Options) -> list[dict[str, Any]]:
    """Records for every selected pod and container, ordered by namespace, pod and container."""
    validate_options(opts)
    pods, missing = select(client, selection)
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
