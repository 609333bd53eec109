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
  - kubedebug.ephemeral.auth
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details:
      - The patch is sent with O(ignore:dryRun=All), so RBAC and admission (PodSecurity) refusals are reported in check
        mode too; nothing is persisted. Waiting is skipped.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details:
      - For each pod that changes, the ephemeral container names before and after and the spec that is added.
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second run indicates no change.
    support: full
    details:
      - A container whose name already exists in the pod is never added again (RV(pods[].action=unchanged)).
options:
  namespace:
    description:
      - The namespace(s) to look in. Exactly one with O(pod).
      - Required unless O(all_namespaces=true).
    type: list
    elements: str
  pod:
    description:
      - The name of one pod. Mutually exclusive with O(label_selector) and O(field_selector).
    type: str
    aliases: [name]
  label_selector:
    description:
      - Label selectors the pods must match, for example V(app.kubernetes.io/name=web). Several are ANDed.
      - One of O(pod), O(label_selector) or O(field_selector) is required, so that a forgotten selector never debugs a
        whole namespace. To select every running pod, use O(field_selector=status.phase=Running).
    type: list
    elements: str
  field_selector:
    description:
      - Field selectors the pods must match, for example V(spec.nodeName=node-1). Several are ANDed.
    type: list
    elements: str
  all_namespaces:
    description:
      - Select pods in every namespace (one cluster-wide LIST; needs C(list) on pods cluster-wide).
    type: bool
    default: false
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
      - Set it with C(module_defaults) to keep on-call staff to vetted debug images.
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
      - How long to wait, in seconds, for all pods together.
    type: int
    default: 120
  parallel:
    description:
      - How many pods are patched at once.
    type: int
    default: 10
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
  - Ephemeral containers can never be changed or removed, never restart, and have no resource guarantees.
  - Adding one needs C(patch) on C(pods/ephemeralcontainers), which the built-in C(edit) and C(admin) roles do not
    grant. See the collection's RBAC page for a minimal ClusterRole.
  - PodSecurity admission checks the whole pod again on every add; a refusal names the level and the profile that
    passes it.
requirements:
  - kubernetes (the Python client) >= 24.2.0
seealso:
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

- name: Same connection settings for every task, as with kubernetes.core
  module_defaults:
    group/kubedebug.ephemeral.k8s:
      kubeconfig: /etc/kubedebug/prod.kubeconfig
      context: prod
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
        - V(added), V(unchanged) (already present with the same spec), V(conflict) (present with another spec),
          V(failed) (refused, or added but the wait or the audit annotation failed; see RV(pods[].msg)), or
          V(would_add) in check mode.
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
summary:
  description: How many pods matched and how many ended in each action.
  returned: always
  type: dict
  sample: {matched: 3, added: 2, unchanged: 1, conflict: 0, failed: 0, would_add: 0}
