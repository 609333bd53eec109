"""Integration tests of kubedebug.ephemeral.ephemeral_container against the local cluster.

Each mutating scenario runs check mode, the real run and a rerun with the same
arguments, then reads the pod with the Python client (not the module) to
confirm. Simulated by KWOK: container states (tests/kwok/stages).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from kubehelpers import Cluster, kwok_node, run_task, running_pod, service_account_auth, wait_for

MODULE = "kubedebug.ephemeral.ephemeral_container"
IMAGE = "docker.io/library/busybox:1.36"


def ephemeral_names(cluster: Cluster, namespace: str, pod: str) -> list[str]:
    spec = cluster.core.read_namespaced_pod(pod, namespace).spec
    return [c.name for c in spec.ephemeral_containers or []]


def test_add_one_pod_check_run_rerun(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    running_pod(cluster, namespace, "web")
    args: dict[str, Any] = {
        "kubeconfig": cluster.kubeconfig,
        "namespace": namespace,
        "pod": "web",
        "container": "debug",
        "image": IMAGE,
        "command": ["sleep", "3600"],
    }

    check = run_task(tmp_path, MODULE, args, check=True, diff=True)
    assert check["changed"] is True, check
    assert check["pods"][0]["action"] == "would_add"
    assert check["diff"][0]["before"] == {"ephemeralContainers": []}
    assert check["diff"][0]["after"]["ephemeralContainers"] == ["debug"]
    assert ephemeral_names(cluster, namespace, "web") == []  # nothing persisted

    real = run_task(tmp_path, MODULE, args)
    assert real.get("failed") is not True, real.get("msg")
    assert real["changed"] is True
    [pod] = real["pods"]
    assert (pod["namespace"], pod["pod"], pod["container"], pod["action"]) == (namespace, "web", "debug", "added")
    assert pod["state"]["status"] == "running" and pod["state"]["started_at"]
    assert real["summary"] == {"matched": 1, "added": 1, "unchanged": 0, "conflict": 0, "failed": 0, "would_add": 0, "skipped": 0}
    spec = cluster.core.read_namespaced_pod("web", namespace).spec.ephemeral_containers[0]
    assert (spec.name, spec.image, spec.command, spec.target_container_name) == (
        "debug",
        IMAGE,
        ["sleep", "3600"],
        "app",
    )
    assert spec.security_context.capabilities.add == ["SYS_PTRACE"]

    rerun = run_task(tmp_path, MODULE, args)
    assert rerun["changed"] is False, rerun
    assert rerun["pods"][0]["action"] == "unchanged"
    assert ephemeral_names(cluster, namespace, "web") == ["debug"]


def base_args(cluster: Cluster, namespace: str | list[str], **extra: Any) -> dict[str, Any]:
    return {"kubeconfig": cluster.kubeconfig, "namespace": namespace, "container": "debug", "image": IMAGE, **extra}


def only_pod(result: dict[str, Any]) -> dict[str, Any]:
    assert len(result["pods"]) == 1, result["pods"]
    return result["pods"][0]


def test_selector_over_two_namespaces(cluster: Cluster, namespace_factory: Any, tmp_path: Path) -> None:
    ns_a, ns_b = namespace_factory(), namespace_factory()
    for ns in (ns_a, ns_b):
        for i in range(2):
            running_pod(cluster, ns, f"web-{i}", metadata={"labels": {"app": "web"}})
        running_pod(cluster, ns, "other", metadata={"labels": {"app": "other"}})
    args = base_args(cluster, [ns_b, ns_a], label_selector=["app=web"], container="sweep", profile="baseline")

    check = run_task(tmp_path, MODULE, args, check=True)
    assert [(p["namespace"], p["pod"], p["action"]) for p in check["pods"]] == sorted([(ns, f"web-{i}", "would_add") for ns in (ns_a, ns_b) for i in range(2)])
    assert all(ephemeral_names(cluster, ns, f"web-{i}") == [] for ns in (ns_a, ns_b) for i in range(2))

    real = run_task(tmp_path, MODULE, args)
    assert real["summary"] == {"matched": 4, "added": 4, "unchanged": 0, "conflict": 0, "failed": 0, "would_add": 0, "skipped": 0}, real
    assert all(p["state"]["status"] == "running" for p in real["pods"])
    for ns in (ns_a, ns_b):
        assert ephemeral_names(cluster, ns, "web-0") == ["sweep"]
        assert ephemeral_names(cluster, ns, "other") == []

    rerun = run_task(tmp_path, MODULE, args)
    assert rerun["changed"] is False and rerun["summary"]["unchanged"] == 4


def test_named_pods_in_two_namespaces_one_missing(cluster: Cluster, namespace_factory: Any, tmp_path: Path) -> None:
    """The one selection model: pod is a list of namespace/pod; a missing pod is a failed record, the others are added."""
    ns_a, ns_b = namespace_factory(), namespace_factory()
    running_pod(cluster, ns_a, "web-0")
    running_pod(cluster, ns_b, "db-0")
    args = {
        "kubeconfig": cluster.kubeconfig,
        "name": [f"{ns_b}/db-0", f"{ns_a}/web-0", f"{ns_a}/gone"],  # kubernetes.core's alias of pod
        "container": "debug",
        "image": IMAGE,
        "profile": "baseline",
    }

    check = run_task(tmp_path, MODULE, args, check=True)
    assert check["failed"] is True
    assert check["msg"] == f"1 of 3 pod(s) failed: pod {ns_a}/gone not found: check the pod name and namespace"
    assert sorted((p["namespace"], p["pod"], p["action"]) for p in check["pods"]) == sorted(
        [(ns_b, "db-0", "would_add"), (ns_a, "web-0", "would_add"), (ns_a, "gone", "failed")]
    )
    assert ephemeral_names(cluster, ns_a, "web-0") == [] and ephemeral_names(cluster, ns_b, "db-0") == []

    real = run_task(tmp_path, MODULE, args)
    assert real["failed"] is True and real["changed"] is True
    assert real["summary"] == {"matched": 3, "added": 2, "unchanged": 0, "conflict": 0, "failed": 1, "would_add": 0, "skipped": 0}
    assert ephemeral_names(cluster, ns_a, "web-0") == ["debug"] and ephemeral_names(cluster, ns_b, "db-0") == ["debug"]

    # Bare names need the one namespace; with two, the module says so before any API call.
    ambiguous = run_task(tmp_path, MODULE, {**args, "name": ["web-0"], "namespace": [ns_a, ns_b]})
    assert ambiguous["failed"] is True
    assert ambiguous["msg"] == (f"pod names without a namespace need exactly one namespace (got {ns_a}, {ns_b}): write namespace/pod for each pod")


def test_selector_aliases_and_namespace_as_a_string(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    running_pod(cluster, namespace, "web-0", metadata={"labels": {"app": "web"}})
    running_pod(cluster, namespace, "web-1", metadata={"labels": {"app": "web"}})
    args = base_args(cluster, namespace, label_selectors=["app=web"], field_selectors=["metadata.name=web-1"], profile="baseline")
    result = run_task(tmp_path, MODULE, args)
    assert result.get("failed") is not True, result.get("msg")
    assert [(p["pod"], p["action"]) for p in result["pods"]] == [("web-1", "added")]
    assert ephemeral_names(cluster, namespace, "web-0") == []

    # A namespace alone would select every pod in it: refused.
    whole = run_task(tmp_path, MODULE, base_args(cluster, namespace))
    assert whole["failed"] is True
    assert whole["msg"] == "one of the following is required: pod, label_selector, field_selector"


def test_selector_matching_nothing_warns(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    result = run_task(tmp_path, MODULE, base_args(cluster, namespace, label_selector=["app=none"]))
    assert result.get("failed") is not True
    assert (result["changed"], result["pods"]) == (False, [])
    assert result["warnings"] == ["the selection matched no pods: nothing to do"]


def test_container_added_by_kubectl_debug_is_left_alone(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    running_pod(cluster, namespace, "web")
    out = cluster.kubectl_run(
        "debug",
        "-n",
        namespace,
        "web",
        f"--image={IMAGE}",
        "-c",
        "debug",
        "--target=app",
        "--profile=general",
        "--",
        "sleep",
        "3600",
    )
    assert out.returncode == 0, out.stderr
    # The same container as the module would build: profile general targets the first container.
    result = run_task(tmp_path, MODULE, base_args(cluster, namespace, pod="web", command=["sleep", "3600"]))
    pod = only_pod(result)
    assert (result["changed"], pod["action"]) == (False, "unchanged"), pod
    assert "warnings" not in result


def test_differing_spec_warns_or_fails(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    running_pod(cluster, namespace, "web")
    first = run_task(tmp_path, MODULE, base_args(cluster, namespace, pod="web", wait="none"))
    assert only_pod(first)["action"] == "added"

    other = base_args(cluster, namespace, pod="web", image="docker.io/library/alpine:3.20", wait="none")
    warned = run_task(tmp_path, MODULE, other)
    pod = only_pod(warned)
    assert warned.get("failed") is not True
    assert (warned["changed"], pod["action"]) == (False, "conflict")
    assert pod["differences"] == ["image: existing 'docker.io/library/busybox:1.36', requested 'docker.io/library/alpine:3.20'"]
    assert len(warned["warnings"]) == 1
    assert f"pod {namespace}/web already has an ephemeral container 'debug' with another spec" in warned["warnings"][0]
    assert "image: existing 'docker.io/library/busybox:1.36', requested 'docker.io/library/alpine:3.20'" in warned["warnings"][0]

    failed = run_task(tmp_path, MODULE, {**other, "on_conflict": "fail"})
    assert failed["failed"] is True
    assert failed["msg"].startswith(f"1 of 1 pod(s) failed: pod {namespace}/web already has an ephemeral container 'debug'")
    assert only_pod(failed)["action"] == "conflict"
    assert cluster.core.read_namespaced_pod("web", namespace).spec.ephemeral_containers[0].image == IMAGE


def test_refusals_before_the_api(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    """Each refusal is decided from the pod as read, before any patch; the pods stay untouched."""
    core = cluster.core
    running_pod(
        cluster,
        namespace,
        "multi",
        containers=[{"name": "app", "image": "registry.k8s.io/pause:3.10"}],
        initContainers=[{"name": "init", "image": "registry.k8s.io/pause:3.10"}],
    )
    node = kwok_node(cluster).metadata
    core.create_namespaced_pod(
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "static-web",
                "annotations": {"kubernetes.io/config.mirror": "hash"},
                "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node.name, "uid": node.uid, "controller": True}],
            },
            "spec": {"nodeName": node.name, "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]},
        },
    )
    running_pod(cluster, namespace, "win", os={"name": "windows"}, nodeName=node.name)
    running_pod(cluster, namespace, "leaving", metadata={"finalizers": ["kubedebug.io/test-hold"]})
    core.delete_namespaced_pod("leaving", namespace)
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "done"},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}],
                }
            }
        },
    }
    client.BatchV1Api(cluster.api_client).create_namespaced_job(namespace, job)
    finished = wait_for(
        "the Job's pod to succeed",
        lambda: [p.metadata.name for p in core.list_namespaced_pod(namespace, label_selector="job-name=done").items if p.status.phase == "Succeeded"],
    )[0]
    try:
        cases = [
            (
                "multi",
                {"container": "app"},
                f"pod {namespace}/multi: cannot add ephemeral container 'app': the pod already has a regular container named 'app'",
            ),
            (
                "multi",
                {"container": "init"},
                f"pod {namespace}/multi: cannot add ephemeral container 'init': the pod already has a regular init container named 'init'",
            ),
            (
                "multi",
                {"target_container": "nope"},
                f"pod {namespace}/multi: cannot add ephemeral container 'debug': target_container 'nope' does not exist in the pod (containers: app, init)",
            ),
            (
                "multi",
                {"volume_mounts": [{"name": "data", "mountPath": "/data"}]},
                "volume_mounts names volume 'data', which the pod does not have (volumes: kube-api-access-",
            ),
            (
                "static-web",
                {},
                f"pod {namespace}/static-web: cannot add ephemeral container 'debug': it is a static (mirror) pod",
            ),
            (
                "win",
                {},
                f"pod {namespace}/win: cannot add ephemeral container 'debug': it is a Windows pod, "
                "which refuses the Linux-only securityContext field(s) capabilities",
            ),
            (
                "leaving",
                {},
                f"pod {namespace}/leaving: cannot add ephemeral container 'debug': the pod is being deleted",
            ),
            (
                finished,
                {},
                f"pod {namespace}/{finished}: cannot add ephemeral container 'debug': the pod has phase Succeeded",
            ),
        ]
        for pod, extra, message in cases:
            result = run_task(tmp_path, MODULE, base_args(cluster, namespace, pod=pod, **extra))
            assert result["failed"] is True, (pod, extra)
            record = only_pod(result)
            assert record["action"] == "failed" and record["changed"] is False
            assert message in record["msg"], (message, record["msg"])
            assert message in result["msg"]
            assert ephemeral_names(cluster, namespace, pod) == []

        # The Windows pod accepts a profile without Linux-only fields.
        ok = run_task(tmp_path, MODULE, base_args(cluster, namespace, pod="win", profile="baseline", wait="none"))
        assert only_pod(ok)["action"] == "added", ok
    finally:
        core.patch_namespaced_pod("leaving", namespace, {"metadata": {"finalizers": None}})


def test_refusals_that_need_no_pod(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    running_pod(cluster, namespace, "web")
    cases = [
        ({"spec_override": {"ports": [{"containerPort": 80}]}}, "ports cannot be set on an ephemeral container"),
        (
            {
                "spec_override": {
                    "resources": {"limits": {"cpu": "1"}},
                    "livenessProbe": {"exec": {"command": ["true"]}},
                }
            },
            "livenessProbe, resources cannot be set on an ephemeral container",
        ),
        (
            {"spec_override": {"lifecycle": {}, "restartPolicy": "Always", "resizePolicy": []}},
            "lifecycle, resizePolicy, restartPolicy cannot be set on an ephemeral container",
        ),
        (
            {"volume_mounts": [{"name": "kube-api-access", "mountPath": "/x", "subPath": "token"}]},
            "volume_mounts: the mount of volume 'kube-api-access' at '/x' sets subPath, which the API server refuses on ephemeral containers",
        ),
        (
            {"allowed_images": [r"registry\.example\.com/.*"]},
            r"image 'docker.io/library/busybox:1.36' is not in allowed_images (registry\.example\.com/.*)",
        ),
        ({"container": "Debug_1"}, "container 'Debug_1' is not a valid container name"),
    ]
    for extra, message in cases:
        result = run_task(tmp_path, MODULE, base_args(cluster, namespace, pod="web", **extra))
        assert result["failed"] is True
        assert message in result["msg"], (message, result["msg"])
    assert ephemeral_names(cluster, namespace, "web") == []


def test_pod_security_restricted(cluster: Cluster, namespace_factory: Any, tmp_path: Path) -> None:
    ns = namespace_factory({"pod-security.kubernetes.io/enforce": "restricted"})
    restricted = {
        "runAsNonRoot": True,
        "runAsUser": 65534,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    running_pod(
        cluster,
        ns,
        "web",
        containers=[{"name": "app", "image": "registry.k8s.io/pause:3.10", "securityContext": restricted}],
    )

    sysadmin = base_args(cluster, ns, pod="web", container="root", profile="sysadmin")
    # Check mode's dry run goes through admission, so the refusal shows before anything changes.
    for check in (True, False):
        refused = run_task(tmp_path, MODULE, sysadmin, check=check)
        record = only_pod(refused)
        assert refused["failed"] is True and record["action"] == "failed"
        assert record["msg"].startswith(
            f"pod {ns}/web: PodSecurity admission refused ephemeral container 'root': pods \"web\" is forbidden: "
            'violates PodSecurity "restricted:latest": privileged (container "root" must not set securityContext.privileged=true)'
        ), record["msg"]
        assert 'the namespace enforces PodSecurity "restricted": use profile: restricted' in record["msg"]

    ok = base_args(cluster, ns, pod="web", profile="restricted", security_context={"runAsUser": 65534})
    assert only_pod(run_task(tmp_path, MODULE, ok, check=True))["action"] == "would_add"
    added = run_task(tmp_path, MODULE, ok)
    assert only_pod(added)["action"] == "added", added
    assert ephemeral_names(cluster, ns, "web") == ["debug"]


def test_wait_running_exit_code_and_unpullable_image(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    for name in ("runs", "exits", "bad"):
        running_pod(cluster, namespace, name)

    runs = only_pod(run_task(tmp_path, MODULE, base_args(cluster, namespace, pod="runs", wait="running")))
    assert runs["action"] == "added" and runs["state"]["status"] == "running" and runs["state"]["started_at"]

    # KWOK_EXIT_CODE makes the simulated kubelet end the container with that code.
    exits = only_pod(
        run_task(
            tmp_path,
            MODULE,
            base_args(
                cluster,
                namespace,
                pod="exits",
                wait="terminated",
                env={"KWOK_EXIT_CODE": "3"},
                command=["sh", "-c", "exit 3"],
            ),
        )
    )
    assert exits["action"] == "added", exits
    assert {k: exits["state"][k] for k in ("status", "reason", "exit_code")} == {
        "status": "terminated",
        "reason": "Error",
        "exit_code": 3,
    }
    assert exits["state"]["finished_at"] >= exits["state"]["started_at"]

    bad = run_task(
        tmp_path,
        MODULE,
        base_args(cluster, namespace, pod="bad", image="registry.invalid/debug/none:1", wait_timeout=5),
    )
    record = only_pod(bad)
    assert bad["failed"] is True and record["action"] == "failed" and record["changed"] is True
    assert record["state"]["status"] == "waiting"
    assert record["state"]["reason"] in ("ErrImagePull", "ImagePullBackOff")
    assert record["msg"].startswith("added, but it was not running within 5s (wait_timeout): the container is waiting (")
    assert "registry.invalid/debug/none:1" in record["msg"]


def test_annotate_and_module_defaults(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    running_pod(cluster, namespace, "web")
    args = {
        "namespace": namespace,
        "pod": "web",
        "container": "debug",
        "image": IMAGE,
        "annotate": True,
        "reason": "INC-4711",
    }
    result = run_task(
        tmp_path,
        MODULE,
        args,
        play_extra={"module_defaults": {"group/kubedebug.ephemeral.k8s": {"kubeconfig": cluster.kubeconfig, "wait": "none"}}},
    )
    assert only_pod(result)["action"] == "added", result
    annotations = cluster.core.read_namespaced_pod("web", namespace).metadata.annotations
    audit = json.loads(annotations["debug.kubedebug.io/debug"])
    assert audit["by"] == "kwok-admin"  # the admin client certificate's CN, from a SelfSubjectReview
    assert (audit["image"], audit["reason"]) == (IMAGE, "INC-4711")
    assert audit["at"].endswith("Z")


def test_auth_from_environment(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    running_pod(cluster, namespace, "web")
    args = {"namespace": namespace, "pod": "web", "container": "debug", "image": IMAGE}
    result = run_task(tmp_path, MODULE, args, env={"K8S_AUTH_KUBECONFIG": cluster.kubeconfig})
    assert only_pod(result)["action"] == "added", result


def _minimal_cluster_role() -> dict[str, Any]:
    """The ClusterRole exactly as docs/docsite/rst/rbac.rst documents it."""
    text = (Path(__file__).resolve().parents[2] / "docs/docsite/rst/rbac.rst").read_text()
    block = text.split(".. code-block:: yaml\n", 1)[1]
    lines = []
    for line in block.splitlines()[1:]:
        if line and not line.startswith("    "):
            break
        lines.append(line[4:])
    return yaml.safe_load("\n".join(lines))


def test_rbac_missing_and_minimal_permissions(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    rbac = client.RbacAuthorizationV1Api(cluster.api_client)
    running_pod(cluster, namespace, "web")

    # Can read pods, but not add ephemeral containers (what the built-in edit role gives).
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "pod-reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
        },
    )
    reader = service_account_auth(cluster, namespace, "reader", tmp_path)
    args = {**reader, "namespace": namespace, "pod": "web", "container": "debug", "image": IMAGE}
    for check in (True, False):
        denied = run_task(tmp_path, MODULE, args, check=check)
        assert denied["failed"] is True
        assert only_pod(denied)["msg"].startswith(
            f"pod {namespace}/web: permission denied: grant 'patch' on 'pods/ephemeralcontainers' in namespace '{namespace}'"
        ), denied
        assert reader["api_key"] not in json.dumps(denied) and reader["api_key"] not in denied["_stdout"]

    # Exactly the documented ClusterRole, bound in this namespace.
    role = _minimal_cluster_role()
    role["metadata"]["name"] = f"kubedebug-ephemeral-{namespace}"
    rbac.create_cluster_role(role)
    try:
        rbac.create_namespaced_role_binding(
            namespace,
            {
                "metadata": {"name": "debugger"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": role["metadata"]["name"],
                },
                "subjects": [{"kind": "ServiceAccount", "name": "debugger", "namespace": namespace}],
            },
        )
        debugger = service_account_auth(cluster, namespace, "debugger", tmp_path)
        args = {**debugger, "namespace": namespace, "pod": "web", "container": "debug", "image": IMAGE}
        assert only_pod(run_task(tmp_path, MODULE, args, check=True))["action"] == "would_add"
        added = run_task(tmp_path, MODULE, args)
        assert only_pod(added)["action"] == "added" and only_pod(added)["state"]["status"] == "running", added
        assert only_pod(run_task(tmp_path, MODULE, args))["action"] == "unchanged"
    finally:
        rbac.delete_cluster_role(role["metadata"]["name"])
