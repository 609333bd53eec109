#!/usr/bin/env bash
# Builds the pinned local control plane (kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, kubelet, etcd, kwok, kwokctl) from Go modules into $KD_BIN.
# Each binary is rebuilt only when missing or when its recorded version differs,
# so a warm run costs a few `--version` calls.
set -euo pipefail

# shellcheck source=hack/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
KD_LOG_PREFIX="[build-control-plane]"
: "${K8S_VERSION:=1.36.3}"
: "${ETCD_VERSION:=3.6.16}"
: "${KWOK_VERSION:=0.8.0}"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod

need_go_minor=26
gov=$(go env GOVERSION 2>/dev/null || true)
case "$gov" in
  go1.*) minor=${gov#go1.}; minor=${minor%%.*}
         if [ "$minor" -lt "$need_go_minor" ]; then
           echo "error: Go >= 1.$need_go_minor is required, found $gov" >&2; exit 1; fi ;;
  *) echo "error: Go >= 1.$need_go_minor is required and 'go' was not found on PATH" >&2; exit 1 ;;
esac

mkdir -p "$KD_BIN" "$KD_CACHE/build"
stamp() { echo "$KD_BIN/.$1.version"; }
is_current() { [ -x "$KD_BIN/$1" ] && [ "$(cat "$(stamp "$1")" 2>/dev/null)" = "$2" ]; }
mark() { echo "$2" > "$(stamp "$1")"; }

# --- kwok and kwokctl: a plain `go install` works (no replace directives at v0.8.0).
if ! is_current kwok "$KWOK_VERSION" || ! is_current kwokctl "$KWOK_VERSION"; then
  kd_log "building kwok/kwokctl v$KWOK_VERSION"
  GOBIN=$KD_BIN go install "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@v$KWOK_VERSION"
  mark kwok "$KWOK_VERSION"; mark kwokctl "$KWOK_VERSION"
fi

# --- etcd: server/go.mod has replace lines, so `go install` refuses it; build it
# from a throwaway wrapper module of its own so MVS does not bump k8s deps.
if ! is_current etcd "$ETCD_VERSION"; then
  kd_log "building etcd v$ETCD_VERSION"
  d=$KD_CACHE/build/etcd-$ETCD_VERSION
  rm -rf "$d"; mkdir -p "$d"
  ( cd "$d"
    go mod init local/etcdbin >/dev/null 2>&1
    go mod edit -go=1.26.0
    go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION"
    go build -trimpath -ldflags "-s -w" -o "$KD_BIN/etcd" go.etcd.io/etcd/server/v3 )
  mark etcd "$ETCD_VERSION"
fi

# --- Kubernetes: k8s.io/kubernetes requires its staging modules at v0.0.0 and
# resolves them with replace lines consumers never see, so a wrapper module
# replaces each with the published v0.<minor>.<patch>. The list is derived from
# the module's own go.mod so it cannot drift between releases.
K8S_CMDS="kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet"
all_current=true
for c in $K8S_CMDS; do is_current "$c" "$K8S_VERSION" || all_current=false; done
if ! $all_current; then
  kd_log "building $K8S_CMDS v$K8S_VERSION (cold: ~15-30 min on 2 cores)"
  minor=$(echo "$K8S_VERSION" | cut -d. -f2); patch=$(echo "$K8S_VERSION" | cut -d. -f3)
  d=$KD_CACHE/build/k8s-$K8S_VERSION
  rm -rf "$d"; mkdir -p "$d"
  ( cd "$d"
    go mod init local/k8sbin >/dev/null 2>&1
    go mod edit -go=1.26.0
    gomod=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" {print $1}' "$gomod" | while read -r m; do
      go mod edit -replace="$m=$m@v0.$minor.$patch"
    done
    pkgs=(); for c in $K8S_CMDS; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
    go get "${pkgs[@]/%/@v$K8S_VERSION}"
    ld="-s -w"
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ld="$ld -X $p.gitVersion=v$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
    done
    go build -trimpath -ldflags "$ld" -o "$KD_BIN/" "${pkgs[@]}" )
  for c in $K8S_CMDS; do mark "$c" "$K8S_VERSION"; done
fi

kd_log "binaries ready in $KD_BIN"
