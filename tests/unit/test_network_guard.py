"""The unit suite's loopback-only guard (tests/unit/conftest.py, ``network_guard``) refuses what it must, and only that."""

from __future__ import annotations

import socket
import threading

import pytest


def test_loopback_is_allowed(network_guard) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)

        def accept_one() -> None:
            server.accept()[0].close()

        accepted = threading.Thread(target=accept_one, daemon=True)
        accepted.start()
        with socket.create_connection(server.getsockname(), timeout=5):
            pass
        accepted.join(5)
    assert socket.getaddrinfo("127.0.0.1", 80)
    assert network_guard.refused == []


@pytest.mark.parametrize(
    ("attempt", "refused"),
    [
        (lambda: socket.create_connection(("192.0.2.1", 80), timeout=0.1), "connect to ('192.0.2.1', 80)"),
        (lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("198.51.100.1", 53)), "sendto to ('198.51.100.1', 53)"),
        (lambda: socket.getaddrinfo("kubernetes.default.svc", 443), "getaddrinfo of the name 'kubernetes.default.svc'"),
        (lambda: socket.socket().connect_ex(("10.255.255.53", 53)), "connect to ('10.255.255.53', 53)"),
    ],
    ids=["tcp", "udp", "resolver", "connect_ex"],
)
def test_other_destinations_are_refused(network_guard, attempt, refused) -> None:
    with pytest.raises(OSError, match="unit tests only talk to loopback"):
        attempt()
    assert network_guard.refused == [refused]
    # Refused on purpose here: the guard would fail this test at teardown otherwise.
    network_guard.refused.clear()
