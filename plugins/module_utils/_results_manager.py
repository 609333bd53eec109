# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: the manager behind ``ephemeral_container_info`` and the ``ephemeral_results`` lookup.

Both front ends build a ``ResultsRequest`` from their options and hand back what
``ResultsManager.run`` returns, so they answer with the same records, warnings
and failures.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ansible_collections.kubedebug.ephemeral.plugins.module_utils._client import EphemeralClient
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._errors import KubedebugError
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._outcome import Outcome
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._pods import ephemeral_reached, pod_ref
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._results import (
    Options,
    apply_log,
    collection_failure,
    empty_record,
    empty_selection_warning,
    options_from,
    records_for_pod,
    sort_records,
    validate_options,
    wants_log,
)
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._selection import ReadRequest, select


@dataclass(frozen=True)
class ResultsRequest(ReadRequest[Options]):
    """Which pods and containers, and how to collect them."""

    read = staticmethod(options_from)
    check = staticmethod(validate_options)


class ResultsManager:
    """Waits for the selected containers, reads their logs, and builds one record per pod and container."""

    def __init__(self, client: EphemeralClient, request: ResultsRequest) -> None:
        self.client = client
        self.request = request

    def run(self) -> Outcome:
        records = self.collect()
        warning = empty_selection_warning(self.request.selection, records)
        return Outcome(
            result={"changed": False, "pods": records},
            warnings=[warning] if warning else [],
            failure=collection_failure(records),
        )

    def collect(self) -> list[dict[str, Any]]:
        """Records for every selected pod and container, ordered by namespace, pod and container."""
        opts = self.request.options
        pods, absent = select(self.client, self.request.selection)
        missing = [empty_record(m.namespace, m.pod, None, m.error) for m in absent]
        if opts.wait_for != "none":
            pods, gone = self._wait(pods)
            missing += gone
        records = [r for pod in pods for r in records_for_pod(pod, opts.containers)]
        if opts.logs:
            with ThreadPoolExecutor(max_workers=opts.parallel) as pool:
                list(pool.map(self._add_log, [r for r in records if wants_log(r)]))
        return sort_records(records + missing)

    def _wait(self, pods: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The pods as they are once every selected container got to ``wait_for`` (or the timeout)."""
        opts = self.request.options

        def done(pod: Any) -> bool:
            return ephemeral_reached(pod, opts.containers, opts.wait_for)

        targets: dict[str, list[str]] = {}
        for pod in pods:
            if not done(pod):
                namespace, name = pod_ref(pod)
                targets.setdefault(namespace, []).append(name)
        if not targets:
            return pods, []
        # A container still short of wait_for at the timeout is reported as it is.
        latest = self.client.wait_for_pods(targets, done, opts.wait_timeout)
        gone = sorted(ref for ref, pod in latest.items() if pod == {})
        missing = [empty_record(ns, name, None, f"pod {ns}/{name} was deleted while waiting") for ns, name in gone]
        return [latest.get(pod_ref(p)) or p for p in pods if pod_ref(p) not in gone], missing

    def _add_log(self, record: dict[str, Any]) -> None:
        """Fetch one container's log into ``record``; a failure becomes the record's error."""
        opts = self.request.options
        try:
            data = self.client.read_container_log(
                record["namespace"],
                record["pod"],
                record["container"],
                tail_lines=opts.tail_lines,
                limit_bytes=opts.limit_bytes,
            )
        except KubedebugError as exc:
            record["error"] = exc.msg
            return
        apply_log(record, data, opts)
