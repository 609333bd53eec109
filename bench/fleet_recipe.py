"""Benchmark: a recipe's whole round trip over a fleet, fleet_diagnostics vs kubectl debug/wait/logs loops.

The 3 a.m. task: run the dns recipe in every pod a label selector matches, across
namespaces, and get the results back as data. Runs against the embedded local
cluster (hack/cluster.sh), where KWOK simulates nodes and kubelets.

What is simulated. No container process runs. The recipe's exact command (the
script roles/dns puts in its debug container, resolving "localhost" and
"nothing-here.invalid") is run once, for real, on this host; its real output is
served as every debug container's log through a per-pod KWOK Logs object, and its
real exit code is given to every debug container as env KWOK_EXIT_CODE so that the
simulated kubelet ends it with that code - as the integration tests do
(tests/integration/kubehelpers.py: real_run, cri_log, serve_logs). Both approaches
read the same logs through the API server (the kubelet log endpoint, served by kwok).
The simulated kubelet starts a debug container about 0.3 s after it is added and
reports it terminated about 1 s later (tests/kwok/stages): a stand-in for image
pull, start and the script's own run time (well under a second for dns here). On
real nodes those times would add equally to every approach, per pod: once per pod
for the sequential loop, overlapped for the parallel ones.

What is measured, in one run and on the same cluster, for each fleet size N (N web
pods round-robin over --namespaces namespaces, plus one pod per namespace that the
selector app=web skips), each approach on a fresh fleet:
  kubectl loop        bench/kubectl_recipe.sh: list the pods per namespace, then per pod
                      `kubectl debug ... -- sh -c <script>`, `kubectl wait` (jsonpath on
                      ephemeralContainerStatuses: terminated) and `kubectl logs` to a file,
                      one pod after the other, as a user's shell loop does
  kubectl xargs -P10  the same per-pod steps through `xargs -P 10` (what a skilled user writes)
  collection          `ansible-playbook playbooks/fleet_diagnostics.yml` (inventory: one host
                      for the cluster with kd_kubeconfig and kd_namespaces; kd_recipe=dns,
                      kd_label_selector, kd_run_id): adds, waits, reads and parses the logs,
                      aggregates, writes summary.json and report.html; includes ansible startup
  collection rerun    the same command with the same kd_run_id: nothing is added, the
                      results are read again (changed=0 asserted)
Not timed: creating the fleet, serving the logs, checking the results, deleting the
namespaces (waited for, so that one approach's cleanup does not slow the next).

Checked, not timed (asserted, this is not a test): every approach gets one result per
pod - N parsed logs for the loops, summary.json "pods" for the collection - with the
same numbers of checks and failed checks.

Prints a table, writes bench/out/fleet_recipe.json and, when matplotlib is available,
bench/out/fleet_recipe.png.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import config

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
# The integration tests' helpers: the logs are served exactly as the tests serve them.
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from kubehelpers import Cluster, cri_log, real_run, recipe_command, serve_logs  # noqa: E402

RECIPE = "dns"
NAMES = ["localhost", "nothing-here.invalid"]
IMAGE = "docker.io/library/busybox:1.37.0"  # roles/dns/defaults: dns_image
PROFILE = "baseline"  # roles/dns/defaults: dns_profile
SELECTOR = "app=web"
PAUSE = "registry.k8s.io/pause:3.10"
APPROACHES = ("kubectl loop", "kubectl xargs -P10", "collection", "collection rerun")


@dataclass(frozen=True)
class Recipe:
    """The recipe's command and what one real run of it on this host printed."""

    command: list[str]
    output: str
    code: int
    log_file: Path

    @property
    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.output.splitlines() if line.strip()]


@dataclass(frozen=True)
class Results:
    """What came back: results (pods with a parsed result), checks and failed checks (summary lines excluded)."""

    pods: int
    checks: int
    failed_checks: int


def sh(*cmd: str, env: dict[str, str] | None = None, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} {cmd[1] if len(cmd) > 1 else ''} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def count(records: list[list[dict[str, Any]]]) -> Results:
    """Results from per-pod lists of recipe lines (a pod counts when its output has the summary line); the lines that
    say how the run was bounded ({"bounds": ...}) are no checks."""
    rows = [c for lines in records for c in lines if "check" in c and c.get("check") != "summary"]
    return Results(
        pods=sum(1 for lines in records if any(c.get("check") == "summary" for c in lines)),
        checks=len(rows),
        failed_checks=sum(1 for c in rows if not c.get("ok")),
    )


