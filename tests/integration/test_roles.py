"""Integration tests of the recipe roles against the local cluster.

Simulated by KWOK: no container process runs. The exact command a role puts in
the debug container is run for real on the test host first; its real output is
served as the container's log and its real exit code becomes the container's
(kubehelpers.real_run, serve_logs, the KWOK_EXIT_CODE env). After the play the
test checks that the pod's container really carries that command.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

from kubehelpers import (
    ROOT,
    Cluster,
    prepare_recipe,
    recipe_command,
    run_tasks,
    running_pod,
)

PRELUDE = (ROOT / "roles" / "recipe" / "files" / "prelude.sh").read_text().rstrip()
GREET = 'emit_check greet "$1" true "hello $1"\nemit_check refuse "$1" false "not today"\n'


def script_command(script: str, name: str, args: list[str]) -> list[str]:
    """The command the recipe role builds for a script of the user's (the file lookup strips the prelude's newline)."""
    return ["sh", "-c", PRELUDE + "\n" + script, name, *args]


def include_recipe(cluster: Cluster, **role_vars: Any) -> list[dict[str, Any]]:
    return [
        {
            "name": "Run the recipe",
            "ansible.builtin.include_role": {"name": "kubedebug.ephemeral.recipe"},
            "vars": {"recipe_auth": {"kubeconfig": cluster.kubeconfig}, **role_vars},
        }
    ]


def test_recipe_role_runs_a_script_in_every_selected_pod(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    pods = ["web-0", "web-1"]
    for pod in pods:
        running_pod(cluster, namespace, pod, metadata={"labels": {"app": "web"}})
    command = script_command(GREET, "greet", ["world"])
    _output, code = prepare_recipe(cluster, [(namespace, p) for p in pods], "kd-greet-run1", command, tmp_path)
    role_vars = {
        "recipe_name": "greet",
        "recipe_script": GREET,
        "recipe_args": ["world"],
        "recipe_namespace": namespace,
        "recipe_label_selector": "app=web",
        "recipe_run_id": "run1",
        "recipe_env": {"KWOK_EXIT_CODE": str(code)},
        "recipe_wait_timeout": 30,
    }
    save = "{'results': recipe_results, 'summary': recipe_summary}"

    planned = run_tasks(tmp_path, include_recipe(cluster, **role_vars), save, check=True)
    assert planned["results"] == [] and planned["summary"]["pods"] == 0
    assert all(not cluster.core.read_namespaced_pod(p, namespace).spec.ephemeral_containers for p in pods)

    done = run_tasks(tmp_path, include_recipe(cluster, **role_vars), save)
    assert [(r["pod"], r["container"], r["state"], r["exit_code"]) for r in done["results"]] == [
        (p, "kd-greet-run1", "terminated", 0) for p in pods
    ]
    expected = [
        {"check": "greet", "target": "world", "ok": True, "detail": "hello world"},
        {"check": "refuse", "target": "world", "ok": False, "detail": "not today"},
    ]
    assert all(r["output"] == expected for r in done["results"])
    assert done["summary"] == {
        "recipe": "greet",
        "container": "kd-greet-run1",
        "pods": 2,
        "checks": 4,
        "failed_checks": 2,
        "unfinished_pods": [],
    }
    # The container really carries the command that was run here.
    for pod in pods:
        [container] = cluster.core.read_namespaced_pod(pod, namespace).spec.ephemeral_containers
        assert container.command == command

    # The same run id again adds nothing and reports the same results.
    again = run_tasks(tmp_path, include_recipe(cluster, **role_vars), save)
    assert again["results"] == done["results"]
    assert all(len(cluster.core.read_namespaced_pod(p, namespace).spec.ephemeral_containers) == 1 for p in pods)


def test_recipe_role_rejects_bad_input(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    tasks = include_recipe(
        cluster,
        recipe_name="greet",
        recipe_script=GREET,
        recipe_namespace=namespace,
        recipe_run_id="Run_1",
        recipe_pod="web-0",
    )
    rescued = [
        {
            "block": tasks,
            "rescue": [
                {"name": "Keep the failure", "ansible.builtin.set_fact": {"failure": "{{ ansible_failed_result }}"}}
            ],
        }
    ]
    failure = run_tasks(tmp_path, rescued, "failure")
    assert failure["failed"] is True
    assert "recipe_run_id of lower-case letters, digits and '-'" in failure["msg"]
    assert 'run_id="Run_1"' in failure["msg"]


def include_role(cluster: Cluster, role: str, **role_vars: Any) -> list[dict[str, Any]]:
    return [
        {
            "name": f"Run {role}",
            "ansible.builtin.include_role": {"name": f"kubedebug.ephemeral.{role}"},
            "vars": {f"{role}_auth": {"kubeconfig": cluster.kubeconfig}, **role_vars},
        }
    ]


def test_processes_and_filesystem_roles(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    # A distroless-style target: one container, nothing in it the recipes rely on.
    running_pod(
        cluster, namespace, "api", containers=[{"name": "api", "image": "gcr.io/distroless/static-debian12:nonroot"}]
    )
    proc_cmd = recipe_command("processes", [])
    proc_out, proc_code = prepare_recipe(cluster, [(namespace, "api")], "kd-processes-inc1", proc_cmd, tmp_path)
    fs_cmd = recipe_command("filesystem", ["--max-bytes", "65536", "/etc/hostname"])
    fs_out, fs_code = prepare_recipe(cluster, [(namespace, "api")], "kd-filesystem-inc1", fs_cmd, tmp_path)
    common = {"namespace": namespace, "pod": "api", "run_id": "inc1", "wait_timeout": 30}

    tasks = include_role(
        cluster, "processes", **{f"processes_{k}": v for k, v in common.items()}, processes_env={"KWOK_EXIT_CODE": str(proc_code)}
    ) + include_role(
        cluster, "filesystem", **{f"filesystem_{k}": v for k, v in common.items()},
        filesystem_paths=["/etc/hostname"], filesystem_fetch_dir=str(tmp_path / "fetched"),
        filesystem_env={"KWOK_EXIT_CODE": str(fs_code)},
    )  # fmt: skip
    got = run_tasks(tmp_path, tasks, "{'processes': processes_results, 'filesystem': filesystem_results}")

    [proc] = got["processes"]
    assert (proc["container"], proc["state"], proc["exit_code"], proc["target_container"]) == (
        "kd-processes-inc1",
        "terminated",
        0,
        "api",
    )
    assert proc["output"] == [json.loads(line) for line in proc_out.splitlines()]
    summary = proc["output"][-1]
    assert summary["check"] == "summary" and summary["count"] == len(proc["output"]) - 1 > 0
    assert all(isinstance(p["pid"], int) and isinstance(p["cmdline"], list) for p in proc["output"][:-1])

    [fs] = got["filesystem"]
    assert fs["output"] == [json.loads(line) for line in fs_out.splitlines()]
    [hostname] = [c for c in fs["output"] if c["check"] == "file"]
    assert hostname["ok"] is True
    # The role wrote the file's content on the controller, byte for byte.
    fetched = tmp_path / "fetched" / namespace / "api" / hostname["resolved"].lstrip("/")
    assert fetched.read_bytes() == base64.b64decode(hostname["content_base64"])
    assert hashlib.sha256(fetched.read_bytes()).hexdigest() == hostname["sha256"]

    for pod_container, command in (("kd-processes-inc1", proc_cmd), ("kd-filesystem-inc1", fs_cmd)):
        spec = {c.name: c for c in cluster.core.read_namespaced_pod("api", namespace).spec.ephemeral_containers}
        assert spec[pod_container].command == command
        assert spec[pod_container].target_container_name == "api"  # profile general targets the first container
        assert spec[pod_container].security_context.capabilities.add == ["SYS_PTRACE"]


def test_capture_role_lands_the_pcap_on_the_controller(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    running_pod(cluster, namespace, "web")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    stop = threading.Event()

    def traffic() -> None:  # loopback only: a few real TCP connections while the capture runs
        while not stop.is_set():
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                conn.sendall(b"ping")
                listener.accept()[0].close()
            time.sleep(0.2)

    command = recipe_command(
        "capture",
        ["--duration", "3", "--count", "1000", "--max-bytes", "5242880", "--interface", "lo", "--", f"tcp port {port}"],
    )
    worker = threading.Thread(target=traffic, daemon=True)
    worker.start()
    try:
        output, code = prepare_recipe(cluster, [(namespace, "web")], "kd-capture-pcap1", command, tmp_path)
    finally:
        stop.set()
        worker.join(5)
        listener.close()
    captured = json.loads(output.splitlines()[0])
    assert captured["check"] == "capture" and captured["ok"] is True and captured["packets"] > 0, captured

    tasks = include_role(
        cluster, "capture", capture_namespace=namespace, capture_pod="web", capture_run_id="pcap1", capture_duration=3,
        capture_interface="lo", capture_filter=f"tcp port {port}", capture_wait_timeout=30,
        capture_dest_dir=str(tmp_path / "pcaps"), capture_env={"KWOK_EXIT_CODE": str(code)},
    )  # fmt: skip
    got = run_tasks(tmp_path, tasks, "capture_results")
    [record] = got["_list"]
    assert record["output"][0]["sha256"] == captured["sha256"]
    pcap = tmp_path / "pcaps" / namespace / "web.pcap"
    data = pcap.read_bytes()
    assert data == base64.b64decode(captured["pcap_base64"])
    assert hashlib.sha256(data).hexdigest() == captured["sha256"] and len(data) == captured["size"]
    assert record["pcap"] == {"path": str(pcap), "size": len(data), "sha256": captured["sha256"]}
    spec = cluster.core.read_namespaced_pod("web", namespace).spec.ephemeral_containers[0]
    assert spec.command == command and sorted(spec.security_context.capabilities.add) == ["NET_ADMIN", "NET_RAW"]
