"""Benchmark: add a debug container to a fleet of pods, ephemeral_container vs a kubectl debug loop.

Runs against the embedded local cluster (hack/cluster.sh). Nodes and kubelets are
simulated by KWOK, so what is measured is the client side and the API server:
selecting pods, patching pods/ephemeralcontainers and waiting for status. Image
pulls and container starts on a real node would add the same time to both tools.

For each fleet size N, in one run and on the same cluster:
  kubectl loop       `kubectl debug <pod> -c dbg --image ... -- sleep 3600` once per pod,
                     sequentially, as in a shell loop; it does not wait for the container
  kubectl loop+wait  the same, then `kubectl wait` for every pod's container to run
  module             one ephemeral_container task over a label selector (parallel=10, wait=running)
  module rerun       the same task again: nothing to add (changed=false)

Prints a table, writes bench/out/fleet_add.json and, when matplotlib is available,
bench/out/fleet_add.png.
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
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
IMAGE = "docker.io/library/busybox:1.36"


def sh(*cmd: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=True, env={**os.environ, **(env or {})})


class Bench:
    def __init__(self, kubeconfig: str, kubectl: str) -> None:
        self.kubeconfig = kubeconfig
        self.kubectl = kubectl

    def k(self, *args: str) -> subprocess.CompletedProcess[str]:
        return sh(self.kubectl, "--kubeconfig", self.kubeconfig, *args)

    def fleet(self, n: int) -> str:
        ns = f"bench-{uuid.uuid4().hex[:6]}"
        self.k("create", "namespace", ns)
        for _attempt in range(200):
            if self.k("get", "serviceaccount", "-n", ns, "-o", "name").stdout.strip():
                break
            time.sleep(0.1)
        pods = [
            {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": f"web-{i:04d}", "labels": {"app": "web"}},
             "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]}}
            for i in range(n)
        ]
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            yaml.safe_dump_all(pods, f)
        self.k("apply", "-n", ns, "-f", f.name)
        os.unlink(f.name)
        self.k("wait", "-n", ns, "--for=jsonpath={.status.phase}=Running", "pod", "--all", "--timeout=300s")
        return ns

    def kubectl_loop(self, ns: str, n: int, wait: bool) -> float:
        start = time.perf_counter()
        for i in range(n):
            self.k("debug", "-n", ns, f"web-{i:04d}", f"--image={IMAGE}", "-c", "dbg", "--profile=general",
                   "--target=app", "--", "sleep", "3600")
        if wait:
            self.k("wait", "-n", ns, "--for=jsonpath={.status.ephemeralContainerStatuses[0].state.running}",
                   "pod", "--all", "--timeout=300s")
        return time.perf_counter() - start

    def module(self, ns: str, playbook_dir: Path) -> tuple[float, dict[str, Any]]:
        play = [{
            "hosts": "localhost", "gather_facts": False,
            "tasks": [
                {"name": "add", "kubedebug.ephemeral.ephemeral_container": {
                    "kubeconfig": self.kubeconfig, "namespace": ns, "label_selector": "app=web",
                    "container": "dbg", "image": IMAGE, "command": ["sleep", "3600"], "wait": "running",
                    "parallel": 10, "wait_timeout": 300}, "register": "r"},
                {"name": "save", "ansible.builtin.copy": {"content": "{{ r | to_json }}", "dest": str(playbook_dir / "r.json")}},
            ],
        }]
        path = playbook_dir / "play.yml"
        path.write_text(yaml.safe_dump(play))
        start = time.perf_counter()
        sh("ansible-playbook", "-i", "localhost,", "-c", "local", str(path),
           env={"ANSIBLE_PYTHON_INTERPRETER": sys.executable})
        elapsed = time.perf_counter() - start
        return elapsed, json.loads((playbook_dir / "r.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,50,100", help="comma-separated fleet sizes")
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--kubectl", required=True)
    args = parser.parse_args()
    bench = Bench(args.kubeconfig, args.kubectl)
    rows: list[dict[str, Any]] = []
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for n in [int(x) for x in args.sizes.split(",")]:
            # "module" also measures the rerun, on the same pods.
            for tool in ("kubectl loop", "kubectl loop+wait", "module"):
                ns = bench.fleet(n)
                try:
                    if tool.startswith("kubectl"):
                        seconds = bench.kubectl_loop(ns, n, wait=tool.endswith("wait"))
                        rows.append({"pods": n, "tool": tool, "seconds": seconds, "changed": n})
                    else:
                        seconds, result = bench.module(ns, Path(tmp))
                        assert result["summary"]["added"] == n, result["summary"]
                        rows.append({"pods": n, "tool": "module", "seconds": seconds, "changed": n})
                        seconds, result = bench.module(ns, Path(tmp))
                        assert result["summary"]["unchanged"] == n and not result["changed"], result["summary"]
                        rows.append({"pods": n, "tool": "module rerun", "seconds": seconds, "changed": 0})
                finally:
                    bench.k("delete", "namespace", ns, "--wait=false")
    print(f"{'pods':>5}  {'tool':<18} {'seconds':>8}  {'pods/s':>7}  {'containers added':>16}")
    for r in rows:
        print(f"{r['pods']:>5}  {r['tool']:<18} {r['seconds']:>8.2f}  {r['pods'] / r['seconds']:>7.1f}  {r['changed']:>16}")
    (OUT / "fleet_add.json").write_text(json.dumps(rows, indent=2))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot", file=sys.stderr)
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    for tool in dict.fromkeys(r["tool"] for r in rows):
        pts = [(r["pods"], r["seconds"]) for r in rows if r["tool"] == tool]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=tool)
    ax.set_xlabel("pods")
    ax.set_ylabel("seconds (lower is better)")
    ax.set_title("Adding a debug container to N pods (local cluster, KWOK nodes)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(OUT / "fleet_add.png", dpi=110)
    print(f"plot: {OUT / 'fleet_add.png'}")


if __name__ == "__main__":
    main()
