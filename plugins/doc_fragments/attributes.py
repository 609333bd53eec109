# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Attributes every module of the collection shares (used beside ansible.builtin.action_common_attributes)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
attributes:
  action_group:
    description: Use C(group/kubedebug.ephemeral.k8s) in C(module_defaults) to set the connection options of every
      module of the collection at once.
    support: full
    membership:
      - kubedebug.ephemeral.k8s
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second run indicates no change.
  platform:
    description: Runs where the task runs (usually the controller, with C(delegate_to) anywhere) and talks to the
      Kubernetes API; the pods' nodes may run any operating system Kubernetes supports.
    support: full
    platforms: posix
"""

    # The role helpers (recipe_plan, incident_plan): action plugins that only check and plan, on the controller.
    CONTROLLER_PLAN = r"""
attributes:
  check_mode:
    support: full
    details:
      - It only reads its arguments (and a recipe's script), so check mode changes nothing.
  diff_mode:
    support: none
  platform:
    description: Runs on the controller only and never contacts the cluster.
    support: full
    platforms: posix
"""
