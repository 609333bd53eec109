# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: recipe_summary
short_description: Sums up a recipe's results
version_added: 0.1.0
description:
  - Counts the pods and checks of the records of a recipe (as the P(kubedebug.ephemeral.ephemeral_results#lookup) lookup
    returns them, with C(parse=json_lines)), the failed checks, and the pods whose debug container has not finished.
  - The C(<role>_summary) fact of the recipe roles.
options:
  _input:
    description: The records, one per pod, whose C(output) is the list of checks.
    type: list
    elements: dict
    required: true
  recipe:
    description: The recipe's name.
    type: str
    required: true
  container:
    description: The debug container's name.
    type: str
    required: true
  option_prefix:
    description: How C(stopped) names the time limit option, C(<option_prefix>_time_limit).
    type: str
    default: recipe
author:
  - kubedebug.ephemeral contributors (@kubedebug)
"""

EXAMPLES = r"""
- name: Sum up the dns checks
  ansible.builtin.set_fact:
    dns_summary: "{{ dns_results | kubedebug.ephemeral.recipe_summary(recipe='dns', container='kd-dns-inc1') }}"
"""

RETURN = r"""
_value:
  description: The summary.
  type: dict
  contains:
    recipe:
      description: The recipe's name.
      type: str
    container:
      description: The debug container's name.
      type: str
    pods:
      description: How many pods have a record.
      type: int
    checks:
      description:
        - >-
          How many lines of output the records have (the checks and each script's closing C(summary) line), not
          counting the lines that say how the run was bounded (C({"bounds": {...}})).
      type: int
    failed_checks:
      description: How many checks (not counting the C(summary) lines) are not C(ok).
      type: int
    unfinished_pods:
      description: The pods whose debug container has not terminated.
      type: list
      elements: str
    unparsed_pods:
      description:
        - The pods whose output was not all parsed - lines that are not JSON (the record's C(bad_lines)) or a last line
          cut by C(limit_bytes) (C(partial_line)). Their other lines are parsed and counted all the same; a check may be
          among the lines that were not.
      type: list
      elements: str
    timed_out_pods:
      description:
        - The pods whose recipe was stopped by its time limit (C(recipe_time_limit)) - its last C(bounds) line says
          C(timed_out), or, its log cut by C(limit_bytes) before that line, the container exited 124. Their checks up
          to then are counted all the same.
      type: list
      elements: str
    stopped:
      description: >-
        One text per pod of C(timed_out_pods), V(<namespace>/<pod>: stopped after N s (recipe_time_limit\)).
      type: list
      elements: str
    bounds:
      description:
        - How the runs were bounded, from the first pod's first output line (empty when no pod's output has one).
        - C(time_limit) (seconds) and C(time_limit_by) (V(timeout), V(watchdog) - a shell loop where the image has no
          C(timeout) - or V(none)); C(nice), C(nice_by) (V(nice), V(renice), V(already) or V(none)) and C(niceness),
          the niceness the script read of itself.
      type: dict
    bounds_text:
      description: >-
        C(bounds) in words, V(time limit 100 s (timeout\), niceness 10 (nice\)); empty without them.
      type: str
"""

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.kubedebug.ephemeral.plugins.plugin_utils._recipes import recipe_summary as _recipe_summary


def recipe_summary(results: Any, recipe: str, container: str, option_prefix: str = "recipe") -> dict[str, Any]:
    if not isinstance(results, list) or not all(isinstance(record, dict) for record in results):
        raise AnsibleFilterError("recipe_summary: expects the list of records of the ephemeral_results lookup")
    if not isinstance(option_prefix, str):
        raise AnsibleFilterError(f"recipe_summary: option_prefix must be a string (got {option_prefix!r})")
    return _recipe_summary(results, recipe, container, option_prefix)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"recipe_summary": recipe_summary}
