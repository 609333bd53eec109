# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: what every module of the collection does around its own work."""

from __future__ import annotations

import traceback
from collections.abc import Callable

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.kubedebug.ephemeral.plugins.module_utils._auth import (
    HAS_KUBERNETES,
    KUBERNETES_IMPORT_ERROR,
    auth_from_module,
    create_api_client,
)
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._client import EphemeralClient
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._errors import KubedebugError


def run_module(module: AnsibleModule, run: Callable[[AnsibleModule], None]) -> None:
    """Run ``run(module)``; every failure becomes ``fail_json`` with a message, never a bare traceback."""
    if not HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=KUBERNETES_IMPORT_ERROR)
    try:
        run(module)
    except KubedebugError as exc:
        module.fail_json(msg=exc.msg)
    except Exception as exc:  # pylint: disable=broad-exception-caught
        # Say what failed; the traceback stays available with -vvv.
        module.fail_json(msg=f"unexpected error: {type(exc).__name__}: {exc}", exception=traceback.format_exc())


def module_client(module: AnsibleModule) -> EphemeralClient:
    """The Kubernetes client for the module's connection options (doc fragment ``kubedebug.ephemeral.auth``)."""
    return EphemeralClient(create_api_client(auth_from_module(module)))
