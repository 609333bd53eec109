# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The debugged_pods_info module, run through its ``main()`` against the fake API server (see conftest.py).

The fake server answers pods; this file adds, on the one server of each test, what
the module reads besides: ``GET /api/v1/namespaces/<ns>`` and
``GET /apis/apps/v1/namespaces/<ns>/replicasets/<name>`` (``namespaces`` and
``replica_sets`` below; anything else absent is a 404, as the API server answers).
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from ansible_collections.kubedebug.ephemeral.plugins.module_utils import _spec
from ansible_collections.kubedebug.ephemeral.plugins.modules.debugged_pods_info import main
from ansible_collections.kubedebug.ephemeral.tests.unit.api_objects import load_pod
from ansible_collections.kubedebug.ephemeral.tests.unit.fake_apiserver import FakeApiServer, status_body

NS = "unit-fixtures"
_NAMESPACE = re.compile(r"^/api/v1/namespaces/(?P<name>[^/]+)$")
_REPLICA_SET = re.compile(r"^/apis/apps/v1/namespaces/(?P<ns>[^/]+)/replicasets/(?P<name>[^/]+)$")


class Extra:
    """Namespaces and ReplicaSets the fake server also answers."""

    def __init__(self) -> None:
        self.namespaces: dict[str, dict[str, Any]] = {}
        self.replica_sets: dict[tuple[str, str], dict[str, Any]] = {}


@pytest.fixture
def extra(apiserver: FakeApiServer, monkeypatch: pytest.MonkeyPatch) -> Extra:
    objects = Extra()
    cluster = apiserver.cluster
    answer = cluster.answer

    def more(method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        if (method, path) in cluster.refuse:
            return cluster.refuse[(method, path)]
        if method == "GET" and (m := _NAMESPACE.match(path)):
            found = objects.namespaces.get(m.group("name"))
            return (200, copy.deepcopy(found)) if found else (404, status_body(404, f'namespaces "{m.group("name")}" not found'))
        if method == "GET" and (m := _REPLICA_SET.match(path)):
            found = objects.replica_sets.get((m.group("ns"), m.group("name")))
            return (200, copy.deepcopy(found)) if found else (404, status_body(404, f'replicasets.apps "{m.group("name")}" not found'))
        return answer(method, path, query, body)

    monkeypatch.setattr(cluster, "answer", more)
    return objects


def web_pod(name: str, *, debugged: bool = True) -> dict[str, Any]:
    """A pod of Deployment web (ReplicaSet web-7d9c6b5f4), with the debug container of ``kubectl debug`` or none."""
    pod = load_pod("debugged" if debugged else "plain")
    pod["metadata"].update(name=name, namespace=NS, labels={"app": "web", "pod-template-hash": "7d9c6b5f4"})
    pod["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9c6b5f4", "uid": "rs-1", "controller": True}]
    return pod


REPLICA_SET = {
    "kind": "ReplicaSet",
    "apiVersion": "apps/v1",
    "metadata": {
        "name": "web-7d9c6b5f4",
        "namespace": NS,
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "d-1", "controller": True}],
    },
}


def namespace(enforce: str) -> dict[str, Any]:
    return {"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": NS, "labels": {"pod-security.kubernetes.io/enforce": enforce}}}


@pytest.fixture
def cluster(apiserver: FakeApiServer, extra: Extra) -> Any:
    ours = _spec.audit_annotation("debug", "docker.io/library/busybox:1.36", "jane", "INC-42", "2026-11-25T09:09:10Z")
    first = web_pod("web-7d9c6b5f4-aaaaa")
    first["metadata"]["annotations"] = ours
    apiserver.cluster.add(first, web_pod("web-7d9c6b5f4-bbbbb"), web_pod("web-7d9c6b5f4-ccccc", debugged=False), load_pod("ephemeral-states"))
    extra.replica_sets[(NS, "web-7d9c6b5f4")] = REPLICA_SET
    extra.namespaces[NS] = namespace("baseline")
    return apiserver.cluster


def test_a_namespace_without_selector(cluster: Any, run_module: Any) -> None:
    result = run_module(main, {"namespace": NS}, check_mode=True)
    assert result["rc"] == 0 and result["changed"] is False and result["warnings"] == []
    assert [r["pod"] for r in result["pods"]] == ["states", "web-7d9c6b5f4-aaaaa", "web-7d9c6b5f4-bbbbb"]
    states, first, second = result["pods"]
    assert [(c["name"], c["by"], c["reason"], c["running"]) for c in first["containers"]] == [("debug", "jane", "INC-42", True)]
    assert [(c["name"], c["by"], c["reason"]) for c in second["containers"]] == [("debug", "unknown", None)]
    assert first["owner"] == {"kind": "Deployment", "name": "web", "via": "ReplicaSet web-7d9c6b5f4"}
    assert first["restart"]["command"] == f"kubectl -n {NS} rollout restart deployment/web"
    assert states["owner"] is None and states["restart"]["command"] == f"kubectl -n {NS} delete pod states"
    # kubectl debug --profile=general adds SYS_PTRACE, which baseline forbids.
    assert first["pod_security"]["enforce"] == "baseline" and first["pod_security"]["violating"] == ["debug"]
    assert result["summary"] == {
        "pods_scanned": 4,
        "pods_debugged": 3,
        "containers": 5,
        "running": 3,
        "by_us": 1,
        "unknown": 4,
        "by_namespace": {NS: {"pods": 3, "containers": 5, "running": 3}},
    }
    assert result["missing"] == []
    # One pod LIST, one GET for the one ReplicaSet (shared by two pods), one for the namespace; nothing per pod.
    assert sorted(cluster.calls(), key=lambda call: call[1]) == [
        ("GET", f"/api/v1/namespaces/{NS}", {}),
        ("GET", f"/api/v1/namespaces/{NS}/pods", {}),
        ("GET", f"/apis/apps/v1/namespaces/{NS}/replicasets/web-7d9c6b5f4", {}),
    ]
    assert result["api"]["requests"] == 3


