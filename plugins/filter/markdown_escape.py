# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: markdown_escape
short_description: Text from a cluster as inert Markdown, safe in a table cell
version_added: 0.1.0
description:
  - Makes a value that came from a cluster (a debug container's output, an event message, a log line) safe to put into
    a Markdown report, as the incident_snapshot role's C(report.md) does. Container output is untrusted - it may hold
    links, images, raw HTML or a C(|) that would end a table cell.
  - Line breaks become spaces and other control characters U+FFFD, so that the value stays on its line and in its cell.
  - By default Markdown's inline punctuation (backslash, backtick, C(*), C(_), brackets, C(<), C(>), C(|), C(&), C(!),
    C(~) and C($)) is escaped with a backslash, so the text shows as it is and nothing in it is a link, an image,
    emphasis or HTML.
  - With O(code=true) the value becomes a code span instead, fenced with more backticks than it holds in a row.
  - A value that is not a string is shown as JSON; null is the empty string.
options:
  _input:
    description: The value.
    type: raw
    required: true
  code:
    description: Make a code span (for a table cell) rather than escaped text.
    type: bool
    default: false
author:
  - kubedebug.ephemeral contributors (@kubedebug)
"""

EXAMPLES = r"""
- name: A table row of a container's checks
  ansible.builtin.debug:
    msg: "| {{ check.check | kubedebug.ephemeral.markdown_escape }} | {{ check.target | kubedebug.ephemeral.markdown_escape(code=true) }} |"
  # "[x](javascript:alert(1))" -> "\[x\](javascript:alert(1))"; "a|b" in a code span -> `a\|b`
"""

RETURN = r"""
_value:
  description: The Markdown text.
  type: str
"""

from typing import Any

from ansible_collections.kubedebug.ephemeral.plugins.plugin_utils._recipes import markdown_escape as _markdown_escape


def markdown_escape(value: Any, code: bool = False) -> str:
    return _markdown_escape(value, code=bool(code))


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"markdown_escape": markdown_escape}
