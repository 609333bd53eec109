# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fake API server of tests/unit/fake_apiserver.py, refusing selectors the real one refuses, for a whole hypothesis test.

A hypothesis test runs many examples in one test function, so the server lives for the test and ``reset`` puts the
recorded pods back before each example. Pod LISTs parse their selectors as kube-apiserver does (selectors.py) and
answer HTTP 400 with its message when they do not parse.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from ansible_collections.kubedebug.ephemeral.tests.unit.api_objects import load_pod
from ansible_collections.kubedebug.ephemeral.tests.unit.fake_apiserver import _PODS, FakeApiServer, FakeCluster, _Server, status_body
from ansible_collections.kubedebug.ephemeral.tests.unit.local_http import serving, without_proxies
from ansible_collections.kubedebug.ephemeral.tests.unit.property.selectors import SelectorError, check_field_selector, check_label_selector

NS = "unit-fixtures"
PODS = ("plain", "debugged", "ephemeral-states", "with-volumes")
# Containers have finished by the time a wait looks: no case waits out its wait_timeout.
TERMINATED = {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": "2026-11-25T09:30:00Z", "finishedAt": "2026-11-25T09:30:01Z"}}


class SelectorParsingCluster(FakeCluster):
    def answer(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        if method == "GET" and _PODS.match(path):
            labels, fields = (query.get("labelSelector") or [""])[0], (query.get("fieldSelector") or [""])[0]
            try:
                check_label_selector(labels)
                check_field_selector(fields)
            except SelectorError as exc:
                message = f'Unable to find "/v1, Resource=pods" that match label selector "{labels}", field selector "{fields}": {exc}'
                return 400, status_body(400, message)
        return super().answer(method, path, query, body)

    def reset(self) -> None:
        """The recorded pods as they were, with logs of the finished container, and no requests yet."""
        self.pods.clear()
        self.add(*(load_pod(name) for name in PODS))
        self.logs = {
            (NS, "states", "exited", False): b'{"step": 1}\nnot json\n',
            (NS, "states", "fresh", False): b"[1, 2]\n",
            (NS, "debugged", "debug", False): b"\xff\xfe not utf-8\n",
        }
        self.events = {}
        self.requests.clear()
        self.refuse.clear()
        self.kubelet_state = TERMINATED


@contextlib.contextmanager
def property_apiserver() -> Iterator[tuple[FakeApiServer, SelectorParsingCluster]]:
    cluster = SelectorParsingCluster()
    cluster.reset()
    with pytest.MonkeyPatch.context() as scope:
        without_proxies(scope)
        with serving(_Server(cluster)) as server:
            yield FakeApiServer(server), cluster
