#!/usr/bin/env bash
# The real node of the embedded cluster: containerd 2 + runc + the kubelet, next to the
# KWOK nodes. It registers as $KD_REAL_NODE_NAME with the cluster's own CA, carries the
# label kubedebug.io/node=real and the taint kubedebug.io/node=real:NoSchedule, so only
# pods that tolerate it land there. Pods live on a CNI bridge inside network namespaces
# this node creates; they have no route off the bridge's subnet and no masquerade, and
# their resolver is a dnsmasq of ours on the bridge (answers only the cluster domain,
# never forwards). containerd pulls from no registry: every host maps to a closed port
# on 127.0.0.1, so an image that was not imported fails with the kubelet's real
# ErrImagePull and no packet leaves the machine.
#
#   hack/node.sh check    exit 0 when this host can run the node, else print one line why not
#   hack/node.sh up       start (or reuse) the node; the cluster must be up
#   hack/node.sh down     stop everything the node started, unmount and remove its state
#   hack/node.sh status   exit 0 when the node is Ready
#   hack/node.sh leftovers  list processes, mounts, namespaces and links of ours still present
set -euo pipefail

# shellcheck source=hack/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
KD_LOG_PREFIX="[node]"
: "${KD_CLUSTER:=kubedebug}"
: "${KD_REAL_NODE_NAME:=kd-real-node}"
# A /24 that no route of this machine uses; the bridge takes .1, pods the rest.
: "${KD_POD_SUBNET:=10.244.0.0/24}"
: "${KD_POD_BRIDGE:=kd-br0}"
export PATH=$KD_BIN:$PATH GOTOOLCHAIN=local
WD=$KD_CACHE/kwok/clusters/$KD_CLUSTER
KUBECONFIG_PATH=$WD/kubeconfig.yaml
NODE=$KD_CACHE/node/$KD_CLUSTER
SOCK=$NODE/run/containerd.sock
PREFIX=${KD_POD_SUBNET%/*}
GATEWAY=${PREFIX%.*}.$(( ${PREFIX##*.} + 1 ))
# Outside $NODE, which down removes only after the cgroups.
CGROUPS_MADE=$KD_CACHE/node/.$KD_CLUSTER.cgroups
# The cgroup the node nested under when it came up: down may run from another cgroup.
CGROUP_BASE=$KD_CACHE/node/.$KD_CLUSTER.cgroup-base
HOSTS_MARK="# kubedebug.ephemeral real node $KD_CLUSTER"

kc() { "$KD_BIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }
ctr_() { "$KD_BIN/ctr" --address "$SOCK" --namespace k8s.io "$@"; }

# The cgroup (memory hierarchy) this process runs in: the node's cgroups nest below it,
# so nothing the node starts leaves the cgroups of whoever started the cluster.
own_cgroup() {
  local line path
  line=$(grep -E '^[0-9]+:([^:]*,)?memory(,[^:]*)?:' /proc/self/cgroup || true)
  path=${line#*:*:}
  [ -n "$line" ] || path=$(sed -n 's/^0:://p' /proc/self/cgroup)
  [ "$path" = "/" ] && path=""
  echo "$path"
}

cgroup_version() {
  if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then echo 2; else echo 1; fi
}

# One line saying why this host cannot run the node, or nothing.
why_not() {
  [ "${KD_REAL_NODE:-1}" = 0 ] && { echo "KD_REAL_NODE=0"; return; }
  [ "$(uname -s)" = Linux ] || { echo "not Linux"; return; }
  [ "$(id -u)" = 0 ] || { echo "not root (containerd and the kubelet need root)"; return; }
  grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || true
  grep -qw overlay /proc/filesystems || { echo "the kernel has no overlayfs"; return; }
  local cg probe
  cg=$(own_cgroup)
  if [ "$(cgroup_version)" = 1 ]; then probe=/sys/fs/cgroup/memory$cg/kd-probe-$$
  else probe=/sys/fs/cgroup$cg/kd-probe-$$; fi
  if ! mkdir "$probe" 2>/dev/null; then echo "cannot create cgroups under ${probe%/*}"; return; fi
  rmdir "$probe"
  local t
  for t in ip openssl dnsmasq unshare mount; do
    command -v "$t" >/dev/null 2>&1 || { echo "$t is missing (hack/prereqs.sh installs it)"; return; }
  done
  [ -w /etc/hosts ] || { echo "/etc/hosts is not writable (the API server finds the kubelet by the node's name)"; return; }
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_bg() { # name, command...: start detached, pid in $NODE/pids/<name>.pid, log in $NODE/logs/<name>.log
  local name=$1; shift
  # 9>&-: not the lock of "up" (fd 9), which the daemons would otherwise hold for as long as they run, so that every
  # later "up" or "down" waited for it for ever.
  setsid "$@" >>"$NODE/logs/$name.log" 2>&1 < /dev/null 9>&- &
  echo $! > "$NODE/pids/$name.pid"
}

wait_until() { # seconds, description, command...
  local secs=$1 what=$2; shift 2
  local end=$(( $(date +%s) + secs ))
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$end" ]; then kd_log "timed out after ${secs}s waiting for $what"; return 1; fi
    sleep 0.5
  done
}

write_pki() {
  local d=$NODE/pki
  mkdir -p "$d"
  [ -f "$d/kubelet.crt" ] && return 0
  # The kubelet's client identity, signed by the cluster's own CA: the Node authorizer
  # grants system:node:<name> in group system:nodes exactly what a kubelet needs.
  openssl req -new -newkey rsa:2048 -nodes -keyout "$d/kubelet.key" -out "$d/kubelet.csr" \
    -subj "/O=system:nodes/CN=system:node:$KD_REAL_NODE_NAME" 2>/dev/null
  openssl x509 -req -in "$d/kubelet.csr" -CA "$WD/pki/ca.crt" -CAkey "$WD/pki/ca.key" -CAcreateserial \
    -out "$d/kubelet.crt" -days 30 2>/dev/null
  local server
  server=$(sed -n 's/^ *server: *//p' "$KUBECONFIG_PATH" | head -n 1)
  cat > "$NODE/kubelet.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster: {server: "$server", certificate-authority: "$WD/pki/ca.crt"}
users:
- name: kubelet
  user: {client-certificate: "$d/kubelet.crt", client-key: "$d/kubelet.key"}
contexts:
- name: kubelet
  context: {cluster: local, user: kubelet}
current-context: kubelet
EOF
}

