# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for plugins/module_utils/_debugged.py: what debugging left behind in pods, pure.

Pods are the recorded API objects in tests/unit/fixtures/pods (``debugged``: added by
``kubectl debug --profile=general``, which adds SYS_PTRACE; ``ephemeral-states``: one
container terminated with exit code 3, one waiting in ImagePullBackOff, one running);
a test that needs an owner, an annotation or a security setting edits a copy and says so.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from ansible_collections.kubedebug.ephemeral.plugins.module_utils import _spec
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._debugged import (
    AUDIT_ANNOTATION_PREFIX,
    CONTAINER_KEYS,
    POD_KEYS,
    Options,
    audit_record,
    container_level,
    fleet_section,
    missing_failure,
    owner_of,
    pod_record,
    pod_security,
    replica_sets_to_read,
    reported,
    restart_advice,
    summary,
    validate_options,
)
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._errors import KubedebugError

NS = "unit-fixtures"
RESTRICTED_CTX = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "runAsUser": 65534,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def namespace(enforce: str | None = None) -> dict[str, Any]:
    labels = {"kubernetes.io/metadata.name": NS}
    if enforce is not None:
        labels["pod-security.kubernetes.io/enforce"] = enforce
    return {"metadata": {"name": NS, "labels": labels}}


def owned(pod: dict[str, Any], kind: str, name: str, **labels: str) -> dict[str, Any]:
    pod = copy.deepcopy(pod)
    pod["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": "u-1", "controller": True}]
    pod["metadata"].setdefault("labels", {}).update(labels)
    return pod


def annotated(pod: dict[str, Any], container: str, value: str) -> dict[str, Any]:
    pod = copy.deepcopy(pod)
    pod["metadata"].setdefault("annotations", {})[AUDIT_ANNOTATION_PREFIX + container] = value
    return pod


# --------------------------------------------------------------------------- who added it


def test_the_prefix_is_the_one_audit_annotation_writes() -> None:
    assert AUDIT_ANNOTATION_PREFIX == _spec.AUDIT_ANNOTATION_PREFIX
    written = _spec.audit_annotation("kd-dns-run1", "busybox:1.36", "jane", "INC-42", "2026-11-25T09:30:00Z")
    assert audit_record(written, "kd-dns-run1") == (
        {"added_by_us": True, "by": "jane", "at": "2026-11-25T09:30:00Z", "reason": "INC-42"},
        None,
    )


def test_an_annotation_without_user_or_reason() -> None:
    written = _spec.audit_annotation("c", "busybox:1.36", None, None, "2026-11-25T09:30:00Z")
    assert audit_record(written, "c")[0] == {"added_by_us": True, "by": "unknown", "at": "2026-11-25T09:30:00Z", "reason": None}


def test_a_container_without_annotation_was_added_by_someone_else() -> None:
    other = _spec.audit_annotation("other", "busybox:1.36", "jane", "x", "2026-11-25T09:30:00Z")
    assert audit_record(other, "debug") == ({"added_by_us": False, "by": "unknown", "at": None, "reason": None}, None)


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]", '{"at": "2026"}', '{"by": 7}', ""])
def test_a_malformed_annotation_is_unknown_with_a_note(raw: str) -> None:
    record, note = audit_record({AUDIT_ANNOTATION_PREFIX + "debug": raw}, "debug")
    assert record == {"added_by_us": False, "by": "unknown", "at": None, "reason": None}
    assert note is not None and note.startswith(f"annotation {AUDIT_ANNOTATION_PREFIX}debug is not the JSON kubedebug.ephemeral writes")
    assert note.endswith("who added container 'debug' is unknown")


# --------------------------------------------------------------------------- security


