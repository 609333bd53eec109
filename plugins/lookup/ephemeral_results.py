# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: ephemeral_results
short_description: Collect what ephemeral containers did - state, exit code, timings, logs, parsed output
version_added: 0.1.0
description:
  - Returns one record per pod and ephemeral container, for the pods named in the terms or matched by
    O(label_selector), ordered by namespace, pod and container.
  - Waits for the containers to finish (O(wait_for)), reads their logs and parses them (O(parse)), for many pods at
    once with one LIST for the selection and one log request per container.
  - Runs on the controller, at template time. The P(kubedebug.ephemeral.ephemeral_container_info#module) module
    returns the same records as a task (honouring C(delegate_to) and check mode).
  - A missing pod, a container the pod lacks, or logs that may not be read give a record with C(error) when other
    records could be collected, and an error when none could.
author:
  - kubedebug.ephemeral contributors (@kubedebug)
extends_documentation_fragment:
  - kubedebug.ephemeral.auth
  - kubedebug.ephemeral.auth.plugins
  - kubedebug.ephemeral.selection
  - kubedebug.ephemeral.results
options:
  _terms:
    description:
      - Pod references, V(namespace/pod), or a bare pod name in O(namespace).
      - Without terms, every pod in O(namespace) (or in all namespaces) is looked at, narrowed by O(label_selector).
    type: list
    elements: str
    required: false
  wait_for:
    description:
      - Wait until every selected container V(terminated), or V(running) (or finished), or V(none).
    type: str
    choices: [none, running, terminated]
    default: terminated
  logs:
    description:
      - Read each container's logs (needs C(get) on C(pods/log)).
    type: bool
    default: true
notes:
  - Collecting through logs needs only C(get) on C(pods/log) besides C(list) and C(watch) on C(pods).
requirements:
  - kubernetes (the Python client) >= 24.2.0
seealso:
  - ref: ansible_collections.kubedebug.ephemeral.docsite.results
    description: When to use the lookup and when the info module, and how recipes report their checks.
  - module: kubedebug.ephemeral.ephemeral_container_info
  - module: kubedebug.ephemeral.ephemeral_container
"""

EXAMPLES = r"""
- name: Add a one-shot DNS check to a pod
  kubedebug.ephemeral.ephemeral_container:
    namespace: shop
    pod: web-0
    container: kd-dns-run1
    image: docker.io/library/busybox:1.36
    command: [sh, -c, 'nslookup kubernetes.default.svc >/dev/null && echo "{\"ok\": true}" || echo "{\"ok\": false}"']
    wait: none

- name: Wait for it to finish and read its JSON output
  ansible.builtin.set_fact:
    dns: "{{ query('kubedebug.ephemeral.ephemeral_results', 'shop/web-0', container='kd-dns-run1', parse='json_lines') }}"

- name: Fail when the check failed
  ansible.builtin.assert:
    that: dns[0].exit_code == 0 and dns[0].output[0].ok

- name: The same container in every pod of an app, across the cluster, last 100 lines each
  ansible.builtin.debug:
    msg: >-
      {{ query('kubedebug.ephemeral.ephemeral_results', label_selector='app.kubernetes.io/name=web',
               all_namespaces=true, container='kd-dns-run1', tail_lines=100, wait_timeout=300) }}
"""

RETURN = r"""
_list:
  description: One record per pod and ephemeral container.
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
      description: The log text; null when the container never started or O(logs=false).
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
    api:
      description:
        - The API traffic of the whole lookup call that collected this record, the same in every record of one
          call; the module P(kubedebug.ephemeral.ephemeral_container_info#module) returns it once, as
          RV(kubedebug.ephemeral.ephemeral_container_info#module:api).
        - See O(request_retries) and O(request_timeout).
      type: dict
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
"""

from typing import Any

from ansible_collections.kubedebug.ephemeral.plugins.module_utils._results_manager import (
    ResultsManager,
    ResultsRequest,
)
from ansible_collections.kubedebug.ephemeral.plugins.plugin_utils._lookup import KubedebugLookupBase


class LookupModule(KubedebugLookupBase):
    NAME = "ephemeral_results"

    def run(self, terms: list[Any], variables: dict[str, Any] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
        self.load_options(variables, kwargs)
        result = self.run_manager(lambda: ResultsRequest.from_options([str(t) for t in terms], self.get_option), ResultsManager)
        # A lookup returns only its records: each carries the API traffic of the call that collected them.
        return [dict(record, api=dict(result["api"])) for record in result["pods"]]