# Lowering a process's oom_score_adj needs CAP_SYS_RESOURCE, which a sandboxed root may
# lack; the kubelet asks for -998 for every pod sandbox. Without it containerd is told
# to keep scores at or above its own (what it does when it runs rootless).
can_lower_oom_score() {
  sh -c 'echo -1 > /proc/self/oom_score_adj && [ "$(cat /proc/self/oom_score_adj)" = -1 ]' 2>/dev/null
}

write_containerd_config() {
  mkdir -p "$NODE/cni/conf" "$NODE/cni/data" "$NODE/registry/_default"
  # Every registry maps to a closed port on loopback: pulls fail at once, nothing is resolved.
  cat > "$NODE/registry/_default/hosts.toml" <<'EOF'
server = "http://127.0.0.1:9"
[host."http://127.0.0.1:9"]
  capabilities = ["pull", "resolve"]
EOF
  cat > "$NODE/cni/conf/10-kd-pods.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "kd-pods",
  "plugins": [{
    "type": "bridge", "bridge": "$KD_POD_BRIDGE",
    "isGateway": true, "isDefaultGateway": false, "ipMasq": false, "hairpinMode": true,
    "ipam": {"type": "host-local", "ranges": [[{"subnet": "$KD_POD_SUBNET", "gateway": "$GATEWAY"}]],
             "dataDir": "$NODE/cni/data"}
  }]
}
EOF
  cat > "$NODE/containerd.toml" <<EOF
version = 3
root = "$NODE/containerd/root"
state = "$NODE/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.blockfile",
                    "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "kd.local/pause:3.10"
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = "$NODE/registry"
[plugins.'io.containerd.cri.v1.runtime']
  enable_selinux = false
  restrict_oom_score_adj = $(can_lower_oom_score && echo false || echo true)
  netns_mounts_under_state_dir = true
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["$KD_BIN/cni"]
    conf_dir = "$NODE/cni/conf"
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "$KD_BIN/runc"
        SystemdCgroup = false
