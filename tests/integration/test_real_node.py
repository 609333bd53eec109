"""Ephemeral containers on the real node: kubelet, containerd and runc run them for real.

Nothing here is simulated. The pods run on the node hack/node.sh registers (label and
taint kubedebug.io/node=real), from images built on this machine and imported into
containerd (hack/images). States, exit codes and logs are the kubelet's own; a process
is seen through ``kubectl exec``, which goes API server -> kubelet -> containerd.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from kubehelpers import (
    BUSYBOX_IMAGE,
    REAL_NODE,
    SERVER_IMAGE,
    Cluster,
    real_pod,
    run_lookup,
    run_task,
    wait_for,
)

pytestmark = [pytest.mark.real_node, pytest.mark.usefixtures("real_node")]

SERVER = {"name": "app", "image": SERVER_IMAGE, "args": ["-listen", ":8080"]}
# What PodSecurity "restricted" asks of every container, the debug container included.
RESTRICTED = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def add(cluster: Cluster, tmp_path: Path, namespace: str, pod: str, **args: Any) -> dict[str, Any]:
    base = {
        "kubeconfig": cluster.kubeconfig,
        "namespace": [namespace],
        "pod": pod,
        "image": BUSYBOX_IMAGE,
        "image_pull_policy": "IfNotPresent",
        "wait_timeout": 90,
    }
    return run_task(tmp_path, "kubedebug.ephemeral.ephemeral_container", {**base, **args})


def exec_in(cluster: Cluster, namespace: str, pod: str, container: str, *command: str) -> str:
    return cluster.kubectl_run("exec", "-n", namespace, pod, "-c", container, "--", *command).stdout


def logs(cluster: Cluster, namespace: str, pod: str, container: str) -> str:
    return cluster.kubectl_run("logs", "-n", namespace, pod, "-c", container).stdout


def test_added_container_really_runs_in_the_target_process_namespace(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    real_pod(cluster, namespace, "web", [dict(SERVER)])
    got = add(
        cluster, tmp_path, namespace, "web", container="dbg", target_container="app",
        command=["sh", "-c", "echo started; exec sleep 600"], wait="running",
    )  # fmt: skip
    [pod] = got["pods"]
    assert (pod["action"], pod["state"]["status"]) == ("added", "running"), got

    # The process runs, and it sees the target's: pid 1 of the shared namespace is the server.
    ps = exec_in(cluster, namespace, "web", "dbg", "ps", "-o", "pid,user,args")
    assert "sleep 600" in ps
    assert "/server -listen :8080" in ps
    assert exec_in(cluster, namespace, "web", "dbg", "cat", "/proc/1/cmdline").split("\0")[:3] == ["/server", "-listen", ":8080"]
    # ... as the target's user (65532 in the image), while the debug container is root.
    assert exec_in(cluster, namespace, "web", "dbg", "stat", "-c", "%u", "/proc/1").strip() == "65532"
    assert wait_for("the running container's log", lambda: "started" in logs(cluster, namespace, "web", "dbg"))

    # The kubelet reports it running; a rerun changes nothing.
    status = cluster.core.read_namespaced_pod("web", namespace).status
    [st] = status.ephemeral_container_statuses
    assert st.state.running is not None and st.container_id.startswith("containerd://")
    again = add(
        cluster, tmp_path, namespace, "web", container="dbg", target_container="app",
        command=["sh", "-c", "echo started; exec sleep 600"], wait="running",
    )  # fmt: skip
    assert (again["changed"], again["pods"][0]["action"]) == (False, "unchanged")


def test_real_exit_code_and_logs_after_exit(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    real_pod(cluster, namespace, "web", [dict(SERVER)])
    script = "echo to-stdout; echo to-stderr >&2; sleep 2; echo last; exit 7"
    got = add(cluster, tmp_path, namespace, "web", container="quits", command=["sh", "-c", script], wait="terminated")
    [pod] = got["pods"]
    assert pod["state"]["status"] == "terminated", got
    assert (pod["state"]["exit_code"], pod["state"]["reason"]) == (7, "Error")

    # The kubelet still serves the log of an exited container, through the lookup and kubectl alike. stdout and
    # stderr reach the log through two pipes, so lines written at the same moment may land in either order
    # (seen here); "last", two seconds later, comes last.
    def in_order(text: str) -> bool:
        lines = text.splitlines()
        return sorted(lines[:2]) == ["to-stderr", "to-stdout"] and lines[2:] == ["last"]

    assert in_order(logs(cluster, namespace, "web", "quits"))
    found = run_lookup(tmp_path, [f"{namespace}/web"], {"kubeconfig": cluster.kubeconfig, "container": ["quits"]})
    [record] = found["ansible_facts"]["records"]
    assert (record["node"], record["state"], record["exit_code"]) == (REAL_NODE, "terminated", 7)
    assert in_order(record["logs"])
    assert record["duration_seconds"] >= 2

    # A clean exit is a real 0, with reason Completed.
    ok = add(cluster, tmp_path, namespace, "web", container="fine", command=["true"], wait="terminated")
    assert (ok["pods"][0]["state"]["exit_code"], ok["pods"][0]["state"]["reason"]) == (0, "Completed")


def test_kubectl_debug_and_the_module_see_the_same_target(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    real_pod(cluster, namespace, "web", [dict(SERVER)])
    cluster.kubectl_run(
        "debug", "-n", namespace, "web", f"--image={BUSYBOX_IMAGE}", "--target=app", "-c", "by-kubectl",
        "--", "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '",
    )  # fmt: skip
    add(
        cluster, tmp_path, namespace, "web", container="by-module", target_container="app",
        command=["sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '"], wait="terminated",
    )  # fmt: skip
    wait_for(
        "kubectl debug's container to exit",
        lambda: any(
            s.name == "by-kubectl" and s.state.terminated for s in cluster.core.read_namespaced_pod("web", namespace).status.ephemeral_container_statuses or []
        ),
        timeout=90,
    )
    assert logs(cluster, namespace, "web", "by-kubectl").strip() == "/server -listen :8080"
    assert logs(cluster, namespace, "web", "by-module").strip() == "/server -listen :8080"


def test_an_image_that_is_not_there_gives_the_kubelets_pull_error(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    real_pod(cluster, namespace, "web", [dict(SERVER)])
    got = add(
        cluster, tmp_path, namespace, "web", container="nope", image="kd.local/not-imported:1",
        command=["sh"], wait="running", wait_timeout=40,
    )  # fmt: skip
    assert got.get("failed") is True, got
    [pod] = got["pods"]
    assert pod["action"] == "failed"
    assert pod["state"]["status"] == "waiting"
    assert pod["state"]["reason"] in ("ErrImagePull", "ImagePullBackOff")
    assert "kd.local/not-imported:1" in pod["state"]["message"] or pod["state"]["reason"] == "ImagePullBackOff"
    assert pod["state"]["reason"] in pod["msg"]
    events = cluster.core.list_namespaced_event(namespace, field_selector="involvedObject.name=web").items
    assert any(e.reason == "Failed" and "kd.local/not-imported:1" in e.message for e in events)


def test_podsecurity_restricted_on_a_real_pod(cluster: Cluster, namespace_factory: Any, tmp_path: Path) -> None:
    namespace = namespace_factory(labels={"pod-security.kubernetes.io/enforce": "restricted"})
    real_pod(cluster, namespace, "web", [{**SERVER, "securityContext": dict(RESTRICTED)}])

    refused = add(cluster, tmp_path, namespace, "web", container="root", profile="sysadmin", command=["true"], wait="none")
    assert refused.get("failed") is True
    [pod] = refused["pods"]
    assert pod["action"] == "failed"
    assert 'violates PodSecurity "restricted:latest"' in pod["msg"]
    assert "use profile: restricted" in pod["msg"]
    assert not cluster.core.read_namespaced_pod("web", namespace).spec.ephemeral_containers

    # The restricted profile passes admission and really runs: non-root, no capabilities, runc's seccomp filter.
    ran = add(
        cluster, tmp_path, namespace, "web", container="polite", profile="restricted",
        security_context={"runAsUser": 65532}, wait="terminated",
        command=["sh", "-c", "id -u; grep -E '^(Seccomp|CapEff):' /proc/self/status"],
    )  # fmt: skip
    [pod] = ran["pods"]
    assert (pod["action"], pod["state"]["exit_code"]) == ("added", 0), ran
    out = logs(cluster, namespace, "web", "polite").split()
    assert out[0] == "65532"
    status = dict(zip(out[1::2], out[2::2], strict=True))
    assert status == {"CapEff:": "0000000000000000", "Seccomp:": "2"}  # 2: a seccomp filter is applied

    # Without a user, an image that runs as root passes admission (runAsNonRoot is set) and the kubelet refuses to
    # start it, as docs/docsite/rst/troubleshooting.rst says.
    rooted = add(cluster, tmp_path, namespace, "web", container="rooted", profile="restricted", command=["true"], wait="running", wait_timeout=40)
    assert rooted.get("failed") is True, rooted
    [pod] = rooted["pods"]
    assert (pod["state"]["status"], pod["state"]["reason"]) == ("waiting", "CreateContainerConfigError"), pod
    assert "container has runAsNonRoot and image will run as root" in pod["state"]["message"], pod


def test_pods_resolve_names_through_the_nodes_resolver(cluster: Cluster, namespace: str) -> None:
    """The pod network's resolver answers cluster names and nothing else; the test host never asks its own."""
    server = real_pod(cluster, namespace, "web", [dict(SERVER)], metadata={"labels": {"app": "web"}})
    cluster.core.create_namespaced_service(
        namespace,
        client.V1Service(
            metadata=client.V1ObjectMeta(name="web"),
            spec=client.V1ServiceSpec(cluster_ip="None", selector={"app": "web"}, ports=[client.V1ServicePort(port=8080)]),
        ),
    )
    real_pod(cluster, namespace, "client", [{"name": "sh", "image": BUSYBOX_IMAGE, "command": ["sleep", "600"]}])
    name = f"web.{namespace}.svc.cluster.local"

    def answer() -> str | None:
        out = cluster.kubectl_run("exec", "-n", namespace, "client", "--", "nslookup", name, check=False).stdout
        return out if server.status.pod_ip in out else None

    assert wait_for(f"{name} to resolve to {server.status.pod_ip}", answer, timeout=30)
    # The kubelet's search domains make the short name work too (busybox nslookup tries every search domain
    # and exits 1 when any of them has no answer, so only its output counts), and the server answers on its pod IP.
    short = cluster.kubectl_run("exec", "-n", namespace, "client", "--", "nslookup", "web", check=False).stdout
    assert f"Name:\tweb.{namespace}.svc.cluster.local\nAddress: {server.status.pod_ip}" in short
    body = exec_in(cluster, namespace, "client", "sh", "wget", "-q", "-O", "-", f"http://web.{namespace}.svc.cluster.local:8080/")
    assert body.strip() == "ok"
    missing = cluster.kubectl_run("exec", "-n", namespace, "client", "--", "nslookup", f"nope.{namespace}.svc.cluster.local", check=False)
    assert missing.returncode != 0
    resolv = exec_in(cluster, namespace, "client", "sh", "cat", "/etc/resolv.conf")
    assert resolv.splitlines()[0].startswith("search " + namespace + ".svc.cluster.local")
    node_ip = next(a.address for a in cluster.core.read_node(REAL_NODE).status.addresses if a.type == "InternalIP")
    assert [line.split()[1] for line in resolv.splitlines() if line.startswith("nameserver")] == [node_ip]
