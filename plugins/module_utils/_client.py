# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: the one layer that talks to the Kubernetes API.

Pods travel as the API's own JSON (camelCase dicts, read with
``_preload_content=False``), so the decisions above this layer see exactly what the
server stores, whichever ``kubernetes`` client version is installed. Every API
failure leaves this module as a ``KubedebugError`` whose message says what to do.
It imports nothing of the collection but ``_errors``: planning and records sit
above it and hand it callables (``wait_for_pods``'s ``done``) where it must decide.

Faults are handled here and nowhere else: every request carries a (connect, read)
timeout, every verb is retried on throttling (429, and 503 with ``Retry-After``),
overload and dropped connections with capped, jittered backoff and a bounded
total, and ``ApiStats`` counts what that cost. urllib3's own retries are switched
off where the ApiClient is built (``_auth.create_api_client``): they would retry
GETs only, sleep a ``Retry-After`` of any length, and hide attempts from the count.
"""

from __future__ import annotations

import email.utils
import http.client
import inspect
import json
import math
import random
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from ansible_collections.kubedebug.ephemeral.plugins.module_utils._errors import KubedebugError

try:
    # Not kubernetes.client's API classes: CoreCalls says why.
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError as Urllib3HTTPError
    from urllib3.exceptions import MaxRetryError, NewConnectionError
    from urllib3.exceptions import TimeoutError as Urllib3TimeoutError
except ImportError:  # reported once by the front ends through _auth.HAS_KUBERNETES

    class ApiException(Exception):  # type: ignore[no-redef]
        status: int | None = None
        body: str | None = None
        reason: str | None = None

    class Urllib3HTTPError(Exception):  # type: ignore[no-redef]
        pass

    class Urllib3TimeoutError(Urllib3HTTPError):  # type: ignore[no-redef]
        pass

    class MaxRetryError(Urllib3HTTPError):  # type: ignore[no-redef]
        reason: BaseException | None = None

    class NewConnectionError(Urllib3TimeoutError):  # type: ignore[no-redef]
        pass


T = TypeVar("T")

SMP = "application/strategic-merge-patch+json"
RETRY_STATUSES = frozenset({409, 429, 500, 502, 503, 504})
RBAC_DOC = "the collection's RBAC guide, docs/docsite/rst/rbac.rst"

# Defaults of the request_timeout and request_retries options (doc fragment kubedebug.ephemeral.auth).
REQUEST_TIMEOUT = 30.0
REQUEST_RETRIES = 8
# One wait between two attempts never exceeds MAX_DELAY, whatever Retry-After says (a
# misconfigured or hostile server could ask for a day); all waits of one call together stay
# within RETRY_BUDGET.
MAX_DELAY = 10.0
RETRY_BUDGET = 60.0

# Headers API Priority and Fairness puts on its answers, a 429 included (KEP-1040).
APF_PRIORITY_LEVEL = "X-Kubernetes-PF-PriorityLevel-UID"

# A TLS failure reaches us as ApiException(status=0) (the client wraps urllib3's SSLError).
# These are a connection dropped during the handshake, worth another attempt; a certificate
# that does not verify is not.
_TRANSIENT_TLS = ("EOF occurred", "UNEXPECTED_EOF", "Connection reset", "ConnectionResetError", "Broken pipe", "timed out")


class GarbledAnswer(Exception):
    """An answer that is not the JSON it should be (cut short by a dropped connection, or a broken proxy)."""


WATCH_EVENTS = frozenset({"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"})

# What a retry may cure besides a transient HTTP status (the connection failed, timed out, or the
# answer arrived cut short) is written out at each "except": pylint cannot tell that a tuple held
# in a name is one of exception classes.


def is_timeout(exc: BaseException) -> bool:
    """Whether ``exc`` means no answer came within the request timeout."""
    if isinstance(exc, MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    if isinstance(exc, NewConnectionError):
        return False  # a refused connection; urllib3 derives it from ConnectTimeoutError for history's sake
    return isinstance(exc, (Urllib3TimeoutError, TimeoutError)) or (isinstance(exc, ApiException) and exc.status == 0 and "timed out" in str(exc.reason))


def is_transient(exc: ApiException) -> bool:
    """Whether another attempt may succeed where this answer refused."""
    if exc.status in RETRY_STATUSES:
        return True
    return exc.status == 0 and any(marker in str(exc.reason) for marker in _TRANSIENT_TLS)


def retry_after(exc: ApiException, now: Callable[[], float] = time.time) -> float | None:
    """The seconds a ``Retry-After`` header asks for (delay-seconds or an HTTP-date), or None."""
    headers = getattr(exc, "headers", None) or {}
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(str(value)).timestamp() - now()
        except (TypeError, ValueError):
            return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


class ApiStats:
    """What one task or lookup cost in API traffic: the ``api`` of every module result and lookup record.

    Updated by every thread of a manager's pool, so each update takes the lock.
    """

    COUNTS = ("requests", "retries", "throttled", "timeouts", "watch_restarts")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(self.COUNTS, 0)
        self._backoff = 0.0

    def add(self, count: str, n: int = 1) -> None:
        with self._lock:
            self._counts[count] += n

    def waited(self, seconds: float) -> None:
        with self._lock:
            self._counts["retries"] += 1
            self._backoff += seconds

    def as_dict(self) -> dict[str, Any]:
        """``requests``, ``retries``, ``throttled``, ``timeouts``, ``watch_restarts`` and ``backoff_seconds``."""
        with self._lock:
            return {**self._counts, "backoff_seconds": round(self._backoff, 3)}


PSA_LEVEL = re.compile(r'violates PodSecurity "(?P<level>[a-z]+):(?P<version>[^"]+)"')


def pod_security_hint(message: str) -> str:
    """What to do about a PodSecurity refusal: the profile that passes the level it names."""
    m = PSA_LEVEL.search(message)
    if not m:
        return "the namespace's PodSecurity level refuses the container: choose a profile that meets it (profile: baseline or restricted)"
    level = m.group("level")
    if level == "restricted":
        return (
            f'the namespace enforces PodSecurity "{level}": use profile: restricted (non-root, no added '
            "capabilities, seccomp RuntimeDefault) and an image that runs as a non-root user"
        )
    if level == "baseline":
        return f'the namespace enforces PodSecurity "{level}": use profile: baseline (no added capabilities, not privileged) or profile: restricted'
    return f'the namespace enforces PodSecurity "{level}"'


def _message(exc: ApiException) -> tuple[str, dict[str, Any]]:
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        return str(exc.reason or exc), {}
    return body.get("message") or str(exc.reason), body.get("details") or {}


def translate_api_error(exc: ApiException, *, namespace: str, pod: str, container: str, verb: str, resource: str) -> KubedebugError:
    """Turn an API refusal into a message that says what to do about it."""
    status = exc.status
    message, details = _message(exc)
    where = f"pod {namespace}/{pod}"
    if status == 403 and "violates PodSecurity" in message:
        hint = pod_security_hint(message)
        return KubedebugError(
            f"{where}: PodSecurity admission refused ephemeral container {container!r}: {message}. {hint}",
            status=status,
        )
    if status == 403:
        # Only this subresource is missing from the built-in roles on purpose (kubernetes#120909).
        builtin = " (the built-in edit and admin roles do not include it)" if resource == "pods/ephemeralcontainers" else ""
        return KubedebugError(
            f"{where}: permission denied: grant '{verb}' on '{resource}' in namespace {namespace!r}{builtin}; see {RBAC_DOC}. API server said: {message}",
            status=status,
        )
    if status == 404 and resource == "pods/ephemeralcontainers" and not details.get("name"):
        return KubedebugError(
            f"{where}: the API server has no pods/ephemeralcontainers subresource: the cluster is older than "
            f"Kubernetes 1.23 or has the EphemeralContainers feature turned off. API server said: {message}",
            status=status,
        )
    if status == 404:
        return KubedebugError(f"{where}: not found (deleted meanwhile?). API server said: {message}", status=status)
    if status == 422:
        return KubedebugError(f"{where}: the API server refused ephemeral container {container!r}: {message}", status=status)
    return KubedebugError(f"{where}: {verb} {resource} failed with HTTP {status}: {message}", status=status)


def _certificate_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification failure behind a urllib3 error, if that is what it is."""
    seen: set[int] = set()
    pending: list[Any] = [exc]
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        # MaxRetryError keeps the cause in .reason, urllib3's SSLError in its args.
        pending.extend([getattr(current, "reason", None), current.__cause__, current.__context__, *current.args])
    return None


def tls_failure(exc: BaseException, host: str) -> KubedebugError | None:
    """A KubedebugError for an API server whose certificate did not verify, or None for any other failure.

    Never worth a retry: the same certificate fails the same way.
    """
    cause = _certificate_error(exc)
    if cause is None:
        return None
    why = (getattr(cause, "verify_message", None) or str(cause)).rstrip(".")
    return KubedebugError(
        f"the TLS certificate of the API server {host} could not be verified ({why}): set ca_cert "
        "(K8S_AUTH_SSL_CA_CERT) or the kubeconfig cluster's certificate-authority to the CA that signed the API "
        "server's certificate, and connect with a host name or address that the certificate names. "
        "validate_certs: false would turn verification off, which lets anyone on the network path read the credentials."
    )


# The API server's refusal of impersonation headers: "cannot impersonate resource "users"" and, with
# constrained impersonation (Kubernetes >= 1.35, KEP-5284), "cannot impersonate-on:<mode>:<verb> resource ...".
_IMPERSONATE_REFUSED = re.compile(r'User "(?P<user>[^"]*)" cannot impersonate(?:-on:\S+)? resource')


def _impersonation_rules(impersonating: Mapping[str, list[str]]) -> list[str]:
    """What the 'impersonate' verb must cover, one RBAC rule per kind of identity impersonated."""
    rules = []
    for user in impersonating.get("user") or []:
        parts = user.split(":")
        if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"]:
            rules.append(f"'serviceaccounts' named '{parts[3]}' in namespace '{parts[2]}'")
        else:
            rules.append(f"'users' named '{user}'")
    groups = impersonating.get("groups") or []
    if groups:
        rules.append("'groups' named " + ", ".join(f"'{group}'" for group in groups))
    return rules


def impersonation_refusal(exc: ApiException, impersonating: Mapping[str, list[str]]) -> KubedebugError | None:
    """A KubedebugError for a 403 that refuses the impersonation itself (not the impersonated user's request), or None.

    ``impersonating`` is :meth:`EphemeralClient.impersonation`.
    """
    if exc.status != 403 or not impersonating:
        return None
    message = _message(exc)[0]
    m = _IMPERSONATE_REFUSED.search(message)
    if not m:
        return None
    rules = " and ".join(_impersonation_rules(impersonating))
    return KubedebugError(
        f"impersonation refused: {m.group('user')} may not act as another identity: grant it the 'impersonate' verb on "
        f"{rules}, or remove impersonate_user and impersonate_groups (K8S_AUTH_IMPERSONATE_USER, "
        f"K8S_AUTH_IMPERSONATE_GROUPS) to act as yourself. API server said: {message}",
        status=403,
    )


def name_selector(name: str) -> str:
    """The field selector of the pod named ``name``, escaped as the API server parses it (fields.EscapeValue).

    A name with ``,``, ``=`` or ``\\`` is no pod's name, but unescaped it would be a selector the API server cannot
    parse (HTTP 400) instead of one that matches nothing.
    """
    escaped = name.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")
    return f"metadata.name={escaped}"


# CoreV1Api's keyword -> the query parameter it sends, for the calls CoreCalls makes, in the order the API's
# specification (and so CoreV1Api) lists them: the same calls send the same bytes.
_QUERY_NAMES: dict[str, str] = {
    "allow_watch_bookmarks": "allowWatchBookmarks",
    "_continue": "continue",
    "field_selector": "fieldSelector",
    "label_selector": "labelSelector",
    "limit": "limit",
    "resource_version": "resourceVersion",
    "timeout_seconds": "timeoutSeconds",
    "watch": "watch",
    "container": "container",
    "limit_bytes": "limitBytes",
    "previous": "previous",
    "tail_lines": "tailLines",
    "dry_run": "dryRun",
    "field_validation": "fieldValidation",
}


class CoreCalls:
    """The few API calls this collection makes, under CoreV1Api's names and keywords, sent by the ApiClient itself.

    Why not CoreV1Api: clients >= 36 import it on first use, a 63,000-line module and some 250 pydantic models,
    about half a second of every module run and lookup before its first request (bench/results/startup.md), to
    type answers this layer reads as raw JSON anyway. Every call here returns the raw response, as CoreV1Api's
    do with ``_preload_content=False``, after the same ApiClient has added its default headers (impersonation,
    user agent) and credentials (``BearerToken``, refreshed by its hook) and raised ``ApiException`` for an
    answer that is not 2xx. Clients <= 35 import CoreV1Api with the package anyway; the requests are the same.
    """

    def __init__(self, api_client: Any) -> None:
        self.api_client = api_client

    def _send(
        self,
        method: str,
        path: str,
        path_params: Mapping[str, str],
        params: Mapping[str, Any],
        body: Any = None,
        content_type: str | None = None,
    ) -> Any:
        params = dict(params)
        timeout = params.pop("_request_timeout", None)
        if params.pop("_preload_content", False):
            raise TypeError("CoreCalls returns raw responses only (_preload_content=False)")
        unknown = sorted(set(params) - set(_QUERY_NAMES))
        if unknown:
            raise TypeError(f"unexpected keyword arguments for {method} {path}: {', '.join(unknown)}")
        query = [(name, params[key]) for key, name in _QUERY_NAMES.items() if params.get(key) is not None]
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        client = self.api_client
        if hasattr(client, "param_serialize"):
            # Clients >= 36 (openapi-generator 7): what CoreV1Api's _call_with_legacy_options does without preloading.
            request = client.param_serialize(
                method=method, resource_path=path, path_params=dict(path_params), query_params=query,
                header_params=headers, body=body, auth_settings=["BearerToken"],
            )  # fmt: skip
            response = client.call_api(*request, _request_timeout=timeout)
            if not 200 <= response.status <= 299:
                response.read()
                raise ApiException.from_response(http_resp=response, body=None, data=None)
            return response.response
        # Clients <= 35: the REST layer raises ApiException for an answer that is not 2xx.
        return client.call_api(
            path, method, path_params=dict(path_params), query_params=query, header_params=headers, body=body,
            post_params=[], files={}, response_type=None, auth_settings=["BearerToken"],
            _return_http_data_only=True, _preload_content=False, _request_timeout=timeout, collection_formats={},
        )  # fmt: skip

    def list_namespaced_pod(self, namespace: str, **params: Any) -> Any:
        return self._send("GET", "/api/v1/namespaces/{namespace}/pods", {"namespace": namespace}, params)

    def list_pod_for_all_namespaces(self, **params: Any) -> Any:
        return self._send("GET", "/api/v1/pods", {}, params)

    def read_namespaced_pod(self, name: str, namespace: str, **params: Any) -> Any:
        return self._send("GET", "/api/v1/namespaces/{namespace}/pods/{name}", {"namespace": namespace, "name": name}, params)

    def read_namespaced_pod_log(self, name: str, namespace: str, **params: Any) -> Any:
        return self._send("GET", "/api/v1/namespaces/{namespace}/pods/{name}/log", {"namespace": namespace, "name": name}, params)

    def list_namespaced_event(self, namespace: str, **params: Any) -> Any:
        return self._send("GET", "/api/v1/namespaces/{namespace}/events", {"namespace": namespace}, params)

    def patch_namespaced_pod_ephemeralcontainers(self, name: str, namespace: str, body: Any, _content_type: str | None = None, **params: Any) -> Any:
        path = "/api/v1/namespaces/{namespace}/pods/{name}/ephemeralcontainers"
        return self._send("PATCH", path, {"namespace": namespace, "name": name}, params, body, _content_type or SMP)

    def patch_namespaced_pod(self, name: str, namespace: str, body: Any, _content_type: str | None = None, **params: Any) -> Any:
        return self._send("PATCH", "/api/v1/namespaces/{namespace}/pods/{name}", {"namespace": namespace, "name": name}, params, body, _content_type or SMP)

    def read_namespaced_secret(self, name: str, namespace: str, **params: Any) -> Any:
        return self._send("GET", "/api/v1/namespaces/{namespace}/secrets/{name}", {"namespace": namespace, "name": name}, params)

    def read_node(self, name: str, **params: Any) -> Any:
        return self._send("GET", "/api/v1/nodes/{name}", {"name": name}, params)

    def read_namespace(self, name: str, **params: Any) -> Any:
        return self._send("GET", "/api/v1/namespaces/{name}", {"name": name}, params)

    def read_namespaced_replica_set(self, name: str, namespace: str, **params: Any) -> Any:
        """AppsV1Api's call of that name: who owns a pod's ReplicaSet (``debugged_pods_info``'s restart advice)."""
        return self._send("GET", "/apis/apps/v1/namespaces/{namespace}/replicasets/{name}", {"namespace": namespace, "name": name}, params)

    def create_self_subject_review(self, body: Any, **params: Any) -> Any:
        """AuthenticationV1Api's call of that name (the only one outside core/v1)."""
        # No Content-Type, as AuthenticationV1Api sends it: the REST layer sends the body as JSON.
        return self._send("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", {}, params, body)


def _supports_content_type(method: Callable[..., Any]) -> bool:
    # Clients >= 36 take _content_type; older ones pick strategic merge for a
    # dict body on their own and reject unknown keywords.
    try:
        return "_content_type" in inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False


class EphemeralClient:
    """The calls the module and the lookup need, with timeouts, retries and translated errors.

    ``stats`` counts every request, retry, throttled answer, timeout and watch restart,
    from all threads. ``sleep``, ``jitter`` (a number in [0, 1)) and ``clock`` are
    there for tests.
    """

    def __init__(
        self,
        api_client: Any,
        *,
        retries: int = REQUEST_RETRIES,
        backoff: float = 0.5,
        max_delay: float = MAX_DELAY,
        retry_budget: float = RETRY_BUDGET,
        request_timeout: float = REQUEST_TIMEOUT,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api_client = api_client
        self.core: Any = CoreCalls(api_client)
        self.retries = retries
        self.backoff = backoff
        self.max_delay = max_delay
        self.retry_budget = retry_budget
        self.request_timeout = request_timeout
        self.sleep = sleep
        self.jitter = jitter
        self.clock = clock
        self.stats = ApiStats()

    # -- sending ---------------------------------------------------------------

    @property
    def timeouts(self) -> tuple[float, float]:
        """(connect, read) for one request: without a read timeout a dead connection blocks forever."""
        return (self.request_timeout, self.request_timeout)

    @contextmanager
    def _counted(self) -> Iterator[None]:
        """One request: counted, and so are its 429 answer or its timeout."""
        self.stats.add("requests")
        try:
            yield
        except ApiException as exc:
            if exc.status == 429:
                self.stats.add("throttled")
            elif is_timeout(exc):
                self.stats.add("timeouts")
            raise
        except BaseException as exc:
            if is_timeout(exc):
                self.stats.add("timeouts")
            raise

    def _raw(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> bytes:
        """The body of one request, read whole: a connection dropped or stalled half way fails here, inside the retry."""
        kwargs.setdefault("_request_timeout", self.timeouts)
        with self._counted():
            response = call(*args, _preload_content=False, **kwargs)
            data: bytes = response.data
        return data

    def server(self) -> str:
        """The API server's URL, for messages."""
        return str(getattr(getattr(self.api_client, "configuration", None), "host", None) or "(unknown)")

    def impersonation(self) -> dict[str, list[str]]:
        """Who the requests act as through impersonation headers: ``{"user": [...], "groups": [...]}``, or {}."""
        found: dict[str, list[str]] = {}
        for name, value in (getattr(self.api_client, "default_headers", None) or {}).items():
            key = str.lower(name)
            if key == "impersonate-user":
                found.setdefault("user", []).append(str(value))
            elif key == "impersonate-group":
                found.setdefault("groups", []).append(str(value))
        return found

    def _refused(self, exc: ApiException, translate: Callable[[ApiException], KubedebugError]) -> KubedebugError:
        if exc.status == 401:
            return KubedebugError(
                f"the API server {self.server()} did not accept the credentials (HTTP 401 Unauthorized): the token "
                "(api_key, K8S_AUTH_API_KEY or the kubeconfig's) may have expired or been revoked, or the client "
                "certificate (client_cert and client_key, or the kubeconfig's) is not signed by a CA the API server trusts. "
                f"API server said: {_message(exc)[0]}",
                status=401,
            )
        impersonating = self.impersonation()
        refused = impersonation_refusal(exc, impersonating)
        if refused is not None:
            return refused
        error = translate(exc)
        if exc.status == 403 and impersonating.get("user"):
            # The permission is checked for the impersonated user, not for the one who authenticated.
            user = impersonating["user"][0]
            return KubedebugError(f"{error.msg} (requests act as {user} through impersonate_user: grant the permission to {user})", status=error.status)
        return error

    def _json(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        raw = self._raw(call, *args, **kwargs)
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise GarbledAnswer(f"the API server's answer is not JSON ({len(raw)} bytes: {raw[:80]!r})") from exc
        if not isinstance(data, dict):
            raise GarbledAnswer(f"the API server answered a JSON {type(data).__name__} where an object was expected")
        return data

    # -- reading ---------------------------------------------------------------

    def list_pods(
        self,
        namespaces: Iterable[str] | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        """One LIST per namespace (``None``: one cluster-wide LIST)."""
        kwargs = {k: v for k, v in (("label_selector", label_selector), ("field_selector", field_selector)) if v}
        pods: list[dict[str, Any]] = []
        if namespaces is None:
            pods.extend(self._list_retrying("", kwargs))
        else:
            for ns in namespaces:
                pods.extend(self._list_retrying(ns, kwargs))
        return pods

    def _list_retrying(self, namespace: str, kwargs: Mapping[str, Any]) -> list[dict[str, Any]]:
        def call() -> list[dict[str, Any]]:
            if namespace:
                data = self._json(self.core.list_namespaced_pod, namespace, **kwargs)
            else:
                data = self._json(self.core.list_pod_for_all_namespaces, **kwargs)
            items = data.get("items") or []
            for item in items:
                # LIST items omit kind/apiVersion; keep them uniform with GET results.
                item.setdefault("kind", "Pod")
                item.setdefault("apiVersion", "v1")
            return items

        return self._retrying(call, lambda exc: self._list_error(exc, namespace, kwargs))

    def _list_error(self, exc: ApiException, namespace: str, selectors: Mapping[str, Any] | None = None) -> KubedebugError:
        message = _message(exc)[0]
        given = [f"{option} {value!r}" for option, value in (selectors or {}).items() if value]
        if exc.status == 400 and given:
            # The API server parses the selectors (and only it knows which field selectors a pod LIST supports):
            # its 400 says what it could not parse, but in its own words; say which option to fix.
            where = f"in namespace {namespace!r}" if namespace else "cluster-wide"
            return KubedebugError(
                f"the API server refused {' and '.join(given)} listing pods {where}: {message}. Check the selector's syntax "
                "(for example label_selector app.kubernetes.io/name=web,tier!=db or field_selector status.phase=Running)",
                status=400,
            )
        if exc.status == 403:
            scope = f"in namespace {namespace!r}" if namespace else "cluster-wide (all_namespaces)"
            return KubedebugError(
                f"permission denied listing pods {scope}: grant 'list' on 'pods' (see {RBAC_DOC}). API server said: {message}",
                status=403,
            )
        return KubedebugError(
            f"listing pods {('in namespace ' + repr(namespace)) if namespace else 'cluster-wide'} failed with HTTP {exc.status}: {message}",
            status=exc.status,
        )

    def read_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The pod, or None when it is gone: one attempt (``add_ephemeral`` asks it between its own retries)."""
        try:
            return self._json(self.core.read_namespaced_pod, name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise self._refused(exc, lambda e: translate_api_error(e, namespace=namespace, pod=name, container="", verb="get", resource="pods")) from exc

    def read_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        """A pull secret (for the image_pull preflight), or None when it is not there."""
        return self._read_optional(
            lambda: self._json(self.core.read_namespaced_secret, name, namespace),
            lambda exc: self._read_error(exc, f"secret {namespace}/{name}", "get", "secrets", f"in namespace {namespace!r}"),
        )

    def read_node(self, name: str) -> dict[str, Any] | None:
        """A node (for the preflights: its images and memory), or None when it is gone."""
        return self._read_optional(
            lambda: self._json(self.core.read_node, name),
            lambda exc: self._read_error(exc, f"node {name}", "get", "nodes", "cluster-wide (nodes are not namespaced)"),
        )

    def read_namespace(self, name: str) -> dict[str, Any] | None:
        """The namespace (for its PodSecurity labels), or None when it is gone."""
        return self._read_optional(
            lambda: self._json(self.core.read_namespace, name),
            lambda exc: self._read_error(exc, f"namespace {name!r}", "get", "namespaces", "cluster-wide (namespaces are not namespaced)"),
        )

    def read_replica_set(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The ReplicaSet (for its owner, a Deployment), or None when it is gone."""
        return self._read_optional(
            lambda: self._json(self.core.read_namespaced_replica_set, name, namespace),
            lambda exc: self._read_error(exc, f"ReplicaSet {namespace}/{name}", "get", "replicasets (apps)", f"in namespace {namespace!r}"),
        )

    def _read_optional(self, call: Callable[[], dict[str, Any]], translate: Callable[[ApiException], KubedebugError]) -> dict[str, Any] | None:
        """One object read with retries; None for a 404 (a 404 is final, never retried)."""
        try:
            return self._retrying(call, translate, final_statuses=frozenset({404}))
        except KubedebugError as exc:
            if exc.status == 404:
                return None
            raise

    @staticmethod
    def _read_error(exc: ApiException, what: str, verb: str, resource: str, scope: str) -> KubedebugError:
        message = _message(exc)[0]
        if exc.status == 403:
            return KubedebugError(
                f"permission denied reading {what}: grant '{verb}' on '{resource}' {scope} (see {RBAC_DOC}). API server said: {message}",
                status=403,
            )
        return KubedebugError(f"reading {what} failed with HTTP {exc.status}: {message}", status=exc.status)

    # -- logs and events -------------------------------------------------------

    # What the kubelet answers (HTTP 400, passed on by the API server) when a
    # container instance has no log to read.
    NO_PREVIOUS_LOG = "previous terminated container"
    NO_CURRENT_LOG = "is waiting to start"

    def list_events(self, namespace: str, *, field_selector: str | None = "involvedObject.kind=Pod", page_size: int = 500) -> list[dict[str, Any]]:
        """Every core/v1 Event of ``namespace`` that ``field_selector`` matches (by default: the pods' events).

        One LIST, read in pages of ``page_size`` so that a namespace with many
        events never comes as one huge answer.
        """
        kwargs: dict[str, Any] = {"limit": page_size}
        if field_selector:
            kwargs["field_selector"] = field_selector
        events: list[dict[str, Any]] = []
        token = None
        while True:
            data = self._events_page(namespace, kwargs, token)
            events.extend(data.get("items") or [])
            token = (data.get("metadata") or {}).get("continue")
            if not token:
                return events

    def _events_page(self, namespace: str, kwargs: Mapping[str, Any], token: str | None) -> dict[str, Any]:
        page = dict(kwargs, _continue=token) if token else dict(kwargs)
        return self._retrying(
            lambda: self._json(self.core.list_namespaced_event, namespace, **page),
            lambda exc: self._events_error(exc, namespace),
        )

    @staticmethod
    def _events_error(exc: ApiException, namespace: str) -> KubedebugError:
        message = _message(exc)[0]
        if exc.status == 403:
            return KubedebugError(
                f"permission denied listing events in namespace {namespace!r}: grant 'list' on 'events' (see {RBAC_DOC}). API server said: {message}",
                status=403,
            )
        return KubedebugError(f"listing events in namespace {namespace!r} failed with HTTP {exc.status}: {message}", status=exc.status)

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
        """One container's current log, or with ``previous`` the log of its previous (restarted) instance.

        Bounded by ``tail_lines`` and ``limit_bytes`` on the server side, so a
        chatty container cannot exhaust the controller. ``None`` when the kubelet answers that there is no such
        instance to read: 400 "previous terminated container ... not found" for
        ``previous``, 400 "... is waiting to start" for the current one.
        """
        kwargs: dict[str, Any] = {"container": container}
        if previous:
            kwargs["previous"] = True
        if tail_lines is not None:
            kwargs["tail_lines"] = tail_lines
        if limit_bytes is not None:
            kwargs["limit_bytes"] = limit_bytes
        no_instance = self.NO_PREVIOUS_LOG if previous else self.NO_CURRENT_LOG

        def call() -> bytes | None:
            try:
                # The raw response (_preload_content=False), whatever the client's annotation says.
                return self._raw(self.core.read_namespaced_pod_log, pod, namespace, **kwargs)
            except ApiException as exc:
                if exc.status == 400 and no_instance in _message(exc)[0]:
                    return None
                raise

        return self._retrying(
            call,
            lambda exc: translate_api_error(exc, namespace=namespace, pod=pod, container=container, verb="get", resource="pods/log"),
        )

    # -- writing ---------------------------------------------------------------

    def add_ephemeral(self, namespace: str, pod: str, body: Mapping[str, Any], *, name: str, dry_run: bool) -> dict[str, Any]:
        """PATCH pods/ephemeralcontainers; returns the pod as the server answered.

        A retried request never adds the container twice: before each retry the
        pod is read again, and a container that an earlier attempt already added
        ends the loop.
        """
        method = self.core.patch_namespaced_pod_ephemeralcontainers
        kwargs: dict[str, Any] = {"field_validation": "Strict"}
        if _supports_content_type(method):
            kwargs["_content_type"] = SMP
        if dry_run:
            kwargs["dry_run"] = "All"

        def call() -> dict[str, Any]:
            return self._json(method, pod, namespace, dict(body), **kwargs)

        def already_added() -> dict[str, Any] | None:
            if dry_run:
                return None
            try:
                current = self.read_pod(namespace, pod)
            except (KubedebugError, GarbledAnswer, Urllib3HTTPError, OSError):
                return None  # cannot tell yet: the patch is retried, and it is idempotent by name
            names = [c.get("name") for c in ((current or {}).get("spec") or {}).get("ephemeralContainers") or []]
            return current if name in names else None

        def translate(exc: ApiException) -> KubedebugError:
            if exc.status == 409 and precondition:
                return KubedebugError(
                    f"pod {namespace}/{pod}: changed since it was read (resourceVersion {precondition}); "
                    f"ephemeral container {name!r} was not added by this request",
                    status=409,
                )
            return translate_api_error(exc, namespace=namespace, pod=pod, container=name, verb="patch", resource="pods/ephemeralcontainers")

        # A PATCH with a resourceVersion precondition that failed will fail again: the
        # caller reads the pod anew and decides (someone else may have added the container).
        precondition = (body.get("metadata") or {}).get("resourceVersion")
        return self._retrying(
            call,
            translate,
            before_retry=already_added,
            final_statuses=frozenset({409}) if precondition else frozenset(),
        )

    def annotate(self, namespace: str, pod: str, annotations: Mapping[str, str], *, dry_run: bool) -> None:
        """Record audit data in the pod's metadata (never its spec)."""
        body = {"metadata": {"annotations": dict(annotations)}}
        kwargs: dict[str, Any] = {}
        if _supports_content_type(self.core.patch_namespaced_pod):
            kwargs["_content_type"] = SMP
        if dry_run:
            kwargs["dry_run"] = "All"
        self._retrying(
            lambda: self._json(self.core.patch_namespaced_pod, pod, namespace, body, **kwargs),
            lambda exc: translate_api_error(exc, namespace=namespace, pod=pod, container="", verb="patch", resource="pods"),
        )

    def whoami(self) -> str | None:
        """The authenticated user's name (SelfSubjectReview), or None when the API will not say."""
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        try:
            data = self._retrying(
                lambda: self._json(self.core.create_self_subject_review, body),
                lambda exc: KubedebugError(f"SelfSubjectReview failed with HTTP {exc.status}", status=exc.status),
            )
            return ((data.get("status") or {}).get("userInfo") or {}).get("username")
        except (KubedebugError, AttributeError, ValueError, OSError):
            return None

    # -- waiting ---------------------------------------------------------------

    def wait_for_pods(
        self,
        targets: Mapping[str, Iterable[str]],
        done: Callable[[Mapping[str, Any]], bool],
        timeout: float,
        *,
        clock: Callable[[], float] | None = None,
        keep: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None,
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """Wait until ``done(pod)`` holds for every target pod, or the timeout.

        ``targets`` maps a namespace to pod names. One LIST and then one watch per
        namespace, in parallel: never a poll per pod. A watch that is cut, stalls,
        ends early or expires (410 Gone) is followed by a fresh LIST and watch. Returns
        the last pod seen for each target (a pod that vanished maps to ``{}``), whether
        or not it got there, as ``keep(pod)`` when given (what the caller needs of it,
        never empty). Takes at most ``timeout`` plus one request timeout.
        """
        clock = clock or self.clock
        deadline = clock() + timeout
        latest: dict[tuple[str, str], dict[str, Any]] = {}
        lock = threading.Lock()
        errors: list[BaseException] = []

        def watch_namespace(namespace: str, names: set[str]) -> None:
            try:
                self._watch_namespace(namespace, names, done, deadline, clock, latest, lock, keep or dict)
            except BaseException as exc:  # surfaced in the calling thread
                errors.append(exc)

        threads = [threading.Thread(target=watch_namespace, args=(ns, set(names)), daemon=True) for ns, names in targets.items() if names]
        for t in threads:
            t.start()
        for t in threads:
            # A safety net only: every request of the thread ends within its own timeout.
            t.join(max(0.0, deadline - clock()) + 2 * self.request_timeout + self.max_delay)
        if errors:
            exc = errors[0]
            if isinstance(exc, KubedebugError):
                raise exc
            raise KubedebugError(f"waiting for ephemeral containers failed: {exc}") from exc
        return latest

    def _watch_namespace(
        self,
        namespace: str,
        names: set[str],
        done: Callable[[Mapping[str, Any]], bool],
        deadline: float,
        clock: Callable[[], float],
        latest: dict[tuple[str, str], dict[str, Any]],
        lock: threading.Lock,
        keep: Callable[[Mapping[str, Any]], dict[str, Any]],
    ) -> None:
        pending = set(names)

        def record(pod: Mapping[str, Any]) -> None:
            name = (pod.get("metadata") or {}).get("name")
            if name not in names:
                return
            kept = keep(pod)
            with lock:
                latest[(namespace, name)] = kept
            if done(pod):
                pending.discard(name)

        def vanished(name: str) -> None:
            with lock:
                latest[(namespace, name)] = {}
            pending.discard(name)

        def event(kind: str, pod: Mapping[str, Any]) -> bool:
            if kind == "DELETED":
                name = (pod.get("metadata") or {}).get("name")
                if name in pending:
                    vanished(name)
            else:
                record(pod)
            return not pending

        field_selector = name_selector(next(iter(names))) if len(names) == 1 else None
        kwargs = {"field_selector": field_selector} if field_selector else {}
        listed = False
        streak = 0  # watches in a row that ended early: after the first, each waits longer before the next LIST
        while pending and clock() < deadline:
            if listed:
                self.stats.add("watch_restarts")
            listed = True
            listing = self._retrying(
                lambda: self._json(self.core.list_namespaced_pod, namespace, **kwargs),
                lambda exc: self._list_error(exc, namespace),
                deadline=deadline,
                clock=clock,
            )
            seen = set()
            for pod in listing.get("items") or []:
                seen.add((pod.get("metadata") or {}).get("name"))
                record(pod)
            for gone in pending - seen:
                vanished(gone)
            if not pending:
                return
            resource_version = (listing.get("metadata") or {}).get("resourceVersion")
            ended, events, delay = self._watch_once(namespace, kwargs, resource_version, deadline, clock, event)
            if ended == "done":
                return
            streak += 1
            if delay is None and streak > 1:
                delay = self._delay(streak - 2, None)  # the same early end again and again: do not hammer the server
            if delay:
                delay = min(delay, max(0.0, deadline - clock()))
                self.stats.waited(delay)
                self.sleep(delay)

    def _watch_once(
        self,
        namespace: str,
        kwargs: Mapping[str, Any],
        resource_version: str | None,
        deadline: float,
        clock: Callable[[], float],
        event: Callable[[str, Mapping[str, Any]], bool],
    ) -> tuple[str, int, float | None]:
        """One watch request from ``resource_version``: (how it ended, events seen, wait before the next LIST).

        Ends ``done`` (``event`` returned true, or the deadline), ``expired`` (410 Gone:
        the resourceVersion is too old, list afresh), ``closed`` (the server ended it
        early) or ``failed`` (cut, stalled past its read timeout, refused for a while).
        """
        seconds = max(1, math.ceil(deadline - clock()))
        try:
            with self._counted():
                # The raw response (_preload_content=False), whatever the client's annotation says.
                response: Any = self.core.list_namespaced_pod(
                    namespace,
                    watch=True,
                    resource_version=resource_version,
                    timeout_seconds=seconds,
                    allow_watch_bookmarks=True,
                    _preload_content=False,
                    # The API server sends a watch's headers at once: a server that does not is stalled.
                    _request_timeout=self.timeouts,
                    **kwargs,
                )
            # Then silence is normal until the server ends the watch after timeout_seconds: only a
            # read that waits longer than that, plus one request timeout, is a stalled connection.
            _set_read_timeout(response, seconds + self.request_timeout)
        except ApiException as exc:
            if exc.status == 410:
                return "expired", 0, None
            if is_transient(exc):
                return "failed", 0, self._delay(0, retry_after(exc))
            raise self._watch_error(exc, namespace) from exc
        except (Urllib3HTTPError, ConnectionError, TimeoutError, http.client.HTTPException, GarbledAnswer):
            return "failed", 0, self._delay(0, None)
        seen = 0
        try:
            for line in _lines(response):
                try:
                    item = json.loads(line)
                except ValueError:
                    return "failed", seen, self._delay(0, None)
                kind = item.get("type") if isinstance(item, dict) else None
                obj = (item.get("object") if isinstance(item, dict) else None) or {}
                if kind not in WATCH_EVENTS or not isinstance(obj, dict):
                    return "failed", seen, self._delay(0, None)  # not a watch event: whatever answered is not watching
                if kind == "ERROR":
                    # The API server ends a watch whose resourceVersion was compacted with a 410 Status event.
                    return ("expired", seen, None) if obj.get("code") == 410 else ("failed", seen, self._delay(0, None))
                if kind == "BOOKMARK":
                    continue
                seen += 1
                if event(kind, obj) or clock() >= deadline:
                    return "done", seen, None
            return ("done" if clock() >= deadline else "closed"), seen, None
        except (Urllib3HTTPError, ConnectionError, TimeoutError, http.client.HTTPException, GarbledAnswer) as exc:
            if is_timeout(exc):
                self.stats.add("timeouts")
            return "failed", seen, self._delay(0, None)
        finally:
            response.close()
            response.release_conn()

    @staticmethod
    def _watch_error(exc: ApiException, namespace: str) -> KubedebugError:
        message = _message(exc)[0]
        if exc.status == 403:
            return KubedebugError(
                f"permission denied watching pods in namespace {namespace!r}: grant 'watch' on 'pods' (see {RBAC_DOC}). API server said: {message}",
                status=403,
            )
        return KubedebugError(f"watching pods in namespace {namespace!r} failed with HTTP {exc.status}: {message}", status=exc.status)

    # -- retries ---------------------------------------------------------------

    def _delay(self, attempt: int, asked: float | None) -> float:
        """The wait before retry ``attempt`` (0 for the first): never sooner than ``Retry-After``, never more than ``max_delay``.

        Exponential backoff with full jitter on top, so that the many threads of one
        task, throttled together, do not all come back at the same moment.
        """
        spread = float(self.jitter()) * min(self.max_delay, self.backoff * (2**attempt))
        return float(min(self.max_delay, (asked or 0.0) + spread))

    def _retrying(
        self,
        call: Callable[[], T],
        translate: Callable[[ApiException], KubedebugError],
        *,
        before_retry: Callable[[], T | None] | None = None,
        deadline: float | None = None,
        clock: Callable[[], float] | None = None,
        final_statuses: frozenset[int] = frozenset(),
    ) -> T:
        """``call()``, again after a transient failure, until ``retries`` retries, ``retry_budget`` seconds of waiting or ``deadline``."""
        clock = clock or self.clock
        attempt = 0
        waited = 0.0
        throttled = 0
        while True:
            asked = None
            try:
                return call()
            except ApiException as exc:
                # The client reports a TLS failure without urllib3's retries as status 0.
                untrusted = tls_failure(exc, self.server()) if not exc.status else None
                if untrusted is not None:
                    raise untrusted from exc
                if exc.status in final_statuses or not is_transient(exc):
                    raise self._refused(exc, translate) from exc
                throttled += exc.status == 429
                asked = retry_after(exc)
                failure: BaseException = exc
            except (Urllib3HTTPError, ConnectionError, TimeoutError, http.client.HTTPException, GarbledAnswer) as exc:
                # A certificate that does not verify will not verify on the next attempt either.
                untrusted = tls_failure(exc, self.server())
                if untrusted is not None:
                    raise untrusted from exc
                failure = exc
            delay = self._delay(attempt, asked)
            if attempt >= self.retries or waited + delay > self.retry_budget or (deadline is not None and clock() + delay >= deadline):
                if before_retry is not None and not isinstance(failure, ApiException):
                    # The last attempt may have taken effect with its answer lost: look once more.
                    done = before_retry()
                    if done is not None:
                        return done
                raise self._gave_up(failure, translate, attempt + 1, waited, throttled) from failure
            attempt += 1
            waited += delay
            self.stats.waited(delay)
            self.sleep(delay)
            if before_retry is not None:
                done = before_retry()
                if done is not None:
                    return done

    def _gave_up(
        self,
        failure: BaseException,
        translate: Callable[[ApiException], KubedebugError],
        attempts: int,
        waited: float,
        throttled: int,
    ) -> KubedebugError:
        """The error once the retries ran out: how many attempts, the last answer, and what to do."""
        tried = f"gave up after {attempts} attempt{'s' if attempts != 1 else ''} and {waited:.1f}s of waiting"
        if isinstance(failure, ApiException) and failure.status:
            last = translate(failure)
            if failure.status == 429:
                headers = getattr(failure, "headers", None) or {}
                apf = " by API Priority and Fairness" if hasattr(headers, "get") and headers.get(APF_PRIORITY_LEVEL) else ""
                hint = (
                    f"The API server throttled {throttled} of them{apf} (HTTP 429 Too Many Requests): run fewer requests at once "
                    "(a lower parallel), later, or with a higher request_retries; a cluster administrator can check which "
                    "FlowSchema and PriorityLevelConfiguration match this user"
                )
            else:
                hint = "The API server is overloaded or restarting: try again later, or raise request_retries"
            return KubedebugError(f"{last.msg} ({tried}). {hint}.", status=failure.status)
        if isinstance(failure, GarbledAnswer):
            return KubedebugError(
                f"the API server's answer could not be read after {attempts} attempt{'s' if attempts != 1 else ''}: {failure} ({tried}). "
                "Something between here and the API server (a proxy, a load balancer) may be cutting answers short or answering in its place."
            )
        if is_timeout(failure):
            why = f"no answer within request_timeout ({self.request_timeout:g}s)"
        elif isinstance(failure, ApiException):
            why = str(failure.reason).replace("\n", ": ")
        else:
            why = str(failure)
        also = f"; {throttled} of them were throttled (HTTP 429)" if throttled else ""
        return KubedebugError(
            f"the API server could not be reached after {attempts} attempt{'s' if attempts != 1 else ''}: {why} "
            f"({tried}{also}). Check the host or kubeconfig and the network; raise request_timeout for a slow "
            "API server, or request_retries for a flaky connection."
        )


def _set_read_timeout(response: Any, seconds: float) -> None:
    """Give the rest of a streamed answer ``seconds`` per read (urllib3 keeps the connection's socket on the response).

    Without that socket (another urllib3), the request's own read timeout stays: a quiet
    watch then ends early and is listed and watched again, which costs requests, not time.
    """
    sock = getattr(getattr(response, "connection", None), "sock", None)
    if sock is not None:
        sock.settimeout(seconds)


def _lines(response: Any) -> Iterator[bytes]:
    """The lines of a streamed (chunked) answer as they arrive: one watch event each."""
    buffer = b""
    for chunk in response.stream(amt=None, decode_content=False):
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        yield from (line for line in complete if line.strip())
    if buffer.strip():
        yield buffer
