# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: what every module does around its manager.

A module is its documentation, its argument spec and one ``run_module`` call:
check the ``kubernetes`` client, build the request from the parameters (no API
call yet), create the client, run the manager, and turn its ``Outcome`` into
``exit_json``/``fail_json``. Nothing here decides anything about pods.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import TypeVar

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.common.parameters import remove_values

from ansible_collections.kubedebug.ephemeral.plugins.module_utils._auth import (
    HAS_KUBERNETES,
    KUBERNETES_IMPORT_ERROR,
    KUBERNETES_MIN_VERSION,
    auth_from_module,
    client_options,
    client_secrets,
    create_api_client,
    insecure_tls_warning,
    kubernetes_problem,
)
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._client import EphemeralClient
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._errors import KubedebugError
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._outcome import Manager

R = TypeVar("R")


def module_client(module: AnsibleModule) -> EphemeralClient:
    """The Kubernetes client for the module's connection options (doc fragment ``kubedebug.ephemeral.auth``).

    Every credential it will send (options, ``K8S_AUTH_*``, kubeconfig, service
    account) is masked in the module's output from here on.
    """
    auth = auth_from_module(module)
    api_client = create_api_client(auth)
    module.no_log_values.update(client_secrets(api_client))
    return EphemeralClient(api_client, **client_options(auth))


def _warn(module: AnsibleModule, warning: str) -> None:
    # exit_json masks no_log values in the result, but not in warnings (ansible-core 2.19 keeps them
    # as objects that its masking does not enter): mask them here.
    module.warn(remove_values(warning, module.no_log_values))


def run_module(module: AnsibleModule, request: Callable[[], R], manager: Callable[[EphemeralClient, R], Manager]) -> None:
    """Run ``manager(client, request())``; every failure becomes ``fail_json`` with a message, never a bare traceback."""
    if not HAS_KUBERNETES:
        wanted = ".".join(map(str, KUBERNETES_MIN_VERSION))
        module.fail_json(msg=missing_required_lib(f"kubernetes >= {wanted}"), exception=KUBERNETES_IMPORT_ERROR)
    problem = kubernetes_problem()
    if problem:
        module.fail_json(msg=problem)
    client: EphemeralClient | None = None
    try:
        checked = request()  # bad input is refused before a client or an API call
        client = module_client(module)
        insecure = insecure_tls_warning(client.api_client)
        if insecure:
            # Once per task, not per request, pod or thread.
            _warn(module, insecure)
        outcome = manager(client, checked).run()
    except KubedebugError as exc:
        # What the API traffic cost up to the failure (retries, throttling), when there was any.
        if client is None:
            module.fail_json(msg=exc.msg)
        module.fail_json(msg=exc.msg, api=client.stats.as_dict())
    except Exception as exc:  # pylint: disable=broad-exception-caught
        # Say what failed; the traceback stays available with -vvv.
        module.fail_json(msg=f"unexpected error: {type(exc).__name__}: {exc}", exception=traceback.format_exc())
    if client is not None:
        outcome.result["api"] = client.stats.as_dict()
    for warning in outcome.warnings:
        _warn(module, warning)
    if outcome.failure:
        module.fail_json(msg=outcome.failure, **outcome.result)
    module.exit_json(**outcome.result)
