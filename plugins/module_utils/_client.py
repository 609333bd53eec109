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
"""

from __future__ import annotations

import inspect
import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from ansible_collections.kubedebug.ephemeral.plugins.module_utils._errors import KubedebugError

try:
    from kubernetes import client as k8s_client
    from kubernetes import watch as k8s_watch
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError as Urllib3HTTPError
except ImportError:  # reported once by the front ends through _auth.HAS_KUBERNETES
    k8s_client = k8s_watch = None  # type: ignore[assignment,unused-ignore]

    class ApiException(Exception):  # type: ignore[no-redef]
        status: int | None = None
        body: str | None = None
        reason: str | None = None

    class Urllib3HTTPError(Exception):  # type: ignore[no-redef]
        pass


T = TypeVar("T")

SMP = "application/strategic-merge-patch+json"
RETRY_STATUSES = frozenset({409, 429, 500, 502, 503, 504})
RBAC_DOC = "the collection's RBAC guide, docs/docsite/rst/rbac.rst"


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


def name_selector(name: str) -> str:
    """The field selector of the pod named ``name``, escaped as the API server parses it (fields.EscapeValue).

    A name with ``,``, ``=`` or ``\\`` is no pod's name, but unescaped it would be a selector the API server cannot
    parse (HTTP 400) instead of one that matches nothing.
    """
    escaped = name.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")
    return f"metadata.name={escaped}"


def _supports_content_type(method: Callable[..., Any]) -> bool:
    # Clients >= 36 take _content_type; older ones pick strategic merge for a
    # dict body on their own and reject unknown keywords.
    try:
        return "_content_type" in inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False


class EphemeralClient:
    """The calls the module and the lookup need, with retries and translated errors."""

    def __init__(
        self,
        api_client: Any,
        *,
        retries: int = 4,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.api_client = api_client
        self.core = k8s_client.CoreV1Api(api_client)
        self.retries = retries
        self.backoff = backoff
        self.sleep = sleep

    # -- reading ---------------------------------------------------------------

    def _json(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        resp = call(*args, _preload_content=False, **kwargs)
        data: dict[str, Any] = json.loads(resp.data)
        return data

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
        try:
            return self._json(self.core.read_namespaced_pod, name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise translate_api_error(exc, namespace=namespace, pod=name, container="", verb="get", resource="pods") from exc

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
                # _preload_content=False: the raw response, whatever the client's annotation says.
                response: Any = self.core.read_namespaced_pod_log(pod, namespace, _preload_content=False, **kwargs)
                data: bytes = response.data
                return data
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
            except (KubedebugError, Urllib3HTTPError, ConnectionError):
                return None  # cannot tell yet: the patch is retried, and it is idempotent by name
            names = [c.get("name") for c in ((current or {}).get("spec") or {}).get("ephemeralContainers") or []]
            return current if name in names else None

        return self._retrying(
            call,
            lambda exc: translate_api_error(exc, namespace=namespace, pod=pod, container=name, verb="patch", resource="pods/ephemeralcontainers"),
            before_retry=already_added,
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
        try:
            api = k8s_client.AuthenticationV1Api(self.api_client)
            data = self._json(api.create_self_subject_review, {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
            return ((data.get("status") or {}).get("userInfo") or {}).get("username")
        except (ApiException, Urllib3HTTPError, AttributeError, ValueError, OSError):
            return None

    # -- waiting ---------------------------------------------------------------

    def wait_for_pods(
        self,
        targets: Mapping[str, Iterable[str]],
        done: Callable[[Mapping[str, Any]], bool],
        timeout: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """Wait until ``done(pod)`` holds for every target pod, or the timeout.

        ``targets`` maps a namespace to pod names. One LIST and then one watch per
        namespace, in parallel: never a poll per pod. Returns the last pod seen for
        each target (a pod that vanished maps to ``{}``), whether or not it got there.
        """
        deadline = clock() + timeout
        latest: dict[tuple[str, str], dict[str, Any]] = {}
        lock = threading.Lock()
        errors: list[BaseException] = []

        def watch_namespace(namespace: str, names: set[str]) -> None:
            try:
                self._watch_namespace(namespace, names, done, deadline, clock, latest, lock)
            except BaseException as exc:  # surfaced in the calling thread
                errors.append(exc)

        threads = [threading.Thread(target=watch_namespace, args=(ns, set(names)), daemon=True) for ns, names in targets.items() if names]
        for t in threads:
            t.start()
        for t in threads:
            t.join(max(0.0, deadline - clock()) + 30)
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
    ) -> None:
        pending = set(names)

        def record(pod: Mapping[str, Any]) -> None:
            name = (pod.get("metadata") or {}).get("name")
            if name not in names:
                return
            with lock:
                latest[(namespace, name)] = dict(pod)
            if done(pod):
                pending.discard(name)

        def vanished(name: str) -> None:
            with lock:
                latest[(namespace, name)] = {}
            pending.discard(name)

        field_selector = name_selector(next(iter(names))) if len(names) == 1 else None
        kwargs = {"field_selector": field_selector} if field_selector else {}
        while pending and clock() < deadline:
            listing = self._retrying(
                lambda: self._json(self.core.list_namespaced_pod, namespace, **kwargs),
                lambda exc: self._list_error(exc, namespace),
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
            w = k8s_watch.Watch()
            try:
                remaining = max(1, int(deadline - clock()))
                for event in w.stream(
                    self.core.list_namespaced_pod,
                    namespace,
                    resource_version=resource_version,
                    timeout_seconds=remaining,
                    _request_timeout=remaining + 10,
                    **kwargs,
                ):
                    if event.get("type") == "ERROR":
                        break  # e.g. 410 Gone: list again from a fresh resourceVersion
                    pod = event.get("raw_object") or {}
                    if event.get("type") == "DELETED":
                        name = (pod.get("metadata") or {}).get("name")
                        if name in pending:
                            vanished(name)
                    else:
                        record(pod)
                    if not pending or clock() >= deadline:
                        break
            except (ApiException, Urllib3HTTPError, OSError):
                # A dropped watch is not a failure of the wait: list and watch again.
                self.sleep(min(self.backoff, max(0.0, deadline - clock())))
            finally:
                w.stop()

    # -- retries ---------------------------------------------------------------

    def _retrying(
        self,
        call: Callable[[], T],
        translate: Callable[[ApiException], KubedebugError],
        *,
        before_retry: Callable[[], T | None] | None = None,
    ) -> T:
        attempt = 0
        while True:
            try:
                return call()
            except ApiException as exc:
                if exc.status not in RETRY_STATUSES or attempt >= self.retries:
                    raise translate(exc) from exc
                delay = self._retry_after(exc) or self.backoff * (2**attempt)
            except (Urllib3HTTPError, ConnectionError) as exc:
                if attempt >= self.retries:
                    raise KubedebugError(f"the API server could not be reached after {attempt + 1} attempts: {exc}") from exc
                delay = self.backoff * (2**attempt)
            attempt += 1
            self.sleep(min(delay, 10.0))
            if before_retry is not None:
                done = before_retry()
                if done is not None:
                    return done

    @staticmethod
    def _retry_after(exc: ApiException) -> float | None:
        headers = getattr(exc, "headers", None) or {}
        value = headers.get("Retry-After") if hasattr(headers, "get") else None
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None
