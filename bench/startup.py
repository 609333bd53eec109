"""Benchmark: the playbook floor, what a small fleet costs end to end (issue 13).

Two commands, each timed as the user runs it, on N pods of the local cluster:
  add            one ephemeral_container task over a label selector, wait=running, then a
                 copy task saving the result (bench/fleet_add.py's play); each run adds a new
                 container name to the same pods
  add rerun      the same play with the last name again: nothing to add (unchanged asserted)
  recipe         playbooks/fleet_diagnostics.yml, kd_recipe=dns, over 3 namespaces
                 (bench/fleet_recipe.py's "collection"); each run has a new kd_run_id
  recipe rerun   the same command with the same kd_run_id (changed=0 asserted)

``--checkout NAME=PATH`` (repeatable) times other copies of the collection too, say the
commit before a change (``git archive <commit> | tar -x -C /tmp/base``): the checkouts
take turns run by run, in a rotating order, so that a busy moment on a shared machine
hits them alike. Prints the median (and min/max) per checkout and command, with the median
CPU seconds of ansible-playbook and all it started (less sensitive to a busy machine), and writes
bench/out/startup.json. Nodes are KWOK's: the recipe's logs are the same stand-in as in
bench/fleet_recipe.py.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fleet_recipe import NAMES, OUT, PAUSE, RECIPE, ROOT, SELECTOR, Bench, Recipe, sh  # noqa: E402

from kubehelpers import serve_logs  # noqa: E402

IMAGE = "docker.io/library/busybox:1.36"
COMMANDS = ("add", "add rerun", "recipe", "recipe rerun")
CPU: list[float] = []  # the CPU seconds of the last ansible-playbook run, appended by add_play and recipe_play


def children_cpu() -> float:
    """CPU seconds (user + system) of every waited-for child so far: ansible-playbook, its workers and modules."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Checkout:
    """One copy of the collection, importable as kubedebug.ephemeral from a collections path of its own."""

    def __init__(self, name: str, path: Path, tmp: Path) -> None:
        self.name = name
        self.path = path.resolve()
        self.collections = tmp / f"collections-{name}"
        link = self.collections / "ansible_collections" / "kubedebug" / "ephemeral"
        link.parent.mkdir(parents=True)
        link.symlink_to(self.path)

    def env(self) -> dict[str, str]:
        return {
            "ANSIBLE_COLLECTIONS_PATH": str(self.collections),
            "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
            "ANSIBLE_NOCOLOR": "1",
        }


def add_play(bench: Bench, checkout: Checkout, namespace: str, container: str, tmp: Path) -> tuple[float, dict[str, Any]]:
    play = [{
        "hosts": "localhost", "gather_facts": False,
        "tasks": [
            {"name": "add", "kubedebug.ephemeral.ephemeral_container": {
                "kubeconfig": bench.kubeconfig, "namespace": namespace, "label_selector": SELECTOR,
                "container": container, "image": IMAGE, "command": ["sleep", "3600"], "wait": "running",
                "parallel": 10, "wait_timeout": 300}, "register": "r"},
            {"name": "save", "ansible.builtin.copy": {"content": "{{ r | to_json }}", "dest": str(tmp / "r.json")}},
        ],
    }]  # fmt: skip
    path = tmp / "add.yml"
    path.write_text(yaml.safe_dump(play))
    start, cpu = time.perf_counter(), children_cpu()
    sh("ansible-playbook", "-i", "localhost,", "-c", "local", str(path), env=checkout.env())
    elapsed = time.perf_counter() - start
    CPU.append(children_cpu() - cpu)
    return elapsed, json.loads((tmp / "r.json").read_text())


def recipe_play(bench: Bench, checkout: Checkout, nss: list[str], run_id: str, recipe: Recipe) -> tuple[float, dict[str, Any], str]:
    inventory = bench.tmp / f"{run_id}.inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {"kubedebug_clusters": {"hosts": {
        "local": {"kd_kubeconfig": bench.kubeconfig, "kd_namespaces": nss}}}}}}))  # fmt: skip
    out = bench.tmp / "fleet"
    extra = {
        "kd_recipe": RECIPE, "kd_label_selector": SELECTOR, "kd_run_id": run_id, "kd_dns_names": NAMES,
        "kd_output_dir": str(out), "kd_debug_env": {"KWOK_EXIT_CODE": str(recipe.code)}, "kd_wait_timeout": 300,
    }  # fmt: skip
    start, cpu = time.perf_counter(), children_cpu()
    proc = sh("ansible-playbook", "-i", str(inventory), str(checkout.path / "playbooks" / "fleet_diagnostics.yml"), "-e", json.dumps(extra), env=checkout.env())
    elapsed = time.perf_counter() - start
    CPU.append(children_cpu() - cpu)
    return elapsed, json.loads((out / f"fleet-{run_id}" / "summary.json").read_text()), proc.stdout


