# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: the checks made before a debug container is added, as pure functions.

Two questions an ephemeral container cannot take back once it is in the pod:

- can this pod's node pull the debug image? The kubelet pulls it with the pod's
  ``imagePullSecrets`` (the ServiceAccount's were copied into the pod when it was
  created) and then the node's own credentials. A registry none of the pod's secrets
  names is a warning when the pod has secrets at all: its workload comes from a
  private registry, and the debug image from another one.
- is there memory to spare on the node? Ephemeral containers have no resources: what
  a recipe uses comes out of the node's headroom (allocatable minus what the pods
  there request), and, when every container of the pod has a memory limit, out of
  the pod's own cgroup limit, which the kubelet sets from the regular containers.

Nothing here talks to Kubernetes: the manager reads the secrets, nodes and pods.
Secrets are reduced to the registries they name at once; no credential is kept.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from ansible_collections.kubedebug.ephemeral.plugins.module_utils._errors import KubedebugError

PREFLIGHTS = ("image_pull", "memory")
DEFAULT_MIN_MEMORY_HEADROOM = "256Mi"

# Waiting reasons after which the kubelet will not start the container without a change (kubelet images/types.go and
# kuberuntime): a canary that shows one stops the fleet run.
START_FAILURES = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",
        "RegistryUnavailable",
        "SignatureValidationFailed",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)

# Docker Hub's names: the kubelet's keyring treats them as one registry.
DOCKER_HUB = "docker.io"
_DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "k": Decimal(10**3), "M": Decimal(10**6)}
_DECIMAL.update({"G": Decimal(10**9), "T": Decimal(10**12), "P": Decimal(10**15), "E": Decimal(10**18)})


def quantity_bytes(text: Any, what: str = "quantity") -> int:
    """A Kubernetes memory quantity (``512Mi``, ``1G``, ``1.5Gi``, ``1e9``) in bytes, rounded up."""
    value = str(text).strip()
    for suffix, factor in _BINARY.items():
        if value.endswith(suffix):
            number, multiplier = value[: -len(suffix)], Decimal(factor)
            break
    else:
        if value and value[-1] in _DECIMAL:
            number, multiplier = value[:-1], _DECIMAL[value[-1]]
        else:
            number, multiplier = value, Decimal(1)
    try:
        amount = Decimal(number) * multiplier
    except InvalidOperation:
        amount = Decimal("NaN")
    if not number or amount.is_nan() or amount.is_infinite() or amount < 0:
        raise KubedebugError(f"{what} {text!r} is not a memory quantity: give bytes or a number with a suffix such as 256Mi, 1Gi or 500M")
    return int(amount.to_integral_value(rounding="ROUND_CEILING"))


def human_bytes(amount: int) -> str:
    """Bytes as the largest binary unit that keeps one decimal: ``1.5Gi``, ``256Mi``, ``-12Mi``."""
    sign, size = ("-" if amount < 0 else ""), abs(amount)
    for unit in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        if size >= _BINARY[unit]:
            shown = f"{size / _BINARY[unit]:.1f}".removesuffix(".0")
            return f"{sign}{shown}{unit}"
    return f"{sign}{size}"


def preflight_view(pod: Mapping[str, Any]) -> dict[str, Any]:
    """What the preflights read of a pod: its node, pull secrets and containers' memory limits, as a pod of that shape.

    The manager keeps this instead of the pod while it reads nodes and secrets: a 5,000-pod task then holds a few
    hundred bytes per pod at that point, not the listed pods plus the pods of every node it lists.
    """
    spec = pod.get("spec") or {}
    containers = [{"resources": {"limits": {"memory": _limit_text(c)}}} for c in spec.get("containers") or []]
    return {"spec": {"nodeName": spec.get("nodeName") or "", "imagePullSecrets": list(spec.get("imagePullSecrets") or []), "containers": containers}}


def _limit_text(container: Mapping[str, Any]) -> Any:
    return (((container.get("resources") or {}).get("limits")) or {}).get("memory")


# -- image pull ------------------------------------------------------------------------------------------------------


