# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: attach_files
short_description: Adds to each pod's record the file written for it on the controller
version_added: 0.1.0
description:
  - Takes the results of an M(ansible.builtin.stat) loop over C([record, check]) pairs (the files a recipe role wrote on
    the controller, one per pod) and adds to each record the C(path), C(size) and C(sha256) of its file, or null when none
    was written.
options:
  _input:
    description: The recipe's records, one per pod.
    type: list
    elements: dict
    required: true
  stats:
    description: The C(results) of the registered stat loop; skipped items are ignored.
    type: list
    elements: dict
    required: true
  key:
    description: The key the file goes under.
    type: str
    default: pcap
author:
  - kubedebug.ephemeral contributors (@kubedebug)
"""

EXAMPLES = r"""
- name: Add the pcap files to the results
  ansible.builtin.set_fact:
    capture_results: "{{ capture_results | kubedebug.ephemeral.attach_files(pcap_stats.results) }}"
"""

RETURN = r"""
_value:
  description: The records, each with O(key) set to C(path), C(size) and C(sha256), or null.
  type: list
  elements: dict
"""

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.kubedebug.ephemeral.plugins.plugin_utils._recipes import attach_files as _attach_files


def attach_files(results: Any, stats: Any, key: str = "pcap") -> list[dict[str, Any]]:
    if not isinstance(results, list) or not isinstance(stats, list):
        raise AnsibleFilterError("attach_files: expects the records and the results of a stat loop, both lists")
    try:
        return _attach_files(results, stats, key)
    except (KeyError, IndexError, TypeError) as exc:
        raise AnsibleFilterError(f"attach_files: a stat result does not come from a loop over [record, check] pairs: {exc}") from exc


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"attach_files": attach_files}
