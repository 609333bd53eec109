#!/usr/bin/python
# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Documentation only: the work is done on the controller by plugins/action/recipe_plan.py.

from __future__ import annotations

DOCUMENTATION = r"""
module: recipe_plan
short_description: Check a recipe's input and plan its debug container (used by the recipe role)
version_added: 0.1.0
description:
  - The first task of the C(kubedebug.ephemeral.recipe) role and of the roles built on it, which turns their variables
    into the arguments of M(kubedebug.ephemeral.ephemeral_container). Playbooks normally use the roles, not this
    module.
  - Checks every option at once and fails with all problems, each naming the option to fix, joined by V(; ).
author:
  - kubedebug.ephemeral contributors (@kubedebug)
extends_documentation_fragment:
  - kubedebug.ephemeral.attributes.controller_plan
  - ansible.builtin.action_common_attributes
options:
  recipe:
    description:
      - The entry point of the recipe role, V(main) (a script of your own, in O(options)) or a shipped recipe.
    type: str
    required: true
    choices: [main, dns, network, processes, filesystem, capture, jvm, python]
  options:
    description:
      - The entry point's options as the recipe role names them (C(recipe_namespace), C(recipe_run_id), ...).
    type: dict
    required: true
  option_prefix:
    description:
      - How messages name the options, C(<prefix>_run_id). A role built on the recipe role passes its own prefix, so
        that its users read the names they set.
    type: str
    default: recipe
  check_only:
    description:
      - Only check the input.
    type: bool
    default: false
seealso:
  - module: kubedebug.ephemeral.ephemeral_container
"""

EXAMPLES = r"""
- name: Check a dns recipe's input and plan its container
  kubedebug.ephemeral.recipe_plan:
    recipe: dns
    options:
      recipe_namespace: shop
      recipe_pod: web-0
      recipe_run_id: inc4711
  register: plan
"""

RETURN = r"""
problems:
  description: Every problem with the input (empty when there is none).
  returned: always
  type: list
  elements: str
recipe:
  description: The recipe's name, part of the container name.
  returned: success and not O(check_only)
  type: str
container:
  description: The debug container's name, V(kd-<recipe>-<run id>) unless given.
  returned: success and not O(check_only)
  type: str
namespaces:
  description: The namespaces the pods are selected in.
  returned: success and not O(check_only)
  type: list
  elements: str
command:
  description:
    - The debug container's command, C(sh -c BOOT kd-boot TIME_LIMIT NICE SCRIPT NAME ARGS...). The boot runs the
      prelude and the recipe's script (C(sh -c SCRIPT NAME ARGS...)) under the time limit and niceness.
    - Every C($) is doubled, as the kubelet expects it in a container's command (it reads C($$) as C($) and
      C($(NAME\)) as the container's variable C(NAME)).
  returned: success and not O(check_only)
  type: list
  elements: str
limit_bytes:
  description: The bound of each pod's log read.
  returned: success and not O(check_only)
  type: int
time_limit:
  description: The seconds after which the recipe is stopped.
  returned: success and not O(check_only)
  type: int
nice:
  description: The niceness the recipe runs at.
  returned: success and not O(check_only)
  type: int
detach:
  description: Whether the role returns once the containers are added, without collecting their results.
  returned: success and not O(check_only)
  type: bool
"""
