# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for plugins/module_utils/_client.py: API calls, retries and translated errors.

Most tests replace ``EphemeralClient.core`` with ``FakeCore``, which answers like the
real CoreV1Api called with ``_preload_content=False`` (an object whose ``.data`` is the
JSON bytes). API errors are ``ApiException`` objects whose ``.body`` is a JSON Status,
mostly the ones recorded from the 1.36.3 API server (tests/unit/fixtures/status). The
``TestWire`` tests use the installed kubernetes client for real against a local HTTP
server, to check what actually goes over the wire with client 32 and 37.
"""

from __future__ import annotations

import copy
import http.server
import inspect
import json
import subprocess
import sys
import types
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NoReturn
from urllib.parse import parse_qs, urlsplit

import kubernetes
import pytest
from kubernetes import client as k8s_client
from kubernetes.client.rest import ApiException
from urllib3.exceptions import MaxRetryError, ProtocolError, ReadTimeoutError

from ansible_collections.kubedebug.ephemeral.plugins.module_utils import _client
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._client import (
    PSA_LEVEL,
    RBAC_DOC,
    RETRY_STATUSES,
    SMP,
    CoreCalls,
    EphemeralClient,
    _supports_content_type,
    pod_security_hint,
    translate_api_error,
)
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._errors import KubedebugError
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._pods import container_state, ephemeral_status, reached
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._spec import patch_body
from ansible_collections.kubedebug.ephemeral.tests.unit.api_objects import api_error, load_pod, load_status
from ansible_collections.kubedebug.ephemeral.tests.unit.local_http import serving, without_proxies

NS = "unit-fixtures"
CLIENT_MAJOR = int(kubernetes.__version__.split(".")[0])
DEBUG_SPEC = {
    "name": "debug",
    "image": "docker.io/library/busybox:1.36",
    "imagePullPolicy": "IfNotPresent",
    "terminationMessagePolicy": "File",
}
BODY = patch_body([], DEBUG_SPEC)


# --------------------------------------------------------------------------- helpers


def recorded_error(name: str) -> ApiException:
    """The ApiException for a Status recorded from the API server (tests/unit/fixtures/status/<name>.json)."""
    recorded = load_status(name)
    exc = ApiException(status=recorded["status"], reason=recorded["reason"])
    exc.body = json.dumps(recorded["body"])
    return exc


def recorded_message(name: str) -> str:
    return load_status(name)["body"]["message"]


def as_listed(pod: dict[str, Any]) -> dict[str, Any]:
    """``pod`` as a PodList item: without kind and apiVersion."""
    item = copy.deepcopy(pod)
    item.pop("kind", None)
    item.pop("apiVersion", None)
    return item


def pod_list(*pods: dict[str, Any], resource_version: str = "4711") -> dict[str, Any]:
    """A PodList as the API returns it."""
    return {
        "kind": "PodList",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": resource_version},
        "items": [as_listed(p) for p in pods],
    }


class Response:
    """What a CoreV1Api method returns with ``_preload_content=False``: only ``.data`` is used."""

    def __init__(self, payload: Any) -> None:
        self.data = json.dumps(payload).encode()
        self.status = 200


class Raw:
    """An answer whose body is these bytes, whatever they are (a proxy that cut it, or a broken one)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.status = 200


class WatchStream:
    """What a watch (``watch=True``, ``_preload_content=False``) returns: a response streamed chunk by chunk.

    ``items`` are watch events (dicts, sent as one JSON line each), raw byte chunks, or an
    exception raised at that point of the stream (a cut or stalled connection).
    """

    def __init__(self, *items: dict[str, Any] | bytes | BaseException) -> None:
        self.items = items
        self.closed = False
        self.connection = types.SimpleNamespace(sock=types.SimpleNamespace(settimeout=self.read_timeouts.append))

    @property
    def read_timeouts(self) -> list[float]:
        """The read timeouts set on the watch's socket once its headers came."""
        return self.__dict__.setdefault("_read_timeouts", [])

    def stream(self, amt: int | None = None, decode_content: bool = True) -> Iterator[bytes]:
        for item in self.items:
            if isinstance(item, BaseException):
                raise item
            yield item if isinstance(item, bytes) else json.dumps(item).encode() + b"\n"

    def close(self) -> None:
        self.closed = True

    def release_conn(self) -> None:
        assert self.closed, "a watch connection went back to the pool before it was closed"


Outcome = Any  # a JSON payload, an exception to raise, a WatchStream, or a callable(*args, **kwargs) returning one


class FakeCore:
    """CoreV1Api with the keyword-only signatures of clients <= 35 (no ``_content_type``).

    ``outcomes`` maps a method name to the answers of successive calls; the last one
    repeats. Every call is recorded in ``calls`` as ``(method, args, kwargs)``.
    """

    def __init__(self, **outcomes: list[Outcome]) -> None:
        self.outcomes = {name: list(answers) for name, answers in outcomes.items()}
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.timeouts: list[tuple[float, float]] = []

    def _answer(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Response:
        kwargs = dict(kwargs)
        timeout = kwargs.pop("_request_timeout", None)
        # Without a read timeout a dead connection blocks for ever: no request may go without one.
        assert isinstance(timeout, tuple) and len(timeout) == 2 and all(t > 0 for t in timeout), f"{method} called without a (connect, read) timeout"
        self.timeouts.append(timeout)
        if kwargs.get("watch"):
            method += "/watch"
        self.calls.append((method, args, dict(kwargs)))
        assert kwargs.get("_preload_content") is False, f"{method} called without _preload_content=False"
        answers = self.outcomes.get(method)
        assert answers, f"unexpected call {method}{args}"
        outcome = answers.pop(0) if len(answers) > 1 else answers[0]
        if callable(outcome):
            outcome = outcome(*args, **kwargs)
        if isinstance(outcome, BaseException):
            raise outcome
        if isinstance(outcome, (WatchStream, Raw)):
            return outcome
        return Response(outcome)

    def called(self, method: str) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
        return [(args, kwargs) for name, args, kwargs in self.calls if name == method]

    def read_namespaced_pod(self, name, namespace, **kwargs):
        return self._answer("read_namespaced_pod", (name, namespace), kwargs)

    def list_namespaced_pod(self, namespace, **kwargs):
        return self._answer("list_namespaced_pod", (namespace,), kwargs)

    def list_pod_for_all_namespaces(self, **kwargs):
        return self._answer("list_pod_for_all_namespaces", (), kwargs)

    def patch_namespaced_pod(self, name, namespace, body, **kwargs):
        return self._answer("patch_namespaced_pod", (name, namespace, body), kwargs)

    def patch_namespaced_pod_ephemeralcontainers(self, name, namespace, body, **kwargs):
        return self._answer("patch_namespaced_pod_ephemeralcontainers", (name, namespace, body), kwargs)

    def read_namespaced_pod_log(self, name, namespace, **kwargs):
        return self._answer("read_namespaced_pod_log", (name, namespace), kwargs)


def _explicit_patch(method: str) -> Callable[..., Response]:
    """A PATCH method with the explicit signature of clients >= 36, for ``FakeCoreWithContentType``."""

    def patch(
        self: FakeCore,
        name,
        namespace,
        body,
        pretty=None,
        dry_run=None,
        field_manager=None,
        field_validation=None,
        force=None,
        _preload_content=True,
        _request_timeout=None,
        _content_type=None,
        _headers=None,
    ):
        kwargs = {
            "dry_run": dry_run,
            "field_validation": field_validation,
            "_preload_content": _preload_content,
            "_request_timeout": _request_timeout,
            "_content_type": _content_type,
        }
        # Record what FakeCore would: only the arguments the caller passed.
        return self._answer(method, (name, namespace, body), {k: v for k, v in kwargs.items() if v is not None})

    return patch


class FakeCoreWithContentType(FakeCore):
    """CoreV1Api with the explicit signatures of clients >= 36 (which take ``_content_type``)."""

    patch_namespaced_pod = _explicit_patch("patch_namespaced_pod")
    patch_namespaced_pod_ephemeralcontainers = _explicit_patch("patch_namespaced_pod_ephemeralcontainers")


def make_client(core: FakeCore, *, retries: int = 4, backoff: float = 0.5, jitter: float = 1.0) -> tuple[EphemeralClient, list[float]]:
    """A client over ``core`` whose sleeps are recorded, not slept; ``jitter`` 1.0 makes each wait the top of its range."""
    sleeps: list[float] = []
    api = EphemeralClient(object(), retries=retries, backoff=backoff, sleep=sleeps.append, jitter=lambda: jitter)
    assert isinstance(api.core, CoreCalls)
    api.core = core
    return api, sleeps


def with_debug_container(pod: dict[str, Any]) -> dict[str, Any]:
    """``pod`` as the server stores it once ``debug`` was added."""
    stored = copy.deepcopy(pod)
    stored["spec"].setdefault("ephemeralContainers", []).append(dict(DEBUG_SPEC, terminationMessagePath="/dev/termination-log", resources={}))
    return stored


# --------------------------------------------------------------------------- translate_api_error


def translate(
    exc: ApiException,
    *,
    pod: str = "web",
    container: str = "debug",
    verb: str = "patch",
    resource: str = "pods/ephemeralcontainers",
) -> KubedebugError:
    return translate_api_error(exc, namespace=NS, pod=pod, container=container, verb=verb, resource=resource)


def test_translate_403_rbac_names_verb_resource_and_namespace() -> None:
    err = translate(recorded_error("rbac-patch-ephemeral"))
    assert err.status == 403
    assert err.msg == (
        f"pod {NS}/web: permission denied: grant 'patch' on 'pods/ephemeralcontainers' in namespace '{NS}' "
        f"(the built-in edit and admin roles do not include it); see {RBAC_DOC}. "
        'API server said: pods "web" is forbidden: User "jane" cannot patch resource "pods/ephemeralcontainers" in API group "" '
        'in the namespace "unit-fixtures"'
    )


def test_translate_403_rbac_for_get() -> None:
    err = translate(api_error(403, 'pods "web" is forbidden: User "jane" cannot get resource "pods"'), verb="get", resource="pods")
    assert err.msg.startswith(f"pod {NS}/web: permission denied: grant 'get' on 'pods' in namespace '{NS}'; see {RBAC_DOC}. ")
    assert err.msg.endswith('API server said: pods "web" is forbidden: User "jane" cannot get resource "pods"')


def test_translate_403_pod_security_restricted() -> None:
    err = translate(recorded_error("podsecurity-restricted"), container="root")
    message = recorded_message("podsecurity-restricted")
    assert message.startswith('pods "web" is forbidden: violates PodSecurity "restricted:latest": privileged (container "root" must not set')
    assert err.status == 403
    assert err.msg == (
        f"pod {NS}/web: PodSecurity admission refused ephemeral container 'root': {message}. "
        'the namespace enforces PodSecurity "restricted": use profile: restricted (non-root, no added capabilities, '
        "seccomp RuntimeDefault) and an image that runs as a non-root user"
    )


def test_translate_403_pod_security_baseline() -> None:
    err = translate(recorded_error("podsecurity-baseline"))
    assert err.msg == (
        f"pod {NS}/web: PodSecurity admission refused ephemeral container 'debug': "
        'pods "web" is forbidden: violates PodSecurity "baseline:latest": non-default capabilities (container "debug" must not '
        'include "SYS_PTRACE" in securityContext.capabilities.add). '
        'the namespace enforces PodSecurity "baseline": use profile: baseline (no added capabilities, not privileged) or profile: restricted'
    )


def test_translate_404_without_details_means_no_subresource() -> None:
    err = translate(recorded_error("no-subresource"))
    assert err.status == 404
    assert err.msg == (
        f"pod {NS}/web: the API server has no pods/ephemeralcontainers subresource: the cluster is older than Kubernetes 1.23 "
        "or has the EphemeralContainers feature turned off. API server said: the server could not find the requested resource"
    )


def test_translate_404_with_name_means_pod_gone() -> None:
    err = translate(recorded_error("notfound-pod"), pod="gone")
    assert err.status == 404
    assert err.msg == f'pod {NS}/gone: not found (deleted meanwhile?). API server said: pods "gone" not found'


def test_translate_404_without_details_for_another_resource() -> None:
    err = translate(api_error(404, "the server could not find the requested resource"), verb="get", resource="pods")
    assert err.msg == f"pod {NS}/web: not found (deleted meanwhile?). API server said: the server could not find the requested resource"


@pytest.mark.parametrize("fixture", ["invalid-target", "invalid-ports"])
def test_translate_422_passes_the_server_message(fixture: str) -> None:
    err = translate(recorded_error(fixture))
    assert err.status == 422
    assert err.msg == f"pod {NS}/web: the API server refused ephemeral container 'debug': {recorded_message(fixture)}"


def test_translate_422_recorded_target_message() -> None:
    assert translate(recorded_error("invalid-target")).msg == (
        f"pod {NS}/web: the API server refused ephemeral container 'debug': "
        'Pod "web" is invalid: spec.ephemeralContainers[0].targetContainerName: Not found: "nope"'
    )


def test_translate_other_status() -> None:
    err = translate(api_error(500, "etcdserver: request timed out"))
    assert err.status == 500
    assert err.msg == f"pod {NS}/web: patch pods/ephemeralcontainers failed with HTTP 500: etcdserver: request timed out"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("<html><body>502 Bad Gateway</body></html>", "Bad Gateway"),  # a proxy's HTML page
        (None, "Bad Gateway"),
        (json.dumps({"kind": "Status", "code": 502}), "Bad Gateway"),  # no message
    ],
)
def test_translate_without_a_status_message_uses_the_reason(body: str | None, expected: str) -> None:
    exc = ApiException(status=502, reason="Bad Gateway")
    exc.body = body
    assert translate(exc).msg == f"pod {NS}/web: patch pods/ephemeralcontainers failed with HTTP 502: {expected}"