[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
EOF
}

write_kubelet_config() {
  local cg=$1 port=$2 hport=$3
  echo "nameserver $GATEWAY" > "$NODE/resolv.conf"
  {
    cat <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: $port
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $hport
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$WD/pki/ca.crt"}
authorization: {mode: Webhook}
containerRuntimeEndpoint: "unix://$SOCK"
cgroupDriver: cgroupfs
cgroupRoot: "$cg/kubedebug-node"
cgroupsPerQOS: true
enforceNodeAllocatable: [pods]
clusterDomain: cluster.local
clusterDNS: ["$GATEWAY"]
resolvConf: "$NODE/resolv.conf"
failSwapOn: false
registerWithTaints:
- {key: kubedebug.io/node, value: real, effect: NoSchedule}
# A small shared machine: never evict for disk or memory pressure, never GC our images.
evictionHard: {memory.available: "0%", nodefs.available: "0%", imagefs.available: "0%", nodefs.inodesFree: "0%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
maxPods: 110
podPidsLimit: 4096
staticPodPath: ""
volumePluginDir: "$NODE/kubelet-plugins"
nodeStatusReportFrequency: 10s
EOF
    # Kubelet 1.35+ refuses cgroup v1 unless told otherwise; only said where it applies.
    if [ "$(cgroup_version)" = 1 ]; then echo "failCgroupV1: false"; fi
  } > "$NODE/kubelet.yaml"
}

# The kubelet wants its cgroup root to exist in every hierarchy. cgroup v1 cpuset starts a
# new cgroup with no CPUs or memory nodes, so each new level inherits its parent's.
make_cgroups() {
  local cg=$1 h rel dir parent f
  for h in /sys/fs/cgroup/*/; do
    h=${h%/}
    [ -e "$h/cgroup.procs" ] || continue
    rel=""
    for part in $(echo "$cg/kubedebug-node" | tr '/' ' '); do
      parent=$h$rel; rel=$rel/$part; dir=$h$rel
      [ -d "$dir" ] && continue
      mkdir "$dir"
      echo "$dir" >> "$CGROUPS_MADE"
      for f in cpuset.cpus cpuset.mems; do
        if [ -e "$dir/$f" ]; then cat "$parent/$f" > "$dir/$f"; fi
      done
    done
  done
}

hosts_entry() { # add|remove the node's name in /etc/hosts (the API server dials the kubelet by it)
  local tmp
  [ "$1" = remove ] && ! grep -qF "$HOSTS_MARK" /etc/hosts && return 0
  tmp=$(grep -vF "$HOSTS_MARK" /etc/hosts || true)
  if [ "$1" = add ]; then tmp=$(printf '%s\n127.0.0.1 %s %s' "$tmp" "$KD_REAL_NODE_NAME" "$HOSTS_MARK"); fi
  # In place: /etc/hosts may be a bind mount that a rename would not reach.
  printf '%s\n' "$tmp" > /etc/hosts
}

bridge_up() {
  if ! ip link show "$KD_POD_BRIDGE" >/dev/null 2>&1; then
    ip link add "$KD_POD_BRIDGE" type bridge
  fi
  ip addr replace "$GATEWAY/${KD_POD_SUBNET#*/}" dev "$KD_POD_BRIDGE"
  ip link set "$KD_POD_BRIDGE" up
}

start_dns() {
  mkdir -p "$NODE/dns/hosts"
  : > "$NODE/dns/hosts/services"
  # Authoritative for the cluster domain only; --no-resolv: nothing is ever forwarded.
  start_bg dnsmasq dnsmasq --keep-in-foreground --no-resolv --no-hosts --no-poll --bind-interfaces \
    --listen-address="$GATEWAY" --except-interface=lo --local=/cluster.local/ --domain-needed \
    --hostsdir="$NODE/dns/hosts" --log-facility=- --pid-file= --user=root
  start_bg dns-sync bash "$ROOT/hack/node-dns-sync.sh" "$KUBECONFIG_PATH" "$NODE/dns/hosts"
}

