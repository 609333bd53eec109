"""hack/images/build_images.py, run for real on this host: the busybox and server images.

The builder runs as a subprocess, as a node script would run it. Each archive is
opened and checked the way containerd's importer reads it (index.json -> manifest ->
config and layer, every digest and size), then the layer is unpacked and its
programs run in a chroot: busybox's ``sh`` under ``unshare --pid``, the server on a
random 127.0.0.1 port (loopback only), asked for ``/`` and ``/status/503``.

Building busybox needs dpkg-deb and Debian's busybox-static package, which the tests
never download (unit tests send nothing beyond loopback): they hand the builder the .deb
hack/prereqs.sh or the cluster's image build fetched into ``$KD_CACHE/images/debs``
(``KD_BUSYBOX_STATIC_DEB`` names another). The server needs Go (its module has no
dependencies: nothing is downloaded), running them needs root, unshare and chroot.
Without those the tests are skipped, except on CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILDER = ROOT / "hack" / "images" / "build_images.py"

NEEDS = {
    "busybox": (("dpkg-deb",), "busybox-static's .deb is unpacked with dpkg-deb (Debian/Ubuntu)"),
    "server": (("go",), "the server is built with Go >= 1.26"),
}


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def need_tools(name: str) -> None:
    tools, why = NEEDS[name]
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        _unavailable(f"{', '.join(missing)} not found: {why}")


def busybox_static_deb() -> Path:
    """The busybox-static .deb the builder is given, so that it downloads nothing."""
    named = os.environ.get("KD_BUSYBOX_STATIC_DEB")
    debs = Path(os.environ.get("KD_CACHE", ROOT / ".cache")) / "images" / "debs"
    found = [Path(named)] if named else sorted(debs.glob("busybox-static_*.deb"))
    if not found or not found[-1].is_file():
        _unavailable(
            f"no busybox-static .deb in {debs} (or KD_BUSYBOX_STATIC_DEB), and unit tests download nothing:"
            f" run bash hack/prereqs.sh, or mkdir -p {debs} && cd {debs} && apt-get download busybox-static"
        )
    return found[-1]


def need_chroot() -> None:
    if os.geteuid() != 0:
        _unavailable("running an image's rootfs needs root (chroot, unshare --pid)")
    for tool in ("chroot", "unshare"):
        if shutil.which(tool) is None:
            _unavailable(f"{tool} not found (util-linux / coreutils)")


def run_builder(*args: str | Path, builder: Path = BUILDER, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(builder), *map(str, args)], capture_output=True, text=True, timeout=timeout, check=False)


class Builds:
    """Builds each image once per test module, into ``out`` with a shared download/compile cache."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.cache = base / "cache"
        self.archives: dict[str, Path] = {}

    def out(self, label: str) -> Path:
        return self.base / label

    def build(self, name: str, label: str) -> Path:
        if name == "busybox":
            # The builder takes a .deb it finds in its cache's debs/ as downloaded (apt_deb).
            deb = busybox_static_deb()
            (self.cache / "debs").mkdir(parents=True, exist_ok=True)
            target = self.cache / "debs" / deb.name
            if not target.exists():
                shutil.copyfile(deb, target)
        proc = run_builder("--out", self.out(label), "--cache", self.cache, "--only", name)
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr
        ref, path = proc.stdout.split()
        assert ref == REFS[name]
        assert Path(path) == self.out(label) / f"{name}.tar"
        return Path(path)

    def archive(self, name: str) -> Path:
        need_tools(name)
        if name not in self.archives:
            self.archives[name] = self.build(name, "out")
        return self.archives[name]


REFS = {"busybox": "kd.local/busybox:1.35", "server": "kd.local/server:1"}


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Builds:
    return Builds(tmp_path_factory.mktemp("images"))


