"""Build the kd.local/* test images as OCI image layout archives, without a registry or docker.

    python3 hack/images/build_images.py --out DIR [--only NAME ...] [--py-spy PATH] [--cache DIR]

writes ``DIR/<name>.tar`` per image and prints ``<ref> <path>`` per image on stdout; a node
script loads them with ``ctr -n k8s.io images import --platform linux/amd64 <tar>``. The
images and where their contents come from are described in hack/images/README.md.

Every image is one uncompressed layer assembled in memory from host files, so it is
reproducible: entries sorted, mtime 0, numeric owners (root unless a path belongs to the
image's user), GNU tar headers (never pax, which would carry times). The same inputs
give byte-identical archives and digests. ``DIR/<name>.inputs`` holds a hash of all
inputs (every file's content, modes, owners, the image config and this script); when
it matches, the archive is left as it is.

Missing inputs (a package not installed, a source file gone) end the run with a
message saying what is missing and the command that provides it, and exit status 2;
a failing build step (compiler error, ...) with its output and exit status 1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import posixpath
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
REGISTRY = "kd.local"

# Bumped by hand when the archive layout changes in a way the inputs hash cannot see.
FORMAT_VERSION = "1"

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
JAVA_HOME = "/usr/lib/jvm/java-17-openjdk-amd64"
PYTHON = "/usr/bin/python3.11"
PYTHON_LIB = "/usr/lib/python3.11"
# Used only if tests/requirements-stable.txt does not pin py-spy (it does: one version everywhere).
PY_SPY_FALLBACK_VERSION = "0.4.1"

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"


class InputError(Exception):
    """An input is missing; the message names it and says how to get it."""


class BuildError(Exception):
    """A build step failed; the message carries its output."""


def note(message: str) -> None:
    # stdout is the machine-readable "<ref> <path>" list: everything else goes to stderr.
    print(f"build_images: {message}", file=sys.stderr)


# --- the image filesystem -------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One path of the layer. Files come from a host path or from bytes."""

    kind: str  # "dir", "file" or "symlink"
    mode: int
    uid: int = 0
    gid: int = 0
    source: Path | None = None
    data: bytes | None = None
    target: str = ""


def _norm(path: str) -> str:
    if not path.startswith("/"):
        raise BuildError(f"image paths are absolute, not {path!r}")
    normal = posixpath.normpath(path)
    # normpath keeps a leading "//" (POSIX allows it to mean something else); images do not.
    return "/" + normal.lstrip("/")


