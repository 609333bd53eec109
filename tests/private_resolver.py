"""A resolver of the test's own: the dns recipe's lookups never reach this host's resolver or any other address.

``PrivateResolver`` starts a helper (this file, run as a script) in a new network and mount namespace
(``unshare --net --mount``, root only): it brings that namespace's loopback up, bind-mounts its own
/etc/resolv.conf (``nameserver 127.0.0.1``), /etc/hosts and /etc/nsswitch.conf (``hosts: files dns``) over the
host's, and answers DNS on 127.0.0.1:53 and [::1]:53 from ``ZONE`` (NXDOMAIN for every other name), logging
each question. A recipe run inside (``nsenter --net --mount``, see ``wrap``) resolves with getent, nslookup or
busybox's applets exactly as it would against a cluster's resolver, and nothing it sends can leave the
namespace: it has no interface but its loopback.

The helper lives until its stdin closes (the test process exiting closes it too). The unit tests of the dns recipe
and the injection proofs use it, and so do the integration tests and the benchmark that run the dns recipe on this
host to stand in for a debug container (tests/integration/kubehelpers.py: real_run).

Imported as ``ansible_collections.kubedebug.ephemeral.tests.private_resolver``.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Names the private resolver answers (reserved names: the test never depends on who owns them).
ZONE: dict[str, list[str]] = {
    "web.kd.test": ["192.0.2.10", "2001:db8::10"],
    "kubernetes.default.svc.cluster.local": ["10.96.0.1"],
}
RESOLV_CONF = "nameserver 127.0.0.1\nsearch kd.test\noptions timeout:1 attempts:1\n"
HOSTS = "127.0.0.1\tlocalhost\n"
NSSWITCH = "hosts: files dns\n"
FILES = {"resolv.conf": RESOLV_CONF, "hosts": HOSTS, "nsswitch.conf": NSSWITCH}

SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
QTYPES = {1: socket.AF_INET, 28: socket.AF_INET6}


# --- the helper, inside the namespaces ----------------------------------------------------------------------------


def _loopback_up() -> None:
    with socket.socket() as sock:
        request = struct.pack("16sH", b"lo", 0)
        flags = struct.unpack("16sH", fcntl.ioctl(sock, SIOCGIFFLAGS, request)[:18])[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH", b"lo", flags | IFF_UP))


def _question(packet: bytes) -> tuple[str, int, int]:
    """The name, qtype and the offset after the question of a DNS query."""
    labels, offset = [], 12
    while packet[offset]:
        length = packet[offset]
        labels.append(packet[offset + 1 : offset + 1 + length].decode("ascii", "replace"))
        offset += 1 + length
    qtype = struct.unpack("!H", packet[offset + 1 : offset + 3])[0]
    return ".".join(labels), qtype, offset + 5


def answer(packet: bytes) -> bytes:
    """The reply to one query: the zone's records of its type, NOERROR without records, or NXDOMAIN."""
    name, qtype, end = _question(packet)
    addresses = ZONE.get(name.lower().rstrip("."))
    records = []
    if addresses is not None and qtype in QTYPES:
        family = QTYPES[qtype]
        for address in addresses:
            if (":" in address) == (family == socket.AF_INET6):
                rdata = socket.inet_pton(family, address)
                records.append(struct.pack("!HHHIH", 0xC00C, qtype, 1, 60, len(rdata)) + rdata)
    rcode = 3 if addresses is None else 0
    flags = 0x8180 | (struct.unpack("!H", packet[2:4])[0] & 0x0100) | rcode
    header = struct.pack("!HHHHHH", struct.unpack("!H", packet[:2])[0], flags, 1, len(records), 0, 0)
    return header + packet[12:end] + b"".join(records)


def _serve(sock: socket.socket, log: Path, lock: threading.Lock) -> None:
    while True:
        packet, peer = sock.recvfrom(4096)
        try:
            reply = answer(packet)
            name, qtype = _question(packet)[:2]
        except (IndexError, struct.error):
            continue
        with lock, log.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({"name": name, "qtype": qtype}) + "\n")
        sock.sendto(reply, peer)


def helper(directory: Path) -> None:
    """Run inside the new namespaces: files, loopback, DNS; exits when stdin closes."""
    for name in FILES:
        subprocess.run(["mount", "--bind", str(directory / name), f"/etc/{name}"], check=True)
    _loopback_up()
    lock = threading.Lock()
    sockets = []
    for family, address in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind((address, 53))
        except OSError:
            if family == socket.AF_INET:
                raise
            continue  # no IPv6 on this host: IPv4 is enough for the nameserver line
        sockets.append(sock)
        threading.Thread(target=_serve, args=(sock, directory / "queries.log", lock), daemon=True).start()
    print("ready", flush=True)
    sys.stdin.read()


# --- the test's side ------------------------------------------------------------------------------------------------


class Unavailable(Exception):
    """This host cannot make the namespaces (not root, no unshare/nsenter, or refused)."""


class PrivateResolver:
    def __init__(self, process: subprocess.Popen[str], directory: Path) -> None:
        self.process = process
        self.directory = directory

    def wrap(self) -> list[str]:
        """The argv prefix that runs a command in the resolver's namespaces, in the same working directory."""
        return ["nsenter", f"--target={self.process.pid}", "--net", "--mount", f"--wd={os.getcwd()}", "--"]

    def file(self, name: str) -> str:
        """The text of /etc/<name> inside (resolv.conf, hosts)."""
        return FILES[name]

    def queries(self) -> list[dict[str, object]]:
        """Every question the resolver got so far: ``{"name", "qtype"}``."""
        log = self.directory / "queries.log"
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


@contextmanager
def private_resolver(directory: Path) -> Iterator[PrivateResolver]:
    missing = [tool for tool in ("unshare", "nsenter", "mount") if shutil.which(tool) is None]
    if missing:
        raise Unavailable(f"missing tools: {', '.join(missing)} (util-linux)")
    if os.geteuid() != 0:
        raise Unavailable(f"needs root for a network and mount namespace (running as uid {os.geteuid()})")
    for name, text in FILES.items():
        (directory / name).write_text(text, encoding="utf-8")
    argv = ["unshare", "--net", "--mount", "--propagation", "private", "--", sys.executable, "-I", __file__, str(directory)]
    process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdin is not None
    try:
        if process.stdout.readline().strip() != "ready":
            process.kill()
            err = process.communicate(timeout=30)[1]
            raise Unavailable(f"{' '.join(argv[:5])} was refused: {err.strip()[-500:]}")
        yield PrivateResolver(process, directory)
    finally:
        if process.poll() is None:
            process.stdin.close()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


if __name__ == "__main__":
    helper(Path(sys.argv[1]))
