# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: the manager behind the ``ephemeral_container`` module.

Read the selected pods, let ``_spec`` decide per pod (add, unchanged, conflict,
refuse), and only then PATCH: as a server-side dry run in check mode. Then wait,
and say what happened to each pod. ``changed`` and the diff come from the plan,
never from the API's answer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ansible_collections.kubedebug.ephemeral.plugins.module_utils._client import EphemeralClient
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._errors import KubedebugError, first_of
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._options import check_wait_and_parallel
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._outcome import Outcome
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._pods import (
    container_state,
    ephemeral_status,
    pod_ref,
    reached,
    status_only,
)
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._preflight import (
    DEFAULT_MIN_MEMORY_HEADROOM,
    PREFLIGHTS,
    START_FAILURES,
    memory_check,
    node_headroom,
    preflight_view,
    preflight_warnings,
    pull_check,
    quantity_bytes,
    secret_registries,
)
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._selection import (
    Missing,
    Selection,
    select,
    selection_from,
)
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._spec import (
    ADD,
    CONFLICT,
    REFUSE,
    UNCHANGED,
    Plan,
    Request,
    audit_annotation,
    patch_body,
    plan_pod,
    plan_pods,
    validate_request,
)

ACTIONS = ("added", "unchanged", "conflict", "failed", "would_add", "skipped")
# How often one pod is read and patched again when it changed between the read and the PATCH.
CONFLICT_ATTEMPTS = 5
ADDED_MEANWHILE = "already present: another run added it while this one was adding it (this run changed nothing)"


@dataclass(frozen=True)
class ContainerRequest:
    """Everything one ``ephemeral_container`` task asks for, checked before any API call."""

    selection: Selection
    container: Request
    on_conflict: str = "warn"
    wait: str = "running"
    wait_timeout: int = 120
    parallel: int = 10
    annotate: bool = False
    reason: str | None = None
    preflight: tuple[str, ...] = PREFLIGHTS
    min_memory_headroom: int = quantity_bytes(DEFAULT_MIN_MEMORY_HEADROOM)
    canary: int = 0

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ContainerRequest:
        """From the module's parameters; refuses an ambiguous or unbounded selection and an invalid container."""
        container = Request(
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
            copy_env=params["copy_env"],
            working_dir=params["working_dir"],
            stdin=params["stdin"],
            tty=params["tty"],
            image_pull_policy=params["image_pull_policy"],
            spec_override=params["spec_override"],
            allowed_images=tuple(params["allowed_images"] or ()),
        )
        selection = selection_from(params["pod"], params.get, whole_namespace=False)
        if container.tty and not container.stdin:
            raise KubedebugError("tty: true needs stdin: true (the API server refuses a TTY without stdin)")
        check_wait_and_parallel(params["wait_timeout"], params["parallel"])
        validate_request(container)
        preflight = tuple(params["preflight"] or ())
        unknown = [check for check in preflight if check not in PREFLIGHTS]
        if unknown:
            raise KubedebugError(f"preflight: {', '.join(map(repr, unknown))} is not a preflight check: choose from {', '.join(PREFLIGHTS)}, or [] for none")
        if params["canary"] < 0:
            raise KubedebugError(f"canary must be 0 (no canary) or a number of pods; got {params['canary']}")
        return cls(
            selection=selection,
            container=container,
            on_conflict=params["on_conflict"],
            wait=params["wait"],
            wait_timeout=params["wait_timeout"],
            parallel=params["parallel"],
            annotate=params["annotate"],
            reason=params["reason"],
            preflight=preflight,
            min_memory_headroom=quantity_bytes(params["min_memory_headroom"], "min_memory_headroom"),
            canary=params["canary"],
        )