class Rootfs:
    """The contents of an image's single layer, keyed by absolute path."""

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}

    def copy(self) -> Rootfs:
        clone = Rootfs()
        clone.entries = dict(self.entries)
        return clone

    def _parents(self, path: str) -> None:
        parent = posixpath.dirname(path)
        if parent == "/":
            return
        existing = self.entries.get(parent)
        if existing is None:
            self._parents(parent)
            self.entries[parent] = Entry("dir", 0o755)
        elif existing.kind != "dir":
            # A symlinked directory in the image would silently redirect what is added below it.
            raise BuildError(f"cannot add {path}: {parent} is a {existing.kind} in the image")

    def _put(self, path: str, entry: Entry) -> None:
        path = _norm(path)
        if path == "/":
            raise BuildError("the image root is not an entry")
        existing = self.entries.get(path)
        if existing is not None and existing.kind == "dir" and entry.kind != "dir":
            raise BuildError(f"cannot replace directory {path} with a {entry.kind}")
        self._parents(path)
        self.entries[path] = entry

    def mkdir(self, path: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> None:
        self._put(path, Entry("dir", mode, uid, gid))

    def add_bytes(self, path: str, data: bytes, mode: int = 0o644, uid: int = 0, gid: int = 0) -> None:
        self._put(path, Entry("file", mode, uid, gid, data=data))

    def add_file(self, path: str, source: Path, mode: int | None = None) -> None:
        """A regular file with the content of host ``source`` (symlinks followed)."""
        try:
            st = source.stat()
        except OSError as exc:
            raise InputError(f"{source}: {exc.strerror}") from None
        if not stat.S_ISREG(st.st_mode):
            raise BuildError(f"{source} is not a regular file")
        # Only permission bits: set-id bits of host files have no business in a test image.
        self._put(path, Entry("file", stat.S_IMODE(st.st_mode) & 0o777 if mode is None else mode, source=source))

    def symlink(self, path: str, target: str) -> None:
        self._put(path, Entry("symlink", 0o777, target=target))


def _content_digest(entry: Entry) -> str:
    h = hashlib.sha256()
    if entry.data is not None:
        h.update(entry.data)
    elif entry.source is not None:
        with entry.source.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


class _HashingWriter:
    """A write-only file object that hashes and counts what passes through it."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.out.write(data)
        self.sha256.update(data)
        self.size += len(data)
        return len(data)


def _tarinfo(name: str, entry: Entry, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode = entry.mode
    info.uid, info.gid = entry.uid, entry.gid
    info.uname = info.gname = ""
    info.mtime = 0
    if entry.kind == "dir":
        info.type = tarfile.DIRTYPE
    elif entry.kind == "symlink":
        info.type = tarfile.SYMTYPE
        info.linkname = entry.target
    else:
        info.type = tarfile.REGTYPE
        info.size = size
    return info


def write_layer(fs: Rootfs, dest: Path) -> tuple[str, int]:
    """Write the layer tar; return its sha256 (the diff_id and, uncompressed, the blob digest) and size."""
    with dest.open("wb") as raw:
        writer = _HashingWriter(raw)
        # Stream mode ("w|") needs nothing but write(); GNU format never emits pax headers.
        with tarfile.open(fileobj=writer, mode="w|", format=tarfile.GNU_FORMAT) as tar:
            for path in sorted(fs.entries):
                entry = fs.entries[path]
                name = path.lstrip("/")
                if entry.kind != "file":
                    tar.addfile(_tarinfo(name, entry))
                elif entry.data is not None:
                    tar.addfile(_tarinfo(name, entry, len(entry.data)), _BytesReader(entry.data))
                else:
                    assert entry.source is not None
                    with entry.source.open("rb") as f:
                        size = os.fstat(f.fileno()).st_size
                        tar.addfile(_tarinfo(name, entry, size), f)
    return writer.sha256.hexdigest(), writer.size


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self.data) if size < 0 else self.pos + size
        chunk = self.data[self.pos : end]
        self.pos += len(chunk)
        return chunk


# --- host commands --------------------------------------------------------------------


def run(cmd: Sequence[str | Path], *, cwd: Path | None = None, env: dict[str, str] | None = None, fix: str = "") -> str:
    """Run a command and return its stdout; a missing program is an InputError naming ``fix``."""
    argv = [str(c) for c in cmd]
    try:
        proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise InputError(f"{argv[0]} is not installed{': ' + fix if fix else ''}") from None
    if proc.returncode != 0:
        output = (proc.stderr.strip() or proc.stdout.strip())[-3000:]
        raise BuildError(f"`{' '.join(argv)}` exited with status {proc.returncode}:\n{output}")
    return proc.stdout


def require_file(path: Path, fix: str) -> Path:
    if not path.is_file():
        raise InputError(f"{path} is missing: {fix}")
    return path


def require_tool(name: str, fix: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise InputError(f"`{name}` is not on PATH: {fix}")
    return found


def is_elf(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def _file_hash(*paths: Path, extra: str = "") -> str:
    h = hashlib.sha256(extra.encode())
    for path in paths:
        h.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


# --- shared libraries -----------------------------------------------------------------

_LDD_FOUND = re.compile(r"^\s*(\S+) => (/\S+) \(0x[0-9a-f]+\)$")
_LDD_MISSING = re.compile(r"^\s*(\S+) => not found$")
_LDD_LOADER = re.compile(r"^\s*(/\S+) \(0x[0-9a-f]+\)$")


def ldd(binary: Path) -> tuple[list[str], list[str]]:
    """The libraries (and loader) ``binary`` loads, as host paths, and the names ldd could not find."""
    try:
        proc = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise InputError("ldd is not installed: apt-get install libc-bin") from None
    output = proc.stdout + proc.stderr
    if "not a dynamic executable" in output or "statically linked" in output:
        return [], []
    if proc.returncode != 0:
        raise BuildError(f"ldd {binary} failed:\n{output.strip()}")
    paths: list[str] = []
    missing: list[str] = []
    for line in proc.stdout.splitlines():
        if m := _LDD_FOUND.match(line):
            # $ORIGIN-relative runpaths show up as ".../bin/../lib/x.so": the image wants the plain path.
            paths.append(posixpath.normpath(m.group(2)))
        elif m := _LDD_MISSING.match(line):
            missing.append(m.group(1))
        elif m := _LDD_LOADER.match(line):
            paths.append(posixpath.normpath(m.group(1)))
    return paths, missing


def add_host_path(fs: Rootfs, path: str) -> None:
    """Copy a host file to the same path, recreating a chain of file symlinks (libfoo.so.1 -> libfoo.so.1.2.3).

    Directory symlinks of the host (/lib -> usr/lib on merged-/usr Debian) become real
    directories in the image: the path the loader was told about is what must exist.
    """
    seen: set[str] = set()
    while True:
        if path in seen:
            raise BuildError(f"symlink loop at {path}")
        seen.add(path)
        host = Path(path)
        if not os.path.lexists(host):
            raise InputError(f"{path} is missing on this host")
        if host.is_symlink():
            target = os.readlink(host)
            fs.symlink(path, target)
            path = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
            continue
        fs.add_file(path, host)
        return


def add_closure(fs: Rootfs, binaries: Iterable[Path], *, provided: frozenset[str] = frozenset(), optional: bool = False) -> None:
    """Add the shared libraries and the dynamic loader ``binaries`` need, each at its host path.

    ``provided`` names libraries the image has elsewhere (libjvm.so, found by the java
    launcher rather than by ldd). With ``optional`` a library the host lacks is noted and
    skipped (a JDK plugin nobody loads); otherwise it stops the build.
    """
    for binary in binaries:
        paths, missing = ldd(binary)
        for path in paths:
            if _norm(path) not in fs.entries:
                add_host_path(fs, path)
        unresolved = [name for name in missing if name not in provided]
        if unresolved and optional:
            note(f"{binary}: leaving out, as the host lacks them too: {', '.join(unresolved)}")
        elif unresolved:
            raise InputError(f"{binary} needs {', '.join(unresolved)}, which this host does not have (apt-file search {unresolved[0]})")


def add_binary(fs: Rootfs, source: Path, dest: str, *, fix: str) -> None:
    """A host ELF binary at ``dest`` with its shared-library closure, so a dynamic binary runs in the image."""
    if not source.is_file():
        raise InputError(f"{source} is missing: {fix}")
    if not is_elf(source):
        raise InputError(f"{source} is not an ELF binary (a wrapper script?): {fix}")
    fs.add_file(dest, source.resolve())
    add_closure(fs, [source])


def add_tree(fs: Rootfs, source: Path, dest: str, *, skip: Callable[[str], bool] = lambda rel: False) -> None:
    """Copy a host directory with every symlink resolved (they point outside it, e.g. into /etc).

    ``skip`` gets each path relative to ``source`` ("lib/src.zip") and leaves it out when
    true. Dangling symlinks are left out (and counted in a note).
    """
    dangling: list[str] = []

    def walk(directory: Path, rel: str, active: frozenset[str]) -> None:
        real = os.path.realpath(directory)
        if real in active:
            raise BuildError(f"directory symlink loop at {directory}")
        fs.mkdir(posixpath.join(dest, rel) if rel else dest, stat.S_IMODE(directory.stat().st_mode))
        for child in sorted(directory.iterdir()):
            child_rel = f"{rel}/{child.name}" if rel else child.name
            if skip(child_rel):
                continue
            if not child.exists():
                dangling.append(child_rel)
            elif child.is_dir():
                walk(child, child_rel, active | {real})
            elif child.is_file():
                fs.add_file(posixpath.join(dest, child_rel), child.resolve())

    walk(source, "", frozenset())
    if dangling:
        note(f"{source}: left out {len(dangling)} dangling symlink(s): {', '.join(dangling[:5])}")


# --- /etc --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    home: str = "/nonexistent"
    shell: str = "/sbin/nologin"


def add_accounts(fs: Rootfs, accounts: Sequence[Account]) -> None:
    """/etc/passwd and /etc/group, one group per user with the same name and id."""
    passwd = "".join(f"{a.name}:x:{a.uid}:{a.uid}:{a.name}:{a.home}:{a.shell}\n" for a in accounts)
    group = "".join(f"{a.name}:x:{a.uid}:\n" for a in accounts)
    fs.add_bytes("/etc/passwd", passwd.encode())
    fs.add_bytes("/etc/group", group.encode())


def base_accounts(shell: str) -> list[Account]:
    return [
        Account("root", 0, "/root", shell),
        Account("nobody", 65534),
        Account("nonroot", 65532, "/home/nonroot"),
    ]


APP_ACCOUNT = Account("app", 1000, "/home/app")


# --- images ----------------------------------------------------------------------------


@dataclass
class Image:
    name: str
    ref: str
    rootfs: Rootfs
    user: str
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    workdir: str = "/"
    env: list[str] = field(default_factory=lambda: [f"PATH={DEFAULT_PATH}"])

    def config(self, diff_id: str) -> dict[str, Any]:
        cfg: dict[str, Any] = {"User": self.user, "Env": self.env, "WorkingDir": self.workdir}
        if self.entrypoint is not None:
            cfg["Entrypoint"] = self.entrypoint
        if self.cmd is not None:
            cfg["Cmd"] = self.cmd
        # No "created" anywhere: a timestamp would make every build a new digest.
        return {
            "architecture": "amd64",
            "os": "linux",
            "config": cfg,
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
            "history": [{"created_by": f"hack/images/build_images.py {self.name}"}],
        }


@dataclass
class Context:
    out: Path
    cache: Path
    py_spy: Path | None
    _busybox: Rootfs | None = None

    @property
    def build_dir(self) -> Path:
        path = self.cache / "build"
        path.mkdir(parents=True, exist_ok=True)
        return path


def cached_build(ctx: Context, name: str, key: str, produce: Callable[[Path], None]) -> Path:
    """Run ``produce(tmpdir)`` once per key: compiled artifacts are reused while their sources stay the same."""
    final = ctx.build_dir / f"{name}-{key}"
    if final.exists():
        return final
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=ctx.build_dir))
    try:
        produce(tmp)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def build_pause(ctx: Context) -> Image:
    source = require_file(HERE / "pause.c", "it belongs to the repository (git checkout -- hack/images/pause.c)")
    gcc = require_tool("gcc", "apt-get install gcc libc6-dev")
    if not any(Path(d, "libc.a").is_file() for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib")):
        raise InputError("libc.a (for gcc -static) is missing: apt-get install libc6-dev")
    flags = ["-static", "-Os", "-Wall"]
    key = _file_hash(source, extra=run([gcc, "--version"]) + " ".join(flags))
    built = cached_build(ctx, "pause", key, lambda tmp: run([gcc, *flags, "-o", tmp / "pause", source]))
    fs = Rootfs()
    fs.add_file("/pause", built / "pause", 0o755)
    return Image("pause", f"{REGISTRY}/pause:3.10", fs, user="65535:65535", entrypoint=["/pause"])


def apt_deb(ctx: Context, package: str) -> Path:
    """The package's .deb from the cache, or downloaded into it (never installed on the host)."""
    debs = ctx.cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    cached = sorted(debs.glob(f"{package}_*.deb"))
    if cached:
        return cached[-1]
    fix = f"apt-get update && (cd {debs} && apt-get download {package})"
    require_tool("apt-get", f"a Debian/Ubuntu host is needed to fetch {package}; or put its .deb into {debs}")
    for attempt in (1, 2):
        proc = subprocess.run(["apt-get", "download", package], cwd=debs, capture_output=True, text=True, check=False)
        cached = sorted(debs.glob(f"{package}_*.deb"))
        if proc.returncode == 0 and cached:
            return cached[-1]
        # Stale or missing package lists (a fresh container) are the usual reason: refresh once.
        if attempt == 1 and "Unable to locate" in proc.stderr and os.geteuid() == 0:
            note(f"apt-get does not know {package}: running apt-get update once")
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, text=True, check=False)
            continue
        raise InputError(f"could not download the {package} package ({proc.stderr.strip()[-500:]}): {fix}")
    raise AssertionError("unreachable")


