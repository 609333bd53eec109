# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ephemeral_container module, run through its ``main()`` against the fake API server (see conftest.py).

Pods are the recorded ones of tests/unit/fixtures/pods; ``debugged`` already carries the
container that ``kubectl debug -c debug --target=app --profile=general -- sleep 3600`` adds,
which is what ``KUBECTL_DEBUG`` asks for.
"""

from __future__ import annotations

import json
import re
from typing import Any

import kubernetes
import pytest

from ansible_collections.kubedebug.ephemeral.plugins.modules.ephemeral_container import main
from ansible_collections.kubedebug.ephemeral.tests.unit.api_objects import load_pod, load_status
from ansible_collections.kubedebug.ephemeral.tests.unit.fake_apiserver import FakeApiServer

NS = "unit-fixtures"
BUSYBOX = "docker.io/library/busybox:1.36"
SMP = "application/strategic-merge-patch+json"
PLAIN_PATCH = f"/api/v1/namespaces/{NS}/pods/plain/ephemeralcontainers"

# What the module sends for KUBECTL_DEBUG to a pod whose first container is app (written out, not computed).
DEBUG_SPEC = {
    "name": "debug",
    "image": BUSYBOX,
    "command": ["sleep", "3600"],
    "imagePullPolicy": "IfNotPresent",
    "terminationMessagePolicy": "File",
    "securityContext": {"capabilities": {"add": ["SYS_PTRACE"]}},
    "targetContainerName": "app",
}
# The tests of the add path pin its exact requests: the preflights' reads (tests/unit/plugins/modules/test_ephemeral_container_preflight.py)
# are left out of them.
KUBECTL_DEBUG = {"container": "debug", "image": BUSYBOX, "command": ["sleep", "3600"], "wait": "none", "preflight": []}


@pytest.fixture
def cluster(apiserver: FakeApiServer) -> Any:
    apiserver.cluster.add(load_pod("plain"), load_pod("debugged"))
    return apiserver.cluster


def patches(cluster: Any) -> list[dict[str, Any]]:
    return [r for r in cluster.requests if r["method"] == "PATCH"]


# --------------------------------------------------------------------------- adding


def test_adds_the_container_with_one_strict_strategic_merge_patch(cluster: Any, run_module: Any) -> None:
    result = run_module(main, dict(KUBECTL_DEBUG, namespace=NS, pod="plain"))
    assert result["rc"] == 0 and result["changed"] is True
    assert "failed" not in result and result["warnings"] == []
    assert cluster.calls() == [
        ("GET", f"/api/v1/namespaces/{NS}/pods", {"fieldSelector": ["metadata.name=plain"]}),
        ("PATCH", PLAIN_PATCH, {"fieldValidation": ["Strict"]}),
    ]
    (patch,) = patches(cluster)
    assert patch["content_type"] == SMP
    assert patch["body"] == {
        # The pod's resourceVersion as listed: a precondition, so that a concurrent run cannot be told "added" too.
        "metadata": {"resourceVersion": load_pod("plain")["metadata"]["resourceVersion"]},
        "spec": {"$setElementOrder/ephemeralContainers": [{"name": "debug"}], "ephemeralContainers": [DEBUG_SPEC]},
    }
    [record] = result["pods"]
    assert {k: record[k] for k in ("namespace", "pod", "container", "action", "changed", "msg", "spec")} == {
        "namespace": NS,
        "pod": "plain",
        "container": "debug",
        "action": "added",
        "changed": True,
        "msg": "added",
        "spec": DEBUG_SPEC,
    }
    assert result["summary"] == {"matched": 1, "added": 1, "unchanged": 0, "conflict": 0, "failed": 0, "would_add": 0, "skipped": 0}
    assert [c["name"] for c in cluster.pod(NS, "plain")["spec"]["ephemeralContainers"]] == ["debug"]
    assert "diff" not in result


def test_rerun_is_unchanged_and_patches_nothing(cluster: Any, run_module: Any) -> None:
    first = run_module(main, dict(KUBECTL_DEBUG, pod=f"{NS}/plain"))
    second = run_module(main, dict(KUBECTL_DEBUG, pod=f"{NS}/plain"))
    assert (first["changed"], second["changed"]) == (True, False)
    assert len(patches(cluster)) == 1
    assert [(r["action"], r["msg"]) for r in second["pods"]] == [("unchanged", "already present with the same spec")]


def test_what_kubectl_debug_added_is_unchanged(cluster: Any, run_module: Any) -> None:
    result = run_module(main, dict(KUBECTL_DEBUG, namespace=NS, name="debugged"))  # name: the alias of pod
    assert result["rc"] == 0 and result["changed"] is False
    assert result["pods"][0]["action"] == "unchanged"
    assert result["pods"][0]["state"]["status"] == "running"
    assert patches(cluster) == []


def test_waits_until_running_with_one_list(cluster: Any, run_module: Any) -> None:
    result = run_module(main, dict(KUBECTL_DEBUG, namespace=NS, pod="plain", wait="running", wait_timeout=30))
    assert result["rc"] == 0
    assert cluster.calls("GET") == [
        ("GET", f"/api/v1/namespaces/{NS}/pods", {"fieldSelector": ["metadata.name=plain"]}),
        ("GET", f"/api/v1/namespaces/{NS}/pods", {"fieldSelector": ["metadata.name=plain"]}),  # the wait
    ]
    assert result["pods"][0]["state"] == {
        "status": "running",
        "reason": None,
        "message": None,
        "exit_code": None,
        "started_at": "2026-11-25T09:30:00Z",
        "finished_at": None,
    }


def test_a_wait_that_times_out_fails_the_task(cluster: Any, run_module: Any) -> None:
    cluster.kubelet_state = {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}
    result = run_module(main, dict(KUBECTL_DEBUG, namespace=NS, pod="plain", wait="running", wait_timeout=0))
    assert result["rc"] == 1 and result["failed"] is True
    assert result["changed"] is True  # the container is there: it cannot be taken back
    assert result["msg"] == (f"1 of 1 pod(s) failed: pod {NS}/plain: added, but it was not running within 0s (wait_timeout): the container is pending")
    # The record itself carries the pod in its own fields; its msg stays as it was.
    assert result["pods"][0]["msg"] == "added, but it was not running within 0s (wait_timeout): the container is pending"
    assert [(r["pod"], r["action"]) for r in result["pods"]] == [("plain", "failed")]


def test_a_wait_that_times_out_names_the_pod(cluster: Any, run_module: Any) -> None:
    # With several pods, "2 of 5 pod(s) failed: added, but it was not running ..." does not say which two.
    cluster.kubelet_state = {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}
    result = run_module(main, dict(KUBECTL_DEBUG, namespace=NS, pod="plain", wait="running", wait_timeout=0))
    assert f"pod {NS}/plain" in result["msg"]


def test_annotate_records_who_added_it_and_why(cluster: Any, run_module: Any) -> None:
    result = run_module(main, dict(KUBECTL_DEBUG, namespace=NS, pod="plain", annotate=True, reason="INC-42"))
    assert result["rc"] == 0
    assert [(m, p) for m, p, _q in cluster.calls()] == [
        ("GET", f"/api/v1/namespaces/{NS}/pods"),
        ("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews"),
        ("PATCH", PLAIN_PATCH),
        ("PATCH", f"/api/v1/namespaces/{NS}/pods/plain"),
    ]
    annotation = patches(cluster)[1]["body"]["metadata"]["annotations"]
    assert list(annotation) == ["debug.kubedebug.io/debug"]
    value = json.loads(annotation["debug.kubedebug.io/debug"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", value.pop("at"))
    assert value == {"by": "jane", "image": BUSYBOX, "reason": "INC-42"}
    assert "debug.kubedebug.io/debug" in cluster.pod(NS, "plain")["metadata"]["annotations"]


# --------------------------------------------------------------------------- check mode and diff


def test_check_mode_is_a_server_side_dry_run_and_persists_nothing(cluster: Any, run_module: Any) -> None:
    before = cluster.pod(NS, "plain")
    result = run_module(main, dict(KUBECTL_DEBUG, namespace=NS, pod="plain", wait="running", annotate=True), check_mode=True)
    assert result["rc"] == 0 and result["changed"] is True
    assert [(r["action"], r["msg"]) for r in result["pods"]] == [("would_add", "would be added (the API server accepted a dry run)")]
    assert result["summary"]["would_add"] == 1 and result["summary"]["added"] == 0
    assert [q for m, _p, q in cluster.calls("PATCH")] == [
        {"fieldValidation": ["Strict"], "dryRun": ["All"]},  # the container
        {"dryRun": ["All"]},  # the audit annotation
    ]
    assert len(cluster.calls("GET")) == 1  # no wait in check mode
    assert cluster.pod(NS, "plain") == before


def test_check_mode_shows_what_admission_refuses(cluster: Any, run_module: Any) -> None:
    recorded = load_status("podsecurity-baseline")
    cluster.refuse[("PATCH", PLAIN_PATCH)] = (403, recorded["body"])
    result = run_module(main, dict(KUBECTL_DEBUG, namespace=NS, pod="plain"), check_mode=True)
    assert result["rc"] == 1 and result["changed"] is False
    assert result["msg"].startswith(
        f"1 of 1 pod(s) failed: pod {NS}/plain: PodSecurity admission refused ephemeral container 'debug': {recorded['body']['message']}. "
        'the namespace enforces PodSecurity "baseline": use profile: baseline'
    )
    assert cluster.calls("PATCH")[0][2] == {"fieldValidation": ["Strict"], "dryRun": ["All"]}


@pytest.mark.parametrize("check_mode", [False, True])
def test_diff_shows_the_container_list_before_and_after(cluster: Any, run_module: Any, check_mode: bool) -> None:
    result = run_module(main, dict(KUBECTL_DEBUG, namespace=NS, pod=["plain", "debugged"]), check_mode=check_mode, diff=True)
    assert result["diff"] == [
        {
            "before_header": f"pod {NS}/plain",
            "after_header": f"pod {NS}/plain",
            "before": {"ephemeralContainers": []},
            "after": {"ephemeralContainers": ["debug"], "added": DEBUG_SPEC},
        }
    ]  # debugged is unchanged: no diff


def test_no_diff_for_an_unchanged_pod(cluster: Any, run_module: Any) -> None:
    result = run_module(main, dict(KUBECTL_DEBUG, namespace=NS, pod="debugged"), diff=True)
    assert result["diff"] == [] and result["changed"] is False


# --------------------------------------------------------------------------- conflicts, refusals, missing pods


def test_conflict_warns_by_default(cluster: Any, run_module: Any) -> None:
    result = run_module(main, dict(KUBECTL_DEBUG, namespace=NS, pod="debugged", image="docker.io/library/busybox:1.37"))
    assert result["rc"] == 0 and result["changed"] is False
    expected = (
        f"pod {NS}/debugged already has an ephemeral container 'debug' with another spec, and ephemeral containers can never be "
        "changed: use another container name to add a new one. Differences: "
        "image: existing 'docker.io/library/busybox:1.36', requested 'docker.io/library/busybox:1.37'"
    )
    assert result["warnings"] == [expected]
    assert result["pods"][0]["action"] == "conflict"
    assert result["pods"][0]["differences"] == ["image: existing 'docker.io/library/busybox:1.36', requested 'docker.io/library/busybox:1.37'"]
    assert patches(cluster) == []


def test_conflict_fails_with_on_conflict_fail(cluster: Any, run_module: Any) -> None:
    result = run_module(main, dict(KUBECTL_DEBUG, namespace=NS, pod="debugged", command=["sleep", "60"], on_conflict="fail"))
    assert result["rc"] == 1 and result["changed"] is False
    assert result["msg"] == (
        f"1 of 1 pod(s) failed: pod {NS}/debugged already has an ephemeral container 'debug' with another spec, and ephemeral "
        "containers can never be changed: use another container name to add a new one. Differences: "
        "command: existing ['sleep', '3600'], requested ['sleep', '60']"
    )
    assert result["warnings"] == []


def test_missing_pod_is_a_failed_record(cluster: Any, run_module: Any) -> None:
    result = run_module(main, dict(KUBECTL_DEBUG, namespace="ns", pod="x"))
    assert result["rc"] == 1 and result["failed"] is True and result["changed"] is False
    assert result["msg"] == "1 of 1 pod(s) failed: pod ns/x not found: check the pod name and namespace"
    [record] = result["pods"]
    assert {k: record[k] for k in ("namespace", "pod", "container", "action", "changed", "msg", "spec")} == {
        "namespace": "ns",
        "pod": "x",
        "container": "debug",
        "action": "failed",
        "changed": False,
        "msg": "pod ns/x not found: check the pod name and namespace",
        "spec": None,
    }
    assert cluster.calls() == [("GET", "/api/v1/namespaces/ns/pods", {"fieldSelector": ["metadata.name=x"]})]


def test_a_missing_pod_does_not_stop_the_others(cluster: Any, run_module: Any) -> None:
    result = run_module(main, dict(KUBECTL_DEBUG, pod=[f"{NS}/plain", "ns/x"]))
    assert result["rc"] == 1 and result["changed"] is True
    assert result["msg"] == "1 of 2 pod(s) failed: pod ns/x not found: check the pod name and namespace"
    assert [(r["pod"], r["action"]) for r in result["pods"]] == [("plain", "added"), ("x", "failed")]


def test_a_static_pod_is_refused_before_any_patch(apiserver: FakeApiServer, run_module: Any) -> None:
    apiserver.cluster.add(load_pod("mirror"))
    result = run_module(main, dict(KUBECTL_DEBUG, namespace=NS, pod="static-web-node-000000"))
    assert result["rc"] == 1
    assert result["msg"] == (
        f"1 of 1 pod(s) failed: pod {NS}/static-web-node-000000: cannot add ephemeral container 'debug': it is a static (mirror) pod, "
        "which does not support ephemeral containers: debug the node (kubectl debug node/<node>) or edit the static pod's manifest"
    )
    assert patches(apiserver.cluster) == []


def test_an_empty_selection_warns(cluster: Any, run_module: Any) -> None:
    result = run_module(main, dict(KUBECTL_DEBUG, namespace="empty", label_selector="app=web"))
    assert result["rc"] == 0 and result["changed"] is False
    assert result["warnings"] == ["the selection matched no pods: nothing to do"]
    assert result["pods"] == [] and result["summary"]["matched"] == 0


def test_the_failure_message_lists_three_pods_and_counts_the_rest(cluster: Any, run_module: Any) -> None:
    result = run_module(main, dict(KUBECTL_DEBUG, pod=[f"ns/p{n}" for n in range(1, 6)]))
    assert result["msg"] == (
        "5 of 5 pod(s) failed: pod ns/p1 not found: check the pod name and namespace; pod ns/p2 not found: check the pod name and "
        "namespace; pod ns/p3 not found: check the pod name and namespace; and 2 more"
    )
    assert cluster.calls() == [("GET", "/api/v1/namespaces/ns/pods", {})]  # one LIST for the five


# --------------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    ("args", "msg"),
    [
        ({"pod": "plain", "label_selector": "app=web"}, "parameters are mutually exclusive: pod|label_selector"),
        ({"pod": "plain", "field_selectors": ["status.phase=Running"]}, "parameters are mutually exclusive: pod|field_selector"),
        ({"name": "plain", "all_namespaces": True}, "parameters are mutually exclusive: pod|all_namespaces"),
        ({"namespace": NS, "all_namespaces": True, "label_selector": "app=web"}, "parameters are mutually exclusive: namespace|all_namespaces"),
        ({"namespace": NS}, "one of the following is required: pod, label_selector, field_selector"),
        ({"pod": "plain", "on_conflict": "ignore"}, "value of on_conflict must be one of: warn, fail, got: ignore"),
    ],
)
def test_argument_spec_refusals(cluster: Any, run_module: Any, args: dict[str, Any], msg: str) -> None:
    result = run_module(main, dict(KUBECTL_DEBUG, **args))
    assert result["rc"] == 1 and result["msg"] == msg
    assert result["clients_created"] == 0 and cluster.requests == []


@pytest.mark.parametrize(
    ("args", "msg"),
    [
        (
            {"namespace": [NS, "other"], "pod": ["plain"]},
            f"pod names without a namespace need exactly one namespace (got {NS}, other): write namespace/pod for each pod",
        ),
        ({"pod": "plain"}, "pod reference 'plain' has no namespace: write namespace/pod or set the namespace option"),
        (
            {"namespace": NS, "label_selector": [""]},
            "name the pods, or choose them with a label_selector or field_selector: a namespace alone would select every pod in it",
        ),
        ({"pod": f"{NS}/plain", "tty": True}, "tty: true needs stdin: true (the API server refuses a TTY without stdin)"),
        ({"pod": f"{NS}/plain", "wait_timeout": -1}, "wait_timeout must be 0 to 604800 seconds (a week); got -1"),
        ({"pod": f"{NS}/plain", "wait_timeout": 2**63}, "wait_timeout must be 0 to 604800 seconds (a week); got 9223372036854775808"),
        ({"pod": f"{NS}/plain", "parallel": 0}, "parallel must be at least 1; got 0"),
        (
            {"pod": f"{NS}/plain", "container": "Debug"},
            "container 'Debug' is not a valid container name: use at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit",
        ),
        (
            {"pod": f"{NS}/plain", "allowed_images": [r"registry\.example\.com/.*"]},
            rf"image '{BUSYBOX}' is not in allowed_images (registry\.example\.com/.*): use an image that matches one of these patterns, "
            "or ask the playbook owner to allow it",
        ),
    ],
)
def test_refused_before_any_api_call(cluster: Any, run_module: Any, args: dict[str, Any], msg: str) -> None:
    result = run_module(main, dict(KUBECTL_DEBUG, **args))
    assert result["rc"] == 1 and result["msg"] == msg
    assert cluster.requests == []


def test_selectors_and_their_aliases_are_joined(cluster: Any, run_module: Any) -> None:
    result = run_module(
        main,
        dict(KUBECTL_DEBUG, namespace=["shop", "other"], label_selectors=["app=web", "tier=front"], field_selectors=["status.phase=Running"]),
    )
    assert result["rc"] == 0
    query = {"labelSelector": ["app=web,tier=front"], "fieldSelector": ["status.phase=Running"]}
    assert cluster.calls() == [
        ("GET", "/api/v1/namespaces/shop/pods", query),
        ("GET", "/api/v1/namespaces/other/pods", query),
    ]


def test_all_namespaces_is_one_cluster_wide_list(cluster: Any, run_module: Any) -> None:
    run_module(main, dict(KUBECTL_DEBUG, all_namespaces=True, label_selector="app=web"))
    assert cluster.calls("GET") == [("GET", "/api/v1/pods", {"labelSelector": ["app=web"]})]


@pytest.mark.parametrize("pod", [f"{NS}/plain", [f"{NS}/plain"], ["plain", f"{NS}/plain"]])
def test_pod_as_a_string_or_a_list(cluster: Any, run_module: Any, pod: Any) -> None:
    result = run_module(main, dict(KUBECTL_DEBUG, namespace=NS, pod=pod))
    assert [(r["pod"], r["action"]) for r in result["pods"]] == [("plain", "added")]
    assert len(patches(cluster)) == 1


# --------------------------------------------------------------------------- the kubernetes client


def test_a_kubernetes_client_that_is_too_old(cluster: Any, run_module: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kubernetes, "__version__", "23.6.0")
    result = run_module(main, dict(KUBECTL_DEBUG, namespace=NS, pod="plain"))
    assert result["rc"] == 1
    assert result["msg"] == "the kubernetes Python client 23.6.0 is too old: 24.2.0 or newer is required (pip install 'kubernetes>=24.2.0')"
    assert result["clients_created"] == 0 and cluster.requests == []


def test_an_unexpected_error_is_a_message_not_a_traceback(cluster: Any, run_module: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from ansible_collections.kubedebug.ephemeral.plugins.module_utils import _container_manager

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("boom")

    monkeypatch.setattr(_container_manager, "plan_pods", broken)
    result = run_module(main, dict(KUBECTL_DEBUG, namespace=NS, pod="plain"))
    assert result["rc"] == 1 and result["msg"] == "unexpected error: ValueError: boom"
    assert "pods" not in result  # nothing was decided, so nothing is reported as done


# --------------------------------------------------------------------------- racing another run


def _meanwhile(monkeypatch: pytest.MonkeyPatch, cluster: Any, change: Any) -> None:
    """Run ``change`` on the stored pod between the module's LIST and its first PATCH, as another client would."""
    from ansible_collections.kubedebug.ephemeral.plugins.module_utils._client import EphemeralClient

    original = EphemeralClient.add_ephemeral
    done: list[bool] = []

    def racing(self: Any, namespace: str, pod: str, body: Any, **kwargs: Any) -> Any:
        if not done:
            done.append(True)
            with cluster.lock:
                stored = cluster.pods[(namespace, pod)]
                change(stored)
                stored["metadata"]["resourceVersion"] = str(int(stored["metadata"]["resourceVersion"]) + 1)
        return original(self, namespace, pod, body, **kwargs)

    monkeypatch.setattr(EphemeralClient, "add_ephemeral", racing)


