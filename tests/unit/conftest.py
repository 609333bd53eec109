"""Shared pytest configuration for the collection's unit tests (run by hack/unit.sh).

hack/unit.sh puts a tree on PYTHONPATH (and ANSIBLE_COLLECTIONS_PATH) in which this repository
is importable as ``ansible_collections.kubedebug.ephemeral``; unit tests import plugin code from
there, through Ansible's collection loader as ansible-test does.

Recorded API objects live in ``fixtures/`` (see fixtures/README.md for how they were
captured) and are loaded by ``api_objects.py``, which test modules import directly (a
conftest.py is not a module to import from). Every fixture below hands out a fresh deep
copy, so a test may edit what it gets without affecting any other test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from ansible.plugins.loader import init_plugin_loader
from ansible.utils.collection_loader import AnsibleCollectionConfig

# Ansible's collection loader must own ansible_collections.* before the first import of the
# collection, or the lookup loader cannot read its meta/runtime.yml (tests/unit/plugins/lookup
# loads the lookup as a play would). ansible-test units installs its own first.
if AnsibleCollectionConfig.collection_finder is None:
    init_plugin_loader()

from ansible_collections.kubedebug.ephemeral.tests.unit.api_objects import load_pod, load_status  # noqa: E402


@pytest.fixture
def pod_fixture() -> Callable[[str], dict[str, Any]]:
    """Load any recorded pod by name: ``pod_fixture("plain")``."""
    return load_pod


@pytest.fixture
def status_fixture() -> Callable[[str], dict[str, Any]]:
    """Load any recorded API error by name: ``status_fixture("rbac-list")``."""
    return load_status


@pytest.fixture
def plain_pod() -> dict[str, Any]:
    """Running pod with one container ``app``."""
    return load_pod("plain")


@pytest.fixture
def volumes_pod() -> dict[str, Any]:
    """Running pod with containers ``app`` and ``sidecar``, init container ``init``, volumes and a subPath mount."""
    return load_pod("with-volumes")


@pytest.fixture
def debugged_pod() -> dict[str, Any]:
    """Running pod to which ``kubectl debug -c debug --target=app --profile=general`` added ``debug``."""
    return load_pod("debugged")


@pytest.fixture
def latest_digest_pod() -> dict[str, Any]:
    """Like ``debugged_pod`` but the image was ``busybox:latest@sha256:...`` (the server defaulted Always)."""
    return load_pod("debugged-latest-digest")


@pytest.fixture
def states_pod() -> dict[str, Any]:
    """Pod with ephemeral containers terminated (``exited``), waiting (``pull-fail``) and running (``fresh``)."""
    return load_pod("ephemeral-states")


@pytest.fixture
def states_early_pod() -> dict[str, Any]:
    """The same pod moments after the adds: ``exited`` is ContainerCreating, the others have no status yet."""
    return load_pod("ephemeral-states-early")


@pytest.fixture
def windows_pod() -> dict[str, Any]:
    """Running pod with ``spec.os.name: windows``."""
    return load_pod("windows")


@pytest.fixture
def mirror_pod() -> dict[str, Any]:
    """Mirror pod: ``kubernetes.io/config.mirror`` annotation, owned by a Node, ``nodeName`` set."""
    return load_pod("mirror")


@pytest.fixture
def succeeded_pod() -> dict[str, Any]:
    """A Job's pod that finished: phase Succeeded."""
    return load_pod("succeeded")


@pytest.fixture
def terminating_pod() -> dict[str, Any]:
    """Running pod held by a finalizer after deletion: ``deletionTimestamp`` set."""
    return load_pod("terminating")
