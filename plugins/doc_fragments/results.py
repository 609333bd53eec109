# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the ephemeral_results lookup and the ephemeral_container_info module share.

Implemented by ``plugins/module_utils/_results.py``; keep the two in step.
"""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  container:
    description:
      - The ephemeral container name(s) to collect. Every ephemeral container of each pod when omitted.
      - A pod that lacks a named container gets a record whose C(error) says so.
    type: list
    elements: str
  wait_timeout:
    description:
      - How long to wait for O(wait_for), in seconds, for all pods together. A container that has not got there in
        time is reported in the state it is in; that is not an error.
      - At most V(604800) (a week).
    type: int
    default: 120
  tail_lines:
    description:
      - Only the last lines of each log.
    type: int
  limit_bytes:
    description:
      - At most this many bytes of each log (the API server cuts it). The record's C(truncated) tells when it did.
      - Bounded by default so that a chatty container cannot exhaust the controller's memory.
    type: int
    default: 1048576
  parse:
    description:
      - How to turn the logs into the record's C(output). V(raw) is the text, V(lines) a list of lines, V(json) one JSON
        document, V(json_lines) a list with one JSON value per non-empty line.
      - A parse failure is reported in the record's C(parse_error) and C(bad_lines), never raised. With V(json_lines) a
        line that is not JSON (a warning, a torn write) is skipped and every other line is still parsed.
      - When the record's C(truncated) is true, the cut last line is left out before parsing and reported as the
        record's C(partial_line). Bytes that are not UTF-8 are replaced with U+FFFD and counted in C(invalid_utf8).
    type: str
    choices: [raw, lines, json, json_lines]
    default: raw
  parallel:
    description:
      - How many logs are read at once.
    type: int
    default: 10
"""