def image_registry(image: str) -> str:
    """The registry host the runtime pulls ``image`` from: its first path component when that looks like a host
    (a '.' or ':' in it, or ``localhost``), else Docker Hub."""
    name = image.split("@", 1)[0]
    first, slash, _rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return DOCKER_HUB if first in _DOCKER_HUB_ALIASES else first
    return DOCKER_HUB


def image_repository(image: str) -> str:
    """``image`` without tag and digest, with the registry the runtime fills in: ``docker.io/library/busybox``."""
    name = image.split("@", 1)[0]
    last_slash = name.rfind("/")
    if ":" in name[last_slash + 1 :]:
        name = name[: name.rfind(":")]
    registry = image_registry(image)
    first, slash, rest = name.partition("/")
    if slash and (first == registry or first in _DOCKER_HUB_ALIASES):
        path = rest
    else:
        path = name
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    return f"{registry}/{path}"


def full_image(image: str) -> str:
    """``image`` as a node lists it in ``status.images``: registry and path filled in, tag (``latest`` when none) or digest kept."""
    name, at, digest = image.partition("@")
    if at:
        return f"{image_repository(image)}@{digest}"
    last = name.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else "latest"
    return f"{image_repository(image)}:{tag}"


def secret_registries(secret: Mapping[str, Any]) -> list[str]:
    """The registry keys of a pull secret (``.dockerconfigjson`` or legacy ``.dockercfg``); credentials are dropped here.

    Raises KubedebugError when the secret is not a pull secret the kubelet can read.
    """
    data = secret.get("data") or {}
    name = (secret.get("metadata") or {}).get("name", "")
    for key, nested in ((".dockerconfigjson", True), (".dockercfg", False)):
        if key not in data:
            continue
        try:
            parsed = json.loads(base64.b64decode(str(data[key]), validate=True))
        except (binascii.Error, ValueError) as exc:
            raise KubedebugError(f"secret {name!r}: {key} is not base64-encoded JSON, so the kubelet cannot use it") from exc
        auths = parsed.get("auths") if nested and isinstance(parsed, Mapping) else parsed
        if not isinstance(auths, Mapping):
            raise KubedebugError(f"secret {name!r}: {key} has no 'auths' mapping, so the kubelet cannot use it")
        return sorted(str(registry) for registry in auths)
    raise KubedebugError(f"secret {name!r} has neither .dockerconfigjson nor .dockercfg (type {secret.get('type')!r}): it is not an image pull secret")


def _split_key(key: str) -> tuple[str, str]:
    """A docker config key as the kubelet's keyring reads it: host (with port) and path, scheme dropped."""
    rest = key.strip()
    for scheme in ("https://", "http://"):
        if rest.startswith(scheme):
            rest = rest[len(scheme) :]
    host, _slash, path = rest.partition("/")
    path = path.strip("/")
    if path in ("v1", "v2"):
        path = ""
    return host, path


def registry_covers(key: str, image: str) -> bool:
    """Whether the docker config key ``key`` (``registry.example.com``, ``https://index.docker.io/v1/``,
    ``*.example.com/team``) applies to ``image``, as the kubelet's credential keyring matches them: same host, or a
    host glob per dot-separated part; same port; the key's path a prefix of the image's."""
    host, path = _split_key(key)
    if host in _DOCKER_HUB_ALIASES:
        host = DOCKER_HUB
    repository = image_repository(image)
    image_host, _slash, image_path = repository.partition("/")
    key_name, _colon, key_port = host.partition(":")
    image_name, _colon2, image_port = image_host.partition(":")
    if key_port != image_port:
        return False
    key_parts, image_parts = key_name.split("."), image_name.split(".")
    if len(key_parts) != len(image_parts) or not all(fnmatch.fnmatchcase(part, pattern) for pattern, part in zip(key_parts, image_parts, strict=True)):
        return False
    return not path or image_path == path or image_path.startswith(path + "/")