def container_record(plan: Plan, container: str, action: str, changed: bool, msg: str, pod: Mapping[str, Any] | None) -> dict[str, Any]:
    """The module's record of one pod (``pods`` in its return value)."""
    record: dict[str, Any] = {
        "namespace": plan.namespace,
        "pod": plan.pod,
        "container": container,
        "action": action,
        "changed": changed,
        "state": container_state(ephemeral_status(pod or {}, container)),
        "msg": msg,
        "spec": plan.spec,
        "preflight": {},
        "canary": False,
    }
    if plan.action == CONFLICT:
        record["differences"] = plan.differences
    return record


def missing_record(missing: Missing, container: str) -> dict[str, Any]:
    """The record of a named pod that is not there (or could not be read): nothing was tried on it."""
    plan = Plan(namespace=missing.namespace, pod=missing.pod, action=REFUSE, msg=missing.error)
    hint = ": check the pod name and namespace" if missing.error.endswith(" not found") else ""
    return container_record(plan, container, "failed", False, missing.error + hint, None)


def diff_for(results: list[dict[str, Any]], plans: Mapping[tuple[str, str], Plan]) -> list[dict[str, Any]]:
    """One before/after per pod that got (or in check mode would get) the container."""
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


def _with_pod(record: Mapping[str, Any]) -> str:
    """A record's message as one line of a many-pod failure: it must say which pod it is about."""
    where = f"pod {record['namespace']}/{record['pod']}"
    return str(record["msg"]) if record["msg"].startswith(where) else f"{where}: {record['msg']}"


def _state_detail(state: Mapping[str, Any]) -> str:
    if state["message"]:
        return f"{state['status']} ({state['reason']}: {state['message']})"
    if state["reason"]:
        return f"{state['status']} ({state['reason']})"
    return str(state["status"])


