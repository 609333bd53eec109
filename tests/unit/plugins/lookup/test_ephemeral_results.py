# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ephemeral_results lookup, loaded by Ansible's lookup loader and run against the fake API server.

``KubedebugLookupBase.client`` is patched to an ``EphemeralClient`` over the fake API server
(tests/unit/fake_apiserver.py); the lookup's ``display`` is replaced by a recorder so that
warnings can be asserted. Options go through ``set_options`` as in a play (keyword
arguments of ``query()``), aliases included. The collection loader that ``lookup_loader``
needs is installed by tests/unit/conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import kubernetes
import pytest
from ansible.errors import AnsibleLookupError
from ansible.plugins.loader import lookup_loader

from ansible_collections.kubedebug.ephemeral.plugins.plugin_utils import _lookup
from ansible_collections.kubedebug.ephemeral.plugins.plugin_utils._lookup import KubedebugLookupBase
from ansible_collections.kubedebug.ephemeral.tests.unit.api_objects import load_pod
from ansible_collections.kubedebug.ephemeral.tests.unit.fake_apiserver import FakeApiServer, fake_apiserver, status_body

NS = "unit-fixtures"
BUSYBOX = "docker.io/library/busybox:1.36"

EXITED = {
    "namespace": NS,
    "pod": "states",
    "node": "node-000001",
    "container": "exited",
    "image": BUSYBOX,
    "target_container": None,
    "state": "terminated",
    "reason": "Error",
    "message": None,
    "exit_code": 3,
    "started_at": "2026-11-25T09:09:29Z",
    "finished_at": "2026-11-25T09:09:32Z",
    "duration_seconds": 3.0,
    "logs": None,
    "output": None,
    "truncated": False,
    "parse_error": None,
    "bad_lines": [],
    "partial_line": None,
    "invalid_utf8": 0,
    "error": None,
}


class RecordingDisplay:
    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.verbose: list[str] = []

    def warning(self, msg: str) -> None:
        self.warnings.append(msg)

    def vvv(self, msg: str) -> None:
        self.verbose.append(msg)


@pytest.fixture
def apiserver(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeApiServer]:
    with fake_apiserver(monkeypatch) as server:
        server.cluster.add(load_pod("plain"), load_pod("debugged"), load_pod("ephemeral-states"))
        server.cluster.logs[(NS, "states", "exited", False)] = b'{"step": 1}\n'
        yield server


@pytest.fixture
def display(monkeypatch: pytest.MonkeyPatch) -> RecordingDisplay:
    recorder = RecordingDisplay()
    monkeypatch.setattr(_lookup, "display", recorder)
    return recorder


