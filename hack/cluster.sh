#!/usr/bin/env bash
# The embedded local control plane: a real kube-apiserver, etcd,
# kube-controller-manager and kube-scheduler, with kwok simulating $KD_NODES nodes and
# their kubelets, and one real node (kubelet, containerd, runc: hack/node.sh) where the
# host can run containers. Everything listens on 127.0.0.1 and lives under $KD_CACHE.
#
#   hack/cluster.sh up      start (or reuse) the cluster; last line: KUBECONFIG=<path>
#   hack/cluster.sh down    stop every process it started and remove its state
#   hack/cluster.sh status  exit 0 when the cluster answers /readyz
set -euo pipefail

# shellcheck source=hack/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
KD_LOG_PREFIX="[cluster]"
: "${KD_CLUSTER:=kubedebug}"
: "${KD_NODES:=2}"
: "${KWOK_VERSION:=0.8.0}"
# API Priority and Fairness (and the in-flight limits) are off by default so that tests and
# benchmarks measure the collection, not throttling; the throttling tests turn them on
# in a cluster of their own (KD_APF=1).
: "${KD_APF:=0}"
export KWOK_WORKDIR=$KD_CACHE/kwok
export PATH=$KD_BIN:$PATH GOTOOLCHAIN=local
WD=$KWOK_WORKDIR/clusters/$KD_CLUSTER
KUBECONFIG_PATH=$WD/kubeconfig.yaml

