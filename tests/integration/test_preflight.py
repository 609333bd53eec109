# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The preflights, the canary and copy_env on the real node: the kubelet's own pull failure, node and env.

Nothing here is simulated: the pods run on the real node (containerd, runc), whose registries all map to a closed
port on 127.0.0.1, so an image that was not imported fails to pull with the kubelet's own ErrImagePull.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from kubehelpers import BUSYBOX_IMAGE, REAL_NODE, Cluster, real_pod, run_task, run_tasks

pytestmark = [pytest.mark.real_node, pytest.mark.usefixtures("real_node")]

SLEEPER = {"name": "app", "image": BUSYBOX_IMAGE, "command": ["sleep", "3600"]}
ABSENT_IMAGE = "kd.local/absent:1"


def add(cluster: Cluster, tmp_path: Path, namespace: str, *, check: bool = False, **args: Any) -> dict[str, Any]:
    base = {"kubeconfig": cluster.kubeconfig, "namespace": [namespace], "image": BUSYBOX_IMAGE, "image_pull_policy": "IfNotPresent", "wait_timeout": 90}
    return run_task(tmp_path, "kubedebug.ephemeral.ephemeral_container", {**base, **args}, check=check)


def ephemeral_names(cluster: Cluster, namespace: str, pod: str) -> list[str]:
    return [c.name for c in cluster.core.read_namespaced_pod(pod, namespace).spec.ephemeral_containers or []]


