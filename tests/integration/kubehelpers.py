"""Helpers shared by the integration tests (kept out of conftest so tests can import them)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from kubernetes import client

from ansible_collections.kubedebug.ephemeral.plugins.plugin_utils._recipes import kubelet_escape
from ansible_collections.kubedebug.ephemeral.tests.kubelet import kubelet_argv
from ansible_collections.kubedebug.ephemeral.tests.private_resolver import Unavailable, private_resolver


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


def kwok_node(cluster: Cluster) -> client.V1Node:
    """A simulated node: tests that pin a pod to a node by name (a mirror pod, a Windows pod) must not land on the real node."""
    return cluster.core.list_node(label_selector="type=kwok").items[0]


def make_pod(name: str, containers: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, **extra.pop("metadata", {})},
        "spec": {"containers": containers, **extra},
    }


ROOT = Path(__file__).resolve().parents[2]
APP = {"name": "app", "image": "registry.k8s.io/pause:3.10"}
# Clients >= 36 choose the patch type from _content_type; older ones pick
# strategic merge for a dict body on their own and reject the keyword.
SMP_KWARGS = (
    {"_content_type": "application/strategic-merge-patch+json"}
    if int(kubernetes.__version__.split(".")[0]) >= 36
    else {}
)


def patch_ephemeral(
    cluster: Cluster, namespace: str, pod: str, containers: list[dict[str, Any]], **kwargs: Any
) -> client.V1Pod:
    """Add ephemeral containers the way kubectl and client libraries do: a strategic-merge patch."""
    body = {"spec": {"ephemeralContainers": containers}}
    return cluster.core.patch_namespaced_pod_ephemeralcontainers(pod, namespace, body, **SMP_KWARGS, **kwargs)


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

    Failures and warnings are returned, not raised.
    """
    task = {"name": "task under test", module: args, "register": "result", "ignore_errors": True}
    return run_tasks(tmp_path, [task], "result", check=check, diff=diff, env=env, play_extra=play_extra)


