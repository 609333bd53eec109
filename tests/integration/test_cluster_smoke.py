"""Smoke test: the local cluster is a real API server, and it behaves as our module expects.

Records, against kube-apiserver itself, every ephemeral-container behaviour the
``ephemeral_container`` module relies on, with the server's exact messages.
Simulated by KWOK: container states (Stages), log contents (a Logs object whose
file holds the captured output of a real command run on this host), and exec
(kwok runs the command on this host in a sandbox directory).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException
from kubernetes.stream import stream

from kubehelpers import SMP_KWARGS, Cluster, cri_log, kwok_node, make_pod, patch_ephemeral, running_pod, serve_logs, wait_for

DEBUG_IMAGE = "docker.io/library/busybox:1.36"


def ephemeral_status(core: client.CoreV1Api, namespace: str, pod: str, name: str) -> client.V1ContainerStatus | None:
    p = core.read_namespaced_pod(pod, namespace)
    return next((s for s in p.status.ephemeral_container_statuses or [] if s.name == name), None)


def wait_state(cluster: Cluster, namespace: str, pod: str, name: str, state: str, timeout: float = 30) -> Any:
    def probe() -> Any:
        s = ephemeral_status(cluster.core, namespace, pod, name)
        return s is not None and getattr(s.state, state) is not None and s

    return wait_for(f"ephemeral container {namespace}/{pod}/{name} {state}", probe, timeout=timeout)


def state_sequence(
    cluster: Cluster, namespace: str, pod: str, name: str, since: str, until: str, timeout: int = 30
) -> list[str]:
    """Every distinct state the API server reported for one ephemeral container, in order.

    Watches the pod from resourceVersion ``since`` so no transition is missed.
    """
    seen: list[str] = []
    w = watch.Watch()
    for event in w.stream(
        cluster.core.list_namespaced_pod,
        namespace,
        field_selector=f"metadata.name={pod}",
        resource_version=since,
        timeout_seconds=timeout,
    ):
        statuses = event["object"].status.ephemeral_container_statuses or []
        s = next((x for x in statuses if x.name == name), None)
        if s is None:
            continue
        label = next(
            f"{k}:{getattr(getattr(s.state, k), 'reason', None) or ''}".rstrip(":")
            for k in ("waiting", "running", "terminated")
            if getattr(s.state, k) is not None
        )
        if not seen or seen[-1] != label:
            seen.append(label)
        if label.startswith(until):
            w.stop()
    return seen


def api_error(excinfo: pytest.ExceptionInfo[ApiException]) -> tuple[int, str]:
    return excinfo.value.status, json.loads(excinfo.value.body)["message"]


def test_control_plane_is_real(cluster: Cluster) -> None:
    version = client.VersionApi(cluster.api_client).get_code()
    assert version.git_version == "v1.36.3"
    nodes = cluster.core.list_node().items
    assert len(nodes) >= 2
    for node in nodes:
        ready = next(c for c in node.status.conditions if c.type == "Ready")
        assert ready.status == "True", node.metadata.name
    # Admission and RBAC are on: the API advertises the subresource with its verbs.
    resources = cluster.core.get_api_resources().resources
    sub = next(r for r in resources if r.name == "pods/ephemeralcontainers")
    assert sorted(sub.verbs) == ["get", "patch", "update"]


def test_kubectl_debug_and_python_client_add_containers(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    running_pod(cluster, namespace, "web")

    # 1. The real kubectl debug, built from the same Kubernetes release.
    out = cluster.kubectl_run(
        "debug",
        "-n",
        namespace,
        "web",
        f"--image={DEBUG_IMAGE}",
        "-c",
        "dbg-kubectl",
        "--target=app",
        "--profile=general",
        "--",
        "sleep",
        "3600",
    )
    assert out.returncode == 0, out.stderr

    # 2. The Python client's strategic-merge patch of the subresource.
    pod = patch_ephemeral(
        cluster, namespace, "web", [{"name": "dbg-python", "image": DEBUG_IMAGE, "command": ["sleep", "3600"]}]
    )
    # A plain strategic merge puts the new entry *before* the existing ones...
    assert [c.name for c in pod.spec.ephemeral_containers] == ["dbg-python", "dbg-kubectl"]
    # ...unless the patch carries a $setElementOrder directive (kubectl's two-way
    # merge patch does), which appends, as a user reading the spec expects.
    body = {
        "spec": {
            "$setElementOrder/ephemeralContainers": [
                {"name": "dbg-python"},
                {"name": "dbg-kubectl"},
                {"name": "dbg-3"},
            ],
            "ephemeralContainers": [{"name": "dbg-3", "image": DEBUG_IMAGE}],
        }
    }
    pod = cluster.core.patch_namespaced_pod_ephemeralcontainers("web", namespace, body, **SMP_KWARGS)
    assert [c.name for c in pod.spec.ephemeral_containers] == ["dbg-python", "dbg-kubectl", "dbg-3"]

    kubectl_status = wait_state(cluster, namespace, "web", "dbg-kubectl", "running")
    python_status = wait_state(cluster, namespace, "web", "dbg-python", "running")
    assert kubectl_status.state.running.started_at is not None
    assert python_status.state.running.started_at is not None

    spec = {c.name: c for c in cluster.core.read_namespaced_pod("web", namespace).spec.ephemeral_containers}
    assert spec["dbg-kubectl"].target_container_name == "app"
    assert spec["dbg-kubectl"].security_context.capabilities.add == ["SYS_PTRACE"]
    # Server defaults our module must compare against, or every rerun is a false change.
    assert spec["dbg-python"].termination_message_path == "/dev/termination-log"
    assert spec["dbg-python"].termination_message_policy == "File"
    assert spec["dbg-python"].image_pull_policy == "IfNotPresent"

    # Logs: kwok serves the file a per-pod Logs object names. Its content is the
    # captured output of a real command run here, standing in for the container's stdout.
    real = subprocess.run(["uname", "-sm"], capture_output=True, text=True, check=True).stdout.splitlines()
    log_file = tmp_path / "dbg-python.log"
    log_file.write_text(cri_log("\n".join(real)))
    serve_logs(cluster, namespace, "web", "dbg-python", log_file)
    text = wait_for(
        "logs of dbg-python",
        lambda: (
            (t := cluster.core.read_namespaced_pod_log("web", namespace, container="dbg-python"))
            == "\n".join(real) + "\n"
            and t
        ),
        timeout=30,
    )
    assert text.splitlines() == real
    kubectl_logs = cluster.kubectl_run("logs", "-n", namespace, "web", "-c", "dbg-python")
    assert kubectl_logs.stdout.splitlines() == real

    # Exec through the API server into the ephemeral container (kwok runs it on this host).
    out = stream(
        cluster.core.connect_get_namespaced_pod_exec,
        "web",
        namespace,
        container="dbg-python",
        command=["sh", "-c", "echo exec-ok; echo simulated=$KWOK_SIMULATED_EXEC"],
        stdout=True,
        stderr=True,
        stdin=False,
        tty=False,
    )
    assert out.splitlines() == ["exec-ok", "simulated=1"]
    kubectl_exec = cluster.kubectl_run("exec", "-n", namespace, "web", "-c", "dbg-kubectl", "--", "echo", "via-kubectl")
    assert kubectl_exec.stdout.strip() == "via-kubectl"


def test_exit_codes_and_statuses_stay_independent(cluster: Cluster, namespace: str) -> None:
    running_pod(cluster, namespace, "worker")
    patch_ephemeral(cluster, namespace, "worker", [{"name": "keeps-running", "image": DEBUG_IMAGE}])
    first = wait_state(cluster, namespace, "worker", "keeps-running", "running")

    since = cluster.core.read_namespaced_pod("worker", namespace).metadata.resource_version
    patch_ephemeral(
        cluster,
        namespace,
        "worker",
        [{"name": "exits-3", "image": DEBUG_IMAGE, "env": [{"name": "KWOK_EXIT_CODE", "value": "3"}]}],
    )
    assert state_sequence(cluster, namespace, "worker", "exits-3", since, "terminated") == [
        "waiting:ContainerCreating",
        "running",
        "terminated:Error",
    ]
    failed = wait_state(cluster, namespace, "worker", "exits-3", "terminated").state.terminated
    assert (failed.exit_code, failed.reason) == (3, "Error")
    assert failed.started_at is not None and failed.finished_at >= failed.started_at

    patch_ephemeral(
        cluster,
        namespace,
        "worker",
        [{"name": "exits-0", "image": DEBUG_IMAGE, "env": [{"name": "KWOK_EXIT_CODE", "value": "0"}]}],
    )
    done = wait_state(cluster, namespace, "worker", "exits-0", "terminated").state.terminated
    assert (done.exit_code, done.reason) == (0, "Completed")

    # The later updates re-emitted the others untouched.
    statuses = {
        s.name: s for s in cluster.core.read_namespaced_pod("worker", namespace).status.ephemeral_container_statuses
    }
    assert set(statuses) == {"keeps-running", "exits-3", "exits-0"}
    assert statuses["keeps-running"].state.running.started_at == first.state.running.started_at
    assert statuses["exits-3"].state.terminated.exit_code == 3
    # Pod phase ignores ephemeral containers.
    assert cluster.core.read_namespaced_pod("worker", namespace).status.phase == "Running"


def test_unpullable_image_stays_waiting(cluster: Cluster, namespace: str) -> None:
    running_pod(cluster, namespace, "web")
    image = "registry.invalid/debug/none:1"
    since = cluster.core.read_namespaced_pod("web", namespace).metadata.resource_version
    patch_ephemeral(cluster, namespace, "web", [{"name": "bad-image", "image": image}])
    assert state_sequence(cluster, namespace, "web", "bad-image", since, "waiting:ImagePullBackOff") == [
        "waiting:ContainerCreating",
        "waiting:ErrImagePull",
        "waiting:ImagePullBackOff",
    ]
    pulling = ephemeral_status(cluster.core, namespace, "web", "bad-image")
    assert pulling.state.waiting.message == f'Back-off pulling image "{image}"'
    backoff = wait_for(
        "ImagePullBackOff",
        lambda: (
            (s := ephemeral_status(cluster.core, namespace, "web", "bad-image")) is not None
            and s.state.waiting is not None
            and s.state.waiting.reason == "ImagePullBackOff"
            and s
        ),
    )
    assert backoff.state.waiting.message == f'Back-off pulling image "{image}"'
    assert backoff.state.running is None and backoff.state.terminated is None


def test_api_server_refusals(cluster: Cluster, namespace: str) -> None:
    """The exact messages the module translates (see docs and the module's error handling)."""
    core = cluster.core
    running_pod(cluster, namespace, "web")
    patch_ephemeral(cluster, namespace, "web", [{"name": "dbg", "image": DEBUG_IMAGE}])

    # Same spec again: a strategic merge that changes nothing is accepted, nothing added.
    again = patch_ephemeral(cluster, namespace, "web", [{"name": "dbg", "image": DEBUG_IMAGE}])
    assert [c.name for c in again.spec.ephemeral_containers] == ["dbg"]

    cases: list[tuple[str, dict[str, Any], int, str]] = [
        (
            "same name, other image",
            {"name": "dbg", "image": "docker.io/library/alpine:3.20"},
            422,
            'Pod "web" is invalid: spec.ephemeralContainers: Forbidden: existing ephemeral containers "dbg" may not be changed',
        ),
        (
            "ports",
            {"name": "p", "image": DEBUG_IMAGE, "ports": [{"containerPort": 80}]},
            422,
            'Pod "web" is invalid: spec.ephemeralContainers[0].ports: Forbidden: cannot be set for an Ephemeral Container',
        ),
        (
            "resources",
            {"name": "r", "image": DEBUG_IMAGE, "resources": {"limits": {"cpu": "100m"}}},
            422,
            'Pod "web" is invalid: spec.ephemeralContainers[0].resources: Forbidden: cannot be set for an Ephemeral Container',
        ),
        (
            "name of a regular container",
            {"name": "app", "image": DEBUG_IMAGE},
            422,
            'Pod "web" is invalid: spec.ephemeralContainers[0].name: Duplicate value: "app"',
        ),
        (
            "missing target",
            {"name": "t", "image": DEBUG_IMAGE, "targetContainerName": "nope"},
            422,
            'Pod "web" is invalid: spec.ephemeralContainers[0].targetContainerName: Not found: "nope"',
        ),
    ]
    for label, container, status, message in cases:
        with pytest.raises(ApiException) as excinfo:
            patch_ephemeral(cluster, namespace, "web", [container])
        got_status, got_message = api_error(excinfo)
        assert got_status == status, label
        assert got_message.startswith(message), f"{label}: {got_message}"

    assert [c.name for c in core.read_namespaced_pod("web", namespace).spec.ephemeral_containers] == ["dbg"]


def test_static_mirror_pod_refused(cluster: Cluster, namespace: str) -> None:
    core = cluster.core
    node = kwok_node(cluster)
    mirror = make_pod(
        "static-web",
        [{"name": "app", "image": "registry.k8s.io/pause:3.10"}],
        nodeName=node.metadata.name,
        metadata={
            "annotations": {"kubernetes.io/config.mirror": "hash", "kubernetes.io/config.source": "file"},
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "name": node.metadata.name,
                    "uid": node.metadata.uid,
                    "controller": True,
                }
            ],
        },
    )
    core.create_namespaced_pod(namespace, mirror)
    with pytest.raises(ApiException) as excinfo:
        patch_ephemeral(cluster, namespace, "static-web", [{"name": "dbg", "image": DEBUG_IMAGE}])
    status, message = api_error(excinfo)
    assert status == 422, message
    assert message == 'Pod "static-web" is invalid: []: Forbidden: static pods do not support ephemeral containers'


