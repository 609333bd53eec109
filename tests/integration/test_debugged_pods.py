"""debugged_pods_info on the real node: what debugging leaves behind in a Deployment's pod, and the advice that clears it.

Nothing here is simulated: the Deployment's pods run on the node hack/node.sh registers,
the kube-controller-manager owns them through a ReplicaSet, PodSecurity admission is the
API server's own. One pod gets a debug container from the module (annotate: true, a
reason; it keeps running) and one added with a raw PATCH, the way ``kubectl debug`` adds
one (no annotation; it adds SYS_PTRACE as kubectl's general profile does, and exits at
once). Each claim of the module is then checked against the cluster itself: the
annotation as stored, the kubelet's states, the ReplicaSet's owner, a refused add, and
the restart command run for real.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from kubehelpers import (
    BUSYBOX_IMAGE,
    REAL_NODE,
    REAL_NODE_PLACEMENT,
    Cluster,
    patch_ephemeral,
    run_task,
    wait_for,
)

pytestmark = [pytest.mark.real_node, pytest.mark.usefixtures("real_node")]

REASON = "INC-7 leak hunt"


def create_deployment(cluster: Cluster, namespace: str, name: str, replicas: int) -> None:
    """A Deployment of busybox pods on the real node (a short grace period: ``sleep`` as pid 1 ignores SIGTERM)."""
    labels = {"app": name}
    container = {"name": "app", "image": BUSYBOX_IMAGE, "imagePullPolicy": "IfNotPresent", "command": ["sleep", "3600"]}
    client.AppsV1Api(cluster.api_client).create_namespaced_deployment(namespace, {
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [container], "terminationGracePeriodSeconds": 1, **REAL_NODE_PLACEMENT},
            },
        },
    })  # fmt: skip


def running_pods(cluster: Cluster, namespace: str, count: int, replacing: frozenset[str] = frozenset()) -> list[client.V1Pod]:
    """The namespace's pods once exactly ``count`` of them run on the real node, none of ``replacing`` among them (and no other is left)."""

    def ready() -> list[client.V1Pod] | None:
        pods = cluster.core.list_namespaced_pod(namespace).items
        running = [
            p for p in pods
            if p.status.phase == "Running" and p.metadata.deletion_timestamp is None and p.status.container_statuses
            and all(s.state.running for s in p.status.container_statuses)
        ]  # fmt: skip
        done = len(running) == count == len(pods) and not {p.metadata.name for p in pods} & replacing
        return sorted(running, key=lambda p: p.metadata.name) if done else None

    pods: list[client.V1Pod] = wait_for(f"{count} running pods in {namespace}", ready, timeout=180, interval=0.5)
    assert {p.spec.node_name for p in pods} == {REAL_NODE}
    return pods


def info(cluster: Cluster, tmp_path: Path, namespace: str, *, check: bool = False, **args: Any) -> dict[str, Any]:
    return run_task(tmp_path, "kubedebug.ephemeral.debugged_pods_info", {"kubeconfig": cluster.kubeconfig, "namespace": namespace, **args}, check=check)