import_images() {
  local out=$KD_CACHE/images line ref tar
  python3 "$ROOT/hack/images/build_images.py" --out "$out" > "$NODE/images.txt" 2>>"$NODE/logs/import.log" \
    || { tail -n 20 "$NODE/logs/import.log" >&2; kd_log "building the images failed"; return 1; }
  while read -r ref tar; do
    [ -n "$ref" ] || continue
    if ! ctr_ images ls -q 2>/dev/null | grep -qxF "$ref"; then
      ctr_ images import --platform linux/amd64 "$tar" >>"$NODE/logs/import.log" 2>&1 \
        || { tail -n 20 "$NODE/logs/import.log" >&2; kd_log "importing $ref failed"; return 1; }
    fi
  done < "$NODE/images.txt"
}

node_ready() {
  [ "$(kc get node "$KD_REAL_NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

# Ready, or stop waiting at once when the kubelet died (its log says why).
kubelet_ready() {
  pid_alive "$NODE/pids/kubelet.pid" || { kd_log "the kubelet exited"; return 0; }
  node_ready
}

up() {
  local reason
  reason=$(why_not)
  if [ -n "$reason" ]; then kd_log "no real node on this host: $reason"; return 3; fi
  [ -f "$KUBECONFIG_PATH" ] || { kd_log "the cluster is not up (run hack/cluster.sh up)"; return 1; }
  if pid_alive "$NODE/pids/kubelet.pid" && pid_alive "$NODE/pids/containerd.pid" && node_ready; then
    kd_log "reusing the real node '$KD_REAL_NODE_NAME'"
    return 0
  fi
  [ -d "$NODE" ] && down >/dev/null 2>&1
  bash "$ROOT/hack/build-node.sh"
  mkdir -p "$NODE"/{pids,logs,run,kubelet,containerd}
  write_pki
  write_containerd_config
  local cg port hport
  cg=$(own_cgroup); port=$(free_port); hport=$(free_port)
  echo "$cg" > "$CGROUP_BASE"
  write_kubelet_config "$cg" "$port" "$hport"
  make_cgroups "$cg"
  hosts_entry add
  bridge_up
  start_dns
  kd_log "starting containerd"
  start_bg containerd containerd --config "$NODE/containerd.toml"
  wait_until 60 "containerd" ctr_ version
  kd_log "importing images"
  import_images
  kd_log "starting the kubelet ($KD_REAL_NODE_NAME)"
  start_bg kubelet kubelet --config "$NODE/kubelet.yaml" --kubeconfig "$NODE/kubelet.kubeconfig" \
    --hostname-override "$KD_REAL_NODE_NAME" --node-ip "$GATEWAY" --node-labels kubedebug.io/node=real \
    --root-dir "$NODE/kubelet" --cert-dir "$NODE/pki/serving" --v 1
  if ! wait_until 180 "node $KD_REAL_NODE_NAME to be Ready" kubelet_ready; then
    tail -n 30 "$NODE/logs/kubelet.log" >&2
    return 1
  fi
  if ! node_ready; then
    grep -E '^E[0-9]{4} ' "$NODE/logs/kubelet.log" | tail -n 5 >&2
    kd_log "the kubelet exited before node $KD_REAL_NODE_NAME became Ready (log: $NODE/logs/kubelet.log)"
    return 1
  fi
  kd_log "real node '$KD_REAL_NODE_NAME' is Ready (pods on $KD_POD_SUBNET, DNS $GATEWAY)"
}

stop_pid() { # pidfile: TERM, then KILL after a grace period
  local f=$1 p
  [ -f "$f" ] || return 0
  p=$(cat "$f")
  if kill -0 "$p" 2>/dev/null; then
    kill -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$p" 2>/dev/null || break; sleep 0.25; done
    kill -9 -- "-$p" 2>/dev/null || kill -9 "$p" 2>/dev/null || true
  fi
  rm -f "$f"
}

# Pids of processes in the node's cgroups (containers, shims' children) and of shims
# serving our containerd.
node_pids() {
  local cg=$1 d
  for d in /sys/fs/cgroup/*"$cg"/kubedebug-node; do
    [ -d "$d" ] && find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null
  done
  pgrep -f -- "containerd-shim-runc-v2 .*-address $SOCK( |$)" 2>/dev/null || true
}

node_mounts() { awk -v p="$NODE/" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo | sort -r; }

node_cgroup() { if [ -f "$CGROUP_BASE" ]; then cat "$CGROUP_BASE"; else own_cgroup; fi; }

down() {
  local cg p m
  cg=$(node_cgroup)
  stop_pid "$NODE/pids/kubelet.pid"
  if pid_alive "$NODE/pids/containerd.pid"; then
    # Stop the containers through containerd first, so the shims exit by themselves.
    for p in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s KILL "$p" >/dev/null 2>&1 || true; done
    sleep 1
  fi
  stop_pid "$NODE/pids/containerd.pid"
  for p in $(node_pids "$cg"); do kill -9 "$p" 2>/dev/null || true; done
  stop_pid "$NODE/pids/dns-sync.pid"
  stop_pid "$NODE/pids/dnsmasq.pid"
  for m in $(node_mounts); do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  # Child cgroups first: rmdir only removes empty ones. Then the levels above that
  # make_cgroups created (never one that was there before).
  for p in /sys/fs/cgroup/*"$cg"/kubedebug-node; do
    if [ -d "$p" ]; then find "$p" -depth -type d -exec rmdir {} + 2>/dev/null || true; fi
  done
  if [ -f "$CGROUPS_MADE" ]; then
    sort -r "$CGROUPS_MADE" | while read -r p; do rmdir "$p" 2>/dev/null || true; done
    rm -f "$CGROUPS_MADE"
  fi
  rm -f "$CGROUP_BASE"
  ip link del "$KD_POD_BRIDGE" 2>/dev/null || true
  hosts_entry remove
  rm -rf "$NODE"
  local left
  left=$(leftovers "$cg")
  if [ -n "$left" ]; then kd_log "left behind after down:"; echo "$left" >&2; return 1; fi
  kd_log "real node '$KD_REAL_NODE_NAME' is down"
}

# Exit 0 when the node works; otherwise one line per broken piece.
status() {
  local bad=0
  if ! { pid_alive "$NODE/pids/containerd.pid" && ctr_ version >/dev/null 2>&1; }; then
    echo "containerd is not running or does not answer on $SOCK"; bad=1
  fi
  pid_alive "$NODE/pids/kubelet.pid" || { echo "the kubelet is not running"; bad=1; }
  pid_alive "$NODE/pids/dnsmasq.pid" || { echo "the pods' resolver (dnsmasq) is not running"; bad=1; }
  node_ready || { echo "node $KD_REAL_NODE_NAME is not Ready"; bad=1; }
  return $bad
}

leftovers() {
  local cg=${1:-$(node_cgroup)} p
  for p in $(node_pids "$cg"); do echo "process $p: $(tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null)"; done
  pgrep -af -- "$NODE/" 2>/dev/null | grep -v "pgrep" | sed 's/^/process /' || true
  node_mounts | sed 's/^/mount /'
  ip link show "$KD_POD_BRIDGE" >/dev/null 2>&1 && echo "link $KD_POD_BRIDGE"
  grep -qF "$HOSTS_MARK" /etc/hosts && echo "/etc/hosts entry for $KD_REAL_NODE_NAME"
  [ -d "$NODE" ] && echo "directory $NODE"
  for p in /sys/fs/cgroup/*"$cg"/kubedebug-node; do [ -d "$p" ] && echo "cgroup $p"; done
  if [ -f "$CGROUPS_MADE" ]; then sed 's/^/cgroup /' "$CGROUPS_MADE"; fi
  return 0
}

case "${1:-}" in
  check) r=$(why_not); if [ -n "$r" ]; then echo "$r"; exit 1; fi ;;
  # One at a time: two "up"s at once (two test runs sharing a cluster) each started a kubelet,
  # a containerd and a dnsmasq, and the second's pid files pointed at processes that had exited.
  up) mkdir -p "$KD_CACHE/node"; exec 9>"$KD_CACHE/node/.$KD_CLUSTER.lock"; flock 9; up ;;
  down) mkdir -p "$KD_CACHE/node"; exec 9>"$KD_CACHE/node/.$KD_CLUSTER.lock"; flock 9; down ;;
  status) status ;;
  leftovers) leftovers ;;
  *) echo "usage: $0 check|up|down|status|leftovers" >&2; exit 2 ;;
esac