def test_pod_security_restricted_refuses_privileged(cluster: Cluster, namespace: str) -> None:
    core = cluster.core
    core.patch_namespace(namespace, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}})
    restricted_ctx = {
        "runAsNonRoot": True,
        "runAsUser": 65534,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    core.create_namespaced_pod(
        namespace,
        make_pod("web", [{"name": "app", "image": "registry.k8s.io/pause:3.10", "securityContext": restricted_ctx}]),
    )
    wait_for("restricted pod Running", lambda: core.read_namespaced_pod("web", namespace).status.phase == "Running")

    with pytest.raises(ApiException) as excinfo:
        patch_ephemeral(
            cluster, namespace, "web", [{"name": "root", "image": DEBUG_IMAGE, "securityContext": {"privileged": True}}]
        )
    status, message = api_error(excinfo)
    assert status == 403
    assert message.startswith(
        'pods "web" is forbidden: violates PodSecurity "restricted:latest": '
        'privileged (container "root" must not set securityContext.privileged=true)'
    ), message

    # kubectl debug's restricted profile passes the same namespace.
    ok = patch_ephemeral(
        cluster, namespace, "web", [{"name": "ok", "image": DEBUG_IMAGE, "securityContext": restricted_ctx}]
    )
    assert [c.name for c in ok.spec.ephemeral_containers] == ["ok"]


def test_server_side_dry_run_persists_nothing(cluster: Cluster, namespace: str) -> None:
    core = cluster.core
    running_pod(cluster, namespace, "web")
    before = core.read_namespaced_pod("web", namespace)
    answer = patch_ephemeral(cluster, namespace, "web", [{"name": "dry", "image": DEBUG_IMAGE}], dry_run="All")
    # The answer is the pod as it would be, server defaults filled in...
    dry = next(c for c in answer.spec.ephemeral_containers if c.name == "dry")
    assert dry.termination_message_policy == "File"
    # ...but nothing was stored.
    after = core.read_namespaced_pod("web", namespace)
    assert after.spec.ephemeral_containers is None
    assert after.metadata.resource_version == before.metadata.resource_version

    # Dry run still runs validation: a forbidden field is refused with the same message.
    with pytest.raises(ApiException) as excinfo:
        patch_ephemeral(
            cluster,
            namespace,
            "web",
            [{"name": "p", "image": DEBUG_IMAGE, "ports": [{"containerPort": 1}]}],
            dry_run="All",
        )
    assert api_error(excinfo)[0] == 422
