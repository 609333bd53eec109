# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for plugins/module_utils/_snapshot.py, _snapshot_manager.py and the snapshot reads of ``EphemeralClient``.

Pods are the recorded API objects in tests/unit/fixtures/pods (see the README there); a
test that needs a variant (a container that restarted, a pod that is not scheduled) edits
a copy and says so. Events are hand-built dicts shaped exactly like the ones a 1.36.3 API
server returned from ``LIST /api/v1/namespaces/<ns>/events`` (captured on the kubedebug
cluster: the scheduler's ``Scheduled`` event, an event created through core/v1 the way a
kubelet records ``BackOff``, and one created through events.k8s.io/v1 with a ``series``).

``SnapshotManager.snapshot`` runs against ``FakeClient``, a stand-in for ``EphemeralClient`` with the calls
the manager makes (``list_pods``, ``list_events``, ``read_container_log``). The new client
methods are tested with ``FakeCore`` (CoreV1Api called with ``_preload_content=False``) and
on the wire with the installed kubernetes client against a local HTTP server.
"""

from __future__ import annotations

import copy
import http.server
import json
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from kubernetes import client as k8s_client

from ansible_collections.kubedebug.ephemeral.plugins.module_utils._client import RBAC_DOC, EphemeralClient
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._errors import KubedebugError
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._outcome import Outcome
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._selection import Missing, Selection, parse_ref, select
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._snapshot import (
    CONDITION_KEYS,
    CONTAINER_KEYS,
    DEFAULT_EVENTS_LIMIT,
    DEFAULT_LIMIT_BYTES,
    DEFAULT_TAIL_LINES,
    EVENT_FIELD_SELECTOR,
    EVENT_KEYS,
    LOG_KEYS,
    RECORD_KEYS,
    TERMINATION_KEYS,
    Options,
    add_error,
    conditions,
    container_records,
    event_record,
    events_by_pod,
    last_termination,
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
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._snapshot_manager import SnapshotManager, SnapshotRequest
from ansible_collections.kubedebug.ephemeral.tests.unit.api_objects import api_error, load_pod
from ansible_collections.kubedebug.ephemeral.tests.unit.local_http import serving, without_proxies

NS = "unit-fixtures"
BUSYBOX = "docker.io/library/busybox:1.36"
PAUSE = "registry.k8s.io/pause:3.10"
PLAIN_UID = "69b30d09-a84d-46e0-8110-27d72c924f26"

# The keys as documented in the module's RETURN block, spelled out here rather than taken
# from the module so that a dropped or renamed key fails a test.
DOCUMENTED = {
    "record": {
        "namespace", "pod", "node", "phase", "reason", "message", "start_time", "conditions", "containers", "events",
        "logs", "error",
    },
    "condition": {"type", "status", "reason", "message", "last_transition_time"},
    "container": {"name", "kind", "image", "ready", "restart_count", "state", "last_termination"},
    "termination": {"reason", "exit_code", "started_at", "finished_at"},
    "event": {"type", "reason", "message", "count", "first_seen", "last_seen", "source"},
    "log": {"current", "previous", "current_truncated", "previous_truncated"},
}  # fmt: skip


# --------------------------------------------------------------------------- helpers


def state(status: str, **fields: Any) -> dict[str, Any]:
    """A flattened state as ``_pods.container_state`` makes it."""
    out = dict.fromkeys(("reason", "message", "exit_code", "started_at", "finished_at"))
    out.update(status=status, **fields)
    return out


def container(name: str, kind: str, image: str, **fields: Any) -> dict[str, Any]:
    """An expected container record (ready False, no restarts, pending, no last termination unless given)."""
    out: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "image": image,
        "ready": False,
        "restart_count": 0,
        "state": state("pending"),
        "last_termination": None,
    }
    out.update(fields)
    return out


def ready_conditions(at: str, scheduled_at: str | None = None) -> list[dict[str, Any]]:
    """The four conditions KWOK sets on a running pod, in the API's order."""
    return [
        {"type": kind, "status": "True", "reason": None, "message": None, "last_transition_time": at} for kind in ("Initialized", "Ready", "ContainersReady")
    ] + [
        {
            "type": "PodScheduled",
            "status": "True",
            "reason": None,
            "message": None,
            "last_transition_time": scheduled_at or at,
        }
    ]


OOM = {
    "containerID": "kwok://app-1",
    "exitCode": 137,
    "reason": "OOMKilled",
    "startedAt": "2026-11-25T09:10:00Z",
    "finishedAt": "2026-11-25T09:12:30Z",
}
OOM_RECORD = {
    "reason": "OOMKilled",
    "exit_code": 137,
    "started_at": "2026-11-25T09:10:00Z",
    "finished_at": "2026-11-25T09:12:30Z",
}


def restarted(pod: dict[str, Any], name: str = "app", *, waiting: bool = False) -> dict[str, Any]:
    """A copy of ``pod`` whose container ``name`` restarted twice after an OOM kill (a variant made for the test).

    ``waiting``: it is in CrashLoopBackOff instead of running again.
    """
    copied = copy.deepcopy(pod)
    for status in copied["status"]["containerStatuses"]:
        if status["name"] == name:
            status["restartCount"] = 2
            status["lastState"] = {"terminated": dict(OOM)}
            if waiting:
                status["ready"] = False
                status["state"] = {
                    "waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": f"back-off 20s restarting failed container={name} pod=x",
                    }
                }
            else:
                status["state"] = {"running": {"startedAt": "2026-11-25T09:12:31Z"}}
            return copied
    raise AssertionError(f"{name} not in the pod")


def moved(pod: dict[str, Any], namespace: str, name: str) -> dict[str, Any]:
    """A copy of a recorded pod under another namespace and name (a variant made for the test)."""
    copied = copy.deepcopy(pod)
    copied["metadata"]["namespace"] = namespace
    copied["metadata"]["name"] = name
    return copied


# Events as the API server lists them (items of an EventList: no kind/apiVersion).
SCHEDULED = {
    "metadata": {
        "name": "plain.18eb410a2caffb7d",
        "namespace": NS,
        "uid": "656e7d1f-80a4-452a-a844-2aeb64be3c37",
        "resourceVersion": "11773",
        "creationTimestamp": "2026-11-25T09:09:05Z",
    },
    "involvedObject": {
        "kind": "Pod",
        "namespace": NS,
        "name": "plain",
        "uid": PLAIN_UID,
        "apiVersion": "v1",
        "resourceVersion": "11771",
    },
    "reason": "Scheduled",
    "message": f"Successfully assigned {NS}/plain to node-000001",
    "source": {},
    "firstTimestamp": None,
    "lastTimestamp": None,
    "type": "Normal",
    "eventTime": "2026-11-25T09:09:05.392475Z",
    "action": "Binding",
    "reportingComponent": "default-scheduler",
    "reportingInstance": "default-scheduler-vm",
}