def static_busybox(ctx: Context) -> Path:
    deb = apt_deb(ctx, "busybox-static")
    require_tool("dpkg-deb", "apt-get install dpkg")
    key = hashlib.sha256(deb.read_bytes()).hexdigest()[:16]
    tree = cached_build(ctx, "busybox-static", key, lambda tmp: run(["dpkg-deb", "-x", deb, tmp]))
    binary = tree / "bin" / "busybox"
    if not is_elf(binary):
        raise InputError(f"{deb} holds no bin/busybox: delete it and rerun to download busybox-static again")
    return binary


def busybox_rootfs(ctx: Context) -> Rootfs:
    if ctx._busybox is None:
        busybox = static_busybox(ctx)
        fs = Rootfs()
        fs.add_file("/bin/busybox", busybox, 0o755)
        # The static binary itself lists its applets: the host's busybox is another build.
        for applet in run([busybox, "--list-full"]).split():
            if applet != "bin/busybox":
                fs.symlink("/" + applet, "/bin/busybox")
        add_accounts(fs, base_accounts("/bin/sh"))
        fs.mkdir("/tmp", 0o1777)
        fs.mkdir("/root", 0o700)
        fs.mkdir("/home/nonroot", 0o755, 65532, 65532)
        ctx._busybox = fs
    return ctx._busybox.copy()


