"""The container runtime's last step before a container's command, for test_distroless_target.py (runc init's part).

Run as ``python -I -S container_init.py SPEC_JSON``, as root, inside a fresh mount namespace (unshare --mount) and
the container's PID namespace (unshare --pid --fork for a pod's first container, nsenter --pid for an ephemeral one):

1. the container's root: an overlay of the image directory (``image``, the lower layer) and a fresh tmpfs (upper and
   work layers), mounted on ``root``, as containerd's overlayfs snapshotter does;
2. under it, what every runtime mounts: /proc (of the current PID namespace), a tmpfs /dev with the usual device nodes,
   /dev/shm, a read-only /sys; then the pod's ``volumes`` (tmpfs or bind mounts) and ``files`` written into them;
3. pivot_root into it and the old root detached, as runc does: the mount namespace then holds nothing but the
   container's mounts, so that /proc/<pid>/maps, /proc/<pid>/exe and /proc/<pid>/mounts name paths as a real container's
   processes show them (after a mere chroot they would still name the host's paths);
4. with ``ready_fd``/``go_fd``: one byte written to ready_fd, then one awaited on go_fd (meanwhile the test may start
   another process in the container, as kubectl exec would);
5. supplementary groups dropped, ``gid``/``uid`` set, and ``argv`` exec'd with exactly ``env``: the command keeps this
   process's pid, so it is the container's first process (pid 1 of the pod's PID namespace, or PPid 0 when joined).

SPEC: {"image": DIR, "root": DIR, "scratch": DIR, "volumes": [VOLUME...], "files": [[PATH, SIZE]...], "uid": N,
"gid": N, "argv": [S...], "env": {S: S}, "ready_fd": N|null, "go_fd": N|null}, where VOLUME is
{"type": "tmpfs", "target": PATH, "options": S} or {"type": "bind", "source": PATH, "target": PATH, "readonly": B}
and every PATH inside the container is absolute. Everything is imported before the pivot: the host's Python library is
out of reach after it. Any failure is a traceback on stderr and exit status 1, before the exec.
"""

from __future__ import annotations

import ctypes
import json
import os
import stat
import sys
from typing import Any

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MNT_DETACH = 0x2
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}

# /dev as runc populates it: (name, major, minor).
DEVICES = [("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0)]
DEV_LINKS = [("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")]

libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def mount(source: str, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    raw_type = fstype.encode() if fstype else None
    raw_data = data.encode() if data else None
    check(libc.mount(source.encode(), target.encode(), raw_type, flags, raw_data), f"mount {fstype or 'bind'} {source} on {target}")


def bind(source: str, target: str, readonly: bool) -> None:
    mount(source, target, None, MS_BIND)
    if readonly:  # a bind mount takes its flags from a remount only
        mount("none", target, None, MS_BIND | MS_REMOUNT | MS_RDONLY)


def make_root(spec: dict[str, Any]) -> str:
    """Mount the container's root and everything under it; returns the root directory."""
    root: str = spec["root"]
    scratch: str = spec["scratch"]
    mount("tmpfs", scratch, "tmpfs", 0, "mode=700")
    os.mkdir(f"{scratch}/upper", 0o755)
    os.mkdir(f"{scratch}/work", 0o700)
    mount("overlay", root, "overlay", 0, f"lowerdir={spec['image']},upperdir={scratch}/upper,workdir={scratch}/work")
    mount("proc", f"{root}/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    mount("tmpfs", f"{root}/dev", "tmpfs", MS_NOSUID, "mode=755,size=65536k")
    for name, major, minor in DEVICES:
        os.mknod(f"{root}/dev/{name}", 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        os.chmod(f"{root}/dev/{name}", 0o666)
    for name, link in DEV_LINKS:
        os.symlink(link, f"{root}/dev/{name}")
    os.mkdir(f"{root}/dev/shm")
    mount("shm", f"{root}/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k")
    mount("sysfs", f"{root}/sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for volume in spec["volumes"]:
        target = root + volume["target"]
        if volume["type"] == "tmpfs":
            mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, volume["options"])
        else:
            bind(volume["source"], target, volume["readonly"])
    for path, size in spec["files"]:
        with open(root + path, "wb") as handle:
            handle.write(b"\0" * size)
    return root


def enter(root: str) -> None:
    """pivot_root into ``root`` and detach the old root (chroot where the syscall number is unknown)."""
    os.chdir(root)
    number = SYS_PIVOT_ROOT.get(os.uname().machine)
    if number is None:
        os.chroot(".")
    else:
        check(libc.syscall(number, b".", b"."), "pivot_root")
        check(libc.umount2(b".", MNT_DETACH), "umount the old root")
    os.chdir("/")


def main() -> None:
    spec: dict[str, Any] = json.loads(sys.argv[1])
    enter(make_root(spec))
    if spec["ready_fd"] is not None:
        os.write(spec["ready_fd"], b"r")
        os.close(spec["ready_fd"])
    if spec["go_fd"] is not None:
        if os.read(spec["go_fd"], 1) != b"g":
            sys.exit("container_init: told not to start")
        os.close(spec["go_fd"])
    os.setgroups([])
    os.setgid(spec["gid"])
    os.setuid(spec["uid"])
    os.execve(spec["argv"][0], spec["argv"], spec["env"])


if __name__ == "__main__":
    main()