def test_what_debugging_leaves_behind_in_a_deployment(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    create_deployment(cluster, namespace, "web", replicas=2)
    debugged, untouched = running_pods(cluster, namespace, 2)
    pod = debugged.metadata.name

    added = run_task(tmp_path, "kubedebug.ephemeral.ephemeral_container", {
        "kubeconfig": cluster.kubeconfig, "namespace": namespace, "pod": pod, "container": "kd-sleep",
        "image": BUSYBOX_IMAGE, "image_pull_policy": "IfNotPresent", "profile": "baseline", "command": ["sleep", "600"],
        "annotate": True, "reason": REASON, "wait": "running", "wait_timeout": 90,
    })  # fmt: skip
    assert added.get("failed") is not True and added["pods"][0]["state"]["status"] == "running", added
    # Added the way kubectl debug --profile=general adds one: no annotation, SYS_PTRACE.
    patch_ephemeral(cluster, namespace, pod, [{
        "name": "raw-exit", "image": BUSYBOX_IMAGE, "imagePullPolicy": "IfNotPresent", "command": ["true"],
        "securityContext": {"capabilities": {"add": ["SYS_PTRACE"]}},
    }])  # fmt: skip

    def exited() -> Any:
        statuses = cluster.core.read_namespaced_pod(pod, namespace).status.ephemeral_container_statuses or []
        return next((s for s in statuses if s.name == "raw-exit" and s.state.terminated), None)

    assert wait_for("raw-exit to exit", exited, timeout=90).state.terminated.exit_code == 0

    result = info(cluster, tmp_path, namespace)
    assert result.get("failed") is not True and result["changed"] is False, result
    # Only the debugged pod: its sibling carries no ephemeral container.
    assert [r["pod"] for r in result["pods"]] == [pod] and untouched.metadata.name != pod
    [record] = result["pods"]
    stored = json.loads(cluster.core.read_namespaced_pod(pod, namespace).metadata.annotations["debug.kubedebug.io/kd-sleep"])
    got = {c["name"]: c for c in record["containers"]}
    # In the pod's spec order: a strategic-merge patch without $setElementOrder (as patch_ephemeral sends) puts its container first.
    assert list(got) == [c.name for c in cluster.core.read_namespaced_pod(pod, namespace).spec.ephemeral_containers]
    assert sorted(got) == ["kd-sleep", "raw-exit"]
    assert (got["kd-sleep"]["added_by_us"], got["kd-sleep"]["by"], got["kd-sleep"]["at"], got["kd-sleep"]["reason"]) == (
        True, stored["by"], stored["at"], REASON,
    )  # fmt: skip
    assert stored["by"] != "unknown"  # the module asked the API server who it is
    assert (got["kd-sleep"]["running"], got["kd-sleep"]["state"]["status"], got["kd-sleep"]["pod_security_level"]) == (True, "running", "baseline")
    assert (got["raw-exit"]["added_by_us"], got["raw-exit"]["by"], got["raw-exit"]["reason"]) == (False, "unknown", None)
    assert (got["raw-exit"]["running"], got["raw-exit"]["state"]["status"], got["raw-exit"]["state"]["exit_code"]) == (False, "terminated", 0)
    assert (got["raw-exit"]["capabilities_added"], got["raw-exit"]["pod_security_level"]) == (["SYS_PTRACE"], "privileged")
    assert record["running"] == 1

    # The owner is the Deployment, found through the ReplicaSet the controller manager created.
    [replica_set] = client.AppsV1Api(cluster.api_client).list_namespaced_replica_set(namespace).items
    assert record["owner"] == {"kind": "Deployment", "name": "web", "via": f"ReplicaSet {replica_set.metadata.name}"}
    assert record["restart"]["command"] == f"kubectl -n {namespace} rollout restart deployment/web"
    assert record["pod_security"]["enforce"] is None  # the namespace sets no level
    assert result["summary"] == {
        "pods_scanned": 2, "pods_debugged": 1, "containers": 2, "running": 1, "by_us": 1, "unknown": 1,
        "by_namespace": {namespace: {"pods": 1, "containers": 2, "running": 1}},
    }  # fmt: skip

    # Check mode reads the same; the filters choose containers.
    assert info(cluster, tmp_path, namespace, check=True)["pods"] == result["pods"]
    assert [c["name"] for c in info(cluster, tmp_path, namespace, only_running=True)["pods"][0]["containers"]] == ["kd-sleep"]
    assert [c["name"] for c in info(cluster, tmp_path, namespace, added_by="others")["pods"][0]["containers"]] == ["raw-exit"]

    # PodSecurity checks the whole pod on every add: under baseline, raw-exit (SYS_PTRACE) now blocks a container
    # that baseline itself allows.
    cluster.core.patch_namespace(namespace, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "baseline"}}})
    security = info(cluster, tmp_path, namespace)["pods"][0]["pod_security"]
    assert (security["enforce"], security["violating"]) == ("baseline", ["raw-exit"])
    refused = run_task(tmp_path, "kubedebug.ephemeral.ephemeral_container", {
        "kubeconfig": cluster.kubeconfig, "namespace": namespace, "pod": pod, "container": "kd-later",
        "image": BUSYBOX_IMAGE, "image_pull_policy": "IfNotPresent", "profile": "baseline", "command": ["true"], "wait": "none",
    })  # fmt: skip
    assert refused.get("failed") is True
    assert 'violates PodSecurity "baseline:latest"' in refused["pods"][0]["msg"], refused["pods"]
    assert "raw-exit" in refused["pods"][0]["msg"]
    # The sibling pod, without debug containers, takes the same container.
    sibling = run_task(tmp_path, "kubedebug.ephemeral.ephemeral_container", {
        "kubeconfig": cluster.kubeconfig, "namespace": namespace, "pod": untouched.metadata.name, "container": "kd-later",
        "image": BUSYBOX_IMAGE, "image_pull_policy": "IfNotPresent", "profile": "baseline", "command": ["true"], "wait": "none",
    })  # fmt: skip
    assert sibling.get("failed") is not True, sibling

    # The advice works: after the restart no pod of the namespace carries an ephemeral container.
    cluster.kubectl_run(*record["restart"]["command"].split()[1:])
    fresh = running_pods(cluster, namespace, 2, replacing=frozenset({pod, untouched.metadata.name}))
    assert all(not p.spec.ephemeral_containers for p in fresh)
    after = info(cluster, tmp_path, namespace)
    assert after["pods"] == [] and after["summary"]["pods_scanned"] == 2, after
