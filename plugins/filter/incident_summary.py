# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: incident_summary
short_description: One row per pod for an incident report
version_added: 0.1.0
description:
  - From the pods of the P(kubedebug.ephemeral.pod_snapshot_info#module) module and the results of the recipes that ran
    in them, one row per pod - readiness, restarts, last terminations, warning events, checks and failed checks, recipes
    that have not finished - for the summary table of the incident_snapshot role's reports.
options:
  _input:
    description: The C(pods) the pod_snapshot_info module returned.
    type: list
    elements: dict
    required: true
  recipes:
    description: Recipe name -> C(results) (the records of the recipe role) and C(summary).
    type: dict
    default: {}
author:
  - kubedebug.ephemeral contributors (@kubedebug)
"""

EXAMPLES = r"""
- name: Sum up the incident per pod
  ansible.builtin.set_fact:
    rows: "{{ snapshot.pods | kubedebug.ephemeral.incident_summary(recipes={'dns': {'results': dns_results}}) }}"
"""

RETURN = r"""
_value:
  description: One row per pod.
  type: list
  elements: dict
  contains:
    namespace: {description: The pod's namespace., type: str}
    pod: {description: The pod's name., type: str}
    node: {description: Its node., type: str}
    phase: {description: Its phase., type: str}
    ready: {description: Whether its C(Ready) condition is C(True)., type: bool}
    restarts: {description: The restarts of its (not ephemeral) containers., type: int}
    last_terminations: {description: Why those containers last terminated., type: list, elements: str}
    warning_events: {description: How many of its events are warnings., type: int}
    checks: {description: "How many recipe checks ran in it (the scripts' C(summary) lines not counted).", type: int}
    failed_checks: {description: How many of them failed., type: int}
    unfinished_recipes: {description: The recipes whose debug container has not terminated., type: list, elements: str}
    unparsed_recipes:
      description: The recipes whose output in this pod was not all parsed (lines that are not JSON, or a cut last line).
      type: list
      elements: str
    error: {description: "What could not be read of the pod, or null.", type: str}
"""

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.kubedebug.ephemeral.plugins.plugin_utils._recipes import incident_summary as _incident_summary


def incident_summary(pods: Any, recipes: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    if not isinstance(pods, list) or not all(isinstance(pod, dict) for pod in pods):
        raise AnsibleFilterError("incident_summary: expects the pods (a list of dicts) of the pod_snapshot_info module")
    if not isinstance(recipes or {}, dict):
        raise AnsibleFilterError("incident_summary: recipes must map each recipe's name to its results")
    return _incident_summary(pods, recipes or {})


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"incident_summary": incident_summary}
