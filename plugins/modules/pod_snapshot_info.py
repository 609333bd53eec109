#!/usr/bin/python
# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: pod_snapshot_info
short_description: Take a read-only snapshot of pods for an incident bundle (status, containers, events and logs)
version_added: 0.1.0
description:
  - Returns one record per pod with what an incident responder looks at first, read in one go before anything changes
    the pods. That is the pod's node, phase and conditions; each init, regular and ephemeral container's state, restart count
    and last termination (for example V(OOMKilled) with exit code V(137)); the pod's events, newest last; and the
    current log of each regular container, plus the log of its previous instance when it has restarted.
  - Pods are chosen like M(kubedebug.ephemeral.ephemeral_container_info) chooses them, by name or by O(namespace)
    (or O(all_namespaces)) and O(label_selector).
  - Events are read with one C(LIST) per namespace (C(fieldSelector=involvedObject.kind=Pod)), not one per pod.
    Logs are read O(parallel) at a time, each bounded by O(tail_lines) and O(limit_bytes).
  - Whatever cannot be read (a pod that does not exist, events or logs that may not be read) is said in the record's
    C(error); the rest of the record is still returned.
author:
  - kubedebug.ephemeral contributors (@kubedebug)
extends_documentation_fragment:
  - kubedebug.ephemeral.attributes
  - ansible.builtin.action_common_attributes
  - kubedebug.ephemeral.auth
  - kubedebug.ephemeral.selection
  - kubedebug.ephemeral.selection.modules
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
  events_limit:
    description:
      - At most this many events per pod, the newest ones.
      - V(0) reads no events at all (no C(list) on C(events) is needed then, and every record's C(events) is empty).
    type: int
    default: 20
  logs:
    description:
      - Read the logs of each regular container (not of init or ephemeral containers). Needs C(get) on C(pods/log).
      - The current log is read unless the container has never started; the previous one when the container has
        restarted (C(restart_count) above 0).
    type: bool
    default: true
  tail_lines:
    description:
      - Only the last lines of each log.
    type: int
    default: 100
  limit_bytes:
    description:
      - At most this many bytes of each log (the API server cuts it, after O(tail_lines)). The log entry's
        C(current_truncated) and C(previous_truncated) tell when it did.
      - Bounded by default so that a chatty container cannot exhaust the controller's memory.
    type: int
    default: 262144
  parallel:
    description:
      - How many API requests (event lists and log reads) are made at once.
    type: int
    default: 10
notes:
  - A named pod that does not exist gets a record whose C(error) says so; its events are still returned, since the
    events of a deleted pod outlive it (for an hour by default).
  - The task fails only when not one selected pod could be read; the records are returned with the failure too.
  - A selection that matches no pods is not a failure; it gives a warning and an empty RV(pods) list.
  - Needs C(list) on C(pods), C(list) on C(events) (unless O(events_limit=0)) and C(get) on C(pods/log)
    (unless O(logs=false)) in the namespaces looked at.
requirements:
  - kubernetes (the Python client) >= 24.2.0
seealso:
  - ref: ansible_collections.kubedebug.ephemeral.docsite.rbac
    description: The read permissions a snapshot needs (pods, events, pods/log).
  - module: kubedebug.ephemeral.ephemeral_container_info
  - module: kubedebug.ephemeral.ephemeral_container
"""

EXAMPLES = r"""
- name: Snapshot the web pods of the shop before anyone restarts them
  kubedebug.ephemeral.pod_snapshot_info:
    namespace: shop
    label_selector: app.kubernetes.io/name=web
  register: snapshot

- name: Keep it with the incident
  ansible.builtin.copy:
    content: "{{ snapshot.pods | to_nice_json }}"
    dest: "/var/incidents/{{ incident_id }}/pods.json"
    mode: "0600"
  delegate_to: localhost

- name: Which containers were OOM-killed, and how often have they restarted?
  ansible.builtin.debug:
    msg: "{{ item.0.namespace }}/{{ item.0.pod }} {{ item.1.name }}: {{ item.1.restart_count }} restarts"
  loop: "{{ snapshot.pods | selectattr('containers') | subelements('containers') }}"
  when: (item.1.last_termination.reason | default('')) == 'OOMKilled'

- name: What did the app container of each pod log before its last restart?
  ansible.builtin.debug:
    msg: "{{ item.namespace }}/{{ item.pod }}: {{ item.logs.app.previous }}"
  loop: "{{ snapshot.pods | selectattr('logs') | list }}"
  when: item.logs.app.previous | default(none) is not none

- name: Two named pods, only their status and last 5 events (no logs)
  kubedebug.ephemeral.pod_snapshot_info:
    pod:
      - payments/api-7d9c6b5f4-x2x9q
      - payments/api-7d9c6b5f4-k8mzt
    logs: false
    events_limit: 5
  register: brief
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
  description: One record per pod, ordered by namespace and pod.
  returned: always
  type: list
  elements: dict
  contains:
    namespace:
      description: The pod's namespace.
      type: str
      sample: shop
    pod:
      description: The pod's name.
      type: str
      sample: web-0
    node:
      description: The node the pod is scheduled to (null when not scheduled, or when the pod could not be read).
      type: str
      sample: node-1
    phase:
      description: V(Pending), V(Running), V(Succeeded), V(Failed) or V(Unknown).
      type: str
      sample: Running
    reason:
      description: Why the pod is in this phase, if the kubelet says, for example V(Evicted).
      type: str
    message:
      description: The kubelet's message about the pod, if any.
      type: str
    start_time:
      description: When the kubelet accepted the pod (RFC 3339).
      type: str
      sample: "2026-11-25T09:53:08Z"
    conditions:
      description: The pod's conditions, in the API's order. Null when the pod could not be read.
      type: list
      elements: dict
      contains:
        type:
          description: For example V(PodScheduled), V(Initialized), V(ContainersReady), V(Ready).
          type: str
        status:
          description: V(True), V(False) or V(Unknown).
          type: str
        reason:
          description: Why, for example V(ContainersNotReady).
          type: str
        message:
          description: Details, if any.
          type: str
        last_transition_time:
          description: When the condition last changed (RFC 3339).
          type: str
    containers:
      description:
        - Every container of the pod, init containers first, then regular, then ephemeral ones, each in the order
          of the pod's spec. Null when the pod could not be read.
      type: list
      elements: dict
      contains:
        name:
          description: The container's name.
          type: str
        kind:
          description: V(init), V(container) or V(ephemeral).
          type: str
        image:
          description: The image of the pod's spec.
          type: str
        ready:
          description: Whether the container is ready (false when it has no status yet).
          type: bool
        restart_count:
          description: How many times the container has been restarted.
          type: int
        state:
          description: The current state, flattened.
          type: dict
          contains:
            status:
              description: V(pending) (no status yet), V(waiting), V(running) or V(terminated).
              type: str
            reason:
              description: For example V(CrashLoopBackOff), V(ImagePullBackOff), V(Completed), V(Error), V(OOMKilled).
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
        last_termination:
          description: How the previous instance of the container ended, or null if there is none.
          type: dict
          contains:
            reason:
              description: For example V(OOMKilled), V(Error), V(Completed).
              type: str
            exit_code:
              description: Its exit code, for example V(137) for a container killed by SIGKILL.
              type: int
            started_at:
              description: When it started (RFC 3339).
              type: str
            finished_at:
              description: When it ended (RFC 3339).
              type: str
    events:
      description:
        - The pod's events, newest last, at most O(events_limit).
        - Null when the events could not be read (see C(error)); empty with O(events_limit=0).
      type: list
      elements: dict
      contains:
        type:
          description: V(Normal) or V(Warning).
          type: str
        reason:
          description: For example V(Scheduled), V(BackOff), V(Killing), V(Unhealthy), V(FailedScheduling).
          type: str
        message:
          description: What happened.
          type: str
        count:
          description: How many times it happened (C(count), or C(series.count) for events that carry a series).
          type: int
        first_seen:
          description: When it first happened (C(firstTimestamp), or C(eventTime)).
          type: str
        last_seen:
          description: When it last happened (C(series.lastObservedTime), C(lastTimestamp), or C(eventTime)).
          type: str
        source:
          description: Who reported it (C(source.component), or C(reportingComponent)), for example V(kubelet).
          type: str
    logs:
      description:
        - The logs of each regular container, keyed by the container's name, in the order of the pod's spec. Each
          value has the keys C(current), C(previous), C(current_truncated) and C(previous_truncated).
        - C(current) is the last O(tail_lines) lines of the container's current log, at most O(limit_bytes); null when
          it has never started, or when the log could not be read (see C(error)).
        - C(previous) is the same of the instance before the last restart; null when the container has not restarted,
          when the kubelet no longer has that log, or when it could not be read.
        - C(current_truncated) and C(previous_truncated) tell whether O(limit_bytes) cut the log.
        - Empty with O(logs=false); null when the pod could not be read.
      type: dict
      sample:
        app:
          current: "listening on :8080\n"
          previous: "loading 3 shards into memory\n"
          current_truncated: false
          previous_truncated: false
    error:
      description:
        - Null, or why something about this pod could not be read (the pod itself, its events or its logs), for
          example the permission that is missing. Several reasons are joined with V(; ).
      type: str
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubedebug.ephemeral.plugins.module_utils._auth import AUTH_ARG_SPEC
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._module import run_module
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._selection import (
    SELECTION_ARG_SPEC,
    SELECTION_MUTUALLY_EXCLUSIVE,
)
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._snapshot import (
    DEFAULT_EVENTS_LIMIT,
    DEFAULT_LIMIT_BYTES,
    DEFAULT_TAIL_LINES,
)
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._snapshot_manager import (
    SnapshotManager,
    SnapshotRequest,
)


def argument_spec() -> dict[str, Any]:
    return {
        **AUTH_ARG_SPEC,
        **SELECTION_ARG_SPEC,
        "events_limit": {"type": "int", "default": DEFAULT_EVENTS_LIMIT},
        "logs": {"type": "bool", "default": True},
        "tail_lines": {"type": "int", "default": DEFAULT_TAIL_LINES},
        "limit_bytes": {"type": "int", "default": DEFAULT_LIMIT_BYTES},
        "parallel": {"type": "int", "default": 10},
    }


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True, mutually_exclusive=SELECTION_MUTUALLY_EXCLUSIVE)
    run_module(module, lambda: SnapshotRequest.from_options(module.params["pod"], module.params.get), SnapshotManager)


if __name__ == "__main__":
    main()
