"""Helpers shared by the integration tests (kept out of conftest so tests can import them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
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


APP = {"name": "app", "image": "registry.k8s.io/pause:3.10"}


def running_pod(
    cluster: Cluster, namespace: str, name: str, containers: list[dict[str, Any]] | None = None, **extra: Any
) -> client.V1Pod:
    """Create a pod (by default one container "app") and wait until the simulated kubelet runs it."""
    cluster.core.create_namespaced_pod(namespace, make_pod(name, containers or [dict(APP)], **extra))
    return wait_for(
        f"pod {namespace}/{name} Running",
        lambda: (p := cluster.core.read_namespaced_pod(name, namespace)).status.phase == "Running" and p,
    )


def run_task(
    tmp_path: Path,
    module: str,
    args: dict[str, Any],
    *,
    check: bool = False,
    diff: bool = False,
    env: dict[str, str] | None = None,
    play_extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run one task through ansible-playbook, as a user would, and return its registered result.

    The result is written by a second task (which runs even in check mode), so
    failures and warnings are returned, not raised.
    """
    play = {
        "name": "integration task",
        "hosts": "localhost",
        "gather_facts": False,
        **(play_extra or {}),
        "tasks": [
            {"name": "task under test", module: args, "register": "result", "ignore_errors": True},
            {
                "name": "save the result",
                "ansible.builtin.copy": {"content": "{{ result | to_json }}", "dest": str(tmp_path / "result.json")},
                "check_mode": False,
                "diff": False,
            },
        ],
    }
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([play], sort_keys=False))
    cmd = ["ansible-playbook", "-i", "localhost,", "-c", "local", str(playbook)]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    full_env = {**os.environ, "ANSIBLE_PYTHON_INTERPRETER": sys.executable, "ANSIBLE_NOCOLOR": "1", **(env or {})}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=600, check=False)
    out = tmp_path / "result.json"
    if not out.exists():
        pytest.fail(
            f"ansible-playbook did not run the task (rc={proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    result = json.loads(out.read_text())
    result["_stdout"] = proc.stdout
    out.unlink()
    return result