def test_a_canary_catches_a_real_pull_failure_before_the_fleet(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    for name in ("web-0", "web-1", "web-2"):
        real_pod(cluster, namespace, name, [SLEEPER], metadata={"labels": {"app": "web"}})
    started = time.monotonic()
    result = add(cluster, tmp_path, namespace, label_selector="app=web", container="probe", image=ABSENT_IMAGE, command=["true"], canary=1)
    seconds = time.monotonic() - started
    print(f"\ncanary: pull failure caught and the fleet stopped in {seconds:.1f} s (ansible-playbook included)")
    assert result.get("failed") is True, result
    assert [(r["pod"], r["action"], r["canary"]) for r in result["pods"]] == [
        ("web-0", "failed", True),
        ("web-1", "skipped", False),
        ("web-2", "skipped", False),
    ]
    canary = result["pods"][0]["state"]
    # The kubelet's own words, from containerd's failed pull.
    assert canary["status"] == "waiting" and canary["reason"] in ("ErrImagePull", "ImagePullBackOff"), canary
    assert ABSENT_IMAGE in (canary["message"] or ""), canary
    assert "2 were not tried: canary pod" in result["msg"] and canary["reason"] in result["msg"]
    assert ephemeral_names(cluster, namespace, "web-0") == ["probe"]
    assert ephemeral_names(cluster, namespace, "web-1") == [] and ephemeral_names(cluster, namespace, "web-2") == []
    # Fixed image, new container name: the fleet goes ahead, the canary pod first.
    fixed = add(cluster, tmp_path, namespace, label_selector="app=web", container="probe2", command=["true"], canary=1, wait="terminated")
    assert fixed.get("failed") is not True, fixed
    assert [(r["action"], r["state"]["exit_code"]) for r in fixed["pods"]] == [("added", 0)] * 3


def pull_secret(namespace: str, name: str, registry: str) -> client.V1Secret:
    config = {"auths": {registry: {"auth": base64.b64encode(b"kd:not-a-real-password").decode()}}}
    return client.V1Secret(
        metadata=client.V1ObjectMeta(name=name, namespace=namespace),
        type="kubernetes.io/dockerconfigjson",
        data={".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()},
    )


def test_image_pull_preflight_on_the_real_node(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    cluster.core.create_namespaced_secret(namespace, pull_secret(namespace, "regcred", "registry.example.com"))
    real_pod(cluster, namespace, "app", [SLEEPER], imagePullSecrets=[{"name": "regcred"}])
    images = {n for i in cluster.core.read_node(REAL_NODE).status.images or [] for n in i.names or []}
    assert f"{BUSYBOX_IMAGE}" in images or f"docker.io/{BUSYBOX_IMAGE}" in images or any(BUSYBOX_IMAGE in n for n in images), images
    # The node has the debug image: no pull, whatever the secrets say.
    present = add(cluster, tmp_path, namespace, pod="app", container="d1", command=["true"], check=True)
    assert present["pods"][0]["preflight"]["image_pull"]["status"] == "present", present["pods"][0]["preflight"]
    # With Always the kubelet would pull it, and the pod's only pull secret is for another registry.
    always = add(cluster, tmp_path, namespace, pod="app", container="d2", command=["true"], image_pull_policy="Always", check=True)
    check = always["pods"][0]["preflight"]["image_pull"]
    assert (check["status"], check["registry"], check["secrets"]) == ("not_covered", "kd.local", ["regcred"]), check
    assert any(w.startswith("preflight image_pull: registry kd.local is not covered by the pod's imagePullSecrets regcred") for w in always["warnings"])
    assert "not-a-real-password" not in json.dumps(always) and "bm90LWEtcmVhbC1wYXNzd29yZA" not in json.dumps(always)
    assert ephemeral_names(cluster, namespace, "app") == []  # check mode added nothing


def quantity(text: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return int(text[: -len(suffix)]) * factor
    return int(text)


def test_memory_preflight_reads_the_real_nodes_numbers(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    hungry = {**SLEEPER, "resources": {"requests": {"memory": "64Mi"}, "limits": {"memory": "64Mi"}}}
    real_pod(cluster, namespace, "app", [hungry])
    node = cluster.core.read_node(REAL_NODE)
    allocatable = quantity(node.status.allocatable["memory"])
    result = add(cluster, tmp_path, namespace, pod="app", container="d1", command=["true"], min_memory_headroom=str(allocatable + 2**30), check=True)
    memory = result["pods"][0]["preflight"]["memory"]
    # What the scheduler counts: the memory requests of the pods on the node that have not finished (read after the task).
    pods = cluster.core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={REAL_NODE}").items
    requested = sum(
        quantity((c.resources.requests or {}).get("memory", "0")) if c.resources else 0
        for p in pods
        if p.status.phase not in ("Succeeded", "Failed")
        for c in p.spec.containers
    )
    assert (memory["node"], memory["allocatable"], memory["pod_limit"]) == (REAL_NODE, allocatable, 64 * 2**20), memory
    assert memory["requested"] >= 64 * 2**20 and abs(memory["requested"] - requested) <= 64 * 2**20, (memory, requested)
    assert memory["status"] == "low" and memory["headroom"] == allocatable - memory["requested"]
    warned = [w for w in result["warnings"] if w.startswith(f"preflight memory: node {REAL_NODE} has ")]
    assert len(warned) == 1 and "shares the pod's cgroup limit of 64Mi" in warned[0], result["warnings"]
    fine = add(cluster, tmp_path, namespace, pod="app", container="d1", command=["true"], min_memory_headroom="1Mi", check=True)
    assert fine["pods"][0]["preflight"]["memory"]["status"] == "ok" and not any(w.startswith("preflight memory") for w in fine.get("warnings", []))


def test_copy_env_gives_the_debug_container_the_targets_environment(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    cluster.core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="settings"), data={"FROM_MAP": "mapped"}))
    app = {
        **SLEEPER,
        "env": [{"name": "PLAIN", "value": "plain-value"}, {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "envFrom": [{"configMapRef": {"name": "settings"}}],
    }
    real_pod(cluster, namespace, "app", [app])
    script = 'echo "PLAIN=$PLAIN POD=$POD FROM_MAP=$FROM_MAP EXTRA=$EXTRA"'
    args = {"pod": "app", "container": "envdump", "command": ["sh", "-c", script], "copy_env": True, "env": {"EXTRA": "given"}}
    result = add(cluster, tmp_path, namespace, wait="terminated", **args)
    assert result.get("failed") is not True and result["pods"][0]["state"]["exit_code"] == 0, result
    log = cluster.kubectl_run("logs", "-n", namespace, "app", "-c", "envdump").stdout.strip()
    assert log == "PLAIN=plain-value POD=app FROM_MAP=mapped EXTRA=given"


def test_the_recipe_roles_canary_keeps_a_bad_image_to_one_pod(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    for name in ("web-0", "web-1"):
        real_pod(cluster, namespace, name, [SLEEPER], metadata={"labels": {"app": "web"}})
    role_vars = {
        "recipe_auth": {"kubeconfig": cluster.kubeconfig},
        "recipe_name": "greet",
        "recipe_script": 'emit_check greet "$1" true "hello $1"',
        "recipe_args": ["world"],
        "recipe_namespace": namespace,
        "recipe_label_selector": "app=web",
        "recipe_run_id": "canary1",
        "recipe_image": ABSENT_IMAGE,
        "recipe_canary": 1,
        "recipe_wait_timeout": 60,
    }
    tasks = [
        {
            "block": [{"name": "Run the recipe", "ansible.builtin.include_role": {"name": "kubedebug.ephemeral.recipe"}, "vars": role_vars}],
            "rescue": [{"name": "Keep the failure", "ansible.builtin.set_fact": {"failure": "{{ ansible_failed_result }}"}}],
        }
    ]
    failure = run_tasks(tmp_path, tasks, "failure")
    assert failure["failed"] is True and "1 were not tried: canary pod" in failure["msg"], failure.get("msg")
    assert "ErrImagePull" in failure["msg"] or "ImagePullBackOff" in failure["msg"], failure["msg"]
    carried = {name: ephemeral_names(cluster, namespace, name) for name in ("web-0", "web-1")}
    assert sorted(carried.values()) == [[], ["kd-greet-canary1"]], carried
