"""A small Kubernetes API server on loopback, for the tests of the modules and the lookup.

The front ends run for real: ``EphemeralClient`` over a real ``kubernetes.client.ApiClient``
whose host is this server, so the tests see the exact HTTP requests (method, path, query,
content type, body) whatever the installed client version generates them with. The server
holds pods (recorded ones from fixtures/, see api_objects.py), events and logs, and answers
the calls the collection makes:

* ``GET /api/v1/namespaces/<ns>/pods`` and ``GET /api/v1/pods`` (``fieldSelector=metadata.name=<pod>``
  filters; a label selector is recorded, not evaluated: tests put only matching pods in);
* ``GET .../pods/<pod>``, ``GET .../pods/<pod>/log``, ``GET .../events``;
* ``PATCH .../pods/<pod>/ephemeralcontainers`` (strategic merge of one ephemeral container;
  ``dryRun=All`` answers without storing, like the API server) and ``PATCH .../pods/<pod>``
  (annotations);
* ``POST /apis/authentication.k8s.io/v1/selfsubjectreviews``;
* ``GET /api/v1/nodes/<node>`` (the preflights): a node in ``nodes``, else, while ``default_nodes``
  holds, one with 64Gi allocatable, no pressure and no images; ``GET /api/v1/pods`` honours
  ``fieldSelector=spec.nodeName=<node>``;
* ``GET /api/v1/namespaces/<ns>/secrets/<name>`` from ``secrets``.

``refuse`` makes a request fail with a Status: keyed by ``(method, path)``. After a PATCH
that stores a container, the simulated kubelet reports it in ``kubelet_state`` (running by
default), as KWOK does, so a wait finds it on its first LIST; ``set_state`` changes a
container's state later, as a kubelet would.

Every change gets the next resourceVersion and is kept in ``history``; ``GET ...pods?watch=true``
streams the changes after the given resourceVersion (chunked, one JSON event per line, as the
API server does) until its ``timeoutSeconds``, and answers a resourceVersion older than
``compacted`` with an ERROR event 410 Gone. A PATCH merges ephemeral containers by name, as
the API server does; ``added`` counts, per pod and container, the PATCHes that stored one
(never more than one), ``repeated`` those that sent a container already there again (a no-op).

Imported as ``ansible_collections.kubedebug.ephemeral.tests.unit.fake_apiserver`` (see api_objects.py).
"""

from __future__ import annotations

import copy
import http.server
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from kubernetes import client as k8s_client

from ansible_collections.kubedebug.ephemeral.plugins.module_utils._client import EphemeralClient
from ansible_collections.kubedebug.ephemeral.tests.unit.local_http import serving, without_proxies

RUNNING = {"running": {"startedAt": "2026-11-25T09:30:00Z"}}

_POD = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/pods/(?P<name>[^/]+)(?P<sub>/ephemeralcontainers|/log)?$")
_PODS = re.compile(r"^/api/v1/(?:namespaces/(?P<ns>[^/]+)/)?pods$")
_EVENTS = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/events$")
_NODE = re.compile(r"^/api/v1/nodes/(?P<name>[^/]+)$")
_SECRET = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/secrets/(?P<name>[^/]+)$")
_REVIEWS = "/apis/authentication.k8s.io/v1/selfsubjectreviews"


def is_watch(query: dict[str, list[str]]) -> bool:
    """Whether a query asks for a watch: the client writes ``watch=True`` (Python's bool), which the API server parses as Go's ParseBool does."""
    return (query.get("watch") or [""])[0].lower() in ("true", "1", "t")


