"""A pod with a distroless container and ephemeral debug containers, out of Linux namespaces (test_distroless_target.py).

``Sandbox`` starts each pod's container as pid 1 of a new PID namespace, in its own mount namespace, with a root
mounted by container_init.py (an overlay of an image directory, /proc, /dev, /sys, volumes; pivot_root'ed into).
``Sandbox.debug`` then starts an ephemeral debug container the way the kubelet does for one with
targetContainerName: a new mount namespace with the debug image's root, joined into the target's PID namespace from
outside (nsenter), so that its first process has PPid 0; that process runs a recipe script with the image's /bin/sh.
Every process it starts is killed by ``Sandbox.close`` (the mounts live in those processes' private mount namespaces
only, and go with them).

The image builders copy real binaries with the shared libraries ldd lists, at the paths ldd names them.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recipe_runner import BUSYBOX, busybox_applets, parse_json_lines, script_text

INIT = Path(__file__).resolve().parent / "container_init.py"
NONROOT = 65532  # the distroless images' "nonroot" user and group
SHELL_NAMES = frozenset({"sh", "ash", "bash", "dash", "ksh", "mksh", "zsh", "csh", "tcsh", "fish", "busybox", "toybox"})
PASSWD = "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
GROUP = "root:x:0:\nnonroot:x:65532:\n"
# The debug container's environment: the busybox image's PATH, with py-spy's directory first.
DEBUG_ENV = {"PATH": "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root"}
# What the test runs through "kubectl exec" in the debug container: a shell with a child.
EXEC_ARGV = ["/bin/sh", "-c", "sleep 3601 & exec sleep 3600"]
EXEC_CMDLINES = (["sleep", "3600"], ["sleep", "3601"])
TIMEOUT = 30.0


# --- Images ---------------------------------------------------------------------------------------------------------


def shared_libraries(binary: str) -> list[str]:
    """The absolute paths of the libraries ``binary`` loads (and of its ELF interpreter), as ldd lists them."""
    proc = subprocess.run(["ldd", binary], capture_output=True, text=True, check=False)
    if proc.returncode != 0:  # "not a dynamic executable"
        return []
    return [match.group(1) for match in (re.search(r"(/\S+) \(0x", line) for line in proc.stdout.splitlines()) if match]


def install(image: Path, source: str, dest: str, mode: int = 0o755) -> None:
    """Copy ``source`` to the absolute path ``dest`` in ``image``."""
    path = image / dest.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, path)
    path.chmod(mode)


def install_with_libraries(image: Path, binary: str, dest: str, lib_dest: dict[str, str] | None = None) -> None:
    """``binary`` at ``dest`` and its libraries where ldd found them (or at ``lib_dest[basename]``)."""
    install(image, binary, dest)
    for library in shared_libraries(binary):
        name = os.path.basename(library)
        target = (lib_dest or {}).get(name, library)
        if not (image / target.lstrip("/")).exists():
            install(image, os.path.realpath(library), target)


def base_layout(image: Path) -> None:
    """What every image here has: mountpoints for the runtime, /tmp, /etc/passwd and /etc/group."""
    for directory in ("proc", "dev", "sys", "etc", "root"):
        (image / directory).mkdir(parents=True, exist_ok=True)
    (image / "tmp").mkdir(exist_ok=True)
    (image / "tmp").chmod(0o1777)
    (image / "etc" / "passwd").write_text(PASSWD, encoding="ascii")
    (image / "etc" / "group").write_text(GROUP, encoding="ascii")


def distroless_layout(image: Path) -> None:
    base_layout(image)
    home = image / "home" / "nonroot"
    home.mkdir(parents=True)
    os.chown(home, NONROOT, NONROOT)


def build_server_image(image: Path, files: dict[str, bytes]) -> None:
    """A distroless "static"-style image: /app/server (coreutils sleep: no shell in it) with libc, and ``files``.

    /etc/localtime is an absolute symlink to /usr/share/zoneinfo/UTC (as in distroless); /etc/hosts an empty file for
    the kubelet's to be bind-mounted on; /data a mountpoint for a volume.
    """
    distroless_layout(image)
    sleep = shutil.which("sleep")
    if sleep is None or os.path.basename(os.path.realpath(sleep)) != "sleep":
        raise RuntimeError(f"coreutils sleep is needed for the distroless app (found {sleep!r}: a multi-call binary would bring a shell)")
    install_with_libraries(image, os.path.realpath(sleep), "/app/server")
    for path, content in files.items():
        target = image / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    (image / "etc" / "localtime").symlink_to("/usr/share/zoneinfo/UTC")
    (image / "etc" / "hosts").write_bytes(b"")
    (image / "data").mkdir()


def python_stdlib() -> tuple[str, str]:
    """(pythonX.Y, the directory of this interpreter's standard library)."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return version, os.path.join(sys.base_prefix, "lib", version)


def build_python_image(image: Path) -> list[dict[str, Any]]:
    """A distroless "python3"-style image: this test's interpreter as /usr/bin/pythonX.Y (/usr/bin/python3 a symlink).

    libpython goes to /usr/lib, libc and the loader where ldd found them. The standard library is not copied: the
    returned volume bind-mounts this interpreter's, read-only, on /usr/lib/pythonX.Y (the image has the mountpoint).
    """
    distroless_layout(image)
    version, stdlib = python_stdlib()
    executable = os.path.realpath(sys.executable)
    libpython = {os.path.basename(lib): f"/usr/lib/{os.path.basename(lib)}" for lib in shared_libraries(executable) if "libpython" in lib}
    install_with_libraries(image, executable, f"/usr/bin/{version}", libpython)
    (image / "usr" / "bin" / "python3").symlink_to(version)
    (image / "usr" / "lib" / version).mkdir(parents=True)
    return [{"type": "bind", "source": stdlib, "target": f"/usr/lib/{version}", "readonly": True}]


# The JDK's native parts a JVM and jcmd load (the GUI ones are left out).
JDK_BINARIES = ("bin/java", "bin/jcmd", "lib/server/libjvm.so", "lib/libjava.so", "lib/libjli.so", "lib/libjimage.so", "lib/libzip.so")
JDK_BINARIES += ("lib/libnio.so", "lib/libnet.so", "lib/libattach.so", "lib/libverify.so", "lib/libmanagement.so", "lib/libextnet.so")


def java_home() -> Path | None:
    """The JDK of the java on PATH, when jcmd and javac are there too."""
    java, jcmd, javac = shutil.which("java"), shutil.which("jcmd"), shutil.which("javac")
    if java is None or jcmd is None or javac is None:
        return None
    return Path(os.path.realpath(java)).parents[1]


def add_jdk(image: Path, jdk: Path) -> list[dict[str, Any]]:
    """Mountpoints for ``jdk`` (at its own path) and for the /etc directories its symlinks point to (Debian's
    jvm.cfg, say), the system libraries its binaries need; returns the read-only bind volumes for them."""
    targets = {str(jdk)}
    for directory, _dirs, files in os.walk(jdk):
        for name in files:
            link = os.path.join(directory, name)
            if os.path.islink(link) and os.readlink(link).startswith("/etc/"):
                targets.add("/etc/" + os.readlink(link).split("/")[2])
    for binary in JDK_BINARIES:
        for library in shared_libraries(str(jdk / binary)):
            if not library.startswith(f"{jdk}/") and not (image / library.lstrip("/")).exists():
                install(image, os.path.realpath(library), library)
    volumes = []
    for target in sorted(targets):
        (image / target.lstrip("/")).mkdir(parents=True, exist_ok=True)
        volumes.append({"type": "bind", "source": target, "target": target, "readonly": True})
    return volumes


def build_jvm_image(image: Path, jdk: Path, classes: dict[str, bytes]) -> list[dict[str, Any]]:
    """A distroless "java"-style image: /usr/bin/java (a symlink into the JDK) and ``classes`` in /app.

    The JDK is bind-mounted read-only from this host (the returned volumes), its system libraries copied.
    """
    distroless_layout(image)
    volumes = add_jdk(image, jdk)
    (image / "usr" / "bin").mkdir(parents=True, exist_ok=True)
    (image / "usr" / "bin" / "java").symlink_to(jdk / "bin" / "java")
    (image / "app").mkdir()
    for name, content in classes.items():
        (image / "app" / name).write_bytes(content)
    return volumes


def build_debug_image(image: Path, py_spy: str | None, jdk: Path | None = None) -> list[dict[str, Any]]:
    """A busybox debug image: busybox (the one under test, recipe_runner.BUSYBOX, with its libraries) and a symlink per applet in /bin.

    ``py_spy`` (a static binary) goes to /usr/local/bin when given. With ``jdk``, /usr/local/bin/jcmd points into it:
    the returned volumes mount it (as in a JDK debug image with busybox).
    """
    base_layout(image)
    if BUSYBOX is None:
        raise RuntimeError("busybox is not installed (hack/prereqs.sh), and KD_BUSYBOX is not set")
    # Static (busybox-static) or dynamic: ldd finds libraries only for the latter.
    install_with_libraries(image, os.path.realpath(BUSYBOX), "/bin/busybox")
    for applet in sorted(busybox_applets()):
        link = image / "bin" / applet
        if not (link.exists() or link.is_symlink()):
            link.symlink_to("busybox")
    if py_spy is not None:
        install(image, os.path.realpath(py_spy), "/usr/local/bin/py-spy")
    if jdk is None:
        return []
    volumes = add_jdk(image, jdk)
    (image / "usr" / "local" / "bin").mkdir(parents=True, exist_ok=True)
    (image / "usr" / "local" / "bin" / "jcmd").symlink_to(jdk / "bin" / "jcmd")
    return volumes


# --- Processes ------------------------------------------------------------------------------------------------------


def cmdline(host_pid: int) -> list[str] | None:
    """The process's arguments, None when it is gone."""
    try:
        with open(f"/proc/{host_pid}/cmdline", "rb") as handle:
            raw = handle.read()
    except OSError:
        return None
    return [arg.decode(errors="replace") for arg in raw.split(b"\0")[:-1]]


def children(host_pid: int) -> list[int]:
    """Host pids of the processes whose parent is ``host_pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat_line = handle.read()
        except OSError:
            continue
        fields = stat_line[stat_line.rindex(b")") + 2 :].split()
        if int(fields[1]) == host_pid:
            found.append(int(entry))
    return found


def ns_pid(host_pid: int) -> int:
    """The pid of a host process in its own (innermost) PID namespace."""
    with open(f"/proc/{host_pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("NSpid:"):
                return int(line.split()[-1])
    raise AssertionError(f"no NSpid for {host_pid}")


def pid_namespace(host_pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{host_pid}/ns/pid")
    except OSError:
        return None


def wait_for_child(parent: int, argv: Sequence[str], process: subprocess.Popen[bytes] | None = None, what: str = "") -> int:
    """The host pid of the child of ``parent`` once it has exec'd ``argv``."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        for child in children(parent):
            if cmdline(child) == list(argv):
                return child
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{what or argv[0]} exited with status {process.returncode} before exec'ing {argv[0]}")
        time.sleep(0.02)
    raise AssertionError(f"{what or argv[0]}: no child of {parent} exec'd {list(argv)!r} within {TIMEOUT}s")


def read_ready(fd: int, what: str) -> bytes:
    """One line (or byte) from ``fd``, failing after TIMEOUT seconds or at end of file."""
    ready, _writable, _failed = select.select([fd], [], [], TIMEOUT)
    if not ready:
        raise AssertionError(f"{what}: not ready after {TIMEOUT}s")
    data = os.read(fd, 4096)
    if not data:
        raise AssertionError(f"{what}: exited before it was ready")
    return data


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group (session) ``process`` leads, whether or not the leader is still there."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# --- Pods and debug containers --------------------------------------------------------------------------------------


@dataclass
class Pod:
    """A pod of one distroless container: its first process is pid 1 of the pod's PID namespace."""

    name: str
    host_pid: int  # the container's pid 1, as the host sees it
    pid_namespace: str
    argv: list[str]
    stderr: Path


@dataclass
class DebugRun:
    """One ephemeral debug container that ran a recipe script as its first process."""

    records: list[dict[str, Any]]
    pid: int  # the script's pid in the pod's PID namespace (the container's first process)
    exec_pids: list[int] = field(default_factory=list)  # the "kubectl exec" processes, in the pod's PID namespace


class Sandbox:
    """Starts pods and debug containers under ``workdir``; ``close`` kills every process it started."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._processes: list[subprocess.Popen[bytes]] = []
        self._pods: list[Pod] = []
        self._containers = 0

    def _popen(self, argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        # A session (and process group) of its own: close() kills the whole group.
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True, **kwargs)
        self._processes.append(process)
        return process

    def _container_dirs(self, name: str) -> tuple[Path, Path]:
        """(root, scratch): empty directories, mountpoints in the container's mount namespace only."""
        self._containers += 1
        base = self.workdir / f"{self._containers:02d}-{name}"
        (base / "root").mkdir(parents=True)
        (base / "scratch").mkdir()
        return base / "root", base / "scratch"

    def start_pod(
        self,
        name: str,
        image: Path,
        argv: list[str],
        volumes: list[dict[str, Any]] | None = None,
        files: Sequence[tuple[str, int]] = (),
        ready_line: bytes | None = None,
    ) -> Pod:
        """Start the pod's container as the nonroot user; with ``ready_line``, wait until it prints that on stdout."""
        root, scratch = self._container_dirs(name)
        spec = {
            "image": str(image),
            "root": str(root),
            "scratch": str(scratch),
            "volumes": volumes or [],
            "files": [list(item) for item in files],
            "uid": NONROOT,
            "gid": NONROOT,
            "argv": argv,
            "env": {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/home/nonroot"},
            "ready_fd": None,
            "go_fd": None,
        }
        stderr = root.parent / "stderr"
        with stderr.open("wb") as err:
            runtime = self._popen(
                ["unshare", "--pid", "--fork", "--mount", "--propagation", "private", "--", sys.executable, "-I", "-S", str(INIT), json.dumps(spec)],
                stdout=subprocess.PIPE if ready_line else subprocess.DEVNULL,
                stderr=err,
            )
        try:
            host_pid = wait_for_child(runtime.pid, argv, runtime, f"pod {name}")
            if ready_line is not None:
                assert runtime.stdout is not None
                line = read_ready(runtime.stdout.fileno(), f"pod {name}")
                assert line == ready_line, f"pod {name} printed {line!r}"
        except AssertionError as exc:
            raise AssertionError(f"{exc}; its stderr: {stderr.read_text(errors='replace')}") from None
        namespace = pid_namespace(host_pid)
        assert namespace is not None and namespace != pid_namespace(os.getpid())
        pod = Pod(name, host_pid, namespace, argv, stderr)
        self._pods.append(pod)
        return pod

    def debug(
        self,
        pod: Pod,
        image: Path,
        script: Path,
        name: str,
        *args: str,
        volumes: list[dict[str, Any]] | None = None,
        kubectl_exec: bool = False,
        timeout: float = 120,
    ) -> DebugRun:
        """Run ``sh -c "<prelude>\\n<script>" name args...`` as the first process of a new debug container in ``pod``.

        With ``kubectl_exec``, EXEC_ARGV is started in the debug container (its mount namespace and root, the pod's PID
        namespace, PPid 0) before the script, as a kubectl exec into it would: processes that are the debug
        container's without being the script's ancestors or descendants.
        """
        root, scratch = self._container_dirs(f"debug-{name}")
        ready_r, ready_w = os.pipe()
        go_r, go_w = os.pipe()
        spec = {
            "image": str(image),
            "root": str(root),
            "scratch": str(scratch),
            "volumes": volumes or [],
            "files": [],
            "uid": 0,
            "gid": 0,
            "argv": ["/bin/sh", "-c", script_text(script), name, *args],
            "env": DEBUG_ENV,
            "ready_fd": ready_w,
            "go_fd": go_r,
        }
        argv = ["nsenter", "--target", str(pod.host_pid), "--pid", "--", "unshare", "--mount", "--propagation", "private", "--"]
        argv += [sys.executable, "-I", "-S", str(INIT), json.dumps(spec)]
        process = self._popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(ready_w, go_r))
        os.close(ready_w)
        os.close(go_r)
        exec_pids: list[int] = []
        exec_process: subprocess.Popen[bytes] | None = None
        try:
            try:
                read_ready(ready_r, f"debug container for {name}")
            except AssertionError as exc:
                kill_group(process)
                err = process.communicate()[1]
                raise AssertionError(f"{exc}; its stderr: {err.decode(errors='replace')}") from None
            # nsenter forked the container's first process into the pod's PID namespace.
            (first,) = children(process.pid)
            first_pid = ns_pid(first)
            if kubectl_exec:
                exec_process, exec_pids = self._kubectl_exec(first)
            os.write(go_w, b"g")
            stdout, stderr = process.communicate(timeout=timeout)
        finally:
            os.close(ready_r)
            os.close(go_w)
            if exec_process is not None:
                # The container is over when its first process exits: the runtime kills what is left in it.
                kill_group(exec_process)
                exec_process.wait(timeout=TIMEOUT)
        context = f"{name} {list(args)!r} in a debug container of pod {pod.name}"
        assert stderr == b"", f"{context}: wrote to stderr:\n{stderr.decode(errors='replace')}"
        assert process.returncode == 0, f"{context}: exit status {process.returncode}"
        return DebugRun(parse_json_lines(stdout), first_pid, exec_pids)

    def _kubectl_exec(self, first: int) -> tuple[subprocess.Popen[bytes], list[int]]:
        """Start EXEC_ARGV in the debug container whose first process is ``first`` (host pid): (nsenter, their pod pids)."""
        process = self._popen(["nsenter", "--target", str(first), "--pid", "--mount", "--", *EXEC_ARGV], env={"PATH": "/bin"})
        shell = wait_for_child(process.pid, EXEC_CMDLINES[0], process, "kubectl exec")
        child = wait_for_child(shell, EXEC_CMDLINES[1], process, "kubectl exec")
        return process, [ns_pid(shell), ns_pid(child)]

    def close(self) -> None:
        """Kill every process started (a pod's pid 1 takes its PID namespace along); fail if any survives."""
        for process in self._processes:
            kill_group(process)
        for pod in self._pods:
            if pid_namespace(pod.host_pid) == pod.pid_namespace:
                try:
                    os.kill(pod.host_pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for process in self._processes:
            process.wait(timeout=TIMEOUT)
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()
        namespaces = {pod.pid_namespace for pod in self._pods}
        deadline = time.monotonic() + TIMEOUT
        while True:
            left = [entry for entry in os.listdir("/proc") if entry.isdigit() and pid_namespace(int(entry)) in namespaces]
            if not left:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"processes left in the pods' PID namespaces: {left}")
            time.sleep(0.05)
        with open("/proc/self/mountinfo", encoding="utf-8") as handle:
            leaked = [line for line in handle if str(self.workdir) in line]
        assert not leaked, f"mounts leaked into the host's mount namespace: {leaked}"
