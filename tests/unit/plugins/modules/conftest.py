"""Run a module's real ``main()`` against the fake API server (tests/unit/fake_apiserver.py).

The module gets its arguments through ``ansible.module_utils.testing.patch_module_args``
(ansible-core >= 2.19, the oldest the stable profile installs) and its Kubernetes client
through ``_module.module_client``, patched to an ``EphemeralClient`` over the fake server.
``exit_json``/``fail_json`` run for real: the result is the JSON the module prints, read from
stdout after its ``SystemExit``. Ansible keeps a module's warnings in a process-wide list;
each run starts with an empty one, so no test sees another's warnings, and ``warnings`` is
returned as the list of their texts. Once anything of the controller is imported (the lookup's
tests, the collection loader in tests/unit/conftest.py), ansible-core sends ``module.warn`` to
the controller's display instead; a module run is put back in a module's context.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ansible.module_utils import _internal as ansible_internal
from ansible.module_utils.common import warnings as ansible_warnings
from ansible.module_utils.testing import patch_module_args

from ansible_collections.kubedebug.ephemeral.plugins.module_utils import _module
from ansible_collections.kubedebug.ephemeral.tests.unit.fake_apiserver import FakeApiServer, fake_apiserver

ModuleRunner = Callable[..., dict[str, Any]]


@pytest.fixture
def apiserver(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeApiServer]:
    with fake_apiserver(monkeypatch) as server:
        yield server


@pytest.fixture
def run_module(apiserver: FakeApiServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> ModuleRunner:
    """``run_module(main, args, check_mode=False, diff=False)`` -> the module's result; ``result["rc"]`` is its exit status."""
    clients: list[Any] = []

    def client_for(module: Any) -> Any:
        clients.append(module)
        return apiserver.client()

    monkeypatch.setattr(_module, "module_client", client_for)

    def run(main: Callable[[], None], args: dict[str, Any], *, check_mode: bool = False, diff: bool = False) -> dict[str, Any]:
        capsys.readouterr()  # anything printed before belongs to no module run
        module_args = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
        with monkeypatch.context() as scope:
            scope.setattr(ansible_internal, "is_controller", False)
            scope.setattr(ansible_warnings, "_global_warnings", {})
            scope.setattr(ansible_warnings, "_global_deprecations", {})
            with patch_module_args(module_args), pytest.raises(SystemExit) as exited:
                main()
        result = json.loads(capsys.readouterr().out)
        result["warnings"] = [w["event"]["msg"] if isinstance(w, dict) else w for w in result.get("warnings", [])]
        result["rc"] = exited.value.code
        result["clients_created"] = len(clients)
        return result

    return run