# kwokctl logs JSON lines at INFO: keep them in a file, show them only on failure.
KWOKCTL_LOG=$KWOK_WORKDIR/kwokctl.log
quiet() {
  mkdir -p "$KWOK_WORKDIR"
  if ! "$@" >>"$KWOKCTL_LOG" 2>&1; then
    tail -n 40 "$KWOKCTL_LOG" >&2
    kd_log "failed: $* (full log: $KWOKCTL_LOG)"
    return 1
  fi
}
kc() { "$KD_BIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

ready() {
  [ -f "$KUBECONFIG_PATH" ] && kc get --raw /readyz >/dev/null 2>&1
}

# Pids of every process of ours still alive (kwokctl writes one file per component).
our_pids() {
  [ -d "$WD/pids" ] || return 0
  local f p
  for f in "$WD"/pids/*.pid; do
    [ -e "$f" ] || continue
    p=$(cat "$f" 2>/dev/null || true)
    if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then echo "$p"; fi
  done
}

render_config() {
  local state=$KWOK_WORKDIR/extra/$KD_CLUSTER
  mkdir -p "$state/sandbox" "$state/logs"
  # Default log for any container without a per-pod Logs object (CRI format,
  # which is what kwok serves through the kubelet log endpoint).
  printf '%s stdout F kwok: no log fixture configured for this container\n' \
    "$(date -u +%Y-%m-%dT%H:%M:%S.000000000Z)" > "$state/logs/default.log"
  cat > "$state/cluster.yaml" <<YAML
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  runtime: binary
  kubeVersion: v$(cat "$KD_BIN/.kube-apiserver.version")
  bindAddress: 127.0.0.1
  kubeApiserverBinary: $KD_BIN/kube-apiserver
  kubeControllerManagerBinary: $KD_BIN/kube-controller-manager
  kubeSchedulerBinary: $KD_BIN/kube-scheduler
  kubectlBinary: $KD_BIN/kubectl
  kwokControllerBinary: $KD_BIN/kwok
  etcdBinary: $KD_BIN/etcd
  disableQPSLimits: $([ "$KD_APF" = 1 ] && echo false || echo true)
  # Per-pod Logs/Exec/Attach objects can be applied by tests; the cluster-wide
  # defaults below come from this file.
  enableCRDs: [Logs, Exec, Attach]
componentsPatches:
# kwok simulates only the nodes it created (kwokctl scale node annotates them), never
# the real node that hack/node.sh registers beside them.
- name: kwok-controller
  extraArgs:
  - {key: manage-all-nodes, value: "false", override: true}
  - {key: manage-nodes-with-annotation-selector, value: kwok.x-k8s.io/node=fake}
# The real kubelet authenticates the API server by a client certificate (for logs,
# exec and attach); kwok's fake kubelets ignore it.
- name: kube-apiserver
  extraArgs:
  - {key: kubelet-client-certificate, value: $WD/pki/admin.crt}
  - {key: kubelet-client-key, value: $WD/pki/admin.key}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterLogs
metadata:
  name: default-logs
spec:
  logs:
  - logsFile: $state/logs/default.log
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterAttach
metadata:
  name: default-attach
spec:
  attaches:
  - logsFile: $state/logs/default.log
---
# kwok runs exec'd commands on this host, as the user running the cluster:
# a sandbox working directory keeps them away from the checkout.
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterExec
metadata:
  name: default-exec
spec:
  execs:
  - local:
      workDir: $state/sandbox
      envs:
      - name: KWOK_SIMULATED_EXEC
        value: "1"
YAML
  echo "$state/cluster.yaml"
}

up() {
  if ready; then
    kd_log "reusing the running cluster '$KD_CLUSTER'"
    real_node
    echo "KUBECONFIG=$KUBECONFIG_PATH"
    return 0
  fi
  bash "$ROOT/hack/build-control-plane.sh"
  if [ -d "$WD" ]; then
    kd_log "removing a stale cluster state"
    down >/dev/null
  fi
  local fast conf
  fast=$(go env GOMODCACHE)/sigs.k8s.io/kwok@v$KWOK_VERSION/kustomize/stage/fast
  if [ ! -d "$fast" ]; then
    go mod download "sigs.k8s.io/kwok@v$KWOK_VERSION"
  fi
  conf=$(render_config)
  kd_log "creating cluster '$KD_CLUSTER'"
  # Any Stage given with -c replaces kwok's default stages, so the default
  # node/pod lifecycle ("fast") is passed explicitly beside ours.
  quiet kwokctl create cluster --name "$KD_CLUSTER" \
    -c "$fast" -c "$ROOT/tests/kwok/stages" -c "$conf" \
    --kubeconfig "" --wait 3m
  quiet kwokctl --name "$KD_CLUSTER" scale node --replicas "$KD_NODES"
  kc wait --for=condition=Ready node --all --timeout=120s >&2
  # ServiceAccount admission refuses pods until the controller-manager has
  # created the namespace's default ServiceAccount.
  for _ in $(seq 1 120); do
    kc get serviceaccount default -n default >/dev/null 2>&1 && break
    sleep 0.5
  done
  kc get serviceaccount default -n default >/dev/null
  real_node
  kd_log "cluster '$KD_CLUSTER' is up"
  echo "KUBECONFIG=$KUBECONFIG_PATH"
}

# The real node (hack/node.sh) comes up by default where the host can run containers;
# elsewhere one line says why not and the cluster has only KWOK nodes.
real_node() {
  local why
  if why=$(bash "$ROOT/hack/node.sh" check); then
    bash "$ROOT/hack/node.sh" up
  else
    kd_log "no real node: $why"
  fi
}

down() {
  local pids
  # A cluster brought up without the real node (KD_REAL_NODE=0, e.g. the fault tests' own
  # cluster) must leave alone the host-wide resources (pod bridge, /etc/hosts entry) that
  # another cluster's real node uses.
  if [ "${KD_REAL_NODE:-1}" != 0 ]; then bash "$ROOT/hack/node.sh" down || true; fi
  pids=$(our_pids)
  if [ -d "$WD" ]; then
    quiet kwokctl delete cluster --name "$KD_CLUSTER" || true
  fi
  # kwokctl stops components by their pid files; anything still alive is ours
  # and must not outlive the cluster.
  for p in $pids; do
    if kill -0 "$p" 2>/dev/null; then
      kill "$p" 2>/dev/null || true
      sleep 1
      kill -9 "$p" 2>/dev/null || true
    fi
  done
  rm -rf "$WD" "$KWOK_WORKDIR/extra/$KD_CLUSTER"
  kd_log "cluster '$KD_CLUSTER' is down"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) ready ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
