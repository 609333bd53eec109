"""Integration tests of kubedebug.ephemeral.pod_snapshot_info against the local cluster.

The API server, scheduler and RBAC are real; the kubelets are simulated by KWOK,
which runs no process and never restarts a container. Where a kubelet would
report something KWOK does not, the test stands in for the kubelet and says so:

- a restart: the pod's ``status`` subresource is patched with the restartCount and
  ``lastState.terminated`` a kubelet reports after an OOM kill;
- the kubelet's events (BackOff, Killing): created through core/v1 with the fields
  a kubelet's event recorder fills in. The scheduler's ``Scheduled`` events are real;
- the logs: the output of real commands run on this host, in CRI format, served by
  kwok through the API server's log endpoint (a per-pod ``Logs`` object with
  ``logsFile`` and ``previousLogsFile``).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client

from kubehelpers import (
    APP,
    SMP_KWARGS,
    Cluster,
    cri_log,
    patch_ephemeral,
    real_run,
    run_task,
    running_pod,
    service_account_auth,
    wait_for,
)

MODULE = "kubedebug.ephemeral.pod_snapshot_info"
BUSYBOX = "docker.io/library/busybox:1.36"
PAUSE = APP["image"]
RBAC_DOC = "the collection's RBAC guide, docs/docsite/rst/rbac.rst"

# A web handler that logs a stack trace and keeps serving: the current instance's log.
HANDLER = (
    "import logging, sys\n"
    "logging.basicConfig(stream=sys.stdout, format='%(levelname)s %(message)s')\n"
    "print('listening on :8080', flush=True)\n"
    "try:\n"
    "    {}['order_id']\n"
    "except KeyError:\n"
    "    logging.exception('GET /orders/42 failed')\n"
)
CURRENT_COMMAND = [sys.executable, "-c", HANDLER]
# The previous instance: killed with SIGKILL, as the kernel's OOM killer does.
# As a pod spec must write it: the kubelet turns $$ into $ in a container's command (real_run does the same).
PREVIOUS_COMMAND = ["sh", "-c", 'echo "loading 3 shards into memory"; kill -KILL $$$$']
SIDECAR_COMMAND = ["ls", "/nonexistent"]


# --------------------------------------------------------------------------- helpers


def serve_pod_logs(cluster: Cluster, namespace: str, pod: str, files: dict[str, tuple[Path, Path | None]]) -> None:
    """One per-pod Logs object: for each container its current log file and, if given, its previous one.

    Unlike ``kubehelpers.serve_logs`` (``logsFile`` only), this also sets kwok's
    ``previousLogsFile``, which kwok serves for ``?previous=true``.
    """
    entries = []
    for container, (current, previous) in files.items():
        entry: dict[str, Any] = {"containers": [container], "logsFile": str(current)}
        if previous is not None:
            entry["previousLogsFile"] = str(previous)
        entries.append(entry)
    body = {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Logs",
        "metadata": {"name": pod, "namespace": namespace},
        "spec": {"logs": entries},
    }
    client.CustomObjectsApi(cluster.api_client).create_namespaced_custom_object(
        "kwok.x-k8s.io", "v1alpha1", namespace, "logs", body
    )


def log_file(tmp_path: Path, name: str, output: str) -> Path:
    path = tmp_path / f"{name}-{uuid.uuid4().hex[:6]}.log"
    path.write_text(cri_log(output))
    return path


def served(cluster: Cluster, namespace: str, pod: str, container: str, expected: str, previous: bool = False) -> None:
    """Wait until kwok has picked up the Logs object (it watches them)."""

    def probe() -> bool:
        try:
            data = cluster.core.read_namespaced_pod_log(
                pod, namespace, container=container, previous=previous, _preload_content=False
            ).data
        except client.ApiException:
            return False
        return data.decode() == expected

    wait_for(f"kwok serving the {'previous' if previous else 'current'} log of {namespace}/{pod}/{container}", probe)


def raw_pod(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    return json.loads(cluster.core.read_namespaced_pod(name, namespace, _preload_content=False).data)


def later(stamp: str, seconds: int) -> str:
    moment = dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ") + dt.timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def kubelet_restarted(
    cluster: Cluster, namespace: str, pod: str, container: str, *, restarts: int, reason: str, exit_code: int
) -> dict[str, Any]:
    """Stand-in for the kubelet: report that ``container`` was restarted after its last instance ended.

    A kubelet writes this to the pod's status subresource after it restarts a
    container; KWOK never restarts one. Returns ``lastState.terminated`` as written.
    The current instance started a second after the last one ended.
    """
    status = raw_pod(cluster, namespace, pod)["status"]
    statuses = status["containerStatuses"]
    entry = next(s for s in statuses if s["name"] == container)
    first_start = entry["state"]["running"]["startedAt"]
    terminated = {
        "containerID": f"kwok://{container}-{restarts - 1}",
        "exitCode": exit_code,
        "reason": reason,
        "startedAt": later(first_start, 30),
        "finishedAt": later(first_start, 90),
    }
    entry["restartCount"] = restarts
    entry["lastState"] = {"terminated": terminated}
    entry["state"] = {"running": {"startedAt": later(first_start, 91)}}
    # containerStatuses has no merge key: the list is sent whole.
    cluster.core.patch_namespaced_pod_status(pod, namespace, {"status": {"containerStatuses": statuses}}, **SMP_KWARGS)
    return terminated


def kubelet_event(
    cluster: Cluster,
    pod: dict[str, Any],
    container: str,
    *,
    kind: str,
    reason: str,
    message: str,
    first: str,
    last: str,
    count: int,
) -> None:
    """Stand-in for the kubelet: an Event as its core/v1 event recorder writes it."""
    meta = pod["metadata"]
    node = pod["spec"]["nodeName"]
    cluster.core.create_namespaced_event(
        meta["namespace"],
        {
            "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:16]}"},
            "involvedObject": {
                "kind": "Pod",
                "namespace": meta["namespace"],
                "name": meta["name"],
                "uid": meta["uid"],
                "apiVersion": "v1",
                "resourceVersion": meta["resourceVersion"],
                "fieldPath": f"spec.containers{{{container}}}",
            },
            "reason": reason,
            "message": message,
            "source": {"component": "kubelet", "host": node},
            "firstTimestamp": first,
            "lastTimestamp": last,
            "count": count,
            "type": kind,
            "reportingComponent": "kubelet",
            "reportingInstance": node,
        },
    )


def scheduled_event(cluster: Cluster, namespace: str, pod: str) -> dict[str, Any]:
    """The scheduler's (real) Scheduled event of ``pod``, as the snapshot reports it (waits for it to be recorded)."""

    def probe() -> list[dict[str, Any]]:
        return json.loads(
            cluster.core.list_namespaced_event(
                namespace, field_selector=f"involvedObject.name={pod},reason=Scheduled", _preload_content=False
            ).data
        )["items"]

    [event] = wait_for(f"the Scheduled event of {namespace}/{pod}", probe)
    # The scheduler writes through events.k8s.io (eventTime, no first/lastTimestamp) when the API server offered that
    # group when the scheduler started, else through the core API (first/lastTimestamp, no eventTime): a cluster start
    # under load gave the second (client-go's NewEventBroadcasterAdapter). Either way it is one point in time.
    seen = event.get("eventTime") or event.get("firstTimestamp")
    assert seen, event
    return {
        "type": "Normal",
        "reason": "Scheduled",
        "message": event["message"],
        "count": 1,
        "first_seen": seen,
        "last_seen": event.get("eventTime") or event.get("lastTimestamp"),
        "source": "default-scheduler",
    }