class EphemeralContainerManager:
    """Adds one ephemeral container to every selected pod that lacks it, idempotently by name."""

    def __init__(
        self,
        client: EphemeralClient,
        request: ContainerRequest,
        *,
        check_mode: bool = False,
        diff: bool = False,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.client = client
        self.request = request
        self.check_mode = check_mode
        self.diff = diff
        self.now = now
        # The pod as last read after a 409, for the record of a pod another run changed.
        self._last_read: dict[tuple[str, str], dict[str, Any]] = {}

    def run(self) -> Outcome:
        req = self.request
        name = req.container.container
        pods, absent = select(self.client, req.selection)
        plans = plan_pods(req.container, pods)
        adding = [p for p in plans if p.action == ADD]
        to_check = {(p.namespace, p.pod) for p in adding} if req.preflight else set()
        views = {pod_ref(p): preflight_view(p) for p in pods if pod_ref(p) in to_check}
        # Past planning a record needs only the container's status: the whole pods go, before the preflights list the
        # pods of each node.
        by_ref = {pod_ref(p): status_only(p, name) for p in pods}
        del pods
        checks = self._preflights(adding, views) if views else {}
        annotations = None
        if req.annotate and adding:
            at = self.now().strftime("%Y-%m-%dT%H:%M:%SZ")
            annotations = audit_annotation(name, req.container.image, self.client.whoami(), req.reason, at)
        # A canary is worth it only where there is a fleet behind it, and a dry run pulls nothing.
        canaries = adding[: req.canary] if req.canary and not self.check_mode and len(adding) > req.canary else []
        first = {(p.namespace, p.pod) for p in canaries}
        rest = [p for p in plans if (p.namespace, p.pod) not in first]
        with ThreadPoolExecutor(max_workers=req.parallel) as pool:

            def apply(plan: Plan) -> dict[str, Any]:
                record = self._apply(plan, by_ref[(plan.namespace, plan.pod)], annotations)
                record["preflight"] = checks.get((plan.namespace, plan.pod), {})
                return record

            results = list(pool.map(apply, canaries))
            stopped = self._canary_failure(results) if canaries else None
            if stopped:
                results += [self._skipped(plan, stopped, by_ref, checks) if plan.action == ADD else apply(plan) for plan in rest]
            else:
                results += list(pool.map(apply, rest))
        for record in results[: len(canaries)]:
            record["canary"] = True
        results.sort(key=lambda r: (r["namespace"], r["pod"]))
        if not self.check_mode and req.wait != "none":
            self._wait(results)
        results += [missing_record(m, name) for m in absent]

        summary = {"matched": len(results), **{a: sum(1 for r in results if r["action"] == a) for a in ACTIONS}}
        result: dict[str, Any] = {"changed": any(r["changed"] for r in results), "pods": results, "summary": summary}
        if self.diff:
            result["diff"] = diff_for(results, {(p.namespace, p.pod): p for p in plans})
        warnings = [] if results else ["the selection matched no pods: nothing to do"]
        warnings += preflight_warnings(results)
        if req.on_conflict == "warn":
            warnings += [r["msg"] for r in results if r["action"] == "conflict"]
        failed = [_with_pod(r) for r in results if r["action"] == "failed" or (r["action"] == "conflict" and req.on_conflict == "fail")]
        failure = f"{len(failed)} of {len(results)} pod(s) failed: {first_of(failed)}" if failed else None
        if stopped:
            failure = f"{len(failed)} of {len(results)} pod(s) failed and {summary['skipped']} were not tried: {stopped}"
        return Outcome(result=result, warnings=warnings, failure=failure)

    # -- preflights --------------------------------------------------------------------------------------------------

    def _preflights(self, adding: list[Plan], pods: Mapping[tuple[str, str], Mapping[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
        """The preflight record of each pod about to get the container: reads each pull secret and node once."""
        req = self.request
        image = req.container.image
        secret_refs = (
            sorted(
                {
                    (plan.namespace, str(ref.get("name")))
                    for plan in adding
                    for ref in (pods[(plan.namespace, plan.pod)].get("spec") or {}).get("imagePullSecrets") or []
                    if isinstance(ref, Mapping) and ref.get("name")
                }
            )
            if "image_pull" in req.preflight
            else []
        )
        nodes = sorted({str((pods[(p.namespace, p.pod)].get("spec") or {}).get("nodeName") or "") for p in adding} - {""})
        with ThreadPoolExecutor(max_workers=req.parallel) as pool:
            secrets = dict(zip(secret_refs, pool.map(lambda ref: self._secret(*ref), secret_refs), strict=True))
            node_info = dict(zip(nodes, pool.map(self._node, nodes), strict=True))
        checks: dict[tuple[str, str], dict[str, Any]] = {}
        for plan in adding:
            pod = pods[(plan.namespace, plan.pod)]
            node = str((pod.get("spec") or {}).get("nodeName") or "")
            info = node_info.get(node)
            record: dict[str, Any] = {}
            if "image_pull" in req.preflight:
                policy = str((plan.spec or {}).get("imagePullPolicy") or "IfNotPresent")
                own = {name: value for (namespace, name), value in secrets.items() if namespace == plan.namespace}
                images = info["images"] if isinstance(info, Mapping) else None
                record["image_pull"] = pull_check(pod, image, policy, own, images)
            if "memory" in req.preflight:
                headroom = info["headroom"] if isinstance(info, Mapping) else info
                record["memory"] = memory_check(pod, node, headroom, req.min_memory_headroom)
            checks[(plan.namespace, plan.pod)] = record
        return checks

    def _secret(self, namespace: str, name: str) -> list[str] | str | None:
        """The registries a pull secret names, None when it does not exist, or why it could not be read."""
        try:
            secret = self.client.read_secret(namespace, name)
            return None if secret is None else secret_registries(secret)
        except KubedebugError as exc:
            if exc.status == 403:
                return (
                    f"no permission to read secrets in namespace {namespace} (grant 'get' on 'secrets' to check pull secrets, "
                    "or leave image_pull out of preflight)"
                )
            return exc.msg

    def _node(self, node: str) -> dict[str, Any] | str:
        """The images a node reports and its memory headroom (or why not known), or why the node could not be read."""
        try:
            data = self.client.read_node(node)
        except KubedebugError as exc:
            if exc.status == 403:
                return (
                    "no permission to read nodes (grant 'get' on 'nodes' and 'list' on 'pods' cluster-wide to check memory headroom, "
                    "or leave memory out of preflight)"
                )
            return exc.msg
        if data is None:
            return "the node is not there (deleted?)"
        images = sorted({name for image in (data.get("status") or {}).get("images") or [] for name in image.get("names") or []})
        headroom: dict[str, Any] | str = "not read"
        if "memory" in self.request.preflight:
            try:
                on_node = self.client.list_pods(None, field_selector=f"spec.nodeName={node}")
                headroom = node_headroom(data, on_node)
            except KubedebugError as exc:
                headroom = (
                    "no permission to list pods cluster-wide (grant 'list' on 'pods' cluster-wide to check memory headroom, or leave memory out of preflight)"
                    if exc.status == 403
                    else exc.msg
                )
        return {"images": images, "headroom": headroom}

    # -- canary ------------------------------------------------------------------------------------------------------

    def _canary_failure(self, canaries: list[dict[str, Any]]) -> str | None:
        """Wait for the canaries to start (or to fail to); the reason to stop the run, or None to go on."""
        req = self.request
        name = req.container.container
        waiting = [r for r in canaries if r["action"] == "added" and not reached(r["state"]["status"], "running")]
        targets: dict[str, list[str]] = {}
        for r in waiting:
            targets.setdefault(r["namespace"], []).append(r["pod"])

        def settled(pod: Mapping[str, Any]) -> bool:
            state = container_state(ephemeral_status(pod, name))
            return reached(state["status"], "running") or (state["status"] == "waiting" and state["reason"] in START_FAILURES)

        latest = self.client.wait_for_pods(targets, settled, req.wait_timeout, keep=lambda pod: status_only(pod, name)) if targets else {}
        for r in waiting:
            pod = latest.get((r["namespace"], r["pod"]))
            if pod:
                r["state"] = container_state(ephemeral_status(pod, name))
        for r in canaries:
            where = f"pod {r['namespace']}/{r['pod']}"
            if r["action"] == "failed":
                return f"canary {where}: {r['msg']}; the other pods were not tried (action skipped)"
            if r["action"] == "added" and not reached(r["state"]["status"], "running"):
                detail = _state_detail(r["state"])
                r.update(action="failed", msg=f"{r['msg']}, but it did not start as the canary: the container is {detail}")
                return (
                    f"canary {where}: the debug container did not start ({detail}) within {req.wait_timeout}s; the other pods "
                    "were not tried (action skipped), so one pod, not the fleet, carries a container that will not run: fix the "
                    "image, its pull secrets or the spec and run again"
                )
        return None

    def _skipped(
        self, plan: Plan, why: str, by_ref: Mapping[tuple[str, str], Mapping[str, Any]], checks: Mapping[tuple[str, str], dict[str, Any]]
    ) -> dict[str, Any]:
        name = self.request.container.container
        record = container_record(plan, name, "skipped", False, f"not tried: {why}", by_ref[(plan.namespace, plan.pod)])
        record["preflight"] = checks.get((plan.namespace, plan.pod), {})
        return record

    def _apply(self, plan: Plan, pod: Mapping[str, Any], annotations: dict[str, str] | None) -> dict[str, Any]:
        name = self.request.container.container
        if plan.action == REFUSE:
            return container_record(plan, name, "failed", False, plan.msg, pod)
        if plan.action == UNCHANGED:
            return container_record(plan, name, "unchanged", False, plan.msg, pod)
        if plan.action == CONFLICT:
            return container_record(plan, name, "conflict", False, plan.msg, pod)
        if plan.action != ADD or plan.spec is None:  # every other action returned above
            raise KubedebugError(f"pod {plan.namespace}/{plan.pod}: internal error: unexpected plan {plan.action!r}")
        try:
            answer = self._patch(plan)
        except KubedebugError as exc:
            return container_record(plan, name, "failed", False, exc.msg, pod)
        if isinstance(answer, Plan):
            # Another run got there first: this one changed nothing, and says so.
            if answer.action == UNCHANGED:
                return container_record(answer, name, "unchanged", False, ADDED_MEANWHILE, self._last_read.get((plan.namespace, plan.pod)))
            if answer.action == CONFLICT:
                return container_record(answer, name, "conflict", False, answer.msg, self._last_read.get((plan.namespace, plan.pod)))
            return container_record(answer, name, "failed", False, answer.msg, self._last_read.get((plan.namespace, plan.pod)))
        action = "would_add" if self.check_mode else "added"
        msg = "would be added (the API server accepted a dry run)" if self.check_mode else "added"
        if annotations:
            try:
                self.client.annotate(plan.namespace, plan.pod, annotations, dry_run=self.check_mode)
            except KubedebugError as exc:
                # The container is there and cannot be taken back: say so, and fail the task.
                why = f"{msg}, but recording the audit annotation failed: {exc.msg}"
                return container_record(plan, name, "failed", True, why, answer)
        return container_record(plan, name, action, True, msg, answer)

    def _patch(self, plan: Plan) -> dict[str, Any] | Plan:
        """PATCH the container in, with the pod's resourceVersion as a precondition.

        On 409 (the pod changed since it was read) the pod is read and planned anew:
        the answer is then either the pod as patched on a later attempt, or the new
        plan when adding is no longer the thing to do (someone else added the
        container, or the pod went away). Bounded: a pod that changes under every
        attempt fails with the last 409's message.
        """
        name = self.request.container.container
        for attempt in range(CONFLICT_ATTEMPTS):
            if plan.spec is None:  # only ADD plans reach here
                raise KubedebugError(f"pod {plan.namespace}/{plan.pod}: internal error: an ADD plan without a spec")
            try:
                return self.client.add_ephemeral(
                    plan.namespace,
                    plan.pod,
                    patch_body(plan.existing_names, plan.spec, plan.resource_version),
                    name=name,
                    dry_run=self.check_mode,
                )
            except KubedebugError as exc:
                if exc.status != 409 or attempt == CONFLICT_ATTEMPTS - 1:
                    raise
            current = self.client.read_pod(plan.namespace, plan.pod)
            if current is None:
                return Plan(plan.namespace, plan.pod, REFUSE, msg=f"pod {plan.namespace}/{plan.pod}: deleted while the container was being added")
            self._last_read[(plan.namespace, plan.pod)] = current
            plan = plan_pod(self.request.container, current)
            if plan.action != ADD:
                return plan
        raise KubedebugError(f"pod {plan.namespace}/{plan.pod}: internal error: no attempt left")  # the loop returns or raises

    def _wait(self, results: list[dict[str, Any]]) -> None:
        req = self.request
        name = req.container.container
        waiting = [r for r in results if r["action"] in ("added", "unchanged") and not reached(r["state"]["status"], req.wait)]
        if not waiting:
            return
        targets: dict[str, list[str]] = {}
        for r in waiting:
            targets.setdefault(r["namespace"], []).append(r["pod"])
        latest = self.client.wait_for_pods(
            targets,
            lambda pod: reached(container_state(ephemeral_status(pod, name))["status"], req.wait),
            req.wait_timeout,
            keep=lambda pod: status_only(pod, name),
        )
        for r in waiting:
            pod = latest.get((r["namespace"], r["pod"]))
            if pod == {}:
                r.update(action="failed", msg=f"{r['msg']}, but the pod was deleted while waiting")
                continue
            if pod:
                r["state"] = container_state(ephemeral_status(pod, name))
            if not reached(r["state"]["status"], req.wait):
                r.update(
                    action="failed",
                    msg=f"{r['msg']}, but it was not {req.wait} within {req.wait_timeout}s (wait_timeout): the container is {_state_detail(r['state'])}",
                )
