# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: split_list
short_description: A survey answer as a list
version_added: 0.1.0
description:
  - An AWX/AAP survey answers a text question with a string. This filter makes a list of it, the items separated by
    commas, blanks or line breaks (V(shop, payments) or one per line), so that a playbook takes a list from the command
    line and a string from a survey alike.
  - A list is returned as it is; null gives an empty list.
options:
  _input:
    description: A list, or a text of items separated by commas, blanks or line breaks.
    type: raw
    required: true
author:
  - kubedebug.ephemeral contributors (@kubedebug)
"""

EXAMPLES = r"""
- name: Take kd_namespaces from a survey (text) or from the command line (a list)
  ansible.builtin.set_fact:
    namespaces: "{{ kd_namespaces | kubedebug.ephemeral.split_list }}"
  # "shop, payments" -> ["shop", "payments"]; ["shop"] -> ["shop"]
"""

RETURN = r"""
_value:
  description: The items.
  type: list
  elements: raw
"""

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.kubedebug.ephemeral.plugins.plugin_utils._recipes import split_list as _split_list


def split_list(value: Any) -> list[Any]:
    try:
        return _split_list(value)
    except TypeError as exc:
        raise AnsibleFilterError(f"split_list: {exc}") from exc


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"split_list": split_list}