def build_busybox(ctx: Context) -> Image:
    return Image("busybox", f"{REGISTRY}/busybox:1.35", busybox_rootfs(ctx), user="0", cmd=["sh"])


def _py_spy_version() -> str:
    requirements = ROOT / "tests" / "requirements-stable.txt"
    if requirements.is_file():
        if m := re.search(r"^py-spy==(\S+)", requirements.read_text(encoding="utf-8"), re.MULTILINE):
            return m.group(1)
    return PY_SPY_FALLBACK_VERSION


def find_py_spy(ctx: Context) -> Path:
    if ctx.py_spy is not None:
        if not ctx.py_spy.is_file():
            raise InputError(f"--py-spy {ctx.py_spy}: no such file")
        return ctx.py_spy
    for candidate in (ROOT / ".cache" / "venv" / "stable" / "bin" / "py-spy", shutil.which("py-spy")):
        # pyenv puts shell-script shims on PATH: only a real binary will do.
        if candidate is not None and is_elf(Path(candidate)):
            return Path(candidate)
    version = _py_spy_version()
    wheels = ctx.cache / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    found = sorted(wheels.glob(f"py_spy-{version}-*.whl"))
    if not found:
        fix = f"{sys.executable} -m pip download py-spy=={version} --no-deps --only-binary=:all: -d {wheels}"
        try:
            run([sys.executable, "-m", "pip", "download", f"py-spy=={version}", "--no-deps", "--only-binary=:all:", "-d", wheels])
        except BuildError as exc:
            raise InputError(f"py-spy is not installed and could not be downloaded ({exc}): {fix}, or pass --py-spy PATH") from None
        found = sorted(wheels.glob(f"py_spy-{version}-*.whl"))
        if not found:
            raise InputError(f"pip left no py-spy {version} wheel in {wheels}: {fix}")
    wheel = found[-1]

    def extract(tmp: Path) -> None:
        with zipfile.ZipFile(wheel) as zf:
            members = [n for n in zf.namelist() if re.fullmatch(r"[^/]+\.data/scripts/py-spy", n)]
            if not members:
                raise InputError(f"{wheel} has no *.data/scripts/py-spy: delete it and rerun")
            (tmp / "py-spy").write_bytes(zf.read(members[0]))
            (tmp / "py-spy").chmod(0o755)

    key = hashlib.sha256(wheel.read_bytes()).hexdigest()[:16]
    return cached_build(ctx, "py-spy", key, extract) / "py-spy"