def pull_check(
    pod: Mapping[str, Any],
    image: str,
    pull_policy: str,
    secrets: Mapping[str, list[str] | str | None],
    node_images: list[str] | None,
) -> dict[str, Any]:
    """Whether ``pod``'s node will be able to pull ``image``, as far as the API can tell.

    ``secrets`` maps each of the pod's pull secret names to the registries it names, None when it does not exist, or
    the reason it could not be read. ``node_images``: the image names the node reports (None: node not read).
    """
    registry = image_registry(image)
    names = [str(ref.get("name")) for ref in (pod.get("spec") or {}).get("imagePullSecrets") or [] if isinstance(ref, Mapping) and ref.get("name")]
    record: dict[str, Any] = {"status": "", "registry": registry, "secrets": names, "covered_by": [], "msg": ""}
    present = node_images is not None and pull_policy != "Always" and full_image(image) in node_images
    if pull_policy == "Never" and not present:
        where = "not among the images the node reports" if node_images is not None else "only usable if the node already has it"
        return {**record, "status": "never_pulled", "msg": f"imagePullPolicy Never: the image is {where}, and the kubelet will not pull it"}
    if present:
        return {**record, "status": "present", "msg": f"the node already has {full_image(image)} (imagePullPolicy {pull_policy}): no pull needed"}
    missing = [name for name in names if secrets.get(name) is None]
    unreadable = {name: str(value) for name, value in secrets.items() if name in names and isinstance(value, str)}
    covering = [name for name in names if isinstance(secrets.get(name), list) and any(registry_covers(key, image) for key in secrets[name] or [])]
    record["covered_by"] = covering
    if covering:
        return {**record, "status": "covered", "msg": f"registry {registry} is covered by imagePullSecrets {', '.join(covering)}"}
    if not names:
        return {
            **record,
            "status": "no_secrets",
            "msg": f"the pod has no imagePullSecrets: the image must be public, or the node must have credentials for {registry}",
        }
    if unreadable:
        first = next(iter(unreadable.values()))
        return {**record, "status": "unknown", "msg": f"could not read imagePullSecrets {', '.join(sorted(unreadable))}: {first}"}
    gone = f" ({', '.join(missing)} not found: the kubelet skips them)" if missing else ""
    return {
        **record,
        "status": "not_covered",
        "msg": (
            f"registry {registry} is not covered by the pod's imagePullSecrets {', '.join(names)}{gone}: the pull fails unless "
            f"{image} is public or the node has credentials for {registry}; add a pull secret for {registry} to the "
            "pod's ServiceAccount (new pods) or use a debug image from a covered registry"
        ),
    }


# -- memory ----------------------------------------------------------------------------------------------------------


def _memory(resources: Mapping[str, Any] | None, kind: str) -> int | None:
    value = ((resources or {}).get(kind) or {}).get("memory")
    if value is None:
        return None
    try:
        return quantity_bytes(value)
    except KubedebugError:
        return None


def pod_memory_request(pod: Mapping[str, Any]) -> int:
    """What the scheduler counts for ``pod``: its containers' memory requests, or the largest init container's when
    more (restartable init containers run alongside), plus the pod overhead."""
    spec = pod.get("spec") or {}
    regular = sum(_memory(c.get("resources"), "requests") or 0 for c in spec.get("containers") or [])
    sidecars = 0
    init_peak = 0
    for c in spec.get("initContainers") or []:
        request = _memory(c.get("resources"), "requests") or 0
        if c.get("restartPolicy") == "Always":
            sidecars += request
        init_peak = max(init_peak, sidecars + request)
    overhead = _memory({"requests": spec.get("overhead") or {}}, "requests") or 0
    return max(regular + sidecars, init_peak) + overhead


def pod_memory_limit(pod: Mapping[str, Any]) -> int | None:
    """The memory limit the kubelet sets on the pod's cgroup: the sum of its containers' limits when every container has
    one (else none). An ephemeral container has no resources and runs inside that cgroup."""
    containers = (pod.get("spec") or {}).get("containers") or []
    limits = [_memory(c.get("resources"), "limits") for c in containers]
    if not limits or any(limit is None for limit in limits):
        return None
    return sum(limit for limit in limits if limit is not None)


