"""Helpers shared by the integration tests (kept out of conftest so tests can import them)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client


@dataclass(frozen=True)
class Cluster:
    kubeconfig: str
    kubectl: str
    api_client: client.ApiClient

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api_client)

    def kubectl_run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.kubectl, "--kubeconfig", self.kubeconfig, *args],
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
        )


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 60.0, interval: float = 0.2) -> Any:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what}; last seen: {last!r}")


def make_pod(name: str, containers: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, **extra.pop("metadata", {})},
        "spec": {"containers": containers, **extra},
    }


def running_pod(cluster: Cluster, namespace: str, name: str, **extra: Any) -> client.V1Pod:
    """Create a pod with one app container and wait until the simulated kubelet runs it."""
    cluster.core.create_namespaced_pod(
        namespace, make_pod(name, [{"name": "app", "image": "registry.k8s.io/pause:3.10"}], **extra)
    )
    return wait_for(
        f"pod {namespace}/{name} Running",
        lambda: (p := cluster.core.read_namespaced_pod(name, namespace)).status.phase == "Running" and p,
    )
