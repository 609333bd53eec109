#!/usr/bin/python
# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Documentation only: the work is done on the controller by plugins/action/incident_plan.py.

from __future__ import annotations

DOCUMENTATION = r"""
module: incident_plan
short_description: Check an incident's input and settle its run id (used by the incident_snapshot role)
version_added: 0.1.0
description:
  - The first task of the C(kubedebug.ephemeral.incident_snapshot) role, before anything reads the cluster. Playbooks
    normally use the role, not this module.
  - Checks every option at once and fails with all problems, each naming the option to fix, joined by V(; ).
  - Settles the run id, the given C(incident_snapshot_run_id) or one made of C(incident_snapshot_reason) in lower case,
    every run of other characters than letters, digits and V(-) replaced by one V(-), no V(-) at either end, at most
    40 characters (45 when that is the whole of it).
author:
  - kubedebug.ephemeral contributors (@kubedebug)
extends_documentation_fragment:
  - kubedebug.ephemeral.attributes.controller_plan
  - ansible.builtin.action_common_attributes
options:
  options:
    description:
      - The options of the incident_snapshot role as it names them (C(incident_snapshot_namespace),
        C(incident_snapshot_reason), C(incident_snapshot_run_id), ...).
    type: dict
    required: true
seealso:
  - module: kubedebug.ephemeral.pod_snapshot_info
"""

EXAMPLES = r"""
- name: Check an incident's input and settle its run id
  kubedebug.ephemeral.incident_plan:
    options:
      incident_snapshot_namespace: shop
      incident_snapshot_pod: web-0
      incident_snapshot_label_selector: ""
      incident_snapshot_reason: "INC-4711: checkout 502s"
      incident_snapshot_run_id: ""
      incident_snapshot_recipes: [dns, network, processes]
      incident_snapshot_recipe_vars: {}
      incident_snapshot_dest: /var/tmp/incidents
      incident_snapshot_events_limit: 20
      incident_snapshot_tail_lines: 100
      incident_snapshot_wait_timeout: 120
      incident_snapshot_time_limit: 0
      incident_snapshot_nice: 10
      incident_snapshot_canary: 0
  register: plan
"""

RETURN = r"""
problems:
  description: Every problem with the input (empty when there is none).
  returned: always
  type: list
  elements: str
run_id:
  description: The run id, the one given or the one made of the reason.
  returned: success
  type: str
  sample: inc-4711-checkout-502s
bundle:
  description: The bundle directory, V(<dest>/<run id>), absolute (a relative C(dest) is taken from the directory C(ansible-playbook) runs in).
  returned: success
  type: str
  sample: /var/tmp/incidents/inc-4711-checkout-502s
time_limits:
  description:
    - Each recipe's time limit in seconds, the C(recipe_time_limit) the role hands on - C(incident_snapshot_time_limit),
      or the recipe's own default when that is V(0).
  returned: success
  type: dict
  sample: {"dns": 100, "capture": 360}
"""