# --------------------------------------------------------------------------- _retrying


def run_retrying(
    outcomes: list[Outcome], *, retries: int = 4, backoff: float = 0.5, before_retry: Callable[[], Any] | None = None
) -> tuple[Any, list[float], int]:
    """Drive _retrying with ``outcomes`` (values or exceptions); return (result, sleeps, calls)."""
    api, sleeps = make_client(FakeCore(), retries=retries, backoff=backoff)
    pending = list(outcomes)
    calls = 0

    def call() -> Any:
        nonlocal calls
        calls += 1
        outcome = pending.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def translate_exc(exc: ApiException) -> KubedebugError:
        return KubedebugError(f"translated {exc.status}", status=exc.status)

    try:
        result = api._retrying(call, translate_exc, before_retry=before_retry)
    except KubedebugError as exc:
        result = exc
    return result, sleeps, calls


@pytest.mark.parametrize("status", [429, 500, 503])
def test_retrying_retries_transient_statuses(status: int) -> None:
    result, sleeps, calls = run_retrying([api_error(status), api_error(status), "ok"])
    assert (result, sleeps, calls) == ("ok", [0.5, 1.0], 3)


def test_retry_statuses() -> None:
    assert frozenset({409, 429, 500, 502, 503, 504}) == RETRY_STATUSES


def test_retrying_gives_up_after_retries() -> None:
    result, sleeps, calls = run_retrying([api_error(503)] * 6)
    assert isinstance(result, KubedebugError)
    assert (result.msg, result.status) == (
        "translated 503 (gave up after 5 attempts and 7.5s of waiting). The API server is overloaded or restarting: try again later, or raise request_retries.",
        503,
    )
    assert isinstance(result.__cause__, ApiException)
    assert (sleeps, calls) == ([0.5, 1.0, 2.0, 4.0], 5)


def test_retrying_with_no_retries() -> None:
    result, sleeps, calls = run_retrying([api_error(503), "ok"], retries=0)
    assert isinstance(result, KubedebugError)
    assert (sleeps, calls) == ([], 1)


def test_retrying_caps_the_delay_at_ten_seconds() -> None:
    result, sleeps, calls = run_retrying([api_error(500)] * 5, retries=4, backoff=4)
    assert isinstance(result, KubedebugError)
    assert sleeps == [4.0, 8.0, 10.0, 10.0]


# Never sooner than Retry-After, plus the jittered backoff (0.5 at jitter 1.0), at most 10 s.
@pytest.mark.parametrize(
    ("value", "expected"),
    [("3", 3.5), ("0.25", 0.75), ("120", 10.0), ("86400", 10.0), ("-5", 0.5), ("nan", 0.5), ("soon", 0.5), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.5)],
)
def test_retrying_honours_retry_after(value: str, expected: float) -> None:
    result, sleeps, _unused = run_retrying([api_error(429, "too many requests", headers={"Retry-After": value}), "ok"])
    assert (result, sleeps) == ("ok", [expected])


@pytest.mark.parametrize(("jitter", "expected"), [(0.0, [0.0, 0.0, 0.0]), (0.5, [0.25, 0.5, 1.0]), (0.999, [0.4995, 0.999, 1.998])])
def test_retrying_backs_off_with_full_jitter(jitter: float, expected: list[float]) -> None:
    api, sleeps = make_client(FakeCore(), jitter=jitter)
    failures = [api_error(503)] * 3

    def call() -> str:
        if failures:
            raise failures.pop()
        return "ok"

    assert api._retrying(call, lambda exc: KubedebugError("no")) == "ok"
    assert sleeps == pytest.approx(expected)


def test_retrying_with_retry_after_is_jittered_above_it() -> None:
    api, sleeps = make_client(FakeCore(), jitter=0.0)
    outcomes: list[Any] = [api_error(429, "slow down", headers={"Retry-After": "2"}), "ok"]

    def call() -> Any:
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    assert api._retrying(call, lambda exc: KubedebugError("no")) == "ok"
    assert sleeps == [2.0]


def test_retry_after_as_an_http_date() -> None:
    exc = api_error(503, "restarting", headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert _client.retry_after(exc, now=lambda: 1445412475.0) == 5.0  # 07:27:55


def test_retrying_stops_within_the_total_budget() -> None:
    api, sleeps = make_client(FakeCore(), retries=50)
    api.retry_budget = 25.0
    with pytest.raises(KubedebugError, match=r"gave up after 6 attempts and 15\.5s of waiting"):
        api._retrying(lambda: _raise(api_error(500)), lambda exc: KubedebugError(f"HTTP {exc.status}"))
    assert sleeps == [0.5, 1.0, 2.0, 4.0, 8.0]  # the next wait, 10 s, would pass the 25 s budget
    assert api.stats.as_dict() == {"requests": 0, "retries": 5, "throttled": 0, "timeouts": 0, "watch_restarts": 0, "backoff_seconds": 15.5}


def test_retrying_stops_before_a_deadline() -> None:
    api, sleeps = make_client(FakeCore(), retries=50)
    with pytest.raises(KubedebugError, match=r"gave up after 3 attempts"):
        api._retrying(lambda: _raise(api_error(503)), lambda exc: KubedebugError("busy"), deadline=5.0, clock=lambda: 2.0 + sum(sleeps))
    assert sleeps == [0.5, 1.0]  # a third wait (2 s) would end past the deadline


def test_retrying_throttled_out_says_so_and_what_to_do() -> None:
    api, sleeps = make_client(FakeCore(), retries=2)
    throttled = api_error(429, "Too many requests, please try again later.", headers={"Retry-After": "1", _client.APF_PRIORITY_LEVEL: "a1b2"})
    with pytest.raises(KubedebugError) as excinfo:
        api._retrying(lambda: _raise(throttled), translate)
    assert excinfo.value.status == 429
    assert excinfo.value.msg == (
        f"pod {NS}/web: patch pods/ephemeralcontainers failed with HTTP 429: Too many requests, please try again later. "
        "(gave up after 3 attempts and 3.5s of waiting). The API server throttled 3 of them by API Priority and Fairness "
        "(HTTP 429 Too Many Requests): run fewer requests at once (a lower parallel), later, or with a higher request_retries; "
        "a cluster administrator can check which FlowSchema and PriorityLevelConfiguration match this user."
    )
    assert sleeps == [1.5, 2.0]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422])
