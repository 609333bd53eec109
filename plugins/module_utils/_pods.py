# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: reading pods as the API returns them (camelCase dicts), nothing else.

Every front end reads container states and waits the same way; this is the
one copy. Pure functions: no I/O, no Ansible.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# What a wait can ask for: nothing, a container that has started (or already
# ended: a quick command may finish before anyone looks), or one that ended.
WAIT_MODES = ("none", "running", "terminated")


def pod_ref(pod: Mapping[str, Any]) -> tuple[str, str]:
    """``(namespace, name)`` of a pod."""
    meta = pod.get("metadata") or {}
    return meta.get("namespace", ""), meta.get("name", "")


def container_names(pod: Mapping[str, Any]) -> tuple[list[str], list[str], list[str]]:
    """The names of the pod's regular, init and ephemeral containers, each in spec order."""
    spec = pod.get("spec") or {}
    return (
        [c["name"] for c in spec.get("containers") or []],
        [c["name"] for c in spec.get("initContainers") or []],
        [c["name"] for c in spec.get("ephemeralContainers") or []],
    )


def container_state(status: Mapping[str, Any] | None) -> dict[str, Any]:
    """Flatten a ContainerStatus into the collection's ``state`` (``pending``: no status yet)."""
    state = (status or {}).get("state") or {}
    kind = next((k for k in ("terminated", "running", "waiting") if state.get(k) is not None), "pending")
    detail = state.get(kind) or {}
    return {
        "status": kind,
        "reason": detail.get("reason"),
        "message": detail.get("message"),
        "exit_code": detail.get("exitCode"),
        "started_at": detail.get("startedAt"),
        "finished_at": detail.get("finishedAt"),
    }


def ephemeral_status(pod: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    """The status of the pod's ephemeral container ``name``, or None when the kubelet has not reported one."""
    statuses: list[dict[str, Any]] = (pod.get("status") or {}).get("ephemeralContainerStatuses") or []
    return next((s for s in statuses if s.get("name") == name), None)


def status_only(pod: Mapping[str, Any], name: str) -> dict[str, Any]:
    """What a record of ``pod`` needs of it once planned: the status of its ephemeral container ``name``.

    Never empty (``{}`` means a pod that is gone), and a few hundred bytes where the
    whole pod is tens of kilobytes as Python objects: a task over 5,000 pods kept two
    whole copies of each (as listed, and as last seen while waiting).
    """
    status = ephemeral_status(pod, name)
    return {"status": {"ephemeralContainerStatuses": [status] if status else []}}


def reached(status: str, wait: str) -> bool:
    """Whether a container whose state is ``status`` (see ``container_state``) meets ``wait``."""
    if wait == "running":
        return status in ("running", "terminated")
    if wait == "terminated":
        return status == "terminated"
    return True


def ephemeral_reached(pod: Mapping[str, Any], containers: Iterable[str], wait: str) -> bool:
    """Whether every named ephemeral container of ``pod`` (none named: all of them) meets ``wait``.

    A name the pod's spec lacks does not hold the wait up: it will not appear by waiting.
    """
    declared = container_names(pod)[2]
    return all(reached(container_state(ephemeral_status(pod, name))["status"], wait) for name in (list(containers) or declared) if name in declared)
