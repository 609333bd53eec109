#!/usr/bin/python
# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: debugged_pods_info
short_description: Find the pods left carrying ephemeral (debug) containers, who added them and why, and what to restart
version_added: 0.1.0
description:
  - Lists every selected pod that carries ephemeral containers. A pod never drops them; only deleting the pod does.
    Each record says what the containers are, their state, and whether they still run. It gives their
    security-relevant settings, and who added each one and why, read from the C(debug.kubedebug.io/<container>)
    annotation that M(kubedebug.ephemeral.ephemeral_container) writes with O(kubedebug.ephemeral.ephemeral_container#module:annotate=true).
    Containers added any other way (C(kubectl debug), a client library) are reported as added by V(unknown).
  - Each record also says what the containers mean for the next ephemeral container added to the pod. PodSecurity
    admission checks the whole pod, the ephemeral containers already there included, on every add; so a privileged
    debug container, or one that adds capabilities, makes every later add fail under a stricter namespace level.
    The namespace's C(pod-security.kubernetes.io/enforce) label is read to say whether that is already the case.
  - Each record names the workload to restart when the debugging is over (a Deployment, found through its
    ReplicaSet; a StatefulSet, DaemonSet or Job), with the C(kubectl) command, or says to delete and recreate a bare pod.
  - Pods are chosen like M(kubedebug.ephemeral.ephemeral_container_info) chooses them. A whole namespace, or the whole
    cluster with O(all_namespaces=true), may be looked through without a selector.
  - Reads one pod C(LIST) per namespace (one cluster-wide C(LIST) with O(all_namespaces=true)). Only for the pods
    that carry ephemeral containers, it reads one C(GET) per owning ReplicaSet and one C(GET) per namespace, never
    one per pod.
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
  only_running:
    description:
      - Report only the ephemeral containers that still run (and only the pods with one).
    type: bool
    default: false
  added_by:
    description:
      - Report only the ephemeral containers added with this collection's audit annotation (V(us)), only the others
        (V(others)), or all of them (V(any)).
    type: str
    choices: [any, us, others]
    default: any
notes:
  - The PodSecurity level of a container (RV(pods[].containers[].pod_security_level)) looks only at the settings an
    ephemeral container decides itself. For baseline these are C(privileged), added capabilities and a seccomp profile of
    C(Unconfined). For restricted they are C(allowPrivilegeEscalation), dropping C(ALL), C(runAsNonRoot), C(runAsUser)
    and the seccomp profile (the pod's settings counted). Host namespaces, volumes and the other pod-wide checks are the
    workload's own.
  - Needs C(list) on C(pods) in the namespaces looked at (cluster-wide with O(all_namespaces=true)). Without C(get) on
    C(replicasets) (apps) the Deployment is inferred from the ReplicaSet's name and the pod's C(pod-template-hash)
    label, and the record says so. Without C(get) on C(namespaces) the enforced PodSecurity level is V(unknown).
  - A named pod that does not exist is listed in RV(missing); the task fails only when not one named pod could be read.
requirements:
  - kubernetes (the Python client) >= 24.2.0
seealso:
  - ref: ansible_collections.kubedebug.ephemeral.docsite.debugged_pods
    description: What debugging leaves behind in a pod, and when to restart the workload.
  - module: kubedebug.ephemeral.ephemeral_container
  - module: kubedebug.ephemeral.ephemeral_container_info
"""

EXAMPLES = r"""
- name: Which pods in prod still carry debug containers, and what should be restarted?
  kubedebug.ephemeral.debugged_pods_info:
    namespace: prod
  register: leftovers

- name: Say what to restart
  ansible.builtin.debug:
    msg: "{{ item.namespace }}/{{ item.pod }}: {{ item.restart.advice }} ({{ item.restart.command }})"
  loop: "{{ leftovers.pods }}"

- name: The whole cluster, only debug containers that still run and that someone else added
  kubedebug.ephemeral.debugged_pods_info:
    all_namespaces: true
    only_running: true
    added_by: others
  register: strangers

- name: Fail when a debug container already blocks every later one (PodSecurity)
  ansible.builtin.assert:
    that: leftovers.pods | map(attribute='pod_security.violating') | flatten | length == 0
    fail_msg: "{{ leftovers.pods | selectattr('pod_security.violating') | map(attribute='pod_security.note') | list }}"
"""

RETURN = r"""
api:
  description:
    - What the task cost in API traffic, counted over every request it sent (also returned when it failed).
    - See O(request_retries) and O(request_timeout).
  returned: always
  type: dict
  sample: {"requests": 4, "retries": 0, "throttled": 0, "timeouts": 0, "watch_restarts": 0, "backoff_seconds": 0.0}
  contains:
    requests:
      description: HTTP requests sent, each attempt counted.
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
      description: Always V(0) (this module does not watch).
      type: int
    backoff_seconds:
      description: Seconds spent waiting before retries (C(Retry-After) or backoff).
      type: float
pods:
  description: One record per pod that carries ephemeral containers (that the filters keep), ordered by namespace and pod.
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
      sample: web-7d9c6b5f4-x2x9q
    node:
      description: The node the pod runs on.
      type: str
    phase:
      description: The pod's phase, for example V(Running).
      type: str
    containers:
      description: The pod's ephemeral containers that the filters keep, in the order of the pod's spec.
      type: list
      elements: dict
      contains:
        name:
          description: The container's name.
          type: str
          sample: kd-dns-sweep-1
        image:
          description: Its image.
          type: str
        target:
          description: The container whose process namespace it shares (C(targetContainerName)), or null.
          type: str
        state:
          description: Its state, flattened as M(kubedebug.ephemeral.pod_snapshot_info) reports it.
          type: dict
          contains:
            status:
              description: V(pending) (no status yet), V(waiting), V(running) or V(terminated).
              type: str
            reason:
              description: For example V(ImagePullBackOff), V(Completed), V(Error).
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
        running:
          description: Whether it still runs.
          type: bool
        privileged:
          description: Whether it runs privileged (C(securityContext.privileged)).
          type: bool
        capabilities_added:
          description: The Linux capabilities it adds (C(securityContext.capabilities.add)).
          type: list
          elements: str
          sample: [SYS_PTRACE]
        pod_security_level:
          description:
            - The strictest Pod Security Standard its own settings meet, V(privileged), V(baseline) or V(restricted)
              (see the notes for which settings count).
          type: str
        added_by_us:
          description: Whether this collection's audit annotation says who added it.
          type: bool
        by:
          description: Who added it, as the audit annotation says; V(unknown) for containers added without it.
          type: str
          sample: jane@example.com
        at:
          description: When it was added (RFC 3339), from the audit annotation; null without it.
          type: str
        reason:
          description: Why it was added, from the audit annotation; null without it or when no reason was given.
          type: str
          sample: INC-42
    running:
      description: How many of the containers reported still run.
      type: int
    owner:
      description:
        - The workload that recreates the pod, or null for a bare pod.
        - C(kind) and C(name) of a Deployment (found through the pod's ReplicaSet), StatefulSet, DaemonSet, Job,
          ReplicaSet without a Deployment, or any other controller; C(via) says how a Deployment was found, for example
          V(ReplicaSet web-7d9c6b5f4), or that it was inferred from the C(pod-template-hash) label and why.
      type: dict
      sample: {"kind": "Deployment", "name": "web", "via": "ReplicaSet web-7d9c6b5f4"}
    restart:
      description:
        - What to do when the debugging is over. C(advice) says it in words; C(command) is the C(kubectl) command
          (empty for a static pod).
      type: dict
      sample: {"advice": "restart Deployment web when done ...", "command": "kubectl -n shop rollout restart deployment/web"}
    pod_security:
      description:
        - C(enforce) is the namespace's enforced PodSecurity level, its C(pod-security.kubernetes.io/enforce) label.
          It is null when the label is not set, and V(unknown) when the namespace could not be read.
        - C(violating) lists the ephemeral containers that already violate it. Every later add to this pod is then
          refused, since PodSecurity checks the whole pod on every add.
        - C(note) says it in words, and which containers would block later adds under a stricter level; null when
          there is nothing to say.
      type: dict
      sample: {"enforce": "baseline", "violating": ["debug"], "note": "ephemeral container debug already violates ..."}
    notes:
      description:
        - What the containers changed, in words. The first note is always that the pod keeps its ephemeral
          containers until it is deleted. Others explain an annotation that could not be read, or a Deployment that
          was inferred.
      type: list
      elements: str
summary:
  description: Counts over the containers reported (after O(only_running) and O(added_by)).
  returned: always
  type: dict
  sample: {"pods_scanned": 40, "pods_debugged": 2, "containers": 3, "running": 1, "by_us": 2, "unknown": 1,
           "by_namespace": {"shop": {"pods": 2, "containers": 3, "running": 1}}}
  contains:
    pods_scanned:
      description: How many pods were listed.
      type: int
    pods_debugged:
      description: How many pods are reported.
      type: int
    containers:
      description: How many ephemeral containers are reported.
      type: int
    running:
      description: How many of them still run.
      type: int
    by_us:
      description: How many carry this collection's audit annotation.
      type: int
    unknown:
      description: How many were added by someone else (or carry an unreadable annotation).
      type: int
    by_namespace:
      description: Namespace -> C(pods), C(containers) and C(running).
      type: dict
missing:
  description: The named pods that could not be read, each with C(namespace), C(pod) and C(error).
  returned: always
  type: list
  elements: dict
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubedebug.ephemeral.plugins.module_utils._auth import AUTH_ARG_SPEC
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._debugged import ADDED_BY
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._debugged_manager import (
    DebuggedManager,
    DebuggedRequest,
)
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._module import run_module
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._selection import (
    SELECTION_ARG_SPEC,
    SELECTION_MUTUALLY_EXCLUSIVE,
)


def argument_spec() -> dict[str, Any]:
    return {
        **AUTH_ARG_SPEC,
        **SELECTION_ARG_SPEC,
        "only_running": {"type": "bool", "default": False},
        "added_by": {"type": "str", "default": "any", "choices": list(ADDED_BY)},
    }


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True, mutually_exclusive=SELECTION_MUTUALLY_EXCLUSIVE)
    run_module(module, lambda: DebuggedRequest.from_options(module.params["pod"], module.params.get), DebuggedManager)


if __name__ == "__main__":
    main()
