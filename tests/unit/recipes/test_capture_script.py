"""roles/recipe/files/capture.sh, run for real on this host (see recipe_runner).

tcpdump captures on the loopback interface with the filter ``tcp port <P>`` while the
test opens TCP connections to its own listener on 127.0.0.1:<P> (loopback only). It
needs tcpdump and the capabilities to capture (root); hack/prereqs.sh installs tcpdump.
Without them the tests are skipped, except on CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from recipe_runner import ROLES, SHELLS, busybox_bin, parse_json_lines, script_command

SCRIPT = ROLES / "recipe" / "files" / "capture.sh"
PCAP_MAGICS = {"a1b2c3d4", "d4c3b2a1", "a1b23c4d", "4d3cb2a1", "0a0d0d0a"}  # pcap (us, ns; both byte orders), pcapng


def need_capture() -> None:
    """Skip (fail on CI) unless tcpdump is installed and this process may capture."""
    reason = ""
    if shutil.which("tcpdump") is None:
        reason = "tcpdump is not installed: run hack/prereqs.sh"
    elif os.geteuid() != 0:
        reason = "capturing packets needs root (CAP_NET_RAW)"
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(params=SHELLS)
def shell(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def tcpdump_only_dir() -> Iterator[str]:
    """A directory holding nothing but a tcpdump symlink, to add to busybox's PATH."""
    directory = tempfile.mkdtemp(prefix="recipe-tcpdump-")
    tcpdump = shutil.which("tcpdump")
    if tcpdump is not None:
        os.symlink(tcpdump, os.path.join(directory, "tcpdump"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def no_tcpdump_dir() -> Iterator[str]:
    """A directory with every command of /usr/bin and /bin but tcpdump (for the sh runs)."""
    directory = tempfile.mkdtemp(prefix="recipe-no-tcpdump-")
    for source in ("/usr/bin", "/bin", "/usr/sbin", "/sbin"):
        if not os.path.isdir(source):
            continue
        for name in os.listdir(source):
            link = os.path.join(directory, name)
            if name != "tcpdump" and not os.path.lexists(link):
                os.symlink(os.path.join(source, name), link)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def run(shell: str, *args: str, path: str | None = None, expect_rc: int = 0) -> list[dict[str, Any]]:
    """Run capture.sh; ``path`` replaces PATH (busybox runs get tcpdump added unless ``path`` is given)."""
    argv, env = script_command(SCRIPT, "capture", *args, shell=shell)
    if path is not None:
        env["PATH"] = path
    proc = subprocess.run(argv, capture_output=True, env=env, timeout=120, check=False)
    assert proc.stderr == b"", f"capture wrote to stderr (the container log would mix it in): {proc.stderr[:500]!r}"
    records = parse_json_lines(proc.stdout)
    assert proc.returncode == expect_rc, f"capture exited {proc.returncode}, expected {expect_rc}: {records}"
    return records


def capture_path(shell: str, tcpdump_only_dir: str) -> str | None:
    """PATH for a run that must find tcpdump: busybox applets plus tcpdump alone, or the host's PATH."""
    if shell == "busybox":
        return f"{busybox_bin()}:{tcpdump_only_dir}"
    return None


class Listener:
    """A TCP listener on 127.0.0.1 (an ephemeral port) that answers and closes every connection."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, peer = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    conn.recv(1024)
                    conn.sendall(b"pong " + str(peer[1]).encode() + b"\n")
                except OSError:
                    pass

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


class Traffic:
    """Connect to the listener over and over, from ``start`` to ``end`` seconds from now."""

    def __init__(self, port: int, start: float = 0.7, end: float = 2.5) -> None:
        self.port = port
        self.connections = 0
        self.begin = time.monotonic() + start
        self.end = time.monotonic() + end
        self.thread = threading.Thread(target=self.talk, daemon=True)
        self.thread.start()

    def talk(self) -> None:
        while time.monotonic() < self.begin:
            time.sleep(0.05)
        while time.monotonic() < self.end:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as conn:
                conn.sendall(b"ping\n")
                conn.recv(1024)
            self.connections += 1
            time.sleep(0.1)

    def join(self) -> None:
        self.thread.join(timeout=10)


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


def capture_with_traffic(shell: str, port: int, path: str | None, *args: str) -> tuple[list[dict[str, Any]], Traffic]:
    traffic = Traffic(port)
    records = run(shell, "--duration", "3", "--interface", "lo", *args, "tcp", "port", str(port), path=path)
    traffic.join()
    return records, traffic


def split(records: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The capture line and the summary line, the only two lines."""
    assert [rec["check"] for rec in records] == ["capture", "summary"], records
    return records[0], records[1]


def test_capture_on_loopback(shell: str, listener: Listener, tcpdump_only_dir: str) -> None:
    need_capture()
    # run()'s subprocess timeout is the hang guard: a capture that ignored --duration would run into it.
    records, traffic = capture_with_traffic(shell, listener.port, capture_path(shell, tcpdump_only_dir))
    assert traffic.connections > 0
    rec, summary = split(records)
    assert rec["ok"] is True, rec
    assert rec["target"] == "lo"
    assert rec["filter"] == f"tcp port {listener.port}"
    assert isinstance(rec["packets"], int)
    assert rec["packets"] > 0
    assert rec["detail"] == f"{rec['packets']} packets captured"
    assert rec["truncated"] is False
    data = base64.b64decode(rec["pcap_base64"], validate=True)
    assert data[:4].hex() in PCAP_MAGICS, data[:4].hex()
    assert rec["size"] == len(data)
    assert rec["sha256"] == hashlib.sha256(data).hexdigest()
    # Every connection is at least a SYN, a SYN-ACK and an ACK on the loopback.
    assert rec["packets"] >= 3 * min(traffic.connections, 5)
    assert summary["ok"] is True
    assert summary["count"] == 1
    assert summary["detail"] == f"{rec['packets']} packets captured on lo (tcp port {listener.port})"


def test_capture_pcap_is_readable(tmp_path: Path, listener: Listener) -> None:
    """The pcap decoded is one tcpdump reads back, with only packets of the filtered port."""
    need_capture()
    records, traffic = capture_with_traffic("sh", listener.port, None)
    rec, summary = split(records)
    assert rec["ok"] is True, rec
    assert summary["ok"] is True
    pcap = tmp_path / "capture.pcap"
    pcap.write_bytes(base64.b64decode(rec["pcap_base64"]))
    lines = subprocess.run(["tcpdump", "-n", "-r", str(pcap)], capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(lines) == rec["packets"]
    assert all(f".{listener.port}" in line for line in lines), lines[:5]
    assert traffic.connections > 0


def test_count_bounds_the_capture(listener: Listener) -> None:
    need_capture()
    records, traffic = capture_with_traffic("sh", listener.port, None, "--count", "2")
    rec, summary = split(records)
    assert traffic.connections > 0
    assert rec["ok"] is True, rec
    assert rec["packets"] == 2
    assert summary["ok"] is True


def test_invalid_filter(shell: str, tcpdump_only_dir: str) -> None:
    need_capture()
    records = run(shell, "--duration", "2", "--interface", "lo", "tcp", "portx", "80", path=capture_path(shell, tcpdump_only_dir))
    rec, summary = split(records)
    assert rec["ok"] is False
    assert rec["detail"].startswith("tcpdump failed: "), rec
    assert "filter" in rec["detail"] or "syntax" in rec["detail"], rec
    assert rec["filter"] == "tcp portx 80"
    assert rec["pcap_base64"] is None
    assert rec["packets"] is None
    assert rec["truncated"] is False
    assert summary["ok"] is False


def test_unknown_interface() -> None:
    need_capture()
    records = run("sh", "--duration", "2", "--interface", "kdnope0")
    rec, summary = split(records)
    assert rec["ok"] is False
    assert rec["target"] == "kdnope0"
    assert "kdnope0" in rec["detail"], rec
    assert summary["ok"] is False


def test_max_bytes_refuses_the_pcap(shell: str, listener: Listener, tcpdump_only_dir: str) -> None:
    need_capture()
    records, traffic = capture_with_traffic(shell, listener.port, capture_path(shell, tcpdump_only_dir), "--max-bytes", "100")
    rec, summary = split(records)
    assert traffic.connections > 0
    assert rec["ok"] is False
    assert rec["truncated"] is True
    assert rec["pcap_base64"] is None
    assert rec["size"] > 100
    assert rec["packets"] > 0
    assert len(rec["sha256"]) == 64
    assert "exceeds --max-bytes 100" in rec["detail"], rec
    assert summary["ok"] is False


def test_no_tcpdump(shell: str, no_tcpdump_dir: str) -> None:
    path = busybox_bin() if shell == "busybox" else no_tcpdump_dir
    records = run(shell, "--duration", "1", "tcp", "port", "80", path=path)
    rec, summary = split(records)
    assert rec["ok"] is False
    assert rec["detail"].startswith("no tcpdump in the debug image"), rec
    assert rec["target"] == "any"
    assert rec["filter"] == "tcp port 80"
    assert rec["pcap_base64"] is None
    assert summary["ok"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--duration", "301"], "--duration must be between 1 and 300"),
        (["--duration", "0"], "--duration must be between 1 and 300"),
        (["--duration", "ten"], "--duration wants a number"),
        (["--count", "0"], "--count must be at least 1"),
        (["--max-bytes"], "--max-bytes needs a value"),
        (["--interface", "lo;reboot"], "--interface wants an interface name"),
        (["--bogus"], "unknown option: --bogus"),
    ],
)
def test_bad_arguments(shell: str, args: list[str], message: str) -> None:
    records = run(shell, *args, expect_rc=2)
    assert [rec["check"] for rec in records] == ["args", "summary"], records
    assert records[0]["ok"] is False
    assert records[0]["detail"].startswith(message), records[0]
    assert records[1]["ok"] is False


def test_options_with_equals_and_leading_zeros(listener: Listener) -> None:
    need_capture()
    traffic = Traffic(listener.port)
    records = run("sh", "--duration=03", "--interface=lo", "--count=0010", "--", "tcp", "port", str(listener.port))
    traffic.join()
    rec, summary = split(records)
    assert rec["ok"] is True, rec
    assert 0 < rec["packets"] <= 10
    assert summary["ok"] is True


def test_no_jinja_markers() -> None:
    text = SCRIPT.read_text(encoding="utf-8")
    for marker in ("{{", "{%", "{#"):
        assert marker not in text
    assert text.startswith("# shellcheck shell=sh\n")
