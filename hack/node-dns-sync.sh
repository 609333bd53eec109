#!/usr/bin/env bash
# The kubectl go-templates below are in single quotes on purpose: $n is theirs, not the shell's.
# shellcheck disable=SC2016
# Keeps the real node's resolver (dnsmasq --hostsdir, which re-reads changed files) in
# step with the cluster's Services, as cluster DNS answers them:
#   <svc>.<ns>.svc.cluster.local -> the ClusterIP, or for a headless Service the
#   addresses of its ready endpoints.
# There is no kube-proxy: a ClusterIP resolves but routes nowhere; tests that need to
# reach a pod through a name use a headless Service.
#   hack/node-dns-sync.sh KUBECONFIG HOSTS_DIR
set -uo pipefail
kubeconfig=$1 dir=$2
# shellcheck source=hack/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
kc() { "$KD_BIN/kubectl" --kubeconfig "$kubeconfig" --request-timeout=10s "$@"; }
svc_tpl='{{range .items}}{{if and .spec.clusterIP (ne .spec.clusterIP "None")}}{{.spec.clusterIP}} {{.metadata.name}}.{{.metadata.namespace}}.svc.cluster.local{{"\n"}}{{end}}{{end}}'
# EndpointSlices of headless Services carry the label service.kubernetes.io/headless.
eps_tpl='{{range .items}}{{$n := index .metadata.labels "kubernetes.io/service-name"}}{{$ns := .metadata.namespace}}{{range .endpoints}}{{if or (not .conditions.ready) .conditions.ready}}{{range .addresses}}{{.}} {{$n}}.{{$ns}}.svc.cluster.local{{"\n"}}{{end}}{{end}}{{end}}{{end}}'
last=""
while :; do
  if svc=$(kc get services -A -o go-template="$svc_tpl") &&
     eps=$(kc get endpointslices -A -l service.kubernetes.io/headless -o go-template="$eps_tpl"); then
    now=$(printf '%s\n%s\n' "$svc" "$eps" | sed '/^$/d' | sort -u)
    if [ "$now" != "$last" ]; then
      printf '%s\n' "$now" > "$dir/.services.tmp" && mv "$dir/.services.tmp" "$dir/services"
      last=$now
    fi
  fi
  sleep 1
done