@pytest.mark.parametrize(
    ("ctx", "pod_ctx", "level"),
    [
        (None, {}, "baseline"),
        ({"privileged": True}, {}, "privileged"),
        ({"capabilities": {"add": ["SYS_PTRACE"]}}, {}, "privileged"),
        ({"capabilities": {"add": ["NET_ADMIN", "CHOWN"]}}, {}, "privileged"),
        ({"capabilities": {"add": ["CHOWN"]}}, {}, "baseline"),
        ({"seccompProfile": {"type": "Unconfined"}}, {}, "privileged"),
        (RESTRICTED_CTX, {}, "restricted"),
        (dict(RESTRICTED_CTX, capabilities={"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}), {}, "restricted"),
        (dict(RESTRICTED_CTX, capabilities={"drop": ["ALL"], "add": ["CHOWN"]}), {}, "baseline"),
        (dict(RESTRICTED_CTX, runAsUser=0), {}, "baseline"),
        (dict(RESTRICTED_CTX, allowPrivilegeEscalation=True), {}, "baseline"),
        # The pod's runAsNonRoot and seccomp profile count for the container.
        (
            {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "restricted",
        ),
        ({"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}, {"runAsNonRoot": True}, "baseline"),
    ],
)
def test_container_level(ctx: dict[str, Any] | None, pod_ctx: dict[str, Any], level: str) -> None:
    container = {"name": "c", "image": "busybox"} | ({"securityContext": ctx} if ctx is not None else {})
    assert container_level(container, {"securityContext": pod_ctx}) == level


def containers(*levels: tuple[str, str, bool, list[str]]) -> list[dict[str, Any]]:
    return [{"name": n, "pod_security_level": lvl, "privileged": priv, "capabilities_added": caps} for n, lvl, priv, caps in levels]


def test_a_container_that_already_violates_the_enforced_level() -> None:
    got = pod_security(containers(("debug", "privileged", False, ["SYS_PTRACE"]), ("ok", "restricted", False, [])), namespace("baseline"))
    assert got["enforce"] == "baseline" and got["violating"] == ["debug"]
    assert got["note"] == (
        "ephemeral container debug already violates the enforced level 'baseline': PodSecurity checks the whole pod on every add, "
        "so every later ephemeral container added to this pod is refused until the pod is recreated"
    )


def test_under_a_lenient_level_the_note_says_which_level_would_block() -> None:
    got = pod_security(containers(("debug", "privileged", True, [])), namespace("privileged"))
    assert (got["enforce"], got["violating"]) == ("privileged", [])
    assert got["note"] == (
        "debug (privileged): if the namespace enforces baseline or stricter, every later ephemeral container added to this pod is refused "
        "(PodSecurity checks the whole pod on every add)"
    )
    got = pod_security(containers(("shell", "baseline", False, [])), namespace("baseline"))
    assert got["note"].startswith("shell (meets baseline, not restricted): if the namespace enforces restricted or stricter")


def test_restricted_containers_need_no_note() -> None:
    assert pod_security(containers(("c", "restricted", False, [])), namespace("restricted")) == {"enforce": "restricted", "violating": [], "note": None}


def test_a_namespace_without_the_label_or_that_could_not_be_read() -> None:
    got = pod_security(containers(("c", "restricted", False, [])), namespace())
    assert got["enforce"] is None and got["note"].startswith("the namespace has no pod-security.kubernetes.io/enforce label")
    forbidden = "permission denied reading namespace 'x': grant 'get' on 'namespaces'"
    got = pod_security(containers(("c", "privileged", False, ["SYS_ADMIN"])), forbidden)
    assert (got["enforce"], got["violating"]) == ("unknown", [])
    assert got["note"].startswith(
        f"the namespace's enforced PodSecurity level is unknown ({forbidden}); c (adds SYS_ADMIN): if the namespace enforces baseline"
    )


# --------------------------------------------------------------------------- owners


def test_a_deployment_found_through_its_replica_set(debugged_pod: dict[str, Any]) -> None:
    pod = owned(debugged_pod, "ReplicaSet", "web-7d9c6b5f4", **{"pod-template-hash": "7d9c6b5f4"})
    replica_set = owned({"metadata": {"name": "web-7d9c6b5f4", "namespace": NS}}, "Deployment", "web")
    assert replica_sets_to_read([pod, pod, debugged_pod]) == [(NS, "web-7d9c6b5f4")]
    assert owner_of(pod, {(NS, "web-7d9c6b5f4"): replica_set}) == {"kind": "Deployment", "name": "web", "via": "ReplicaSet web-7d9c6b5f4"}


def test_a_deployment_inferred_when_the_replica_set_may_not_be_read(debugged_pod: dict[str, Any]) -> None:
    pod = owned(debugged_pod, "ReplicaSet", "web-api-7d9c6b5f4", **{"pod-template-hash": "7d9c6b5f4"})
    owner = owner_of(pod, {(NS, "web-api-7d9c6b5f4"): "permission denied reading ReplicaSet"})
    assert owner == {
        "kind": "Deployment",
        "name": "web-api",
        "via": "inferred from ReplicaSet web-api-7d9c6b5f4 and the pod-template-hash label (it could not be read: permission denied reading ReplicaSet)",
    }
    record = pod_record(pod, Options(), {(NS, "web-api-7d9c6b5f4"): "permission denied reading ReplicaSet"}, {NS: namespace()})
    assert record is not None and record["notes"][-1] == f"Deployment web-api is {owner['via']}"


def test_a_replica_set_without_deployment_or_hash(debugged_pod: dict[str, Any]) -> None:
    pod = owned(debugged_pod, "ReplicaSet", "solo")
    assert owner_of(pod, {(NS, "solo"): {"metadata": {"name": "solo"}}}) == {"kind": "ReplicaSet", "name": "solo", "via": None}
    assert owner_of(pod, {(NS, "solo"): "forbidden"}) == {"kind": "ReplicaSet", "name": "solo", "via": None}


def test_other_owners_and_bare_pods(debugged_pod: dict[str, Any]) -> None:
    assert owner_of(owned(debugged_pod, "StatefulSet", "db"), {}) == {"kind": "StatefulSet", "name": "db", "via": None}
    assert owner_of(debugged_pod, {}) is None
    not_controller = copy.deepcopy(debugged_pod)
    not_controller["metadata"]["ownerReferences"] = [{"kind": "ConfigMap", "name": "x", "uid": "u"}]
    assert owner_of(not_controller, {}) is None


@pytest.mark.parametrize(
    ("owner", "command", "advice"),
    [
        ({"kind": "Deployment", "name": "web"}, "kubectl -n shop rollout restart deployment/web", "restart Deployment web when done"),
        ({"kind": "StatefulSet", "name": "db"}, "kubectl -n shop rollout restart statefulset/db", "restart StatefulSet db when done"),
        ({"kind": "DaemonSet", "name": "agent"}, "kubectl -n shop rollout restart daemonset/agent", "restart DaemonSet agent when done"),
        ({"kind": "ReplicaSet", "name": "solo"}, "kubectl -n shop delete pod p-1", "ReplicaSet solo (no Deployment): delete the pod"),
        ({"kind": "Job", "name": "backup"}, "kubectl -n shop delete pod p-1", "Job backup: the containers go with the pod"),
        ({"kind": "Rollout", "name": "r"}, "kubectl -n shop delete pod p-1", "owned by Rollout r: restart it the way"),
        ({"kind": "Node", "name": "node-1"}, "", "static pod"),
        (None, "kubectl -n shop delete pod p-1", "bare pod p-1: delete and recreate the pod"),
    ],
)
def test_restart_advice(owner: dict[str, Any] | None, command: str, advice: str) -> None:
    got = restart_advice("shop", "p-1", owner)
    assert got["command"] == command and got["advice"].startswith(advice)


# --------------------------------------------------------------------------- records


def test_record_of_a_pod_kubectl_debug_touched(debugged_pod: dict[str, Any]) -> None:
    record = pod_record(debugged_pod, Options(), {}, {NS: namespace("baseline")})
    assert record is not None and tuple(record) == POD_KEYS
    assert (record["namespace"], record["pod"], record["phase"], record["running"], record["owner"]) == (NS, "debugged", "Running", 1, None)
    [container] = record["containers"]
    assert tuple(container) == CONTAINER_KEYS
    assert container == {
        "name": "debug",
        "image": "docker.io/library/busybox:1.36",
        "target": "app",
        "state": {"status": "running", "reason": None, "message": None, "exit_code": None, "started_at": "2026-11-25T09:09:14Z", "finished_at": None},
        "running": True,
        "privileged": False,
        "capabilities_added": ["SYS_PTRACE"],
        "pod_security_level": "privileged",
        "added_by_us": False,
        "by": "unknown",
        "at": None,
        "reason": None,
    }
    assert record["restart"] == {
        "advice": "bare pod debugged: delete and recreate the pod from its manifest (without spec.ephemeralContainers: a new pod may not carry them)",
        "command": f"kubectl -n {NS} delete pod debugged",
    }
    assert record["pod_security"]["violating"] == ["debug"]
    assert record["notes"] == ["the pod keeps its 1 ephemeral container until it is deleted: they cannot be removed, restarted or changed"]


def test_states_filters_and_annotations(states_pod: dict[str, Any]) -> None:
    ours = _spec.audit_annotation("exited", "docker.io/library/busybox:1.36", "jane", "INC-7", "2026-11-25T09:09:28Z")
    pod = annotated(states_pod, "exited", ours["debug.kubedebug.io/exited"])
    pod = annotated(pod, "pull-fail", "{broken")
    record = pod_record(pod, Options(), {}, {NS: namespace("restricted")})
    assert record is not None
    got = [(c["name"], c["state"]["status"], c["state"]["exit_code"], c["state"]["reason"], c["running"], c["by"], c["reason"]) for c in record["containers"]]
    assert got == [
        ("exited", "terminated", 3, "Error", False, "jane", "INC-7"),
        ("pull-fail", "waiting", None, "ImagePullBackOff", False, "unknown", None),
        ("fresh", "running", None, None, True, "unknown", None),
    ]
    assert record["running"] == 1
    assert record["notes"][0].startswith("the pod keeps its 3 ephemeral containers until it is deleted")
    assert record["notes"][1].startswith("annotation debug.kubedebug.io/pull-fail is not the JSON")
    # No securityContext: baseline at most, and the namespace enforces restricted.
    assert record["pod_security"]["violating"] == ["exited", "pull-fail", "fresh"]

    running = pod_record(pod, Options(only_running=True), {}, {})
    assert running is not None and [c["name"] for c in running["containers"]] == ["fresh"]
    # The PodSecurity verdict is about the whole pod, whatever the filters show.
    assert running["pod_security"]["enforce"] == "unknown"
    us = pod_record(pod, Options(added_by="us"), {}, {})
    assert us is not None and [c["name"] for c in us["containers"]] == ["exited"]
    others = pod_record(pod, Options(added_by="others"), {}, {})
    assert others is not None and [c["name"] for c in others["containers"]] == ["pull-fail", "fresh"]
    assert pod_record(pod, Options(added_by="us", only_running=True), {}, {}) is None
    assert not reported(pod, Options(added_by="us", only_running=True)) and reported(pod, Options())


def test_a_pod_without_ephemeral_containers_is_not_reported(plain_pod: dict[str, Any]) -> None:
    assert not reported(plain_pod, Options())
    assert pod_record(plain_pod, Options(), {}, {}) is None


def test_summary(debugged_pod: dict[str, Any], states_pod: dict[str, Any]) -> None:
    ours = _spec.audit_annotation("debug", "busybox", "jane", "", "2026-11-25T09:30:00Z")
    records = [pod_record(annotated(debugged_pod, "debug", ours["debug.kubedebug.io/debug"]), Options(), {}, {}), pod_record(states_pod, Options(), {}, {})]
    got = summary(7, [r for r in records if r is not None])
    assert got == {
        "pods_scanned": 7,
        "pods_debugged": 2,
        "containers": 4,
        "running": 2,
        "by_us": 1,
        "unknown": 3,
        "by_namespace": {NS: {"pods": 2, "containers": 4, "running": 2}},
    }
    assert summary(0, []) == {"pods_scanned": 0, "pods_debugged": 0, "containers": 0, "running": 0, "by_us": 0, "unknown": 0, "by_namespace": {}}


def test_missing_failure() -> None:
    missing = [{"namespace": NS, "pod": "a", "error": "pod unit-fixtures/a not found"}]
    assert missing_failure(0, []) is None and missing_failure(2, missing) is None
    assert missing_failure(1, missing) == "nothing could be read: pod unit-fixtures/a not found"


def test_added_by_is_checked() -> None:
    validate_options(Options(added_by="others"))
    with pytest.raises(KubedebugError, match="added_by must be one of any, us, others; got 'me'"):
        validate_options(Options(added_by="me"))


# --------------------------------------------------------------------------- fleet report


def test_fleet_section(debugged_pod: dict[str, Any], states_pod: dict[str, Any]) -> None:
    ours = _spec.audit_annotation("exited", "busybox", "jane", "INC-7", "2026-11-25T09:30:00Z")
    eu = [pod_record(owned(annotated(states_pod, "exited", ours["debug.kubedebug.io/exited"]), "StatefulSet", "db"), Options(), {}, {})]
    us = [pod_record(debugged_pod, Options(), {}, {})]
    counts, rows = fleet_section(
        [
            {"cluster": "us", "pods": json.loads(json.dumps(us)), "error": None},
            {"cluster": "eu", "pods": eu},
            {"cluster": "ap", "pods": [], "error": "permission denied listing pods cluster-wide"},
        ]
    )
    assert counts == {
        "pods": 2,
        "containers": 4,
        "running": 2,
        "by_us": 1,
        "unknown": 3,
        "by_cluster": {
            "ap": {"pods": 0, "containers": 0, "running": 0},
            "eu": {"pods": 1, "containers": 3, "running": 1},
            "us": {"pods": 1, "containers": 1, "running": 1},
        },
        "errors": [{"cluster": "ap", "error": "permission denied listing pods cluster-wide"}],
    }
    assert rows == [
        {
            "cluster": "eu", "namespace": NS, "pod": "states", "containers": ["exited", "pull-fail", "fresh"], "by": ["jane", "unknown"],
            "reasons": ["INC-7"], "running": ["fresh"], "restart": rows[0]["restart"], "command": f"kubectl -n {NS} rollout restart statefulset/db",
        },
        {
            "cluster": "us", "namespace": NS, "pod": "debugged", "containers": ["debug"], "by": ["unknown"], "reasons": [], "running": ["debug"],
            "restart": rows[1]["restart"], "command": f"kubectl -n {NS} delete pod debugged",
        },
    ]  # fmt: skip
    assert rows[0]["restart"].startswith("restart StatefulSet db when done")
    assert fleet_section([]) == ({"pods": 0, "containers": 0, "running": 0, "by_us": 0, "unknown": 0, "by_cluster": {}, "errors": []}, [])