def node_headroom(node: Mapping[str, Any], pods_on_node: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The node's allocatable memory, what the pods on it request, and the difference; and its MemoryPressure."""
    allocatable = quantity_bytes(((node.get("status") or {}).get("allocatable") or {}).get("memory", "0"), "node allocatable memory")
    requested = sum(pod_memory_request(p) for p in pods_on_node if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed"))
    conditions = (node.get("status") or {}).get("conditions") or []
    pressure = any(c.get("type") == "MemoryPressure" and c.get("status") == "True" for c in conditions)
    return {"allocatable": allocatable, "requested": requested, "headroom": allocatable - requested, "pressure": pressure}


def memory_check(pod: Mapping[str, Any], node: str, headroom: Mapping[str, Any] | str | None, minimum: int) -> dict[str, Any]:
    """The memory preflight of one pod, given its node's ``node_headroom`` (or why it is not known: a text; None: the
    pod is not on a node yet)."""
    record: dict[str, Any] = {"status": "", "node": node, "allocatable": None, "requested": None, "headroom": None, "pressure": None, "pod_limit": None}
    limit = pod_memory_limit(pod)
    record["pod_limit"] = limit
    in_pod = (
        f"; every container of the pod has a memory limit, so the debug container shares the pod's cgroup limit of {human_bytes(limit)} "
        "with them (a hungry recipe can get the app OOM-killed)"
        if limit is not None
        else ""
    )
    if not node:
        return {**record, "status": "unknown", "msg": "the pod is not scheduled to a node yet" + in_pod}
    if not isinstance(headroom, Mapping):
        return {**record, "status": "unknown", "msg": f"node {node}: {headroom or 'not read'}" + in_pod}
    record.update({key: headroom[key] for key in ("allocatable", "requested", "headroom", "pressure")})
    numbers = (
        f"allocatable {human_bytes(headroom['allocatable'])}, requested by its pods {human_bytes(headroom['requested'])}, "
        f"headroom {human_bytes(headroom['headroom'])}"
    )
    if headroom["pressure"]:
        return {
            **record,
            "status": "pressure",
            "msg": f"node {node} reports MemoryPressure ({numbers}): the kubelet is evicting pods; a debug container's memory makes this pod a likelier victim"
            + in_pod,
        }
    if headroom["headroom"] < minimum:
        return {
            **record,
            "status": "low",
            "msg": (
                f"node {node} has {human_bytes(headroom['headroom'])} of memory headroom, less than min_memory_headroom "
                f"{human_bytes(minimum)} ({numbers}): ephemeral containers have no resources, so a memory-hungry recipe risks "
                "getting this pod evicted; prefer a light recipe, or a pod on another node"
            )
            + in_pod,
        }
    return {**record, "status": "ok", "msg": f"node {node}: {numbers}" + in_pod}


def preflight_warnings(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """One warning per problem, not per pod: a fleet of 1,000 pods on a full node gives one line, with a count.

    A check that could not be made (``unknown``: no permission to read nodes or secrets, a pod not scheduled yet) is
    said in the pod's record only: the minimal RBAC role grants neither, and a warning on every run of every user
    who follows it would teach them to ignore the preflights' warnings.
    """
    groups: dict[str, list[str]] = {}
    for record in records:
        where = f"{record['namespace']}/{record['pod']}"
        checks = record.get("preflight") or {}
        pull = checks.get("image_pull") or {}
        if pull.get("status") in ("not_covered", "never_pulled"):
            groups.setdefault(f"image_pull: {pull['msg']}", []).append(where)
        memory = checks.get("memory") or {}
        if memory.get("status") in ("low", "pressure"):
            groups.setdefault(f"memory: {memory['msg']}", []).append(where)
    warnings = []
    for message, pods in groups.items():
        more = f" and {len(pods) - 1} more" if len(pods) > 1 else ""
        warnings.append(f"preflight {message} (pod {pods[0]}{more})")
    return warnings
