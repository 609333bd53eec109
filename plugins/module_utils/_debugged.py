# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: what debugging left behind in pods, and how to get rid of it.

Used by the ``debugged_pods_info`` module and the fleet report. Pure: the API's
pod, namespace and ReplicaSet JSON in, records out; ``_debugged_manager`` does the
reads. An ephemeral container can never be removed from its pod (only deleting
the pod drops it), so each record says who added which container and why, what
it means for later adds, and which workload to restart.

What the records claim, and where Kubernetes (v1.36) does it:

* PodSecurity admission evaluates the whole pod spec, every ephemeral container
  already there included, whenever an ephemeral container is added:
  ``Admission.ValidatePod`` → ``isSignificantPodUpdate`` ("EphemeralContainer added")
  → ``EvaluatePod(pod.Spec)``, whose checks visit ``spec.ephemeralContainers`` too
  (``visitContainers``), all in k8s.io/pod-security-admission.
* No claim is made about in-place resize or pod-level resource defaulting: neither
  ``ValidatePodResize`` (pkg/apis/core/validation) nor ``defaultPodRequests``
  (pkg/apis/core/v1/defaults.go, through component-helpers'
  ``AggregateContainerRequests``, which sums init and regular containers only)
  looks at ephemeral containers, and ``dropNonEphemeralContainerUpdates`` keeps
  the rest of the spec as it was.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ansible_collections.kubedebug.ephemeral.plugins.module_utils._errors import first_of
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._options import check_choice
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._pods import container_state, ephemeral_status, pod_ref

# The prefix ``_spec.audit_annotation`` writes under (_spec sits in this layer: the import graph allows no arrow
# sideways). tests/unit/plugins/module_utils/test_debugged.py reads what audit_annotation writes, so the two agree.
AUDIT_ANNOTATION_PREFIX = "debug.kubedebug.io/"
UNKNOWN = "unknown"
ADDED_BY = ("any", "us", "others")

ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
# Least to most strict, as the Pod Security Standards order them.
LEVELS = ("privileged", "baseline", "restricted")
# What the baseline level lets a container add (k8s.io/pod-security-admission policy/check_capabilities_baseline.go).
BASELINE_CAPABILITIES = frozenset(
    {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE", "SETFCAP", "SETGID",
     "SETPCAP", "SETUID", "SYS_CHROOT"}
)  # fmt: skip
SECCOMP_RESTRICTED = ("RuntimeDefault", "Localhost")

POD_KEYS = ("namespace", "pod", "node", "phase", "containers", "running", "owner", "restart", "pod_security", "notes")
CONTAINER_KEYS = (
    "name", "image", "target", "state", "running", "privileged", "capabilities_added", "pod_security_level",
    "added_by_us", "by", "at", "reason",
)  # fmt: skip


@dataclass(frozen=True)
class Options:
    only_running: bool = False
    added_by: str = "any"


def options_from(get: Callable[[str], Any]) -> Options:
    """Options from the module's ``params.get``."""
    return Options(only_running=bool(get("only_running")), added_by=get("added_by") or "any")


def validate_options(opts: Options) -> None:
    check_choice("added_by", opts.added_by, ADDED_BY)


# --------------------------------------------------------------------------- containers


def audit_record(annotations: Mapping[str, Any], container: str) -> tuple[dict[str, Any], str | None]:
    """``{added_by_us, by, at, reason}`` from the pod's audit annotation of ``container``, and a note when it is unreadable.

    A container without our annotation was added by someone else (``kubectl debug``, a
    client library): who and why is ``unknown``. An annotation that is not the JSON
    ``_spec.audit_annotation`` writes (edited by hand, cut short) says nothing either.
    """
    unknown = {"added_by_us": False, "by": UNKNOWN, "at": None, "reason": None}
    key = AUDIT_ANNOTATION_PREFIX + container
    raw = annotations.get(key)
    if raw is None:
        return unknown, None
    try:
        value = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        value = None
    if not isinstance(value, dict) or not isinstance(value.get("by"), str):
        return unknown, f"annotation {key} is not the JSON kubedebug.ephemeral writes ({str(raw)[:80]!r}): who added container {container!r} is unknown"
    return {
        "added_by_us": True,
        "by": value["by"] or UNKNOWN,
        "at": value.get("at") if isinstance(value.get("at"), str) else None,
        "reason": value.get("reason") if isinstance(value.get("reason"), str) and value.get("reason") else None,
    }, None