def test_filters(cluster: Any, run_module: Any) -> None:
    ours = run_module(main, {"namespace": NS, "added_by": "us"})
    assert [(r["pod"], [c["name"] for c in r["containers"]]) for r in ours["pods"]] == [("web-7d9c6b5f4-aaaaa", ["debug"])]
    running_others = run_module(main, {"namespace": NS, "added_by": "others", "only_running": True})
    assert [(r["pod"], [c["name"] for c in r["containers"]]) for r in running_others["pods"]] == [
        ("states", ["fresh"]),
        ("web-7d9c6b5f4-bbbbb", ["debug"]),
    ]
    assert running_others["summary"]["containers"] == 2 and running_others["summary"]["pods_scanned"] == 4


def test_reads_that_are_refused_cost_details_not_the_task(cluster: Any, run_module: Any) -> None:
    cluster.refuse[("GET", f"/apis/apps/v1/namespaces/{NS}/replicasets/web-7d9c6b5f4")] = (403, status_body(403, "replicasets.apps is forbidden"))
    cluster.refuse[("GET", f"/api/v1/namespaces/{NS}")] = (403, status_body(403, "namespaces is forbidden"))
    result = run_module(main, {"pod": [f"{NS}/web-7d9c6b5f4-bbbbb"]})
    assert result["rc"] == 0
    [record] = result["pods"]
    assert record["owner"]["name"] == "web" and record["owner"]["via"].startswith(
        "inferred from ReplicaSet web-7d9c6b5f4 and the pod-template-hash label (it could not be read: permission denied reading "
        f"ReplicaSet {NS}/web-7d9c6b5f4: grant 'get' on 'replicasets (apps)' in namespace '{NS}'"
    )
    assert record["restart"]["command"] == f"kubectl -n {NS} rollout restart deployment/web"
    assert record["pod_security"]["enforce"] == "unknown"
    assert record["pod_security"]["note"].startswith(
        f"the namespace's enforced PodSecurity level is unknown (permission denied reading namespace '{NS}': grant 'get' on 'namespaces' cluster-wide"
    )


def test_missing_named_pods(cluster: Any, run_module: Any) -> None:
    both = run_module(main, {"namespace": NS, "pod": ["gone", "web-7d9c6b5f4-ccccc"]})
    assert both["rc"] == 0 and both["pods"] == []  # ccccc carries no ephemeral container
    assert both["missing"] == [{"namespace": NS, "pod": "gone", "error": f"pod {NS}/gone not found"}]
    assert both["warnings"] == [f"pod {NS}/gone not found"]
    alone = run_module(main, {"namespace": NS, "pod": "gone"})
    assert alone["rc"] == 1 and alone["msg"] == f"nothing could be read: pod {NS}/gone not found"
    assert alone["missing"] == [{"namespace": NS, "pod": "gone", "error": f"pod {NS}/gone not found"}]


def test_the_whole_cluster(cluster: Any, run_module: Any) -> None:
    result = run_module(main, {"all_namespaces": True})
    assert result["rc"] == 0 and result["summary"]["pods_debugged"] == 3
    assert ("GET", "/api/v1/pods", {}) in cluster.calls()


def test_a_pod_list_that_is_refused_fails(cluster: Any, run_module: Any) -> None:
    cluster.refuse[("GET", "/api/v1/pods")] = (403, status_body(403, 'pods is forbidden: User "jane" cannot list resource "pods"'))
    result = run_module(main, {"all_namespaces": True})
    assert result["rc"] == 1
    assert result["msg"].startswith("permission denied listing pods cluster-wide (all_namespaces): grant 'list' on 'pods'")


@pytest.mark.parametrize(
    ("args", "msg"),
    [
        ({}, "name the pods (namespace/pod), or give a namespace (or all_namespaces: true) and optionally a label_selector"),
        ({"label_selector": "app=web"}, "a label_selector or field_selector needs a namespace (or all_namespaces: true)"),
        ({"namespace": NS, "all_namespaces": True}, "parameters are mutually exclusive: namespace|all_namespaces"),
        ({"namespace": NS, "added_by": "me"}, "value of added_by must be one of: any, us, others, got: me"),
    ],
)
def test_refusals(cluster: Any, run_module: Any, args: dict[str, Any], msg: str) -> None:
    result = run_module(main, args)
    assert result["rc"] == 1 and result["msg"] == msg
    assert cluster.requests == []


def test_a_replica_set_or_namespace_that_is_gone(cluster: Any, extra: Extra, run_module: Any) -> None:
    extra.replica_sets.clear()
    extra.namespaces.clear()
    result = run_module(main, {"pod": [f"{NS}/web-7d9c6b5f4-aaaaa"]})
    assert result["rc"] == 0
    [record] = result["pods"]
    assert record["owner"] == {
        "kind": "Deployment",
        "name": "web",
        "via": "inferred from ReplicaSet web-7d9c6b5f4 and the pod-template-hash label (it is gone)",
    }
    assert record["pod_security"]["enforce"] == "unknown"
    assert record["pod_security"]["note"].startswith("the namespace's enforced PodSecurity level is unknown (the namespace is gone)")
    # The pod LIST, then one GET each for the ReplicaSet and the namespace.
    assert len(cluster.calls("GET")) == 3
