# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: the manager behind ``debugged_pods_info``.

The pod LISTs of ``_selection.select`` (one per namespace, or one cluster-wide), then
only for the pods that carry ephemeral containers: one GET per ReplicaSet that owns
one of them (its Deployment is the workload to restart) and one GET per namespace
(its PodSecurity label), ``parallel`` at a time. No per-pod reads. ``_debugged``
turns what they return into records.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ansible_collections.kubedebug.ephemeral.plugins.module_utils._client import EphemeralClient
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._debugged import (
    Options,
    missing_failure,
    options_from,
    pod_record,
    replica_sets_to_read,
    reported,
    summary,
    validate_options,
)
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._errors import KubedebugError
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._outcome import Outcome
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._pods import pod_ref
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._selection import ReadRequest, select

PARALLEL = 10


@dataclass(frozen=True)
class DebuggedRequest(ReadRequest[Options]):
    """Which pods to look through, and which of their ephemeral containers to report."""

    read = staticmethod(options_from)
    check = staticmethod(validate_options)


def _read_or_why(read: Any, *args: str) -> Any:
    """What ``read(*args)`` returns, or why it failed (a str): a refusal costs the record a detail, never the task."""
    try:
        return read(*args)
    except KubedebugError as exc:
        return exc.msg


class DebuggedManager:
    """Finds the pods that carry ephemeral containers and says who added them, why, and how to get rid of them."""

    def __init__(self, client: EphemeralClient, request: DebuggedRequest) -> None:
        self.client = client
        self.request = request

    def run(self) -> Outcome:
        pods, absent = select(self.client, self.request.selection)
        missing = [{"namespace": m.namespace, "pod": m.pod, "error": m.error} for m in absent]
        records = self.records(pods)
        warnings = [f"{m['error']}" for m in missing]
        if not pods and not missing:
            warnings.append("the selection matched no pods")
        return Outcome(
            result={"changed": False, "pods": records, "summary": summary(len(pods), records), "missing": missing},
            warnings=warnings,
            failure=missing_failure(len(self.request.selection.refs), missing),
        )

    def records(self, pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One record per pod the filters keep, ordered by namespace and pod."""
        opts = self.request.options
        debugged = [p for p in pods if reported(p, opts)]
        if not debugged:
            return []
        replica_set_refs = replica_sets_to_read(debugged)
        namespace_names = list(dict.fromkeys(pod_ref(p)[0] for p in debugged))
        with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
            replica_set_reads = {ref: pool.submit(_read_or_why, self.client.read_replica_set, *ref) for ref in replica_set_refs}
            namespace_reads = {name: pool.submit(_read_or_why, self.client.read_namespace, name) for name in namespace_names}
            replica_sets = {ref: future.result() for ref, future in replica_set_reads.items()}
            namespaces = {name: future.result() for name, future in namespace_reads.items()}
        records = [pod_record(p, opts, replica_sets, namespaces) for p in debugged]
        return sorted((r for r in records if r is not None), key=lambda r: (r["namespace"], r["pod"]))