class Bench:
    def __init__(self, kubeconfig: str, kubectl: str, tmp: Path) -> None:
        self.kubeconfig = kubeconfig
        self.kubectl = kubectl
        self.tmp = tmp
        self.cluster = Cluster(kubeconfig=kubeconfig, kubectl=kubectl, api_client=config.new_client_from_config(config_file=kubeconfig))

    def k(self, *args: str) -> subprocess.CompletedProcess[str]:
        return sh(self.kubectl, "--kubeconfig", self.kubeconfig, *args)

    def recipe(self) -> Recipe:
        """Run the recipe's command here once, for real: its output and exit code stand in for every container's."""
        command = recipe_command(RECIPE, NAMES)
        output, code = real_run(command, 60)
        assert code is not None, "the recipe did not finish on this host"
        log_file = self.tmp / f"{RECIPE}.log"
        log_file.write_text(cri_log(output))
        return Recipe(command=command, output=output, code=code, log_file=log_file)

    def fleet(self, n: int, namespaces: int, container: str, recipe: Recipe) -> list[str]:
        """``n`` web pods over fresh namespaces (and a db pod in each), Running, ``container``'s log served in each web pod."""
        tag = uuid.uuid4().hex[:6]
        nss = [f"bench-{tag}-{i}" for i in range(namespaces)]
        core = self.cluster.core
        for ns in nss:
            core.create_namespace({"metadata": {"name": ns}})
        for ns in nss:
            for _attempt in range(300):
                if core.list_namespaced_service_account(ns, field_selector="metadata.name=default").items:
                    break
                time.sleep(0.1)
        pods = [(nss[i % namespaces], f"web-{i:04d}") for i in range(n)]
        for ns, name in pods:
            core.create_namespaced_pod(ns, {
                "metadata": {"name": name, "labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": PAUSE}]},
            })  # fmt: skip
        for ns in nss:
            core.create_namespaced_pod(ns, {
                "metadata": {"name": "db-0", "labels": {"app": "db"}},
                "spec": {"containers": [{"name": "db", "image": PAUSE}]},
            })  # fmt: skip
        for ns in nss:
            self.k("wait", "-n", ns, "--for=jsonpath={.status.phase}=Running", "pod", "--all", "--timeout=300s")
        for ns, name in pods:
            serve_logs(self.cluster, ns, name, container, recipe.log_file)
        return nss

    def delete(self, nss: list[str]) -> None:
        self.k("delete", "namespace", *nss, "--timeout=600s")

    def kubectl_loop(self, nss: list[str], container: str, recipe: Recipe, parallel: int) -> tuple[float, Results]:
        out = Path(tempfile.mkdtemp(dir=self.tmp))
        script = out / "script.sh"
        script.write_text(recipe.command[2])
        env = {
            "PATH": f"{Path(self.kubectl).parent}:{os.environ['PATH']}", "KUBECONFIG": self.kubeconfig,
            "KD_PARALLEL": str(parallel), "KD_SELECTOR": SELECTOR, "KD_RECIPE": RECIPE, "KD_CONTAINER": container,
            "KD_IMAGE": IMAGE, "KD_PROFILE": PROFILE, "KD_ENV": f"KWOK_EXIT_CODE={recipe.code}",
            "KD_SCRIPT_FILE": str(script), "KD_OUT": str(out),
        }  # fmt: skip
        start = time.perf_counter()
        sh("bash", str(ROOT / "bench" / "kubectl_recipe.sh"), *nss, "--", *NAMES, env=env)
        elapsed = time.perf_counter() - start
        records = [[json.loads(line) for line in log.read_text().splitlines() if line.strip()] for log in sorted(out.glob("*.log"))]
        return elapsed, count(records)

    def collection(self, nss: list[str], run_id: str, recipe: Recipe) -> tuple[float, dict[str, Any], str]:
        inventory = self.tmp / f"{run_id}.inventory.yml"
        inventory.write_text(yaml.safe_dump({"all": {"children": {"kubedebug_clusters": {"hosts": {
            "local": {"kd_kubeconfig": self.kubeconfig, "kd_namespaces": nss}}}}}}))  # fmt: skip
        out = self.tmp / "fleet"
        extra = {
            "kd_recipe": RECIPE, "kd_label_selector": SELECTOR, "kd_run_id": run_id, "kd_dns_names": NAMES,
            "kd_output_dir": str(out), "kd_debug_env": {"KWOK_EXIT_CODE": str(recipe.code)}, "kd_wait_timeout": 300,
        }  # fmt: skip
        start = time.perf_counter()
        proc = sh(
            "ansible-playbook",
            "-i",
            str(inventory),
            str(ROOT / "playbooks" / "fleet_diagnostics.yml"),
            "-e",
            json.dumps(extra),
            env={"ANSIBLE_PYTHON_INTERPRETER": sys.executable, "ANSIBLE_NOCOLOR": "1"},
        )
        elapsed = time.perf_counter() - start
        summary = json.loads((out / f"fleet-{run_id}" / "summary.json").read_text())
        return elapsed, summary, proc.stdout


