# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Checks the incident_snapshot role's input and settles its run id, on the controller (private to that role).

Arguments:

- ``options``: the role's options as it names them (``incident_snapshot_namespace``, ``incident_snapshot_reason``,
  ``incident_snapshot_run_id``, ...).

Fails with every problem at once (joined by ``; ``, and as the list ``problems``); otherwise returns ``run_id`` (the
one given, or the one made of the reason), ``bundle`` (``<dest>/<run id>``, absolute) and ``time_limits`` (each recipe's
``recipe_time_limit``: ``incident_snapshot_time_limit``, or the recipe's own when that is 0).
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.kubedebug.ephemeral.plugins.plugin_utils._recipes import (
    INCIDENT_PREFIX,
    incident_failure,
    incident_plan,
    incident_problems,
)

PREFIX = INCIDENT_PREFIX + "_"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("options",))
    _requires_connection = False

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        given = self._task.args.get("options")
        if not isinstance(given, dict):
            raise AnsibleActionFail("incident_plan needs options (a dict of the incident_snapshot role's options)")
        options = {key.removeprefix(PREFIX): value for key, value in given.items()}

        problems = incident_problems(options)
        if problems:
            return {**result, "failed": True, "changed": False, "msg": incident_failure(problems), "problems": problems}
        plan = incident_plan(options)
        return {**result, "changed": False, "problems": [], "run_id": plan.run_id, "bundle": plan.bundle, "time_limits": plan.time_limits}