@pytest.fixture
def query(apiserver: FakeApiServer, display: RecordingDisplay, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``query(*terms, **options)``: what ``query('kubedebug.ephemeral.ephemeral_results', ...)`` returns."""
    monkeypatch.setattr(KubedebugLookupBase, "client", lambda self: apiserver.client())

    def run(*terms: str, **options: Any) -> list[dict[str, Any]]:
        lookup = lookup_loader.get("kubedebug.ephemeral.ephemeral_results")
        assert isinstance(lookup, KubedebugLookupBase)  # the class whose client is patched
        return lookup.run(list(terms), variables={}, **options)

    return run


def test_returns_one_record_per_container_with_its_parsed_log(query: Any, apiserver: FakeApiServer, display: RecordingDisplay) -> None:
    records = query(f"{NS}/states", container="exited", parse="json_lines")
    # Each record carries the API traffic of the whole call: here one LIST and one log read, nothing retried.
    api = {"requests": 2, "retries": 0, "throttled": 0, "timeouts": 0, "watch_restarts": 0, "backoff_seconds": 0.0}
    assert records == [dict(EXITED, logs='{"step": 1}\n', output=[{"step": 1}], api=api)]
    assert display.warnings == []
    # terminated already: no wait; the default logs=true reads the log, bounded by the default limit_bytes
    assert apiserver.cluster.calls() == [
        ("GET", f"/api/v1/namespaces/{NS}/pods", {"fieldSelector": ["metadata.name=states"]}),
        ("GET", f"/api/v1/namespaces/{NS}/pods/states/log", {"container": ["exited"], "limitBytes": ["1048576"]}),
    ]


def test_bare_names_in_the_namespace_option(query: Any, apiserver: FakeApiServer) -> None:
    records = query("debugged", "states", namespace=NS, container=["debug"], wait_for="none", logs=False)
    assert [(r["pod"], r["container"], r["error"]) for r in records] == [
        ("debugged", "debug", None),
        ("states", "debug", f"pod {NS}/states has no ephemeral container named 'debug' (it has: exited, pull-fail, fresh)"),
    ]
    assert apiserver.cluster.calls() == [("GET", f"/api/v1/namespaces/{NS}/pods", {})]  # two pods: one LIST


def test_a_wait_that_times_out_reports_the_state_it_is_in(query: Any, apiserver: FakeApiServer) -> None:
    records = query(f"{NS}/debugged", wait_for="terminated", wait_timeout=0, logs=False)
    assert [(r["container"], r["state"], r["error"]) for r in records] == [("debug", "running", None)]


def test_selectors_and_their_aliases(query: Any, apiserver: FakeApiServer, display: RecordingDisplay) -> None:
    assert query(namespace=["empty", "other"], label_selectors=["app=web", "tier=front"], field_selectors="status.phase=Running") == []
    selectors = {"labelSelector": ["app=web,tier=front"], "fieldSelector": ["status.phase=Running"]}
    assert apiserver.cluster.calls() == [
        ("GET", "/api/v1/namespaces/empty/pods", selectors),
        ("GET", "/api/v1/namespaces/other/pods", selectors),
    ]
    assert display.warnings == ["ephemeral_results: the selection matched no pods with ephemeral containers"]


def test_all_namespaces(query: Any, apiserver: FakeApiServer) -> None:
    records = query(all_namespaces=True, label_selector="app=web", wait_for="none", logs=False)
    assert apiserver.cluster.calls() == [("GET", "/api/v1/pods", {"labelSelector": ["app=web"]})]
    assert [(r["pod"], r["container"]) for r in records] == [("debugged", "debug"), ("states", "exited"), ("states", "fresh"), ("states", "pull-fail")]


def test_a_missing_pod_beside_a_found_one_is_a_record(query: Any, display: RecordingDisplay) -> None:
    records = query(f"{NS}/debugged", "ns/x", wait_for="none", logs=False)
    assert [(r["namespace"], r["pod"], r["error"]) for r in records] == [("ns", "x", "pod ns/x not found"), (NS, "debugged", None)]
    assert display.warnings == []


@pytest.mark.parametrize(
    ("terms", "options", "msg"),
    [
        (["ns/x", "ns/y"], {}, "nothing could be collected: pod ns/x not found; pod ns/y not found"),
        (["ns/x"], {"label_selector": "app=web"}, "name pods or give a label_selector or field_selector, not both"),
        ([], {"namespace": NS, "all_namespaces": True}, "give namespace or all_namespaces: true, not both"),
        (["x"], {"namespace": ["a", "b"]}, "pod names without a namespace need exactly one namespace (got a, b): write namespace/pod for each pod"),
        (["x"], {}, "pod reference 'x' has no namespace: write namespace/pod or set the namespace option"),
        ([], {}, "name the pods (namespace/pod), or give a namespace (or all_namespaces: true) and optionally a label_selector"),
        ([f"{NS}/states"], {"tail_lines": 0}, "tail_lines must be a positive number (or unset); got 0"),
        ([f"{NS}/states"], {"parallel": 0}, "parallel must be at least 1; got 0"),
    ],
)
def test_errors_are_lookup_errors_named_after_the_lookup(query: Any, terms: list[str], options: dict[str, Any], msg: str) -> None:
    with pytest.raises(AnsibleLookupError) as err:
        query(*terms, **options)
    assert err.value.message == f"ephemeral_results: {msg}"


LIST_REFUSED = 'pods is forbidden: User "jane" cannot list resource "pods" in the namespace "secret"'
LIST_REFUSED_MSG = (
    "ephemeral_results: permission denied listing pods in namespace 'secret': grant 'list' on 'pods' "
    f"(see the collection's RBAC guide, docs/docsite/rst/rbac.rst). API server said: {LIST_REFUSED}"
)


def test_a_refused_list_is_a_lookup_error(query: Any, apiserver: FakeApiServer) -> None:
    apiserver.cluster.refuse[("GET", "/api/v1/namespaces/secret/pods")] = (403, status_body(403, LIST_REFUSED))
    with pytest.raises(AnsibleLookupError) as err:
        query(namespace="secret", label_selector="app=web")
    assert err.value.message.startswith(LIST_REFUSED_MSG)
    assert err.value._original_message == LIST_REFUSED_MSG


def test_a_refused_list_says_only_what_to_do(query: Any, apiserver: FakeApiServer) -> None:
    # AnsibleError.message appends the messages of the whole __cause__ chain: KubedebugError, then the
    # client's ApiException with "HTTP response headers: ..." and "HTTP response body: ...".
    apiserver.cluster.refuse[("GET", "/api/v1/namespaces/secret/pods")] = (403, status_body(403, LIST_REFUSED))
    with pytest.raises(AnsibleLookupError) as err:
        query(namespace="secret", label_selector="app=web")
    assert err.value.message == LIST_REFUSED_MSG


def test_refusals_happen_before_any_request(query: Any, apiserver: FakeApiServer) -> None:
    with pytest.raises(AnsibleLookupError):
        query("ns/x", label_selector="app=web")
    assert apiserver.cluster.requests == []


def test_a_kubernetes_client_that_is_too_old(query: Any, apiserver: FakeApiServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kubernetes, "__version__", "23.6.0")
    with pytest.raises(AnsibleLookupError) as err:
        query(f"{NS}/states")
    assert err.value.message == (
        "ephemeral_results: the kubernetes Python client 23.6.0 is too old: 24.2.0 or newer is required (pip install 'kubernetes>=24.2.0')"
    )
    assert apiserver.cluster.requests == []