def kubelet_event(name: str, reason: str, message: str, first: str, last: str, *, count: int = 1, kind: str = "Warning", pod: str = "plain") -> dict[str, Any]:
    """An event as the kubelet records it through core/v1 (count, first/lastTimestamp, source)."""
    return {
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": f"uid-{name}",
            "resourceVersion": "11956",
            "creationTimestamp": first,
        },
        "involvedObject": {
            "kind": "Pod",
            "namespace": NS,
            "name": pod,
            "uid": PLAIN_UID,
            "apiVersion": "v1",
            "fieldPath": "spec.containers{app}",
        },
        "reason": reason,
        "message": message,
        "source": {"component": "kubelet", "host": "node-000001"},
        "firstTimestamp": first,
        "lastTimestamp": last,
        "count": count,
        "type": kind,
        "eventTime": None,
        "reportingComponent": "kubelet",
        "reportingInstance": "node-000001",
    }


BACKOFF = kubelet_event(
    "plain.wdj6d",
    "BackOff",
    f"Back-off restarting failed container app in pod plain_{NS}({PLAIN_UID})",
    "2026-11-25T09:12:31Z",
    "2026-11-25T09:15:00Z",
    count=5,
)
KILLING = kubelet_event("plain.k1ll", "Killing", "Stopping container app", "2026-11-25T09:12:29Z", "2026-11-25T09:12:29Z", kind="Normal")
# Created through events.k8s.io/v1 with a series, read back through core/v1.
UNHEALTHY = {
    "metadata": {
        "name": "plain.series1",
        "namespace": NS,
        "uid": "9cf54c09-da30-4004-ab03-b95c3c53fd07",
        "resourceVersion": "11974",
        "creationTimestamp": "2026-11-25T09:13:33Z",
    },
    "involvedObject": {
        "kind": "Pod",
        "namespace": NS,
        "name": "plain",
        "apiVersion": "v1",
        "fieldPath": "spec.containers{app}",
    },
    "reason": "Unhealthy",
    "message": "Readiness probe failed: HTTP probe failed with statuscode: 503",
    "source": {},
    "firstTimestamp": None,
    "lastTimestamp": None,
    "type": "Warning",
    "eventTime": "2026-11-25T09:14:00.123456Z",
    "series": {"count": 7, "lastObservedTime": "2026-11-25T09:14:30.654321Z"},
    "action": "Probe",
    "reportingComponent": "kubelet",
    "reportingInstance": "node-000001",
}

SCHEDULED_RECORD = {
    "type": "Normal",
    "reason": "Scheduled",
    "message": f"Successfully assigned {NS}/plain to node-000001",
    "count": 1,
    "first_seen": "2026-11-25T09:09:05.392475Z",
    "last_seen": "2026-11-25T09:09:05.392475Z",
    "source": "default-scheduler",
}
BACKOFF_RECORD = {
    "type": "Warning",
    "reason": "BackOff",
    "message": f"Back-off restarting failed container app in pod plain_{NS}({PLAIN_UID})",
    "count": 5,
    "first_seen": "2026-11-25T09:12:31Z",
    "last_seen": "2026-11-25T09:15:00Z",
    "source": "kubelet",
}
KILLING_RECORD = {
    "type": "Normal",
    "reason": "Killing",
    "message": "Stopping container app",
    "count": 1,
    "first_seen": "2026-11-25T09:12:29Z",
    "last_seen": "2026-11-25T09:12:29Z",
    "source": "kubelet",
}
UNHEALTHY_RECORD = {
    "type": "Warning",
    "reason": "Unhealthy",
    "message": "Readiness probe failed: HTTP probe failed with statuscode: 503",
    "count": 7,
    "first_seen": "2026-11-25T09:14:00.123456Z",
    "last_seen": "2026-11-25T09:14:30.654321Z",
    "source": "kubelet",
}


def forbidden(resource: str, namespace: str, verb: str = "list", name: str | None = None) -> str:
    """The API server's 403 message for a ServiceAccount ``snap``."""
    what = f'{resource.split("/")[0]} "{name}"' if name else resource
    return (
        f'{what} is forbidden: User "system:serviceaccount:{namespace}:snap" cannot {verb} resource "{resource}" in API group "" in the namespace "{namespace}"'
    )


NO_PREVIOUS = 'previous terminated container "app" in pod "plain" not found'