@dataclass
class OciArchive:
    """An OCI image layout tarball, read and checked the way an importer walks it."""

    members: dict[str, tarfile.TarInfo]
    files: dict[str, bytes]

    def json(self, name: str) -> Any:
        return json.loads(self.files[name])

    def blob(self, descriptor: dict[str, Any]) -> bytes:
        algorithm, hex_ = descriptor["digest"].split(":")
        assert algorithm == "sha256"
        data = self.files[f"blobs/sha256/{hex_}"]
        assert hashlib.sha256(data).hexdigest() == hex_, f"blob {hex_} does not match its digest"
        assert len(data) == descriptor["size"], f"blob {hex_} is {len(data)} bytes, its descriptor says {descriptor['size']}"
        return data

    @property
    def manifest_descriptor(self) -> dict[str, Any]:
        manifests = self.json("index.json")["manifests"]
        assert len(manifests) == 1
        return manifests[0]

    @property
    def manifest(self) -> dict[str, Any]:
        return json.loads(self.blob(self.manifest_descriptor))

    @property
    def config(self) -> dict[str, Any]:
        return json.loads(self.blob(self.manifest["config"]))

    @property
    def layer(self) -> bytes:
        layers = self.manifest["layers"]
        assert len(layers) == 1
        return self.blob(layers[0])


def read_tar(data_or_path: bytes | Path) -> tuple[dict[str, tarfile.TarInfo], dict[str, bytes]]:
    """Members and file contents, asserting the reproducibility rules on every header."""
    source = io.BytesIO(data_or_path) if isinstance(data_or_path, bytes) else data_or_path.open("rb")
    members: dict[str, tarfile.TarInfo] = {}
    files: dict[str, bytes] = {}
    with source, tarfile.open(fileobj=source, mode="r:") as tar:
        names = []
        for info in tar:
            name = info.name.rstrip("/")
            names.append(name)
            assert info.mtime == 0, f"{name}: mtime {info.mtime}"
            assert info.pax_headers == {}, f"{name}: pax headers {info.pax_headers}"
            assert info.uname == "" and info.gname == "", f"{name}: owner names {info.uname}/{info.gname}"
            members[name] = info
            if info.isfile():
                extracted = tar.extractfile(info)
                assert extracted is not None
                files[name] = extracted.read()
        assert names == sorted(names), "tar entries are not sorted"
        assert len(names) == len(set(names)), "duplicate tar entries"
    return members, files


def read_archive(path: Path) -> OciArchive:
    members, files = read_tar(path)
    return OciArchive(members, files)


def layer_members(archive: OciArchive) -> dict[str, tarfile.TarInfo]:
    return read_tar(archive.layer)[0]


def extract_layer(archive: OciArchive, dest: Path) -> Path:
    dest.mkdir()
    with tarfile.open(fileobj=io.BytesIO(archive.layer), mode="r:") as tar:
        # Our own layer: absolute symlinks (/bin/sh -> /bin/busybox) are meant for a chroot.
        if hasattr(tarfile, "fully_trusted_filter"):
            tar.extractall(dest, numeric_owner=True, filter="fully_trusted")
        else:  # pragma: no cover - Python < 3.11.4
            tar.extractall(dest, numeric_owner=True)
    return dest


@pytest.mark.parametrize("name", ["busybox", "server"])
def test_archive_is_a_consistent_oci_layout(builds: Builds, name: str) -> None:
    archive = read_archive(builds.archive(name))
    assert archive.json("oci-layout") == {"imageLayoutVersion": "1.0.0"}
    index = archive.json("index.json")
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    descriptor = archive.manifest_descriptor
    assert descriptor["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert descriptor["annotations"] == {
        "io.containerd.image.name": REFS[name],
        "org.opencontainers.image.ref.name": REFS[name].rsplit(":", 1)[1],
    }
    assert descriptor["platform"] == {"architecture": "amd64", "os": "linux"}

    manifest = archive.manifest
    assert manifest["schemaVersion"] == 2
    assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    assert [layer["mediaType"] for layer in manifest["layers"]] == ["application/vnd.oci.image.layer.v1.tar"]

    config = archive.config
    assert (config["architecture"], config["os"]) == ("amd64", "linux")
    # Uncompressed: the diff_id is the digest of the very blob.
    assert config["rootfs"] == {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(archive.layer).hexdigest()}"]}
    assert "created" not in config

    # Nothing in the archive but the layout files and the three blobs.
    blob_names = {f"blobs/sha256/{d['digest'].split(':')[1]}" for d in (descriptor, manifest["config"], *manifest["layers"])}
    assert set(archive.members) == {"blobs", "blobs/sha256", "index.json", "oci-layout", *blob_names}


