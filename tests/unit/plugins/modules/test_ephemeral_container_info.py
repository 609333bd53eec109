# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ephemeral_container_info module, run through its ``main()`` against the fake API server (see conftest.py)."""

from __future__ import annotations

from typing import Any

import kubernetes
import pytest

from ansible_collections.kubedebug.ephemeral.plugins.modules.ephemeral_container_info import main
from ansible_collections.kubedebug.ephemeral.tests.unit.api_objects import load_pod
from ansible_collections.kubedebug.ephemeral.tests.unit.fake_apiserver import FakeApiServer

NS = "unit-fixtures"
BUSYBOX = "docker.io/library/busybox:1.36"

# The record of the recorded pod ``debugged`` (values copied from the JSON file).
DEBUG = {
    "namespace": NS,
    "pod": "debugged",
    "node": "node-000000",
    "container": "debug",
    "image": BUSYBOX,
    "target_container": "app",
    "state": "running",
    "reason": None,
    "message": None,
    "exit_code": None,
    "started_at": "2026-11-25T09:09:14Z",
    "finished_at": None,
    "duration_seconds": None,
    "logs": None,
    "output": None,
    "truncated": False,
    "parse_error": None,
    "bad_lines": [],
    "partial_line": None,
    "invalid_utf8": 0,
    "error": None,
}


def missing(namespace: str, pod: str, error: str) -> dict[str, Any]:
    return dict(dict.fromkeys(DEBUG), namespace=namespace, pod=pod, truncated=False, bad_lines=[], invalid_utf8=0, error=error)


@pytest.fixture
def cluster(apiserver: FakeApiServer) -> Any:
    apiserver.cluster.add(load_pod("plain"), load_pod("debugged"), load_pod("ephemeral-states"))
    return apiserver.cluster


def test_returns_pods_not_results(cluster: Any, run_module: Any) -> None:
    result = run_module(main, {"namespace": NS, "pod": "debugged"})
    assert result["rc"] == 0 and result["changed"] is False
    assert result["pods"] == [DEBUG]
    assert "results" not in result  # renamed in issue 11
    assert result["warnings"] == []
    assert cluster.calls() == [("GET", f"/api/v1/namespaces/{NS}/pods", {"fieldSelector": ["metadata.name=debugged"]})]


def test_audit_of_a_namespace_lists_it_once(cluster: Any, run_module: Any) -> None:
    result = run_module(main, {"namespace": NS})
    assert cluster.calls() == [("GET", f"/api/v1/namespaces/{NS}/pods", {})]
    assert [(r["pod"], r["container"], r["state"]) for r in result["pods"]] == [
        ("debugged", "debug", "running"),
        ("states", "exited", "terminated"),
        ("states", "fresh", "running"),
        ("states", "pull-fail", "waiting"),
    ]  # plain carries no ephemeral container: no record


def test_logs_are_read_and_parsed(cluster: Any, run_module: Any) -> None:
    cluster.logs[(NS, "debugged", "debug", False)] = b'{"ok": true}\n{"ok": false}\n'
    result = run_module(main, {"pod": [f"{NS}/debugged"], "logs": True, "parse": "json_lines", "tail_lines": 10})
    assert result["pods"] == [dict(DEBUG, logs='{"ok": true}\n{"ok": false}\n', output=[{"ok": True}, {"ok": False}])]
    assert cluster.calls()[1] == (
        "GET",
        f"/api/v1/namespaces/{NS}/pods/debugged/log",
        {"container": ["debug"], "tailLines": ["10"], "limitBytes": ["1048576"]},
    )


def test_works_in_check_mode(cluster: Any, run_module: Any) -> None:
    result = run_module(main, {"namespace": NS, "name": "debugged", "container": ["debug"]}, check_mode=True)
    assert result["rc"] == 0 and result["pods"] == [DEBUG]


def test_a_missing_pod_beside_a_found_one_is_a_record(cluster: Any, run_module: Any) -> None:
    result = run_module(main, {"pod": [f"{NS}/debugged", "ns/x"]})
    assert result["rc"] == 0
    assert result["pods"] == [missing("ns", "x", "pod ns/x not found"), DEBUG]  # ordered by namespace