def run_tasks(
    tmp_path: Path,
    tasks: list[dict[str, Any]],
    save: str,
    *,
    check: bool = False,
    diff: bool = False,
    env: dict[str, str] | None = None,
    play_extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run ``tasks`` in a play on localhost and return the value of the expression ``save`` afterwards (a list comes
    back as ``{"_list": [...]}``).

    The value is written by a last task that runs even in check mode. The play's
    output is added as ``_stdout``.
    """
    play = {
        "name": "integration play",
        "hosts": "localhost",
        "gather_facts": False,
        **(play_extra or {}),
        "tasks": [
            *tasks,
            {
                "name": "save the result",
                "ansible.builtin.copy": {"content": "{{ " + save + " | to_json }}", "dest": str(tmp_path / "result.json")},
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
            f"ansible-playbook did not get to the end (rc={proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    result = json.loads(out.read_text())
    if isinstance(result, dict):
        result["_stdout"] = proc.stdout
    else:
        result = {"_list": result, "_stdout": proc.stdout}
    out.unlink()
    return result


def include_role(cluster: Cluster, role: str, **role_vars: Any) -> list[dict[str, Any]]:
    """The task a user writes to run one of the collection's roles, its ``<role>_auth`` pointing at ``cluster``."""
    return [
        {
            "name": f"Run {role}",
            "ansible.builtin.include_role": {"name": f"kubedebug.ephemeral.{role}"},
            "vars": {f"{role}_auth": {"kubeconfig": cluster.kubeconfig}, **role_vars},
        }
    ]


def real_run(command: list[str], seconds: float = 10) -> tuple[str, int | None]:
    """Run ``command`` on this host and return what it printed (stdout and stderr, interleaved) and its exit code.

    A command still running after ``seconds`` is stopped: its output so far is what
    a container running it would have logged by then, and the exit code is None.
    The dns recipe runs in a network namespace with a resolver of its own
    (tests/private_resolver.py): its lookups never reach this host's resolver.
    """
    # What the container's process gets of its spec's command: the kubelet's $$ -> $ (no variables: KWOK has none).
    command = kubelet_argv(command)
    if command[RECIPE_NAME_AT : RECIPE_NAME_AT + 1] == ["dns"]:
        with tempfile.TemporaryDirectory(prefix="kd-resolver-") as directory:
            try:
                with private_resolver(Path(directory)) as resolver:
                    return _real_run([*resolver.wrap(), *command], seconds)
            except Unavailable as exc:
                raise AssertionError(f"the dns recipe runs only against the test's own resolver: {exc}") from None
    return _real_run(command, seconds)


def _real_run(command: list[str], seconds: float) -> tuple[str, int | None]:
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out = proc.communicate(timeout=seconds)[0]
        return out, proc.returncode
    except subprocess.TimeoutExpired:
        proc.kill()
        out = proc.communicate()[0]
        return out, None


def cri_log(text: str) -> str:
    """Render output the way a CRI runtime writes a container log file (what kwok serves)."""
    stamp = "2026-01-01T00:00:00.000000000Z"
    return "".join(f"{stamp} stdout F {line}\n" for line in text.splitlines())


def serve_logs(cluster: Cluster, namespace: str, pod: str, container: str, log_file: Path) -> None:
    """Point kwok's log endpoint for one container at ``log_file`` (a per-pod Logs object)."""
    api = client.CustomObjectsApi(cluster.api_client)
    # A per-pod Logs object hides the cluster-wide default from the pod's other
    # containers: give them the same stand-in line the cluster default serves.
    default = log_file.parent / "kwok-default.log"
    if not default.exists():
        default.write_text(cri_log("kwok: no log fixture configured for this container"))
    try:
        current = api.get_namespaced_custom_object("kwok.x-k8s.io", "v1alpha1", namespace, "logs", pod)["spec"]["logs"]
    except client.ApiException as exc:
        if exc.status != 404:
            raise
        current = None
    logs = [e for e in current or [] if container not in e.get("containers", [])]
    logs.append({"containers": [container], "logsFile": str(log_file)})
    if not any(not e.get("containers") for e in logs):
        logs.append({"logsFile": str(default)})
    if current is None:
        body = {"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Logs", "metadata": {"name": pod, "namespace": namespace}}
        api.create_namespaced_custom_object("kwok.x-k8s.io", "v1alpha1", namespace, "logs", {**body, "spec": {"logs": logs}})
    else:
        api.patch_namespaced_custom_object("kwok.x-k8s.io", "v1alpha1", namespace, "logs", pod, {"spec": {"logs": logs}})


def simulate_debug_container(
    cluster: Cluster,
    namespace: str,
    pod: str,
    container: str,
    command: list[str],
    tmp_path: Path,
    image: str = "docker.io/library/busybox:1.36",
    run_seconds: float = 10,
) -> tuple[str, int | None]:
    """Add an ephemeral container whose logs and exit code are those of a real run of ``command``.

    KWOK runs no process: the command is run here, on the test host, and its real
    output and exit code stand in for the container's (logs through a Logs object,
    the exit code through the KWOK_EXIT_CODE env the stages act on).
    """
    output, code = real_run(command, run_seconds)
    log_file = tmp_path / f"{namespace}-{pod}-{container}.log"
    log_file.write_text(cri_log(output))
    serve_logs(cluster, namespace, pod, container, log_file)
    spec: dict[str, Any] = {"name": container, "image": image, "command": command}
    if code is not None:
        spec["env"] = [{"name": "KWOK_EXIT_CODE", "value": str(code)}]
    patch_ephemeral(cluster, namespace, pod, [spec])
    return output, code


def run_lookup(
    tmp_path: Path, terms: list[str], options: dict[str, Any], env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Evaluate the ephemeral_results lookup in a play; returns the task result (records in ansible_facts.records)."""
    return run_task(
        tmp_path,
        "ansible.builtin.set_fact",
        {"records": "{{ query('kubedebug.ephemeral.ephemeral_results', *lookup_terms, **lookup_options) }}"},
        env=env,
        play_extra={"vars": {"lookup_terms": terms, "lookup_options": options}},
    )


def service_account_auth(cluster: Cluster, namespace: str, name: str, tmp_path: Path) -> dict[str, Any]:
    """A real ServiceAccount token, the cluster's CA and its URL: what an AWX credential injects."""
    core = cluster.core
    core.create_namespaced_service_account(namespace, {"metadata": {"name": name}})
    token = core.create_namespaced_service_account_token(
        name, namespace, {"spec": {"expirationSeconds": 3600}}
    ).status.token
    kubeconfig = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    server = kubeconfig["clusters"][0]["cluster"]
    ca = server.get("certificate-authority")
    if not ca:
        ca = str(tmp_path / "ca.crt")
        Path(ca).write_bytes(base64.b64decode(server["certificate-authority-data"]))
    return {"host": server["server"], "api_key": token, "ca_cert": ca}


# Where a recipe's name is in its command, sh -c BOOT kd-boot TIME_LIMIT NICE SCRIPT NAME ARGS... (recipe_command).
RECIPE_NAME_AT = 7


def script_command(script: str, name: str, args: list[str], time_limit: int = 100, nice: int = 10) -> list[str]:
    """The command the recipe role puts in the debug container's spec for ``script`` (the file lookups strip trailing
    newlines): boot.sh runs ``sh -c "<prelude>\n<script>" NAME ARGS...`` under the time limit and niceness, every
    ``$`` doubled for the kubelet (``real_run`` runs it as the kubelet would)."""
    files = ROOT / "roles" / "recipe" / "files"
    boot = (files / "boot.sh").read_text().rstrip()
    prelude = (files / "prelude.sh").read_text().rstrip()
    argv = ["sh", "-c", boot, "kd-boot", str(time_limit), str(nice), prelude + "\n" + script, name, *args]
    return [kubelet_escape(arg) for arg in argv]


def recipe_command(recipe: str, args: list[str]) -> list[str]:
    """The command a recipe role puts in its debug container for a shipped recipe, with the role's defaults."""
    script = (ROOT / "roles" / "recipe" / "files" / f"{recipe}.sh").read_text().rstrip()
    return script_command(script, recipe, args, time_limit=360 if recipe == "capture" else 100)


def recipe_lines(output: list[Any]) -> list[Any]:
    """A recipe's output lines but the ``{"bounds": ...}`` lines of the boot and the prelude."""
    return [line for line in output if not (isinstance(line, dict) and "bounds" in line and "check" not in line)]


def on_this_host(command: list[str]) -> list[str]:
    """``command`` (from recipe_command) aimed at this test process for its target, when it runs on the host.

    In a debug container the target is the lowest pid outside the container; on the
    host pid 1 is our own ancestor, so the script would pick whichever process has the
    lowest pid, and once pids wrap (pid_max 32768 here, reached during a CI run) that
    can be a container on the real node, whose root has no /etc/hostname. The recipes
    take ``--pid``; our own root is this host's.
    """
    at = RECIPE_NAME_AT + 1
    return [*command[:at], "--pid", str(os.getpid()), *command[at:]]


def prepare_recipe(
    cluster: Cluster, pods: list[tuple[str, str]], container: str, command: list[str], tmp_path: Path
) -> tuple[str, int]:
    """Run ``command`` here for real once and serve its output as ``container``'s log in each (namespace, pod).

    Returns the output and the exit code, which the test hands to the debug
    containers as KWOK_EXIT_CODE so the simulated kubelet ends them with it.
    """
    # Bounded, and generous: the processes recipe reads all of /proc, which took 90 s on 2 loaded cores.
    output, code = real_run(command, 240)
    assert code is not None, f"{command[RECIPE_NAME_AT]} did not finish within 240 s"
    log_file = tmp_path / f"{container}.log"
    log_file.write_text(cri_log(output))
    for namespace, pod in pods:
        serve_logs(cluster, namespace, pod, container, log_file)
    return output, code


def run_playbook(
    playbook: str, extra_vars: dict[str, Any], *, inventory: str = "localhost,", check: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run one of the collection's playbooks as a user would (by path, with JSON extra vars)."""
    cmd = ["ansible-playbook", "-i", inventory, str(ROOT / "playbooks" / playbook), "-e", json.dumps(extra_vars)]
    if check:
        cmd.append("--check")
    env = {**os.environ, "ANSIBLE_PYTHON_INTERPRETER": sys.executable, "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, check=False)


# The real node (hack/node.sh): kubelet, containerd and runc. Its images are built on
# this machine and imported into containerd (hack/images), so pods use IfNotPresent.
REAL_NODE = "kd-real-node"
REAL_NODE_PLACEMENT: dict[str, Any] = {
    "nodeSelector": {"kubedebug.io/node": "real"},
    "tolerations": [{"key": "kubedebug.io/node", "operator": "Equal", "value": "real", "effect": "NoSchedule"}],
}
BUSYBOX_IMAGE = "kd.local/busybox:1.35"
DEBUG_IMAGE_REAL = "kd.local/debug:1"
SERVER_IMAGE = "kd.local/server:1"
JVM_IMAGE = "kd.local/jvm-app:1"
PYTHON_IMAGE = "kd.local/python-app:1"


def pod_trouble(cluster: Cluster, namespace: str, name: str) -> str:
    """What the kubelet says about a pod that does not run: container states and the pod's events."""
    pod = cluster.core.read_namespaced_pod(name, namespace)
    states = [
        f"{s.name}: {s.state.to_dict()}"
        for s in (pod.status.container_statuses or []) + (pod.status.ephemeral_container_statuses or [])
    ]
    events = cluster.core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}").items
    return "\n".join([f"phase {pod.status.phase} on {pod.spec.node_name}", *states, *(f"event {e.reason}: {e.message}" for e in events)])


def real_pod(
    cluster: Cluster, namespace: str, name: str, containers: list[dict[str, Any]], timeout: float = 120, **extra: Any
) -> client.V1Pod:
    """Create a pod on the real node and wait until its containers really run (or fail with the kubelet's story)."""
    containers = [{"imagePullPolicy": "IfNotPresent", **c} for c in containers]
    cluster.core.create_namespaced_pod(namespace, make_pod(name, containers, **REAL_NODE_PLACEMENT, **extra))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pod = cluster.core.read_namespaced_pod(name, namespace)
        statuses = pod.status.container_statuses or []
        if pod.status.phase == "Running" and statuses and all(s.state.running for s in statuses):
            assert pod.spec.node_name == REAL_NODE
            return pod
        time.sleep(0.5)
    pytest.fail(f"pod {namespace}/{name} is not running on the real node after {timeout}s:\n{pod_trouble(cluster, namespace, name)}")