def test_retrying_does_not_retry_refusals(status: int) -> None:
    result, sleeps, calls = run_retrying([api_error(status), "ok"])
    assert isinstance(result, KubedebugError) and result.status == status
    assert (sleeps, calls) == ([], 1)


CONNECTION_ERRORS = [
    ProtocolError("Connection aborted.", ConnectionResetError(104, "Connection reset by peer")),
    MaxRetryError(None, "/api/v1/namespaces/unit-fixtures/pods", reason=ConnectionRefusedError(111, "Connection refused")),
    ReadTimeoutError(None, "/api/v1/namespaces/unit-fixtures/pods", "Read timed out. (read timeout=30)"),
    ConnectionRefusedError(111, "Connection refused"),
]


@pytest.mark.parametrize("error", CONNECTION_ERRORS, ids=lambda e: type(e).__name__)
def test_retrying_retries_connection_errors(error: Exception) -> None:
    result, sleeps, calls = run_retrying([error, error, "ok"])
    assert (result, sleeps, calls) == ("ok", [0.5, 1.0], 3)


@pytest.mark.parametrize("error", CONNECTION_ERRORS, ids=lambda e: type(e).__name__)
def test_retrying_gives_up_on_connection_errors(error: Exception) -> None:
    result, sleeps, calls = run_retrying([error] * 3, retries=2)
    assert isinstance(result, KubedebugError)
    why = "no answer within request_timeout (30s)" if isinstance(error, ReadTimeoutError) else str(error)
    assert result.msg == (
        f"the API server could not be reached after 3 attempts: {why} (gave up after 3 attempts and 1.5s of waiting). "
        "Check the host or kubeconfig and the network; raise request_timeout for a slow API server, or request_retries for a flaky connection."
    )
    assert result.status is None
    assert result.__cause__ is error
    assert (sleeps, calls) == ([0.5, 1.0], 3)


def test_retrying_before_retry_can_end_the_loop() -> None:
    checks: list[int] = []

    def before_retry() -> Any:
        checks.append(1)
        return "found" if len(checks) == 2 else None

    result, sleeps, calls = run_retrying([api_error(503)] * 5, before_retry=before_retry)
    assert (result, sleeps, calls, len(checks)) == ("found", [0.5, 1.0], 2, 2)


def test_retrying_does_not_call_before_retry_on_success() -> None:
    result, sleeps, calls = run_retrying(["ok"], before_retry=lambda: pytest.fail("before_retry called without a retry"))
    assert (result, sleeps, calls) == ("ok", [], 1)


# --------------------------------------------------------------------------- read_pod


def test_read_pod(plain_pod: dict[str, Any]) -> None:
    core = FakeCore(read_namespaced_pod=[plain_pod])
    api, _unused = make_client(core)
    assert api.read_pod(NS, "plain") == plain_pod
    assert core.calls == [("read_namespaced_pod", ("plain", NS), {"_preload_content": False})]


def test_read_pod_missing_is_none() -> None:
    api, sleeps = make_client(FakeCore(read_namespaced_pod=[recorded_error("notfound-pod")]))
    assert api.read_pod(NS, "gone") is None
    assert sleeps == []


def test_read_pod_forbidden() -> None:
    api, _unused = make_client(FakeCore(read_namespaced_pod=[api_error(403, "no")]))
    with pytest.raises(KubedebugError) as excinfo:
        api.read_pod(NS, "web")
    assert excinfo.value.msg.startswith(f"pod {NS}/web: permission denied: grant 'get' on 'pods' in namespace '{NS}'; see {RBAC_DOC}. ")


# --------------------------------------------------------------------------- add_ephemeral


def test_add_ephemeral_old_client_signature(plain_pod: dict[str, Any]) -> None:
    answer = with_debug_container(plain_pod)
    core = FakeCore(patch_namespaced_pod_ephemeralcontainers=[answer])
    api, sleeps = make_client(core)
    assert api.add_ephemeral(NS, "plain", BODY, name="debug", dry_run=False) == answer
    assert core.calls == [
        (
            "patch_namespaced_pod_ephemeralcontainers",
            ("plain", NS, BODY),
            {"_preload_content": False, "field_validation": "Strict"},
        ),
    ]
    assert core.calls[0][1][2] is not BODY  # a copy is sent
    assert sleeps == []


def test_add_ephemeral_new_client_signature_sends_content_type(plain_pod: dict[str, Any]) -> None:
    core = FakeCoreWithContentType(patch_namespaced_pod_ephemeralcontainers=[with_debug_container(plain_pod)])
    api, _unused = make_client(core)
    api.add_ephemeral(NS, "plain", BODY, name="debug", dry_run=False)
    assert core.calls == [
        (
            "patch_namespaced_pod_ephemeralcontainers",
            ("plain", NS, BODY),
            {"_preload_content": False, "field_validation": "Strict", "_content_type": SMP},
        ),
    ]
    assert SMP == "application/strategic-merge-patch+json"


@pytest.mark.parametrize("fake", [FakeCore, FakeCoreWithContentType])
def test_add_ephemeral_check_mode_is_a_dry_run(fake: type[FakeCore], plain_pod: dict[str, Any]) -> None:
    core = fake(patch_namespaced_pod_ephemeralcontainers=[with_debug_container(plain_pod)])
    api, _unused = make_client(core)
    api.add_ephemeral(NS, "plain", BODY, name="debug", dry_run=True)
    ((_unused, kwargs),) = core.called("patch_namespaced_pod_ephemeralcontainers")
    assert kwargs["dry_run"] == "All"
    assert kwargs["field_validation"] == "Strict"
    assert ("_content_type" in kwargs) is (fake is FakeCoreWithContentType)


def test_supports_content_type_with_the_installed_client() -> None:
    method = k8s_client.CoreV1Api(object()).patch_namespaced_pod_ephemeralcontainers
    assert _supports_content_type(method) is (CLIENT_MAJOR >= 36)
    assert _supports_content_type(k8s_client.CoreV1Api(object()).patch_namespaced_pod) is (CLIENT_MAJOR >= 36)


def test_supports_content_type_without_a_signature() -> None:
    def method() -> None:
        pass

    method.__signature__ = "not a signature"  # type: ignore[attr-defined]
    with pytest.raises((TypeError, ValueError)):
        inspect.signature(method)
    assert _supports_content_type(method) is False


def test_a_retry_never_adds_the_container_twice(plain_pod: dict[str, Any]) -> None:
    server = {"pod": copy.deepcopy(plain_pod)}

    def stored_then_503(name: str, namespace: str, body: dict[str, Any], **kwargs: Any) -> ApiException:
        # The server stored the container, but the answer was lost behind a 503.
        server["pod"]["spec"].setdefault("ephemeralContainers", []).extend(body["spec"]["ephemeralContainers"])
        return api_error(503, "the server is currently unable to handle the request")

    core = FakeCore(
        patch_namespaced_pod_ephemeralcontainers=[
            stored_then_503,
            lambda *a, **k: pytest.fail("patched a second time"),
        ],
        read_namespaced_pod=[lambda name, namespace, **kwargs: copy.deepcopy(server["pod"])],
    )
    api, sleeps = make_client(core)
    result = api.add_ephemeral(NS, "plain", BODY, name="debug", dry_run=False)
    assert [c["name"] for c in result["spec"]["ephemeralContainers"]] == ["debug"]
    assert result == server["pod"]
    assert len(core.called("patch_namespaced_pod_ephemeralcontainers")) == 1
    assert core.called("read_namespaced_pod") == [(("plain", NS), {"_preload_content": False})]
    assert sleeps == [0.5]


def test_the_last_attempt_applied_with_its_answer_lost_is_found(plain_pod: dict[str, Any]) -> None:
    # Throttled, then the last attempt the retries allow reaches the server and only its answer is lost.
    server = {"pod": copy.deepcopy(plain_pod)}

    def stored_then_reset(name: str, namespace: str, body: dict[str, Any], **kwargs: Any) -> Exception:
        server["pod"]["spec"].setdefault("ephemeralContainers", []).extend(body["spec"]["ephemeralContainers"])
        return CONNECTION_ERRORS[0]

    core = FakeCore(
        patch_namespaced_pod_ephemeralcontainers=[api_error(429, "slow down"), api_error(429, "slow down"), stored_then_reset],
        read_namespaced_pod=[lambda name, namespace, **kwargs: copy.deepcopy(server["pod"])],
    )
    api, sleeps = make_client(core, retries=2)
    result = api.add_ephemeral(NS, "plain", BODY, name="debug", dry_run=False)
    assert [c["name"] for c in result["spec"]["ephemeralContainers"]] == ["debug"]
    assert len(core.called("patch_namespaced_pod_ephemeralcontainers")) == 3
    assert api.stats.as_dict()["throttled"] == 2


