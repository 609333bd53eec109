#!/usr/bin/env bash
# What a user writes at 3 a.m. with nothing but kubectl to run a recipe in every pod a
# label selector matches and keep the results (bench/fleet_recipe.py times it). Per pod:
# add the debug container, wait until it has terminated, save its log.
#
#   KD_PARALLEL=1 KD_SELECTOR=app=web KD_RECIPE=dns KD_CONTAINER=kd-dns-x KD_IMAGE=busybox:1.37.0 \
#   KD_PROFILE=baseline KD_ENV=KWOK_EXIT_CODE=0 KD_SCRIPT_FILE=dns.sh KD_OUT=dir \
#     kubectl_recipe.sh NAMESPACE... -- ARG...
#
# KD_PARALLEL=1 is the plain `while read` loop, one pod after the other; N > 1 runs the
# same per-pod steps through `xargs -P N`. kubectl and KUBECONFIG come from the
# environment. Results: one $KD_OUT/<namespace>.<pod>.log per pod (the recipe's JSON
# lines). KD_ENV (KWOK_EXIT_CODE) is there for the simulated kubelet, not something a
# user would pass; the collection's run gets the same.
set -euo pipefail

namespaces=()
while (($#)) && [[ $1 != -- ]]; do
    namespaces+=("$1")
    shift
done
(($#)) && shift
# The recipe's arguments (names to resolve: no spaces in them), after the script's $0.
KD_ARGS="$*"
KD_SCRIPT=$(cat "$KD_SCRIPT_FILE")
export KD_ARGS KD_SCRIPT KD_RECIPE KD_CONTAINER KD_IMAGE KD_PROFILE KD_ENV KD_OUT

one() {
    local ns=$1 pod=$2
    # shellcheck disable=SC2086 # KD_ARGS is split into the recipe's arguments on purpose
    kubectl debug "$pod" -n "$ns" -c "$KD_CONTAINER" --image="$KD_IMAGE" --profile="$KD_PROFILE" --env="$KD_ENV" \
        -- sh -c "$KD_SCRIPT" "$KD_RECIPE" $KD_ARGS >/dev/null
    kubectl wait "pod/$pod" -n "$ns" --timeout=300s \
        --for="jsonpath={.status.ephemeralContainerStatuses[?(@.name==\"$KD_CONTAINER\")].state.terminated}" >/dev/null
    kubectl logs "$pod" -n "$ns" -c "$KD_CONTAINER" >"$KD_OUT/$ns.$pod.log"
}
export -f one

pods="$KD_OUT/pods.txt"
for ns in "${namespaces[@]}"; do
    kubectl get pods -n "$ns" -l "$KD_SELECTOR" \
        -o jsonpath='{range .items[*]}{.metadata.namespace}{" "}{.metadata.name}{"\n"}{end}'
done >"$pods"

if ((KD_PARALLEL <= 1)); then
    while read -r ns pod <&3; do
        one "$ns" "$pod"
    done 3<"$pods"
else
    xargs -P "$KD_PARALLEL" -n 2 bash -c 'set -euo pipefail; one "$@"' _ <"$pods"
fi
