"""Faults of the control plane itself, races between runs, and API Priority and Fairness throttling.

These tests kill and restart kube-apiserver and etcd, so they run against a cluster of
their own (``KD_CLUSTER=kd-faults``): the real API server and etcd, KWOK nodes only (no
real node: what is tested is the client side and the control plane; no container
needs to run) and API Priority and Fairness turned on (``KD_APF=1``), which the shared
test cluster turns off. The cluster is started once for this module and stopped at its
end (unless KD_KEEP_CLUSTER=1 or it was already up).

Sizes: ``make test`` runs small fleets, ``make stress`` (KD_STRESS=1) the issue's sizes
(tests/sizes.py). Every test prints one ``FAULTS {...}`` line with its figures, which the
closing note of the reliability issue quotes.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from ansible_collections.kubedebug.ephemeral.tests.sizes import size

from kubehelpers import Cluster, run_lookup, run_task, service_account_auth, wait_for

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_SH = ROOT / "hack" / "cluster.sh"
NAME = "kd-faults"
IMAGE = "docker.io/library/busybox:1.36"
# 12 KWOK nodes of 110 pods each hold the 1,000-pod fleet of make stress.
ENV = {"KD_CLUSTER": NAME, "KD_REAL_NODE": "0", "KD_NODES": "12", "KD_APF": "1"}

pytestmark = [
    pytest.mark.stress,
    pytest.mark.skipif(
        os.environ.get("KD_FAULTS_CLUSTER") == "0",
        reason="KD_FAULTS_CLUSTER=0: make test runs the fault cluster's tests once, with the first controller (hack/test.sh)",
    ),
]


def _cluster_sh(action: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(CLUSTER_SH), action], capture_output=True, text=True, check=False, env={**os.environ, **ENV}, timeout=900)


def report(test: str, **figures: Any) -> None:
    print("FAULTS " + json.dumps({"test": test, **figures}, sort_keys=True))


@dataclass
class Component:
    """One control plane process that kwokctl started: stopped and started again as a crash and a restart would."""

    workdir: Path
    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: str

    @classmethod
    def running(cls, workdir: Path, name: str) -> Component:
        """The component as it runs now: its command line, environment and directory, to start it again as it was."""
        pid = int((workdir / "pids" / f"{name}.pid").read_text().strip())
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        env_items = Path(f"/proc/{pid}/environ").read_bytes().rstrip(b"\0").split(b"\0")
        env = dict(item.decode().split("=", 1) for item in env_items if b"=" in item)
        return cls(workdir, name, [a.decode() for a in argv], env, os.readlink(f"/proc/{pid}/cwd"))

    @property
    def pidfile(self) -> Path:
        return self.workdir / "pids" / f"{self.name}.pid"

    def pid(self) -> int:
        return int(self.pidfile.read_text().strip())

    def alive(self) -> bool:
        pid = self.pid()
        return Path(f"/proc/{pid}").exists() and not _zombie(pid)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        pid = self.pid()
        os.kill(pid, sig)
        wait_for(f"{self.name} (pid {pid}) to exit", lambda: not self.alive(), timeout=30)

    def start(self) -> None:
        log = open(self.workdir / "logs" / f"{self.name}.log", "ab")  # noqa: SIM115 (the process owns it)
        proc = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        # hack/cluster.sh down stops what the pid files name: the restarted process must be in them.
        self.pidfile.write_text(f"{proc.pid}\n")


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return True


COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok-controller")


@dataclass
class FaultCluster:
    cluster: Cluster
    workdir: Path
    components: dict[str, Component]

    def ready(self) -> bool:
        return self.cluster.kubectl_run("get", "--raw", "/readyz", check=False).returncode == 0

    def revive(self) -> list[str]:
        """Start again what an outage ended, as its supervisor (kubelet, systemd) would.

        kube-controller-manager and kube-scheduler exit on purpose when they cannot renew
        their leader lease during an API server or etcd outage.
        """
        revived = [c.name for c in self.components.values() if not c.alive()]
        for name in revived:
            self.components[name].start()
        return revived


@pytest.fixture(scope="module")
def faults() -> Iterator[FaultCluster]:
    was_up = _cluster_sh("status").returncode == 0
    up = _cluster_sh("up")
    if up.returncode != 0:
        pytest.fail(f"hack/cluster.sh up (KD_CLUSTER={NAME}) failed ({up.returncode}):\n{up.stderr[-4000:]}")
    kubeconfig = up.stdout.strip().splitlines()[-1].split("=", 1)[1]
    api = config.new_client_from_config(config_file=kubeconfig)
    kubectl = os.environ.get("KD_BIN", str(ROOT / ".cache" / "bin")) + "/kubectl"
    try:
        workdir = Path(kubeconfig).parent
        components = {name: Component.running(workdir, name) for name in COMPONENTS}
        yield FaultCluster(Cluster(kubeconfig=kubeconfig, kubectl=kubectl, api_client=api), workdir, components)
    finally:
        api.close()
        if not was_up and os.environ.get("KD_KEEP_CLUSTER") != "1":
            _cluster_sh("down")


def make_fleet(fc: FaultCluster, n: int) -> str:
    """A namespace with ``n`` Running pods (label app=fleet) on the KWOK nodes."""
    fc.revive()
    cluster = fc.cluster
    ns = f"kd-faults-{uuid.uuid4().hex[:8]}"
    cluster.core.create_namespace({"metadata": {"name": ns}})
    wait_for(f"ServiceAccount default in {ns}", lambda: cluster.core.list_namespaced_service_account(ns).items)
    pods = [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"web-{i:04d}", "labels": {"app": "fleet"}},
            "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}], "nodeSelector": {"type": "kwok"}},
        }
        for i in range(n)
    ]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": pods}, f)
        f.flush()
        cluster.kubectl_run("create", "-n", ns, "-f", f.name)
    wait_for(
        f"{n} pods Running in {ns}",
        lambda: sum(p.status.phase == "Running" for p in cluster.core.list_namespaced_pod(ns).items) == n,
        timeout=600,
        interval=2,
    )
    return ns


def ephemeral_names(fc: FaultCluster, ns: str) -> dict[str, list[str]]:
    """Every pod of ``ns`` and the names of its ephemeral containers, read from the API server."""
    raw = fc.cluster.core.list_namespaced_pod(ns, _preload_content=False)
    return {p["metadata"]["name"]: [c["name"] for c in p["spec"].get("ephemeralContainers") or []] for p in json.loads(raw.data)["items"]}


def add_task(fc: FaultCluster, ns: str, container: str, **extra: Any) -> dict[str, Any]:
    return {
        "kubeconfig": fc.cluster.kubeconfig,
        "namespace": ns,
        "label_selector": "app=fleet",
        "container": container,
        "image": IMAGE,
        "command": ["sleep", "3600"],
        "wait": "running",
        "wait_timeout": 300,
        "parallel": 10,
        **extra,
    }


def in_background(call: Callable[[], dict[str, Any]]) -> tuple[threading.Thread, list[dict[str, Any]]]:
    out: list[dict[str, Any]] = []
    thread = threading.Thread(target=lambda: out.append(call()), daemon=True)
    thread.start()
    return thread, out


def assert_converged(fc: FaultCluster, ns: str, n: int, container: str) -> dict[str, int]:
    """Every pod has exactly one container of that name: none missed, none duplicated."""
    names = ephemeral_names(fc, ns)
    assert len(names) == n
    missed = [p for p, cs in names.items() if container not in cs]
    duplicated = [p for p, cs in names.items() if cs.count(container) > 1]
    assert missed == [] and duplicated == [], f"missed: {missed[:5]}, duplicated: {duplicated[:5]}"
    return {"missed": len(missed), "duplicated": len(duplicated)}


def no_traceback(result: dict[str, Any]) -> None:
    assert "Traceback" not in result["_stdout"], result["_stdout"][-3000:]
    assert "MODULE FAILURE" not in result["_stdout"], result["_stdout"][-3000:]


def actions(result: dict[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in result.get("pods") or []:
        counts[r["action"]] = counts.get(r["action"], 0) + 1
    return counts


def outage_then_rerun(fc: FaultCluster, tmp_path: Path, name: str, container: str, outage: Callable[[], float]) -> None:
    """Start a fleet task, cause ``outage`` once some containers are in, then rerun the task: it must converge."""
    n = size(100, 1000)
    ns = make_fleet(fc, n)
    first_dir, rerun_dir = tmp_path / "first", tmp_path / "rerun"
    first_dir.mkdir()
    rerun_dir.mkdir()
    args = add_task(fc, ns, container)
    started = time.monotonic()
    # Two PATCHes at a time stretch the adding over seconds, so that the fault strikes while
    # containers are being added (not only while the task waits for them to run).
    thread, out = in_background(lambda: run_task(first_dir, "kubedebug.ephemeral.ephemeral_container", dict(args, parallel=2)))
    at_fault: list[int] = []

    def some_added() -> bool:
        at_fault[:] = [sum(container in cs for cs in ephemeral_names(fc, ns).values())]
        return not thread.is_alive() or at_fault[0] >= n // 10

    wait_for(f"a tenth of {n} pods to get {container}", some_added, timeout=600, interval=0.1)
    assert thread.is_alive(), "the task ended before the fault could strike: make the fleet bigger"
    assert at_fault[0] < n, "every container was in before the fault: it did not strike mid-task"
    down_seconds = outage()
    thread.join(900)
    # Components that gave up their leader lease during the outage (the task does not need them).
    revived = fc.revive()
    assert not thread.is_alive(), "the task did not end"
    first = out[0]
    first_seconds = time.monotonic() - started
    no_traceback(first)
    if first.get("failed"):
        # A clear error: which pods, and why (never a traceback, never "MODULE FAILURE").
        assert "pod(s) failed" in first["msg"] or "API server" in first["msg"], first["msg"]
    rerun = run_task(rerun_dir, "kubedebug.ephemeral.ephemeral_container", args)
    no_traceback(rerun)
    assert not rerun.get("failed"), rerun.get("msg")
    figures = assert_converged(fc, ns, n, container)
    # A pod the first run says it added is never added again by the rerun.
    added_first = {r["pod"] for r in first.get("pods") or [] if r["action"] == "added"}
    added_rerun = {r["pod"] for r in rerun["pods"] if r["action"] == "added"}
    assert added_first.isdisjoint(added_rerun)
    assert len(added_first | added_rerun) + sum(1 for r in rerun["pods"] if r["action"] == "unchanged" and r["pod"] not in added_first) >= n
    report(
        name,
        pods=n,
        outage_seconds=round(down_seconds, 1),
        containers_in_when_it_struck=at_fault[0],
        revived_after=revived,
        first_run={"failed": bool(first.get("failed")), "seconds": round(first_seconds, 1), **actions(first), "api": first.get("api")},
        rerun={**actions(rerun), "api": rerun.get("api")},
        **figures,
        first_msg=(first.get("msg") or "")[:300],
    )
    fc.cluster.core.delete_namespace(ns)


def outage_of(fc: FaultCluster, name: str, sig: int, seconds: float) -> Callable[[], float]:
    """Stop component ``name`` with ``sig``, start it again ``seconds`` later; returns how long the API was not ready."""

    def outage() -> float:
        component = fc.components[name]
        start = time.monotonic()
        component.kill(sig)
        time.sleep(seconds)
        component.start()
        wait_for(f"the API server to be ready again after {name} came back", fc.ready, timeout=120, interval=0.5)
        return time.monotonic() - start

    return outage


def test_apiserver_killed_mid_fleet_task_then_rerun_converges(faults: FaultCluster, tmp_path: Path) -> None:
    # A crash: SIGKILL, and its supervisor starts it again 2 s later.
    outage_then_rerun(faults, tmp_path, "apiserver killed", "dbg-kill", outage_of(faults, "kube-apiserver", signal.SIGKILL, 2))


def test_etcd_stopped_for_20s_mid_fleet_task_then_rerun_converges(faults: FaultCluster, tmp_path: Path) -> None:
    outage_then_rerun(faults, tmp_path, "etcd stopped 20 s", "dbg-etcd", outage_of(faults, "etcd", signal.SIGTERM, 20))


def test_two_runs_adding_the_same_container_at_once(faults: FaultCluster, tmp_path: Path) -> None:
    n = size(50, 200)
    ns = make_fleet(faults, n)
    dirs = [tmp_path / "a", tmp_path / "b"]
    for d in dirs:
        d.mkdir()
    args = add_task(faults, ns, "dbg-race")
    runs = [in_background(lambda d=d: run_task(d, "kubedebug.ephemeral.ephemeral_container", args)) for d in dirs]
    for thread, _out in runs:
        thread.join(900)
    a, b = (out[0] for _thread, out in runs)
    for r in (a, b):
        no_traceback(r)
        assert not r.get("failed"), r.get("msg")
    by_pod_a = {r["pod"]: r for r in a["pods"]}
    by_pod_b = {r["pod"]: r for r in b["pods"]}
    assert set(by_pod_a) == set(by_pod_b) and len(by_pod_a) == n
    # Exactly one run added each pod's container; the other says it was already there.
    pairs: dict[str, int] = {}
    for pod in by_pod_a:
        pair = tuple(sorted((by_pod_a[pod]["action"], by_pod_b[pod]["action"])))
        assert pair == ("added", "unchanged"), f"{pod}: {by_pod_a[pod]} / {by_pod_b[pod]}"
        assert by_pod_a[pod]["changed"] != by_pod_b[pod]["changed"]
        lost_race = by_pod_a[pod] if by_pod_a[pod]["action"] == "unchanged" else by_pod_b[pod]
        key = "lost the race (409, read again)" if "another run" in lost_race["msg"] else "saw it already there"
        pairs[key] = pairs.get(key, 0) + 1
    figures = assert_converged(faults, ns, n, "dbg-race")
    report("two runs at once", pods=n, added={"a": actions(a).get("added", 0), "b": actions(b).get("added", 0)}, unchanged_because=pairs, **figures)
    faults.cluster.core.delete_namespace(ns)


# --------------------------------------------------------------------------- API Priority and Fairness

THROTTLE_LEVEL = "kd-throttle"


def rejected_total(fc: FaultCluster) -> float:
    """What the API server counts as rejected (429) by our priority level: the evidence independent of our client."""
    metrics = fc.cluster.kubectl_run("get", "--raw", "/metrics").stdout
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith("apiserver_flowcontrol_rejected_requests_total{") and f'priority_level="{THROTTLE_LEVEL}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture
def throttled_user(faults: FaultCluster, tmp_path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """A namespace and a ServiceAccount whose every request goes to a priority level of one seat that rejects."""
    n = size(40, 200)
    ns = make_fleet(faults, n)
    auth = service_account_auth(faults.cluster, ns, "throttled", tmp_path)
    rbac = client.RbacAuthorizationV1Api(faults.cluster.api_client)
    rbac.create_namespaced_role(
        ns,
        {
            "metadata": {"name": "debugger"},
            "rules": [
                {"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": [""], "resources": ["pods/ephemeralcontainers"], "verbs": ["patch"]},
                {"apiGroups": [""], "resources": ["events"], "verbs": ["list"]},
            ],
        },
    )
    rbac.create_namespaced_role_binding(
        ns,
        {
            "metadata": {"name": "debugger"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "debugger"},
            "subjects": [{"kind": "ServiceAccount", "name": "throttled", "namespace": ns}],
        },
    )
    flow = client.FlowcontrolApiserverV1Api(faults.cluster.api_client)
    for existing in (THROTTLE_LEVEL,):
        for delete in (flow.delete_flow_schema, flow.delete_priority_level_configuration):
            try:
                delete(existing)
            except client.ApiException as exc:
                if exc.status != 404:
                    raise
    flow.create_priority_level_configuration(
        {
            "metadata": {"name": THROTTLE_LEVEL},
            "spec": {
                "type": "Limited",
                # The smallest share there is, nothing borrowed: a seat or two for this user, and
                # everything beyond that is rejected at once with 429 (no queueing).
                "limited": {"nominalConcurrencyShares": 1, "lendablePercent": 0, "borrowingLimitPercent": 0, "limitResponse": {"type": "Reject"}},
            },
        }
    )
    flow.create_flow_schema(
        {
            "metadata": {"name": THROTTLE_LEVEL},
            "spec": {
                "priorityLevelConfiguration": {"name": THROTTLE_LEVEL},
                "matchingPrecedence": 100,
                "distinguisherMethod": {"type": "ByUser"},
                "rules": [
                    {
                        "subjects": [{"kind": "ServiceAccount", "serviceAccount": {"name": "throttled", "namespace": ns}}],
                        "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"], "namespaces": ["*"], "clusterScope": True}],
                        "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                    }
                ],
            },
        }
    )
    # The API server picks the new objects up asynchronously.
    wait_for("the flow schema to be in effect", lambda: _flow_ready(flow), timeout=60)
    yield ns, auth
    flow.delete_flow_schema(THROTTLE_LEVEL)
    flow.delete_priority_level_configuration(THROTTLE_LEVEL)
    faults.cluster.core.delete_namespace(ns)


@contextlib.contextmanager
def noisy_neighbour(auth: dict[str, Any], ns: str, threads: int = 3, seconds: float = 120) -> Iterator[dict[str, int]]:
    """Other requests of the same user, bounded in count and time: they keep its one seat busy."""
    conf = client.Configuration()
    conf.host, conf.ssl_ca_cert = auth["host"], auth["ca_cert"]
    conf.api_key = {"authorization": "Bearer " + auth["api_key"]}
    # urllib3 would retry a 429 with Retry-After by itself, out of our count.
    conf.retries = False
    api = client.ApiClient(conf)
    core = client.CoreV1Api(api)
    stop = threading.Event()
    counts = {"requests": 0, "rejected": 0}
    lock = threading.Lock()

    def load() -> None:
        deadline = time.monotonic() + seconds
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                core.list_namespaced_pod(ns, limit=50, _preload_content=False, _request_timeout=30)
                rejected = 0
            except client.ApiException as exc:
                rejected = int(exc.status == 429)
            with lock:
                counts["requests"] += 1
                counts["rejected"] += rejected
            stop.wait(0.02)

    workers = [threading.Thread(target=load, daemon=True) for _worker in range(threads)]
    for w in workers:
        w.start()
    try:
        yield counts
    finally:
        stop.set()
        for w in workers:
            w.join(60)
        api.close()


def _flow_ready(flow: client.FlowcontrolApiserverV1Api) -> bool:
    fs = flow.read_flow_schema(THROTTLE_LEVEL)
    return any(c.type == "Dangling" and c.status == "False" for c in (fs.status.conditions or []))


def test_throttled_by_priority_and_fairness_the_module_and_lookup_finish(
    faults: FaultCluster, throttled_user: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    ns, auth = throttled_user
    n = len(ephemeral_names(faults, ns))
    before = rejected_total(faults)
    task = {k: v for k, v in add_task(faults, ns, "dbg-apf").items() if k != "kubeconfig"}
    task.update(auth, parallel=size(20, 40))
    module_dir, lookup_dir = tmp_path / "module", tmp_path / "lookup"
    module_dir.mkdir()
    lookup_dir.mkdir()
    result = run_task(module_dir, "kubedebug.ephemeral.ephemeral_container", task)
    no_traceback(result)
    assert not result.get("failed"), result.get("msg")
    rejected_module = rejected_total(faults) - before
    figures = assert_converged(faults, ns, n, "dbg-apf")
    assert actions(result) == {"added": n}
    # The API server really throttled this run: the test proves nothing otherwise.
    assert rejected_module > 0, "the API server rejected nothing: the priority level does not throttle"
    # Every 429 the server counts for this user in this phase was the module's, and the module says so.
    assert result["api"]["throttled"] == rejected_module, result["api"]
    assert result["api"]["retries"] > 0

    # The lookup's log reads are long-running requests, which API Priority and Fairness does not
    # hold to the seat limit; its LISTs are. Another client of the same user keeps the seat busy.
    before = rejected_total(faults)
    with noisy_neighbour(auth, ns) as neighbour:
        looked = run_lookup(
            lookup_dir,
            [],
            {**auth, "namespace": ns, "label_selector": "app=fleet", "container": "dbg-apf", "wait_for": "running", "logs": True, "parallel": size(20, 40)},
        )
    no_traceback(looked)
    assert not looked.get("failed"), looked.get("msg")
    records = looked["ansible_facts"]["records"]
    assert len(records) == n and [r for r in records if r["error"]] == []
    rejected_lookup = rejected_total(faults) - before
    lookup_api = records[0]["api"]
    # What the server rejected was either the neighbour's or the lookup's, and the lookup counts its own.
    assert lookup_api["throttled"] == rejected_lookup - neighbour["rejected"], (lookup_api, rejected_lookup, neighbour)
    report(
        "APF throttling",
        pods=n,
        rejected_429={"module": rejected_module, "lookup_and_neighbour": rejected_lookup, "neighbour": neighbour["rejected"]},
        module_api=result.get("api"),
        lookup_api=lookup_api,
        **figures,
    )