def test_out_of_retries_on_a_dropped_connection_says_how_many_were_throttled(plain_pod: dict[str, Any]) -> None:
    core = FakeCore(
        patch_namespaced_pod_ephemeralcontainers=[api_error(429, "slow down"), CONNECTION_ERRORS[0]],
        read_namespaced_pod=[plain_pod],  # the container is not there: the PATCH never got through
    )
    api, _unused = make_client(core, retries=1)
    with pytest.raises(KubedebugError) as excinfo:
        api.add_ephemeral(NS, "plain", BODY, name="debug", dry_run=False)
    assert excinfo.value.msg.startswith("the API server could not be reached after 2 attempts: ('Connection aborted.'")
    assert "(gave up after 2 attempts and 0.5s of waiting; 1 of them were throttled (HTTP 429))." in excinfo.value.msg


def test_a_retry_adds_the_container_when_the_first_attempt_did_not(plain_pod: dict[str, Any]) -> None:
    answer = with_debug_container(plain_pod)
    core = FakeCore(
        patch_namespaced_pod_ephemeralcontainers=[api_error(503), answer],
        read_namespaced_pod=[plain_pod],
    )
    api, sleeps = make_client(core)
    assert api.add_ephemeral(NS, "plain", BODY, name="debug", dry_run=False) == answer
    assert [name for name, _unused, _unused in core.calls] == [
        "patch_namespaced_pod_ephemeralcontainers",
        "read_namespaced_pod",
        "patch_namespaced_pod_ephemeralcontainers",
    ]
    assert sleeps == [0.5]


def test_a_retry_after_a_connection_error_also_rereads(debugged_pod: dict[str, Any]) -> None:
    # Another container (kubectl's "debug") is not mistaken for ours.
    mine = with_debug_container(debugged_pod)
    mine["spec"]["ephemeralContainers"][-1]["name"] = "mine"
    core = FakeCore(
        patch_namespaced_pod_ephemeralcontainers=[
            CONNECTION_ERRORS[0],
            CONNECTION_ERRORS[0],
            lambda *a, **k: pytest.fail("patched again"),
        ],
        read_namespaced_pod=[debugged_pod, mine],
    )
    api, sleeps = make_client(core)
    assert api.add_ephemeral(NS, "debugged", patch_body(["debug"], dict(DEBUG_SPEC, name="mine")), name="mine", dry_run=False) == mine
    assert [name for name, _unused, _unused in core.calls] == [
        "patch_namespaced_pod_ephemeralcontainers",
        "read_namespaced_pod",
        "patch_namespaced_pod_ephemeralcontainers",
        "read_namespaced_pod",
    ]
    assert sleeps == [0.5, 1.0]


def test_dry_run_retries_without_rereading(plain_pod: dict[str, Any]) -> None:
    core = FakeCore(patch_namespaced_pod_ephemeralcontainers=[api_error(429), with_debug_container(plain_pod)])
    api, sleeps = make_client(core)
    api.add_ephemeral(NS, "plain", BODY, name="debug", dry_run=True)
    assert [name for name, _unused, _unused in core.calls] == ["patch_namespaced_pod_ephemeralcontainers"] * 2
    assert all(kwargs["dry_run"] == "All" for _unused, kwargs in core.called("patch_namespaced_pod_ephemeralcontainers"))
    assert sleeps == [0.5]


@pytest.mark.parametrize("garbled", [b'{"kind": "Pod", "metad', b"<html>502 Bad Gateway</html>", b"[]"])
def test_a_garbled_answer_is_retried_and_never_a_traceback(plain_pod: dict[str, Any], garbled: bytes) -> None:
    answer = with_debug_container(plain_pod)
    # The PATCH's answer arrives cut short, and so does the re-read of the pod: the PATCH is sent again.
    core = FakeCore(patch_namespaced_pod_ephemeralcontainers=[Raw(garbled), answer], read_namespaced_pod=[Raw(garbled)])
    api, sleeps = make_client(core)
    assert api.add_ephemeral(NS, "plain", BODY, name="debug", dry_run=False) == answer
    assert sleeps == [0.5]
    core = FakeCore(list_namespaced_pod=[Raw(garbled)])
    api, sleeps = make_client(core, retries=1)
    why = "the API server answered a JSON list where an object was expected" if garbled == b"[]" else "the API server's answer is not JSON"
    with pytest.raises(KubedebugError, match=rf"^the API server's answer could not be read after 2 attempts: {why}"):
        api.list_pods([NS])


def test_pod_deleted_during_retry(plain_pod: dict[str, Any]) -> None:
    core = FakeCore(
        patch_namespaced_pod_ephemeralcontainers=[api_error(503), recorded_error("notfound-pod")],
        read_namespaced_pod=[recorded_error("notfound-pod")],
    )
    api, sleeps = make_client(core)
    with pytest.raises(KubedebugError) as excinfo:
        api.add_ephemeral(NS, "gone", BODY, name="debug", dry_run=False)
    assert excinfo.value.msg == f'pod {NS}/gone: not found (deleted meanwhile?). API server said: pods "gone" not found'
    assert sleeps == [0.5]


@pytest.mark.parametrize(
    ("fixture", "start"),
    [
        (
            "rbac-patch-ephemeral",
            f"pod {NS}/web: permission denied: grant 'patch' on 'pods/ephemeralcontainers' in namespace '{NS}'",
        ),
        ("podsecurity-baseline", f"pod {NS}/web: PodSecurity admission refused ephemeral container 'debug': "),
        ("invalid-target", f"pod {NS}/web: the API server refused ephemeral container 'debug': Pod \"web\" is invalid"),
    ],
)
def test_add_ephemeral_refusals_are_not_retried(fixture: str, start: str) -> None:
    core = FakeCore(patch_namespaced_pod_ephemeralcontainers=[recorded_error(fixture)])
    api, sleeps = make_client(core)
    with pytest.raises(KubedebugError) as excinfo:
        api.add_ephemeral(NS, "web", BODY, name="debug", dry_run=False)
    assert excinfo.value.msg.startswith(start)
    assert excinfo.value.status == load_status(fixture)["status"]
    assert len(core.calls) == 1
    assert sleeps == []


def test_add_ephemeral_gives_up_after_retries(plain_pod: dict[str, Any]) -> None:
    core = FakeCore(patch_namespaced_pod_ephemeralcontainers=[api_error(503, "unavailable")], read_namespaced_pod=[plain_pod])
    api, sleeps = make_client(core, retries=2)
    with pytest.raises(KubedebugError) as excinfo:
        api.add_ephemeral(NS, "plain", BODY, name="debug", dry_run=False)
    assert excinfo.value.msg == (
        f"pod {NS}/plain: patch pods/ephemeralcontainers failed with HTTP 503: unavailable (gave up after 3 attempts and 1.5s of waiting). "
        "The API server is overloaded or restarting: try again later, or raise request_retries."
    )
    assert len(core.called("patch_namespaced_pod_ephemeralcontainers")) == 3
    assert len(core.called("read_namespaced_pod")) == 2
    assert sleeps == [0.5, 1.0]


def test_add_ephemeral_connection_errors_on_reread_become_kubedebug_error() -> None:
    error = CONNECTION_ERRORS[0]
    core = FakeCore(patch_namespaced_pod_ephemeralcontainers=[error], read_namespaced_pod=[error])
    api, _unused = make_client(core, retries=2)
    with pytest.raises(KubedebugError, match="could not be reached"):
        api.add_ephemeral(NS, "plain", BODY, name="debug", dry_run=False)


def test_add_ephemeral_transient_error_on_reread_is_retried(plain_pod: dict[str, Any]) -> None:
    answer = with_debug_container(plain_pod)
    core = FakeCore(
        patch_namespaced_pod_ephemeralcontainers=[api_error(503), answer],
        read_namespaced_pod=[api_error(503), plain_pod],
    )
    api, _unused = make_client(core)
    assert api.add_ephemeral(NS, "plain", BODY, name="debug", dry_run=False) == answer


# --------------------------------------------------------------------------- list_pods


def test_list_pods_one_call_per_namespace(plain_pod: dict[str, Any], debugged_pod: dict[str, Any], states_pod: dict[str, Any]) -> None:
    core = FakeCore(list_namespaced_pod=[pod_list(plain_pod, debugged_pod), pod_list(states_pod)])
    api, _unused = make_client(core)
    pods = api.list_pods(["a", "b"], label_selector="app in (plain,debugged)", field_selector="status.phase=Running")
    assert [p["metadata"]["name"] for p in pods] == ["plain", "debugged", "states"]
    assert all((p["kind"], p["apiVersion"]) == ("Pod", "v1") for p in pods)  # LIST items lack them
    assert pods[0] == plain_pod
    selectors = {
        "_preload_content": False,
        "label_selector": "app in (plain,debugged)",
        "field_selector": "status.phase=Running",
    }
    assert core.calls == [("list_namespaced_pod", ("a",), selectors), ("list_namespaced_pod", ("b",), selectors)]


def test_list_pods_cluster_wide(plain_pod: dict[str, Any]) -> None:
    core = FakeCore(list_pod_for_all_namespaces=[pod_list(plain_pod)])
    api, _unused = make_client(core)
    assert api.list_pods(None, label_selector="app=plain") == [plain_pod]
    assert core.calls == [("list_pod_for_all_namespaces", (), {"_preload_content": False, "label_selector": "app=plain"})]


@pytest.mark.parametrize(("label", "field"), [(None, None), ("", "")])
def test_list_pods_without_selectors_passes_none(label: str | None, field: str | None) -> None:
    core = FakeCore(list_namespaced_pod=[pod_list()])
    api, _unused = make_client(core)
    assert api.list_pods([NS], label_selector=label, field_selector=field) == []
    assert core.calls == [("list_namespaced_pod", (NS,), {"_preload_content": False})]


