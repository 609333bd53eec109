# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""playbooks/awx/execution-environment.yml and meta/execution-environment.yml, through ansible-builder itself.

``ansible-builder create`` writes the build context (Containerfile, the galaxy requirements, its scripts) without a
container engine; ``ansible-builder introspect`` reads what an installed collection asks of an EE, as the image's
builder stage does. Nothing here touches the network: the collection is built from this checkout and installed
from the tarball with ``--offline --no-deps``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
EE_FILE = ROOT / "playbooks" / "awx" / "execution-environment.yml"
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{name} is not in this venv ({BIN}): it is pinned in tests/requirements-<profile>.txt, run bash hack/venv.sh <profile>")
    return str(path)


def run(*cmd: str, cwd: Path | None = None) -> str:
    # Not the checkout hack/unit.sh puts on ANSIBLE_COLLECTIONS_PATH: ansible-galaxy would find the collection there
    # and install nothing ("already installed").
    env = {k: v for k, v in os.environ.items() if k != "ANSIBLE_COLLECTIONS_PATH"}
    env["ANSIBLE_COLLECTIONS_SCAN_SYS_PATH"] = "false"
    proc = subprocess.run(list(cmd), capture_output=True, text=True, cwd=cwd, env=env, timeout=300, check=False)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def create(definition: Path, context: Path) -> Path:
    run(tool("ansible-builder"), "create", "-f", str(definition), "-c", str(context), "--output-filename", "Containerfile")
    return context


