"""Consistency checks between galaxy.yml, meta/runtime.yml and the plugin tree."""

from __future__ import annotations

import pathlib
import re

import pytest
import yaml
from ansible.release import __version__ as ansible_version
from ansible.utils.version import SemanticVersion
from packaging.specifiers import SpecifierSet
from packaging.version import Version

import ansible_collections.kubedebug.ephemeral as collection

# Galaxy's rules for namespace, name and tags.
GALAXY_NAME = re.compile(r"^(?!_)[a-z0-9_]+$")


@pytest.fixture(scope="module")
def root() -> pathlib.Path:
    """The collection root, found through the import path hack/unit.sh sets up."""
    paths = [pathlib.Path(p).resolve() for p in collection.__path__]
    assert len(paths) == 1, f"ansible_collections.kubedebug.ephemeral is importable from several trees: {paths}"
    assert (paths[0] / "galaxy.yml").is_file()
    return paths[0]


@pytest.fixture(scope="module")
def galaxy(root: pathlib.Path) -> dict:
    return yaml.safe_load((root / "galaxy.yml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def runtime(root: pathlib.Path) -> dict:
    return yaml.safe_load((root / "meta" / "runtime.yml").read_text(encoding="utf-8"))


def test_identity_matches_import_path(galaxy: dict) -> None:
    assert collection.__name__ == f"ansible_collections.{galaxy['namespace']}.{galaxy['name']}"
    assert GALAXY_NAME.match(galaxy["namespace"]) and GALAXY_NAME.match(galaxy["name"])


def test_version_is_semver(galaxy: dict) -> None:
    # Galaxy rejects versions that are not semver (X.Y.Z[-pre][+build]).
    assert isinstance(galaxy["version"], str)
    version = SemanticVersion(galaxy["version"])
    assert version.vstring == galaxy["version"]
    assert version.major >= 0 and version.minor >= 0 and version.patch >= 0


def test_galaxy_fields(root: pathlib.Path, galaxy: dict) -> None:
    assert (root / galaxy["readme"]).is_file(), "ansible-galaxy collection build needs the readme"
    assert galaxy["license"] == ["GPL-3.0-or-later"]
    assert "license_file" not in galaxy, "galaxy.yml may set license or license_file, not both"
    assert galaxy["authors"]
    assert galaxy["description"].strip()
    tags = galaxy["tags"]
    assert 0 < len(tags) <= 20 and len(set(tags)) == len(tags)
    for tag in tags:
        assert GALAXY_NAME.match(tag) and len(tag) <= 64, tag
    for key in ("repository", "documentation", "homepage", "issues"):
        assert galaxy[key].startswith("https://"), key


def test_build_ignore_keeps_dev_files_out(galaxy: dict) -> None:
    ignored = set(galaxy["build_ignore"])
    assert {".cache", "hack", "Makefile", "tests/output", "*.tar.gz"} <= ignored


def test_requires_ansible_admits_this_controller(runtime: dict) -> None:
    spec = SpecifierSet(runtime["requires_ansible"])
    assert Version("2.16.0") in spec
    # Both controller profiles (ansible-core 2.19 and newest) must be supported.
    assert Version(ansible_version) in spec, f"ansible-core {ansible_version} not in {spec}"


def test_k8s_action_group(root: pathlib.Path, runtime: dict) -> None:
    groups = runtime["action_groups"]
    assert isinstance(groups["k8s"], list)
    modules = root / "plugins" / "modules"
    for entry in groups["k8s"]:
        assert isinstance(entry, str), "metadata entries (extend_group) are not used in this collection"
        # Entries are short module names of this collection, or their FQCNs.
        name = entry.removeprefix("kubedebug.ephemeral.")
        assert "." not in name, f"{entry}: only this collection's modules belong in the k8s group"
        assert (modules / f"{name}.py").is_file(), f"{entry}: no plugins/modules/{name}.py"
