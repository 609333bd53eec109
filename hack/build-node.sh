#!/usr/bin/env bash
# Builds what the real node needs besides the kubelet (built with the control plane):
# containerd, its runc shim and ctr, runc, and the CNI plugins bridge, host-local and
# loopback, all from pinned Go modules into $KD_BIN. Like build-control-plane.sh, each
# piece is rebuilt only when missing or when its recorded version differs.
set -euo pipefail

# shellcheck source=hack/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
KD_LOG_PREFIX="[build-node]"
: "${CONTAINERD_VERSION:=2.4.2}"
: "${RUNC_VERSION:=1.5.3}"
: "${CNI_PLUGINS_VERSION:=1.10.0}"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod

mkdir -p "$KD_BIN/cni" "$KD_BIN/.cni"
stamp() { echo "$KD_BIN/.$1.version"; }
is_current() { [ -x "$KD_BIN/$1" ] && [ "$(cat "$(stamp "$1")" 2>/dev/null)" = "$2" ]; }
mark() { echo "$2" > "$(stamp "$1")"; }

# containerd 2: plain `go install` (no replace lines). Without cgo the btrfs snapshotter
# (cgo only) is left out; the node uses overlayfs.
if ! is_current containerd "$CONTAINERD_VERSION"; then
  kd_log "building containerd, containerd-shim-runc-v2 and ctr v$CONTAINERD_VERSION"
  m=github.com/containerd/containerd/v2
  ld="-s -w -X $m/version.Version=v$CONTAINERD_VERSION -X $m/version.Revision=gomod"
  CGO_ENABLED=0 GOBIN=$KD_BIN go install -trimpath -ldflags "$ld" \
    "$m/cmd/containerd@v$CONTAINERD_VERSION" \
    "$m/cmd/containerd-shim-runc-v2@v$CONTAINERD_VERSION" \
    "$m/cmd/ctr@v$CONTAINERD_VERSION"
  mark containerd "$CONTAINERD_VERSION"
fi

# runc: cgo with libseccomp, so that a pod's RuntimeDefault seccomp profile (which
# PodSecurity "restricted" requires) is really applied.
if ! is_current runc "$RUNC_VERSION"; then
  kd_log "building runc v$RUNC_VERSION (seccomp)"
  CGO_ENABLED=1 GOBIN=$KD_BIN go install -trimpath -tags seccomp \
    -ldflags "-s -w -X main.version=$RUNC_VERSION -X main.gitCommit=gomod" \
    "github.com/opencontainers/runc@v$RUNC_VERSION"
  mark runc "$RUNC_VERSION"
fi

if ! is_current cni/bridge "$CNI_PLUGINS_VERSION"; then
  kd_log "building CNI plugins bridge, host-local, loopback v$CNI_PLUGINS_VERSION"
  m=github.com/containernetworking/plugins/plugins
  CGO_ENABLED=0 GOBIN=$KD_BIN/cni go install -trimpath -ldflags "-s -w" \
    "$m/main/bridge@v$CNI_PLUGINS_VERSION" "$m/main/loopback@v$CNI_PLUGINS_VERSION" \
    "$m/ipam/host-local@v$CNI_PLUGINS_VERSION"
  mark cni/bridge "$CNI_PLUGINS_VERSION"
fi

kd_log "node binaries ready in $KD_BIN"