def test_busybox_layer_and_config(builds: Builds) -> None:
    archive = read_archive(builds.archive("busybox"))
    config = archive.config["config"]
    assert config["Cmd"] == ["sh"]
    assert "Entrypoint" not in config
    assert config["Env"] == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]

    members = layer_members(archive)
    busybox = members["bin/busybox"]
    assert busybox.isfile() and busybox.mode == 0o755 and (busybox.uid, busybox.gid) == (0, 0)
    for applet in ("bin/sh", "bin/ls", "usr/bin/wget", "sbin/ip", "bin/ps"):
        assert members[applet].issym() and members[applet].linkname == "/bin/busybox", applet
    # Every applet is there: far more symlinks than a hand-made list would have.
    assert sum(1 for m in members.values() if m.issym()) > 200
    assert members["tmp"].isdir() and members["tmp"].mode == 0o1777
    assert members["root"].mode == 0o700
    nonroot_home = members["home/nonroot"]
    assert (nonroot_home.uid, nonroot_home.gid) == (65532, 65532)
    assert all((m.uid, m.gid) == (0, 0) for name, m in members.items() if name != "home/nonroot")

    etc = read_tar(archive.layer)[1]
    passwd = etc["etc/passwd"].decode().splitlines()
    assert "root:x:0:0:root:/root:/bin/sh" in passwd
    assert any(line.startswith("nobody:x:65534:65534:") for line in passwd)
    assert any(line.startswith("nonroot:x:65532:65532:") for line in passwd)
    assert {line.split(":")[0] for line in etc["etc/group"].decode().splitlines()} == {"root", "nobody", "nonroot"}
    # Debian's static build, not the host's dynamic busybox.
    assert b"/lib64/ld-linux" not in etc["bin/busybox"]


def test_server_layer_is_distroless(builds: Builds) -> None:
    archive = read_archive(builds.archive("server"))
    config = archive.config["config"]
    assert config["User"] == "65532:65532"
    assert config["Entrypoint"] == ["/server"]
    assert "Cmd" not in config

    members, files = read_tar(archive.layer)
    assert set(members) == {"server", "etc", "etc/passwd", "etc/group", "tmp"}
    assert members["server"].mode == 0o755
    assert members["tmp"].mode == 0o1777
    assert files["server"][:4] == b"\x7fELF"
    assert b"/lib64/ld-linux" not in files["server"], "the server binary should be static"
    assert any(line.startswith("nonroot:x:65532:65532:") for line in files["etc/passwd"].decode().splitlines())


@pytest.mark.parametrize("name", ["busybox", "server"])
def test_rebuild_is_byte_identical_and_skipped_when_unchanged(builds: Builds, name: str) -> None:
    first = builds.archive(name)
    second = builds.build(name, f"again-{name}")
    assert read_archive(first).manifest_descriptor["digest"] == read_archive(second).manifest_descriptor["digest"]
    assert first.read_bytes() == second.read_bytes()

    # Same inputs again in the same directory: the archive is kept, not rewritten.
    before = second.stat().st_mtime_ns
    proc = run_builder("--out", second.parent, "--cache", builds.cache, "--only", name)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{REFS[name]} {second}\n"
    assert "inputs unchanged" in proc.stderr
    assert second.stat().st_mtime_ns == before

    # A different input hash (as after an edit of a source) rebuilds it.
    (second.parent / f"{name}.inputs").write_text("stale\n", encoding="utf-8")
    proc = run_builder("--out", second.parent, "--cache", builds.cache, "--only", name)
    assert proc.returncode == 0, proc.stderr
    assert "inputs unchanged" not in proc.stderr
    assert second.read_bytes() == first.read_bytes()


