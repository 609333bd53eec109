#!/usr/bin/python
# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Documentation only: the work is done on the controller by plugins/action/report_files.py.

from __future__ import annotations

DOCUMENTATION = r"""
module: report_files
short_description: Write a report's files into a directory on the controller (used by the playbooks)
version_added: 0.1.0
description:
  - Writes several files into one directory on the controller in one task, creating the directory and its parents,
    where C(ansible.builtin.file), C(ansible.builtin.copy) and C(ansible.builtin.template) would take a task and one or
    two module runs per file. C(fleet_diagnostics.yml) writes its C(summary.json) and C(report.html) with it.
  - Each file is written whole or not at all (a temporary file renamed over it) and only when its content differs;
    its mode is set when it differs. The task reports C(changed) only when a file or the directory changed.
  - Always writes on the controller, whatever the task's host or C(delegate_to).
author:
  - kubedebug.ephemeral contributors (@kubedebug)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - Reports what would change and writes nothing.
  diff_mode:
    support: full
    details:
      - Shows the content change of each file, as M(ansible.builtin.copy) does (contents larger than C(max_diff_size)
        are not shown).
  platform:
    description: Runs on the controller only.
    support: full
    platforms: posix
options:
  dest:
    description:
      - The directory the files are written into; created with its parents when missing.
      - A relative path is taken from the directory C(ansible-playbook) runs in (not the playbook's directory).
    type: path
    required: true
  files:
    description:
      - File name (no V(/)) and its content, a string; render a template with
        C(lookup('ansible.builtin.template', ...)) and data with C(to_nice_json).
    type: dict
    required: true
  mode:
    description:
      - The mode of every file, an octal string.
    type: str
    default: "0644"
  directory_mode:
    description:
      - The mode of O(dest) and of the parents this creates, an octal string.
    type: str
    default: "0755"
seealso:
  - module: ansible.builtin.copy
  - module: ansible.builtin.template
"""

EXAMPLES = r"""
- name: Write summary.json and report.html
  kubedebug.ephemeral.report_files:
    dest: "kubedebug-reports/fleet/fleet-{{ kd_run_id }}"
    files:
      summary.json: "{{ kd_fleet_summary | to_nice_json(indent=2) }}\n"
      report.html: "{{ lookup('ansible.builtin.template', 'fleet_report.html.j2') }}"
"""

RETURN = r"""
dest:
  description: The directory as an absolute path on the controller, with V(~) expanded.
  returned: always
  type: str
files:
  description: The path of every file.
  returned: always
  type: list
  elements: str
changed_files:
  description: The paths of the files whose content or mode changed (or would change, in check mode).
  returned: always
  type: list
  elements: str
"""
