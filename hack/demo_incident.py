"""`make demo`, second half: run playbooks/incident_response.yml against the sample workload.

``real`` mode: shop/web runs on the real node and the recipes run for real in debug
containers of the locally imported image kd.local/debug:1.

``kwok`` mode (a host that cannot run containers): the kubelets are simulated by KWOK,
so no debug container really runs. Each recipe's exact command is run here, on this
machine, first; its real output is served as the debug containers' log and its exit
code becomes theirs - the same stand-in the KWOK integration tests use
(tests/integration/kubehelpers.py).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from kubernetes import config  # noqa: E402

from kubehelpers import Cluster, prepare_recipe, recipe_command, run_playbook  # noqa: E402

NAMESPACE = "shop"
SELECTOR = "app.kubernetes.io/name=web"
REASON = "DEMO-1"
RUN_ID = "demo-1"
RECIPES = {"dns": ["kubernetes.default.svc", "web.shop.svc", "localhost"], "network": ["tcp:127.0.0.1:1"], "processes": []}
# On the real node the names resolve through the pods' own resolver and the checks reach
# the other replicas over the pod network; nope.shop.svc and port 9 fail for real.
REAL_RECIPES = {
    "dns": ["web.shop.svc.cluster.local", "kubernetes.default.svc.cluster.local", "nope.shop.svc.cluster.local"],
    "network": ["http://web.shop.svc.cluster.local:8080/", "tcp:web.shop.svc.cluster.local:9"],
    "processes": [],
}
DEBUG_IMAGE = "kd.local/debug:1"


def main() -> int:
    kubeconfig, kubectl, out_dir, mode = sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4]
    if mode == "real":
        return report(run_playbook("incident_response.yml", {**common(kubeconfig, out_dir, REAL_RECIPES), "kd_debug_image": DEBUG_IMAGE}), out_dir)
    cluster = Cluster(kubeconfig=kubeconfig, kubectl=kubectl, api_client=config.new_client_from_config(config_file=kubeconfig))
    pods = [(NAMESPACE, p.metadata.name) for p in cluster.core.list_namespaced_pod(NAMESPACE, label_selector=SELECTOR).items]
    logs = out_dir.parent / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    codes = set()
    for recipe, args in RECIPES.items():
        _output, code = prepare_recipe(cluster, pods, f"kd-{recipe}-{RUN_ID}", recipe_command(recipe, args), logs)
        codes.add(code)
    # One exit code for all: the recipes exit 0 unless the script itself broke.
    extra = {**common(kubeconfig, out_dir, RECIPES), "kd_debug_env": {"KWOK_EXIT_CODE": str(max(codes))}}
    return report(run_playbook("incident_response.yml", extra), out_dir)


def common(kubeconfig: str, out_dir: Path, recipes: dict[str, list[str]]) -> dict[str, Any]:
    return {
        "kd_namespace": NAMESPACE, "kd_label_selector": SELECTOR, "kd_reason": REASON, "kd_recipes": list(recipes),
        "kd_dns_names": recipes["dns"], "kd_network_checks": recipes["network"], "kd_output_dir": str(out_dir),
        "kd_auth": {"kubeconfig": kubeconfig},
    }  # fmt: skip


def report(result: subprocess.CompletedProcess[str], out_dir: Path) -> int:
    print(result.stdout[-2500:])
    if result.returncode != 0:
        print(result.stderr[-2500:], file=sys.stderr)
        return result.returncode
    print(f"Incident report: {out_dir / RUN_ID / 'report.html'} (also report.md and report.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