"""

import datetime as _dt
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubedebug.ephemeral.plugins.module_utils._auth import AUTH_ARG_SPEC
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._client import (
    AUDIT_ANNOTATION_PREFIX,
    EphemeralClient,
)
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._errors import KubedebugError
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._module import module_client, run_module
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._selection import (
    Selection,
    join_selectors,
    not_found,
    select,
)
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._spec import (
    ADD,
    CONFLICT,
    REFUSE,
    UNCHANGED,
    Plan,
    Request,
    container_state,
    ephemeral_status,
    patch_body,
    plan_pods,
    validate_request,
    wait_satisfied,
)

ACTIONS = ("added", "unchanged", "conflict", "failed", "would_add")


def argument_spec() -> dict[str, Any]:
    spec: dict[str, Any] = dict(AUTH_ARG_SPEC)
    spec.update(
        namespace=dict(type="list", elements="str"),
        pod=dict(type="str", aliases=["name"]),
        label_selector=dict(type="list", elements="str"),
        field_selector=dict(type="list", elements="str"),
        all_namespaces=dict(type="bool", default=False),
        container=dict(type="str", required=True),
        image=dict(type="str", required=True),
        command=dict(type="list", elements="str"),
        args=dict(type="list", elements="str"),
        env=dict(type="raw"),
        target_container=dict(type="str"),
        profile=dict(
            type="str",
            default="general",
            choices=["general", "baseline", "restricted", "netadmin", "sysadmin", "legacy"],
        ),
        security_context=dict(type="dict"),
        volume_mounts=dict(type="list", elements="dict"),
        copy_volume_mounts=dict(type="bool", default=False),
        working_dir=dict(type="str"),
        stdin=dict(type="bool", default=False),
        tty=dict(type="bool", default=False),
        image_pull_policy=dict(type="str", choices=["Always", "IfNotPresent", "Never"]),
        spec_override=dict(type="dict"),
        on_conflict=dict(type="str", default="warn", choices=["warn", "fail"]),
        allowed_images=dict(type="list", elements="str", default=[]),
        wait=dict(type="str", default="running", choices=["none", "running", "terminated"]),
        wait_timeout=dict(type="int", default=120),
        parallel=dict(type="int", default=10),
        annotate=dict(type="bool", default=False),
        reason=dict(type="str"),
    )
    return spec


def request_from_params(params: dict[str, Any]) -> Request:
    return Request(
        container=params["container"],
        image=params["image"],
        command=params["command"],
        args=params["args"],
        env=params["env"],
        target_container=params["target_container"],
        profile=params["profile"],
        security_context=params["security_context"],
        volume_mounts=params["volume_mounts"],
        copy_volume_mounts=params["copy_volume_mounts"],
        working_dir=params["working_dir"],
        stdin=params["stdin"],
        tty=params["tty"],
        image_pull_policy=params["image_pull_policy"],
        spec_override=params["spec_override"],
        allowed_images=tuple(params["allowed_images"] or ()),
    )


def check_selection(params: dict[str, Any]) -> None:
    """Refuse an ambiguous or unbounded selection before any API call."""
    namespaces = params["namespace"] or []
    if params["pod"]:
        if len(namespaces) != 1 or params["all_namespaces"]:
            raise KubedebugError(
                f"pod {params['pod']!r}: give exactly one namespace with pod (got {namespaces or 'none'})"
            )
    elif not namespaces and not params["all_namespaces"]:
        raise KubedebugError("namespace is required (or all_namespaces: true) when pods are chosen by selector")
    if params["tty"] and not params["stdin"]:
        raise KubedebugError("tty: true needs stdin: true (the API server refuses a TTY without stdin)")
    if params["wait_timeout"] < 0 or params["parallel"] < 1:
        raise KubedebugError("wait_timeout must be >= 0 and parallel >= 1")


def select_pods(client: EphemeralClient, params: dict[str, Any]) -> list[dict[str, Any]]:
    if params["pod"]:
        namespace = params["namespace"][0]
        pods, missing = select(client, Selection(refs=((namespace, params["pod"]),)))
        if missing:
            raise KubedebugError(f"{not_found(namespace, params['pod'])}: check the pod name and namespace")
        return pods
    selection = Selection(
        namespaces=None if params["all_namespaces"] else tuple(params["namespace"]),
        label_selector=join_selectors(params["label_selector"]),
        field_selector=join_selectors(params["field_selector"]),
    )
    return select(client, selection)[0]


def _result(
    plan: Plan, container: str, action: str, changed: bool, msg: str, pod: dict[str, Any] | None
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "namespace": plan.namespace,
        "pod": plan.pod,
        "container": container,
        "action": action,
        "changed": changed,
        "state": container_state(ephemeral_status(pod or {}, container)),
        "msg": msg,
        "spec": plan.spec,
    }
    if plan.action == CONFLICT:
        record["differences"] = plan.differences
    return record


def audit_annotation(container: str, image: str, user: str | None, reason: str | None) -> dict[str, str]:
    value = {
        "by": user or "unknown",
        "at": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "image": image,
        "reason": reason or "",
    }
    return {AUDIT_ANNOTATION_PREFIX + container: json.dumps(value, sort_keys=True)}


def apply_plan(
    client: EphemeralClient,
    plan: Plan,
    req: Request,
    pod: dict[str, Any],
    *,
    check_mode: bool,
    annotations: dict[str, str] | None,
) -> dict[str, Any]:
    if plan.action == REFUSE:
        return _result(plan, req.container, "failed", False, plan.msg, pod)
    if plan.action == UNCHANGED:
        return _result(plan, req.container, "unchanged", False, plan.msg, pod)
    if plan.action == CONFLICT:
        return _result(plan, req.container, "conflict", False, plan.msg, pod)
    if plan.action != ADD or plan.spec is None:  # every other action returned above
        raise KubedebugError(f"pod {plan.namespace}/{plan.pod}: internal error: unexpected plan {plan.action!r}")
    try:
        answer = client.add_ephemeral(
            plan.namespace, plan.pod, patch_body(plan.existing_names, plan.spec), name=req.container, dry_run=check_mode
        )
    except KubedebugError as exc:
        return _result(plan, req.container, "failed", False, exc.msg, pod)
    action = "would_add" if check_mode else "added"
    msg = "would be added (the API server accepted a dry run)" if check_mode else "added"
    if annotations:
        try:
            client.annotate(plan.namespace, plan.pod, annotations, dry_run=check_mode)
        except KubedebugError as exc:
            return _result(
                plan,
                req.container,
                "failed",
                True,
                f"{msg}, but recording the audit annotation failed: {exc.msg}",
                answer,
            )
    return _result(plan, req.container, action, True, msg, answer)


def wait_for(client: EphemeralClient, results: list[dict[str, Any]], container: str, wait: str, timeout: int) -> None:
    waiting = [r for r in results if r["action"] in ("added", "unchanged") and not wait_satisfied(r["state"], wait)]
    targets: dict[str, list[str]] = {}
    for r in waiting:
        targets.setdefault(r["namespace"], []).append(r["pod"])
    latest = client.wait_for_containers(targets, container, wait, timeout) if targets else {}
    for r in waiting:
        pod = latest.get((r["namespace"], r["pod"]))
        if pod == {}:
            r.update(action="failed", msg=f"{r['msg']}, but the pod was deleted while waiting")
            continue
        if pod:
            r["state"] = container_state(ephemeral_status(pod, container))
        if not wait_satisfied(r["state"], wait):
            state = r["state"]
            detail = state["status"] + (
                f" ({state['reason']}: {state['message']})"
                if state["message"]
                else f" ({state['reason']})"
                if state["reason"]
                else ""
            )
            r.update(
                action="failed",
                msg=f"{r['msg']}, but it was not {wait} within {timeout}s: the container is {detail}",
            )


def diff_for(results: list[dict[str, Any]], plans: dict[tuple[str, str], Plan]) -> list[dict[str, Any]]:
    diffs = []
    for r in results:
        if r["action"] not in ("added", "would_add") and not (r["action"] == "failed" and r["changed"]):
            continue
        plan = plans[(r["namespace"], r["pod"])]
        name = f"{r['namespace']}/{r['pod']}"
        diffs.append(
            {
                "before_header": f"pod {name}",
                "after_header": f"pod {name}",
                "before": {"ephemeralContainers": list(plan.existing_names)},
                "after": {"ephemeralContainers": list(plan.existing_names) + [r["container"]], "added": plan.spec},
            }
        )
    return diffs


def run(module: AnsibleModule) -> None:
    params = module.params
    req = request_from_params(params)
    check_selection(params)
    validate_request(req)
    client = module_client(module)
    pods = select_pods(client, params)
    by_ref = {((p.get("metadata") or {}).get("namespace"), (p.get("metadata") or {}).get("name")): p for p in pods}
    plans = plan_pods(req, pods)
    annotations = None
    if params["annotate"] and any(p.action == ADD for p in plans):
        annotations = audit_annotation(req.container, req.image, client.whoami(), params["reason"])

    with ThreadPoolExecutor(max_workers=params["parallel"]) as pool:
        results = list(
            pool.map(
                lambda plan: apply_plan(
                    client,
                    plan,
                    req,
                    by_ref[(plan.namespace, plan.pod)],
                    check_mode=module.check_mode,
                    annotations=annotations,
                ),
                plans,
            )
        )
    if not module.check_mode and params["wait"] != "none":
        wait_for(client, results, req.container, params["wait"], params["wait_timeout"])

    summary = {"matched": len(results), **{a: sum(1 for r in results if r["action"] == a) for a in ACTIONS}}
    output: dict[str, Any] = {"changed": any(r["changed"] for r in results), "pods": results, "summary": summary}
    if module._diff:
        output["diff"] = diff_for(results, {(p.namespace, p.pod): p for p in plans})
    if not results:
        module.warn("the selection matched no pods: nothing to do")
    for r in results:
        if r["action"] == "conflict" and params["on_conflict"] == "warn":
            module.warn(r["msg"])
    failed = [
        r for r in results if r["action"] == "failed" or (r["action"] == "conflict" and params["on_conflict"] == "fail")
    ]
    if failed:
        first = "; ".join(r["msg"] for r in failed[:3]) + (f"; and {len(failed) - 3} more" if len(failed) > 3 else "")
        module.fail_json(msg=f"{len(failed)} of {len(results)} pod(s) failed: {first}", **output)
    module.exit_json(**output)


def main() -> None:
    module = AnsibleModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
        mutually_exclusive=[
            ("pod", "label_selector"),
            ("pod", "field_selector"),
            ("pod", "all_namespaces"),
            ("namespace", "all_namespaces"),
        ],
        required_one_of=[("pod", "label_selector", "field_selector")],
    )
    run_module(module, run)


if __name__ == "__main__":
    main()