def test_nothing_collected_fails_with_the_records(cluster: Any, run_module: Any) -> None:
    result = run_module(main, {"pod": ["ns/x", "ns/y"]})
    assert result["rc"] == 1 and result["failed"] is True
    assert result["msg"] == "nothing could be collected: pod ns/x not found; pod ns/y not found"
    assert result["pods"] == [missing("ns", "x", "pod ns/x not found"), missing("ns", "y", "pod ns/y not found")]


def test_a_container_the_pod_lacks(cluster: Any, run_module: Any) -> None:
    result = run_module(main, {"namespace": NS, "pod": ["debugged", "plain"], "container": "debug"})
    assert result["rc"] == 0
    assert [(r["pod"], r["error"]) for r in result["pods"]] == [
        ("debugged", None),
        ("plain", f"pod {NS}/plain has no ephemeral container named 'debug' (it has: none)"),
    ]


def test_an_empty_selection_warns(cluster: Any, run_module: Any) -> None:
    result = run_module(main, {"namespace": ["empty", "other"], "label_selectors": ["app=web"]})
    assert result["rc"] == 0 and result["pods"] == []
    assert result["warnings"] == ["the selection matched no pods with ephemeral containers"]
    assert cluster.calls() == [
        ("GET", "/api/v1/namespaces/empty/pods", {"labelSelector": ["app=web"]}),
        ("GET", "/api/v1/namespaces/other/pods", {"labelSelector": ["app=web"]}),
    ]


def test_a_namespace_that_may_not_be_listed(cluster: Any, run_module: Any) -> None:
    from ansible_collections.kubedebug.ephemeral.tests.unit.fake_apiserver import status_body

    message = 'pods is forbidden: User "jane" cannot list resource "pods" in API group "" in the namespace "secret"'
    cluster.refuse[("GET", "/api/v1/namespaces/secret/pods")] = (403, status_body(403, message))
    result = run_module(main, {"namespace": "secret", "field_selector": "status.phase=Running"})
    assert result["rc"] == 1
    assert result["msg"] == (
        "permission denied listing pods in namespace 'secret': grant 'list' on 'pods' "
        f"(see the collection's RBAC guide, docs/docsite/rst/rbac.rst). API server said: {message}"
    )


@pytest.mark.parametrize(
    ("args", "msg"),
    [
        ({"pod": "x", "label_selector": "app=web"}, "parameters are mutually exclusive: pod|label_selector"),
        ({"namespace": NS, "all_namespaces": True}, "parameters are mutually exclusive: namespace|all_namespaces"),
        ({"pod": ["x"], "namespace": ["a", "b"]}, "pod names without a namespace need exactly one namespace (got a, b): write namespace/pod for each pod"),
        ({"label_selector": "app=web"}, "a label_selector or field_selector needs a namespace (or all_namespaces: true)"),
        ({}, "name the pods (namespace/pod), or give a namespace (or all_namespaces: true) and optionally a label_selector"),
        ({"namespace": NS, "tail_lines": 0}, "tail_lines must be a positive number (or unset); got 0"),
        ({"namespace": NS, "parse": "yaml"}, "value of parse must be one of: raw, lines, json, json_lines, got: yaml"),
    ],
)
def test_refusals(cluster: Any, run_module: Any, args: dict[str, Any], msg: str) -> None:
    result = run_module(main, args)
    assert result["rc"] == 1 and result["msg"] == msg
    assert cluster.requests == []


def test_a_kubernetes_client_that_is_too_old(cluster: Any, run_module: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kubernetes, "__version__", "24.1.0")
    result = run_module(main, {"namespace": NS})
    assert result["rc"] == 1
    assert result["msg"] == "the kubernetes Python client 24.1.0 is too old: 24.2.0 or newer is required (pip install 'kubernetes>=24.2.0')"
    assert cluster.requests == []
