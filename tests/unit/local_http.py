"""A local HTTP server on a thread, for the tests that check what the kubernetes client sends.

Imported as ``ansible_collections.kubedebug.ephemeral.tests.unit.local_http`` (see api_objects.py).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from socketserver import BaseServer
from typing import TypeVar

import pytest

ServerT = TypeVar("ServerT", bound=BaseServer)


def without_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset the proxy variables, which would send requests for 127.0.0.1 elsewhere."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


@contextmanager
def serving(server: ServerT) -> Iterator[ServerT]:
    """Serve on a daemon thread for the duration of the block, then close the socket."""
    # A short poll interval keeps shutdown() from adding half a second to every test.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