def test_list_pods_no_namespaces_no_calls() -> None:
    core = FakeCore()
    api, _unused = make_client(core)
    assert api.list_pods([]) == []
    assert core.calls == []


def test_list_pods_empty_items() -> None:
    api, _unused = make_client(FakeCore(list_namespaced_pod=[{"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": None}]))
    assert api.list_pods([NS]) == []


def test_list_pods_forbidden_names_the_namespace(plain_pod: dict[str, Any]) -> None:
    core = FakeCore(list_namespaced_pod=[pod_list(plain_pod), recorded_error("rbac-list")])
    api, sleeps = make_client(core)
    with pytest.raises(KubedebugError) as excinfo:
        api.list_pods(["ok", NS])
    assert excinfo.value.status == 403
    assert excinfo.value.msg == (
        f"permission denied listing pods in namespace '{NS}': grant 'list' on 'pods' (see {RBAC_DOC}). API server said: "
        f'pods is forbidden: User "jane" cannot list resource "pods" in API group "" in the namespace "{NS}"'
    )
    assert [args for _unused, args, _unused in core.calls] == [("ok",), (NS,)]
    assert sleeps == []


def test_list_pods_forbidden_cluster_wide() -> None:
    api, _unused = make_client(FakeCore(list_pod_for_all_namespaces=[recorded_error("rbac-list-cluster")]))
    with pytest.raises(KubedebugError) as excinfo:
        api.list_pods(None)
    assert excinfo.value.msg == (
        f"permission denied listing pods cluster-wide (all_namespaces): grant 'list' on 'pods' (see {RBAC_DOC}). "
        'API server said: pods is forbidden: User "jane" cannot list resource "pods" in API group "" at the cluster scope'
    )


def test_list_pods_retries_then_succeeds(plain_pod: dict[str, Any]) -> None:
    core = FakeCore(list_namespaced_pod=[api_error(503), CONNECTION_ERRORS[1], pod_list(plain_pod)])
    api, sleeps = make_client(core)
    assert api.list_pods([NS]) == [plain_pod]
    assert len(core.calls) == 3
    assert sleeps == [0.5, 1.0]


@pytest.mark.parametrize(
    ("namespaces", "method", "msg"),
    [
        ([NS], "list_namespaced_pod", f"listing pods in namespace '{NS}' failed with HTTP 500: etcd down"),
        (None, "list_pod_for_all_namespaces", "listing pods cluster-wide failed with HTTP 500: etcd down"),
    ],
)
def test_list_pods_gives_up(namespaces: list[str] | None, method: str, msg: str) -> None:
    core = FakeCore(**{method: [api_error(500, "etcd down")]})
    api, sleeps = make_client(core, retries=1)
    with pytest.raises(KubedebugError) as excinfo:
        api.list_pods(namespaces)
    assert excinfo.value.status == 500
    overloaded = "The API server is overloaded or restarting: try again later, or raise request_retries."
    assert excinfo.value.msg == f"{msg} (gave up after 2 attempts and 0.5s of waiting). {overloaded}"
    assert sleeps == [0.5]


# --------------------------------------------------------------------------- annotate and whoami


@pytest.mark.parametrize(("fake", "dry_run"), [(FakeCore, False), (FakeCore, True), (FakeCoreWithContentType, False)])
def test_annotate(fake: type[FakeCore], dry_run: bool, plain_pod: dict[str, Any]) -> None:
    core = fake(patch_namespaced_pod=[api_error(503), plain_pod])
    api, sleeps = make_client(core)
    annotations = {"debug.kubedebug.io/debug": '{"by": "jane"}'}
    assert api.annotate(NS, "plain", annotations, dry_run=dry_run) is None
    expected = {"_preload_content": False}
    if dry_run:
        expected["dry_run"] = "All"
    if fake is FakeCoreWithContentType:
        expected["_content_type"] = SMP
    call = ("patch_namespaced_pod", ("plain", NS, {"metadata": {"annotations": annotations}}), expected)
    assert core.calls == [call, call]
    assert sleeps == [0.5]


def test_annotate_forbidden() -> None:
    api, _unused = make_client(FakeCore(patch_namespaced_pod=[api_error(403, "no")]))
    with pytest.raises(KubedebugError) as excinfo:
        api.annotate(NS, "web", {"a": "b"}, dry_run=False)
    assert excinfo.value.msg.startswith(f"pod {NS}/web: permission denied: grant 'patch' on 'pods' in namespace '{NS}'; see {RBAC_DOC}. ")


def _raise(exc: BaseException) -> NoReturn:
    raise exc


def review_answer(answer: Outcome) -> Callable[..., Any]:
    """A ``create_self_subject_review`` outcome for FakeCore that checks the request it gets."""

    def review(body: Any, **kwargs: Any) -> Any:
        assert body == {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        assert kwargs == {"_preload_content": False}
        return answer

    return review


class FakeReviewCore(FakeCore):
    """FakeCore that also answers SelfSubjectReviews (what ``whoami`` asks)."""

    def create_self_subject_review(self, body, **kwargs):
        return self._answer("create_self_subject_review", (body,), kwargs)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"status": {"userInfo": {"username": "jane", "groups": ["system:authenticated"]}}}, "jane"),
        ({"status": {}}, None),
        (api_error(403, "forbidden"), None),
        (api_error(404, "the server could not find the requested resource"), None),
        (CONNECTION_ERRORS[1], None),
    ],
)
def test_whoami(answer: Outcome, expected: str | None) -> None:
    core = FakeReviewCore(create_self_subject_review=[review_answer(answer)])
    api, _unused = make_client(core)
    assert api.whoami() == expected
    # A connection failure is retried like any other request's (retries=4); a refusal is not.
    attempts = 5 if answer is CONNECTION_ERRORS[1] else 1
    assert len(core.called("create_self_subject_review")) == attempts


def test_whoami_without_the_call() -> None:
    # A core without create_self_subject_review (a stand-in that predates it) means: cannot tell.
    api, _unused = make_client(FakeCore())
    assert api.whoami() is None


def test_whoami_honours_throttling() -> None:
    throttled = api_error(429, "slow down", headers={"Retry-After": "1"})
    core = FakeReviewCore(create_self_subject_review=[throttled, {"status": {"userInfo": {"username": "jane"}}}])
    api, sleeps = make_client(core, jitter=0.0)
    assert api.whoami() == "jane"
    assert sleeps == [1.0]
    assert api.stats.as_dict()["throttled"] == 1


# --------------------------------------------------------------------------- read_container_log


