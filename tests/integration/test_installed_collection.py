"""The collection as users get it: built into a tarball, installed, and run by its FQCN from a clean controller.

``ansible-galaxy collection build`` makes the tarball of this checkout (its content is checked against galaxy.yml's
``build_ignore``), ``ansible-galaxy collection install --offline --no-deps`` puts it into a temporary collections
directory, and ``ansible-playbook kubedebug.ephemeral.incident_response`` / ``.fleet_diagnostics`` run from another
temporary directory with only that collections directory configured: the checkout, ANSIBLE_HOME and site-packages are
out of sight. The reports must land under that working directory (``kubedebug-reports/``, the playbooks' default),
never in the installed collection, which must not change at all (in an execution environment it is read-only).

Controllers: ``floor``, the clean virtualenv of hack/venv.sh floor (only the oldest ansible-core and kubernetes
client the collection claims, meta/runtime.yml and plugins/module_utils/_auth.py; modules run with its Python, so with
that kubernetes client), and ``running``, the venv of this pytest (stable or latest).

Simulated by KWOK: no container process runs. The dns recipe's exact command is run for real on the test host first
and its output served as the debug containers' logs (kubehelpers.prepare_recipe), as in test_playbooks.py, whose pods
(two web pods for the incident, a small fleet of web pods plus a db pod per namespace) these runs use.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_playbooks import create_fleet, two_cluster_inventory

from kubehelpers import Cluster, prepare_recipe, recipe_command

ROOT = Path(__file__).resolve().parents[2]
GALAXY = yaml.safe_load((ROOT / "galaxy.yml").read_text(encoding="utf-8"))
FQCN = f"{GALAXY['namespace']}.{GALAXY['name']}"
TARBALL = f"{GALAXY['namespace']}-{GALAXY['name']}-{GALAXY['version']}.tar.gz"
# What ansible-galaxy leaves out whatever build_ignore says (its own defaults): never in a tarball either.
ALWAYS_IGNORED = [".git", "__pycache__", "*/__pycache__", "*.pyc", "*.retry", "tests/output"]
REQUIRED = [
    "MANIFEST.json", "FILES.json", "COPYING", "README.md", "meta/runtime.yml", "meta/execution-environment.yml",
    "plugins/modules/ephemeral_container.py", "plugins/action/incident_plan.py", "plugins/action/report_files.py",
    "plugins/module_utils/_auth.py", "plugins/plugin_utils/_recipes.py", "plugins/filter/split_list.py",
    "roles/incident_snapshot/tasks/main.yml", "roles/recipe/tasks/dns.yml",
    "playbooks/incident_response.yml", "playbooks/fleet_diagnostics.yml", "playbooks/templates/fleet_report.html.j2",
]  # fmt: skip
DEFAULT_REPORTS = "kubedebug-reports"
# Caches and development-only paths build_ignore must list (and so keep out of the tarball).
MUST_BE_IGNORED = [
    ".cache", ".ansible", ".ci", "hack", "bench", "tests/output", ".pytest_cache", "tests/unit/.pytest_cache", ".ruff_cache",
    ".mypy_cache", ".hypothesis", ".coverage", "changelogs/.plugin-cache.yaml", "plugins/filter/__pycache__", "plugins/filter/x.pyc",
    "Makefile", "pyproject.toml", ".ansible-lint", ".yamllint", "kubedebug-ephemeral-0.0.1.tar.gz",
]  # fmt: skip


def controller_bin(name: str) -> Path:
    """The bin/ directory of a controller: the floor venv, or this pytest's own."""
    if name == "running":
        return Path(sys.executable).parent
    venv = ROOT / ".cache" / "venv" / name
    if not (venv / "bin" / "ansible-playbook").exists() or not (venv / "bin" / "python").exists():
        pytest.fail(f"the {name} controller venv is missing ({venv}): run `bash hack/venv.sh {name}` first")
    return venv / "bin"


