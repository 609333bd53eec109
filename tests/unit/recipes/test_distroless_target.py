"""The recipes against a distroless target, in a pod built from real Linux namespaces on this host (root only).

What is real:

* the namespaces: each pod is a new PID namespace whose pid 1 is the target container's command itself (a pod without
  shareProcessNamespace), in a mount namespace of its own; an ephemeral debug container is a new mount namespace
  joined into the target's PID namespace from outside (nsenter, as the runtime does for targetContainerName), so its
  first process has PPid 0 and sees the target as pid 1 in its own /proc;
* the roots: an overlayfs of an image directory (lower) and a tmpfs (upper), with /proc of the pod's PID namespace, a
  tmpfs /dev with device nodes, /dev/shm, a read-only /sys and the pod's volumes under it, entered with pivot_root
  (container_init.py): /proc/<pid>/root, /mounts, /maps and /exe look as in a container;
* the distroless target: no shell and no tools, checked before anything runs (no sh, bash, busybox... anywhere in its
  root, and exec'ing /bin/sh in it fails); its processes run as the distroless nonroot user (65532). The "server" pod
  runs coreutils sleep as /app/server with libc; the "python" pod runs this test's CPython as /usr/bin/python3 with
  libpython and libc, its standard library bind-mounted read-only at /usr/lib/pythonX.Y; the "jvm" pod runs this
  host's JDK as /usr/bin/java (the JDK bind-mounted read-only, its system libraries copied) with a class compiled here;
* the debug container: the busybox under test (KD_BUSYBOX or the host's, see recipe_runner) with a symlink per applet
  in /bin (like the busybox image) and the venv's py-spy (static) in /usr/local/bin; for the jvm recipe, the same plus
  the host's JDK (bind-mounted read-only) and /usr/local/bin/jcmd; the recipe scripts run exactly as the recipe role runs them
  (``/bin/sh -c "<prelude.sh>\\n<script>" <name> args...`` with the debug image's /bin/sh, busybox ash), as root;
* the recipes' "which processes are ours" rule for a guest in someone else's PID namespace: before the script runs,
  a "kubectl exec" stand-in starts a shell and its child in the debug container (its mount namespace and root, PPid 0),
  neither ancestors nor descendants of the script, so only the same-root rule can leave them out.

What stands in: image directories assembled from this host's binaries and the libraries ldd names (one layer, not
pulled OCI layers); unshare, nsenter and a small Python init on the host kernel instead of the kubelet, containerd and
runc; no user, network, UTS, IPC or cgroup namespaces, no seccomp, capability bounding or LSM profile (the debug
container has root's full capabilities, as with kubectl debug --profile=sysadmin); "kubectl exec" is nsenter into the
debug container's namespaces.

Skipped when not run as root, or (outside CI) when this host refuses the namespaces; under CI=true a refusal fails.
The jvm pod's tests skip without a JDK (java, javac, jcmd), as test_jvm_script.py does.
"""

from __future__ import annotations

import base64
import hashlib
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from distroless_pod import (
    NONROOT,
    SHELL_NAMES,
    Pod,
    Sandbox,
    build_debug_image,
    build_jvm_image,
    build_python_image,
    build_server_image,
    java_home,
    python_stdlib,
)
from recipe_runner import BUSYBOX, ROLES

PROCESSES = ROLES / "recipe" / "files" / "processes.sh"
FILESYSTEM = ROLES / "recipe" / "files" / "filesystem.sh"
PYTHON = ROLES / "recipe" / "files" / "python.sh"
JVM = ROLES / "recipe" / "files" / "jvm.sh"
PY_SPY = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")

SERVER_ARGV = ["/app/server", "3600"]
APP_CONF = b'listen = ":8080"\nbackend = "db.internal:5432"\n'
UTC_ZONE = b"TZif2 (a stand-in for the UTC zone file)\n"
HOSTS = b"127.0.0.1\tlocalhost\n10.244.0.7\tserver\n"
DATA_BLOB = 1024 * 1024  # bytes written to the /data volume (tmpfs, 8 MiB)

# The Python target: a named thread and the main thread, each asleep in a function of its own.
TARGET_CODE = """import threading, time

def kd_worker_loop():
    while True:
        time.sleep(1)

def kd_serve_forever():
    time.sleep(3600)

threading.Thread(target=kd_worker_loop, name="kd-worker", daemon=True).start()
print("ready", flush=True)
kd_serve_forever()
"""
SERVE_LINE = TARGET_CODE.splitlines().index("    time.sleep(3600)") + 1
PYTHON_ARGV = ["/usr/bin/python3", "-c", TARGET_CODE]

