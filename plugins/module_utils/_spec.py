# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: pure decisions about ephemeral containers.

Nothing here talks to Kubernetes. Given the pods as the API returned them (plain
camelCase dicts) and the user's request, these functions build the container
spec, refuse what the API server or the kubelet would refuse, and decide for each
pod whether to add, leave alone, or report a conflict.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.kubedebug.ephemeral.plugins.module_utils._errors import KubedebugError
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._options import DNS1123_LABEL
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._pods import container_names, pod_ref

PROFILES = ("general", "baseline", "restricted", "netadmin", "sysadmin", "legacy")

# Profiles whose point is to look at the target's processes: they share its
# process namespace unless the user names another target (or opts out with "").
PROCESS_PROFILES = frozenset({"general", "sysadmin"})

# Container fields the API server accepts on an ephemeral container
# (allowedEphemeralContainerFields in pkg/apis/core/validation). Anything else,
# including fields added to Container in the future, is refused by the server.
ALLOWED_FIELDS = frozenset(
    {
        "name",
        "image",
        "command",
        "args",
        "workingDir",
        "envFrom",
        "env",
        "volumeMounts",
        "volumeDevices",
        "terminationMessagePath",
        "terminationMessagePolicy",
        "imagePullPolicy",
        "securityContext",
        "stdin",
        "stdinOnce",
        "tty",
        "targetContainerName",
    }
)
KNOWN_FORBIDDEN_FIELDS = (
    "ports",
    "resources",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
    "resizePolicy",
    "restartPolicy",
    "restartPolicyRules",
)

# securityContext fields that validateWindows refuses on a Windows pod.
LINUX_ONLY_SECURITY_FIELDS = (
    "capabilities",
    "seccompProfile",
    "privileged",
    "allowPrivilegeEscalation",
    "runAsUser",
    "runAsGroup",
    "procMount",
    "readOnlyRootFilesystem",
    "seLinuxOptions",
    "appArmorProfile",
)

MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"

# Values the API server fills in when they are omitted; compared as filled so a
# rerun of the same request is never reported as a change.
DEFAULT_TERMINATION_MESSAGE_PATH = "/dev/termination-log"
DEFAULT_TERMINATION_MESSAGE_POLICY = "File"
# Booleans the API serialises with omitempty: absent and false are the same.
OMITEMPTY_BOOLS = frozenset({"stdin", "stdinOnce", "tty"})

ADD = "add"
UNCHANGED = "unchanged"
CONFLICT = "conflict"
REFUSE = "refuse"


@dataclass(frozen=True)
class Request:
    """What the user asked for, independent of any pod."""

    container: str
    image: str
    command: list[str] | None = None
    args: list[str] | None = None
    env: list[dict[str, Any]] | None = None
    target_container: str | None = None
    profile: str = "general"
    security_context: dict[str, Any] | None = None
    volume_mounts: list[dict[str, Any]] | None = None
    copy_volume_mounts: bool = False
    copy_env: bool = False
    working_dir: str | None = None
    stdin: bool = False
    tty: bool = False
    image_pull_policy: str | None = None
    spec_override: dict[str, Any] | None = None
    allowed_images: tuple[str, ...] = ()


@dataclass
class Plan:
    """The decision for one pod."""

    namespace: str
    pod: str
    action: str
    msg: str = ""
    spec: dict[str, Any] | None = None
    existing_names: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    # The pod's resourceVersion when it was read: the PATCH carries it as a precondition,
    # so that two runs racing to add the same container cannot both report "added".
    resource_version: str | None = None


def normalize_env(env: Any) -> list[dict[str, Any]] | None:
    """Accept ``{NAME: value}`` or a list of EnvVar dicts; return EnvVar dicts."""
    if env is None:
        return None
    if isinstance(env, Mapping):
        return [{"name": str(k), "value": "" if v is None else str(v)} for k, v in env.items()]
    if isinstance(env, list):
        out = []
        for i, item in enumerate(env):
            if not isinstance(item, Mapping) or not item.get("name"):
                raise KubedebugError(f"env[{i}] must be a mapping with a 'name' (an EnvVar such as {{name: X, value: y}}); got {item!r}")
            out.append(dict(item))
        return out
    raise KubedebugError(f"env must be a mapping of NAME: value or a list of EnvVar mappings; got {type(env).__name__}")


