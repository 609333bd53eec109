#!/usr/bin/python
# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: ephemeral_container
short_description: Add ephemeral debug containers to running pods, idempotently
version_added: 0.1.0
description:
  - Adds an ephemeral container to one pod, or to every pod a label or field selector matches, in one or more
    namespaces, through the C(pods/ephemeralcontainers) subresource (what C(kubectl debug) does for a single pod).
  - Idempotent by container name. A pod that already has an ephemeral container named O(container) is left alone,
    whoever added it (this module, C(kubectl debug -c), or anything else). The API never allows an ephemeral container
    to be changed or removed, so if the existing one differs from the request the difference is reported
    (see O(on_conflict)).
  - Requests that the API server or the kubelet would refuse are refused before the API is called, per pod, with a
    message that names the pod, the namespace and the field. Refusals, conflicts with O(on_conflict=fail) and waits
    that time out make the task fail, but every pod still gets its result in RV(pods).
  - Pods are read with one LIST per namespace (or one cluster-wide LIST), patched with bounded concurrency, and
    waited for with one watch per namespace.
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
      - The patch is sent with O(ignore:dryRun=All), so RBAC and admission (PodSecurity) refusals are reported in check
        mode too; nothing is persisted. Waiting is skipped.
  diff_mode:
    support: full
    details:
      - For each pod that changes, the ephemeral container names before and after and the spec that is added.
  idempotent:
    support: full
    details:
      - A container whose name already exists in the pod is never added again (RV(pods[].action=unchanged)).
      - Two runs adding the same container to the same pod at once agree on who added it. Each PATCH carries
        the pod's C(resourceVersion) as a precondition, so the run that loses the race gets 409 Conflict, reads
        the pod again and reports V(unchanged), never V(added) a second time.