def conditions_of(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "type": c["type"],
            "status": c["status"],
            "reason": c.get("reason"),
            "message": c.get("message"),
            "last_transition_time": c["lastTransitionTime"],
        }
        for c in pod["status"]["conditions"]
    ]


def state(status: str, **fields: Any) -> dict[str, Any]:
    out = dict.fromkeys(("reason", "message", "exit_code", "started_at", "finished_at"))
    out.update(status=status, **fields)
    return out


def log_entry(
    current: str | None, previous: str | None = None, *, cut_current: bool = False, cut_previous: bool = False
) -> dict[str, Any]:
    """One container's entry in a record's ``logs``."""
    return {
        "current": current,
        "previous": previous,
        "current_truncated": cut_current,
        "previous_truncated": cut_previous,
    }


def pods_of(result: dict[str, Any]) -> list[dict[str, Any]]:
    assert result.get("failed") is not True, result.get("msg")
    assert result["changed"] is False
    return result["pods"]


def by_pod(result: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["namespace"], r["pod"]): r for r in pods_of(result)}


def web_with_logs(cluster: Cluster, namespace: str, tmp_path: Path, name: str = "web", **extra: Any) -> str:
    """A running pod with one container ``app`` whose current log is the output of ``ls /nonexistent``."""
    running_pod(cluster, namespace, name, **extra)
    output, code = real_run(SIDECAR_COMMAND)
    assert code == 2
    serve_pod_logs(cluster, namespace, name, {"app": (log_file(tmp_path, name, output), None)})
    served(cluster, namespace, name, "app", output)
    return output


