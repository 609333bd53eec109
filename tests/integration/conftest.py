"""Session fixtures that run the integration tests against the embedded local cluster.

The cluster is real (kube-apiserver, etcd, kube-controller-manager, kube-scheduler
built from the pinned Kubernetes sources); only nodes and kubelets are simulated by
KWOK, so container processes never run: their states come from the Stages in
``tests/kwok/stages/`` and their logs from per-pod ``Logs`` objects.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from kubehelpers import REAL_NODE, Cluster, wait_for

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_SH = ROOT / "hack" / "cluster.sh"


def _cluster_sh(action: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(CLUSTER_SH), action], capture_output=True, text=True, check=False)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """Bring the local cluster up once per session (reusing one that is already up).

    A cluster this fixture started is stopped at the end of the session unless
    KD_KEEP_CLUSTER=1; one that was already running is left as it was.
    """
    was_up = _cluster_sh("status").returncode == 0
    up = _cluster_sh("up")
    if up.returncode != 0:
        pytest.fail(f"hack/cluster.sh up failed ({up.returncode}):\n{up.stderr[-4000:]}")
    last = up.stdout.strip().splitlines()[-1]
    assert last.startswith("KUBECONFIG="), up.stdout
    kubeconfig = last.split("=", 1)[1]
    api = config.new_client_from_config(config_file=kubeconfig)
    kubectl = os.environ.get("KD_BIN", str(ROOT / ".cache" / "bin")) + "/kubectl"
    try:
        yield Cluster(kubeconfig=kubeconfig, kubectl=kubectl, api_client=api)
    finally:
        api.close()
        if not was_up and os.environ.get("KD_KEEP_CLUSTER") != "1":
            _cluster_sh("down")


@pytest.fixture
def namespace_factory(cluster: Cluster) -> Iterator[Callable[..., str]]:
    """Creates fresh namespaces whose default ServiceAccount exists (pods are refused before that)."""
    created: list[str] = []
    core = cluster.core

    def make(labels: dict[str, str] | None = None) -> str:
        name = f"kd-test-{uuid.uuid4().hex[:8]}"
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels)))
        created.append(name)
        wait_for(
            f"ServiceAccount default in {name}",
            lambda: any(sa.metadata.name == "default" for sa in core.list_namespaced_service_account(name).items),
        )
        return name

    yield make
    for name in created:
        core.delete_namespace(name)


@pytest.fixture
def namespace(namespace_factory: Callable[..., str]) -> str:
    return namespace_factory()


@pytest.fixture
def real_node(cluster: Cluster) -> str:
    """The real node, working. Skipped only where the host cannot run containers at all
    (hack/node.sh check says why); where it can, a broken node fails the test, saying what is broken."""
    node_sh = ROOT / "hack" / "node.sh"
    check = subprocess.run(["bash", str(node_sh), "check"], capture_output=True, text=True, check=False)
    if check.returncode != 0:
        pytest.skip(f"this host cannot run the real node: {check.stdout.strip() or check.stderr.strip()}")
    status = subprocess.run(["bash", str(node_sh), "status"], capture_output=True, text=True, check=False)
    if status.returncode != 0:
        pytest.fail(f"the real node is broken (hack/node.sh status):\n{status.stdout}{status.stderr}")
    return REAL_NODE