def profile_security_context(profile: str) -> dict[str, Any] | None:
    """kubectl debug's profiles, as they apply to an ephemeral container (kubectl profiles.go)."""
    if profile == "general":
        return {"capabilities": {"add": ["SYS_PTRACE"]}}
    if profile == "netadmin":
        return {"capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}}
    if profile == "sysadmin":
        return {"privileged": True}
    if profile == "restricted":
        return {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        }
    if profile in ("baseline", "legacy"):
        return None
    raise KubedebugError(f"profile must be one of {', '.join(PROFILES)}; got {profile!r}")


def default_pull_policy(image: str) -> str:
    """The API server's default: Always when the tag is ``latest`` or absent (and no digest), else IfNotPresent."""
    name, _at, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else ""
    if tag == "latest" or (not tag and not digest):
        return "Always"
    return "IfNotPresent"


def deep_merge(base: Any, override: Any) -> Any:
    """Merge ``override`` into ``base``: mappings recursively, everything else replaced."""
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = deep_merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    return copy.deepcopy(override)


# An image reference as container runtimes parse it (github.com/distribution/reference): [host[:port]/]path[:tag][@digest].
# The host is told from the path by the "/" after it, so a port is never taken for a tag.
_REF_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REF_HOST = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
IMAGE_REFERENCE = re.compile(
    rf"(?P<name>(?:{_REF_HOST}/)?{_REF_COMPONENT}(?:/{_REF_COMPONENT})*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?"
)
IDENTITY_OVERRIDES = {"name": "container", "image": "image", "targetcontainername": "target_container"}


def _allowed_image_problem(image: str, patterns: tuple[str, ...]) -> str | None:
    """Why ``image`` is not allowed by ``patterns`` (regular expressions that must match the whole image), or None.

    The image is matched as written: no registry, no ``library/`` and no tag is filled in, and case counts, so a pattern
    allows exactly the references it spells. An image with a tag and a digest is pulled by the digest alone, so then a
    pattern must also match it without its tag, or name that digest itself: otherwise ``name:v1@sha256:<any>`` would
    pass a pattern meant to allow tag v1 only.
    """
    compiled = []
    for pattern in patterns:
        if pattern != pattern.strip() or not pattern:
            return f"allowed_images: {pattern!r} is empty or has leading or trailing whitespace, so it never matches an image: remove it or the whitespace"
        try:
            compiled.append(re.compile(pattern))
        except re.error as exc:
            return f"allowed_images: {pattern!r} is not a valid regular expression: {exc}"
    allowed = f"allowed_images ({', '.join(patterns)})"
    reference = IMAGE_REFERENCE.fullmatch(image)
    if reference is None:
        return (
            f"image {image!r} is not a valid image reference ([host[:port]/]path[:tag][@digest], path in lower case, no"
            f" whitespace), so it cannot be checked against {allowed}: use an image that matches one of these patterns"
        )
    name, tag, digest = reference.group("name", "tag", "digest")
    matching = [pattern for pattern in compiled if pattern.fullmatch(image)]
    if not matching:
        return f"image {image!r} is not in {allowed}: use an image that matches one of these patterns, or ask the playbook owner to allow it"
    if tag is None or digest is None:
        return None
    if any(digest in pattern.pattern for pattern in matching) or any(pattern.fullmatch(f"{name}@{digest}") for pattern in compiled):
        return None
    return (
        f"image {image!r} is pulled by its digest {digest}, whatever its tag {tag!r} says, and {allowed} allow the tag,"
        f" not that digest: use the tag alone, or ask the playbook owner to allow {name}@{digest}"
    )


def validate_request(req: Request) -> None:
    """Refuse, before any pod is read, what no pod could accept."""
    if not DNS1123_LABEL.fullmatch(req.container) or len(req.container) > 63:
        raise KubedebugError(
            f"container {req.container!r} is not a valid container name: use at most 63 lower-case letters, "
            "digits and '-', starting and ending with a letter or digit"
        )
    if req.allowed_images:
        problem = _allowed_image_problem(req.image, req.allowed_images)
        if problem:
            raise KubedebugError(problem)
    if not req.image or req.image != req.image.strip():
        raise KubedebugError(f"image {req.image!r} must be set and have no leading or trailing whitespace")
    if req.profile not in PROFILES:
        raise KubedebugError(f"profile must be one of {', '.join(PROFILES)}; got {req.profile!r}")
    untargeted = req.target_container == "" or (req.target_container is None and req.profile not in PROCESS_PROFILES)
    for copying, what in (("copy_volume_mounts", "mounts"), ("copy_env", "env and envFrom")):
        if getattr(req, copying) and untargeted:
            raise KubedebugError(
                f"{copying} copies the target container's {what}, but there is no target: set target_container, "
                "or use profile general or sysadmin, which target the pod's first container"
            )
    override = req.spec_override or {}
    for key in override:
        # Any spelling: the API server ignores "Image", but it must never look like a way around allowed_images.
        option = IDENTITY_OVERRIDES.get(str(key).strip().lower())
        if option:
            checked = " (which allowed_images checks)" if option == "image" else ""
            raise KubedebugError(f"spec_override.{key} cannot be set: use the {option} option{checked} instead")
    for mount in req.volume_mounts or []:
        if not all(isinstance(mount.get(key), str) and mount.get(key) for key in ("name", "mountPath")):
            raise KubedebugError(f"volume_mounts: every mount needs a 'name' and a 'mountPath' (strings); got {mount!r}")
        _refuse_subpath(mount, "volume_mounts")
    spec = build_spec(req, pod=None)
    _check_shapes(spec, req.spec_override or {})
    for mount in spec.get("volumeMounts") or []:
        _refuse_subpath(
            mount,
            "spec_override.volumeMounts" if req.spec_override and "volumeMounts" in req.spec_override else "volume_mounts",
        )
    forbidden = forbidden_fields(spec)
    if forbidden:
        raise KubedebugError(
            f"{', '.join(forbidden)} cannot be set on an ephemeral container (the API server refuses "
            f"ports, resources, probes, lifecycle, resizePolicy and restartPolicy): remove "
            f"{'it' if len(forbidden) == 1 else 'them'} from spec_override"
        )


# The list fields a spec_override may replace, and what their items must be for the checks below (and the API).
LIST_FIELDS = {"command": str, "args": str, "env": Mapping, "envFrom": Mapping, "volumeMounts": Mapping, "volumeDevices": Mapping}


def _check_shapes(spec: Mapping[str, Any], override: Mapping[str, Any]) -> None:
    """Refuse list fields of the wrong shape, which only spec_override can produce (the options are typed)."""
    for key, kind in LIST_FIELDS.items():
        value = spec.get(key)
        if value is None or key not in override:
            continue
        if not isinstance(value, list) or not all(isinstance(item, kind) for item in value):
            what = "strings" if kind is str else "mappings"
            raise KubedebugError(f"spec_override.{key} must be a list of {what}; got {value!r}")
        if kind is Mapping and key != "envFrom" and not all(isinstance(item.get("name"), str) and item.get("name") for item in value):
            raise KubedebugError(f"spec_override.{key}: every item needs a 'name'; got {value!r}")


def _refuse_subpath(mount: Mapping[str, Any], where: str) -> None:
    for key in ("subPath", "subPathExpr"):
        if mount.get(key):
            raise KubedebugError(
                f"{where}: the mount of volume {mount.get('name')!r} at {mount.get('mountPath')!r} sets {key}, "
                "which the API server refuses on ephemeral containers: mount the whole volume instead"
            )


def forbidden_fields(spec: Mapping[str, Any]) -> list[str]:
    return sorted(k for k in spec if k not in ALLOWED_FIELDS)


def effective_target(req: Request, pod: Mapping[str, Any] | None) -> str | None:
    """The target container: as given, or the pod's first container for process profiles.

    An empty string opts out of targeting.
    """
    if req.target_container is not None:
        return req.target_container or None
    if req.profile in PROCESS_PROFILES and pod is not None:
        containers = container_names(pod)[0]
        return containers[0] if containers else None
    return None


def copied_mounts(pod: Mapping[str, Any], target: str | None) -> tuple[list[dict[str, Any]], list[str]]:
    """The target's volume mounts, minus subPath ones (refused on ephemeral containers)."""
    if target is None:
        return [], []
    spec = pod.get("spec") or {}
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        if c.get("name") == target:
            kept, skipped = [], []
            for m in c.get("volumeMounts") or []:
                if m.get("subPath") or m.get("subPathExpr"):
                    skipped.append(m.get("mountPath", ""))
                else:
                    kept.append({k: v for k, v in m.items() if k in ("name", "mountPath", "readOnly", "mountPropagation", "recursiveReadOnly")})
            return kept, skipped
    return [], []


def copied_env(pod: Mapping[str, Any], target: str | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The target's ``env`` and ``envFrom``, as written in its spec: references (secretKeyRef, configMapRef, fieldRef)
    stay references, resolved by the kubelet in the debug container as in the target."""
    if target is None:
        return [], []
    spec = pod.get("spec") or {}
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        if c.get("name") == target:
            return copy.deepcopy(list(c.get("env") or [])), copy.deepcopy(list(c.get("envFrom") or []))
    return [], []


def build_spec(req: Request, pod: Mapping[str, Any] | None) -> dict[str, Any]:
    """The EphemeralContainer to add to ``pod`` (``None``: the pod-independent part only)."""
    spec: dict[str, Any] = {"name": req.container, "image": req.image}
    if req.command:
        spec["command"] = list(req.command)
    if req.args:
        spec["args"] = list(req.args)
    env = normalize_env(req.env) or []
    target = effective_target(req, pod)
    if req.copy_env and pod is not None:
        inherited, env_from = copied_env(pod, target)
        # The env option wins by name, as kubectl debug's --env does over a copied pod's.
        given = {item.get("name") for item in env}
        env = [item for item in inherited if item.get("name") not in given] + env
        if env_from:
            spec["envFrom"] = env_from
    if env:
        spec["env"] = env
    if req.working_dir:
        spec["workingDir"] = req.working_dir
    if req.stdin:
        spec["stdin"] = True
    if req.tty:
        spec["tty"] = True
    spec["imagePullPolicy"] = req.image_pull_policy or default_pull_policy(req.image)
    spec["terminationMessagePolicy"] = DEFAULT_TERMINATION_MESSAGE_POLICY
    security = profile_security_context(req.profile)
    if req.security_context:
        security = {**(security or {}), **req.security_context}
    if security:
        spec["securityContext"] = security
    if target:
        spec["targetContainerName"] = target
    mounts: list[dict[str, Any]] = []
    if req.copy_volume_mounts and pod is not None:
        mounts = copied_mounts(pod, target)[0]
    if req.volume_mounts:
        explicit = {m.get("mountPath") for m in req.volume_mounts}
        mounts = [m for m in mounts if m.get("mountPath") not in explicit] + [dict(m) for m in req.volume_mounts]
    if mounts:
        spec["volumeMounts"] = mounts
    if req.spec_override:
        spec = deep_merge(spec, req.spec_override)
    return spec


def normalized(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A spec as the API server stores it: defaults filled in, empty values dropped."""
    out: dict[str, Any] = _drop_empty(copy.deepcopy(dict(spec)))
    for mount in out.get("volumeMounts") or []:
        if mount.get("readOnly") is False:  # omitempty: the server stores false as absent
            del mount["readOnly"]
    for env in out.get("env") or []:
        field_ref = (env.get("valueFrom") or {}).get("fieldRef")
        if field_ref is not None:
            field_ref.setdefault("apiVersion", "v1")
    out.setdefault("terminationMessagePath", DEFAULT_TERMINATION_MESSAGE_PATH)
    out.setdefault("terminationMessagePolicy", DEFAULT_TERMINATION_MESSAGE_POLICY)
    if "image" in out:
        out.setdefault("imagePullPolicy", default_pull_policy(out["image"]))
    for key in OMITEMPTY_BOOLS:
        if out.get(key) is False:
            del out[key]
    return out


def _drop_empty(value: Any) -> Any:
    if isinstance(value, Mapping):
        cleaned = {k: _drop_empty(v) for k, v in value.items()}
        return {k: v for k, v in cleaned.items() if v not in (None, "", [], {})}
    if isinstance(value, list):
        return [_drop_empty(v) for v in value]
    return value


def differences(existing: Mapping[str, Any], desired: Mapping[str, Any], path: str = "") -> list[str]:
    """Human-readable differences between two normalized specs, one line per differing field."""
    lines: list[str] = []
    for key in sorted(set(existing) | set(desired)):
        where = f"{path}.{key}" if path else key
        old, new = existing.get(key), desired.get(key)
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            lines.extend(differences(old, new, where))
        elif old != new:
            lines.append(f"{where}: existing {old!r}, requested {new!r}")
    return lines


def _refusal(namespace: str, pod: str, req: Request, why: str) -> Plan:
    return Plan(namespace, pod, REFUSE, msg=f"pod {namespace}/{pod}: cannot add ephemeral container {req.container!r}: {why}")


def plan_pod(req: Request, pod: Mapping[str, Any]) -> Plan:
    """Decide what to do with one pod. Never raises for a pod-specific problem: it refuses."""
    namespace, name = pod_ref(pod)
    containers, init_containers, ephemeral = container_names(pod)
    spec = pod.get("spec") or {}
    existing = next((c for c in spec.get("ephemeralContainers") or [] if c.get("name") == req.container), None)
    desired = build_spec(req, pod)
    if existing is not None:
        # The API never lets an ephemeral container change, so a difference can
        # only be reported, whatever else is true of the pod now.
        diff = differences(normalized(existing), normalized(desired))
        if not diff:
            return Plan(
                namespace,
                name,
                UNCHANGED,
                msg="already present with the same spec",
                spec=desired,
                existing_names=ephemeral,
            )
        return Plan(
            namespace,
            name,
            CONFLICT,
            spec=desired,
            existing_names=ephemeral,
            differences=diff,
            msg=(
                f"pod {namespace}/{name} already has an ephemeral container {req.container!r} with another spec, and "
                "ephemeral containers can never be changed: use another container name to add a new one. "
                "Differences: " + "; ".join(diff)
            ),
        )

    meta = pod.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return _refusal(namespace, name, req, "the pod is being deleted, so the container would never start")
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        return _refusal(
            namespace,
            name,
            req,
            f"the pod has phase {phase} and the kubelet never starts containers in a finished pod: debug a copy of it instead (kubectl debug --copy-to)",
        )
    if MIRROR_POD_ANNOTATION in (meta.get("annotations") or {}):
        return _refusal(
            namespace,
            name,
            req,
            "it is a static (mirror) pod, which does not support ephemeral containers: debug the node "
            "(kubectl debug node/<node>) or edit the static pod's manifest",
        )
    if req.container in containers or req.container in init_containers:
        kind = "container" if req.container in containers else "init container"
        return _refusal(
            namespace,
            name,
            req,
            f"the pod already has a regular {kind} named {req.container!r}; names must be unique across "
            "containers, init containers and ephemeral containers: choose another container name",
        )
    target = desired.get("targetContainerName")
    if target and target not in containers and target not in init_containers:
        return _refusal(
            namespace,
            name,
            req,
            f"target_container {target!r} does not exist in the pod (containers: {', '.join(containers + init_containers)})",
        )
    volumes = {v.get("name") for v in spec.get("volumes") or []}
    mounts_from = "spec_override.volumeMounts" if "volumeMounts" in (req.spec_override or {}) else "volume_mounts"
    for mount in desired.get("volumeMounts") or []:
        if mount.get("name") not in volumes:
            return _refusal(
                namespace,
                name,
                req,
                f"{mounts_from} names volume {mount.get('name')!r}, which the pod does not have "
                f"(volumes: {', '.join(sorted(v for v in volumes if v)) or 'none'}); ephemeral containers cannot add volumes",
            )
    if (spec.get("os") or {}).get("name") == "windows":
        linux_only = [k for k in LINUX_ONLY_SECURITY_FIELDS if k in (desired.get("securityContext") or {})]
        if linux_only:
            return _refusal(
                namespace,
                name,
                req,
                f"it is a Windows pod, which refuses the Linux-only securityContext field(s) {', '.join(linux_only)} "
                f"(set by profile {req.profile!r} or security_context): use profile: baseline",
            )
    return Plan(namespace, name, ADD, msg="", spec=desired, existing_names=ephemeral, resource_version=meta.get("resourceVersion"))


def plan_pods(req: Request, pods: Iterable[Mapping[str, Any]]) -> list[Plan]:
    """One plan per pod, ordered by namespace then name so results are stable."""
    return sorted((plan_pod(req, p) for p in pods), key=lambda p: (p.namespace, p.pod))


def patch_body(existing_names: list[str], spec: Mapping[str, Any], resource_version: str | None = None) -> dict[str, Any]:
    """The strategic-merge patch that appends ``spec``.

    Without ``$setElementOrder`` the API server's strategic merge puts the new
    entry first (seen on 1.36); with it, the new one goes last, as kubectl's
    two-way merge patch does. With ``resource_version`` the server applies the
    patch only to that version of the pod and answers 409 Conflict otherwise: a
    strategic merge of an entry that is already there succeeds silently, so
    without the precondition two runs adding the same container at once would
    both be told their PATCH worked.
    """
    order = [{"name": n} for n in existing_names if n != spec["name"]] + [{"name": spec["name"]}]
    body: dict[str, Any] = {"spec": {"$setElementOrder/ephemeralContainers": order, "ephemeralContainers": [dict(spec)]}}
    if resource_version:
        body["metadata"] = {"resourceVersion": resource_version}
    return body


# Where the audit record of an added container lives: pod metadata, never its spec.
AUDIT_ANNOTATION_PREFIX = "debug.kubedebug.io/"


def audit_annotation(container: str, image: str, user: str | None, reason: str | None, at: str) -> dict[str, str]:
    """The annotation that records who added ``container`` and why (``at``: UTC, RFC 3339)."""
    value = {"by": user or "unknown", "at": at, "image": image, "reason": reason or ""}
    return {AUDIT_ANNOTATION_PREFIX + container: json.dumps(value, sort_keys=True)}