class FakeClient:
    """``EphemeralClient`` as ``_snapshot`` uses it; every call is recorded.

    ``pods``: what the cluster holds. ``events``: the events of each namespace, or an
    exception to raise. ``logs``: bytes, None or an exception per
    ``(namespace, pod, container, previous)``; a log that is not there fails the test.
    ``pod_errors``: an exception to raise when the pods of a namespace are listed.
    """

    def __init__(
        self,
        pods: list[dict[str, Any]],
        *,
        events: dict[str, list[dict[str, Any]] | BaseException] | None = None,
        logs: dict[tuple[str, str, str, bool], bytes | None | BaseException] | None = None,
        pod_errors: dict[str, BaseException] | None = None,
        delay: float = 0.0,
    ) -> None:
        self.pods = pods
        self.events = events or {}
        self.logs = logs or {}
        self.pod_errors = pod_errors or {}
        self.delay = delay
        self.list_calls: list[tuple[list[str] | None, str | None, str | None]] = []
        self.event_calls: list[tuple[str, str | None]] = []
        self.log_calls: list[tuple[str, str, str, bool, int | None, int | None]] = []
        self.lock = threading.Lock()
        self.active = 0
        self.most_active = 0

    def list_pods(self, namespaces: list[str] | None, *, label_selector: str | None = None, field_selector: str | None = None) -> list[dict[str, Any]]:
        self.list_calls.append((None if namespaces is None else list(namespaces), label_selector, field_selector))
        for namespace in namespaces or []:
            if namespace in self.pod_errors:
                raise self.pod_errors[namespace]
        found = []
        for pod in self.pods:
            meta = pod["metadata"]
            if namespaces is not None and meta["namespace"] not in namespaces:
                continue
            if field_selector is not None and meta["name"] != field_selector.split("=", 1)[1]:
                continue
            found.append(copy.deepcopy(pod))
        return found

    def _enter(self) -> None:
        with self.lock:
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        time.sleep(self.delay)
        with self.lock:
            self.active -= 1

    def list_events(self, namespace: str, *, field_selector: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            self.event_calls.append((namespace, field_selector))
        self._enter()
        answer = self.events.get(namespace, [])
        if isinstance(answer, BaseException):
            raise answer
        return copy.deepcopy(answer)

    def read_container_log(
        self,
        namespace: str,
        pod: str,
        container: str,
        *,
        previous: bool = False,
        tail_lines: int | None = None,
        limit_bytes: int | None = None,
    ) -> bytes | None:
        with self.lock:
            self.log_calls.append((namespace, pod, container, previous, tail_lines, limit_bytes))
        self._enter()
        key = (namespace, pod, container, previous)
        assert key in self.logs, f"unexpected log read {key}"
        answer = self.logs[key]
        if isinstance(answer, BaseException):
            raise answer
        return answer


def refs(*terms: str) -> Selection:
    return Selection(refs=tuple(parse_ref(t, None) for t in terms))


def run_snapshot(client: FakeClient, selection: Selection, **options: Any) -> list[dict[str, Any]]:
    return SnapshotManager(client, SnapshotRequest(selection, Options(**options))).snapshot()  # type: ignore[arg-type]


def module_params(**params: Any) -> Any:
    """pod_snapshot_info's ``params.get`` with its defaults."""
    defaults = {"events_limit": 20, "logs": True, "tail_lines": 100, "limit_bytes": 262144, "parallel": 10, "all_namespaces": False}
    return {**defaults, **params}.get


# --------------------------------------------------------------------------- constants and options


def test_keys_are_the_documented_ones() -> None:
    assert set(RECORD_KEYS) == DOCUMENTED["record"] and len(RECORD_KEYS) == 12
    assert set(CONDITION_KEYS) == DOCUMENTED["condition"]
    assert set(CONTAINER_KEYS) == DOCUMENTED["container"]
    assert set(TERMINATION_KEYS) == DOCUMENTED["termination"]
    assert set(EVENT_KEYS) == DOCUMENTED["event"]
    assert set(LOG_KEYS) == DOCUMENTED["log"]


def test_defaults() -> None:
    assert (DEFAULT_EVENTS_LIMIT, DEFAULT_TAIL_LINES, DEFAULT_LIMIT_BYTES) == (20, 100, 262144)
    assert EVENT_FIELD_SELECTOR == "involvedObject.kind=Pod"
    assert Options() == Options(events_limit=20, logs=True, tail_lines=100, limit_bytes=262144, parallel=10)


def test_options_from_module_params() -> None:
    params = {"events_limit": 5, "logs": False, "tail_lines": None, "limit_bytes": 10, "parallel": 3, "pod": ["x"]}
    assert options_from(params.get) == Options(events_limit=5, logs=False, tail_lines=None, limit_bytes=10, parallel=3)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"tail_lines": 0}, "tail_lines must be a positive number (or unset); got 0"),
        ({"limit_bytes": -1}, "limit_bytes must be a positive number (or unset); got -1"),
        ({"events_limit": -1}, "events_limit must be >= 0; got -1"),
        ({"parallel": 0}, "parallel must be >= 1; got 0"),
    ],
)
def test_validate_options_refuses(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(KubedebugError) as err:
        validate_options(Options(**changes))
    assert err.value.msg == message


def test_validate_options_accepts_the_bounds() -> None:
    validate_options(Options(events_limit=0, tail_lines=1, limit_bytes=1, parallel=1))
    validate_options(Options(tail_lines=None, limit_bytes=None))


def test_snapshot_request_validates_before_any_api_call() -> None:
    # The request is built (and refused) before the module creates a client.
    with pytest.raises(KubedebugError) as err:
        SnapshotRequest.from_options([f"{NS}/plain"], module_params(parallel=0))
    assert err.value.msg == "parallel must be >= 1; got 0"


def test_snapshot_request_from_options() -> None:
    request = SnapshotRequest.from_options(["plain"], module_params(namespace=[NS], events_limit=0, logs=False))
    assert request == SnapshotRequest(Selection(refs=((NS, "plain"),)), Options(events_limit=0, logs=False))


# --------------------------------------------------------------------------- pod records


def test_pod_record_plain() -> None:
    assert pod_record(load_pod("plain")) == {
        "namespace": NS,
        "pod": "plain",
        "node": "node-000001",
        "phase": "Running",
        "reason": None,
        "message": None,
        "start_time": "2026-11-25T09:09:05Z",
        "conditions": ready_conditions("2026-11-25T09:09:05Z"),
        "containers": [container("app", "container", PAUSE, ready=True, state=state("running", started_at="2026-11-25T09:09:05Z"))],
        "events": None,
        "logs": None,
        "error": None,
    }


def test_pod_record_init_and_regular_containers_in_spec_order() -> None:
    record = pod_record(load_pod("with-volumes"))
    assert (record["node"], record["start_time"]) == ("node-000000", "2026-11-25T09:09:06Z")
    assert record["conditions"] == ready_conditions("2026-11-25T09:09:06Z", scheduled_at="2026-11-25T09:09:05Z")
    running = state("running", started_at="2026-11-25T09:09:06Z")
    assert record["containers"] == [
        container(
            "init", "init", BUSYBOX, ready=True,
            state=state("terminated", reason="Completed", exit_code=0, started_at="2026-11-25T09:09:06Z", finished_at="2026-11-25T09:09:06Z"),
        ),
        container("app", "container", PAUSE, ready=True, state=running),
        container("sidecar", "container", PAUSE, ready=True, state=running),
    ]  # fmt: skip


def test_pod_record_ephemeral_containers() -> None:
    record = pod_record(load_pod("ephemeral-states"))
    assert record["containers"] == [
        container("states", "container", PAUSE, ready=True, state=state("running", started_at="2026-11-25T09:09:26Z")),
        container(
            "exited", "ephemeral", BUSYBOX,
            state=state("terminated", reason="Error", exit_code=3, started_at="2026-11-25T09:09:29Z", finished_at="2026-11-25T09:09:32Z"),
        ),
        container(
            "pull-fail", "ephemeral", "registry.invalid/debug:1",
            state=state("waiting", reason="ImagePullBackOff", message='Back-off pulling image "registry.invalid/debug:1"'),
        ),
        container("fresh", "ephemeral", BUSYBOX, state=state("running", started_at="2026-11-25T09:09:30Z")),
    ]  # fmt: skip


def test_pod_record_containers_without_a_status_are_pending() -> None:
    record = pod_record(load_pod("ephemeral-states-early"))
    assert [(c["name"], c["kind"], c["state"]["status"], c["state"]["reason"], c["ready"]) for c in record["containers"]] == [
        ("states", "container", "running", None, True),
        ("exited", "ephemeral", "waiting", "ContainerCreating", False),
        ("pull-fail", "ephemeral", "pending", None, False),
        ("fresh", "ephemeral", "pending", None, False),
    ]


def test_pod_record_succeeded_pod() -> None:
    record = pod_record(load_pod("succeeded"))
    assert (record["pod"], record["phase"]) == ("done-wg7q2", "Succeeded")
    assert record["containers"] == [
        container(
            "app", "container", BUSYBOX,
            state=state("terminated", reason="Completed", exit_code=0, started_at="2026-11-25T09:09:06Z", finished_at="2026-11-25T09:09:06Z"),
        )
    ]  # fmt: skip


def test_pod_record_restarted_container_has_its_last_termination() -> None:
    record = pod_record(restarted(load_pod("plain")))
    assert record["containers"] == [
        container(
            "app", "container", PAUSE, ready=True, restart_count=2,
            state=state("running", started_at="2026-11-25T09:12:31Z"), last_termination=OOM_RECORD,
        )
    ]  # fmt: skip


def test_pod_record_crash_loop() -> None:
    record = pod_record(restarted(load_pod("plain"), waiting=True))
    assert record["containers"][0]["state"] == state("waiting", reason="CrashLoopBackOff", message="back-off 20s restarting failed container=app pod=x")
    assert (record["containers"][0]["ready"], record["containers"][0]["last_termination"]) == (False, OOM_RECORD)


def test_pod_record_unscheduled_pod() -> None:
    # A variant made for the test: the status the scheduler leaves on a pod no node can take.
    pod = load_pod("plain")
    del pod["spec"]["nodeName"]
    unschedulable = {
        "lastProbeTime": None,
        "lastTransitionTime": "2026-11-25T09:09:05Z",
        "message": "0/2 nodes are available: 2 Insufficient memory. preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod.",
        "reason": "Unschedulable",
        "status": "False",
        "type": "PodScheduled",
    }
    pod["status"] = {"phase": "Pending", "conditions": [unschedulable], "qosClass": "Burstable"}
    record = pod_record(pod)
    assert (record["node"], record["phase"], record["start_time"]) == (None, "Pending", None)
    assert record["conditions"] == [
        {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": unschedulable["message"],
            "last_transition_time": "2026-11-25T09:09:05Z",
        }
    ]
    assert record["containers"] == [container("app", "container", PAUSE)]
    assert log_reads(record) == [("app", False, False)]


def test_pod_record_evicted_pod() -> None:
    # A variant made for the test: phase, reason and message as the kubelet sets them on eviction.
    pod = load_pod("plain")
    message = "The node was low on resource: memory. Threshold quantity: 100Mi, available: 80Mi. "
    pod["status"].update(phase="Failed", reason="Evicted", message=message)
    record = pod_record(pod)
    assert (record["phase"], record["reason"], record["message"]) == ("Failed", "Evicted", message)


def test_pod_record_does_not_change_the_pod() -> None:
    pod = restarted(load_pod("with-volumes"))
    before = copy.deepcopy(pod)
    pod_record(pod)
    assert pod == before


def test_conditions_without_any() -> None:
    assert conditions({}) == []
    assert conditions({"status": {"conditions": None}}) == []


@pytest.mark.parametrize("status", [None, {}, {"lastState": {}}, {"lastState": {"terminated": None}}])
def test_last_termination_none(status: dict[str, Any] | None) -> None:
    assert last_termination(status) is None


def test_last_termination() -> None:
    assert last_termination({"lastState": {"terminated": OOM}}) == OOM_RECORD


def test_container_records_of_a_pod_without_spec() -> None:
    assert container_records({}) == []


def test_missing_record() -> None:
    assert missing_record("ns", "gone", "pod ns/gone not found") == {
        **dict.fromkeys(DOCUMENTED["record"]),
        "namespace": "ns",
        "pod": "gone",
        "error": "pod ns/gone not found",
    }


def test_add_error_joins_each_message_once() -> None:
    record = missing_record("ns", "web", "")
    record["error"] = None
    add_error(record, "a")
    add_error(record, "b")
    add_error(record, "a")
    assert record["error"] == "a; b"


def test_snapshot_failure() -> None:
    read = pod_record(load_pod("plain"))
    gone = [missing_record("ns", f"gone-{i}", f"pod ns/gone-{i} not found") for i in range(5)]
    assert snapshot_failure([]) is None
    assert snapshot_failure([read, *gone]) is None
    # A pod that was read with errors about its events or logs still counts as read.
    read["error"] = "permission denied listing events"
    assert snapshot_failure([read]) is None
    assert snapshot_failure(gone[:1]) == "nothing could be read: pod ns/gone-0 not found"
    assert snapshot_failure(gone) == ("nothing could be read: pod ns/gone-0 not found; pod ns/gone-1 not found; pod ns/gone-2 not found; and 2 more")


# --------------------------------------------------------------------------- events


def test_event_record_kubelet_core_v1() -> None:
    assert event_record(BACKOFF) == BACKOFF_RECORD
    assert event_record(KILLING) == KILLING_RECORD


def test_event_record_scheduler_event_time_only() -> None:
    assert event_record(SCHEDULED) == SCHEDULED_RECORD


def test_event_record_series() -> None:
    assert event_record(UNHEALTHY) == UNHEALTHY_RECORD


def test_event_record_falls_back_to_the_creation_time() -> None:
    # A variant made for the test: an event that carries no time of its own.
    bare = copy.deepcopy(BACKOFF)
    bare.update(firstTimestamp=None, lastTimestamp=None, count=None, source=None, reportingComponent="")
    assert event_record(bare) == {
        **BACKOFF_RECORD,
        "count": 1,
        "first_seen": "2026-11-25T09:12:31Z",
        "last_seen": "2026-11-25T09:12:31Z",
        "source": None,
    }


def test_event_record_has_the_documented_keys() -> None:
    assert set(event_record({})) == DOCUMENTED["event"]


def test_events_by_pod_groups_by_name_newest_last() -> None:
    other = kubelet_event("db.1", "Pulled", "Container image already present", "2026-11-25T09:11:00Z", "2026-11-25T09:11:00Z", pod="db")
    node = copy.deepcopy(KILLING)
    node["involvedObject"] = {"kind": "Node", "name": "node-000001"}
    grouped = events_by_pod([BACKOFF, UNHEALTHY, other, SCHEDULED, node, KILLING])
    assert grouped == {
        # Ordered by last_seen whatever the time format: 09:09:05.39 < 09:12:29 < 09:14:30.65 < 09:15:00.
        "plain": [SCHEDULED_RECORD, KILLING_RECORD, UNHEALTHY_RECORD, BACKOFF_RECORD],
        "db": [event_record(other)],
    }


def test_events_by_pod_same_time_is_ordered_by_first_seen_then_name() -> None:
    later_start = kubelet_event("plain.b", "B", "b", "2026-11-25T09:12:00Z", "2026-11-25T09:15:00Z")
    name_a = kubelet_event("plain.a", "A", "a", "2026-11-25T09:13:00Z", "2026-11-25T09:15:00Z")
    name_c = kubelet_event("plain.c", "C", "c", "2026-11-25T09:13:00Z", "2026-11-25T09:15:00Z")
    assert [r["reason"] for r in events_by_pod([name_c, name_a, later_start])["plain"]] == ["B", "A", "C"]


def test_events_by_pod_micro_time_and_time_in_the_same_second() -> None:
    # "…:05Z" is earlier than "…:05.392475Z" although it sorts after it as text.
    same_second = kubelet_event("plain.x", "X", "x", "2026-11-25T09:09:05Z", "2026-11-25T09:09:05Z")
    assert [r["reason"] for r in events_by_pod([SCHEDULED, same_second])["plain"]] == ["X", "Scheduled"]


@pytest.mark.parametrize(("limit", "expected"), [(0, []), (1, ["d"]), (3, ["b", "c", "d"]), (20, ["a", "b", "c", "d"])])
def test_newest(limit: int, expected: list[str]) -> None:
    assert newest(["a", "b", "c", "d"], limit) == expected  # type: ignore[arg-type]


# --------------------------------------------------------------------------- logs


def test_log_reads_only_regular_containers() -> None:
    assert log_reads(pod_record(load_pod("with-volumes"))) == [("app", True, False), ("sidecar", True, False)]
    assert log_reads(pod_record(load_pod("ephemeral-states"))) == [("states", True, False)]


def test_log_reads_restarted_and_crash_looping() -> None:
    assert log_reads(pod_record(restarted(load_pod("plain")))) == [("app", True, True)]
    # In CrashLoopBackOff the kubelet serves the last instance's log as the current one.
    assert log_reads(pod_record(restarted(load_pod("plain"), waiting=True))) == [("app", True, True)]


def test_log_reads_a_terminated_container() -> None:
    assert log_reads(pod_record(load_pod("succeeded"))) == [("app", True, False)]


def test_log_reads_never_started() -> None:
    # A variant made for the test: the container is still being created.
    pod = load_pod("plain")
    pod["status"]["containerStatuses"][0]["state"] = {"waiting": {"reason": "ContainerCreating"}}
    assert log_reads(pod_record(pod)) == [("app", False, False)]


def test_log_reads_of_a_missing_pod() -> None:
    assert log_reads(missing_record("ns", "gone", "x")) == []


def test_log_entry() -> None:
    assert log_entry(b"one\ntwo\n", None, 100) == {
        "current": "one\ntwo\n",
        "previous": None,
        "current_truncated": False,
        "previous_truncated": False,
    }


def test_log_entry_truncation_and_a_cut_character() -> None:
    # limit_bytes cut "é" (two bytes in UTF-8) in half: the half is replaced, not an error.
    entry = log_entry("abcé".encode()[:4], b"12345", 4)
    assert entry == {
        "current": "abc\ufffd",
        "previous": "12345",
        "current_truncated": True,
        "previous_truncated": True,
    }
    assert log_entry(b"12345", b"", None)["current_truncated"] is False


def test_log_error() -> None:
    denied = KubedebugError("pod ns/web: permission denied: grant 'get' on 'pods/log'", status=403)
    broken = KubedebugError("pod ns/web: get pods/log failed with HTTP 500: boom", status=500)
    assert log_error("app", False, denied) == denied.msg
    assert log_error("app", True, broken) == "previous log of container 'app': pod ns/web: get pods/log failed with HTTP 500: boom"
    assert log_error("app", False, broken).startswith("current log of container 'app': ")


# --------------------------------------------------------------------------- snapshot


def test_snapshot_restarted_container() -> None:
    pod = restarted(load_pod("plain"))
    client = FakeClient(
        [pod],
        events={NS: [BACKOFF, SCHEDULED, KILLING, UNHEALTHY]},
        logs={(NS, "plain", "app", False): b"serving\n", (NS, "plain", "app", True): b"loading\nKilled\n"},
    )
    records = run_snapshot(client, refs(f"{NS}/plain"))
    expected = pod_record(pod)
    expected.update(
        events=[SCHEDULED_RECORD, KILLING_RECORD, UNHEALTHY_RECORD, BACKOFF_RECORD],
        logs={
            "app": {
                "current": "serving\n",
                "previous": "loading\nKilled\n",
                "current_truncated": False,
                "previous_truncated": False,
            }
        },
    )
    assert records == [expected]
    assert client.list_calls == [([NS], None, "metadata.name=plain")]
    assert client.event_calls == [(NS, "involvedObject.kind=Pod")]
    assert sorted(client.log_calls) == [(NS, "plain", "app", False, 100, 262144), (NS, "plain", "app", True, 100, 262144)]


def test_snapshot_previous_log_gone_is_null_not_an_error() -> None:
    client = FakeClient(
        [restarted(load_pod("plain"))],
        logs={(NS, "plain", "app", False): b"serving\n", (NS, "plain", "app", True): None},
    )
    [record] = run_snapshot(client, refs(f"{NS}/plain"))
    assert (record["logs"]["app"]["current"], record["logs"]["app"]["previous"], record["error"]) == ("serving\n", None, None)


def test_snapshot_one_event_list_per_namespace_grouped_by_pod() -> None:
    pods = [load_pod("plain"), moved(load_pod("plain"), NS, "db"), moved(load_pod("plain"), "other", "plain")]
    db_event = kubelet_event("db.1", "Pulled", "Container image already present", "2026-11-25T09:11:00Z", "2026-11-25T09:11:00Z", pod="db")
    logs = {(p["metadata"]["namespace"], p["metadata"]["name"], "app", False): b"" for p in pods}
    client = FakeClient(pods, events={NS: [BACKOFF, db_event, SCHEDULED], "other": []}, logs=logs)
    records = run_snapshot(client, Selection(namespaces=None))
    assert [(r["namespace"], r["pod"], [e["reason"] for e in r["events"]]) for r in records] == [
        ("other", "plain", []),
        (NS, "db", ["Pulled"]),
        (NS, "plain", ["Scheduled", "BackOff"]),
    ]
    assert client.list_calls == [(None, None, None)]
    assert sorted(client.event_calls) == [("other", EVENT_FIELD_SELECTOR), (NS, EVENT_FIELD_SELECTOR)]


def test_snapshot_events_limit_keeps_the_newest() -> None:
    client = FakeClient([load_pod("plain")], events={NS: [BACKOFF, SCHEDULED, KILLING, UNHEALTHY]})
    [record] = run_snapshot(client, refs(f"{NS}/plain"), events_limit=2, logs=False)
    assert record["events"] == [UNHEALTHY_RECORD, BACKOFF_RECORD]
    assert (record["logs"], client.log_calls) == ({}, [])


def test_snapshot_events_limit_zero_lists_no_events() -> None:
    client = FakeClient([load_pod("plain")], logs={(NS, "plain", "app", False): b"x\n"})
    [record] = run_snapshot(client, refs(f"{NS}/plain"), events_limit=0, tail_lines=None, limit_bytes=None)
    assert (record["events"], client.event_calls) == ([], [])
    assert client.log_calls == [(NS, "plain", "app", False, None, None)]


def test_snapshot_missing_pod_among_existing_ones_keeps_its_events() -> None:
    gone_event = kubelet_event("gone.1", "Killing", "Stopping container app", "2026-11-25T09:11:00Z", "2026-11-25T09:11:00Z", pod="gone")
    client = FakeClient([load_pod("plain")], events={NS: [gone_event, SCHEDULED]}, logs={(NS, "plain", "app", False): b"ok\n"})
    records = run_snapshot(client, refs(f"{NS}/plain", f"{NS}/gone"))
    assert [r["pod"] for r in records] == ["gone", "plain"]
    expected_gone = missing_record(NS, "gone", f"pod {NS}/gone not found")
    expected_gone["events"] = [event_record(gone_event)]
    assert records[0] == expected_gone
    assert (records[1]["error"], records[1]["events"]) == (None, [SCHEDULED_RECORD])
    # One LIST of pods for the namespace (two names: no field selector), one of events.
    assert client.list_calls == [([NS], None, None)]
    assert client.event_calls == [(NS, EVENT_FIELD_SELECTOR)]
    assert snapshot_failure(records) is None


def test_snapshot_only_missing_pods() -> None:
    client = FakeClient([], events={NS: []})
    records = run_snapshot(client, refs(f"{NS}/gone"))
    assert records == [{**missing_record(NS, "gone", f"pod {NS}/gone not found"), "events": []}]
    assert snapshot_failure(records) == f"nothing could be read: pod {NS}/gone not found"


def test_snapshot_events_forbidden() -> None:
    denied = KubedebugError(
        f"permission denied listing events in namespace {NS!r}: grant 'list' on 'events' (see {RBAC_DOC}). API server said: {forbidden('events', NS)}",
        status=403,
    )
    pods = [load_pod("plain"), moved(load_pod("plain"), "other", "plain")]
    client = FakeClient(
        pods,
        events={NS: denied, "other": [SCHEDULED]},
        logs={(NS, "plain", "app", False): b"a\n", ("other", "plain", "app", False): b"b\n"},
    )
    records = run_snapshot(client, Selection(namespaces=None))
    assert [(r["namespace"], r["error"], r["events"]) for r in records] == [
        ("other", None, [SCHEDULED_RECORD]),
        (NS, denied.msg, None),
    ]
    assert records[1]["logs"]["app"]["current"] == "a\n"  # the rest of the record is still there
    assert snapshot_failure(records) is None


def test_snapshot_logs_forbidden_is_said_once() -> None:
    denied = KubedebugError(f"pod {NS}/with-volumes: permission denied: grant 'get' on 'pods/log'", status=403)
    pod = restarted(load_pod("with-volumes"))
    client = FakeClient(
        [pod],
        events={NS: []},
        logs={
            (NS, "with-volumes", "app", False): denied,
            (NS, "with-volumes", "app", True): denied,
            (NS, "with-volumes", "sidecar", False): denied,
        },
    )
    [record] = run_snapshot(client, refs(f"{NS}/with-volumes"))
    assert record["error"] == denied.msg
    assert record["events"] == []
    assert record["logs"] == {c: {"current": None, "previous": None, "current_truncated": False, "previous_truncated": False} for c in ("app", "sidecar")}
    assert list(record["logs"]) == ["app", "sidecar"]  # in the order of the spec


def test_snapshot_other_log_failures_name_the_container() -> None:
    broken = KubedebugError(f"pod {NS}/with-volumes: get pods/log failed with HTTP 500: boom", status=500)
    client = FakeClient(
        [load_pod("with-volumes")],
        logs={(NS, "with-volumes", "app", False): b"fine\n", (NS, "with-volumes", "sidecar", False): broken},
    )
    [record] = run_snapshot(client, refs(f"{NS}/with-volumes"))
    assert record["error"] == f"current log of container 'sidecar': {broken.msg}"
    assert [(c, e["current"]) for c, e in record["logs"].items()] == [("app", "fine\n"), ("sidecar", None)]


def test_snapshot_events_and_log_errors_together() -> None:
    events_denied = KubedebugError("permission denied listing events", status=403)
    logs_denied = KubedebugError("permission denied reading logs", status=403)
    client = FakeClient([load_pod("plain")], events={NS: events_denied}, logs={(NS, "plain", "app", False): logs_denied})
    [record] = run_snapshot(client, refs(f"{NS}/plain"))
    assert record["error"] == "permission denied listing events; permission denied reading logs"
    assert record["containers"] is not None and snapshot_failure([record]) is None


def test_snapshot_no_log_reads_for_containers_that_never_started() -> None:
    # A variant made for the test: the container is still being created.
    pod = load_pod("plain")
    pod["status"]["containerStatuses"][0]["state"] = {"waiting": {"reason": "ContainerCreating"}}
    client = FakeClient([pod])
    [record] = run_snapshot(client, refs(f"{NS}/plain"), events_limit=0)
    assert client.log_calls == []
    assert record["logs"] == {"app": {"current": None, "previous": None, "current_truncated": False, "previous_truncated": False}}
    assert record["error"] is None


def test_snapshot_reads_the_regular_containers_only() -> None:
    client = FakeClient([load_pod("ephemeral-states")], logs={(NS, "states", "states", False): b"up\n"})
    [record] = run_snapshot(client, refs(f"{NS}/states"), events_limit=0)
    assert client.log_calls == [(NS, "states", "states", False, 100, 262144)]
    assert list(record["logs"]) == ["states"]


def test_snapshot_truncated_log() -> None:
    client = FakeClient([load_pod("plain")], logs={(NS, "plain", "app", False): b"0123456789"})
    [record] = run_snapshot(client, refs(f"{NS}/plain"), events_limit=0, limit_bytes=10)
    assert (record["logs"]["app"]["current"], record["logs"]["app"]["current_truncated"]) == ("0123456789", True)


def test_snapshot_a_namespace_whose_pods_may_not_be_listed() -> None:
    denied = KubedebugError(f"permission denied listing pods in namespace 'locked': grant 'list' on 'pods' (see {RBAC_DOC})", status=403)
    client = FakeClient(
        [load_pod("plain")],
        pod_errors={"locked": denied},
        events={"locked": [], NS: []},
        logs={(NS, "plain", "app", False): b"ok\n"},
    )
    records = run_snapshot(client, refs("locked/a", "locked/b", "locked/a", f"{NS}/plain"))
    assert [(r["namespace"], r["pod"], r["error"]) for r in records] == [
        ("locked", "a", denied.msg),
        ("locked", "b", denied.msg),
        (NS, "plain", None),
    ]
    assert snapshot_failure(records) is None
    assert snapshot_failure(records[:2]) == f"nothing could be read: {denied.msg}; {denied.msg}"


def test_snapshot_a_selector_that_cannot_be_listed_raises() -> None:
    denied = KubedebugError("permission denied listing pods in namespace 'locked'", status=403)
    client = FakeClient([], pod_errors={"locked": denied})
    with pytest.raises(KubedebugError) as err:
        run_snapshot(client, Selection(namespaces=("locked",), label_selector="app=web"))
    assert err.value is denied


def test_snapshot_selector_and_no_pods() -> None:
    client = FakeClient([load_pod("plain")])
    assert run_snapshot(client, Selection(namespaces=("empty",), label_selector="app=web")) == []
    assert client.list_calls == [(["empty"], "app=web", None)]
    assert client.event_calls == []


def test_snapshot_reads_at_most_parallel_at_a_time() -> None:
    pods = [moved(load_pod("plain"), NS, f"web-{i}") for i in range(8)]
    logs = {(NS, f"web-{i}", "app", False): f"{i}\n".encode() for i in range(8)}
    client = FakeClient(pods, events={NS: []}, logs=logs, delay=0.02)
    records = run_snapshot(client, Selection(namespaces=(NS,)), parallel=3)
    assert [r["logs"]["app"]["current"] for r in records] == [f"{i}\n" for i in range(8)]
    assert client.most_active == 3
    assert len(client.log_calls) == 8 and len(client.event_calls) == 1


def test_select_keeps_the_order_of_namespaces_and_collapses_duplicates() -> None:
    client = FakeClient([load_pod("plain"), moved(load_pod("plain"), "b", "x")])
    pods, missing = select(client, refs("b/x", f"{NS}/plain", "b/x", "b/y"))  # type: ignore[arg-type]
    assert [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in pods] == [("b", "x"), (NS, "plain")]
    assert missing == [Missing("b", "y", "pod b/y not found")]
    assert client.list_calls == [(["b"], None, None), ([NS], None, "metadata.name=plain")]


# --------------------------------------------------------------------------- EphemeralClient


class Response:
    def __init__(self, data: bytes) -> None:
        self.data = data


class FakeCore:
    """CoreV1Api's ``list_namespaced_event`` and ``read_namespaced_pod_log`` (``_preload_content=False``).

    ``answers``: per method, successive answers (bytes, a JSON payload, or an exception); the last repeats.
    """

    def __init__(self, **answers: list[Any]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def _answer(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Response:
        assert kwargs.pop("_request_timeout"), f"{method} called without a timeout"
        self.calls.append((method, args, dict(kwargs)))
        assert kwargs.pop("_preload_content") is False
        queue = self.answers[method]
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, BaseException):
            raise answer
        return Response(answer if isinstance(answer, bytes) else json.dumps(answer).encode())

    def list_namespaced_event(self, namespace, **kwargs):
        return self._answer("list_namespaced_event", (namespace,), kwargs)

    def read_namespaced_pod_log(self, name, namespace, **kwargs):
        return self._answer("read_namespaced_pod_log", (name, namespace), kwargs)


def make_client(core: FakeCore) -> tuple[EphemeralClient, list[float]]:
    sleeps: list[float] = []
    # jitter 1.0: each wait is the top of its range, the backoff without jitter.
    api = EphemeralClient(object(), sleep=sleeps.append, jitter=lambda: 1.0)
    api.core = core
    return api, sleeps


def event_list(*items: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"resourceVersion": "11964"}
    if token:
        meta["continue"] = token
    return {"kind": "EventList", "apiVersion": "v1", "metadata": meta, "items": list(items)}


def test_list_events_pages() -> None:
    core = FakeCore(list_namespaced_event=[event_list(SCHEDULED, token="abc"), event_list(BACKOFF)])
    api, sleeps = make_client(core)
    assert api.list_events(NS) == [SCHEDULED, BACKOFF]
    assert core.calls == [
        ("list_namespaced_event", (NS,), {"_preload_content": False, "limit": 500, "field_selector": EVENT_FIELD_SELECTOR}),
        (
            "list_namespaced_event",
            (NS,),
            {"_preload_content": False, "limit": 500, "field_selector": EVENT_FIELD_SELECTOR, "_continue": "abc"},
        ),
    ]
    assert sleeps == []


def test_list_events_without_field_selector_and_page_size() -> None:
    core = FakeCore(list_namespaced_event=[event_list()])
    api, _sleeps = make_client(core)
    assert api.list_events(NS, field_selector=None, page_size=7) == []
    assert core.calls[0][2] == {"_preload_content": False, "limit": 7}


def test_list_events_retries_a_busy_server() -> None:
    core = FakeCore(list_namespaced_event=[api_error(503, "busy"), event_list(BACKOFF)])
    api, sleeps = make_client(core)
    assert api.list_events(NS) == [BACKOFF]
    assert sleeps == [0.5]


def test_list_events_forbidden() -> None:
    core = FakeCore(list_namespaced_event=[api_error(403, forbidden("events", NS))])
    api, sleeps = make_client(core)
    with pytest.raises(KubedebugError) as err:
        api.list_events(NS)
    assert err.value.status == 403
    assert err.value.msg == (
        f"permission denied listing events in namespace '{NS}': grant 'list' on 'events' (see {RBAC_DOC}). API server said: {forbidden('events', NS)}"
    )
    assert sleeps == []


def test_list_events_other_failure() -> None:
    core = FakeCore(list_namespaced_event=[api_error(410, "The provided continue parameter is too old")])
    api, _sleeps = make_client(core)
    with pytest.raises(KubedebugError) as err:
        api.list_events(NS)
    assert (err.value.status, err.value.msg) == (
        410,
        f"listing events in namespace '{NS}' failed with HTTP 410: The provided continue parameter is too old",
    )


def test_read_container_log_current_and_previous() -> None:
    core = FakeCore(read_namespaced_pod_log=[b"now\n", b"before\n"])
    api, _sleeps = make_client(core)
    assert api.read_container_log(NS, "plain", "app", tail_lines=100, limit_bytes=262144) == b"now\n"
    assert api.read_container_log(NS, "plain", "app", previous=True) == b"before\n"
    assert [(args, kwargs) for _m, args, kwargs in core.calls] == [
        ((("plain", NS)), {"_preload_content": False, "container": "app", "tail_lines": 100, "limit_bytes": 262144}),
        ((("plain", NS)), {"_preload_content": False, "container": "app", "previous": True}),
    ]


def test_read_container_log_no_previous_instance_is_none() -> None:
    core = FakeCore(read_namespaced_pod_log=[api_error(400, NO_PREVIOUS)])
    api, sleeps = make_client(core)
    assert api.read_container_log(NS, "plain", "app", previous=True) is None
    assert sleeps == []


def test_read_container_log_waiting_to_start_is_none() -> None:
    waiting = 'container "app" in pod "plain" is waiting to start: ContainerCreating'
    core = FakeCore(read_namespaced_pod_log=[api_error(400, waiting)])
    api, _sleeps = make_client(core)
    assert api.read_container_log(NS, "plain", "app") is None
    # For a previous log it is not the answer that means "none": it is reported.
    with pytest.raises(KubedebugError) as err:
        api.read_container_log(NS, "plain", "app", previous=True)
    assert err.value.msg == f"pod {NS}/plain: get pods/log failed with HTTP 400: {waiting}"


def test_read_container_log_other_bad_request_is_an_error() -> None:
    core = FakeCore(read_namespaced_pod_log=[api_error(400, "container nope is not valid for pod plain")])
    api, _sleeps = make_client(core)
    with pytest.raises(KubedebugError) as err:
        api.read_container_log(NS, "plain", "nope", previous=True)
    assert (err.value.status, err.value.msg) == (
        400,
        f"pod {NS}/plain: get pods/log failed with HTTP 400: container nope is not valid for pod plain",
    )


def test_read_container_log_forbidden() -> None:
    message = forbidden("pods/log", NS, "get", "plain")
    core = FakeCore(read_namespaced_pod_log=[api_error(403, message)])
    api, _sleeps = make_client(core)
    with pytest.raises(KubedebugError) as err:
        api.read_container_log(NS, "plain", "app")
    assert err.value.msg.startswith(f"pod {NS}/plain: permission denied: grant 'get' on 'pods/log' in namespace '{NS}'")
    assert err.value.msg.endswith(f"API server said: {message}")


def test_read_container_log_retries() -> None:
    core = FakeCore(read_namespaced_pod_log=[api_error(502, "bad gateway"), api_error(400, NO_PREVIOUS)])
    api, sleeps = make_client(core)
    assert api.read_container_log(NS, "plain", "app", previous=True) is None
    assert sleeps == [0.5]


def test_read_logs_is_gone() -> None:
    # Changed on purpose (issue 11): read_container_log is the one log read, for every front end.
    api, _sleeps = make_client(FakeCore())
    assert not hasattr(api, "read_logs")
    assert not hasattr(api, "wait_for_containers")


# --------------------------------------------------------------------------- on the wire


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
        url = urlsplit(self.path)
        self.server.requests.append((url.path, parse_qs(url.query)))
        status, payload = self.server.responses.pop(0)
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain" if isinstance(payload, bytes) else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        self.responses: list[tuple[int, Any]] = []


@pytest.fixture
def apiserver(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Server]:
    without_proxies(monkeypatch)
    with serving(_Server()) as server:
        yield server


def wire_client(server: _Server) -> EphemeralClient:
    configuration = k8s_client.Configuration()
    configuration.host = f"http://127.0.0.1:{server.server_address[1]}"
    return EphemeralClient(k8s_client.ApiClient(configuration), sleep=lambda seconds: None)


def test_wire_list_events(apiserver: _Server) -> None:
    apiserver.responses = [(200, event_list(SCHEDULED, token="tok")), (200, event_list(BACKOFF))]
    assert wire_client(apiserver).list_events(NS) == [SCHEDULED, BACKOFF]
    path = f"/api/v1/namespaces/{NS}/events"
    assert apiserver.requests == [
        (path, {"fieldSelector": ["involvedObject.kind=Pod"], "limit": ["500"]}),
        (path, {"fieldSelector": ["involvedObject.kind=Pod"], "limit": ["500"], "continue": ["tok"]}),
    ]


def test_wire_read_container_log(apiserver: _Server) -> None:
    status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": NO_PREVIOUS, "reason": "BadRequest", "code": 400}
    apiserver.responses = [(200, b"line\n"), (400, status)]
    api = wire_client(apiserver)
    assert api.read_container_log(NS, "plain", "app", tail_lines=100, limit_bytes=262144) == b"line\n"
    assert api.read_container_log(NS, "plain", "app", previous=True, tail_lines=5) is None
    path = f"/api/v1/namespaces/{NS}/pods/plain/log"
    # Clients <= 35 send "True", newer ones "true"; the API server takes anything but "0" and "false" as true.
    previous = apiserver.requests[1][1].pop("previous")
    assert previous in (["true"], ["True"])
    assert apiserver.requests == [
        (path, {"container": ["app"], "limitBytes": ["262144"], "tailLines": ["100"]}),
        (path, {"container": ["app"], "tailLines": ["5"]}),
    ]


# --------------------------------------------------------------------------- SnapshotManager.run


def run(client: FakeClient, selection: Selection, **options: Any) -> Outcome:
    return SnapshotManager(client, SnapshotRequest(selection, Options(**options))).run()  # type: ignore[arg-type]


def test_run_returns_the_records_unchanged() -> None:
    client = FakeClient([load_pod("plain")], events={NS: []})
    outcome = run(client, refs(f"{NS}/plain"), logs=False)
    assert outcome.result == {"changed": False, "pods": [dict(pod_record(load_pod("plain")), events=[], logs={})]}
    assert (outcome.warnings, outcome.failure) == ([], None)


def test_run_warns_when_the_selection_matched_no_pods() -> None:
    outcome = run(FakeClient([]), Selection(namespaces=(NS,), label_selector="app=web"))
    assert outcome == Outcome(result={"changed": False, "pods": []}, warnings=["the selection matched no pods"], failure=None)


def test_run_fails_when_no_pod_could_be_read_and_still_returns_the_records() -> None:
    outcome = run(FakeClient([], events={NS: []}), refs(f"{NS}/gone"))
    assert outcome.failure == f"nothing could be read: pod {NS}/gone not found"
    assert outcome.result["pods"] == [{**missing_record(NS, "gone", f"pod {NS}/gone not found"), "events": []}]
    assert outcome.warnings == []