def build_debug(ctx: Context) -> Image:
    # Resolved first: a bad --py-spy should fail before anything is downloaded.
    py_spy = find_py_spy(ctx)
    fs = busybox_rootfs(ctx)
    tcpdump = next((p for p in (Path("/usr/bin/tcpdump"), Path("/usr/sbin/tcpdump")) if p.is_file()), None)
    if tcpdump is None:
        raise InputError("tcpdump is not installed (/usr/bin/tcpdump): apt-get install tcpdump (or bash hack/prereqs.sh)")
    add_binary(fs, tcpdump, str(tcpdump), fix="apt-get install tcpdump")
    add_binary(fs, Path("/usr/bin/jattach"), "/usr/bin/jattach", fix="apt-get install jattach")
    add_binary(fs, py_spy, "/usr/local/bin/py-spy", fix="pass --py-spy PATH or pip install py-spy")
    # Debian's tcpdump switches to the user "tcpdump" after opening its capture and
    # refuses to run at all when that user does not exist.
    add_accounts(fs, [*base_accounts("/bin/sh"), Account("tcpdump", 101)])
    return Image("debug", f"{REGISTRY}/debug:1", fs, user="0", cmd=["sh"])


def build_server(ctx: Context) -> Image:
    src = HERE / "server"
    fix = "it belongs to the repository (git checkout -- hack/images/server)"
    main_go = require_file(src / "main.go", fix)
    go_mod = require_file(src / "go.mod", fix)
    go = require_tool("go", "install Go >= 1.26 from https://go.dev/dl (see README.md)")
    env = {
        **os.environ,
        "CGO_ENABLED": "0",
        "GOTOOLCHAIN": "local",
        "GOOS": "linux",
        "GOARCH": "amd64",
        # Neither a go.work above the repo nor GOFLAGS from the caller may change the binary.
        "GOWORK": "off",
        "GOFLAGS": "",
    }
    # -buildvcs=false: the module sits in this git checkout, and stamping its commit and
    # dirty state into the binary would change the image with every commit.
    cmd = ["build", "-trimpath", "-buildvcs=false", "-ldflags", "-s -w"]
    key = _file_hash(main_go, go_mod, extra=run([go, "version"], env=env) + " ".join(cmd))
    built = cached_build(ctx, "server", key, lambda tmp: run([go, *cmd, "-o", tmp / "server", "."], cwd=src, env=env))
    fs = Rootfs()
    fs.add_file("/server", built / "server", 0o755)
    add_accounts(fs, base_accounts("/sbin/nologin"))
    fs.mkdir("/tmp", 0o1777)
    return Image("server", f"{REGISTRY}/server:1", fs, user="65532:65532", entrypoint=["/server"])