def test_missing_source_is_a_clear_error(tmp_path: Path) -> None:
    # The builder alone, without the pause.c it finds next to itself.
    lonely = tmp_path / "hack" / "images" / "build_images.py"
    lonely.parent.mkdir(parents=True)
    shutil.copy(BUILDER, lonely)
    proc = run_builder("--out", tmp_path / "out", "--only", "pause", builder=lonely)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert str(lonely.parent / "pause.c") in proc.stderr
    assert "missing" in proc.stderr
    assert proc.stdout == ""
    assert not (tmp_path / "out" / "pause.tar").exists()


def test_missing_py_spy_is_a_clear_error(tmp_path: Path) -> None:
    absent = tmp_path / "nowhere" / "py-spy"
    proc = run_builder("--out", tmp_path / "out", "--only", "debug", "--py-spy", absent)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"--py-spy {absent}: no such file" in proc.stderr


def test_unknown_image_name_is_refused(tmp_path: Path) -> None:
    proc = run_builder("--out", tmp_path, "--only", "nginx")
    assert proc.returncode == 2
    assert "invalid choice" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_busybox_rootfs_runs(builds: Builds, tmp_path: Path) -> None:
    archive = read_archive(builds.archive("busybox"))
    need_chroot()
    root = extract_layer(archive, tmp_path / "rootfs")
    proc = subprocess.run(
        ["unshare", "--fork", "--pid", "--mount-proc", "chroot", str(root), "/bin/sh", "-c", "echo hi"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "hi\n", "")

    # /etc/passwd and /etc/group are read by the static binary; /tmp is writable by anyone.
    proc = subprocess.run(
        ["chroot", "--userspec=65532:65532", str(root), "/bin/sh", "-c", "id -un; id -gn; echo x > /tmp/f && cat /tmp/f; ls /usr/bin | wc -l"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    user, group, written, count = proc.stdout.split()
    assert (user, group, written) == ("nonroot", "nonroot", "x")
    assert int(count) > 50


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(port: int, path: str) -> tuple[int, str]:
    # http.client, not urllib: no proxy variable may send a loopback request elsewhere.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


@pytest.fixture
def server_in_chroot(builds: Builds, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, int]]:
    archive = read_archive(builds.archive("server"))
    need_chroot()
    root = extract_layer(archive, tmp_path / "rootfs")
    http_port, tcp_port = _free_port(), _free_port()
    proc = subprocess.Popen(
        ["chroot", "--userspec=65532:65532", str(root), "/server", "-listen", f"127.0.0.1:{http_port}", "-tcp", f"127.0.0.1:{tcp_port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", http_port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out, err = proc.communicate(timeout=5)
                    pytest.fail(f"server did not start (rc {proc.returncode}):\n{out}\n{err}")
                time.sleep(0.05)
        yield proc, http_port, tcp_port
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_server_binary_serves_in_chroot(server_in_chroot: tuple[subprocess.Popen[str], int, int]) -> None:
    proc, http_port, tcp_port = server_in_chroot
    assert _get(http_port, "/") == (200, "ok\n")
    assert _get(http_port, "/healthz")[0] == 200
    assert _get(http_port, "/status/503")[0] == 503
    assert _get(http_port, "/nothing-here")[0] == 404

    # The -tcp listener accepts and closes: the peer sees end of stream at once.
    with socket.create_connection(("127.0.0.1", tcp_port), timeout=10) as conn:
        conn.settimeout(10)
        assert conn.recv(16) == b""

    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert any(line.startswith("http GET / 200 ") for line in lines), out
    assert any(line.startswith("http GET /status/503 503 ") for line in lines), out
    assert any(line.startswith(f"tcp 127.0.0.1:{tcp_port} accepted 127.0.0.1:") for line in lines), out
