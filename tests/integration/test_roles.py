"""Integration tests of the recipe roles against the local cluster.

Simulated by KWOK: no container process runs. The exact command a role puts in
the debug container is run for real on the test host first; its real output is
served as the container's log and its real exit code becomes the container's
(kubehelpers.real_run, serve_logs, the KWOK_EXIT_CODE env). After the play the
test checks that the pod's container really carries that command.

The jvm and python recipes attach to a process of the target container: here that
process is a real JVM (java, attached with the host's jcmd) or a real Python process
(attached with py-spy from the test venv) started on the test host, whose pid the role
passes to the recipe (jvm_pid, python_pid). The pod's containers are KWOK's and run
nothing; the target container only names the container the debug container would share
its process namespace with.

The same round trips run for real, in debug containers on the real node, in
test_real_node_recipes.py; the KWOK versions stay for what a real node cannot produce on
demand (the public default images, which this machine cannot pull, an exit code of the
test's choosing, and jcmd from a JDK attaching instead of jattach).
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kubehelpers import (
    Cluster,
    cri_log,
    include_role,
    on_this_host,
    prepare_recipe,
    recipe_command,
    recipe_lines,
    run_tasks,
    running_pod,
    script_command,
    serve_logs,
)

GREET = 'emit_check greet "$1" true "hello $1"\nemit_check refuse "$1" false "not today"\n'


def per_pod(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records without ``api``: that is the run's own request count (a rerun makes other requests), not the pod's."""
    return [{k: v for k, v in record.items() if k != "api"} for record in results]


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
    assert all(recipe_lines(r["output"]) == expected for r in done["results"])
    bounds = done["summary"]["bounds"]
    # Run on this host (its coreutils timeout and nice), the run says how it was bounded in its first line.
    assert all(r["output"][0] == {"bounds": bounds} for r in done["results"])
    assert (bounds["time_limit"], bounds["nice"], bounds["niceness"]) == (100, 10, max(10, os.nice(0)))
    assert done["summary"] == {
        "recipe": "greet",
        "container": "kd-greet-run1",
        "pods": 2,
        "checks": 4,
        "failed_checks": 2,
        "unfinished_pods": [],
        "unparsed_pods": [],
        "timed_out_pods": [],
        "stopped": [],
        "bounds": bounds,
        "bounds_text": f"time limit 100 s ({bounds['time_limit_by']}), niceness {bounds['niceness']} ({bounds['nice_by']})",
    }
    # The container really carries the command that was run here.
    for pod in pods:
        [container] = cluster.core.read_namespaced_pod(pod, namespace).spec.ephemeral_containers
        assert container.command == command

    # The same run id again adds nothing and reports the same results.
    again = run_tasks(tmp_path, include_recipe(cluster, **role_vars), save)
    assert per_pod(again["results"]) == per_pod(done["results"])
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