# Not needed to run a headless program: headers, jmods and man pages of the JDK, javac's ct.sym, sources.
_JDK_SKIP = {"jmods", "include", "man", "docs", "demo", "lib/src.zip", "lib/ct.sym"}


def build_jvm_app(ctx: Context) -> Image:
    fix = "apt-get install openjdk-17-jdk-headless"
    java_home = Path(JAVA_HOME)
    java = require_file(java_home / "bin" / "java", fix)
    libjvm = require_file(java_home / "lib" / "server" / "libjvm.so", fix)
    javac = require_file(java_home / "bin" / "javac", fix)
    source = require_file(HERE / "jvm" / "Deadlock.java", "it belongs to the repository (git checkout -- hack/images/jvm)")
    key = _file_hash(source, extra=run([javac, "-version"]))
    classes = cached_build(ctx, "jvm-app", key, lambda tmp: run([javac, "--release", "17", "-d", tmp, source]))

    fs = Rootfs()
    # Symlinks resolved: conf/*, lib/jvm.cfg, lib/security/* point into /etc/java-17-openjdk,
    # which the image would not otherwise have.
    add_tree(fs, java_home, JAVA_HOME, skip=lambda rel: rel in _JDK_SKIP)
    add_closure(fs, [java, libjvm])
    # The JNI libraries are loaded after libjvm.so, which is why ldd cannot find it for them.
    add_closure(fs, sorted((java_home / "lib").glob("*.so")), provided=frozenset({"libjvm.so"}), optional=True)
    for cls in sorted(classes.glob("*.class")):
        fs.add_file(f"/app/{cls.name}", cls, 0o644)
    return app_image(
        "jvm-app",
        fs,
        entrypoint=[f"{JAVA_HOME}/bin/java", "-XX:+UseSerialGC", "-Xmx64m", "-cp", "/app", "Deadlock"],
        env=[f"PATH={JAVA_HOME}/bin:{DEFAULT_PATH}", f"JAVA_HOME={JAVA_HOME}"],
    )