options:
  container:
    description:
      - The ephemeral container's name. Idempotency is by this name.
    type: str
    required: true
  image:
    description:
      - The debug container's image.
    type: str
    required: true
  command:
    description:
      - The entrypoint (C(command)). The image's entrypoint when omitted.
      - An ephemeral container is never restarted; give it a finite command, or a long V(sleep) to exec into.
    type: list
    elements: str
  args:
    description:
      - Arguments to the entrypoint (C(args)).
    type: list
    elements: str
  env:
    description:
      - Environment variables, as a mapping from names to values or as a list of Kubernetes EnvVar mappings (which may
        use C(valueFrom)).
    type: raw
  target_container:
    description:
      - The container whose process namespace the debug container joins (C(targetContainerName)), so it can see and
        inspect that container's processes (for example through C(/proc/<pid>/root)).
      - When omitted, profiles meant for process inspection (V(general) and V(sysadmin)) target the pod's first
        container; the other profiles target nothing. Set to an empty string to target nothing with any profile.
      - Must name a regular or init container of the pod.
    type: str
  profile:
    description:
      - The security profile, with C(kubectl debug --profile)'s meanings for an ephemeral container.
      - V(general) adds the C(SYS_PTRACE) capability (the default of C(kubectl debug) since 1.36).
      - V(baseline) sets no security context (passes PodSecurity C(baseline)).
      - V(restricted) runs as non-root, drops all capabilities, forbids privilege escalation and uses the
        C(RuntimeDefault) seccomp profile (passes PodSecurity C(restricted); the image must run as a non-root user).
      - V(netadmin) adds C(NET_ADMIN) and C(NET_RAW); V(sysadmin) runs privileged; V(legacy) changes nothing.
    type: str
    choices: [general, baseline, restricted, netadmin, sysadmin, legacy]
    default: general
  security_context:
    description:
      - A container C(securityContext). Its top-level keys replace those of the profile.
    type: dict
  volume_mounts:
    description:
      - Volume mounts (Kubernetes VolumeMount mappings) of volumes the pod already has. C(subPath) and C(subPathExpr)
        are refused by the API server on ephemeral containers.
    type: list
    elements: dict
  copy_volume_mounts:
    description:
      - Mount the target container's volumes at the same paths, skipping its C(subPath) mounts (which the API refuses
        on ephemeral containers). O(volume_mounts) win on the same mount path.
    type: bool
    default: false
  copy_env:
    description:
      - Give the debug container the target container's C(env) and C(envFrom), as written in its spec (what
        C(kubectl debug) users ask for). References to Secrets, ConfigMaps and fields stay references, which the
        kubelet resolves in the debug container as in the target. O(env) wins on the same name.
      - Plain C(value) entries of the target show in the result's RV(pods[].spec) and in the diff, as they show to
        anyone who can read the pod; set C(no_log) on the task when the target keeps secrets in plain values.
      - Needs a target (O(target_container), or a profile that targets the first container).
    type: bool
    default: false
    version_added: 0.1.0
  working_dir:
    description:
      - The working directory.
    type: str
  stdin:
    description:
      - Allocate a buffer for stdin, for a later C(kubectl attach -i).
    type: bool
    default: false
  tty:
    description:
      - Allocate a TTY. Needs O(stdin=true).
    type: bool
    default: false
  image_pull_policy:
    description:
      - The image pull policy. When omitted the API server's default applies (V(Always) for V(:latest) or untagged
        images, else V(IfNotPresent)).
    type: str
    choices: [Always, IfNotPresent, Never]
  spec_override:
    description:
      - A partial container spec merged last, recursively (like C(kubectl debug --custom)). It cannot set the name,
        the image or the target; fields that ephemeral containers forbid (ports, resources, probes, lifecycle,
        resizePolicy, restartPolicy) are refused.
    type: dict
  on_conflict:
    description:
      - What to do when a pod already has an ephemeral container named O(container) with another spec.
      - V(warn) reports the pod as RV(pods[].action=conflict) with a warning that shows the difference.
      - V(fail) also makes the task fail.
    type: str
    choices: [warn, fail]
    default: warn
  allowed_images:
    description:
      - Regular expressions, one of which must match the whole of O(image). Empty (the default) allows any image.
      - The image is matched as written, case and all. Nothing is filled in - V(busybox:1.36),
        V(docker.io/library/busybox:1.36) and V(index.docker.io/library/busybox:1.36) are three references to allow one
        by one - since a short name may resolve to another registry on another runtime. A port belongs to the registry
        host (V(registry.example.com:5000/tools/debug:1)), never to the tag.
      - With O(allowed_images) set, an image that is not a valid reference (upper case in the path, whitespace, a second
        tag) is refused. An image with both a tag and a digest is pulled by the digest alone, so it is allowed only when
        a pattern also matches it without the tag (V(name@sha256:...)) or names that digest; a pattern such as
        V(registry\\.example\\.com/tools/.*) allows both forms.
      - O(spec_override) can never set the image, in any spelling of the key.
      - Set it with C(module_defaults) for this module (not for the group C(group/kubedebug.ephemeral.k8s), whose
        other modules do not take it) to keep on-call staff to vetted debug images.
    type: list
    elements: str
    default: []
  wait:
    description:
      - V(running) waits until the container runs (or has already finished); V(terminated) until it has exited;
        V(none) does not wait.
      - A container still waiting at the timeout fails the pod with its reason and message (for example
        C(ImagePullBackOff)).
    type: str
    choices: [none, running, terminated]
    default: running
  wait_timeout:
    description:
      - How long to wait, in seconds, for all pods together. At most V(604800) (a week).
    type: int
    default: 120
  parallel:
    description:
      - How many pods are patched at once (watches come on top, one per namespace).
      - The default stays well inside the share of concurrent requests that API Priority and Fairness gives one user
        or ServiceAccount; when to raise or lower it on big or busy clusters is in the
        R(large fleets guide,ansible_collections.kubedebug.ephemeral.docsite.scale).
    type: int
    default: 10
  preflight:
    description:
      - Checks made, before anything is added, for each pod that is about to get the container; each is reported in
        RV(pods[].preflight), also in check mode, and a problem is a warning (one per problem, with the number of pods),
        never a refusal.
      - V(image_pull) - whether the pod's node can pull O(image). The kubelet pulls with the pod's C(imagePullSecrets)
        (the ServiceAccount's are copied into the pod when it is created) and then the node's own credentials. Says
        which secrets it will try, and warns when the pod has pull secrets and none of them names the image's
        registry. An image the node already reports (with a pull policy other than V(Always)) needs no pull.
        Reads each pull secret once (only the registry names are kept) and each node once; without C(get) on
        C(secrets) or C(nodes) the check says so in the pod's record (V(unknown), no warning) and goes on.
      - V(memory) - the memory headroom of the pod's node (allocatable memory minus what the pods on it request) and its
        C(MemoryPressure) condition. Ephemeral containers have no resources, so what a recipe uses comes out of that
        headroom (and, when every container of the pod has a memory limit, out of the pod's own limit, which is said
        too). Warns below O(min_memory_headroom). Reads each node once and lists the pods on it (C(get) on C(nodes),
        C(list) on C(pods) cluster-wide).
      - Pods that already have the container (a rerun) are not checked, and cost no request.
      - V([]) checks nothing.
    type: list
    elements: str
    choices: [image_pull, memory]
    default: [image_pull, memory]
    version_added: 0.1.0
  min_memory_headroom:
    description:
      - The node memory headroom below which the V(memory) preflight warns, as a Kubernetes quantity (V(256Mi), V(1Gi)).
    type: str
    default: 256Mi
    version_added: 0.1.0
  canary:
    description:
      - Add the container to this many pods first, and wait until it starts there (or fails to, with
        C(ErrImagePull), C(ImagePullBackOff), C(CreateContainerError) and the like, or not within O(wait_timeout)).
        Only when every canary's container started is it added to the other pods; otherwise they are left alone
        (RV(pods[].action=skipped)) and the task fails, so one pod, not the whole fleet, is left carrying a container
        that will never run (ephemeral containers cannot be removed).
      - V(0) (the default) adds to every pod at once. Ignored in check mode (a dry run pulls nothing) and when no more
        pods than this get the container.
    type: int
    default: 0
    version_added: 0.1.0
  annotate:
    description:
      - Record on each pod where a container is added who added it, when, with which image and why, in the annotation
        C(debug.kubedebug.io/<container>) (a JSON object). This changes the pod's metadata, never its spec, and needs
        C(patch) on C(pods).
    type: bool
    default: false
  reason:
    description:
      - Why the container is added (for example an incident id), recorded with O(annotate=true).
    type: str
notes:
  - One of O(pod), O(label_selector) or O(field_selector) is required, so that a forgotten selector never debugs a
    whole namespace. To select every running pod, use O(field_selector=status.phase=Running).
  - Ephemeral containers can never be changed or removed, never restart, and have no resource guarantees.
  - Adding one needs C(patch) on C(pods/ephemeralcontainers), which the built-in C(edit) and C(admin) roles do not
    grant. See the collection's RBAC page for a minimal ClusterRole.
  - PodSecurity admission checks the whole pod again on every add; a refusal names the level and the profile that
    passes it.
requirements:
  - kubernetes (the Python client) >= 24.2.0
seealso:
  - ref: ansible_collections.kubedebug.ephemeral.docsite.rbac
    description: The permissions adding a container needs, and why the built-in roles lack them.
  - ref: ansible_collections.kubedebug.ephemeral.docsite.results
    description: Collecting what the containers did.
  - module: kubedebug.ephemeral.ephemeral_container_info
  - name: Ephemeral containers
    description: The Kubernetes documentation on ephemeral containers.
    link: https://kubernetes.io/docs/concepts/workloads/pods/ephemeral-containers/
"""

EXAMPLES = r"""
- name: Add a debug container to one pod and wait until it runs
  kubedebug.ephemeral.ephemeral_container:
    namespace: shop
    pod: web-7d9c6b7f9-abcde
    container: debug-inc4711
    image: docker.io/nicolaka/netshoot:v0.13
    command: [sleep, "3600"]

- name: Run a finite diagnostic in every pod of an app, across two namespaces
  kubedebug.ephemeral.ephemeral_container:
    namespace: [shop, shop-canary]
    label_selector: app.kubernetes.io/name=web
    container: kd-dns-run1
    image: docker.io/library/busybox:1.36
    command: [nslookup, kubernetes.default.svc]
    profile: baseline
    wait: terminated
    wait_timeout: 300
    annotate: true
    reason: INC-4711
  register: dns

- name: Show which pods could not be debugged
  ansible.builtin.debug:
    msg: "{{ dns.pods | selectattr('action', 'equalto', 'failed') | map(attribute='msg') | list }}"

- name: In a PodSecurity restricted namespace
  kubedebug.ephemeral.ephemeral_container:
    namespace: payments
    pod: api-0
    container: debug
    image: registry.example.com/tools/debug:1.2
    profile: restricted
    security_context:
      runAsUser: 65534

- name: Debug a whole app, but try the image on one pod first; warn when a node is short of memory
  kubedebug.ephemeral.ephemeral_container:
    namespace: shop
    label_selector: app.kubernetes.io/name=web
    container: kd-netcheck-inc4711
    image: registry.example.com/tools/debug:1.2
    command: [sleep, "600"]
    canary: 1
    min_memory_headroom: 512Mi
    target_container: web
    copy_env: true

- name: Same connection settings for every task, as with kubernetes.core; vetted images for this module only
  module_defaults:
    group/kubedebug.ephemeral.k8s:
      kubeconfig: /etc/kubedebug/prod.kubeconfig
      context: prod
    # Not in the group: the info modules have no allowed_images option and would refuse it.
    kubedebug.ephemeral.ephemeral_container:
      allowed_images: ['registry\.example\.com/tools/.*']
  block:
    - name: Check what would be added, through the API server's dry run
      kubedebug.ephemeral.ephemeral_container:
        namespace: prod
        label_selector: tier=backend
        container: debug
        image: registry.example.com/tools/debug:1.2
      check_mode: true
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
changed:
  description: Whether a container was added (or would be, in check mode) to any pod.
  returned: always
  type: bool
pods:
  description: One result per selected pod, ordered by namespace and name.
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
      sample: web-7d9c6b7f9-abcde
    container:
      description: The ephemeral container's name.
      type: str
      sample: debug
    action:
      description:
        - V(added), V(unchanged) (already present with the same spec, possibly added by another run at the same time),
          V(conflict) (present with another spec),
          V(failed) (refused, or added but the wait or the audit annotation failed; see RV(pods[].msg)), or
          V(would_add) in check mode, or V(skipped) (not tried, because a O(canary) pod's container did not start).
      type: str
      sample: added
    changed:
      description: Whether this pod changed (or would, in check mode).
      type: bool
    state:
      description: The container's state as the kubelet last reported it.
      type: dict
      contains:
        status:
          description: V(pending) (no status yet), V(waiting), V(running) or V(terminated).
          type: str
          sample: running
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
    msg:
      description: What happened or why it failed, with what to do about it.
      type: str
    differences:
      description: For a conflict, each field that differs, existing against requested.
      type: list
      elements: str
      returned: when action is conflict
    spec:
      description: The ephemeral container spec that was (or would be) added, or that was compared.
      type: dict
    canary:
      description: Whether this pod was one of the O(canary) pods, which got the container before the others.
      type: bool
    preflight:
      description:
        - The O(preflight) checks of a pod that was about to get the container (empty for the others).
      type: dict
      contains:
        image_pull:
          description:
            - C(status) is V(present) (the node has the image), V(covered) (a pull secret
              names the registry), V(no_secrets) (the pod has none, so the image must be public or the node have
              credentials), V(not_covered) (warned), V(never_pulled) (policy V(Never) and the node lacks it; warned) or
              V(unknown) (a secret could not be read; said here, not warned).
            - Also C(registry), C(secrets) (the pod's pull secrets, in the order the kubelet tries them),
              C(covered_by) and C(msg).
          type: dict
          sample: {status: not_covered, registry: docker.io, secrets: [regcred], covered_by: [],
                   msg: "registry docker.io is not covered by the pod's imagePullSecrets regcred: ..."}
        memory:
          description:
            - C(status) is V(ok), V(low) (headroom below O(min_memory_headroom); warned),
              V(pressure) (the node reports C(MemoryPressure); warned) or V(unknown) (not scheduled, or the node or its
              pods could not be read; said here, not warned).
            - Also C(node), C(allocatable), C(requested), C(headroom) (bytes), C(pressure), C(pod_limit) (the pod
              cgroup's memory limit in bytes, when every container has one) and C(msg).
          type: dict
          sample: {status: low, node: worker-3, allocatable: 8254390272, requested: 8120172544, headroom: 134217728,
                   pressure: false, pod_limit: null, msg: "node worker-3 has 128Mi of memory headroom, ..."}
summary:
  description: How many pods matched and how many ended in each action.
  returned: always
  type: dict
  sample: {matched: 3, added: 2, unchanged: 1, conflict: 0, failed: 0, would_add: 0, skipped: 0}
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubedebug.ephemeral.plugins.module_utils._auth import AUTH_ARG_SPEC
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._container_manager import (
    ContainerRequest,
    EphemeralContainerManager,
)
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._module import run_module
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._preflight import DEFAULT_MIN_MEMORY_HEADROOM, PREFLIGHTS
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._selection import (
    SELECTION_ARG_SPEC,
    SELECTION_MUTUALLY_EXCLUSIVE,
)
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._spec import PROFILES


def argument_spec() -> dict[str, Any]:
    return {
        **AUTH_ARG_SPEC,
        **SELECTION_ARG_SPEC,
        "container": {"type": "str", "required": True},
        "image": {"type": "str", "required": True},
        "command": {"type": "list", "elements": "str"},
        "args": {"type": "list", "elements": "str"},
        "env": {"type": "raw"},
        "target_container": {"type": "str"},
        "profile": {"type": "str", "default": "general", "choices": list(PROFILES)},
        "security_context": {"type": "dict"},
        "volume_mounts": {"type": "list", "elements": "dict"},
        "copy_volume_mounts": {"type": "bool", "default": False},
        "copy_env": {"type": "bool", "default": False},
        "working_dir": {"type": "str"},
        "stdin": {"type": "bool", "default": False},
        "tty": {"type": "bool", "default": False},
        "image_pull_policy": {"type": "str", "choices": ["Always", "IfNotPresent", "Never"]},
        "spec_override": {"type": "dict"},
        "on_conflict": {"type": "str", "default": "warn", "choices": ["warn", "fail"]},
        "allowed_images": {"type": "list", "elements": "str", "default": []},
        "wait": {"type": "str", "default": "running", "choices": ["none", "running", "terminated"]},
        "wait_timeout": {"type": "int", "default": 120},
        "parallel": {"type": "int", "default": 10},
        "annotate": {"type": "bool", "default": False},
        "reason": {"type": "str"},
        "preflight": {"type": "list", "elements": "str", "default": list(PREFLIGHTS), "choices": list(PREFLIGHTS)},
        "min_memory_headroom": {"type": "str", "default": DEFAULT_MIN_MEMORY_HEADROOM},
        "canary": {"type": "int", "default": 0},
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
        mutually_exclusive=SELECTION_MUTUALLY_EXCLUSIVE,
        required_one_of=[("pod", "label_selector", "field_selector")],
    )
    run_module(
        module,
        lambda: ContainerRequest.from_params(module.params),
        lambda client, request: EphemeralContainerManager(client, request, check_mode=module.check_mode, diff=module._diff),
    )


if __name__ == "__main__":
    main()
