#!/usr/bin/env bash
# `make demo`: bring up the embedded cluster, deploy the sample workload and run
# playbooks/incident_response.yml against shop/web.
# With the real node (hack/node.sh; the default where this host can run containers)
# shop/web runs there and every debug container really runs. Without it, shop/web runs
# on KWOK nodes and the recipes' output is produced on this host and served as their logs.
set -euo pipefail
# shellcheck source=hack/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
kubeconfig=$(bash "$ROOT/hack/cluster.sh" up | tail -n 1 | cut -d= -f2-)
kc() { "$KD_BIN/kubectl" --kubeconfig "$kubeconfig" "$@"; }
if bash "$ROOT/hack/node.sh" status >/dev/null 2>&1; then mode=real; else mode=kwok; fi
kc apply -f "$ROOT/hack/demo" -f "$ROOT/hack/demo/$mode"
# Namespaces are new: pods are refused until their default ServiceAccount exists,
# and the Deployment controller retries on its own, so waiting for rollout is enough.
kc -n shop rollout status deployment/web --timeout=180s
kc -n payments rollout status deployment/api --timeout=120s
echo
if [ "$mode" = real ]; then
  echo "Sample workload (shop/web on the real node kd-real-node, payments/api on KWOK nodes):"
else
  echo "Sample workload (no real node on this host: nodes and container processes simulated by KWOK):"
fi
kc get pods -n shop -o wide
kc get pods -n payments -o wide
echo
echo "Point kubectl and Ansible at it with:"
echo "  export KUBECONFIG=$kubeconfig"
echo "  $KD_BIN/kubectl get pods -A"

echo
echo "Running playbooks/incident_response.yml against shop/web (reason DEMO-1)..."
kd_profile_env latest
mkdir -p "$ROOT/.cache/demo"
"$KD_VENV/bin/python" "$ROOT/hack/demo_incident.py" "$kubeconfig" "$KD_BIN/kubectl" "$ROOT/.cache/demo/incidents" "$mode"
