# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

DOCUMENTATION = r"""
name: fetched_files
short_description: Where the files a filesystem recipe read go on the controller
version_added: 0.1.0
description:
  - For every C(file) check with content in the records of the filesystem recipe, the controller path
    C(<fetch_dir>/<namespace>/<pod><resolved>) to write it to.
  - The container's output is untrusted (processes of the target share the debug container's process namespace and can
    write to its output). A path that is not plain and absolute (a C(..) or C(.) component, an empty one, a NUL) is never
    turned into a destination; its entry has C(refused) instead, so nothing is written outside O(fetch_dir).
options:
  _input:
    description: The records of the filesystem recipe (as the P(kubedebug.ephemeral.ephemeral_results#lookup) lookup returns them).
    type: list
    elements: dict
    required: true
  fetch_dir:
    description: The directory on the controller.
    type: str
    required: true
author:
  - kubedebug.ephemeral contributors (@kubedebug)
"""

EXAMPLES = r"""
- name: Write the files the recipe read
  ansible.builtin.debug:
    msg: "{{ filesystem_results | kubedebug.ephemeral.fetched_files(fetch_dir='/tmp/fetched') }}"
"""

RETURN = r"""
_value:
  description: One entry per file with content.
  type: list
  elements: dict
  contains:
    label:
      description: C(<namespace>/<pod>:<path as asked>).
      type: str
    dest:
      description: Where to write it, or V(null) when it is refused.
      type: str
    content_base64:
      description: The file's content, base64-encoded, as the recipe read it.
      type: str
    refused:
      description: Why the file is not written, or V(null).
      type: str
"""

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.kubedebug.ephemeral.plugins.plugin_utils._recipes import fetched_files as _fetched_files


def fetched_files(results: Any, fetch_dir: str) -> list[dict[str, Any]]:
    if not isinstance(results, list) or not all(isinstance(record, dict) for record in results):
        raise AnsibleFilterError("fetched_files: expects the list of records of the ephemeral_results lookup")
    if not isinstance(fetch_dir, str) or not fetch_dir:
        raise AnsibleFilterError("fetched_files: fetch_dir must be a non-empty path")
    return _fetched_files(results, fetch_dir)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"fetched_files": fetched_files}
