# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: the manager behind ``pod_snapshot_info``.

The pod LISTs of ``_selection.select``, one event LIST per namespace and the log
reads, at most ``parallel`` at a time; ``_snapshot`` turns what they return into
records.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ansible_collections.kubedebug.ephemeral.plugins.module_utils._client import EphemeralClient
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._errors import KubedebugError
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._outcome import Outcome
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._selection import ReadRequest, select
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._snapshot import (
    EVENT_FIELD_SELECTOR,
    Options,
    add_error,
    events_by_pod,
    log_entry,
    log_error,
    log_reads,
    missing_record,
    newest,
    options_from,
    pod_record,
    snapshot_failure,
    validate_options,
)


@dataclass(frozen=True)
class SnapshotRequest(ReadRequest[Options]):
    """Which pods, and how much of their events and logs."""

    read = staticmethod(options_from)
    check = staticmethod(validate_options)


def _result(future: Future[Any] | None) -> tuple[Any, KubedebugError | None]:
    if future is None:
        return None, None
    try:
        return future.result(), None
    except KubedebugError as exc:
        return None, exc


class SnapshotManager:
    """Reads pods, their events and their logs into one record per pod; never changes anything."""

    def __init__(self, client: EphemeralClient, request: SnapshotRequest) -> None:
        self.client = client
        self.request = request

    def run(self) -> Outcome:
        records = self.snapshot()
        return Outcome(
            result={"changed": False, "pods": records},
            warnings=[] if records else ["the selection matched no pods"],
            failure=snapshot_failure(records),
        )

    def snapshot(self) -> list[dict[str, Any]]:
        """One record per selected pod (and per named pod that could not be read), ordered by namespace and pod.

        What cannot be read becomes the record's ``error``; the rest of the record is still filled in.
        """
        opts = self.request.options
        pods, absent = select(self.client, self.request.selection)
        records = [pod_record(p) for p in pods]
        everything = records + [missing_record(m.namespace, m.pod, m.error) for m in absent]
        with ThreadPoolExecutor(max_workers=opts.parallel) as pool:
            event_lists: dict[str, Future[Any]] = {}
            if opts.events_limit:
                for namespace in dict.fromkeys(r["namespace"] for r in everything):
                    event_lists[namespace] = pool.submit(self.client.list_events, namespace, field_selector=EVENT_FIELD_SELECTOR)
            log_futures: dict[tuple[int, str, bool], Future[Any]] = {}
            if opts.logs:
                for index, record in enumerate(records):
                    for container, current, previous in log_reads(record):
                        for which, wanted in ((False, current), (True, previous)):
                            if wanted:
                                log_futures[(index, container, which)] = pool.submit(
                                    self.client.read_container_log,
                                    record["namespace"],
                                    record["pod"],
                                    container,
                                    previous=which,
                                    tail_lines=opts.tail_lines,
                                    limit_bytes=opts.limit_bytes,
                                )
            self._add_events(everything, event_lists, opts)
            self._add_logs(records, log_futures, opts)
        return sorted(everything, key=lambda r: (r["namespace"], r["pod"]))

    @staticmethod
    def _add_events(records: list[dict[str, Any]], event_lists: dict[str, Future[Any]], opts: Options) -> None:
        grouped: dict[str, dict[str, list[dict[str, Any]]]] = {}
        failed: dict[str, KubedebugError] = {}
        for namespace, future in event_lists.items():
            events, exc = _result(future)
            if exc is not None:
                failed[namespace] = exc
            else:
                grouped[namespace] = events_by_pod(events)
        for record in records:
            if not opts.events_limit:
                record["events"] = []
            elif record["namespace"] in failed:
                add_error(record, failed[record["namespace"]].msg)
            else:
                record["events"] = newest(grouped[record["namespace"]].get(record["pod"], []), opts.events_limit)

    @staticmethod
    def _add_logs(records: list[dict[str, Any]], log_futures: dict[tuple[int, str, bool], Future[Any]], opts: Options) -> None:
        for index, record in enumerate(records):
            record["logs"] = {}
            if not opts.logs:
                continue
            for container, _current, _previous in log_reads(record):
                current, current_exc = _result(log_futures.get((index, container, False)))
                previous, previous_exc = _result(log_futures.get((index, container, True)))
                for which, exc in ((False, current_exc), (True, previous_exc)):
                    if exc is not None:
                        add_error(record, log_error(container, which, exc))
                record["logs"][container] = log_entry(current, previous, opts.limit_bytes)