class LogResponse:
    """What read_namespaced_pod_log returns with ``_preload_content=False``: the raw bytes in ``.data``."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.status = 200


class FakeLogCore(FakeCore):
    """FakeCore whose log reads answer bytes (logs are not JSON)."""

    def read_namespaced_pod_log(self, name, namespace, **kwargs):
        kwargs = dict(kwargs)
        self.timeouts.append(kwargs.pop("_request_timeout"))
        self.calls.append(("read_namespaced_pod_log", (name, namespace), dict(kwargs)))
        assert kwargs.get("_preload_content") is False
        answers = self.outcomes["read_namespaced_pod_log"]
        outcome = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return LogResponse(outcome)


def test_read_container_log_passes_the_bounds() -> None:
    core = FakeLogCore(read_namespaced_pod_log=[b"one\ntwo\n"])
    api, _unused = make_client(core)
    assert api.read_container_log(NS, "debugged", "debug", tail_lines=5, limit_bytes=4096) == b"one\ntwo\n"
    assert core.calls == [
        (
            "read_namespaced_pod_log",
            ("debugged", NS),
            {"_preload_content": False, "container": "debug", "tail_lines": 5, "limit_bytes": 4096},
        )
    ]


def test_read_container_log_previous_and_unbounded() -> None:
    core = FakeLogCore(read_namespaced_pod_log=[b"before the restart\n"])
    api, _unused = make_client(core)
    assert api.read_container_log(NS, "web", "app", previous=True) == b"before the restart\n"
    assert core.calls[0][2] == {"_preload_content": False, "container": "app", "previous": True}


@pytest.mark.parametrize(
    ("previous", "message"),
    [
        (False, 'container "debug" in pod "debugged" is waiting to start: ContainerCreating'),
        (True, 'previous terminated container "app" in pod "web" not found'),
    ],
)
def test_read_container_log_no_instance_is_none(previous: bool, message: str) -> None:
    core = FakeLogCore(read_namespaced_pod_log=[api_error(400, message)])
    api, sleeps = make_client(core)
    assert api.read_container_log(NS, "debugged", "debug", previous=previous) is None
    assert len(core.calls) == 1 and sleeps == []


@pytest.mark.parametrize(
    ("previous", "message"),
    [
        # The message of the *other* instance is a real error for this one.
        (True, 'container "debug" in pod "debugged" is waiting to start: ContainerCreating'),
        (False, 'previous terminated container "app" in pod "web" not found'),
    ],
)
def test_read_container_log_other_400_is_an_error(previous: bool, message: str) -> None:
    api, _unused = make_client(FakeLogCore(read_namespaced_pod_log=[api_error(400, message)]))
    with pytest.raises(KubedebugError) as err:
        api.read_container_log(NS, "debugged", "debug", previous=previous)
    assert err.value.msg == f"pod {NS}/debugged: get pods/log failed with HTTP 400: {message}"
    assert err.value.status == 400


def test_read_container_log_forbidden_names_the_permission() -> None:
    message = 'pods "debugged" is forbidden: User "jane" cannot get resource "pods/log"'
    api, sleeps = make_client(FakeLogCore(read_namespaced_pod_log=[api_error(403, message)]))
    with pytest.raises(KubedebugError) as err:
        api.read_container_log(NS, "debugged", "debug")
    assert err.value.msg == (f"pod {NS}/debugged: permission denied: grant 'get' on 'pods/log' in namespace {NS!r}; see {RBAC_DOC}. API server said: {message}")
    assert sleeps == []


def test_read_container_log_retries_transient_errors() -> None:
    core = FakeLogCore(read_namespaced_pod_log=[api_error(503, "unavailable"), b"ok\n"])
    api, sleeps = make_client(core)
    assert api.read_container_log(NS, "debugged", "debug") == b"ok\n"
    assert len(core.calls) == 2 and sleeps == [0.5]


# --------------------------------------------------------------------------- wait_for_pods


def debug_reached(wait: str) -> Callable[[Mapping[str, Any]], bool]:
    """The ``done`` callable the container manager hands to ``wait_for_pods`` for container ``debug``."""
    return lambda pod: reached(container_state(ephemeral_status(pod, "debug"))["status"], wait)


def debug_state(pod: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    pod = copy.deepcopy(pod)
    pod["status"]["ephemeralContainerStatuses"] = [{"name": "debug", "state": state}]
    return pod


def modified(pod: dict[str, Any]) -> dict[str, Any]:
    return {"type": "MODIFIED", "object": pod}


GONE = {
    "type": "ERROR",
    "object": {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": "too old resource version: 1 (9)", "reason": "Expired", "code": 410},
}
WATCH = "list_namespaced_pod/watch"


def watching(lists: list[Any], watches: list[Any]) -> FakeCore:
    """A FakeCore whose LISTs answer ``lists`` and whose watches answer ``watches`` (WatchStreams or exceptions), in turn."""
    return FakeCore(**{"list_namespaced_pod": lists, WATCH: watches})


def test_wait_already_satisfied_needs_no_watch(debugged_pod: dict[str, Any]) -> None:
    core = FakeCore(list_namespaced_pod=[pod_list(debugged_pod)])
    api, _unused = make_client(core)
    latest = api.wait_for_pods({NS: ["debugged"]}, debug_reached("running"), 30)
    assert latest == {(NS, "debugged"): as_listed(debugged_pod)}
    assert core.calls == [("list_namespaced_pod", (NS,), {"_preload_content": False, "field_selector": "metadata.name=debugged"})]


def test_wait_watches_until_satisfied(plain_pod: dict[str, Any]) -> None:
    waiting = debug_state(plain_pod, {"waiting": {"reason": "ContainerCreating"}})
    running = debug_state(plain_pod, {"running": {"startedAt": "2026-11-25T09:09:14Z"}})
    stream = WatchStream(modified(waiting), {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "80"}}}, modified(running))
    core = watching([pod_list(waiting, resource_version="77")], [stream])
    api, sleeps = make_client(core)
    latest = api.wait_for_pods({NS: ["plain"]}, debug_reached("running"), 30)
    assert latest == {(NS, "plain"): running}
    ((args, kwargs),) = core.called(WATCH)
    assert args == (NS,)
    seconds = kwargs.pop("timeout_seconds")
    assert 1 <= seconds <= 30
    assert kwargs == {
        "watch": True,
        "resource_version": "77",
        "allow_watch_bookmarks": True,
        "field_selector": "metadata.name=plain",
        "_preload_content": False,
    }
    # The headers must come within the request timeout; then the reads outlast the server's own end of the
    # watch by one request timeout: a quiet watch is not a stall.
    assert core.timeouts[-1] == (30.0, 30.0)
    assert stream.read_timeouts == [seconds + 30.0]
    assert stream.closed
    assert sleeps == []
    assert api.stats.as_dict() == {"requests": 2, "retries": 0, "throttled": 0, "timeouts": 0, "watch_restarts": 0, "backoff_seconds": 0.0}


def test_wait_keeps_what_the_caller_asks_of_each_pod(plain_pod: dict[str, Any]) -> None:
    waiting = debug_state(plain_pod, {"waiting": {"reason": "ContainerCreating"}})
    running = debug_state(plain_pod, {"running": {"startedAt": "2026-11-25T09:09:14Z"}})
    running["metadata"]["resourceVersion"] = "78"
    core = watching([pod_list(waiting, resource_version="77")], [WatchStream(modified(running))])
    api, _unused = make_client(core)
    judged: list[str] = []

    def done(pod: dict[str, Any]) -> bool:
        judged.append(pod["metadata"]["resourceVersion"])  # the whole pod, not what is kept
        return debug_reached("running")(pod)

    latest = api.wait_for_pods({NS: ["plain", "gone"]}, done, 30, keep=lambda pod: {"rv": pod["metadata"]["resourceVersion"]})
    assert latest == {(NS, "plain"): {"rv": running["metadata"]["resourceVersion"]}, (NS, "gone"): {}}
    assert judged == [waiting["metadata"]["resourceVersion"], running["metadata"]["resourceVersion"]]


def test_wait_several_pods_lists_without_field_selector(plain_pod: dict[str, Any]) -> None:
    first = debug_state(plain_pod, {"terminated": {"exitCode": 0, "reason": "Completed"}})
    second = copy.deepcopy(first)
    second["metadata"]["name"] = "plain-2"
    core = FakeCore(list_namespaced_pod=[pod_list(first, second, load_pod("windows"))])
    api, _unused = make_client(core)
    latest = api.wait_for_pods({NS: ["plain", "plain-2"]}, debug_reached("terminated"), 30)
    assert sorted(latest) == [(NS, "plain"), (NS, "plain-2")]  # the windows pod is not a target
    assert core.calls == [("list_namespaced_pod", (NS,), {"_preload_content": False})]


def test_wait_vanished_and_deleted_pods(plain_pod: dict[str, Any]) -> None:
    waiting = debug_state(plain_pod, {"waiting": {"reason": "ContainerCreating"}})
    core = watching([pod_list(waiting)], [WatchStream({"type": "DELETED", "object": waiting})])
    api, _unused = make_client(core)
    latest = api.wait_for_pods({NS: ["plain", "never-listed"]}, debug_reached("running"), 30)
    assert latest == {(NS, "plain"): {}, (NS, "never-listed"): {}}


def test_wait_times_out_with_the_last_state(plain_pod: dict[str, Any]) -> None:
    waiting = debug_state(plain_pod, {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}})
    ticks = iter(range(1000))
    core = watching([pod_list(waiting)], [WatchStream()])
    api, _unused = make_client(core)
    latest = api.wait_for_pods({NS: ["plain"]}, debug_reached("running"), 5, clock=lambda: float(next(ticks)))
    assert latest == {(NS, "plain"): as_listed(waiting)}
    assert len(core.called(WATCH)) >= 1


@pytest.mark.parametrize("expiry", ["event", "answer"])
def test_wait_410_gone_lists_afresh_at_once(plain_pod: dict[str, Any], expiry: str) -> None:
    waiting = debug_state(plain_pod, {"waiting": {"reason": "ContainerCreating"}})
    running = debug_state(plain_pod, {"running": {}})
    # The API server says 410 Gone either as an ERROR event in the stream or as the watch's own answer.
    gone = WatchStream(GONE) if expiry == "event" else api_error(410, "too old resource version")
    core = watching([pod_list(waiting, resource_version="1"), pod_list(running, resource_version="9")], [gone])
    api, sleeps = make_client(core)
    assert api.wait_for_pods({NS: ["plain"]}, debug_reached("running"), 30) == {(NS, "plain"): as_listed(running)}
    assert [name for name, _args, _kwargs in core.calls] == ["list_namespaced_pod", WATCH, "list_namespaced_pod"]
    assert sleeps == []  # nothing is wrong with the server: no backoff
    assert api.stats.as_dict()["watch_restarts"] == 1


CUT = ProtocolError("Connection broken: IncompleteRead(0 bytes read)", None)
STALLED = ReadTimeoutError(None, "/api/v1/namespaces/unit-fixtures/pods", "Read timed out.")


@pytest.mark.parametrize(("fault", "timeouts"), [(CUT, 0), (STALLED, 1)], ids=["cut", "stalled"])
def test_wait_cut_or_stalled_watch_lists_and_watches_again(plain_pod: dict[str, Any], fault: Exception, timeouts: int) -> None:
    waiting = debug_state(plain_pod, {"waiting": {"reason": "ContainerCreating"}})
    creating = debug_state(plain_pod, {"waiting": {"reason": "ContainerCreating", "message": "still"}})
    running = debug_state(plain_pod, {"running": {}})
    first = WatchStream(modified(creating), fault)
    core = watching([pod_list(waiting), pod_list(creating)], [first, WatchStream(modified(running))])
    api, sleeps = make_client(core)
    assert api.wait_for_pods({NS: ["plain"]}, debug_reached("running"), 30) == {(NS, "plain"): running}
    assert [name for name, _args, _kwargs in core.calls] == ["list_namespaced_pod", WATCH, "list_namespaced_pod", WATCH]
    assert first.closed
    assert sleeps == [0.5]
    assert api.stats.as_dict() == {"requests": 4, "retries": 1, "throttled": 0, "timeouts": timeouts, "watch_restarts": 1, "backoff_seconds": 0.5}


def test_wait_garbled_watch_line_lists_again(plain_pod: dict[str, Any]) -> None:
    waiting = debug_state(plain_pod, {"waiting": {"reason": "ContainerCreating"}})
    running = debug_state(plain_pod, {"running": {}})
    core = watching([pod_list(waiting), pod_list(running)], [WatchStream(b'{"type": "MODIFIED", "obj\n')])
    api, _unused = make_client(core)
    assert api.wait_for_pods({NS: ["plain"]}, debug_reached("running"), 30) == {(NS, "plain"): as_listed(running)}
    assert api.stats.as_dict()["watch_restarts"] == 1


def test_wait_throttled_watch_honours_retry_after(plain_pod: dict[str, Any]) -> None:
    waiting = debug_state(plain_pod, {"waiting": {"reason": "ContainerCreating"}})
    running = debug_state(plain_pod, {"running": {}})
    core = watching([pod_list(waiting), pod_list(running)], [api_error(429, "slow down", headers={"Retry-After": "2"})])
    api, sleeps = make_client(core, jitter=0.0)
    assert api.wait_for_pods({NS: ["plain"]}, debug_reached("running"), 30) == {(NS, "plain"): as_listed(running)}
    assert sleeps == [2.0]
    assert api.stats.as_dict() == {"requests": 3, "retries": 1, "throttled": 1, "timeouts": 0, "watch_restarts": 1, "backoff_seconds": 2.0}


def test_wait_watch_refused_says_which_permission(plain_pod: dict[str, Any]) -> None:
    waiting = debug_state(plain_pod, {"waiting": {"reason": "ContainerCreating"}})
    forbidden = api_error(403, f'pods is forbidden: User "jane" cannot watch resource "pods" in API group "" in the namespace "{NS}"')
    core = watching([pod_list(waiting)], [forbidden])
    api, sleeps = make_client(core)
    with pytest.raises(KubedebugError) as excinfo:
        api.wait_for_pods({NS: ["plain"]}, debug_reached("running"), 30)
    assert excinfo.value.msg == (
        f"permission denied watching pods in namespace '{NS}': grant 'watch' on 'pods' (see {RBAC_DOC}). "
        f'API server said: pods is forbidden: User "jane" cannot watch resource "pods" in API group "" in the namespace "{NS}"'
    )
    assert len(core.called(WATCH)) == 1 and sleeps == []  # not retried until the deadline


def test_wait_on_watches_that_keep_ending_backs_off_and_stops_at_the_deadline(plain_pod: dict[str, Any]) -> None:
    waiting = debug_state(plain_pod, {"waiting": {"reason": "ContainerCreating"}})
    core = watching([pod_list(waiting)], [WatchStream()])  # every watch ends at once, without an event
    api, sleeps = make_client(core)
    start = 1000.0
    latest = api.wait_for_pods({NS: ["plain"]}, debug_reached("running"), 20, clock=lambda: start + sum(sleeps))
    assert latest == {(NS, "plain"): as_listed(waiting)}
    # Growing waits (the first restart is at once), cut at the deadline: a handful of LISTs, not a busy loop.
    assert sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 4.5]
    assert sum(sleeps) == 20
    assert len(core.called(WATCH)) == 7


def test_wait_relist_retries_stop_at_the_deadline(plain_pod: dict[str, Any]) -> None:
    waiting = debug_state(plain_pod, {"waiting": {"reason": "ContainerCreating"}})
    core = watching([pod_list(waiting), api_error(503, "restarting")], [WatchStream()])
    api, sleeps = make_client(core, retries=100)
    start = 1000.0
    with pytest.raises(KubedebugError, match=r"failed with HTTP 503: restarting \(gave up after \d+ attempts"):
        api.wait_for_pods({NS: ["plain"]}, debug_reached("running"), 10, clock=lambda: start + sum(sleeps))
    assert sum(sleeps) <= 10


def test_wait_list_error_is_raised_in_the_caller() -> None:
    api, _unused = make_client(FakeCore(list_namespaced_pod=[recorded_error("rbac-list")]))
    with pytest.raises(KubedebugError, match=rf"^permission denied listing pods in namespace '{NS}': grant 'list' on 'pods'"):
        api.wait_for_pods({NS: ["plain"]}, debug_reached("running"), 30)


def test_wait_nothing_to_wait_for() -> None:
    api, _unused = make_client(FakeCore())
    assert api.wait_for_pods({NS: []}, debug_reached("running"), 30) == {}


# --------------------------------------------------------------------------- the installed client, over the wire


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _RecordingServer

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        self.server.requests.append(
            {
                "method": self.command,
                "path": url.path,
                "query": parse_qs(url.query),
                "content_type": self.headers.get("Content-Type"),
                "body": json.loads(raw) if raw else None,
            }
        )
        status, payload, headers = self.server.responses.pop(0)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PATCH = do_POST = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _RecordingServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict[str, Any]] = []
        self.responses: list[tuple[int, Any, dict[str, str]]] = []


@pytest.fixture
def apiserver(monkeypatch: pytest.MonkeyPatch) -> Iterator[_RecordingServer]:
    without_proxies(monkeypatch)
    with serving(_RecordingServer()) as server:
        yield server


def real_client(server: _RecordingServer | None, *, retries: int = 4, host: str | None = None) -> tuple[EphemeralClient, list[float]]:
    configuration = k8s_client.Configuration()
    configuration.host = host or f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[union-attr]
    configuration.retries = False  # as _auth.create_api_client builds it: every retry is EphemeralClient's
    sleeps: list[float] = []
    return EphemeralClient(k8s_client.ApiClient(configuration), retries=retries, sleep=sleeps.append, jitter=lambda: 0.0), sleeps


class TestWire:
    def test_add_ephemeral_request(self, apiserver: _RecordingServer, plain_pod: dict[str, Any]) -> None:
        answer = with_debug_container(plain_pod)
        apiserver.responses = [(200, answer, {})]
        api, _unused = real_client(apiserver)
        assert api.add_ephemeral(NS, "plain", BODY, name="debug", dry_run=False) == answer
        assert apiserver.requests == [
            {
                "method": "PATCH",
                "path": f"/api/v1/namespaces/{NS}/pods/plain/ephemeralcontainers",
                "query": {"fieldValidation": ["Strict"]},
                "content_type": SMP,
                "body": BODY,
            }
        ]

    def test_add_ephemeral_dry_run_request(self, apiserver: _RecordingServer, plain_pod: dict[str, Any]) -> None:
        apiserver.responses = [(200, with_debug_container(plain_pod), {})]
        api, _unused = real_client(apiserver)
        api.add_ephemeral(NS, "plain", BODY, name="debug", dry_run=True)
        assert apiserver.requests[0]["query"] == {"fieldValidation": ["Strict"], "dryRun": ["All"]}
        assert apiserver.requests[0]["content_type"] == SMP

    def test_refusal_body_is_read_from_the_real_exception(self, apiserver: _RecordingServer) -> None:
        recorded = load_status("podsecurity-baseline")
        apiserver.responses = [(403, recorded["body"], {})]
        api, sleeps = real_client(apiserver)
        with pytest.raises(KubedebugError) as excinfo:
            api.add_ephemeral(NS, "web", BODY, name="debug", dry_run=False)
        assert excinfo.value.msg.startswith(f"pod {NS}/web: PodSecurity admission refused ephemeral container 'debug': {recorded['body']['message']}. ")
        assert sleeps == []

    def test_retry_after_header_and_reread(self, apiserver: _RecordingServer, plain_pod: dict[str, Any]) -> None:
        answer = with_debug_container(plain_pod)
        busy = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": "too many requests", "code": 429}
        apiserver.responses = [(429, busy, {"Retry-After": "2"}), (200, plain_pod, {}), (200, answer, {})]
        api, sleeps = real_client(apiserver)
        assert api.add_ephemeral(NS, "plain", BODY, name="debug", dry_run=False) == answer
        assert [(r["method"], r["path"]) for r in apiserver.requests] == [
            ("PATCH", f"/api/v1/namespaces/{NS}/pods/plain/ephemeralcontainers"),
            ("GET", f"/api/v1/namespaces/{NS}/pods/plain"),
            ("PATCH", f"/api/v1/namespaces/{NS}/pods/plain/ephemeralcontainers"),
        ]
        assert sleeps == [2.0]

    def test_list_requests(self, apiserver: _RecordingServer, plain_pod: dict[str, Any]) -> None:
        apiserver.responses = [(200, pod_list(plain_pod), {}), (200, pod_list(), {}), (200, pod_list(plain_pod), {})]
        api, _unused = real_client(apiserver)
        assert api.list_pods(["a", "b"], label_selector="app=web,tier!=db", field_selector="status.phase=Running") == [plain_pod]
        assert api.list_pods(None) == [plain_pod]
        assert [(r["method"], r["path"], r["query"]) for r in apiserver.requests] == [
            (
                "GET",
                "/api/v1/namespaces/a/pods",
                {"labelSelector": ["app=web,tier!=db"], "fieldSelector": ["status.phase=Running"]},
            ),
            (
                "GET",
                "/api/v1/namespaces/b/pods",
                {"labelSelector": ["app=web,tier!=db"], "fieldSelector": ["status.phase=Running"]},
            ),
            ("GET", "/api/v1/pods", {}),
        ]

    def test_annotate_request(self, apiserver: _RecordingServer, plain_pod: dict[str, Any]) -> None:
        apiserver.responses = [(200, plain_pod, {})]
        api, _unused = real_client(apiserver)
        api.annotate(NS, "plain", {"debug.kubedebug.io/debug": "{}"}, dry_run=True)
        assert apiserver.requests == [
            {
                "method": "PATCH",
                "path": f"/api/v1/namespaces/{NS}/pods/plain",
                "query": {"dryRun": ["All"]},
                "content_type": SMP,
                "body": {"metadata": {"annotations": {"debug.kubedebug.io/debug": "{}"}}},
            }
        ]

    def test_unreachable_server(self, apiserver: _RecordingServer) -> None:
        port = apiserver.server_address[1]
        apiserver.shutdown()
        apiserver.server_close()  # nothing listens on the port any more
        api, sleeps = real_client(None, retries=1, host=f"http://127.0.0.1:{port}")
        with pytest.raises(KubedebugError) as excinfo:
            api.list_pods([NS])
        assert excinfo.value.msg.startswith("the API server could not be reached after 2 attempts: ")
        assert "Connection refused" in excinfo.value.msg
        assert sleeps == [0.0]  # jitter 0


# --------------------------------------------------------------------------- CoreCalls = CoreV1Api on the wire


class _EchoHandler(http.server.BaseHTTPRequestHandler):
    """Records each request whole (raw query, headers that matter, body) and answers with ``server.answer``."""

    server: _EchoServer

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k: self.headers.get(k) for k in ("Accept", "Content-Type", "Authorization", "User-Agent", "Impersonate-User")}
        self.server.requests.append((self.command, self.path, headers, self.headers.get_all("Impersonate-Group"), json.loads(raw) if raw else None))
        status, payload = self.server.answer
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PATCH = do_POST = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _EchoServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _EchoHandler)
        self.requests: list[tuple[Any, ...]] = []
        self.answer: tuple[int, Any] = (200, {"kind": "Status"})


@pytest.fixture
def echo(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[_EchoServer, Any]]:
    """The echo server and an ApiClient for it with a token and impersonation headers, as _auth builds them."""
    without_proxies(monkeypatch)
    with serving(_EchoServer()) as server:
        configuration = k8s_client.Configuration()
        configuration.host = f"http://127.0.0.1:{server.server_address[1]}"
        configuration.api_key = {"authorization": "Bearer t0ken"}
        configuration.retries = False
        api_client = k8s_client.ApiClient(configuration)
        api_client.set_default_header("Impersonate-User", "jane")
        yield server, api_client


SMP_KWARGS = {"_content_type": SMP} if CLIENT_MAJOR >= 36 else {}
# (CoreV1Api or AuthenticationV1Api method, positional arguments, keywords): every call EphemeralClient makes, with
# every keyword it passes somewhere.
WIRE_CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("list_namespaced_pod", (NS,), {"label_selector": "app=web,tier!=db", "field_selector": "status.phase=Running"}),
    (
        "list_namespaced_pod",
        (NS,),
        {"watch": True, "resource_version": "4711", "timeout_seconds": 30, "allow_watch_bookmarks": True, "field_selector": "metadata.name=web-0"},
    ),
    ("list_pod_for_all_namespaces", (), {"label_selector": "app=web"}),
    ("read_namespaced_pod", ("web 0", NS), {}),
    ("read_namespaced_pod_log", ("web-0", NS), {"container": "debug", "previous": True, "tail_lines": 100, "limit_bytes": 1024}),
    ("list_namespaced_event", (NS,), {"limit": 500, "field_selector": "involvedObject.kind=Pod", "_continue": "next/page=="}),
    ("patch_namespaced_pod_ephemeralcontainers", ("web-0", NS, BODY), {"field_validation": "Strict", "dry_run": "All", **SMP_KWARGS}),
    ("patch_namespaced_pod", ("web-0", NS, {"metadata": {"annotations": {"a": "b"}}}), {"dry_run": "All", **SMP_KWARGS}),
    ("create_self_subject_review", ({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},), {}),
]


def _generated_api(method: str, api_client: Any) -> Any:
    if method == "create_self_subject_review":
        return k8s_client.AuthenticationV1Api(api_client)
    return k8s_client.CoreV1Api(api_client)


@pytest.mark.parametrize(("method", "args", "kwargs"), WIRE_CALLS, ids=[f"{m}-{i}" for i, (m, _a, _k) in enumerate(WIRE_CALLS)])
def test_core_calls_send_what_the_generated_api_sends(echo: tuple[_EchoServer, Any], method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    server, api_client = echo
    options = {"_preload_content": False, "_request_timeout": (5.0, 5.0)}
    generated = getattr(_generated_api(method, api_client), method)(*args, **kwargs, **options)
    ours = getattr(CoreCalls(api_client), method)(*args, **kwargs, **options)
    sent_by_generated, sent_by_ours = server.requests
    assert sent_by_ours == sent_by_generated
    assert sent_by_ours[2]["Authorization"] == "Bearer t0ken" and sent_by_ours[2]["Impersonate-User"] == "jane"
    # Both hand back the raw response, unread.
    assert json.loads(ours.data) == json.loads(generated.data) == {"kind": "Status"}


@pytest.mark.parametrize("status", [404, 429, 503])
def test_core_calls_raise_what_the_generated_api_raises(echo: tuple[_EchoServer, Any], status: int) -> None:
    server, api_client = echo
    server.answer = (status, {"kind": "Status", "message": f"refused with {status}"})
    options = {"_preload_content": False, "_request_timeout": (5.0, 5.0)}
    with pytest.raises(ApiException) as generated:
        k8s_client.CoreV1Api(api_client).read_namespaced_pod("web-0", NS, **options)
    with pytest.raises(ApiException) as ours:
        CoreCalls(api_client).read_namespaced_pod("web-0", NS, **options)
    assert (ours.value.status, ours.value.reason, ours.value.body) == (generated.value.status, generated.value.reason, generated.value.body)
    assert json.loads(ours.value.body)["message"] == f"refused with {status}"


def test_core_calls_refuse_what_they_do_not_know() -> None:
    calls = CoreCalls(object())
    with pytest.raises(TypeError, match="pretty"):
        calls.list_namespaced_pod(NS, pretty="true")
    with pytest.raises(TypeError, match="raw responses only"):
        calls.read_namespaced_pod("web-0", NS, _preload_content=True)
    assert _supports_content_type(calls.patch_namespaced_pod) and _supports_content_type(calls.patch_namespaced_pod_ephemeralcontainers)


def test_no_generated_api_class_is_imported_by_a_module_run() -> None:
    """With clients >= 36 the API classes load on first use only: nothing of ours may use one (CoreCalls says why)."""
    code = (
        "import sys\n"
        "from ansible_collections.kubedebug.ephemeral.plugins.module_utils import _auth, _client\n"
        "from ansible_collections.kubedebug.ephemeral.plugins.modules import ephemeral_container\n"
        "from ansible_collections.kubedebug.ephemeral.plugins.plugin_utils import _lookup\n"
        "auth = _auth.resolve_auth({'host': 'http://127.0.0.1:9', 'api_key': 'x'}, {})\n"
        "client = _client.EphemeralClient(_auth.create_api_client(auth))\n"
        "print(sorted(m for m in sys.modules if m.startswith('kubernetes.client.api.') or m.startswith('kubernetes.client.models.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = json.loads(out.replace("'", '"'))
    if CLIENT_MAJOR >= 36:
        assert loaded == []
    else:
        assert "kubernetes.client.api.core_v1_api" in loaded  # the package imports every class itself


# --------------------------------------------------------------------------- PodSecurity hint

RESTRICTED_HINT = (
    'the namespace enforces PodSecurity "restricted": use profile: restricted (non-root, no added capabilities, '
    "seccomp RuntimeDefault) and an image that runs as a non-root user"
)
BASELINE_HINT = 'the namespace enforces PodSecurity "baseline": use profile: baseline (no added capabilities, not privileged) or profile: restricted'
UNNAMED_LEVEL_HINT = "the namespace's PodSecurity level refuses the container: choose a profile that meets it (profile: baseline or restricted)"


def test_pod_security_hint_restricted() -> None:
    message = 'pods "web" is forbidden: violates PodSecurity "restricted:latest": privileged (container "root" must not set securityContext.privileged=true)'
    assert pod_security_hint(message) == RESTRICTED_HINT


def test_pod_security_hint_baseline_pinned_version() -> None:
    message = (
        'pods "web" is forbidden: violates PodSecurity "baseline:v1.30": non-default capabilities '
        '(container "debug" must not include "SYS_PTRACE" in securityContext.capabilities.add)'
    )
    assert pod_security_hint(message) == BASELINE_HINT


@pytest.mark.parametrize(("fixture", "hint"), [("podsecurity-restricted", RESTRICTED_HINT), ("podsecurity-baseline", BASELINE_HINT)])
def test_pod_security_hint_recorded_messages(fixture: str, hint: str) -> None:
    assert pod_security_hint(load_status(fixture)["body"]["message"]) == hint


def test_pod_security_hint_other_level() -> None:
    assert pod_security_hint('violates PodSecurity "custom:latest": x') == 'the namespace enforces PodSecurity "custom"'


# Changed on purpose (issue 11): the hint is always a string, so a message without a level
# no longer ends in "None".
@pytest.mark.parametrize("message", ["", "violates PodSecurity", 'violates PodSecurity "Restricted:latest"'])
def test_pod_security_hint_without_a_named_level(message: str) -> None:
    assert PSA_LEVEL.search(message) is None
    assert pod_security_hint(message) == UNNAMED_LEVEL_HINT


def test_pod_security_hint_for_a_non_podsecurity_message() -> None:
    assert pod_security_hint(load_status("rbac-patch-ephemeral")["body"]["message"]) == UNNAMED_LEVEL_HINT


def test_translate_403_pod_security_without_a_level_does_not_end_in_none() -> None:
    exc = api_error(403, 'pods "web" is forbidden: violates PodSecurity: something new')
    msg = translate_api_error(exc, namespace=NS, pod="web", container="debug", verb="patch", resource="pods/ephemeralcontainers").msg
    assert msg == (
        f"pod {NS}/web: PodSecurity admission refused ephemeral container 'debug': "
        f'pods "web" is forbidden: violates PodSecurity: something new. {UNNAMED_LEVEL_HINT}'
    )
    assert not msg.endswith("None")
