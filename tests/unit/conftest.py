"""Shared pytest configuration for the collection's unit tests (run by hack/unit.sh).

hack/unit.sh puts a tree on PYTHONPATH (and ANSIBLE_COLLECTIONS_PATH) in which this repository
is importable as ``ansible_collections.kubedebug.ephemeral``; unit tests import plugin code from
there, through Ansible's collection loader as ansible-test does.

Recorded API objects live in ``fixtures/`` (see fixtures/README.md for how they were
captured) and are loaded by ``api_objects.py``, which test modules import directly (a
conftest.py is not a module to import from). Every fixture below hands out a fresh deep
copy, so a test may edit what it gets without affecting any other test.

Unit tests talk to loopback only, and never to this host's resolver: ``network_guard``
(autouse) refuses, in this process, a connect or sendto to any address but loopback (and
Unix sockets) and a getaddrinfo of any name but an IP literal or ``localhost``; the test
then fails, even when the code under test swallowed the error. Subprocesses (recipe
scripts, ansible-playbook, tools) are out of its reach: the tests that run them keep to
loopback themselves, or run them in a network namespace of their own (tests/private_resolver.py).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator
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


# --- loopback only -------------------------------------------------------------------------------------------------


class NonLoopbackTraffic(OSError):
    """A unit test tried to reach something other than loopback (an OSError, as a network failure would be)."""


def _is_loopback(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    try:
        return ipaddress.ip_address(str(host).split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _is_literal(host: Any) -> bool:
    try:
        ipaddress.ip_address(str(host.decode(errors="replace") if isinstance(host, bytes) else host).split("%", 1)[0])
    except ValueError:
        return False
    return True


class NetworkGuard:
    """What ``network_guard`` refused during one test (a test of the guard itself may look and clear it)."""

    def __init__(self) -> None:
        self.refused: list[str] = []

    def refuse(self, what: str) -> NonLoopbackTraffic:
        self.refused.append(what)
        return NonLoopbackTraffic(f"unit tests only talk to loopback (tests/unit/conftest.py): {what} refused")


@pytest.fixture(autouse=True)
def network_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[NetworkGuard]:
    guard = NetworkGuard()
    real_connect, real_connect_ex, real_sendto = socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto
    real_getaddrinfo = socket.getaddrinfo

    def check(sock: socket.socket, address: Any, what: str) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            raise guard.refuse(f"{what} to {address!r}")

    def connect(self: socket.socket, address: Any) -> None:
        check(self, address, "connect")
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(self, address, "connect")
        return real_connect_ex(self, address)

    def sendto(self: socket.socket, data: Any, *args: Any) -> int:
        check(self, args[-1], "sendto")
        return real_sendto(self, data, *args)  # type: ignore[arg-type]

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        # localhost comes from /etc/hosts; any other name would ask this host's resolver.
        if host is not None and not _is_literal(host) and str(host).lower() not in ("localhost", "localhost."):
            raise guard.refuse(f"getaddrinfo of the name {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket.socket, "sendto", sendto)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield guard
    if guard.refused:
        pytest.fail(f"this test tried to leave loopback: {guard.refused}", pytrace=False)
