"""What the API server answers, for the unit tests: recorded objects and hand-built errors.

The recorded objects are in ``fixtures/`` (see fixtures/README.md for how they were
captured); every loader hands out a fresh deep copy, so a test may edit what it gets
without affecting any other test. conftest.py builds its fixtures on these loaders.

Test modules import this file by the collection's name,
``ansible_collections.kubedebug.ephemeral.tests.unit.api_objects``, which resolves both
under hack/unit.sh (the collection tree is on PYTHONPATH) and under ``ansible-test units``.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from http import HTTPStatus
from pathlib import Path
from typing import Any

from kubernetes.client.rest import ApiException

FIXTURES = Path(__file__).parent / "fixtures"


@cache
def _load(relative: str) -> dict[str, Any]:
    return json.loads((FIXTURES / relative).read_text(encoding="utf-8"))


def load_pod(name: str) -> dict[str, Any]:
    """A recorded pod (``fixtures/pods/<name>.json``), as ``kubectl get pod -o json`` returned it."""
    return copy.deepcopy(_load(f"pods/{name}.json"))


def load_status(name: str) -> dict[str, Any]:
    """A recorded API error (``fixtures/status/<name>.json``): ``{"status", "reason", "body"}``."""
    return copy.deepcopy(_load(f"status/{name}.json"))


POD_FIXTURES = tuple(sorted(p.stem for p in (FIXTURES / "pods").glob("*.json")))


def api_error(status: int, message: str = "", *, details: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> ApiException:
    """An ApiException like the client raises for an API server Status answer."""
    exc = ApiException(status=status, reason=HTTPStatus(status).phrase)
    exc.body = json.dumps(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": HTTPStatus(status).phrase.replace(" ", ""),
            "details": details or {},
            "code": status,
        }
    )
    exc.headers = headers
    return exc