def add_fleet(bench: Bench, n: int) -> str:
    namespace = f"bench-{uuid.uuid4().hex[:6]}"
    core = bench.cluster.core
    core.create_namespace({"metadata": {"name": namespace}})
    for _attempt in range(300):
        if core.list_namespaced_service_account(namespace, field_selector="metadata.name=default").items:
            break
        time.sleep(0.1)
    for i in range(n):
        core.create_namespaced_pod(namespace, {
            "metadata": {"name": f"web-{i:04d}", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "app", "image": PAUSE}]},
        })  # fmt: skip
    bench.k("wait", "-n", namespace, "--for=jsonpath={.status.phase}=Running", "pod", "--all", "--timeout=300s")
    return namespace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5, help="runs of each command per checkout")
    parser.add_argument("--namespaces", type=int, default=3, help="namespaces the recipe's fleet is spread over")
    parser.add_argument("--checkout", action="append", default=[], metavar="NAME=PATH", help="another copy of the collection to time")
    parser.add_argument("--only", choices=("add", "recipe"), help="time one of the two plays only")
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--kubectl", required=True)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    seconds: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}

    def record(name: str, command: str, took: float) -> None:
        seconds.setdefault((name, command), []).append(took)
        cpu.setdefault((name, command), []).append(CPU[-1])

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        checkouts = [Checkout("this", ROOT, tmp)]
        for spec in args.checkout:
            name, _sep, path = spec.partition("=")
            checkouts.append(Checkout(name, Path(path), tmp))
        bench = Bench(args.kubeconfig, args.kubectl, tmp)
        recipe = bench.recipe()
        tag = uuid.uuid4().hex[:6]
        run_ids = {(c.name, i): f"st-{tag}-{c.name.lower()}-{i}" for c in checkouts for i in range(args.runs)}
        # One fleet for each play, shared by every checkout and run: each run adds a container of its own name.
        add_ns = add_fleet(bench, args.pods) if args.only != "recipe" else ""
        nss = bench.fleet(args.pods, args.namespaces, f"kd-{RECIPE}-{run_ids[(checkouts[0].name, 0)]}", recipe) if args.only != "add" else []
        try:
            pods = [(ns, p.metadata.name) for ns in nss for p in bench.cluster.core.list_namespaced_pod(ns, label_selector=SELECTOR).items]
            for run_id in list(run_ids.values())[1:]:
                for ns, pod in pods:
                    serve_logs(bench.cluster, ns, pod, f"kd-{RECIPE}-{run_id}", recipe.log_file)
            print(f"{args.pods} pods, {args.runs} runs per checkout and command: {', '.join(c.name for c in checkouts)}", file=sys.stderr)
            for i in range(args.runs):
                order = checkouts[i % len(checkouts) :] + checkouts[: i % len(checkouts)]
                for checkout in order:
                    if args.only != "recipe":
                        container = f"dbg-{checkout.name.lower()}-{i}"
                        took, result = add_play(bench, checkout, add_ns, container, tmp)
                        assert result["summary"]["added"] == args.pods, result["summary"]
                        record(checkout.name, "add", took)
                        took, result = add_play(bench, checkout, add_ns, container, tmp)
                        assert result["summary"]["unchanged"] == args.pods and not result["changed"], result["summary"]
                        record(checkout.name, "add rerun", took)
                    if args.only != "add":
                        run_id = run_ids[(checkout.name, i)]
                        took, summary, _stdout = recipe_play(bench, checkout, nss, run_id, recipe)
                        assert summary["pods"] == args.pods and summary["unfinished"] == [], summary
                        record(checkout.name, "recipe", took)
                        took, again, stdout = recipe_play(bench, checkout, nss, run_id, recipe)
                        recap = [line for line in stdout.split("PLAY RECAP")[1].splitlines() if ":" in line]
                        assert recap and all("changed=0" in line for line in recap), recap
                        assert again == summary, "the rerun reported other results"
                        record(checkout.name, "recipe rerun", took)
                print(f"run {i + 1} done", file=sys.stderr)
        finally:
            bench.delete([ns for ns in [add_ns, *nss] if ns])
    rows = [
        {
            "checkout": name, "command": command, "pods": args.pods, "runs": values, "median": statistics.median(values),
            "cpu_runs": cpu[(name, command)], "cpu_median": statistics.median(cpu[(name, command)]),
        }
        for (name, command), values in seconds.items()
    ]  # fmt: skip
    print(f"{'checkout':<10} {'command':<13} {'pods':>4}  {'median':>7}  {'min':>6}  {'max':>6}  {'CPU':>6}  runs (wall seconds)")
    for command in COMMANDS:
        for r in rows:
            if r["command"] == command:
                print(f"{r['checkout']:<10} {command:<13} {r['pods']:>4}  {r['median']:>6.2f}s  {min(r['runs']):>5.2f}s  {max(r['runs']):>5.2f}s  "
                      f"{r['cpu_median']:>5.2f}s  " + " ".join(f"{v:.2f}" for v in r["runs"]))  # fmt: skip
    (OUT / "startup.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