@pytest.fixture(scope="module")
def galaxy() -> dict:
    return yaml.safe_load((ROOT / "galaxy.yml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory, galaxy: dict) -> Path:
    """The collection as ``ansible-galaxy collection build`` makes it of this checkout."""
    out = tmp_path_factory.mktemp("build")
    run(tool("ansible-galaxy"), "collection", "build", str(ROOT), "--output-path", str(out))
    built = out / f"{galaxy['namespace']}-{galaxy['name']}-{galaxy['version']}.tar.gz"
    assert built.is_file(), sorted(out.iterdir())
    return built


def test_create_writes_a_valid_context(tmp_path: Path) -> None:
    spec = yaml.safe_load(EE_FILE.read_text(encoding="utf-8"))
    context = create(EE_FILE, tmp_path / "context")
    containerfile = (context / "Containerfile").read_text()
    base = spec["images"]["base_image"]["name"]
    assert f'ARG EE_BASE_IMAGE="{base}"' in containerfile and "FROM $EE_BASE_IMAGE AS base" in containerfile
    deps = spec["dependencies"]
    # The interpreter, ansible-core and ansible-runner the definition pins, as the image installs them.
    assert f'ARG PYCMD="{deps["python_interpreter"]["python_path"]}"' in containerfile
    assert f'ARG PYPKG="{deps["python_interpreter"]["package_system"]}"' in containerfile
    refs = re.search(r'^ARG ANSIBLE_INSTALL_REFS="(.*)"$', containerfile, re.M)
    assert refs, containerfile
    assert refs.group(1).split() == [deps["ansible_core"]["package_pip"], deps["ansible_runner"]["package_pip"]]
    assert re.fullmatch(r"ansible-core>=2\.\d+,<2\.\d+", deps["ansible_core"]["package_pip"])
    # The galaxy stage installs the collection from these requirements; the builder stage introspects it for the
    # collection's own Python and system requirements (nothing is listed for it in the definition).
    requirements = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    assert [c["name"] for c in requirements["collections"]] == ["kubedebug.ephemeral"]
    assert "ansible-galaxy collection install $ANSIBLE_GALAXY_CLI_COLLECTION_OPTS -r requirements.yml" in containerfile
    assert "introspect.py introspect" in containerfile
    for script in ("introspect.py", "assemble", "install-from-bindep", "check_ansible", "check_galaxy", "entrypoint"):
        assert (context / "_build" / "scripts" / script).is_file(), script
    assert "kubernetes" not in containerfile  # it comes from the collection's meta/execution-environment.yml


def test_the_collection_declares_the_kubernetes_client_for_an_ee(tarball: Path, tmp_path: Path) -> None:
    meta = yaml.safe_load((ROOT / "meta" / "execution-environment.yml").read_text(encoding="utf-8"))
    assert meta["version"] == 1
    # Paths in it are relative to the collection's root, as introspect reads them.
    for kind in ("python", "system"):
        assert (ROOT / meta["dependencies"][kind]).is_file(), meta["dependencies"][kind]
    collections = tmp_path / "collections"
    run(tool("ansible-galaxy"), "collection", "install", str(tarball), "-p", str(collections), "--offline", "--no-deps")
    pip, bindep = tmp_path / "requirements.txt", tmp_path / "bindep.txt"
    # What the image's builder stage runs (introspect.py introspect --write-bindep --write-pip) over /usr/share/ansible.
    run(tool("ansible-builder"), "introspect", "--sanitize", "--write-pip", str(pip), "--write-bindep", str(bindep), str(collections))
    lines = [line.split("#")[0].strip() for line in pip.read_text().splitlines() if line.split("#")[0].strip()]
    # The floor of plugins/module_utils/_auth.py's check, and the one tests/requirements-floor.txt installs.
    floor = re.search(r"^kubernetes==(\S+)$", (ROOT / "tests" / "requirements-floor.txt").read_text(), re.M)
    assert floor, "tests/requirements-floor.txt pins kubernetes"
    assert lines == [f"kubernetes>={floor.group(1)}"], pip.read_text()
    assert "from collection kubedebug.ephemeral" in pip.read_text()
    assert not bindep.exists()  # no system packages: introspect writes no bindep file


def tarball_variant(definition: str) -> str:
    """The definition with the tarball form its comments describe in place of the Galaxy entry."""
    lines = definition.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- name: kubedebug.ephemeral")
    assert lines[start + 1].strip().startswith("version:"), "the Galaxy entry is name + version"
    uncomment = []
    for i, line in enumerate(lines):
        if re.match(r"^ +# - name: collections/.*\.tar\.gz$", line) or (uncomment and uncomment[-1] == i - 1 and "#   type: file" in line):
            uncomment.append(i)
    block = next(i for i, line in enumerate(lines) if line == "# additional_build_files:")
    uncomment += range(block, len(lines))
    out = []
    for i, line in enumerate(lines):
        if i in (start, start + 1):
            continue
        if i in uncomment:
            line = re.sub(r"^( *)# ?", r"\1", line, count=1)
        out.append(line)
    return "\n".join(out) + "\n"


def test_the_tarball_form_in_the_comments_installs_the_built_collection(tarball: Path, tmp_path: Path) -> None:
    # Laid out as in a checkout: the definition in playbooks/awx/, the tarball at the root.
    definition = tmp_path / "playbooks" / "awx" / "execution-environment.yml"
    definition.parent.mkdir(parents=True)
    definition.write_text(tarball_variant(EE_FILE.read_text(encoding="utf-8")))
    spec = yaml.safe_load(definition.read_text())
    (tmp_path / tarball.name).write_bytes(tarball.read_bytes())
    assert spec["dependencies"]["galaxy"]["collections"] == [{"name": f"collections/{tarball.name}", "type": "file"}], (
        "the comments of playbooks/awx/execution-environment.yml name another tarball than galaxy.yml's version builds"
    )
    context = create(definition, tmp_path / "context")
    build = context / "_build"
    assert (build / "collections" / tarball.name).read_bytes() == tarball.read_bytes()
    # What the image's galaxy stage runs in /build (COPY _build /build; WORKDIR /build), here without Galaxy.
    installed = tmp_path / "usr-share-ansible-collections"
    run(tool("ansible-galaxy"), "collection", "install", "-r", "requirements.yml", "--collections-path", str(installed), "--offline", "--no-deps", cwd=build)
    manifest = installed / "ansible_collections" / "kubedebug" / "ephemeral" / "MANIFEST.json"
    assert manifest.is_file()