def status_body(code: int, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """A Status answer, as the API server writes it."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": HTTPStatus(code).phrase.replace(" ", ""),
        "details": details or {},
        "code": code,
    }


class FakeCluster:
    """What the fake API server stores, and every request it got."""

    # A watch of the fake server never lasts longer, whatever timeoutSeconds asks: a test's
    # server must not keep threads beyond the test.
    MAX_WATCH_SECONDS = 30.0

    def __init__(self) -> None:
        self.revision = 42
        self.compacted = 0
        self.history: list[tuple[int, str, dict[str, Any]]] = []
        self.added: dict[tuple[str, str, str], int] = {}
        self.repeated: dict[tuple[str, str, str], int] = {}
        self.closing = False
        self.pods: dict[tuple[str, str], dict[str, Any]] = {}
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.logs: dict[tuple[str, str, str, bool], bytes] = {}
        self.refuse: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
        self.username: str | None = "jane"
        self.kubelet_state: dict[str, Any] = RUNNING
        self.requests: list[dict[str, Any]] = []
        self.nodes: dict[str, dict[str, Any]] = {}
        self.default_nodes = True
        self.secrets: dict[tuple[str, str], dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)

    def add(self, *pods: dict[str, Any]) -> None:
        for pod in pods:
            meta = pod["metadata"]
            self.pods[(meta["namespace"], meta["name"])] = copy.deepcopy(pod)

    def pod(self, namespace: str, name: str) -> dict[str, Any]:
        return copy.deepcopy(self.pods[(namespace, name)])

    def _store(self, pod: dict[str, Any]) -> None:
        """Keep ``pod`` under the next resourceVersion and wake the watches (the caller holds the lock)."""
        self.revision += 1
        pod["metadata"]["resourceVersion"] = str(self.revision)
        meta = pod["metadata"]
        self.pods[(meta["namespace"], meta["name"])] = pod
        self.history.append((self.revision, "MODIFIED", copy.deepcopy(pod)))
        self.changed.notify_all()

    def set_state(self, namespace: str, name: str, container: str, state: dict[str, Any]) -> None:
        """What a kubelet does: report ephemeral container ``container`` of a pod in ``state`` (a watch sees it)."""
        with self.lock:
            pod = self.pod(namespace, name)
            for status in pod.get("status", {}).get("ephemeralContainerStatuses", []):
                if status["name"] == container:
                    status["state"] = copy.deepcopy(state)
            self._store(pod)

    def watches(self) -> int:
        """How many watches were asked for so far."""
        with self.lock:
            return sum(1 for r in self.requests if is_watch(r["query"]))

    def close(self) -> None:
        """End every open watch (the server is shutting down)."""
        with self.lock:
            self.closing = True
            self.changed.notify_all()

    def calls(self, method: str | None = None) -> list[tuple[str, str, dict[str, list[str]]]]:
        """``(method, path, query)`` of each request (of one method), in the order received."""
        return [(r["method"], r["path"], r["query"]) for r in self.requests if method is None or r["method"] == method]

    # -- answers -------------------------------------------------------------

    def answer(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        if (method, path) in self.refuse:
            return self.refuse[(method, path)]
        if method == "POST" and path == _REVIEWS:
            return 201, {"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1", "status": {"userInfo": {"username": self.username}}}
        if method == "GET" and (m := _PODS.match(path)):
            return 200, self._list(m.group("ns"), query)
        if method == "GET" and (m := _NODE.match(path)):
            node = self.nodes.get(m.group("name"))
            if node is None and self.default_nodes:
                node = {"kind": "Node", "apiVersion": "v1", "metadata": {"name": m.group("name")}, "status": {"allocatable": {"memory": "64Gi"}}}
            if node is None:
                return 404, status_body(404, f'nodes "{m.group("name")}" not found', {"name": m.group("name"), "kind": "nodes"})
            return 200, copy.deepcopy(node)
        if method == "GET" and (m := _SECRET.match(path)):
            secret = self.secrets.get((m.group("ns"), m.group("name")))
            if secret is None:
                return 404, status_body(404, f'secrets "{m.group("name")}" not found', {"name": m.group("name"), "kind": "secrets"})
            return 200, copy.deepcopy(secret)
        if method == "GET" and (m := _EVENTS.match(path)):
            items = copy.deepcopy(self.events.get(m.group("ns"), []))
            return 200, {"kind": "EventList", "apiVersion": "v1", "metadata": {"resourceVersion": "7"}, "items": items}
        m = _POD.match(path)
        if m is None:
            return 404, status_body(404, "the server could not find the requested resource")
        namespace, name, sub = m.group("ns"), m.group("name"), m.group("sub")
        if (namespace, name) not in self.pods:
            return 404, status_body(404, f'pods "{name}" not found', {"name": name, "kind": "pods"})
        if method == "GET" and sub is None:
            return 200, self.pod(namespace, name)
        if method == "GET" and sub == "/log":
            container = query["container"][0]
            previous = query.get("previous") == ["true"]
            data = self.logs.get((namespace, name, container, previous))
            if data is None:
                return 400, status_body(400, f'previous terminated container "{container}" in pod "{name}" not found')
            if "limitBytes" in query:
                data = data[: int(query["limitBytes"][0])]
            return 200, data
        if method == "PATCH" and sub == "/ephemeralcontainers":
            return self._add_ephemeral(namespace, name, body, dry_run=query.get("dryRun") == ["All"])
        if method == "PATCH" and sub is None:
            pod = self.pod(namespace, name)
            pod["metadata"].setdefault("annotations", {}).update(body["metadata"]["annotations"])
            if query.get("dryRun") != ["All"]:
                self._store(pod)
            return 200, copy.deepcopy(pod)
        return 405, status_body(405, f"{method} is not supported here")

    def _list(self, namespace: str | None, query: dict[str, list[str]]) -> dict[str, Any]:
        field = (query.get("fieldSelector") or [""])[0]
        items = []
        for (ns, name), pod in sorted(self.pods.items()):
            if namespace is not None and ns != namespace:
                continue
            if field.startswith("metadata.name=") and name != field.split("=", 1)[1]:
                continue
            if field.startswith("spec.nodeName=") and pod.get("spec", {}).get("nodeName") != field.split("=", 1)[1]:
                continue
            item = copy.deepcopy(pod)
            item.pop("kind", None)
            item.pop("apiVersion", None)
            items.append(item)
        return {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": str(self.revision)}, "items": items}

    def watch_events(self, namespace: str | None, query: dict[str, list[str]], since: int) -> list[tuple[int, str, dict[str, Any]]] | None:
        """The changes after resourceVersion ``since`` that the watch's field selector matches; None once ``since`` is compacted."""
        if since < self.compacted:
            return None
        field = (query.get("fieldSelector") or [""])[0]
        wanted = field.split("=", 1)[1] if field.startswith("metadata.name=") else None
        return [
            (rv, kind, copy.deepcopy(pod))
            for rv, kind, pod in self.history
            if rv > since and (namespace is None or pod["metadata"]["namespace"] == namespace) and (wanted is None or pod["metadata"]["name"] == wanted)
        ]

    def _add_ephemeral(self, namespace: str, name: str, body: dict[str, Any], *, dry_run: bool) -> tuple[int, dict[str, Any]]:
        """A strategic merge by name, as the API server does: a container already there with the same spec is a no-op
        (counted in ``repeated``), with another spec a 422. A resourceVersion in the patch is a precondition (409)."""
        pod = self.pod(namespace, name)
        wanted = (body.get("metadata") or {}).get("resourceVersion")
        if wanted is not None and wanted != pod["metadata"].get("resourceVersion"):
            modified = "the object has been modified; please apply your changes to the latest version and try again"
            return 409, status_body(409, f'Operation cannot be fulfilled on pods "{name}": {modified}')
        spec = pod["spec"]
        existing = {c["name"]: c for c in spec.get("ephemeralContainers", [])}
        new = []
        for container in body["spec"]["ephemeralContainers"]:
            stored = dict(container)
            stored.setdefault("terminationMessagePath", "/dev/termination-log")
            stored.setdefault("resources", {})
            key = (namespace, name, container["name"])
            if container["name"] in existing:
                if existing[container["name"]] != stored:
                    message = (
                        f'Pod "{name}" is invalid: spec.ephemeralContainers: Forbidden: existing ephemeral containers "{container["name"]}" may not be changed'
                    )
                    return 422, status_body(422, message)
                if not dry_run:
                    self.repeated[key] = self.repeated.get(key, 0) + 1
                continue
            spec.setdefault("ephemeralContainers", []).append(stored)
            new.append(container)
        answer = copy.deepcopy(pod)  # as the server answers: no status for the new container yet
        if not dry_run and new:
            for container in new:
                key = (namespace, name, container["name"])
                self.added[key] = self.added.get(key, 0) + 1
                pod.setdefault("status", {}).setdefault("ephemeralContainerStatuses", []).append(
                    {"name": container["name"], "image": container["image"], "ready": False, "restartCount": 0, "state": copy.deepcopy(self.kubelet_state)}
                )
            self._store(pod)
        return 200, answer


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    # Keep-alive and chunked watches, as the API server speaks.
    protocol_version = "HTTP/1.1"

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        body = json.loads(raw) if raw else None
        cluster = self.server.cluster
        with cluster.lock:
            cluster.requests.append({"method": self.command, "path": url.path, "query": query, "content_type": self.headers.get("Content-Type"), "body": body})
            watch = self.command == "GET" and is_watch(query) and (m := _PODS.match(url.path)) is not None
            if not watch:
                status, payload = cluster.answer(self.command, url.path, query, body)
        if watch and m is not None:
            self._watch(cluster, m.group("ns"), query)
            return
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain" if isinstance(payload, bytes) else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _watch(self, cluster: FakeCluster, namespace: str | None, query: dict[str, list[str]]) -> None:
        """Stream the changes after ``resourceVersion`` until ``timeoutSeconds`` (at most MAX_WATCH_SECONDS)."""
        since = int((query.get("resourceVersion") or ["0"])[0] or 0)
        seconds = min(float((query.get("timeoutSeconds") or [cluster.MAX_WATCH_SECONDS])[0]), cluster.MAX_WATCH_SECONDS)
        deadline = time.monotonic() + seconds
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            while True:
                with cluster.lock:
                    events = cluster.watch_events(namespace, query, since)
                    while events == [] and not cluster.closing and (left := deadline - time.monotonic()) > 0:
                        cluster.changed.wait(left)
                        events = cluster.watch_events(namespace, query, since)
                if events is None:
                    gone = status_body(410, f"too old resource version: {since} ({cluster.compacted})")
                    self._chunk(json.dumps({"type": "ERROR", "object": dict(gone, reason="Expired")}).encode() + b"\n")
                    break
                for rv, kind, pod in events:
                    self._chunk(json.dumps({"type": kind, "object": pod}).encode() + b"\n")
                    since = rv
                if not events:
                    break  # the timeout, or the server is closing
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            self.close_connection = True  # the client went away (or a proxy cut it)

    do_GET = do_PATCH = do_POST = _handle

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, cluster: FakeCluster) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.cluster = cluster


class FakeApiServer:
    """The running server: ``cluster`` to set up and inspect, ``client()`` for the front ends."""

    def __init__(self, server: _Server) -> None:
        self.server = server
        self.cluster = server.cluster

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def api_client(self, host: str | None = None) -> k8s_client.ApiClient:
        """An ApiClient for this server (or ``host``, a proxy in front of it), built as _auth.create_api_client builds one."""
        configuration = k8s_client.Configuration()
        configuration.host = host or self.url
        configuration.retries = False  # every retry is EphemeralClient's
        return k8s_client.ApiClient(configuration)

    def client(self) -> EphemeralClient:
        """An EphemeralClient that never sleeps between retries and does not retry (every answer is final)."""
        return EphemeralClient(self.api_client(), retries=0, sleep=lambda seconds: None)


@contextmanager
def fake_apiserver(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeApiServer]:
    without_proxies(monkeypatch)
    with serving(_Server(FakeCluster())) as server:
        try:
            yield FakeApiServer(server)
        finally:
            server.cluster.close()