def capabilities_added(container: Mapping[str, Any]) -> list[str]:
    """The capabilities a container adds, as written (``CAP_`` prefixes are kept: PodSecurity compares them as given)."""
    caps = ((container.get("securityContext") or {}).get("capabilities") or {}).get("add") or []
    return [str(c) for c in caps]


def container_level(container: Mapping[str, Any], pod_spec: Mapping[str, Any]) -> str:
    """The strictest PodSecurity level this container's own security settings pass.

    Only the checks a debug container's settings decide: privileged, added
    capabilities and seccomp Unconfined (baseline); allowPrivilegeEscalation,
    dropping ALL capabilities, runAsNonRoot, runAsUser 0 and a seccomp profile
    (restricted, pod-level settings counted). Host namespaces, volumes and the
    other pod-wide checks are the workload's own, the same before and after.
    """
    ctx = container.get("securityContext") or {}
    pod_ctx = pod_spec.get("securityContext") or {}
    caps = ctx.get("capabilities") or {}
    added = set(capabilities_added(container))
    seccomp = (ctx.get("seccompProfile") or {}).get("type") or (pod_ctx.get("seccompProfile") or {}).get("type")
    if ctx.get("privileged") or not added <= BASELINE_CAPABILITIES or seccomp == "Unconfined":
        return "privileged"
    run_as_non_root = ctx.get("runAsNonRoot") if ctx.get("runAsNonRoot") is not None else pod_ctx.get("runAsNonRoot")
    run_as_user = ctx.get("runAsUser") if ctx.get("runAsUser") is not None else pod_ctx.get("runAsUser")
    restricted = (
        ctx.get("allowPrivilegeEscalation") is False
        and "ALL" in (caps.get("drop") or [])
        and added <= {"NET_BIND_SERVICE"}
        and run_as_non_root is True
        and run_as_user != 0
        and seccomp in SECCOMP_RESTRICTED
    )
    return "restricted" if restricted else "baseline"


def container_record(pod: Mapping[str, Any], container: Mapping[str, Any], notes: list[str]) -> dict[str, Any]:
    """One ephemeral container: what it is, its state, its security-relevant settings, and who added it and why."""
    name = container.get("name") or ""
    state = container_state(ephemeral_status(pod, name))
    audit, note = audit_record((pod.get("metadata") or {}).get("annotations") or {}, name)
    if note:
        notes.append(note)
    record: dict[str, Any] = dict.fromkeys(CONTAINER_KEYS)
    record.update(
        name=name,
        image=container.get("image"),
        target=container.get("targetContainerName"),
        state=state,
        running=state["status"] == "running",
        privileged=bool((container.get("securityContext") or {}).get("privileged")),
        capabilities_added=capabilities_added(container),
        pod_security_level=container_level(container, pod.get("spec") or {}),
        **audit,
    )
    return record


def wanted(container: Mapping[str, Any], opts: Options) -> bool:
    """Whether the filters keep this container record."""
    if opts.only_running and not container["running"]:
        return False
    if opts.added_by == "us":
        return bool(container["added_by_us"])
    if opts.added_by == "others":
        return not container["added_by_us"]
    return True


# --------------------------------------------------------------------------- owners and restart advice


