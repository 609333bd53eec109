"""Benchmark: fleet scale against the limit - 100, 1,000 (and 5,000) pods, every contender on the same cluster.

Runs on a local cluster of its own (bench/run.sh starts it: KD_CLUSTER=kd-scale, API Priority and Fairness
ON at the API server's default 400 + 200 in-flight, KWOK nodes only), so that the API server admits what a real
one would. Every contender talks to it as the same ServiceAccount (what AWX and CI jobs use), which APF puts in
the ``service-accounts`` flow schema and the ``workload-low`` priority level. Nodes and kubelets are simulated
(KWOK): what is measured is the client side and the API server, not image pulls or container starts.

For each size N: N web pods round-robin over --namespaces namespaces (plus one pod per namespace that the
selector app=web skips), bound straight to KWOK nodes (--pods-per-node per node; the benchmark scales the
simulated nodes itself), and a fresh fleet for each contender that adds:
  ours                 one ``ephemeral_container`` task over the selector, all namespaces, wait=running
  ours rerun           the same task again: nothing to add
  ours collect         ``ephemeral_results`` lookup over all those pods (wait_for=none: status + logs)
  ours per-pod loop    the module once per pod in an Ansible ``loop`` (what a naive playbook does)
  kubectl sequential   ``kubectl debug`` per pod one after the other, then ``kubectl wait -A`` for running
  kubectl xargs -P 8   the same ``kubectl debug`` lines under ``xargs -P 8``, then the same wait
  limit                bench/limit (Go, client-go): exactly one LIST and one watch per namespace and one PATCH
                       per pod, at the concurrency APF admits for the ServiceAccount (the priority level's
                       nominal seats, read from the API server), no client-side rate limit
  limit rerun          the same again: nothing to add
  limit collect        one LIST per namespace and one log GET per container, at the same concurrency

Per contender: wall time, pods/s, ratio to the limit (``ours`` and the kubectl and loop contenders to ``limit``,
each rerun to ``limit rerun``, collect to ``limit collect``), the API requests on pods split into reads and
writes as the API server itself counts them (``apiserver_request_total`` deltas for resource=pods and the
subresources the contenders use - ephemeralcontainers, log - so the simulated kubelets' status writes do not
count), LISTs, log GETs, 429s (``apiserver_flowcontrol_rejected_requests_total`` for workload-low), and the
peak memory of the controller-side processes (the sum of PSS over the contender's process tree, sampled every
50 ms; PSS splits pages shared between ansible's forked workers instead of counting them once per process).
Checked after each adding contender (asserted): every selected pod has exactly one container of that name and
it runs.

The sequential contenders (per-pod loop, kubectl sequential) cost the same per pod at any N, and a lot of it
(an Ansible loop item starts a module process; a kubectl run starts a process and reads its discovery cache):
above --sequential-max pods (default 200) they run on a fresh fleet of that many pods and their time and
request counts are projected linearly to N; the table says "projected from 200" where it did.

Writes bench/results/fleet_scale.json, .md and .png (time vs N per contender, log-log; peak memory vs N).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results"
IMAGE = "docker.io/library/busybox:1.36"
PAUSE = "registry.k8s.io/pause:3.10"
SELECTOR = "app=web"
CONTAINER = "dbg"
COMMAND = ["sleep", "3600"]
SA_NAMESPACE = "kd-bench"
SA_NAME = "kd-bench"
PRIORITY_LEVEL = "workload-low"  # where APF's default flow schemas put a ServiceAccount outside kube-system
READ_VERBS = {"GET", "LIST", "WATCH", "CONNECT"}  # a log GET is counted as CONNECT on pods/log
CONTENDERS = (
    "ours", "ours rerun", "ours collect", "ours per-pod loop", "kubectl sequential", "kubectl xargs -P 8",
    "limit", "limit rerun", "limit collect",
)  # fmt: skip
# Whose time each contender is compared with.
LIMIT_OF = {
    "ours": "limit", "ours rerun": "limit rerun", "ours collect": "limit collect", "ours per-pod loop": "limit",
    "kubectl sequential": "limit", "kubectl xargs -P 8": "limit",
}  # fmt: skip
TARGET_RATIO = 1.2
PAGE = os.sysconf("SC_PAGE_SIZE")


def sh(*cmd: str, env: dict[str, str] | None = None, timeout: float = 7200, stdin: str | None = None) -> str:
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout


# --- memory of a process tree ------------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: the fields after the last ")" are fixed.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def _pss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    try:  # no smaps_rollup: resident pages
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (OSError, ValueError, IndexError):
        return 0


class PeakMemory:
    """Samples the summed PSS of a process and all its descendants until stopped; keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            kids = _children()
            tree, todo = [], [self.pid]
            while todo:
                pid = todo.pop()
                tree.append(pid)
                todo.extend(kids.get(pid, ()))
            self.peak = max(self.peak, sum(_pss_bytes(pid) for pid in tree))
            self._stop.wait(self.interval)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def timed(cmd: list[str], env: dict[str, str], stdin: str | None = None, timeout: float = 7200) -> tuple[float, int, str]:
    """Run ``cmd``; its wall time, the peak memory of its process tree and its stdout."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **env})
    memory = PeakMemory(proc.pid)
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
    finally:
        peak = memory.stop()
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} failed ({proc.returncode}):\n{out[-3000:]}\n{err[-3000:]}")
    return elapsed, peak, out


# --- the API server's own counts ---------------------------------------------------------------

_LABEL = re.compile(r'(\w+)="([^"]*)"')


@dataclass
class Counts:
    """What the API server counted: requests on pods by (verb, subresource), and 429s for the priority level."""

    requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    rejected: float = 0.0
    seats: float = 0.0

    def __sub__(self, other: Counts) -> Counts:
        requests = Counter({k: v - other.requests[k] for k, v in self.requests.items() if v - other.requests[k]})
        return Counts(requests, self.rejected - other.rejected, self.seats)


def server_counts(kubectl: str, kubeconfig: str) -> Counts:
    counts = Counts()
    for line in sh(kubectl, "--kubeconfig", kubeconfig, "get", "--raw", "/metrics").splitlines():
        name, _brace, rest = line.partition("{")
        if name not in {"apiserver_request_total", "apiserver_flowcontrol_rejected_requests_total", "apiserver_flowcontrol_nominal_limit_seats"}:
            continue
        labels = dict(_LABEL.findall(rest.rpartition("}")[0]))
        value = float(line.rsplit(" ", 1)[1])
        if name == "apiserver_request_total":
            # Status writes are the simulated kubelets'; bindings are the scheduler's.
            if labels.get("resource") == "pods" and labels.get("subresource", "") in {"", "ephemeralcontainers", "log"}:
                counts.requests[(labels["verb"], labels.get("subresource", ""))] += int(value)
        elif labels.get("priority_level") == PRIORITY_LEVEL:
            if name == "apiserver_flowcontrol_rejected_requests_total":
                counts.rejected += value
            else:
                counts.seats = value
    return counts


# --- the cluster -------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.admin_kubeconfig: str = args.kubeconfig
        self.kubectl: str = args.kubectl
        self.kwokctl: str = args.kwokctl
        self.cluster_name: str = args.cluster
        self.limit: str = args.limit
        self.tmp = tmp
        self.profile = Path(args.profile) if args.profile else None
        self.parallel: int = args.parallel
        self.api = config.new_client_from_config(config_file=self.admin_kubeconfig)
        self.core = client.CoreV1Api(self.api)
        self.kubeconfig = self.service_account_kubeconfig()
        # kubectl caches discovery per user, as on a laptop: one cache for the whole run.
        self.kubectl_env = {"KUBECONFIG": self.kubeconfig, "KUBECACHEDIR": str(tmp / "kube-cache"), "PATH": f"{Path(self.kubectl).parent}:{os.environ['PATH']}"}
        self.ansible_env = {"ANSIBLE_PYTHON_INTERPRETER": sys.executable, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCALHOST_WARNING": "0"}

    def k(self, *args: str) -> str:
        return sh(self.kubectl, "--kubeconfig", self.admin_kubeconfig, *args)

    def counts(self) -> Counts:
        return server_counts(self.kubectl, self.admin_kubeconfig)

    def service_account_kubeconfig(self) -> str:
        """A ServiceAccount allowed exactly what the contenders need, and a kubeconfig with its token."""
        manifests = [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SA_NAMESPACE}},
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": SA_NAME, "namespace": SA_NAMESPACE}},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": SA_NAME}, "rules": [
                {"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": [""], "resources": ["pods/ephemeralcontainers"], "verbs": ["patch"]},
                {"apiGroups": [""], "resources": ["events"], "verbs": ["list"]},
                # The optional rules of the RBAC guide: ours runs its default preflights in full (a node read and a
                # LIST of its pods per node), as for a user who grants them.
                {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]},
                {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
            ]},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": SA_NAME},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": SA_NAME},
             "subjects": [{"kind": "ServiceAccount", "name": SA_NAME, "namespace": SA_NAMESPACE}]},
        ]  # fmt: skip
        sh(self.kubectl, "--kubeconfig", self.admin_kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump_all(manifests))
        token = sh(self.kubectl, "--kubeconfig", self.admin_kubeconfig, "create", "token", SA_NAME, "-n", SA_NAMESPACE, "--duration", "12h").strip()
        admin = yaml.safe_load(Path(self.admin_kubeconfig).read_text())
        cluster = admin["clusters"][0]["cluster"]
        kubeconfig = {
            "apiVersion": "v1", "kind": "Config", "current-context": "bench",
            "clusters": [{"name": "bench", "cluster": cluster}],
            "users": [{"name": SA_NAME, "user": {"token": token}}],
            "contexts": [{"name": "bench", "context": {"cluster": "bench", "user": SA_NAME}}],
        }  # fmt: skip
        path = self.tmp / "bench-sa.kubeconfig"
        path.write_text(yaml.safe_dump(kubeconfig))
        path.chmod(0o600)
        return str(path)

    def kwok_nodes(self) -> list[str]:
        nodes = self.core.list_node(label_selector="type=kwok").items
        return sorted(n.metadata.name for n in nodes if (n.metadata.annotations or {}).get("kwok.x-k8s.io/node") == "fake")

    def scale_nodes(self, want: int) -> list[str]:
        """At least ``want`` simulated nodes, all Ready (kwokctl adds them, kwok makes them Ready)."""
        nodes = self.kwok_nodes()
        if len(nodes) < want:
            sh(self.kwokctl, "--name", self.cluster_name, "scale", "node", "--replicas", str(want))
            self.k("wait", "--for=condition=Ready", "node", "-l", "type=kwok", "--timeout=300s")
            nodes = self.kwok_nodes()
        return nodes

    def fleet(self, n: int, namespaces: int, pods_per_node: int) -> list[str]:
        """``n`` Running web pods over fresh namespaces (and a db pod in each), bound to KWOK nodes."""
        nodes = self.scale_nodes(math.ceil((n + namespaces) / pods_per_node))
        tag = uuid.uuid4().hex[:6]
        nss = [f"scale-{tag}-{i}" for i in range(namespaces)]
        for ns in nss:
            self.core.create_namespace({"metadata": {"name": ns, "labels": {"kd-bench": "scale"}}})
        for ns in nss:
            for _attempt in range(600):
                if self.core.list_namespaced_service_account(ns, field_selector="metadata.name=default").items:
                    break
                time.sleep(0.1)
        specs = [(nss[i % namespaces], f"web-{i:05d}", "web") for i in range(n)] + [(ns, "db-0", "db") for ns in nss]

        def create(i_spec: tuple[int, tuple[str, str, str]]) -> None:
            i, (ns, name, app) = i_spec
            self.core.create_namespaced_pod(ns, {
                "metadata": {"name": name, "labels": {"app": app}},
                "spec": {"nodeName": nodes[i % len(nodes)], "containers": [{"name": "app", "image": PAUSE}],
                         "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}]},
            })  # fmt: skip

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            list(pool.map(create, enumerate(specs)))
        deadline = time.monotonic() + 600
        while True:
            running = sum(1 for ns in nss for p in self.core.list_namespaced_pod(ns).items if p.status and p.status.phase == "Running")
            if running == len(specs):
                return nss
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {running} of {len(specs)} pods Running after 600 s")
            time.sleep(1)

    def delete(self, nss: list[str]) -> None:
        self.k("delete", "namespace", *nss, "--timeout=900s")

    def selected(self, nss: list[str]) -> list[tuple[str, str]]:
        return [(ns, p.metadata.name) for ns in nss for p in self.core.list_namespaced_pod(ns, label_selector=SELECTOR).items]

    def check_added(self, nss: list[str], n: int) -> None:
        """Every selected pod has exactly one container named CONTAINER, and it runs; no other pod has one."""
        seen = 0
        for ns in nss:
            for pod in self.core.list_namespaced_pod(ns).items:
                names = [c.name for c in pod.spec.ephemeral_containers or []]
                web = (pod.metadata.labels or {}).get("app") == "web"
                assert names == ([CONTAINER] if web else []), f"{ns}/{pod.metadata.name}: {names}"
                if web:
                    states = [s.state for s in pod.status.ephemeral_container_statuses or [] if s.name == CONTAINER]
                    assert states and states[0].running, f"{ns}/{pod.metadata.name}: {CONTAINER} is not running"
                    seen += 1
        assert seen == n, f"{seen} pods with {CONTAINER}, expected {n}"

    # --- contenders --------------------------------------------------------------------------------

    def playbook(self, tasks: list[dict[str, Any]], name: str, extra: dict[str, Any] | None = None) -> tuple[float, int, Any]:
        out = self.tmp / f"{name}.json"
        play = [{"hosts": "localhost", "gather_facts": False, "tasks": [
            *tasks, {"name": "save", "ansible.builtin.copy": {"content": "{{ r | to_json }}", "dest": str(out)}},
        ]}]  # fmt: skip
        path = self.tmp / f"{name}.yml"
        path.write_text(yaml.safe_dump(play))
        cmd = ["ansible-playbook", "-i", "localhost,", "-c", "local", str(path)]
        if extra:
            vars_file = self.tmp / f"{name}.vars.json"
            vars_file.write_text(json.dumps(extra))
            cmd += ["-e", f"@{vars_file}"]
        if self.profile:
            # py-spy samples the playbook and the module processes it starts (collapsed stacks, one file per run);
            # its overhead makes the run slower, so a profiled run's time is not a result.
            self.profile.mkdir(parents=True, exist_ok=True)
            spy = str(Path(sys.executable).with_name("py-spy"))
            cmd = [spy, "record", "--subprocesses", "--rate", "200", "--format", "raw", "-o", str(self.profile / f"{name}.txt"), "--", *cmd]
        seconds, peak, _stdout = timed(cmd, self.ansible_env)
        return seconds, peak, json.loads(out.read_text())

    def ours_add(self, nss: list[str], name: str) -> tuple[float, int, dict[str, Any]]:
        task = {"name": "add", "kubedebug.ephemeral.ephemeral_container": {
            "kubeconfig": self.kubeconfig, "namespace": nss, "label_selector": SELECTOR, "container": CONTAINER,
            "image": IMAGE, "command": COMMAND, "wait": "running", "wait_timeout": 1800,
            **({"parallel": self.parallel} if self.parallel else {})}, "register": "r"}  # fmt: skip
        seconds, peak, result = self.playbook([task], name)
        return seconds, peak, result

    def ours_collect(self, nss: list[str]) -> tuple[float, int, list[dict[str, Any]]]:
        lookup = (
            "{{ lookup('kubedebug.ephemeral.ephemeral_results', namespace=nss, label_selector='" + SELECTOR + "', container='"
            + CONTAINER + "', wait_for='none', kubeconfig='" + self.kubeconfig + "'"
            + (f", parallel={self.parallel}" if self.parallel else "") + ") }}"
        )  # fmt: skip
        task = {"name": "collect", "ansible.builtin.set_fact": {"r": lookup}}
        return self.playbook([task], "collect", {"nss": nss})

    def ours_loop(self, pods: list[tuple[str, str]]) -> tuple[float, int, Any]:
        task = {"name": "add", "kubedebug.ephemeral.ephemeral_container": {
            "kubeconfig": self.kubeconfig, "namespace": "{{ item.0 }}", "pod": "{{ item.1 }}", "container": CONTAINER,
            "image": IMAGE, "command": COMMAND, "wait": "running", "wait_timeout": 300},
            "loop": "{{ pods }}", "register": "r"}  # fmt: skip
        return self.playbook([task], "loop", {"pods": [list(p) for p in pods]})

    def kubectl_debug(self, pods: list[tuple[str, str]], parallel: int) -> tuple[float, int]:
        """``kubectl debug`` per pod (one after the other, or under ``xargs -P``), then one ``kubectl wait`` for all."""
        lines = "".join(f"{ns} {name}\n" for ns, name in pods)
        debug = f'kubectl debug -n "$0" "$1" --image={IMAGE} -c {CONTAINER} --profile=general -- {" ".join(COMMAND)} >/dev/null'
        wait = "kubectl wait -A -l app=web pod --for=jsonpath='{.status.ephemeralContainerStatuses[0].state.running}' --timeout=1800s >/dev/null"
        if parallel > 1:
            script = f"xargs -P {parallel} -n 2 sh -c '{debug}' && {wait}"
        else:
            script = f'while read -r ns pod; do sh -c \'{debug}\' "$ns" "$pod" || exit 1; done && {wait}'
        seconds, peak, _out = timed(["bash", "-c", script], self.kubectl_env, stdin=lines)
        return seconds, peak

    def limit_run(self, nss: list[str], mode: str, concurrency: int) -> tuple[float, int, dict[str, Any]]:
        cmd = [self.limit, "-kubeconfig", self.kubeconfig, "-namespaces", ",".join(nss), "-selector", SELECTOR, "-mode", mode,
               "-container", CONTAINER, "-image", IMAGE, "-command", " ".join(COMMAND), "-concurrency", str(concurrency)]  # fmt: skip
        seconds, peak, out = timed(cmd, {})
        return seconds, peak, json.loads(out)


# --- one size, every contender -----------------------------------------------------------------


@dataclass
class Row:
    pods: int
    contender: str
    seconds: float
    measured_pods: int  # fewer than pods when a sequential contender's time is projected
    peak_mb: float
    reads: int
    writes: int
    lists: int
    log_gets: int
    rejected_429: int
    ratio_to_limit: float | None = None
    client_reported: dict[str, Any] = field(default_factory=dict)

    @property
    def pods_per_second(self) -> float:
        return self.pods / self.seconds


def row(contender: str, n: int, measured: int, seconds: float, peak: int, delta: Counts, reported: dict[str, Any]) -> Row:
    reads = sum(v for (verb, _sub), v in delta.requests.items() if verb in READ_VERBS)
    writes = sum(v for (verb, _sub), v in delta.requests.items() if verb not in READ_VERBS)
    scale = n / measured
    return Row(
        pods=n,
        contender=contender,
        seconds=seconds * scale,
        measured_pods=measured,
        peak_mb=peak / 2**20,
        reads=round(reads * scale),
        writes=round(writes * scale),
        lists=round(delta.requests[("LIST", "")] * scale),
        log_gets=round(delta.requests[("CONNECT", "log")] * scale),
        rejected_429=round(delta.rejected * scale),
        client_reported=reported,
    )


def measure(bench: Bench, n: int, args: argparse.Namespace, seats: int, only: set[str]) -> list[Row]:
    rows: list[Row] = []

    def run(contender: str, measured: int, call: Any) -> Any:
        before = bench.counts()
        seconds, peak, *rest = call()
        time.sleep(1)  # watches are counted when they end
        rows.append(row(contender, n, measured, seconds, peak, bench.counts() - before, rest[0] if rest and isinstance(rest[0], dict) else {}))
        print(f"  {n:>5} {contender:<20} {seconds:8.2f} s  (measured on {measured} pods)", file=sys.stderr, flush=True)
        return rest[0] if rest else None

    def fleet_for(contenders: tuple[str, ...], size: int) -> list[str] | None:
        if not only & set(contenders):
            return None
        return bench.fleet(size, args.namespaces, args.pods_per_node)

    nss = fleet_for(("ours", "ours rerun", "ours collect"), n)
    if nss:
        try:
            result = run("ours", n, lambda: bench.ours_add(nss, "ours"))
            assert result["summary"]["added"] == n, result["summary"]
            bench.check_added(nss, n)
            result = run("ours rerun", n, lambda: bench.ours_add(nss, "rerun"))
            assert result["summary"]["unchanged"] == n and not result["changed"], result["summary"]
            records = run("ours collect", n, lambda: bench.ours_collect(nss))
            assert len(records) == n and not any(r["error"] for r in records), [r["error"] for r in records if r["error"]][:3]
        finally:
            bench.delete(nss)
    small = min(n, args.sequential_max)
    for contender, call in (
        ("ours per-pod loop", bench.ours_loop),
        ("kubectl sequential", lambda pods: bench.kubectl_debug(pods, 1)),
        ("kubectl xargs -P 8", lambda pods: bench.kubectl_debug(pods, 8)),
    ):
        size = n if contender.startswith("kubectl xargs") else small
        nss = fleet_for((contender,), size)
        if nss:
            try:
                pods = bench.selected(nss)
                run(contender, size, lambda call=call, pods=pods: call(pods))
                bench.check_added(nss, size)
            finally:
                bench.delete(nss)
    nss = fleet_for(("limit", "limit rerun", "limit collect"), n)
    if nss:
        try:
            result = run("limit", n, lambda: bench.limit_run(nss, "add", seats))
            assert (result["pods"], result["patched"], result["done"]) == (n, n, n), result
            bench.check_added(nss, n)
            result = run("limit rerun", n, lambda: bench.limit_run(nss, "add", seats))
            assert (result["pods"], result["patched"]) == (n, 0), result
            result = run("limit collect", n, lambda: bench.limit_run(nss, "collect", seats))
            assert result["done"] == n, result
        finally:
            bench.delete(nss)
    by_name = {r.contender: r for r in rows}
    for r in rows:
        limit = by_name.get(LIMIT_OF.get(r.contender, ""))
        if limit:
            r.ratio_to_limit = r.seconds / limit.seconds
    return rows


# --- reporting ---------------------------------------------------------------------------------


def table(rows: list[Row]) -> str:
    head = "| pods | contender | seconds | pods/s | × limit | reads | writes | LISTs | log GETs | 429s | peak MB |"
    lines = [head, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        seconds = f"{r.seconds:.2f}" + ("" if r.measured_pods == r.pods else f" (projected from {r.measured_pods})")
        ratio = "" if r.ratio_to_limit is None else f"{r.ratio_to_limit:.2f}"
        lines.append(
            f"| {r.pods} | {r.contender} | {seconds} | {r.pods_per_second:.1f} | {ratio} | {r.reads} | {r.writes} | {r.lists} | "
            f"{r.log_gets} | {r.rejected_429} | {r.peak_mb:.0f} |"
        )
    return "\n".join(lines)


def slope(points: list[tuple[int, float]]) -> float | None:
    """The exponent b of cost ~ N^b between the smallest and the largest N (1 = linear)."""
    if len(points) < 2:
        return None
    (n0, c0), (n1, c1) = points[0], points[-1]
    if c0 <= 0 or c1 <= 0:
        return None
    return math.log(c1 / c0) / math.log(n1 / n0)


def targets(rows: list[Row], namespaces: int) -> list[tuple[str, bool | None, str]]:
    """Each target of issue 13: whether it holds in these numbers (None: not measured in this run)."""
    at = {(r.pods, r.contender): r for r in rows}
    sizes = sorted({r.pods for r in rows})
    out: list[tuple[str, bool | None, str]] = []
    for n in sizes:
        rerun = at.get((n, "ours rerun"))
        if rerun:
            out.append((f"N={n}: rerun makes 0 writes and at most one LIST per namespace", rerun.writes == 0 and rerun.lists <= namespaces,
                        f"{rerun.writes} writes, {rerun.lists} LISTs for {namespaces} namespaces"))  # fmt: skip
    for n in (n for n in sizes if n >= 1000):
        ours, seq, xargs, collect = (at.get((n, c)) for c in ("ours", "kubectl sequential", "kubectl xargs -P 8", "ours collect"))
        if ours and ours.ratio_to_limit is not None:
            out.append((f"N={n}: ours ≤ {TARGET_RATIO}× the limit", ours.ratio_to_limit <= TARGET_RATIO, f"{ours.ratio_to_limit:.2f}×"))
        if ours and seq:
            out.append((f"N={n}: ours ≥ 10× faster than kubectl sequential", seq.seconds / ours.seconds >= 10, f"{seq.seconds / ours.seconds:.1f}×"))
        if ours and xargs:
            out.append((f"N={n}: ours faster than kubectl xargs -P 8", ours.seconds < xargs.seconds, f"{xargs.seconds / ours.seconds:.1f}×"))
        if collect:
            # Without the limit's time the ratio is not measured: only a wrong count of log GETs misses.
            ok = collect.log_gets == n and (None if collect.ratio_to_limit is None else collect.ratio_to_limit <= TARGET_RATIO)
            ratio = "n/a" if collect.ratio_to_limit is None else f"{collect.ratio_to_limit:.2f}×"
            out.append((f"N={n}: collect makes one log GET per container, ≤ {TARGET_RATIO}× the limit", ok, f"{collect.log_gets} log GETs, {ratio}"))
    for contender in ("ours", "ours collect"):
        pts = [(r.pods, r.peak_mb) for r in rows if r.contender == contender]
        if pts and pts[-1][0] >= 5000:
            out.append((f"N={pts[-1][0]}: {contender} peak controller memory < 300 MB", pts[-1][1] < 300, f"{pts[-1][1]:.0f} MB"))
        for what, series in (("time", [(r.pods, r.seconds) for r in rows if r.contender == contender]), ("memory", pts)):
            b = slope(series)
            if b is not None:
                grows = f"N^{b:.2f} from {series[0][0]} to {series[-1][0]}"
                out.append((f"{contender}: {what} grows linearly or better in N (exponent ≤ 1.1)", b <= 1.1, grows))
    return out


def plot(rows: list[Row], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot", file=sys.stderr)
        return
    fig, (times, memory) = plt.subplots(1, 2, figsize=(13, 5))
    for contender in dict.fromkeys(r.contender for r in rows):
        pts = [r for r in rows if r.contender == contender]
        style = "--" if contender.startswith("limit") else "-"
        times.plot([r.pods for r in pts], [r.seconds for r in pts], style, marker="o", label=contender)
        memory.plot([r.pods for r in pts], [r.peak_mb for r in pts], style, marker="o", label=contender)
    for ax, label in ((times, "seconds (lower is better)"), (memory, "peak controller-side memory, MB (PSS)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("pods")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="both")
    times.legend(fontsize=8)
    fig.suptitle("Adding a debug container to N pods and collecting: each contender vs the limit (local cluster, KWOK nodes, APF on)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"plot: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000", help="comma-separated fleet sizes (default 100,1000)")
    parser.add_argument("--large", action="store_true", help="also N=5000")
    parser.add_argument("--namespaces", type=int, default=10)
    parser.add_argument("--pods-per-node", type=int, default=110)
    parser.add_argument("--sequential-max", type=int, default=200, help="pods the sequential contenders run on at most (then projected)")
    parser.add_argument("--only", default=",".join(CONTENDERS), help="comma-separated contenders to run")
    parser.add_argument("--concurrency", type=int, default=0, help="the limit's concurrency (default: the priority level's seats)")
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--kubectl", required=True)
    parser.add_argument("--kwokctl", required=True)
    parser.add_argument("--cluster", required=True, help="the kwokctl cluster name")
    parser.add_argument("--limit", required=True, help="the bench/limit binary")
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--parallel", type=int, default=0, help="our contenders' parallel option (default: theirs)")
    parser.add_argument("--profile", default="", help="a directory: run our contenders under py-spy (their times are then not results)")
    args = parser.parse_args()
    only = {c.strip() for c in args.only.split(",")}
    unknown = only - set(CONTENDERS)
    if unknown:
        parser.error(f"--only: unknown contender(s) {sorted(unknown)}; choose from {list(CONTENDERS)}")
    sizes = [int(x) for x in args.sizes.split(",")] + ([5000] if args.large else [])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(args, Path(tmp))
        seats = args.concurrency or int(bench.counts().seats)
        if seats <= 0:
            raise SystemExit(f"the API server reports no seats for priority level {PRIORITY_LEVEL}: is APF on (KD_APF=1)?")
        print(f"limit concurrency: {seats} (nominal seats of {PRIORITY_LEVEL}); load average {os.getloadavg()}", file=sys.stderr)
        for n in sizes:
            rows += measure(bench, n, args, seats, only)
    md = table(rows)
    checks = targets(rows, args.namespaces)
    verdicts = "\n".join(f"- {'HOLDS' if ok else 'MISSED' if ok is False else 'n/a'}: {what} ({got})" for what, ok, got in checks)
    print(md)
    print()
    print(verdicts)
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "namespaces": args.namespaces, "pods_per_node": args.pods_per_node,
        "limit_concurrency": seats, "priority_level": PRIORITY_LEVEL, "cpus": os.cpu_count(),
        "bench_process_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "load_average_at_end": os.getloadavg(),
    }  # fmt: skip
    report = {
        "meta": meta,
        "rows": [asdict(r) | {"pods_per_second": r.pods_per_second} for r in rows],
        "targets": [{"target": w, "holds": ok, "measured": g} for w, ok, g in checks],
    }
    (out / "fleet_scale.json").write_text(json.dumps(report, indent=2))
    (out / "fleet_scale.md").write_text(
        f"# Fleet scale ({meta['date']}, {meta['cpus']} cores, KWOK nodes, APF on, limit at {seats} in flight, "
        f"load average at the end {meta['load_average_at_end'][0]:.1f})\n\n{md}\n\n## Targets\n\n{verdicts}\n"
    )
    plot(rows, out / "fleet_scale.png")


if __name__ == "__main__":
    main()
