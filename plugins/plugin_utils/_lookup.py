# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: the base of the collection's lookups (controller side only).

What ``_module.run_module`` is to the modules: options through ``get_option``
only, the ``kubernetes`` client checked in the one place that checks it for
every front end, the request built before any client, and the manager's
``Outcome`` turned into a return value, warnings and ``AnsibleLookupError``.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

from ansible import constants as C
from ansible.errors import AnsibleLookupError
from ansible.module_utils.common.parameters import remove_values
from ansible.plugins.lookup import LookupBase
from ansible.utils.display import Display

from ansible_collections.kubedebug.ephemeral.plugins.module_utils._auth import (
    KUBERNETES_IMPORT_ERROR,
    auth_from_plugin,
    auth_secrets,
    client_options,
    client_secrets,
    create_api_client,
    insecure_tls_warning,
    kubernetes_problem,
)
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._client import EphemeralClient
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._errors import KubedebugError
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._outcome import Manager

display = Display()
R = TypeVar("R")
T = TypeVar("T")


def _infinite(value: Any) -> bool:
    """Whether ``value`` reads as an infinite number ("inf", "-Infinity", float("inf"))."""
    if isinstance(value, bool) or not isinstance(value, (str, float)):
        return False
    try:
        return Decimal(str(value).strip()).is_infinite()
    except (ArithmeticError, ValueError):
        return False


class KubedebugLookupBase(LookupBase):
    """Subclasses set ``NAME`` (how errors and warnings name the lookup), call ``load_options``, then ``run_manager``."""

    NAME = "kubedebug.ephemeral"
    # The credentials of the last client() (options, K8S_AUTH_*, kubeconfig): a lookup has no
    # no_log, so run_manager masks them itself in everything it returns, shows or raises.
    _secrets: frozenset[str] = frozenset()
    # The keywords of the call: the options given directly (auth_from_plugin takes no environment origin for them).
    _direct: frozenset[str] = frozenset()

    def load_options(self, variables: dict[str, Any] | None, direct: dict[str, Any]) -> None:
        """``set_options`` first, as every lookup must: then ``get_option`` sees variables, env and keywords.

        A keyword the lookup does not document is refused: Ansible would drop it silently, and a misspelt option
        (``contianer=``) would quietly collect something else than what was asked for.
        """
        definitions = C.config.get_configuration_definitions("lookup", self._load_name)
        known: set[str] = set()
        for option, definition in definitions.items():
            known.update([option, *(definition.get("aliases") or [])])
        unknown = sorted(str(key) for key in direct if key not in known or key == "_terms")
        if unknown:
            supported = ", ".join(sorted(k for k in known if not k.startswith("_")))
            raise AnsibleLookupError(f"{self.NAME}: unsupported option(s) {', '.join(unknown)}; supported options: {supported}")
        numbers = {key for key, definition in definitions.items() if definition.get("type") in ("int", "integer", "float")}
        infinite = sorted(str(key) for key, value in direct.items() if key in numbers and _infinite(value))
        if infinite:
            # ansible-core's conversion lets int("inf") escape as an OverflowError that names no option.
            raise AnsibleLookupError(f"{self.NAME}: {', '.join(infinite)} must be a finite number")
        # Through the class: mypy exempts ansible-core's unannotated set_options (untyped_calls_exclude) only
        # when the receiver is ansible's own type, not a subclass of it.
        LookupBase.set_options(self, var_options=variables, direct=direct)
        self._direct = frozenset(str(key) for key in direct)

    def client(self) -> EphemeralClient:
        """The Kubernetes client for the lookup's connection options (doc fragment ``kubedebug.ephemeral.auth``)."""
        auth = auth_from_plugin(self, self._direct)
        api_client = create_api_client(auth)
        self._secrets = frozenset(auth_secrets(auth) | client_secrets(api_client))
        return EphemeralClient(api_client, **client_options(auth))

    def _masked(self, value: T) -> T:
        """``value`` with every credential replaced, as Ansible does for a module's no_log values."""
        if not self._secrets:
            return value
        masked: T = remove_values(value, self._secrets)
        return masked

    def run_manager(self, request: Callable[[], R], manager: Callable[[EphemeralClient, R], Manager]) -> dict[str, Any]:
        """The manager's result and its ``api`` counts; its warnings are shown, and its failure (or any refusal) raised, under the lookup's name."""
        name = self.NAME
        problem = kubernetes_problem()
        if problem:
            display.vvv(KUBERNETES_IMPORT_ERROR or "")
            raise AnsibleLookupError(f"{name}: {problem}")
        try:
            checked = request()  # bad input is refused before a client or an API call
            client = self.client()
            insecure = insecure_tls_warning(client.api_client)
            if insecure:
                # Once per lookup call, not per request, pod or thread.
                display.warning(self._masked(f"{name}: {insecure}"))
            outcome = manager(client, checked).run()
        except KubedebugError as exc:
            # Not "from exc": ansible-core >= 2.19 appends every cause to the message, and the client's
            # ApiException would add its headers and body to a message that already says what to do.
            display.vvv(self._masked(traceback.format_exc()))
            raise AnsibleLookupError(self._masked(f"{name}: {exc.msg}")) from None
        if outcome.failure:
            raise AnsibleLookupError(self._masked(f"{name}: {outcome.failure}"))
        for warning in outcome.warnings:
            display.warning(self._masked(f"{name}: {warning}"))
        return self._masked({**outcome.result, "api": client.stats.as_dict()})
