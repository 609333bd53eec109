# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Checks a recipe's input and plans its debug container, on the controller (private to the recipe role).

Arguments:

- ``recipe``: the entry point of the recipe role, V(main) (a script of your own) or a shipped recipe (V(dns), ...);
- ``options``: the entry point's options as the recipe role names them (``recipe_namespace``, ``recipe_run_id``, ...);
- ``option_prefix``: how messages name the options, ``<prefix>_run_id``. A role built on the recipe role passes its
  own prefix (and its options, as it hands them on), so that its users read the names they set;
- ``check_only``: only check the input (such a role does, before it includes the recipe role).

Fails with every problem at once (joined by ``; ``, and as the list ``problems``); otherwise returns ``recipe`` (the
name), ``container``, ``namespaces``, ``command`` (``files/boot.sh``, which runs the prelude and the script,
``files/<recipe>.sh`` of the role for a shipped recipe, under the time limit and niceness), ``limit_bytes``,
``time_limit``, ``nice`` and ``detach``.
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.kubedebug.ephemeral.plugins.plugin_utils._recipes import (
    SHIPPED_RECIPES,
    boot_command,
    recipe_failure,
    recipe_plan,
    recipe_problems,
)

PREFIX = "recipe_"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("recipe", "options", "option_prefix", "check_only"))
    _requires_connection = False

    def _read(self, name: str) -> str:
        # As the file lookup reads it (trailing whitespace stripped), from the role's files/.
        # Through the class: mypy exempts ansible-core's unannotated methods only when called on its own type.
        path = self._loader.get_real_file(ActionBase._find_needle(self, "files", name))
        with open(path, encoding="utf-8") as handle:
            return handle.read().rstrip()

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        args = self._task.args
        recipe, given, prefix = args.get("recipe"), args.get("options") or {}, args.get("option_prefix") or "recipe"
        if recipe not in ("main", *SHIPPED_RECIPES) or not isinstance(given, dict):
            raise AnsibleActionFail(f"recipe_plan needs recipe (main, {', '.join(SHIPPED_RECIPES)}) and options (a dict)")
        options = {key.removeprefix(PREFIX): value for key, value in given.items()}

        problems = recipe_problems(recipe, options, prefix)
        if problems:
            return {**result, "failed": True, "changed": False, "msg": recipe_failure(recipe, options, problems, prefix), "problems": problems}
        if args.get("check_only"):
            return {**result, "changed": False, "problems": []}

        plan = recipe_plan(recipe, options)
        script = options["script"] if recipe == "main" else self._read(f"{recipe}.sh")
        return {
            **result,
            "changed": False,
            "problems": [],
            "recipe": plan.name,
            "container": plan.container,
            "namespaces": plan.namespaces,
            "command": boot_command(self._read("boot.sh"), plan, self._read("prelude.sh") + "\n" + script),
            "limit_bytes": plan.limit_bytes,
            "time_limit": plan.time_limit,
            "nice": plan.nice,
            "detach": plan.detach,
        }
