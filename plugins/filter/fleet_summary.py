# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: fleet_summary
short_description: Which checks fail where, across clusters, namespaces and nodes
version_added: 0.1.0
description:
  - Aggregates the records of one recipe run in many clusters (each record as the
    P(kubedebug.ephemeral.ephemeral_results#lookup) lookup returns it, plus the C(cluster) it comes from) into the
    summary of the fleet_diagnostics playbook, written as C(summary.json) and rendered as C(report.html).
options:
  _input:
    description: The records; each has C(cluster), C(namespace), C(pod), C(node), C(state) and C(output).
    type: list
    elements: dict
    required: true
  run_id:
    description: The run id, shown in the summary.
    type: str
    required: true
  recipe:
    description: The recipe that ran.
    type: str
    required: true
  label_selector:
    description: The label selector that chose the pods.
    type: str
    default: ""
  clusters:
    description: The clusters (inventory hosts) of the run, those without records too.
    type: list
    elements: str
    default: []
  debugged:
    description:
      - One entry per cluster from M(kubedebug.ephemeral.debugged_pods_info) over the same selection, each with
        C(cluster), C(pods) (the module's RV(kubedebug.ephemeral.debugged_pods_info#module:pods)) and C(error) (why it
        failed there, or null).
      - When given, the summary gets C(debugged) and C(debugged_pods); without it, neither.
    type: list
    elements: dict
author:
  - kubedebug.ephemeral contributors (@kubedebug)
"""

EXAMPLES = r"""
- name: Aggregate the clusters' records
  ansible.builtin.set_fact:
    fleet: >-
      {{ records | kubedebug.ephemeral.fleet_summary(run_id='sweep-1', recipe='dns', label_selector='app=web',
                                                     clusters=['prod-eu', 'prod-us']) }}
"""

RETURN = r"""
_value:
  description: The summary.
  type: dict
  contains:
    run_id: {description: The run id., type: str}
    recipe: {description: The recipe., type: str}
    label_selector: {description: The label selector., type: str}
    clusters: {description: The clusters., type: list, elements: str}
    pods: {description: How many pods have a record., type: int}
    pods_by_cluster: {description: "Cluster -> how many pods.", type: dict}
    checks: {description: "How many checks ran (the scripts' C(summary) lines not counted).", type: int}
    failed_checks: {description: How many of them failed., type: int}
    unfinished:
      description: The pods whose debug container did not terminate or whose results could not be read.
      type: list
      elements: dict
    unparsed:
      description:
        - The pods whose output was not all parsed, each with C(cluster), C(namespace), C(pod), C(parse_error), how many
          C(bad_lines) (lines that are not JSON) and whether its last line was cut (C(partial_line)). Their other lines
          are parsed and counted all the same.
      type: list
      elements: dict
    timed_out:
      description:
        - The pods whose recipe its time limit stopped (C(recipe_time_limit)), each with C(cluster), C(namespace),
          C(pod) and C(detail), V(stopped after N s (recipe_time_limit\)). Their checks up to then are counted.
      type: list
      elements: dict
    by_cluster: {description: "Cluster -> C(checks) and C(failed_checks).", type: dict}
    by_namespace: {description: "C(<cluster>/<namespace>) -> C(checks) and C(failed_checks).", type: dict}
    by_node: {description: "C(<cluster>/<node>) -> C(checks) and C(failed_checks).", type: dict}
    by_check:
      description: Each failing check and target, with how often and where (C(<cluster>/<namespace>/<pod>)) it failed, most
        frequent first.
      type: list
      elements: dict
    failures:
      description: Every failed check with its cluster, namespace, node, pod, target and detail.
      type: list
      elements: dict
    debugged:
      description:
        - The pods left carrying ephemeral containers, counted (with O(debugged) only) - C(pods), C(containers),
          C(running), C(by_us), C(unknown), C(by_cluster) (cluster -> C(pods), C(containers), C(running)) and C(errors)
          (each C(cluster) and C(error) where they could not be listed).
      type: dict
    debugged_pods:
      description:
        - One row per pod left carrying ephemeral containers (with O(debugged) only), ordered by cluster, namespace and
          pod - C(cluster), C(namespace), C(pod), C(containers), C(by), C(reasons), C(running) (the containers that still
          run), C(restart) (the advice) and C(command).
      type: list
      elements: dict
"""

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.kubedebug.ephemeral.plugins.module_utils._debugged import fleet_section
from ansible_collections.kubedebug.ephemeral.plugins.plugin_utils._recipes import fleet_summary as _fleet_summary


def fleet_summary(
    records: Any,
    run_id: str,
    recipe: str,
    label_selector: str = "",
    clusters: list[str] | None = None,
    debugged: Any = None,
) -> dict[str, Any]:
    if not isinstance(records, list) or not all(isinstance(record, dict) for record in records):
        raise AnsibleFilterError("fleet_summary: expects a list of records (dicts) of the ephemeral_results lookup")
    summary = _fleet_summary(records, run_id=run_id, recipe=recipe, label_selector=label_selector, clusters=clusters or [])
    if debugged is not None:
        if not isinstance(debugged, list) or not all(isinstance(entry, dict) for entry in debugged):
            raise AnsibleFilterError("fleet_summary: debugged expects a list of {cluster, pods, error} (pods as debugged_pods_info returns them)")
        summary["debugged"], summary["debugged_pods"] = fleet_section(debugged)
    return summary


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"fleet_summary": fleet_summary}