# --------------------------------------------------------------------------- tests


def test_restarted_container_events_and_logs(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    running_pod(
        cluster,
        namespace,
        "web",
        [dict(APP), {"name": "sidecar", "image": PAUSE}],
        initContainers=[{"name": "init", "image": BUSYBOX, "command": ["true"]}],
        metadata={"labels": {"app": "web"}},
    )
    running_pod(cluster, namespace, "db", metadata={"labels": {"app": "db"}})

    # An ephemeral container, which KWOK's stages (tests/kwok/stages) bring to running.
    patch_ephemeral(cluster, namespace, "web", [{"name": "debug", "image": BUSYBOX}])
    wait_for(
        "ephemeral container debug running",
        lambda: (s := raw_pod(cluster, namespace, "web")["status"].get("ephemeralContainerStatuses"))
        and "running" in s[0]["state"],
    )

    # Real output of real commands stands in for what the containers logged.
    current, code = real_run(CURRENT_COMMAND)
    assert code == 0 and current.splitlines()[-1] == "KeyError: 'order_id'"
    previous, code = real_run(PREVIOUS_COMMAND)
    assert (previous, code) == ("loading 3 shards into memory\n", -9)  # killed by SIGKILL
    sidecar, code = real_run(SIDECAR_COMMAND)
    assert code == 2 and "/nonexistent" in sidecar
    serve_pod_logs(
        cluster,
        namespace,
        "web",
        {
            "app": (log_file(tmp_path, "app", current), log_file(tmp_path, "app-previous", previous)),
            "sidecar": (log_file(tmp_path, "sidecar", sidecar), None),
        },
    )
    served(cluster, namespace, "web", "app", current)
    served(cluster, namespace, "web", "app", previous, previous=True)

    # Stand-in for the kubelet: app was OOM-killed (SIGKILL: exit code 128 + 9) and restarted twice.
    terminated = kubelet_restarted(cluster, namespace, "web", "app", restarts=2, reason="OOMKilled", exit_code=128 + 9)
    pod = raw_pod(cluster, namespace, "web")
    started = pod["status"]["containerStatuses"][0]["state"]["running"]["startedAt"]
    killing = {
        "type": "Normal",
        "reason": "Killing",
        "message": "Stopping container app",
        "count": 1,
        "first_seen": terminated["finishedAt"],
        "last_seen": terminated["finishedAt"],
        "source": "kubelet",
    }
    backoff = {
        "type": "Warning",
        "reason": "BackOff",
        "message": f"Back-off restarting failed container app in pod web_{namespace}({pod['metadata']['uid']})",
        "count": 2,
        "first_seen": later(terminated["finishedAt"], 1),
        "last_seen": started,
        "source": "kubelet",
    }
    for event in (backoff, killing):  # created out of order: the snapshot orders them
        kubelet_event(
            cluster, pod, "app", kind=event["type"], reason=event["reason"], message=event["message"],
            first=event["first_seen"], last=event["last_seen"], count=event["count"],
        )  # fmt: skip
    db_pod = raw_pod(cluster, namespace, "db")
    kubelet_event(
        cluster, db_pod, "app", kind="Warning", reason="Unhealthy", message="Readiness probe failed: connection refused",
        first=later(terminated["finishedAt"], 5), last=later(terminated["finishedAt"], 5), count=1,
    )  # fmt: skip

    args = {"kubeconfig": cluster.kubeconfig, "pod": [f"{namespace}/web"]}
    result = run_task(tmp_path, MODULE, args)
    [record] = pods_of(result)

    statuses = {s["name"]: s for s in pod["status"]["initContainerStatuses"]}
    init_state = statuses["init"]["state"]["terminated"]
    debug_started = pod["status"]["ephemeralContainerStatuses"][0]["state"]["running"]["startedAt"]
    sidecar_started = pod["status"]["containerStatuses"][1]["state"]["running"]["startedAt"]
    assert record == {
        "namespace": namespace,
        "pod": "web",
        "node": pod["spec"]["nodeName"],
        "phase": "Running",
        "reason": None,
        "message": None,
        "start_time": pod["status"]["startTime"],
        "conditions": conditions_of(pod),
        "containers": [
            {
                "name": "init",
                "kind": "init",
                "image": BUSYBOX,
                "ready": True,
                "restart_count": 0,
                "state": state(
                    "terminated", reason="Completed", exit_code=0,
                    started_at=init_state["startedAt"], finished_at=init_state["finishedAt"],
                ),  # fmt: skip
                "last_termination": None,
            },
            {
                "name": "app",
                "kind": "container",
                "image": PAUSE,
                "ready": True,
                "restart_count": 2,
                "state": state("running", started_at=started),
                "last_termination": {
                    "reason": "OOMKilled",
                    "exit_code": 137,
                    "started_at": terminated["startedAt"],
                    "finished_at": terminated["finishedAt"],
                },
            },
            {
                "name": "sidecar",
                "kind": "container",
                "image": PAUSE,
                "ready": True,
                "restart_count": 0,
                "state": state("running", started_at=sidecar_started),
                "last_termination": None,
            },
            {
                "name": "debug",
                "kind": "ephemeral",
                "image": BUSYBOX,
                "ready": False,
                "restart_count": 0,
                "state": state("running", started_at=debug_started),
                "last_termination": None,
            },
        ],
        # Newest last; db's event is not web's.
        "events": [scheduled_event(cluster, namespace, "web"), killing, backoff],
        "logs": {"app": log_entry(current, previous), "sidecar": log_entry(sidecar)},
        "error": None,
    }
    assert [line for line in current.splitlines() if line.startswith(("ERROR", "Traceback", "KeyError"))] == [
        "ERROR GET /orders/42 failed",
        "Traceback (most recent call last):",
        "KeyError: 'order_id'",
    ]

    # Check mode reads the same; the group's module_defaults carry the connection options.
    check = run_task(
        tmp_path,
        MODULE,
        {"pod": ["web"], "namespace": namespace},
        check=True,
        play_extra={"module_defaults": {"group/kubedebug.ephemeral.k8s": {"kubeconfig": cluster.kubeconfig}}},
    )
    assert pods_of(check) == [record]

    # Bounds: the last 2 lines, then at most 30 bytes of them; the 2 newest events.
    bounded = pods_of(
        run_task(
            tmp_path,
            MODULE,
            {**args, "tail_lines": 2, "limit_bytes": 30, "events_limit": 2, "parallel": 1},
        )
    )[0]
    last_two = "".join(current.splitlines(keepends=True)[-2:])
    assert len(last_two) > 30 and len(sidecar) > 30 and len(previous) == 29
    assert bounded["logs"] == {
        "app": log_entry(last_two[:30], previous, cut_current=True),
        "sidecar": log_entry(sidecar[:30], cut_current=True),
    }
    assert bounded["events"] == [killing, backoff]

    # A selector: both pods of the namespace, in order, each with its own events.
    everything = pods_of(run_task(tmp_path, MODULE, {"kubeconfig": cluster.kubeconfig, "namespace": namespace}))
    assert [(r["pod"], [e["reason"] for e in r["events"]]) for r in everything] == [
        ("db", ["Scheduled", "Unhealthy"]),
        ("web", ["Scheduled", "Killing", "BackOff"]),
    ]
    assert everything[1] == record
    assert everything[0]["logs"] == {"app": log_entry("kwok: no log fixture configured for this container\n")}

    # Without logs or events: nothing is read but the pods.
    quiet = pods_of(run_task(tmp_path, MODULE, {**args, "logs": False, "events_limit": 0}))[0]
    assert (quiet["logs"], quiet["events"], quiet["containers"]) == ({}, [], record["containers"])


def test_missing_pods_and_selectors(cluster: Cluster, namespace_factory: Callable[..., str], tmp_path: Path) -> None:
    ns_a, ns_b = namespace_factory(), namespace_factory()
    web_log = web_with_logs(cluster, ns_a, tmp_path, metadata={"labels": {"app": "web"}})
    db_log = web_with_logs(cluster, ns_b, tmp_path, name="db", metadata={"labels": {"app": "db"}})
    # A pod that existed and was deleted: its (real) Scheduled event outlives it.
    running_pod(cluster, ns_a, "gone")
    gone_event = scheduled_event(cluster, ns_a, "gone")
    cluster.core.delete_namespaced_pod("gone", ns_a)
    wait_for("pod gone deleted", lambda: not cluster.core.list_namespaced_pod(ns_a, field_selector="metadata.name=gone").items)

    refs = [f"{ns_a}/web", f"{ns_a}/gone", f"{ns_b}/db", f"{ns_b}/never-was"]
    result = run_task(tmp_path, MODULE, {"kubeconfig": cluster.kubeconfig, "pod": refs})
    records = by_pod(result)
    assert list(records) == sorted([(ns_a, "gone"), (ns_a, "web"), (ns_b, "db"), (ns_b, "never-was")])
    empty = dict.fromkeys(("node", "phase", "reason", "message", "start_time", "conditions", "containers", "logs"))
    assert records[(ns_a, "gone")] == {
        **empty, "namespace": ns_a, "pod": "gone", "events": [gone_event], "error": f"pod {ns_a}/gone not found",
    }  # fmt: skip
    assert records[(ns_b, "never-was")] == {
        **empty, "namespace": ns_b, "pod": "never-was", "events": [], "error": f"pod {ns_b}/never-was not found",
    }  # fmt: skip
    assert (records[(ns_a, "web")]["error"], records[(ns_a, "web")]["logs"]) == (None, {"app": log_entry(web_log)})
    assert (records[(ns_b, "db")]["error"], records[(ns_b, "db")]["logs"]) == (None, {"app": log_entry(db_log)})
    assert records[(ns_a, "web")]["events"] == [scheduled_event(cluster, ns_a, "web")]

    # A label selector across all namespaces.
    selected = pods_of(
        run_task(tmp_path, MODULE, {"kubeconfig": cluster.kubeconfig, "label_selector": ["app=web"], "all_namespaces": True})
    )
    assert [(r["namespace"], r["pod"]) for r in selected if r["namespace"] in (ns_a, ns_b)] == [(ns_a, "web")]

    # A selector that matches nothing: a warning, not a failure.
    nothing = run_task(tmp_path, MODULE, {"kubeconfig": cluster.kubeconfig, "namespace": ns_b, "label_selector": "app=none"})
    assert pods_of(nothing) == []
    assert nothing["warnings"] == ["the selection matched no pods"]

    # Nothing that could be read: the task fails, with the records.
    failed = run_task(tmp_path, MODULE, {"kubeconfig": cluster.kubeconfig, "pod": [f"{ns_a}/gone", f"{ns_b}/never-was"]})
    assert failed["failed"] is True
    # Records (and so the reasons) are ordered by namespace, and the namespaces' names are random.
    missing = sorted([f"{ns_a}/gone", f"{ns_b}/never-was"])
    assert failed["msg"] == "nothing could be read: " + "; ".join(f"pod {ref} not found" for ref in missing)
    # Ordered by namespace, whose names are random.
    assert {(r["namespace"], r["pod"]): r["events"] for r in failed["pods"]} == {(ns_a, "gone"): [gone_event], (ns_b, "never-was"): []}

    # Options the module refuses before reading anything.
    bad = run_task(tmp_path, MODULE, {"kubeconfig": cluster.kubeconfig, "pod": ["web"], "namespace": ns_a, "tail_lines": 0})
    assert bad["failed"] is True and bad["msg"] == "tail_lines must be a positive number (or unset); got 0"
    unnamed = run_task(tmp_path, MODULE, {"kubeconfig": cluster.kubeconfig, "pod": ["web"]})
    assert unnamed["msg"] == "pod reference 'web' has no namespace: write namespace/pod or set the namespace option"


def test_service_account_without_events_or_logs_permission(
    cluster: Cluster, namespace_factory: Callable[..., str], tmp_path: Path
) -> None:
    no_events, no_logs, no_pods = namespace_factory(), namespace_factory(), namespace_factory()
    rbac = client.RbacAuthorizationV1Api(cluster.api_client)
    rules = {
        no_events: [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
            {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
        ],
        no_logs: [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
            {"apiGroups": [""], "resources": ["events"], "verbs": ["list"]},
        ],
        no_pods: [],
    }
    logs = {ns: web_with_logs(cluster, ns, tmp_path) for ns in rules}
    auth = service_account_auth(cluster, no_events, "snap", tmp_path)
    user = f"system:serviceaccount:{no_events}:snap"
    for ns, ns_rules in rules.items():
        if not ns_rules:
            continue
        rbac.create_namespaced_role(ns, {"metadata": {"name": "snapshot"}, "rules": ns_rules})
        rbac.create_namespaced_role_binding(
            ns,
            {
                "metadata": {"name": "snapshot"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "snapshot"},
                "subjects": [{"kind": "ServiceAccount", "name": "snap", "namespace": no_events}],
            },
        )

    refs = [f"{ns}/web" for ns in rules]
    result = run_task(tmp_path, MODULE, {**auth, "pod": refs})
    records = {r["namespace"]: r for r in pods_of(result)}
    denied_events = records[no_events]
    assert denied_events["error"] == (
        f"permission denied listing events in namespace '{no_events}': grant 'list' on 'events' (see {RBAC_DOC}). "
        f'API server said: events is forbidden: User "{user}" cannot list resource "events" in API group "" '
        f'in the namespace "{no_events}"'
    )
    assert denied_events["events"] is None
    assert denied_events["logs"] == {"app": log_entry(logs[no_events])}  # the rest was read
    assert denied_events["containers"][0]["state"]["status"] == "running"

    denied_logs = records[no_logs]
    assert denied_logs["error"] == (
        f"pod {no_logs}/web: permission denied: grant 'get' on 'pods/log' in namespace '{no_logs}'; see {RBAC_DOC}. "
        f'API server said: pods "web" is forbidden: User "{user}" cannot get resource "pods/log" in API group "" '
        f'in the namespace "{no_logs}"'
    )
    assert denied_logs["logs"] == {"app": log_entry(None)}
    assert denied_logs["events"] == [scheduled_event(cluster, no_logs, "web")]

    denied_pods = records[no_pods]
    assert denied_pods["error"] == (
        f"permission denied listing pods in namespace '{no_pods}': grant 'list' on 'pods' (see {RBAC_DOC}). "
        f'API server said: pods "web" is forbidden: User "{user}" cannot list resource "pods" in API group "" '
        f'in the namespace "{no_pods}"; '
        f"permission denied listing events in namespace '{no_pods}': grant 'list' on 'events' (see {RBAC_DOC}). "
        f'API server said: events is forbidden: User "{user}" cannot list resource "events" in API group "" '
        f'in the namespace "{no_pods}"'
    )
    assert (denied_pods["containers"], denied_pods["events"], denied_pods["logs"]) == (None, None, None)
    assert auth["api_key"] not in result["_stdout"]

    # Where not one pod may be read, the task fails and says why.
    only = run_task(tmp_path, MODULE, {**auth, "pod": [f"{no_pods}/web"]})
    assert only["failed"] is True
    assert only["msg"].startswith(f"nothing could be read: permission denied listing pods in namespace '{no_pods}'")
