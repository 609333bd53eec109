# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The pod_snapshot_info module, run through its ``main()`` against the fake API server (see conftest.py)."""

from __future__ import annotations

from typing import Any

import kubernetes
import pytest

from ansible_collections.kubedebug.ephemeral.plugins.modules.pod_snapshot_info import main
from ansible_collections.kubedebug.ephemeral.tests.unit.api_objects import load_pod
from ansible_collections.kubedebug.ephemeral.tests.unit.fake_apiserver import FakeApiServer, status_body

NS = "unit-fixtures"
BACKOFF = {
    "metadata": {"name": "plain.1", "namespace": NS, "creationTimestamp": "2026-11-25T09:12:00Z"},
    "involvedObject": {"kind": "Pod", "name": "plain", "namespace": NS},
    "reason": "BackOff",
    "message": "Back-off restarting failed container app",
    "type": "Warning",
    "count": 3,
    "firstTimestamp": "2026-11-25T09:10:00Z",
    "lastTimestamp": "2026-11-25T09:12:00Z",
    "source": {"component": "kubelet"},
}
BACKOFF_RECORD = {
    "type": "Warning",
    "reason": "BackOff",
    "message": "Back-off restarting failed container app",
    "count": 3,
    "first_seen": "2026-11-25T09:10:00Z",
    "last_seen": "2026-11-25T09:12:00Z",
    "source": "kubelet",
}


@pytest.fixture
def cluster(apiserver: FakeApiServer) -> Any:
    apiserver.cluster.add(load_pod("plain"))
    apiserver.cluster.events[NS] = [BACKOFF]
    apiserver.cluster.logs[(NS, "plain", "app", False)] = b"listening on :8080\n"
    return apiserver.cluster


def test_snapshot_of_a_named_pod(cluster: Any, run_module: Any) -> None:
    result = run_module(main, {"namespace": NS, "pod": "plain"})
    assert result["rc"] == 0 and result["changed"] is False and result["warnings"] == []
    [record] = result["pods"]
    assert (record["namespace"], record["pod"], record["node"], record["phase"], record["error"]) == (NS, "plain", "node-000001", "Running", None)
    assert [(c["name"], c["kind"]) for c in record["containers"]] == [("app", "container")]
    assert record["events"] == [BACKOFF_RECORD]
    assert record["logs"] == {"app": {"current": "listening on :8080\n", "previous": None, "current_truncated": False, "previous_truncated": False}}
    assert sorted(cluster.calls(), key=lambda call: call[1]) == [
        ("GET", f"/api/v1/namespaces/{NS}/events", {"fieldSelector": ["involvedObject.kind=Pod"], "limit": ["500"]}),
        ("GET", f"/api/v1/namespaces/{NS}/pods", {"fieldSelector": ["metadata.name=plain"]}),
        ("GET", f"/api/v1/namespaces/{NS}/pods/plain/log", {"container": ["app"], "tailLines": ["100"], "limitBytes": ["262144"]}),
    ]


def test_no_events_and_no_logs(cluster: Any, run_module: Any) -> None:
    result = run_module(main, {"name": [f"{NS}/plain"], "events_limit": 0, "logs": False}, check_mode=True)
    assert result["rc"] == 0
    assert (result["pods"][0]["events"], result["pods"][0]["logs"]) == ([], {})
    assert cluster.calls() == [("GET", f"/api/v1/namespaces/{NS}/pods", {"fieldSelector": ["metadata.name=plain"]})]


def test_a_missing_pod_keeps_its_events_and_fails_when_alone(cluster: Any, run_module: Any) -> None:
    cluster.events[NS].append(dict(BACKOFF, involvedObject={"kind": "Pod", "name": "gone", "namespace": NS}))
    result = run_module(main, {"namespace": NS, "pod": "gone"})
    assert result["rc"] == 1 and result["failed"] is True
    assert result["msg"] == f"nothing could be read: pod {NS}/gone not found"
    [record] = result["pods"]
    assert (record["pod"], record["error"], record["containers"], record["events"]) == ("gone", f"pod {NS}/gone not found", None, [BACKOFF_RECORD])


def test_a_missing_pod_beside_a_found_one(cluster: Any, run_module: Any) -> None:
    result = run_module(main, {"pod": [f"{NS}/plain", f"{NS}/gone"], "logs": False})
    assert result["rc"] == 0
    assert [(r["pod"], r["error"]) for r in result["pods"]] == [("gone", f"pod {NS}/gone not found"), ("plain", None)]


def test_an_empty_selection_warns(cluster: Any, run_module: Any) -> None:
    cluster.pods.clear()  # the fake server does not evaluate selectors
    result = run_module(main, {"all_namespaces": True, "field_selectors": ["spec.nodeName=node-9"], "label_selectors": ["app=web"]})
    assert result["rc"] == 0 and result["pods"] == []
    assert result["warnings"] == ["the selection matched no pods"]
    assert cluster.calls() == [("GET", "/api/v1/pods", {"labelSelector": ["app=web"], "fieldSelector": ["spec.nodeName=node-9"]})]


def test_events_that_may_not_be_read_are_the_records_error(cluster: Any, run_module: Any) -> None:
    message = 'events is forbidden: User "jane" cannot list resource "events"'
    cluster.refuse[("GET", f"/api/v1/namespaces/{NS}/events")] = (403, status_body(403, message))
    result = run_module(main, {"namespace": NS, "pod": "plain"})
    assert result["rc"] == 0
    assert result["pods"][0]["error"] == (
        f"permission denied listing events in namespace '{NS}': grant 'list' on 'events' "
        f"(see the collection's RBAC guide, docs/docsite/rst/rbac.rst). API server said: {message}"
    )
    assert result["pods"][0]["events"] is None
    assert result["pods"][0]["logs"]["app"]["current"] == "listening on :8080\n"


@pytest.mark.parametrize(
    ("args", "msg"),
    [
        ({"namespace": NS, "pod": "plain", "all_namespaces": True}, "parameters are mutually exclusive: pod|all_namespaces, namespace|all_namespaces"),
        ({"namespace": NS, "all_namespaces": True}, "parameters are mutually exclusive: namespace|all_namespaces"),
        ({"namespace": NS, "events_limit": -1}, "events_limit must be >= 0; got -1"),
        ({"namespace": NS, "limit_bytes": 0}, "limit_bytes must be a positive number (or unset); got 0"),
        ({"namespace": NS, "parallel": 0}, "parallel must be >= 1; got 0"),
        ({"pod": "plain"}, "pod reference 'plain' has no namespace: write namespace/pod or set the namespace option"),
    ],
)
def test_refusals(cluster: Any, run_module: Any, args: dict[str, Any], msg: str) -> None:
    result = run_module(main, args)
    assert result["rc"] == 1 and result["msg"] == msg
    assert cluster.requests == []


def test_a_kubernetes_client_that_is_too_old(cluster: Any, run_module: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kubernetes, "__version__", "20.13.0")
    result = run_module(main, {"namespace": NS})
    assert result["msg"] == "the kubernetes Python client 20.13.0 is too old: 24.2.0 or newer is required (pip install 'kubernetes>=24.2.0')"
    assert cluster.requests == []