def measure(bench: Bench, n: int, namespaces: int, recipe: Recipe) -> list[dict[str, Any]]:
    expected = count([recipe.lines] * n)
    rows: list[dict[str, Any]] = []

    def row(approach: str, seconds: float, got: Results, added: int) -> None:
        assert got == expected, f"{approach}: {got} results, expected {expected}"
        rows.append(
            {
                "pods": n,
                "namespaces": namespaces,
                "approach": approach,
                "seconds": seconds,
                "ms_per_pod": 1000 * seconds / n,
                "results": got.pods,
                "checks": got.checks,
                "failed_checks": got.failed_checks,
                "added": added,
            }
        )

    for approach in APPROACHES[:3]:  # "collection" also measures the rerun, on the same pods
        run_id = f"bench-{uuid.uuid4().hex[:8]}"
        container = f"kd-{RECIPE}-{run_id}"
        nss = bench.fleet(n, namespaces, container, recipe)
        try:
            if approach.startswith("kubectl"):
                seconds, got = bench.kubectl_loop(nss, container, recipe, parallel=10 if "xargs" in approach else 1)
                row(approach, seconds, got, n)
                continue
            seconds, summary, _stdout = bench.collection(nss, run_id, recipe)
            assert summary["unfinished"] == [], summary["unfinished"]
            row(approach, seconds, Results(summary["pods"], summary["checks"], summary["failed_checks"]), n)
            seconds, again, stdout = bench.collection(nss, run_id, recipe)
            recap = [line for line in stdout.split("PLAY RECAP")[1].splitlines() if ":" in line]
            assert recap and all("changed=0" in line for line in recap), recap
            assert again == summary, "the rerun reported other results"
            row("collection rerun", seconds, Results(again["pods"], again["checks"], again["failed_checks"]), 0)
        finally:
            bench.delete(nss)
    return rows


def plot(rows: list[dict[str, Any]], namespaces: int) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot", file=sys.stderr)
        return
    fig, (total, per_pod) = plt.subplots(1, 2, figsize=(11, 4))
    for approach in dict.fromkeys(r["approach"] for r in rows):
        pts = [r for r in rows if r["approach"] == approach]
        total.plot([r["pods"] for r in pts], [r["seconds"] for r in pts], marker="o", label=approach)
        per_pod.plot([r["pods"] for r in pts], [r["ms_per_pod"] for r in pts], marker="o", label=approach)
    total.set_ylabel("seconds (lower is better)")
    per_pod.set_ylabel("ms per pod (log scale)")
    per_pod.set_yscale("log")
    for ax in (total, per_pod):
        ax.set_xlabel(f"pods (over {namespaces} namespaces)")
        ax.grid(alpha=0.3)
    total.legend()
    fig.suptitle("dns recipe on N pods, results back as data (local cluster, KWOK nodes)")
    fig.tight_layout()
    fig.savefig(OUT / "fleet_recipe.png", dpi=110)
    print(f"plot: {OUT / 'fleet_recipe.png'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,50,100", help="comma-separated fleet sizes")
    parser.add_argument("--namespaces", type=int, default=3, help="namespaces each fleet is spread over")
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--kubectl", required=True)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(args.kubeconfig, args.kubectl, Path(tmp))
        recipe = bench.recipe()
        per_pod = count([recipe.lines])
        print(f"recipe {RECIPE} {' '.join(NAMES)} run here: exit {recipe.code}, {per_pod.checks} checks per pod, "
              f"{per_pod.failed_checks} failed", file=sys.stderr)  # fmt: skip
        for n in [int(x) for x in args.sizes.split(",")]:
            rows += measure(bench, n, args.namespaces, recipe)
            print(f"{n} pods done", file=sys.stderr)
    print(f"{'pods':>5}  {'approach':<19} {'seconds':>8}  {'ms/pod':>7}  {'results':>7}  {'checks':>6}  {'failed':>6}  {'added':>5}")
    for r in rows:
        print(f"{r['pods']:>5}  {r['approach']:<19} {r['seconds']:>8.2f}  {r['ms_per_pod']:>7.0f}  {r['results']:>7}  "
              f"{r['checks']:>6}  {r['failed_checks']:>6}  {r['added']:>5}")  # fmt: skip
    (OUT / "fleet_recipe.json").write_text(json.dumps(rows, indent=2))
    plot(rows, args.namespaces)


if __name__ == "__main__":
    main()