def clean_env(tmp_path: Path, collections: Path, python: Path) -> dict[str, str]:
    """This process's environment without any Ansible, Kubernetes client or Python path setting of hack/lib.sh:
    only ``collections``, nothing of the checkout, ANSIBLE_HOME in tmp."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "K8S_AUTH_")) and k not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")}
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": str(collections),
        "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        "ANSIBLE_PYTHON_INTERPRETER": str(python),
        "ANSIBLE_NOCOLOR": "1",
        # Python's own bytecode cache: the controller imports the collection's action, filter and lookup plugins and
        # would write plugins/*/__pycache__/ into the installed collection (silently skipped where it cannot write, as
        # in a read-only execution environment). Off, so that any change found there is one the playbooks made.
        "PYTHONDONTWRITEBYTECODE": "1",
    })  # fmt: skip
    return env


def run(cmd: list[str], env: dict[str, str], cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout, check=False)


def ignored(path: str, patterns: list[str]) -> str | None:
    """The pattern that ``path`` (or one of its parent directories) matches, the way ansible-galaxy matches them:
    fnmatch on the path from the collection root."""
    parts = path.strip("/").split("/")
    for depth in range(1, len(parts) + 1):
        prefix = "/".join(parts[:depth])
        for pattern in patterns:
            if fnmatch.fnmatch(prefix, pattern):
                return pattern
    return None


def members(tarball: Path) -> list[str]:
    with tarfile.open(tarball) as tar:
        return [m.name.rstrip("/") for m in tar.getmembers()]


def listing(tree: Path) -> dict[str, tuple[Any, ...]]:
    """Every file and directory under ``tree``: type, mode, size, mtime and content hash."""
    out: dict[str, tuple[Any, ...]] = {}
    for path in sorted(tree.rglob("*")):
        st = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() and not path.is_symlink() else ""
        out[str(path.relative_to(tree))] = (path.is_dir(), st.st_mode, st.st_size if not path.is_dir() else 0, st.st_mtime_ns, digest)
    return out


def build(bin_dir: Path, env: dict[str, str], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    done = run([str(bin_dir / "ansible-galaxy"), "collection", "build", str(ROOT), "--output-path", str(out)], env, out)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out / TARBALL


def check_tarball(tarball: Path) -> list[str]:
    names = members(tarball)
    assert not [n for n in REQUIRED if n not in names], f"missing from {tarball.name}: {[n for n in REQUIRED if n not in names]}"
    assert any(n.startswith("roles/") for n in names) and any(n.startswith("plugins/") for n in names)
    patterns = list(GALAXY["build_ignore"]) + ALWAYS_IGNORED
    leaked = {n: ignored(n, patterns) for n in names if ignored(n, patterns)}
    assert not leaked, f"{tarball.name} holds paths galaxy.yml's build_ignore keeps out: {leaked}"
    # Whatever tests and tools leave in the checkout (caches, reports) is not ours to ship: only files git tracks.
    tracked = set(subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached"], capture_output=True, check=True).stdout.decode().split("\0"))
    with tarfile.open(tarball) as tar:
        untracked = sorted(m.name for m in tar.getmembers() if m.isfile() and m.name not in tracked and m.name not in ("MANIFEST.json", "FILES.json"))
    assert not untracked, f"{tarball.name} holds files git does not track (add them to build_ignore): {untracked[:20]}"
    # The patterns matter here: these are in the checkout the tarball is built from.
    for present in (".cache", "hack", "bench", ".ci"):
        assert (ROOT / present).exists(), present
    return names


@pytest.fixture(params=["floor", "running"])
def controller(request: pytest.FixtureRequest) -> Path:
    return controller_bin(request.param)


def test_installed_collection_runs_the_playbooks_and_writes_reports_under_the_working_directory(
    controller: Path, cluster: Cluster, namespace_factory: Any, tmp_path: Path
) -> None:
    timings: dict[str, float] = {}
    started = time.monotonic()
    python = controller / "python"
    collections = tmp_path / "collections"
    work = tmp_path / "work"
    work.mkdir()
    env = clean_env(tmp_path, collections, python)

    tarball = build(controller, env, tmp_path / "dist")
    check_tarball(tarball)
    timings["build"] = time.monotonic() - started

    mark = time.monotonic()
    done = run([str(controller / "ansible-galaxy"), "collection", "install", str(tarball), "-p", str(collections), "--offline", "--no-deps"], env, work)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    installed = collections / "ansible_collections" / GALAXY["namespace"] / GALAXY["name"]
    assert (installed / "MANIFEST.json").is_file() and (installed / "COPYING").is_file()
    with tarfile.open(tarball) as tar:
        packed = {m.name for m in tar.getmembers() if m.isfile()}
    assert {str(p.relative_to(installed)) for p in installed.rglob("*") if p.is_file()} == packed
    # Only the installed collection is visible to this controller.
    listed = run([str(controller / "ansible-galaxy"), "collection", "list", FQCN], env, work)
    assert listed.returncode == 0 and f"# {collections / 'ansible_collections'}" in listed.stdout, listed.stdout + listed.stderr
    assert listed.stdout.count(FQCN) == 1 and str(ROOT) not in listed.stdout, listed.stdout
    before = listing(collections)
    timings["install"] = time.monotonic() - mark

    # The incident: two web pods, the dns recipe (test_playbooks.py's test_incident_response_bundle, one recipe).
    ns = namespace_factory()
    for name in ("web-0", "web-1"):
        cluster.core.create_namespaced_pod(ns, {
            "metadata": {"name": name, "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "app", "image": "gcr.io/distroless/static-debian12:nonroot"}]},
        })  # fmt: skip
    cluster.kubectl_run("wait", "-n", ns, "--for=jsonpath={.status.phase}=Running", "pod", "--all", "--timeout=120s")
    run_id = "inc-77"  # of the reason INC-77
    _output, code = prepare_recipe(cluster, [(ns, "web-0"), (ns, "web-1")], f"kd-dns-{run_id}", recipe_command("dns", ["localhost"]), tmp_path)
    incident = {
        "kd_namespace": ns, "kd_label_selector": "app=web", "kd_reason": "INC-77", "kd_recipes": ["dns"], "kd_dns_names": ["localhost"],
        "kd_auth": {"kubeconfig": cluster.kubeconfig}, "kd_debug_env": {"KWOK_EXIT_CODE": str(code)},
    }  # fmt: skip
    playbook = [str(controller / "ansible-playbook"), "-vv"]
    mark = time.monotonic()
    proc = run([*playbook, f"{FQCN}.incident_response", "-e", json.dumps(incident)], env, work)
    timings["incident_response"] = time.monotonic() - mark
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    check_from_installed(proc.stdout, installed)
    bundle = work / DEFAULT_REPORTS / "incidents" / run_id
    report = json.loads((bundle / "report.json").read_text())
    assert (report["incident"]["run_id"], [p["pod"] for p in report["pods"]]) == (run_id, ["web-0", "web-1"])
    assert (bundle / "report.md").is_file() and (bundle / "report.html").is_file()
    assert f"Incident bundle: {bundle}/report.html" in proc.stdout, proc.stdout[-3000:]

    # The same incident again (no container is added), into an explicit relative kd_output_dir: from the working directory.
    mark = time.monotonic()
    proc = run([*playbook, f"{FQCN}.incident_response", "-e", json.dumps({**incident, "kd_output_dir": "reports/mine"})], env, work)
    timings["incident_response_relative"] = time.monotonic() - mark
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    mine = work / "reports" / "mine" / run_id
    assert json.loads((mine / "report.json").read_text())["incident"]["run_id"] == run_id
    assert f"Incident bundle: {mine}/report.html" in proc.stdout, proc.stdout[-3000:]

    # The fleet: web pods and a db pod in one namespace of one "cluster" (test_playbooks.py's inventory and pods).
    fleet_ns = namespace_factory()
    pods = create_fleet(cluster, [fleet_ns], 4)
    fleet_run = "sweep-installed"
    _output, code = prepare_recipe(cluster, pods, f"kd-dns-{fleet_run}", recipe_command("dns", ["localhost"]), tmp_path)
    inventory = two_cluster_inventory(cluster, tmp_path, {"cluster-a": [fleet_ns]})
    fleet = {
        "kd_label_selector": "app=web", "kd_recipe": "dns", "kd_run_id": fleet_run, "kd_dns_names": ["localhost"],
        "kd_debug_env": {"KWOK_EXIT_CODE": str(code)}, "kd_wait_timeout": 120,
    }  # fmt: skip
    mark = time.monotonic()
    proc = run([*playbook, "-i", inventory, f"{FQCN}.fleet_diagnostics", "-e", json.dumps(fleet)], env, work)
    timings["fleet_diagnostics"] = time.monotonic() - mark
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    check_from_installed(proc.stdout, installed)
    report_dir = work / DEFAULT_REPORTS / "fleet" / f"fleet-{fleet_run}"
    summary = json.loads((report_dir / "summary.json").read_text())
    assert (summary["pods"], summary["clusters"]) == (4, ["cluster-a"])
    assert "<svg" in (report_dir / "report.html").read_text()
    assert f"Report: {report_dir}/report.html" in proc.stdout, proc.stdout[-3000:]

    # Nothing was written into, or changed in, the installed collection.
    after = listing(collections)
    added, removed = sorted(set(after) - set(before)), sorted(set(before) - set(after))
    changed = sorted(p for p in set(before) & set(after) if before[p] != after[p])
    assert (added, removed, changed) == ([], [], []), f"the runs changed the installed collection: added {added}, removed {removed}, changed {changed}"
    assert sorted(p.name for p in work.iterdir()) == sorted([DEFAULT_REPORTS, "reports"])
    timings["total"] = time.monotonic() - started
    print(f"\n[{controller}] timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))


def check_from_installed(stdout: str, installed: Path) -> None:
    """Every task path ansible-playbook -vv shows is in the installed collection (or ansible-core's own)."""
    paths = re.findall(r"^task path: (\S+?):\d+$", stdout, re.M)
    assert paths, stdout[:3000]
    assert all(p.startswith(f"{installed}/") for p in paths), sorted({p for p in paths if not p.startswith(f"{installed}/")})
    assert any("/roles/" in p for p in paths) and any("/playbooks/" in p for p in paths)


def test_build_ignore_keeps_out_every_pattern_it_lists(tmp_path: Path) -> None:
    """Each build_ignore pattern really keeps out what it names: a copy of the checkout's files (tracked and untracked,
    not git-ignored) with a stand-in for each pattern, built by this controller's ansible-galaxy."""
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, check=True).stdout.decode().split("\0")  # fmt: skip
    src = tmp_path / "src"
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    assert not [p for p in MUST_BE_IGNORED if not ignored(p, GALAXY["build_ignore"])], "galaxy.yml's build_ignore lacks these"
    planted = []
    for pattern in GALAXY["build_ignore"]:
        stand_in = pattern.replace("*/", "plugins/filter/", 1) if pattern.startswith("*/") else pattern
        stand_in = stand_in.replace("*", "kd-stand-in")
        path = src / stand_in
        if not path.exists():
            if "." in path.name.lstrip("."):
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("stand-in\n")
            else:
                path.mkdir(parents=True)
                (path / "kd-stand-in.txt").write_text("stand-in\n")
        assert ignored(stand_in, [pattern]) == pattern, (stand_in, pattern)
        planted.append(stand_in)
    env = clean_env(tmp_path, tmp_path / "collections", Path(sys.executable))
    out = tmp_path / "dist"
    out.mkdir()
    done = run([str(Path(sys.executable).parent / "ansible-galaxy"), "collection", "build", str(src), "--output-path", str(out)], env, out)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    names = members(out / TARBALL)
    leaked = [n for n in names if any(n == p or n.startswith(p + "/") for p in planted)]
    assert not leaked, f"build_ignore did not keep these out: {leaked}"
    assert "COPYING" in names and "playbooks/incident_response.yml" in names