# The Java target, compiled with this host's javac: the same shape.
SERVER_JAVA = """public class Server {
    static void kdServeForever() throws InterruptedException {
        Thread.sleep(3_600_000L);
    }

    public static void main(String[] args) throws Exception {
        Thread worker = new Thread(() -> {
            while (true) {
                try { Thread.sleep(1000); } catch (InterruptedException e) { return; }
            }
        }, "kd-worker");
        worker.setDaemon(true);
        worker.start();
        System.out.println("ready");
        System.out.flush();
        kdServeForever();
    }
}
"""
JVM_ARGV = ["/usr/bin/java", "-Xmx64m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-cp", "/app", "Server"]
# What the processes recipe counts for each pod's pid 1 (a JVM starts a dozen threads of its own).
THREADS = {"server": (1, 1), "python": (2, 2), "jvm": (3, 100)}


def namespace_problem() -> str | None:
    """Why this host cannot build the pods (None when it can); not being root is handled by the caller."""
    missing = [tool for tool in ("unshare", "nsenter", "ldd", "sleep") if shutil.which(tool) is None] + ([] if BUSYBOX else ["busybox"])
    if missing:
        return f"missing tools: {', '.join(missing)}"
    argv = ["unshare", "--pid", "--fork", "--mount", "--propagation", "private", "--", "true"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode != 0:
        return f"{' '.join(argv)} was refused (exit status {proc.returncode}): {proc.stderr.strip()}"
    return None


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Sandbox:
    """Starts the pods and debug containers; its finalizer kills them all (and fails if any process survives)."""
    if os.geteuid() != 0:
        pytest.skip(f"needs root for PID and mount namespaces (running as uid {os.geteuid()})")
    problem = namespace_problem()
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI runs as root and must build the pods: {problem}")
        pytest.skip(problem)
    box = Sandbox(tmp_path_factory.mktemp("distroless"))
    request.addfinalizer(box.close)
    return box


@pytest.fixture(scope="module")
def debug_image(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The busybox debug image (with py-spy)."""
    image = tmp_path_factory.mktemp("debug-image")
    build_debug_image(image, PY_SPY)
    return image


@pytest.fixture(scope="module")
def jdk(sandbox: Sandbox) -> Path:
    home = java_home()
    if home is None:
        pytest.skip("java, javac and jcmd (a JDK) are not installed")
    return home


@pytest.fixture(scope="module")
def jdk_debug_image(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory, jdk: Path) -> tuple[Path, list[dict[str, Any]]]:
    """A busybox debug image with a JDK's jcmd, and the volumes that mount the JDK in it."""
    image = tmp_path_factory.mktemp("jdk-debug-image")
    return image, build_debug_image(image, None, jdk)


@pytest.fixture(scope="module")
def kubelet_hosts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pod's /etc/hosts as the kubelet writes it on the node (bind-mounted into the container)."""
    path = tmp_path_factory.mktemp("kubelet") / "etc-hosts"
    path.write_bytes(HOSTS)
    return path


@pytest.fixture(scope="module")
def server_pod(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory, kubelet_hosts: Path) -> Pod:
    image = tmp_path_factory.mktemp("server-image")
    build_server_image(image, {"/etc/app.conf": APP_CONF, "/usr/share/zoneinfo/UTC": UTC_ZONE})
    (image / "etc" / "app.conf").chmod(0o640)
    volumes = [
        {"type": "tmpfs", "target": "/data", "options": "size=8m,mode=755"},
        {"type": "bind", "source": str(kubelet_hosts), "target": "/etc/hosts", "readonly": False},
    ]
    return sandbox.start_pod("server", image, SERVER_ARGV, volumes, files=[("/data/blob", DATA_BLOB)])


@pytest.fixture(scope="module")
def python_pod(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Pod:
    image = tmp_path_factory.mktemp("python-image")
    volumes = build_python_image(image)
    return sandbox.start_pod("python", image, PYTHON_ARGV, volumes, ready_line=b"ready\n")


@pytest.fixture(scope="module")
def jvm_pod(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory, jdk: Path) -> Pod:
    source = tmp_path_factory.mktemp("java-source")
    (source / "Server.java").write_text(SERVER_JAVA, encoding="utf-8")
    subprocess.run(["javac", "-d", str(source), str(source / "Server.java")], check=True, capture_output=True, timeout=120)
    image = tmp_path_factory.mktemp("jvm-image")
    volumes = build_jvm_image(image, jdk, {"Server.class": (source / "Server.class").read_bytes()})
    return sandbox.start_pod("jvm", image, JVM_ARGV, volumes, ready_line=b"ready\n")


@pytest.fixture(params=["server_pod", "python_pod", "jvm_pod"])
def pod(request: pytest.FixtureRequest) -> Pod:
    found: Pod = request.getfixturevalue(request.param)
    return found


def ptrace_forbidden() -> bool:
    """Yama's ptrace_scope 3 forbids ptrace even to root; 0 to 2 let the debug container (CAP_SYS_PTRACE) attach."""
    try:
        return Path("/proc/sys/kernel/yama/ptrace_scope").read_text(encoding="ascii").strip() == "3"
    except OSError:
        return False  # no Yama


def processes(records: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {rec["pid"]: rec for rec in records if rec["check"] == "process"}


def host_mounts(pod: Pod) -> dict[str, tuple[str, str]]:
    """The pod's mount table as the host reads it: {mountpoint: (device, fstype)}, paths as the target sees them."""
    table = {}
    with open(f"/proc/{pod.host_pid}/mounts", encoding="utf-8") as handle:
        for line in handle:
            device, mountpoint, fstype = line.split()[:3]
            table[mountpoint] = (device, fstype)
    return table


def assert_file(rec: dict[str, Any], resolved: str, content: bytes, max_bytes: int = 65536, mode: str | None = None) -> None:
    assert rec["check"] == "file" and rec["ok"] is True and rec["detail"] == "", rec
    assert rec["resolved"] == resolved
    assert rec["size"] == len(content)
    assert rec["sha256"] == hashlib.sha256(content).hexdigest()
    assert base64.b64decode(rec["content_base64"]) == content[:max_bytes]
    assert rec["truncated"] is (len(content) > max_bytes)
    if mode is not None:
        assert rec["mode"] == mode


def test_target_has_no_shell(pod: Pod) -> None:
    """The premise: nothing in the target's root can run a recipe (what the debug image brings is all there is)."""
    root = f"/proc/{pod.host_pid}/root"
    shells: list[str] = []
    seen = 0
    for directory, dirs, files in os.walk(root):
        if directory == root:
            dirs[:] = [name for name in dirs if name not in ("proc", "sys", "dev")]
        seen += len(files)
        shells += [os.path.join(directory, name)[len(root) :] for name in dirs + files if name in SHELL_NAMES]
    assert shells == []
    assert seen > 3 and os.path.isfile(root + pod.argv[0])  # the walk did go through the target's root
    assert not os.path.lexists(f"{root}/bin")
    # kubectl exec <pod> -- sh: the runtime enters the container's namespaces and execs sh in its root.
    for shell in ("/bin/sh", "sh"):
        argv = ["nsenter", "--target", str(pod.host_pid), "--pid", "--mount", "--", shell, "-c", "true"]
        proc = subprocess.run(argv, capture_output=True, text=True, env={"PATH": "/usr/local/bin:/usr/bin:/bin"}, timeout=30, check=False)
        assert proc.returncode != 0 and "No such file or directory" in proc.stderr, (shell, proc.returncode, proc.stderr)


def test_processes_lists_the_target_and_not_the_debug_container(pod: Pod, sandbox: Sandbox, debug_image: Path) -> None:
    run = sandbox.debug(pod, debug_image, PROCESSES, "processes", kubectl_exec=True)
    listed = processes(run.records)
    # The script (ppid 0), its children, and the kubectl-exec'ed shell (ppid 0) and its child are the debug container's.
    assert sorted(listed) == [1], listed
    rec = listed[1]
    assert rec["target"] == "1" and rec["ok"] is True and rec["detail"] == ""
    assert rec["cmdline"] == pod.argv
    assert rec["name"] == os.path.basename(pod.argv[0])
    assert rec["ppid"] == 0  # the runtime that started it is outside the pod's PID namespace
    assert rec["uid"] == NONROOT
    assert rec["state"] == "S" and rec["state_desc"] == "sleeping"
    low, high = THREADS[pod.name]
    assert low <= rec["threads"] <= high
    if pod.name == "server":
        assert rec["open_fds"] == 3  # stdin, stdout, stderr: read through /proc/1/fd of another user (root may)
    else:
        assert isinstance(rec["open_fds"], int) and rec["open_fds"] >= 3
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert rec["max_open_files"] == (None if soft == resource.RLIM_INFINITY else soft)
    assert isinstance(rec["rss_kb"], int) and rec["rss_kb"] > 0
    assert run.records[-1] == {"check": "summary", "target": "processes", "ok": True, "detail": "1 processes", "count": 1}


def test_processes_include_self_shows_the_debug_container(server_pod: Pod, sandbox: Sandbox, debug_image: Path) -> None:
    """The processes left out above are there: the script is its container's first process, the exec'ed ones not its kin."""
    run = sandbox.debug(server_pod, debug_image, PROCESSES, "processes", "--include-self", kubectl_exec=True)
    listed = processes(run.records)
    shell, child = run.exec_pids
    assert {1, run.pid, shell, child} <= set(listed)
    script = listed[run.pid]
    assert script["ppid"] == 0 and script["uid"] == 0
    assert script["cmdline"][:2] == ["/bin/sh", "-c"] and script["cmdline"][-2:] == ["processes", "--include-self"]
    assert listed[shell]["ppid"] == 0 and listed[shell]["cmdline"] == ["sleep", "3600"]
    assert listed[child]["ppid"] == shell and listed[child]["cmdline"] == ["sleep", "3601"]
    assert listed[1]["cmdline"] == SERVER_ARGV


def test_filesystem_reads_the_target_through_proc_root(server_pod: Pod, sandbox: Sandbox, debug_image: Path, kubelet_hosts: Path) -> None:
    paths = ["/etc/app.conf", "/etc/localtime", "/etc/hosts", "/data/blob", "/app", "/bin/sh"]
    run = sandbox.debug(server_pod, debug_image, FILESYSTEM, "filesystem", *paths, kubectl_exec=True)
    usage = {rec["target"]: rec for rec in run.records if rec["check"] == "disk_usage"}
    assert sorted(usage) == ["/", "/data", "/dev", "/dev/shm", "/etc/hosts"]
    table = host_mounts(server_pod)
    for mountpoint, rec in usage.items():
        assert (rec["device"], rec["fstype"]) == table[mountpoint]
        assert all(isinstance(rec[key], int) for key in ("size_kb", "used_kb", "avail_kb", "use_percent")), rec
    assert usage["/"]["fstype"] == "overlay"
    assert usage["/data"]["fstype"] == "tmpfs" and usage["/data"]["size_kb"] == 8192
    assert usage["/data"]["used_kb"] == DATA_BLOB // 1024 and usage["/data"]["ok"] is True
    hosts_fs = os.statvfs(kubelet_hosts)
    assert usage["/etc/hosts"]["size_kb"] == hosts_fs.f_blocks * hosts_fs.f_frsize // 1024

    found = {rec["target"]: rec for rec in run.records if rec["check"] in ("file", "dir")}
    assert list(found) == paths
    assert_file(found["/etc/app.conf"], "/etc/app.conf", APP_CONF, mode="0640")
    # An absolute symlink, resolved inside the target's root (the debug image has no /usr/share/zoneinfo).
    assert_file(found["/etc/localtime"], "/usr/share/zoneinfo/UTC", UTC_ZONE)
    assert_file(found["/etc/hosts"], "/etc/hosts", HOSTS)  # a file bind-mounted into the container
    assert_file(found["/data/blob"], "/data/blob", b"\0" * DATA_BLOB)
    app = found["/app"]
    assert app["check"] == "dir" and app["ok"] is True and app["entries"] == ["server"] and app["count"] == 1 and app["mode"] == "0755"
    # The debug container has /bin/sh; the target has not, and that is what the recipe reports.
    assert found["/bin/sh"] == {"check": "file", "target": "/bin/sh", "ok": False, "detail": "no such file or directory", "resolved": "/bin/sh"}

    summary = run.records[-1]
    assert summary["check"] == "summary" and summary["pid"] == 1  # found by itself: the lowest pid not its own
    assert summary["ok"] is False  # /bin/sh is missing
    assert summary["count"] == len(usage) + len(paths) and summary["detail"] == f"{len(usage)} filesystems, {len(paths)} paths"
    assert len(run.records) == len(usage) + len(paths) + 1


def test_filesystem_reads_a_read_only_volume(python_pod: Pod, sandbox: Sandbox, debug_image: Path) -> None:
    version, stdlib = python_stdlib()
    paths = [f"/usr/lib/{version}/os.py", "/usr/bin/python3"]
    run = sandbox.debug(python_pod, debug_image, FILESYSTEM, "filesystem", "--pid", "1", "--max-bytes", "64", *paths)
    usage = {rec["target"]: rec for rec in run.records if rec["check"] == "disk_usage"}
    assert sorted(usage) == ["/", "/dev", "/dev/shm", f"/usr/lib/{version}"]
    assert (usage[f"/usr/lib/{version}"]["device"], usage[f"/usr/lib/{version}"]["fstype"]) == host_mounts(python_pod)[f"/usr/lib/{version}"]
    found = {rec["target"]: rec for rec in run.records if rec["check"] == "file"}
    assert_file(found[paths[0]], paths[0], Path(stdlib, "os.py").read_bytes(), max_bytes=64)
    # A relative symlink in the image.
    assert_file(found[paths[1]], f"/usr/bin/{version}", Path(os.path.realpath(sys.executable)).read_bytes(), max_bytes=64, mode="0755")
    assert run.records[-1]["ok"] is True and run.records[-1]["pid"] == 1


def test_python_dumps_the_target(python_pod: Pod, sandbox: Sandbox, debug_image: Path) -> None:
    if PY_SPY is None:
        if os.environ.get("CI") == "true":
            pytest.fail("py-spy is not installed: run hack/venv.sh (tests/requirements-*.txt)")
        pytest.skip("py-spy is not installed (hack/venv.sh installs it)")
    run = sandbox.debug(python_pod, debug_image, PYTHON, "python", kubectl_exec=True)
    assert [rec["check"] for rec in run.records] == ["stack_dump", "summary"], run.records
    rec = run.records[0]
    assert rec["target"] == "1"
    if ptrace_forbidden():
        assert rec["ok"] is False and rec["detail"].startswith("py-spy could not dump pid 1: ") and rec["threads"] == []
        return
    assert rec["ok"] is True, rec["detail"]
    assert rec["tool"] == "py-spy" and rec["truncated"] is False
    assert rec["detail"].startswith("2 threads, ")
    threads = {thread["name"]: thread for thread in rec["threads"]}
    assert set(threads) == {"MainThread", "kd-worker"}
    main = [frame["function"] for frame in threads["MainThread"]["frames"]]
    assert main == ["kd_serve_forever", "<module>"]
    assert threads["MainThread"]["frames"][0] == {"function": "kd_serve_forever", "file": "<string>", "line": SERVE_LINE}
    assert "kd_worker_loop" in [frame["function"] for frame in threads["kd-worker"]["frames"]]
    assert run.records[-1] == {"check": "summary", "target": "python", "ok": True, "detail": "1 Python processes", "count": 1}


# With the JDK 17 (and up to 22) attach code, a target in the same PID namespace (pid == its namespace pid, always so
# in an ephemeral container with targetContainerName) is looked for at /tmp/.java_pid<pid> in the debug container's own
# /tmp, while the target JVM creates that socket in its /tmp (/proc/<pid>/root/tmp here); JDK-8327114 (JDK 23) fixed
# jcmd. jvm.sh links the one to the other (share_attach_socket): without that link this test fails with
# "Unable to open socket file /tmp/.java_pid1: target process 1 doesn't respond".


def test_jvm_dumps_the_target(jvm_pod: Pod, sandbox: Sandbox, jdk_debug_image: tuple[Path, list[dict[str, Any]]]) -> None:
    image, volumes = jdk_debug_image
    run = sandbox.debug(jvm_pod, image, JVM, "jvm", volumes=volumes, kubectl_exec=True)
    assert [rec["check"] for rec in run.records] == ["thread_dump", "heap_histogram", "summary"], run.records
    rec = run.records[0]
    assert rec["target"] == "1" and rec["tool"] == "jcmd"
    assert rec["ok"] is True, rec["detail"]
    assert rec["deadlocks"] == 0 and rec["truncated"] is False
    assert rec["dump"].startswith("1:\n") and "Full thread dump" in rec["dump"]
    assert '"kd-worker"' in rec["dump"] and "Server.kdServeForever" in rec["dump"]
    histogram = run.records[1]
    assert histogram["ok"] is True and histogram["tool"] == "jcmd", histogram["detail"]
    assert histogram["top"] and all(row["bytes"] > 0 and row["class"] for row in histogram["top"])
    assert run.records[-1] == {"check": "summary", "target": "jvm", "ok": True, "detail": "1 JVMs", "count": 1}