def test_processes_and_filesystem_roles(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    # A distroless-style target: one container, nothing in it the recipes rely on.
    running_pod(
        cluster, namespace, "api", containers=[{"name": "api", "image": "gcr.io/distroless/static-debian12:nonroot"}]
    )
    proc_cmd = recipe_command("processes", [])
    proc_out, proc_code = prepare_recipe(cluster, [(namespace, "api")], "kd-processes-inc1", proc_cmd, tmp_path)
    fs_cmd = recipe_command("filesystem", ["--max-bytes", "65536", "--", "/etc/hostname"])
    fs_out, fs_code = prepare_recipe(cluster, [(namespace, "api")], "kd-filesystem-inc1", on_this_host(fs_cmd), tmp_path)
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
    lines = recipe_lines(proc["output"])
    summary = lines[-1]
    assert summary["check"] == "summary" and summary["count"] == len(lines) - 1 > 0
    assert all(isinstance(p["pid"], int) and isinstance(p["cmdline"], list) for p in lines[:-1])

    [fs] = got["filesystem"]
    assert fs["output"] == [json.loads(line) for line in fs_out.splitlines()]
    [hostname] = [c for c in recipe_lines(fs["output"]) if c["check"] == "file"]
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
    [captured] = [line for line in map(json.loads, output.splitlines()) if line.get("check") == "capture"]
    assert captured["check"] == "capture" and captured["ok"] is True and captured["packets"] > 0, captured

    tasks = include_role(
        cluster, "capture", capture_namespace=namespace, capture_pod="web", capture_run_id="pcap1", capture_duration=3,
        capture_interface="lo", capture_filter=f"tcp port {port}", capture_wait_timeout=30,
        capture_dest_dir=str(tmp_path / "pcaps"), capture_env={"KWOK_EXIT_CODE": str(code)},
    )  # fmt: skip
    got = run_tasks(tmp_path, tasks, "capture_results")
    [record] = got["_list"]
    assert recipe_lines(record["output"])[0]["sha256"] == captured["sha256"]
    pcap = tmp_path / "pcaps" / namespace / "web.pcap"
    data = pcap.read_bytes()
    assert data == base64.b64decode(captured["pcap_base64"])
    assert hashlib.sha256(data).hexdigest() == captured["sha256"] and len(data) == captured["size"]
    assert record["pcap"] == {"path": str(pcap), "size": len(data), "sha256": captured["sha256"]}
    spec = cluster.core.read_namespaced_pod("web", namespace).spec.ephemeral_containers[0]
    assert spec.command == command and sorted(spec.security_context.capabilities.add) == ["NET_ADMIN", "NET_RAW"]


# --- jvm and python: the recipe attaches to a real process started here -----------------

ORDERS = 400_000  # live KdOrder objects: the heap histogram must count exactly these

# Two threads deadlocked on two monitors, and ORDERS small objects kept alive.
ORDERS_JAVA = """
import java.util.ArrayList;
import java.util.List;

public class Orders {
    static final class KdOrder {
        final long id;
        KdOrder(long id) { this.id = id; }
    }

    static final List<KdOrder> BOOK = new ArrayList<>();
    static final Object LEDGER = new Object();
    static final Object STOCK = new Object();

    static void nap(long ms) {
        try { Thread.sleep(ms); } catch (InterruptedException e) { }
    }

    public static void main(String[] args) {
        for (long id = 0; id < Long.parseLong(args[0]); id++) BOOK.add(new KdOrder(id));
        Thread pay = new Thread(() -> { synchronized (LEDGER) { nap(300); synchronized (STOCK) { } } }, "kd-payment");
        Thread ship = new Thread(() -> { synchronized (STOCK) { nap(300); synchronized (LEDGER) { } } }, "kd-shipping");
        pay.setDaemon(true);
        ship.setDaemon(true);
        pay.start();
        ship.start();
        while (pay.getState() != Thread.State.BLOCKED || ship.getState() != Thread.State.BLOCKED) nap(20);
        System.out.println("ready");
        System.out.flush();
        nap(600_000);
    }
}
"""

# A request thread asleep two calls deep, and the main thread in its serving loop.
WORKER_PY = """
import threading, time

inside = threading.Event()

def kd_fetch_inventory():
    inside.set()
    time.sleep(600)

def kd_handle_order():
    kd_fetch_inventory()

def kd_serve_forever():
    while True:
        time.sleep(1)

threading.Thread(target=kd_handle_order, name="kd-order-1", daemon=True).start()
inside.wait()
print("ready", flush=True)
kd_serve_forever()
"""


@contextmanager
def started(argv: list[str], cwd: Path) -> Iterator[int]:
    """Run ``argv`` here until the block ends; its pid once it has printed "ready"."""
    with subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        try:
            first = proc.stdout.readline() if proc.stdout else ""  # EOF if it could not start
            assert first == "ready\n", f"{argv[0]} did not start: {first!r} {proc.stdout.read(2000) if proc.stdout else ''!r}"
            yield proc.pid
        finally:
            proc.kill()  # leaving the with block waits for it


def java_program(tmp_path: Path) -> list[str]:
    source = tmp_path / "Orders.java"
    source.write_text(ORDERS_JAVA, encoding="utf-8")
    return [shutil.which("java") or "java", str(source), str(ORDERS)]  # a single-file source launch


def python_program(_tmp_path: Path) -> list[str]:
    return [sys.executable, "-c", WORKER_PY]


def ptrace_refused() -> str | None:
    """Why this host does not let py-spy attach to a sibling process, or None (the rules of tests/unit/recipes/test_python_script.py)."""
    try:
        scope = Path("/proc/sys/kernel/yama/ptrace_scope").read_text(encoding="ascii").strip()
    except OSError:
        return None  # no Yama: the same user may attach
    caps = next(int(line.split()[1], 16) for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("CapEff:"))
    if scope == "0" or (scope in ("1", "2") and caps & (1 << 19)):
        return None
    return f"Yama ptrace_scope is {scope} and this user lacks CAP_SYS_PTRACE: py-spy cannot attach to the Python process"


def check_jvm_output(output: list[dict[str, Any]], pid: int) -> None:
    dump, histogram, summary = output
    assert (dump["check"], dump["target"], dump["tool"]) == ("thread_dump", str(pid), "jcmd")
    assert dump["deadlocks"] == 1 and dump["ok"] is False and "1 deadlock(s) found" in dump["detail"], dump["detail"]
    assert dump["threads"] >= 4 and dump["truncated"] is False
    assert "Found one Java-level deadlock:" in dump["dump"]
    assert '"kd-payment"' in dump["dump"] and '"kd-shipping"' in dump["dump"]
    assert (histogram["check"], histogram["target"], histogram["ok"], histogram["tool"]) == ("heap_histogram", str(pid), True, "jcmd")
    rows = {row["class"]: row for row in histogram["top"]}
    assert rows["Orders$KdOrder"]["instances"] == ORDERS, histogram["top"]
    assert [row["rank"] for row in histogram["top"]] == list(range(1, len(histogram["top"]) + 1))
    assert histogram["total_bytes"] >= sum(row["bytes"] for row in histogram["top"])
    assert summary == {"check": "summary", "target": "jvm", "ok": False, "detail": "1 JVMs", "count": 1}


def check_python_output(output: list[dict[str, Any]], pid: int) -> None:
    dump, summary = output
    assert (dump["check"], dump["target"], dump["tool"]) == ("stack_dump", str(pid), "py-spy")
    assert dump["ok"] is True, dump["detail"]
    stacks = {thread["name"]: [frame["function"] for frame in thread["frames"]] for thread in dump["threads"]}
    assert set(stacks) == {"MainThread", "kd-order-1"}
    assert stacks["MainThread"] == ["kd_serve_forever", "<module>"]
    assert stacks["kd-order-1"][:2] == ["kd_fetch_inventory", "kd_handle_order"]  # innermost first
    assert summary == {"check": "summary", "target": "python", "ok": True, "detail": "1 Python processes", "count": 1}


@dataclass(frozen=True)
class Inspection:
    """A recipe role that attaches to a process of the target container."""

    role: str
    program: Callable[[Path], list[str]]
    tools: tuple[str, ...]  # what the recipe needs on this host
    containers: list[dict[str, Any]]  # the pod's (KWOK's: nothing runs in them)
    target: str  # the targetContainerName the role must set
    image: str
    check: Callable[[list[dict[str, Any]], int], None]  # asserts on the recipe's output for the process's pid
    checks: int  # in the role's summary
    failed_checks: int
    role_vars: dict[str, Any] = field(default_factory=dict)


INSPECTIONS = (
    # The JVM is the pod's second container, named with jvm_target_container; the default image.
    Inspection(
        role="jvm",
        program=java_program,
        tools=("java", "jcmd"),
        containers=[{"name": "envoy", "image": "docker.io/envoyproxy/envoy:v1.31.0"}, {"name": "orders", "image": "docker.io/library/eclipse-temurin:21-jre"}],
        target="orders",
        image="docker.io/library/eclipse-temurin:21-jdk",
        role_vars={"jvm_target_container": "orders"},
        check=check_jvm_output,
        checks=3,
        failed_checks=1,  # the thread dump: a deadlock
    ),
    # The Python process is the pod's first container (the default target); an image of one's own, as py-spy needs.
    Inspection(
        role="python",
        program=python_program,
        tools=("py-spy",),
        containers=[{"name": "worker", "image": "docker.io/library/python:3.12-slim"}, {"name": "redis", "image": "docker.io/library/redis:7"}],
        target="worker",
        image="registry.example.com/tools/python-py-spy:3.12-0.4.3",
        role_vars={"python_image": "registry.example.com/tools/python-py-spy:3.12-0.4.3"},
        check=check_python_output,
        checks=2,
        failed_checks=0,
    ),
)


def cannot_run(case: Inspection) -> str | None:
    missing = [tool for tool in case.tools if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not installed: the {case.role} recipe cannot run on this host (hack/prereqs.sh, hack/venv.sh)"
    return ptrace_refused() if case.role == "python" else None


@pytest.mark.parametrize("case", INSPECTIONS, ids=lambda case: case.role)
def test_inspection_roles_attach_to_the_target_process(cluster: Cluster, namespace: str, tmp_path: Path, case: Inspection) -> None:
    why = cannot_run(case)
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    role, container = case.role, f"kd-{case.role}-rt1"
    running_pod(cluster, namespace, "app", containers=case.containers)
    with started(case.program(tmp_path), tmp_path) as pid:
        # The command the role builds for this pid, run here for real: its output is the container's log.
        command = recipe_command(role, ["--pid", str(pid)])
        output, code = prepare_recipe(cluster, [(namespace, "app")], container, command, tmp_path)
    role_vars = {
        f"{role}_namespace": namespace, f"{role}_pod": "app", f"{role}_run_id": "rt1", f"{role}_pid": pid,
        f"{role}_wait_timeout": 30, f"{role}_env": {"KWOK_EXIT_CODE": str(code)}, **case.role_vars,
    }  # fmt: skip
    # What the role's module reported (registered in the recipe role) tells an added container from a kept one.
    save = f"{{'results': {role}_results, 'summary': {role}_summary, 'actions': __recipe_added.pods | map(attribute='action') | list}}"

    first = run_tasks(tmp_path, include_role(cluster, role, **role_vars), save)
    [record] = first["results"]
    assert (record["pod"], record["container"], record["state"], record["exit_code"], record["target_container"]) == (
        "app", container, "terminated", 0, case.target
    )
    assert record["output"] == [json.loads(line) for line in output.splitlines()]
    case.check(recipe_lines(record["output"]), pid)
    assert {k: v for k, v in first["summary"].items() if k not in ("bounds", "bounds_text")} == {
        "recipe": role, "container": container, "pods": 1, "checks": case.checks, "failed_checks": case.failed_checks, "unfinished_pods": [],
        "unparsed_pods": [], "timed_out_pods": [], "stopped": [],
    }  # fmt: skip
    assert first["actions"] == ["added"]
    [spec] = cluster.core.read_namespaced_pod("app", namespace).spec.ephemeral_containers
    assert (spec.name, spec.image, spec.target_container_name, spec.command) == (container, case.image, case.target, command)
    assert spec.security_context.capabilities.add == ["SYS_PTRACE"]  # profile general: attaching needs ptrace

    # The same run id again: the module keeps the container, the results are the same.
    again = run_tasks(tmp_path, include_role(cluster, role, **role_vars), save)
    assert again["actions"] == ["unchanged"]
    assert (per_pod(again["results"]), again["summary"]) == (per_pod(first["results"]), first["summary"])
    assert [c.to_dict() for c in cluster.core.read_namespaced_pod("app", namespace).spec.ephemeral_containers] == [spec.to_dict()]


class _Health(http.server.BaseHTTPRequestHandler):
    """/healthz answers 200, anything else 503: one passing and one failing HTTP check."""

    def do_GET(self) -> None:  # noqa: N802 (the name http.server dispatches to)
        self.send_response(200 if self.path == "/healthz" else 503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's signature)
        pass


def test_network_role_checks_real_endpoints(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    # Real endpoints on the test host: an HTTP server and a port nothing listens on (bound, then closed).
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    port = server.server_address[1]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    worker = threading.Thread(target=server.serve_forever, daemon=True)
    worker.start()
    checks = [f"tcp:127.0.0.1:{port}", f"http://127.0.0.1:{port}/healthz", f"http://127.0.0.1:{port}/ready", f"tcp:127.0.0.1:{closed}"]
    running_pod(cluster, namespace, "web")
    command = recipe_command("network", checks)
    try:
        output, code = prepare_recipe(cluster, [(namespace, "web")], "kd-network-net1", command, tmp_path)
    finally:
        server.shutdown()
        server.server_close()
    expected = [json.loads(line) for line in output.splitlines()]

    tasks = include_role(
        cluster, "network", network_namespace=namespace, network_pod="web", network_run_id="net1", network_checks=checks,
        network_wait_timeout=30, network_env={"KWOK_EXIT_CODE": str(code)},
    )  # fmt: skip
    got = run_tasks(tmp_path, tasks, "{'results': network_results, 'summary': network_summary}")
    [record] = got["results"]
    assert (record["container"], record["state"], record["exit_code"]) == ("kd-network-net1", "terminated", code)
    assert record["output"] == expected
    by_target = {(c["check"], c["target"]): c for c in recipe_lines(record["output"])}
    assert by_target["tcp", f"127.0.0.1:{port}"]["ok"] is True
    assert (by_target["http", checks[1]]["ok"], by_target["http", checks[1]]["status"]) == (True, 200)
    assert (by_target["http", checks[2]]["ok"], by_target["http", checks[2]]["status"]) == (False, 503)
    assert by_target["tcp", f"127.0.0.1:{closed}"]["ok"] is False
    listening = by_target["listening", "/proc/net/tcp"]["sockets"]
    assert {"proto": "tcp", "address": "127.0.0.1", "port": port} in listening
    assert record["output"][-1] == {"check": "summary", "target": "network", "ok": False, "detail": "2 of 4 checks passed"}
    # Summary lines are not counted as failed, bounds lines not at all.
    assert (got["summary"]["failed_checks"], got["summary"]["checks"]) == (2, len(recipe_lines(expected)))
    spec = cluster.core.read_namespaced_pod("web", namespace).spec.ephemeral_containers[0]
    assert (spec.name, spec.command) == ("kd-network-net1", command)


def test_filesystem_role_never_writes_outside_fetch_dir_when_the_output_is_forged(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    """The target's processes share the debug container's process namespace and can forge its output.

    Simulated: KWOK serves the forged log as the debug container's output (what a hostile
    process writing to /proc/<debug pid>/fd/1 would produce); the role runs for real.
    """
    running_pod(cluster, namespace, "api")
    good = base64.b64encode(b"fine\n").decode()
    evil = base64.b64encode(b"owned\n").decode()
    escape_to = tmp_path / "escaped"
    lines = [
        {"check": "file", "target": "/etc/hostname", "ok": True, "detail": "", "resolved": "/etc/hostname", "size": 5, "content_base64": good},
        # From fetch_dir/<ns>/<pod>, five levels up is tmp_path: this would land in tmp_path/escaped.
        {"check": "file", "target": "/x", "ok": True, "detail": "", "resolved": "/../../../../../" + escape_to.name, "size": 6, "content_base64": evil},
        {"check": "summary", "ok": True, "count": 2},
    ]
    log_file = tmp_path / "forged.log"
    log_file.write_text(cri_log("\n".join(json.dumps(line) for line in lines)))
    serve_logs(cluster, namespace, "api", "kd-filesystem-forged", log_file)
    fetch_dir = tmp_path / "a" / "b" / "fetched"
    tasks = include_role(
        cluster, "filesystem", filesystem_namespace=namespace, filesystem_pod="api", filesystem_run_id="forged",
        filesystem_wait_timeout=30, filesystem_paths=["/etc/hostname"], filesystem_fetch_dir=str(fetch_dir),
        filesystem_env={"KWOK_EXIT_CODE": "0"},
    )  # fmt: skip
    got = run_tasks(tmp_path, tasks, "filesystem_results")
    [record] = got["_list"]
    assert [c["resolved"] for c in record["output"] if c["check"] == "file"] == ["/etc/hostname", "/../../../../../escaped"]
    assert (fetch_dir / namespace / "api" / "etc" / "hostname").read_bytes() == b"fine\n"
    assert not escape_to.exists(), "a forged path wrote outside fetch_dir"
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file() and "fetched" in p.parts)
    assert written == [f"a/b/fetched/{namespace}/api/etc/hostname"]
    assert "which is not a plain absolute path: not written" in got["_stdout"]