def app_image(name: str, fs: Rootfs, entrypoint: list[str], env: list[str]) -> Image:
    """An application image: no shell, run from /app as the unprivileged user ``app`` (1000)."""
    add_accounts(fs, [*base_accounts("/sbin/nologin"), APP_ACCOUNT])
    # The JVM's attach socket and hsperfdata go to /tmp: jattach needs it writable.
    fs.mkdir("/tmp", 0o1777)
    fs.mkdir("/home/app", 0o755, APP_ACCOUNT.uid, APP_ACCOUNT.uid)
    return Image(name, f"{REGISTRY}/{name}:1", fs, user="1000:1000", entrypoint=entrypoint, workdir="/app", env=env)


# Tests, IDLE, Tk, ensurepip, 2to3, bytecode caches and the static-linking kit are not needed to run app.py.
_PY_SKIP_TOP = {"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "config-3.11-x86_64-linux-gnu"}
_PY_SKIP_ANY = {"__pycache__", "test", "tests", "idle_test"}


def _py_skip(rel: str) -> bool:
    parts = rel.split("/")
    return parts[0] in _PY_SKIP_TOP or any(p in _PY_SKIP_ANY for p in parts)


def build_python_app(ctx: Context) -> Image:
    fix = "apt-get install python3.11"
    python = require_file(Path(PYTHON), fix)
    require_file(Path(PYTHON_LIB) / "os.py", "apt-get install libpython3.11-stdlib")
    app = require_file(HERE / "python" / "app.py", "it belongs to the repository (git checkout -- hack/images/python)")
    fs = Rootfs()
    add_binary(fs, python, PYTHON, fix=fix)
    add_tree(fs, Path(PYTHON_LIB), PYTHON_LIB, skip=_py_skip)
    # Extension modules link libraries of their own (libssl, libffi, ...).
    add_closure(fs, sorted(Path(PYTHON_LIB, "lib-dynload").glob("*.so")), optional=True)
    fs.add_file("/app/app.py", app, 0o644)
    # The stdlib is root-owned and has no bytecode caches: do not try to write them.
    return app_image("python-app", fs, entrypoint=[PYTHON, "-u", "/app/app.py"], env=[f"PATH={DEFAULT_PATH}", "PYTHONDONTWRITEBYTECODE=1"])


BUILDERS: dict[str, Callable[[Context], Image]] = {
    "pause": build_pause,
    "busybox": build_busybox,
    "debug": build_debug,
    "server": build_server,
    "jvm-app": build_jvm_app,
    "python-app": build_python_app,
}


# --- the OCI archive -------------------------------------------------------------------


def _json(obj: Any) -> bytes:
    # Canonical form: the digests below are digests of exactly these bytes.
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def inputs_hash(image: Image) -> str:
    h = hashlib.sha256()
    h.update(FORMAT_VERSION.encode() + b"\0" + Path(__file__).read_bytes() + b"\0")
    h.update(_json({"ref": image.ref, "config": image.config("")}))
    for path in sorted(image.rootfs.entries):
        e = image.rootfs.entries[path]
        digest = _content_digest(e) if e.kind == "file" else ""
        h.update(_json([path, e.kind, e.mode, e.uid, e.gid, e.target, digest]) + b"\n")
    return h.hexdigest()


def write_archive(image: Image, dest: Path) -> str:
    """Write the OCI layout tarball to ``dest``; return the manifest digest."""
    with tempfile.TemporaryDirectory(prefix=f".{image.name}-", dir=dest.parent) as tmp:
        layer = Path(tmp) / "layer.tar"
        layer_hex, layer_size = write_layer(image.rootfs, layer)
        config = _json(image.config(layer_hex))
        config_hex = hashlib.sha256(config).hexdigest()
        manifest = _json(
            {
                "schemaVersion": 2,
                "mediaType": MEDIA_MANIFEST,
                "config": {"mediaType": MEDIA_CONFIG, "digest": f"sha256:{config_hex}", "size": len(config)},
                "layers": [{"mediaType": MEDIA_LAYER, "digest": f"sha256:{layer_hex}", "size": layer_size}],
            }
        )
        manifest_hex = hashlib.sha256(manifest).hexdigest()
        tag = image.ref.rsplit(":", 1)[1]
        index = _json(
            {
                "schemaVersion": 2,
                "mediaType": MEDIA_INDEX,
                "manifests": [
                    {
                        "mediaType": MEDIA_MANIFEST,
                        "digest": f"sha256:{manifest_hex}",
                        "size": len(manifest),
                        "platform": {"architecture": "amd64", "os": "linux"},
                        # containerd's importer names the image after io.containerd.image.name.
                        "annotations": {"io.containerd.image.name": image.ref, "org.opencontainers.image.ref.name": tag},
                    }
                ],
            }
        )
        blobs: dict[str, bytes | Path] = {config_hex: config, manifest_hex: manifest, layer_hex: layer}
        members: dict[str, bytes | Path | None] = {"blobs": None, "blobs/sha256": None}
        members.update({f"blobs/sha256/{hex_}": blob for hex_, blob in blobs.items()})
        members["index.json"] = index
        members["oci-layout"] = _json({"imageLayoutVersion": "1.0.0"})

        partial = Path(tmp) / "image.tar"
        with partial.open("wb") as raw, tarfile.open(fileobj=raw, mode="w|", format=tarfile.GNU_FORMAT) as tar:
            for name in sorted(members):
                content = members[name]
                if content is None:
                    tar.addfile(_tarinfo(name, Entry("dir", 0o755)))
                elif isinstance(content, bytes):
                    tar.addfile(_tarinfo(name, Entry("file", 0o644), len(content)), _BytesReader(content))
                else:
                    with content.open("rb") as f:
                        tar.addfile(_tarinfo(name, Entry("file", 0o644), layer_size), f)
        os.replace(partial, dest)
    return f"sha256:{manifest_hex}"


def build(ctx: Context, name: str) -> tuple[str, Path]:
    image = BUILDERS[name](ctx)
    dest = ctx.out / f"{name}.tar"
    stamp = ctx.out / f"{name}.inputs"
    digest = inputs_hash(image)
    if dest.is_file() and stamp.is_file() and stamp.read_text(encoding="utf-8").strip() == digest:
        note(f"{name}: inputs unchanged, keeping {dest}")
        return image.ref, dest
    manifest_digest = write_archive(image, dest)
    stamp.write_text(digest + "\n", encoding="utf-8")
    note(f"{name}: wrote {dest} ({dest.stat().st_size // 1024} KiB, manifest {manifest_digest})")
    return image.ref, dest


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0] if __doc__ else None)
    parser.add_argument("--out", required=True, type=Path, help="directory for <name>.tar and <name>.inputs")
    parser.add_argument("--only", nargs="+", choices=sorted(BUILDERS), metavar="NAME", help=f"build only these ({', '.join(BUILDERS)})")
    parser.add_argument("--py-spy", type=Path, help="py-spy binary for the debug image (default: the stable venv's, PATH's, or a downloaded wheel's)")
    parser.add_argument("--cache", type=Path, help="where downloads and compiled binaries are kept (default: OUT)")
    args = parser.parse_args(argv)

    out: Path = args.out.resolve()
    ctx = Context(out=out, cache=(args.cache or out).resolve(), py_spy=args.py_spy.resolve() if args.py_spy else None)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name in dict.fromkeys(args.only or BUILDERS):
            ref, path = build(ctx, name)
            print(f"{ref} {path}", flush=True)
    except InputError as exc:
        note(f"missing input: {exc}")
        return 2
    except BuildError as exc:
        note(f"build failed: {exc}")
        return 1
    except OSError as exc:
        note(f"{exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