def test_another_run_adding_it_first_makes_this_one_unchanged(cluster: Any, run_module: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    stored = dict(DEBUG_SPEC, terminationMessagePath="/dev/termination-log", resources={})
    _meanwhile(monkeypatch, cluster, lambda pod: pod["spec"].setdefault("ephemeralContainers", []).append(stored))
    result = run_module(main, dict(KUBECTL_DEBUG, namespace=NS, pod="plain", wait="none"))
    assert result["rc"] == 0 and result["changed"] is False, result
    [record] = result["pods"]
    assert record["action"] == "unchanged" and record["changed"] is False
    assert "another run added it" in record["msg"]
    # One refused PATCH (409, stale resourceVersion), one GET to see why, and nothing stored twice.
    assert [c[0] for c in cluster.calls()] == ["GET", "PATCH", "GET"]
    assert [c["name"] for c in cluster.pods[(NS, "plain")]["spec"]["ephemeralContainers"]] == ["debug"]


def test_a_pod_that_changed_otherwise_is_read_and_patched_again(cluster: Any, run_module: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _meanwhile(monkeypatch, cluster, lambda pod: pod["metadata"].setdefault("labels", {}).update(touched="yes"))
    result = run_module(main, dict(KUBECTL_DEBUG, namespace=NS, pod="plain", wait="none"))
    assert result["rc"] == 0 and result["changed"] is True, result
    [record] = result["pods"]
    assert record["action"] == "added"
    assert [c[0] for c in cluster.calls()] == ["GET", "PATCH", "GET", "PATCH"]
    assert [c["name"] for c in cluster.pods[(NS, "plain")]["spec"]["ephemeralContainers"]] == ["debug"]
