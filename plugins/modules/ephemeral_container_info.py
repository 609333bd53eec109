#!/usr/bin/python
# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: ephemeral_container_info
short_description: Report the ephemeral containers of pods, their state and (optionally) their logs
version_added: 0.1.0
description:
  - Returns one record per pod and ephemeral container, with the same keys as the
    P(kubedebug.ephemeral.ephemeral_results#lookup) lookup, for the same selections.
  - For audits (which pods carry debug containers, since when, with which image; they can never be removed) and for
    C(until:) loops. Logs are off by default.
  - Runs as a task, so it honours C(delegate_to) and works in check mode; the lookup runs on the controller at template
    time. See the collection's guide on collecting results.
author:
  - kubedebug.ephemeral contributors (@kubedebug)
extends_documentation_fragment:
  - kubedebug.ephemeral.attributes
  - ansible.builtin.action_common_attributes
  - kubedebug.ephemeral.auth
  - kubedebug.ephemeral.selection
  - kubedebug.ephemeral.selection.modules
  - kubedebug.ephemeral.results
attributes:
  check_mode:
    support: full
    details:
      - It only reads.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  wait_for:
    description:
      - Wait until every selected container V(running) (or finished), or V(terminated), before reporting.
    type: str
    choices: [none, running, terminated]
    default: none
  logs:
    description:
      - Also read each container's logs (needs C(get) on C(pods/log)).
    type: bool
    default: false
notes:
  - Pods that carry no ephemeral container give no record unless O(container) names one.
  - The task fails only when nothing could be collected; a pod or container that is missing, or logs that may not be
    read, give a record with C(error) while the others are reported.
requirements:
  - kubernetes (the Python client) >= 24.2.0
seealso:
  - ref: ansible_collections.kubedebug.ephemeral.docsite.results
    description: Collecting what ephemeral containers did, as a task or at template time.
  - plugin: kubedebug.ephemeral.ephemeral_results
    plugin_type: lookup
  - module: kubedebug.ephemeral.ephemeral_container
"""

EXAMPLES = r"""
- name: Which pods in prod carry debug containers, since when, with which image?
  kubedebug.ephemeral.ephemeral_container_info:
    namespace: prod
  register: audit

- name: Report them
  ansible.builtin.debug:
    msg: "{{ item.namespace }}/{{ item.pod }}: {{ item.container }} ({{ item.image }}) since {{ item.started_at }}"
  loop: "{{ audit.pods }}"

- name: Wait in a loop until a diagnostic has finished everywhere, then read its JSON output
  kubedebug.ephemeral.ephemeral_container_info:
    namespace: shop
    label_selector: app.kubernetes.io/name=web
    container: kd-dns-run1
    logs: true
    parse: json_lines
  register: dns
  until: dns.pods | rejectattr('state', 'equalto', 'terminated') | list | length == 0
  retries: 30
  delay: 2
"""

RETURN = r"""
api:
  description:
    - What the task cost in API traffic, counted over every request it sent (also returned when it failed).
    - See O(request_retries) and O(request_timeout).
  returned: always
  type: dict
  sample: {"requests": 12, "retries": 2, "throttled": 2, "timeouts": 0, "watch_restarts": 0, "backoff_seconds": 2.31}
  contains:
    requests:
      description: HTTP requests sent, each attempt and each watch counted.
      type: int
    retries:
      description: Requests tried again after a transient failure (throttling, overload, a dropped connection, a timeout).
      type: int
    throttled:
      description: Answers HTTP 429 Too Many Requests (API Priority and Fairness or another limit).
      type: int
    timeouts:
      description: Requests that got no answer within O(request_timeout).
      type: int
    watch_restarts:
      description: Times a watch was cut, stalled, ended early or expired (410 Gone), and pods were listed again.
      type: int
    backoff_seconds:
      description: Seconds spent waiting before retries (C(Retry-After) or backoff).
      type: float
pods:
  description: One record per pod and ephemeral container, ordered by namespace, pod and container.
  returned: always
  type: list
  elements: dict
  contains:
    namespace:
      description: The pod's namespace.
      type: str
    pod:
      description: The pod's name.
      type: str
    node:
      description: The node the pod runs on (null for a pod that was not found).
      type: str
    container:
      description: The ephemeral container's name (null for a pod that was not found).
      type: str
    image:
      description: Its image.
      type: str
    target_container:
      description: The container whose process namespace it shares, if any.
      type: str
    state:
      description: V(pending) (no status yet), V(waiting), V(running) or V(terminated).
      type: str
    reason:
      description: For example V(ContainerCreating), V(ImagePullBackOff), V(Completed), V(Error).
      type: str
    message:
      description: The kubelet's message, if any.
      type: str
    exit_code:
      description: The exit code of a terminated container.
      type: int
    started_at:
      description: When it started (RFC 3339).
      type: str
    finished_at:
      description: When it finished (RFC 3339).
      type: str
    duration_seconds:
      description: How long a terminated container ran; null otherwise.
      type: float
    logs:
      description: The log text (with O(logs=true)); null when the container never started.
      type: str
    output:
      description: The logs parsed as O(parse) says.
      type: raw
    truncated:
      description: Whether O(limit_bytes) cut the logs.
      type: bool
    parse_error:
      description:
        - What could not be parsed, if anything - the numbers of the lines that are not JSON and why the first is not;
          null when everything parsed.
        - With O(parse=json_lines) a bad line never costs the others - C(output) has every line that parsed, before and
          after it.
      type: str
    bad_lines:
      description:
        - The lines that could not be parsed (at most 100, in order; C(parse_error) counts them all), empty when there
          are none. Line numbers count from 1 in the logs as read, blank lines included.
        - With O(parse=json), the line the JSON error points at.
      type: list
      elements: dict
      contains:
        line:
          description: The line's number.
          type: int
        text:
          description: Its first 200 characters.
          type: str
        error:
          description: Why it is not JSON.
          type: str
    partial_line:
      description:
        - The last line of the logs when O(limit_bytes) cut it (C(truncated) is true and the logs do not end in a
          newline). It is left out of C(output) rather than parsed as garbage; raise O(limit_bytes) to get it whole.
        - Null when nothing was cut. A last line without a newline in logs that were not cut is a whole line and is
          parsed.
      type: dict
      contains:
        line:
          description: The line's number.
          type: int
        text:
          description: Its first 200 characters.
          type: str
        chars:
          description: How many of its characters were read.
          type: int
    invalid_utf8:
      description:
        - How many invalid UTF-8 sequences the logs held, each replaced with U+FFFD in C(logs) and C(output); 0 when
          none (or when no logs were read).
      type: int
    error:
      description: Why nothing could be collected for this pod or container (missing pod or container, permission).
      type: str
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubedebug.ephemeral.plugins.module_utils._auth import AUTH_ARG_SPEC
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._module import run_module
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._pods import WAIT_MODES
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._results import DEFAULT_LIMIT_BYTES, PARSE_MODES
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._results_manager import (
    ResultsManager,
    ResultsRequest,
)
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._selection import (
    SELECTION_ARG_SPEC,
    SELECTION_MUTUALLY_EXCLUSIVE,
)


def argument_spec() -> dict[str, Any]:
    return {
        **AUTH_ARG_SPEC,
        **SELECTION_ARG_SPEC,
        "container": {"type": "list", "elements": "str"},
        "wait_for": {"type": "str", "default": "none", "choices": list(WAIT_MODES)},
        "wait_timeout": {"type": "int", "default": 120},
        "logs": {"type": "bool", "default": False},
        "tail_lines": {"type": "int"},
        "limit_bytes": {"type": "int", "default": DEFAULT_LIMIT_BYTES},
        "parse": {"type": "str", "default": "raw", "choices": list(PARSE_MODES)},
        "parallel": {"type": "int", "default": 10},
    }


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True, mutually_exclusive=SELECTION_MUTUALLY_EXCLUSIVE)
    run_module(module, lambda: ResultsRequest.from_options(module.params["pod"], module.params.get), ResultsManager)


if __name__ == "__main__":
    main()