def controller_of(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    """The owner reference with ``controller: true`` (the one that recreates the object), if any."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return next((r for r in refs if r.get("controller")), None)


def replica_sets_to_read(pods: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """``(namespace, name)`` of each ReplicaSet that controls one of ``pods``, once each: one GET per ReplicaSet."""
    found: dict[tuple[str, str], None] = {}
    for pod in pods:
        ref = controller_of(pod)
        if ref and ref.get("kind") == "ReplicaSet" and ref.get("name"):
            found[(pod_ref(pod)[0], ref["name"])] = None
    return list(found)


def owner_of(pod: Mapping[str, Any], replica_sets: Mapping[tuple[str, str], Any]) -> dict[str, Any] | None:
    """The workload to restart: ``{kind, name, via}``, None for a bare pod.

    ``replica_sets`` maps ``(namespace, name)`` to the ReplicaSet as read, None when it
    is gone, or a ``str``: why it could not be read. A ReplicaSet that could not be
    read is taken to belong to the Deployment its name says: the Deployment controller
    names it ``<deployment>-<pod-template-hash>`` and puts the hash on the pod's label.
    """
    namespace, _name = pod_ref(pod)
    ref = controller_of(pod)
    if ref is None:
        return None
    kind, name = ref.get("kind") or "", ref.get("name") or ""
    if kind != "ReplicaSet":
        return {"kind": kind, "name": name, "via": None}
    replica_set = replica_sets.get((namespace, name))
    if isinstance(replica_set, Mapping):
        deployment = controller_of(replica_set)
        if deployment and deployment.get("kind") == "Deployment":
            return {"kind": "Deployment", "name": deployment.get("name") or "", "via": f"ReplicaSet {name}"}
        return {"kind": "ReplicaSet", "name": name, "via": None}
    template_hash = ((pod.get("metadata") or {}).get("labels") or {}).get("pod-template-hash")
    if template_hash and name.endswith("-" + template_hash):
        why = "it is gone" if replica_set is None else f"it could not be read: {replica_set}"
        return {
            "kind": "Deployment",
            "name": name[: -len(template_hash) - 1],
            "via": f"inferred from ReplicaSet {name} and the pod-template-hash label ({why})",
        }
    return {"kind": "ReplicaSet", "name": name, "via": None}


def restart_advice(namespace: str, pod: str, owner: Mapping[str, Any] | None) -> dict[str, str]:
    """What to do once the debugging is over: ``{advice, command}``.

    Only a new pod sheds the ephemeral containers, so the advice is to replace the pod
    through whatever creates it.
    """
    kubectl = f"kubectl -n {namespace}"
    if owner is None:
        return {
            "advice": f"bare pod {pod}: delete and recreate the pod from its manifest (without spec.ephemeralContainers: a new pod may not carry them)",
            "command": f"{kubectl} delete pod {pod}",
        }
    kind, name = owner["kind"], owner["name"]
    if kind in ("Deployment", "StatefulSet", "DaemonSet"):
        return {
            "advice": f"restart {kind} {name} when done: its pods are replaced, one at a time, as its rollout strategy says",
            "command": f"{kubectl} rollout restart {kind.lower()}/{name}",
        }
    if kind == "ReplicaSet":
        return {
            "advice": f"ReplicaSet {name} (no Deployment): delete the pod when done, the ReplicaSet creates a new one",
            "command": f"{kubectl} delete pod {pod}",
        }
    if kind == "Job":
        return {
            "advice": (
                f"Job {name}: the containers go with the pod; let the Job finish, or delete the pod when done "
                "(the Job creates a new one if it still needs to run)"
            ),
            "command": f"{kubectl} delete pod {pod}",
        }
    if kind == "Node":
        return {"advice": "static pod: it is recreated only from its manifest on the node (edit or move the manifest on the node)", "command": ""}
    return {
        "advice": f"owned by {kind} {name}: restart it the way that controller restarts its pods, or delete the pod when done and let it recreate it",
        "command": f"{kubectl} delete pod {pod}",
    }


# --------------------------------------------------------------------------- PodSecurity


def enforce_level(namespace: Any) -> str | None:
    """The namespace's enforced PodSecurity level (``pod-security.kubernetes.io/enforce``).

    ``namespace`` is the Namespace as read, None when it is gone, or why it could not be
    read (a str): both give ``unknown``. None when the label is not set: the admission
    configuration's default applies (privileged, unless the cluster changed it).
    """
    if namespace is None or isinstance(namespace, str):
        return UNKNOWN
    level = ((namespace.get("metadata") or {}).get("labels") or {}).get(ENFORCE_LABEL)
    return str(level) if level is not None else None


def pod_security(containers: list[dict[str, Any]], namespace: Any) -> dict[str, Any]:
    """What the pod's ephemeral containers mean for the next add, under the namespace's enforced level: ``{enforce, violating, note}``.

    PodSecurity evaluates the whole pod on every later add (see the module docstring),
    so one container below the enforced level makes every later add to this pod fail,
    and one below a stricter level does so once the namespace is tightened.
    """
    level = enforce_level(namespace)
    violating = [c["name"] for c in containers if level in LEVELS and LEVELS.index(c["pod_security_level"]) < LEVELS.index(str(level))]
    parts = []
    if level == UNKNOWN:
        parts.append(f"the namespace's enforced PodSecurity level is unknown ({namespace if isinstance(namespace, str) else 'the namespace is gone'})")
    elif level is None:
        parts.append(
            f"the namespace has no {ENFORCE_LABEL} label: the cluster's default level applies (privileged unless the admission configuration says otherwise)"
        )
    elif level not in LEVELS:
        parts.append(f"the namespace's {ENFORCE_LABEL} label is {level!r}, not one of {', '.join(LEVELS)}")
    if violating:
        parts.append(
            f"ephemeral container{'s' if len(violating) > 1 else ''} {', '.join(violating)} already violate{'' if len(violating) > 1 else 's'} "
            f"the enforced level {level!r}: PodSecurity checks the whole pod on every add, so every later ephemeral container "
            "added to this pod is refused until the pod is recreated"
        )
    else:
        weakest = min((LEVELS.index(c["pod_security_level"]) for c in containers), default=len(LEVELS) - 1)
        if weakest < len(LEVELS) - 1:
            which = ", ".join(f"{c['name']} ({_settings(c)})" for c in containers if LEVELS.index(c["pod_security_level"]) == weakest)
            parts.append(
                f"{which}: if the namespace enforces {LEVELS[weakest + 1]} or stricter, every later ephemeral container added to "
                "this pod is refused (PodSecurity checks the whole pod on every add)"
            )
    return {"enforce": level, "violating": violating, "note": "; ".join(parts) or None}


def _settings(container: Mapping[str, Any]) -> str:
    """Why a container meets no stricter level, in a few words."""
    if container["privileged"]:
        return "privileged"
    beyond = [c for c in container["capabilities_added"] if c not in BASELINE_CAPABILITIES]
    if beyond:
        return "adds " + ", ".join(beyond)
    if container["pod_security_level"] == "privileged":
        return "seccomp Unconfined"
    return "meets baseline, not restricted"


# --------------------------------------------------------------------------- pods and summary


def is_debugged(pod: Mapping[str, Any]) -> bool:
    """Whether the pod carries ephemeral containers (for good: they are never removed)."""
    return bool((pod.get("spec") or {}).get("ephemeralContainers"))


def reported(pod: Mapping[str, Any], opts: Options) -> bool:
    """Whether the pod gets a record: it carries ephemeral containers, and the filters keep one of them."""
    return any(wanted(container_record(pod, c, []), opts) for c in (pod.get("spec") or {}).get("ephemeralContainers") or [])


def pod_record(
    pod: Mapping[str, Any],
    opts: Options,
    replica_sets: Mapping[tuple[str, str], Any],
    namespaces: Mapping[str, Any],
) -> dict[str, Any] | None:
    """The record of one debugged pod, or None when the filters leave none of its ephemeral containers.

    ``namespaces`` maps a namespace's name to the Namespace as read, or to why it could
    not be read (a str).
    """
    namespace, name = pod_ref(pod)
    notes: list[str] = []
    every = [container_record(pod, c, notes) for c in (pod.get("spec") or {}).get("ephemeralContainers") or []]
    containers = [c for c in every if wanted(c, opts)]
    if not containers:
        return None
    owner = owner_of(pod, replica_sets)
    security = pod_security(every, namespaces.get(namespace))
    count = len(every)
    plural = "s" if count != 1 else ""
    notes.insert(0, f"the pod keeps its {count} ephemeral container{plural} until it is deleted: they cannot be removed, restarted or changed")
    if owner and owner.get("via") and owner["via"].startswith("inferred"):
        notes.append(f"Deployment {owner['name']} is {owner['via']}")
    record: dict[str, Any] = dict.fromkeys(POD_KEYS)
    record.update(
        namespace=namespace,
        pod=name,
        node=(pod.get("spec") or {}).get("nodeName"),
        phase=(pod.get("status") or {}).get("phase"),
        containers=containers,
        running=sum(1 for c in containers if c["running"]),
        owner=owner,
        restart=restart_advice(namespace, name, owner),
        pod_security=security,
        notes=notes,
    )
    return record


def summary(scanned: int, records: list[dict[str, Any]]) -> dict[str, Any]:
    """The counts over the records reported (after the filters); ``pods_scanned`` counts every pod listed."""
    containers = [c for r in records for c in r["containers"]]
    by_namespace: dict[str, dict[str, int]] = {}
    for record in records:
        entry = by_namespace.setdefault(record["namespace"], {"pods": 0, "containers": 0, "running": 0})
        entry["pods"] += 1
        entry["containers"] += len(record["containers"])
        entry["running"] += record["running"]
    return {
        "pods_scanned": scanned,
        "pods_debugged": len(records),
        "containers": len(containers),
        "running": sum(1 for c in containers if c["running"]),
        "by_us": sum(1 for c in containers if c["added_by_us"]),
        "unknown": sum(1 for c in containers if not c["added_by_us"]),
        "by_namespace": dict(sorted(by_namespace.items())),
    }


def missing_failure(named: int, missing: list[dict[str, Any]]) -> str | None:
    """The error when pods were named and not one of them could be read."""
    if not named or len(missing) < named:
        return None
    return "nothing could be read: " + first_of([m["error"] for m in missing])


# --------------------------------------------------------------------------- the fleet report


def fleet_section(results: Iterable[Mapping[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The fleet report's "pods left carrying debug containers": counts, and one row per pod.

    ``results`` holds one entry per cluster: ``{cluster, pods, error}`` (``pods`` as
    ``debugged_pods_info`` returns them; ``error`` when it failed there).
    """
    rows: list[dict[str, Any]] = []
    counts: dict[str, Any] = {"pods": 0, "containers": 0, "running": 0, "by_us": 0, "unknown": 0, "by_cluster": {}, "errors": []}
    for result in results:
        cluster = str(result.get("cluster") or "")
        if result.get("error"):
            counts["errors"].append({"cluster": cluster, "error": str(result["error"])})
        per_cluster = counts["by_cluster"].setdefault(cluster, {"pods": 0, "containers": 0, "running": 0})
        for pod in result.get("pods") or []:
            containers = pod.get("containers") or []
            running = sum(1 for c in containers if c.get("running"))
            ours = sum(1 for c in containers if c.get("added_by_us"))
            for key, n in (("pods", 1), ("containers", len(containers)), ("running", running)):
                counts[key] += n
                per_cluster[key] += n
            counts["by_us"] += ours
            counts["unknown"] += len(containers) - ours
            restart = pod.get("restart") or {}
            rows.append(
                {
                    "cluster": cluster,
                    "namespace": pod.get("namespace"),
                    "pod": pod.get("pod"),
                    "containers": [c.get("name") for c in containers],
                    "by": sorted({str(c.get("by") or UNKNOWN) for c in containers}),
                    "reasons": sorted({str(c["reason"]) for c in containers if c.get("reason")}),
                    "running": [c.get("name") for c in containers if c.get("running")],
                    "restart": restart.get("advice") or "",
                    "command": restart.get("command") or "",
                }
            )
    rows.sort(key=lambda row: (row["cluster"], str(row["namespace"]), str(row["pod"])))
    counts["by_cluster"] = dict(sorted(counts["by_cluster"].items()))
    return counts, rows
