# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every front end through the fault proxy (tests/faultproxy.py) in front of the fake API server.

Four front ends (the ephemeral_container module adding and waiting, the
ephemeral_container_info module, the ephemeral_results lookup, the pod_snapshot_info
module), each run for real through its ``main()`` or the lookup loader, with its
connection options (a kubeconfig that points at the proxy, ``request_timeout``,
``request_retries``) going through the same code as in a play. Each fault is bounded;
each run must come back with everything collected (or, when the retries run out, with a
message that says so), its ``api`` counts must show what the fault cost, and no pod may
get a container twice. Nothing here measures wall time: that a call cannot hang is shown
by the number of timeouts and attempts the client reports, each bounded by request_timeout.

Waits between retries are recorded rather than slept (the client's ``sleep``), so
``backoff_seconds`` is what a real run would have waited; request timeouts are real.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ansible.errors import AnsibleLookupError
from ansible.plugins.loader import lookup_loader

from ansible_collections.kubedebug.ephemeral.plugins.module_utils import _module
from ansible_collections.kubedebug.ephemeral.plugins.modules import ephemeral_container, ephemeral_container_info, pod_snapshot_info
from ansible_collections.kubedebug.ephemeral.plugins.plugin_utils._lookup import KubedebugLookupBase
from ansible_collections.kubedebug.ephemeral.tests.faultproxy import Fault, FaultProxy
from ansible_collections.kubedebug.ephemeral.tests.sizes import size
from ansible_collections.kubedebug.ephemeral.tests.unit.api_objects import load_pod
from ansible_collections.kubedebug.ephemeral.tests.unit.fake_apiserver import RUNNING, FakeApiServer

NS = "unit-faults"
BUSYBOX = "docker.io/library/busybox:1.36"
WAITING = {"waiting": {"reason": "ContainerCreating"}}
LOG = b'{"ok": true}\n'
# Taken before any test patches them: the fixtures wrap the real ones.
MODULE_CLIENT = _module.module_client
LOOKUP_CLIENT = KubedebugLookupBase.client
# Far above what the fake server needs even on a loaded machine, so that only the injected faults time out.
REQUEST_TIMEOUT = 2.0
RETRIES = 6
PATCH = r"/ephemeralcontainers$"
FRONT_ENDS = ("add", "info", "lookup", "snapshot")


def pod_names() -> list[str]:
    count = size(4, 40)
    print(f"fault tests: {count} pods")  # which size ran (make stress: full)
    return [f"web-{i}" for i in range(count)]


def web_pod(name: str, *, with_debug: bool) -> dict[str, Any]:
    pod = load_pod("plain")
    pod["metadata"].update(name=name, namespace=NS, uid=f"uid-{name}")
    if with_debug:
        pod["spec"]["ephemeralContainers"] = [{"name": "debug", "image": BUSYBOX, "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"}]
        pod["status"]["ephemeralContainerStatuses"] = [{"name": "debug", "image": BUSYBOX, "ready": False, "restartCount": 0, "state": copy.deepcopy(WAITING)}]
    return pod


def kubeconfig(url: str) -> dict[str, Any]:
    """A kubeconfig whose only cluster is ``url``: the connection options go the way a play's do."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "proxied", "cluster": {"server": url}}],
        "users": [{"name": "anyone", "user": {}}],
        "contexts": [{"name": "proxied", "context": {"cluster": "proxied", "user": "anyone"}}],
        "current-context": "proxied",
    }


class Kubelet:
    """Reports the debug containers running once a watch reached the server, as a kubelet would after a while.

    So every front end that waits has to watch, and a fault that cuts or expires the
    watch is met on the way. Stops by itself after ``seconds``.
    """

    def __init__(self, apiserver: FakeApiServer, pods: list[str], seconds: float = 30.0) -> None:
        self.cluster = apiserver.cluster
        self.pods = pods
        self.seconds = seconds
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        for _tick in range(int(self.seconds / 0.02)):
            if self.stopped.wait(0.02):
                return
            if self.cluster.watches() and all(self._has_debug(p) for p in self.pods):
                for pod in self.pods:
                    self.cluster.set_state(NS, pod, "debug", RUNNING)
                return

    def _has_debug(self, pod: str) -> bool:
        with self.cluster.lock:
            statuses = self.cluster.pods[(NS, pod)].get("status", {}).get("ephemeralContainerStatuses", [])
        return any(s["name"] == "debug" for s in statuses)

    def __enter__(self) -> Kubelet:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(5)


@pytest.fixture
def recorded_sleeps(run_module: Any, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every client the front ends build records its waits instead of sleeping them; jitter is fixed at 0.5.

    After ``run_module`` (which points module clients at the fake server directly): the real
    client, built from the module's own options, is the one that must go through the proxy.
    """
    sleeps: list[float] = []

    def tuned(client: Any) -> Any:
        client.sleep = sleeps.append
        client.jitter = lambda: 0.5
        return client

    monkeypatch.setattr(_module, "module_client", lambda module: tuned(MODULE_CLIENT(module)))
    monkeypatch.setattr(KubedebugLookupBase, "client", lambda self: tuned(LOOKUP_CLIENT(self)))
    return sleeps


@pytest.fixture
def proxy_for(apiserver: FakeApiServer) -> Iterator[Callable[..., FaultProxy]]:
    proxies: list[FaultProxy] = []

    def start(*faults: Fault) -> FaultProxy:
        proxy = FaultProxy(("127.0.0.1", apiserver.server.server_address[1]), faults=list(faults), lifetime=60).start()
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        proxy.stop()


def run_front_end(front_end: str, run_module: Any, proxy: FaultProxy, pods: list[str], **connection: Any) -> dict[str, Any]:
    """Run one front end through ``proxy``: ``{"ok", "msg", "api", "records"}``, whatever the front end's shape."""
    options = {"kubeconfig": kubeconfig(proxy.url), "request_timeout": REQUEST_TIMEOUT, "request_retries": RETRIES, **connection}
    if front_end == "lookup":
        lookup = lookup_loader.get("kubedebug.ephemeral.ephemeral_results")
        try:
            records = lookup.run([f"{NS}/{p}" for p in pods], variables={}, container="debug", wait_for="running", wait_timeout=20, **options)
        except AnsibleLookupError as exc:
            return {"ok": False, "msg": str(exc), "api": None, "records": []}
        return {"ok": True, "msg": None, "api": records[0]["api"] if records else None, "records": records}
    if front_end == "add":
        main = ephemeral_container.main
        args = {"namespace": NS, "pod": pods, "container": "debug", "image": BUSYBOX, "wait": "running", "wait_timeout": 20}
    elif front_end == "info":
        main = ephemeral_container_info.main
        args = {"namespace": NS, "pod": pods, "container": "debug", "wait_for": "running", "wait_timeout": 20, "logs": True}
    else:
        main = pod_snapshot_info.main
        args = {"namespace": NS, "pod": pods}
    result = run_module(main, {**args, **options})
    return {"ok": result["rc"] == 0, "msg": result.get("msg"), "api": result.get("api"), "records": result.get("pods", [])}


def set_up(apiserver: FakeApiServer, front_end: str, pods: list[str]) -> None:
    cluster = apiserver.cluster
    cluster.kubelet_state = WAITING  # what the kubelet first says about a new container
    cluster.add(*(web_pod(p, with_debug=front_end in ("info", "lookup")) for p in pods))
    for pod in pods:
        cluster.logs[(NS, pod, "debug", False)] = LOG
        cluster.logs[(NS, pod, "app", False)] = b"listening on :8080\n"


def assert_collected(apiserver: FakeApiServer, front_end: str, pods: list[str], outcome: dict[str, Any]) -> None:
    """Everything there, nothing twice."""
    assert outcome["ok"], outcome["msg"]
    records = outcome["records"]
    assert sorted(r["pod"] for r in records) == sorted(pods)
    if front_end == "add":
        assert {r["action"] for r in records} == {"added"}
        assert {r["state"]["status"] for r in records} == {"running"}
    elif front_end in ("info", "lookup"):
        assert {(r["state"], r["logs"], r["error"]) for r in records} == {("running", LOG.decode(), None)}
    else:
        assert {(r["logs"]["app"]["current"], r.get("error")) for r in records} == {("listening on :8080\n", None)}
    assert_no_duplicates(apiserver, pods)


def assert_no_duplicates(apiserver: FakeApiServer, pods: list[str]) -> None:
    cluster = apiserver.cluster
    duplicates = {key: n for key, n in cluster.added.items() if n > 1}
    assert duplicates == {}, f"containers added more than once: {duplicates}"
    if cluster.repeated:
        # Sent again because the re-read after a lost answer failed too: a no-op by name, as on the API server.
        print(f"PATCHes that repeated a container already there: {sum(cluster.repeated.values())}")
    for pod in pods:
        names = [c["name"] for c in cluster.pods[(NS, pod)]["spec"].get("ephemeralContainers", [])]
        assert names.count("debug") <= 1, (pod, names)


# (fault, the front ends it applies to, what the client must report at least; ``throttled`` exactly: only the proxy throttles).
FAULTS: dict[str, tuple[Callable[[], Fault], tuple[str, ...], dict[str, int]]] = {
    "reset": (lambda: Fault("reset", times=2), FRONT_ENDS, {"retries": 2}),
    "reset_after_patch": (lambda: Fault("reset", times=2, method="PATCH", path=PATCH, after=True), ("add",), {"retries": 2}),
    "reset_after_log": (lambda: Fault("reset", times=2, path=r"/log$", after=True), ("info", "lookup", "snapshot"), {"retries": 2}),
    "stall": (lambda: Fault("stall", times=2, seconds=5), FRONT_ENDS, {"retries": 2, "timeouts": 2}),
    "stall_after_patch": (lambda: Fault("stall", times=1, method="PATCH", path=PATCH, after=True, seconds=5), ("add",), {"retries": 1, "timeouts": 1}),
    "latency": (lambda: Fault("latency", times=2, seconds=5), FRONT_ENDS, {"retries": 2, "timeouts": 2}),
    "truncate": (lambda: Fault("truncate", times=2), FRONT_ENDS, {"retries": 2}),
    "throttle_429": (lambda: Fault("throttle", times=3, seconds=1, apf=True), FRONT_ENDS, {"retries": 3, "throttled": 3}),
    "throttle_429_patch": (lambda: Fault("throttle", times=3, seconds=1, method="PATCH", path=PATCH), ("add",), {"retries": 3, "throttled": 3}),
    "throttle_503": (lambda: Fault("throttle", times=2, seconds=1, status=503), FRONT_ENDS, {"retries": 2, "throttled": 0}),
    "watch_cut": (lambda: Fault("watch_cut", times=1, events=1), ("add", "info", "lookup"), {"watch_restarts": 1}),
    # A watch whose headers never come: over after one request timeout, not at the end of the wait.
    "watch_stall": (lambda: Fault("stall", times=1, watch=True, seconds=30), ("add", "info", "lookup"), {"timeouts": 1, "watch_restarts": 1}),
    "watch_gone": (lambda: Fault("watch_gone", times=2), ("add", "info", "lookup"), {"watch_restarts": 2}),
}
CASES = [(fault, front_end) for fault, (_make, front_ends, _expected) in FAULTS.items() for front_end in front_ends]


@pytest.mark.stress
@pytest.mark.parametrize(("fault", "front_end"), CASES, ids=[f"{f}-{e}" for f, e in CASES])
def test_each_front_end_gets_through_each_fault(
    fault: str, front_end: str, apiserver: FakeApiServer, run_module: Any, recorded_sleeps: list[float], proxy_for: Callable[..., FaultProxy]
) -> None:
    make, _front_ends, expected = FAULTS[fault]
    pods = pod_names()
    set_up(apiserver, front_end, pods)
    injected = make()
    proxy = proxy_for(injected)
    with Kubelet(apiserver, pods):
        outcome = run_front_end(front_end, run_module, proxy, pods)
    assert proxy.applied() == injected.times, f"the fault did not happen as often as it was asked to: {outcome}"
    assert_collected(apiserver, front_end, pods, outcome)
    api = outcome["api"]
    print(f"{fault} x {front_end}: api={api}, fault applied {proxy.applied()}x, waits {recorded_sleeps}")
    for count, least in expected.items():
        assert api[count] >= least, (count, api)
    assert api["throttled"] == expected.get("throttled", 0)
    # Every retry waited, and after a 429 never less than its Retry-After asked.
    assert len(recorded_sleeps) == api["retries"]
    assert sum(1 for s in recorded_sleeps if s >= 1) >= api["throttled"]
    assert api["backoff_seconds"] == pytest.approx(sum(recorded_sleeps), abs=0.01)


@pytest.mark.stress
@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_a_fault_free_run_needs_no_retry(
    front_end: str, apiserver: FakeApiServer, run_module: Any, recorded_sleeps: list[float], proxy_for: Callable[..., FaultProxy]
) -> None:
    """The baseline of the fault tests: the same run through the proxy, with nothing injected."""
    pods = pod_names()
    set_up(apiserver, front_end, pods)
    proxy = proxy_for()
    with Kubelet(apiserver, pods):
        outcome = run_front_end(front_end, run_module, proxy, pods)
    assert_collected(apiserver, front_end, pods, outcome)
    assert {k: outcome["api"][k] for k in ("retries", "throttled", "timeouts", "watch_restarts")} == dict.fromkeys(
        ("retries", "throttled", "timeouts", "watch_restarts"), 0
    )
    assert outcome["api"]["requests"] == len(proxy.requests())  # every request counted, and only those
    assert recorded_sleeps == []


@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_throttled_beyond_the_retries_fails_saying_so(
    front_end: str, apiserver: FakeApiServer, run_module: Any, recorded_sleeps: list[float], proxy_for: Callable[..., FaultProxy]
) -> None:
    pods = pod_names()[:2]
    set_up(apiserver, front_end, pods)
    # Every request is throttled, for longer than the retries last.
    proxy = proxy_for(Fault("throttle", times=1000, seconds=1, apf=True))
    outcome = run_front_end(front_end, run_module, proxy, pods, request_retries=3)
    assert not outcome["ok"]
    assert "(gave up after 4 attempts and " in outcome["msg"]
    assert "HTTP 429" in outcome["msg"]
    assert "The API server throttled 4 of them by API Priority and Fairness (HTTP 429 Too Many Requests): run fewer requests at once" in outcome["msg"]
    assert "FlowSchema and PriorityLevelConfiguration" in outcome["msg"]
    # Each request tried 4 times, never more (urllib3 retries nothing of its own): the pod LIST, and for the
    # snapshot also the events LIST, which it still tries when the pods could not be listed.
    requests = 4 * (2 if front_end == "snapshot" else 1)
    assert len(proxy.requests()) == requests
    if outcome["api"] is not None:  # a lookup raises: its message is all a play sees
        assert (outcome["api"]["throttled"], outcome["api"]["retries"], outcome["api"]["requests"]) == (requests, requests * 3 // 4, requests)
    assert recorded_sleeps == [1.25, 1.5, 2.0] * (requests // 4)  # Retry-After 1, plus jitter 0.5 of 0.5, 1, 2
    assert_no_duplicates(apiserver, pods)


@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_a_dead_api_server_fails_within_the_timeouts(
    front_end: str, apiserver: FakeApiServer, run_module: Any, recorded_sleeps: list[float], proxy_for: Callable[..., FaultProxy]
) -> None:
    pods = pod_names()[:2]
    set_up(apiserver, front_end, pods)
    proxy = proxy_for(Fault("stall", times=1000, seconds=30))  # accepts, never answers
    outcome = run_front_end(front_end, run_module, proxy, pods, request_retries=1)
    assert not outcome["ok"]
    assert f"the API server could not be reached after 2 attempts: no answer within request_timeout ({REQUEST_TIMEOUT:g}s)" in outcome["msg"]
    assert "raise request_timeout for a slow API server" in outcome["msg"]
    requests = 2 * (2 if front_end == "snapshot" else 1)
    assert len(proxy.requests()) == requests
    if outcome["api"] is not None:
        assert (outcome["api"]["timeouts"], outcome["api"]["retries"]) == (requests, requests // 2)


def test_a_patch_whose_answer_was_lost_is_not_sent_again(
    apiserver: FakeApiServer, run_module: Any, recorded_sleeps: list[float], proxy_for: Callable[..., FaultProxy]
) -> None:
    """The PATCH reached the server and added the container; its answer was reset. The retry reads the pod first."""
    pods = pod_names()
    set_up(apiserver, "add", pods)
    apiserver.cluster.kubelet_state = RUNNING
    proxy = proxy_for(Fault("reset", times=len(pods), method="PATCH", path=PATCH, after=True))
    # A re-read that itself timed out would (rightly) send the PATCH again: give this test's reads ample time.
    outcome = run_front_end("add", run_module, proxy, pods, request_timeout=10)
    assert outcome["ok"], outcome["msg"]
    assert {r["action"] for r in outcome["records"]} == {"added"}
    assert apiserver.cluster.added == {(NS, p, "debug"): 1 for p in pods}
    assert apiserver.cluster.repeated == {}
    assert len(proxy.requests("PATCH", PATCH)) == len(pods)  # each pod patched once; the re-read found the container
    assert len(proxy.requests("GET", r"/pods/web-\d+$")) == len(pods)


def test_the_proxy_refuses_to_forward_off_loopback() -> None:
    with pytest.raises(ValueError, match="only forwards to loopback"):
        FaultProxy(("192.0.2.1", 443))
    with pytest.raises(ValueError, match="not possible in tcp mode"):
        FaultProxy(("127.0.0.1", 1), mode="tcp", faults=[Fault("throttle")])
