"""Integration tests of the ephemeral_results lookup and the ephemeral_container_info module.

Simulated by KWOK: no container process runs. Each debug container's command is
run for real on the test host (kubehelpers.simulate_debug_container); its real
output becomes the container's log (served by kwok through the API server's log
endpoint) and its real exit code the container's exit code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kubernetes import client

from kubehelpers import (
    Cluster,
    patch_ephemeral,
    run_lookup,
    run_task,
    running_pod,
    service_account_auth,
    simulate_debug_container,
    wait_for,
)

INFO = "kubedebug.ephemeral.ephemeral_container_info"
JSON_LINES = [
    "sh",
    "-c",
    'for f in /etc/hostname /etc/os-release; do printf \'{"file": "%s", "bytes": %d}\\n\' "$f" "$(wc -c < "$f")"; done',
]
FAILS = ["sh", "-c", "echo 'checking /definitely-missing'; ls /definitely-missing"]


def records(result: dict[str, Any]) -> list[dict[str, Any]]:
    assert result.get("failed") is not True, result.get("msg")
    return result["ansible_facts"]["records"]


def test_exit_zero_json_lines_nonzero_and_running(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    running_pod(cluster, namespace, "web")
    out_ok, code_ok = simulate_debug_container(cluster, namespace, "web", "kd-json", JSON_LINES, tmp_path)
    out_bad, code_bad = simulate_debug_container(cluster, namespace, "web", "kd-fails", FAILS, tmp_path)
    assert (code_ok, code_bad) == (0, 2)  # what the real commands returned here
    # Still running when observed: its first second of real output is its log so far.
    out_run, code_run = simulate_debug_container(
        cluster, namespace, "web", "kd-running", ["sh", "-c", "echo ready; sleep 30"], tmp_path, run_seconds=1
    )
    assert (out_run, code_run) == ("ready\n", None)
    expected_json = [json.loads(line) for line in out_ok.splitlines()]
    assert [e["file"] for e in expected_json] == ["/etc/hostname", "/etc/os-release"]

    # Waiting for "terminated" with a short timeout: the running one is reported as running, not as an error.
    result = run_lookup(
        tmp_path, [f"{namespace}/web"], {"kubeconfig": cluster.kubeconfig, "parse": "json_lines", "wait_timeout": 5}
    )
    by_name = {r["container"]: r for r in records(result)}
    assert [r["container"] for r in records(result)] == ["kd-fails", "kd-json", "kd-running"]  # ordered

    ok = by_name["kd-json"]
    assert (ok["state"], ok["reason"], ok["exit_code"], ok["error"], ok["parse_error"]) == (
        "terminated",
        "Completed",
        0,
        None,
        None,
    )
    assert ok["output"] == expected_json
    assert ok["logs"] == out_ok
    assert ok["duration_seconds"] is not None and ok["duration_seconds"] >= 0
    assert (ok["image"], ok["target_container"], ok["truncated"]) == ("docker.io/library/busybox:1.36", None, False)

    bad = by_name["kd-fails"]
    assert (bad["state"], bad["reason"], bad["exit_code"]) == ("terminated", "Error", 2)
    assert bad["logs"] == out_bad and "definitely-missing" in bad["logs"]
    # Reported in the record, not raised: every log line of this one is text, each is named in bad_lines.
    bad_texts = out_bad.splitlines()
    assert [(b["line"], b["text"]) for b in bad["bad_lines"]] == [(i + 1, t) for i, t in enumerate(bad_texts)]
    assert bad["output"] == [] and bad["parse_error"].startswith(f"{len(bad_texts)} lines are not JSON (lines 1, 2")

    run = by_name["kd-running"]
    assert (run["state"], run["exit_code"], run["finished_at"], run["duration_seconds"]) == (
        "running",
        None,
        None,
        None,
    )
    assert (
        run["output"] == []
        and run["parse_error"] == "line 1 is not JSON: Expecting value: line 1 column 1 (char 0): 'ready'"
    )

    # Without waiting, one container at a time.
    quick = records(
        run_lookup(
            tmp_path,
            ["web"],
            {
                "kubeconfig": cluster.kubeconfig,
                "namespace": namespace,
                "container": ["kd-running"],
                "wait_for": "none",
                "parse": "lines",
            },
        )
    )
    assert [(r["container"], r["state"], r["output"]) for r in quick] == [("kd-running", "running", ["ready"])]


def test_unpullable_image_and_truncation(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    running_pod(cluster, namespace, "web")
    patch_ephemeral(cluster, namespace, "web", [{"name": "kd-bad", "image": "registry.invalid/tools:1"}])
    out, code = simulate_debug_container(cluster, namespace, "web", "kd-chatty", ["seq", "1", "5000"], tmp_path)
    assert code == 0 and len(out) > 20000

    result = run_lookup(
        tmp_path,
        [f"{namespace}/web"],
        {
            "kubeconfig": cluster.kubeconfig,
            "limit_bytes": 1000,
            "parse": "lines",
            "wait_for": "running",
            "wait_timeout": 5,
        },
    )
    by_name = {r["container"]: r for r in records(result)}
    bad = by_name["kd-bad"]
    assert bad["state"] == "waiting" and bad["reason"] in ("ErrImagePull", "ImagePullBackOff")
    assert "registry.invalid/tools:1" in bad["message"]
    assert (bad["logs"], bad["error"]) == (None, None)

    chatty = by_name["kd-chatty"]
    assert chatty["truncated"] is True
    assert len(chatty["logs"].encode()) == 1000 and out.startswith(chatty["logs"])
    # The cut last line is left out of the parsed output.
    assert chatty["output"] == out[: chatty["logs"].rfind("\n")].splitlines()

    tail = records(
        run_lookup(
            tmp_path,
            [f"{namespace}/web"],
            {
                "kubeconfig": cluster.kubeconfig,
                "container": ["kd-chatty"],
                "tail_lines": 3,
                "parse": "lines",
            },
        )
    )
    assert tail[0]["output"] == ["4998", "4999", "5000"] and tail[0]["truncated"] is False


def test_selector_two_namespaces_missing_pod_and_info_module_agrees(
    cluster: Cluster, namespace_factory: Any, tmp_path: Path
) -> None:
    ns_a, ns_b = namespace_factory(), namespace_factory()
    for ns in (ns_a, ns_b):
        running_pod(cluster, ns, "web-0", metadata={"labels": {"app": "web"}})
        running_pod(cluster, ns, "db-0", metadata={"labels": {"app": "db"}})
        simulate_debug_container(cluster, ns, "web-0", "kd-json", JSON_LINES, tmp_path)
        simulate_debug_container(cluster, ns, "db-0", "kd-json", JSON_LINES, tmp_path)

    both = records(
        run_lookup(
            tmp_path,
            [],
            {
                "kubeconfig": cluster.kubeconfig,
                "label_selector": "app=web",
                "all_namespaces": True,
                "parse": "json_lines",
            },
        )
    )
    mine = [r for r in both if r["namespace"] in (ns_a, ns_b)]
    assert [(r["namespace"], r["pod"], r["exit_code"]) for r in mine] == sorted(
        [(ns_a, "web-0", 0), (ns_b, "web-0", 0)]
    )

    # A missing pod among existing ones: a record with the error, the others collected.
    terms = [f"{ns_a}/web-0", f"{ns_a}/gone", f"{ns_b}/db-0"]
    mixed = records(run_lookup(tmp_path, terms, {"kubeconfig": cluster.kubeconfig, "parse": "json_lines"}))
    assert [(r["namespace"], r["pod"], r["error"]) for r in mixed] == sorted(
        [(ns_a, "gone", f"pod {ns_a}/gone not found"), (ns_a, "web-0", None), (ns_b, "db-0", None)]
    )
    # A container the pod does not have.
    lacking = records(
        run_lookup(tmp_path, [f"{ns_a}/web-0"], {"kubeconfig": cluster.kubeconfig, "container": ["kd-json", "nope"]})
    )
    assert lacking[1]["error"] == f"pod {ns_a}/web-0 has no ephemeral container named 'nope' (it has: kd-json)"

    # Nothing collectable: a clear lookup error, not a traceback.
    failed = run_lookup(tmp_path, [f"{ns_a}/gone"], {"kubeconfig": cluster.kubeconfig})
    assert failed["failed"] is True
    assert f"ephemeral_results: nothing could be collected: pod {ns_a}/gone not found" in failed["msg"]
    assert "Traceback" not in failed["msg"]

    # The info module returns the same records for the same selection.
    options = {
        "kubeconfig": cluster.kubeconfig,
        "pod": terms,
        "logs": True,
        "parse": "json_lines",
        "wait_for": "terminated",
    }
    info = run_task(tmp_path, INFO, options, check=True)
    assert info.get("failed") is not True and info["changed"] is False
    # The lookup's records also carry the API traffic of their call (the module returns it once, as api).
    assert {r["api"]["requests"] for r in mixed} == {mixed[0]["api"]["requests"]} and info["api"]["requests"] > 0
    assert info["pods"] == [{k: v for k, v in r.items() if k != "api"} for r in mixed]
    assert {len(r["output"]) for r in mixed if not r["error"]} == {2}

    # An audit of a whole namespace: every pod that carries an ephemeral container.
    running_pod(cluster, ns_b, "clean-0")
    audit = run_task(tmp_path, INFO, {"kubeconfig": cluster.kubeconfig, "namespace": ns_b})
    assert [(r["pod"], r["container"], r["image"], r["logs"]) for r in audit["pods"]] == [
        ("db-0", "kd-json", "docker.io/library/busybox:1.36", None),
        ("web-0", "kd-json", "docker.io/library/busybox:1.36", None),
    ]


def test_without_pods_log_permission(cluster: Cluster, namespace_factory: Any, tmp_path: Path) -> None:
    allowed, denied = namespace_factory(), namespace_factory()
    rbac = client.RbacAuthorizationV1Api(cluster.api_client)
    for ns in (allowed, denied):
        running_pod(cluster, ns, "web")
        simulate_debug_container(cluster, ns, "web", "kd-json", JSON_LINES, tmp_path)
        resources = ["pods", "pods/log"] if ns == allowed else ["pods"]
        rbac.create_namespaced_role(
            ns,
            {
                "metadata": {"name": "reader"},
                "rules": [{"apiGroups": [""], "resources": resources, "verbs": ["get", "list", "watch"]}],
            },
        )
    auth = service_account_auth(cluster, allowed, "collector", tmp_path)
    for ns in (allowed, denied):
        rbac.create_namespaced_role_binding(
            ns,
            {
                "metadata": {"name": "collector"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
                "subjects": [{"kind": "ServiceAccount", "name": "collector", "namespace": allowed}],
            },
        )
    wait_for(
        "both containers terminated",
        lambda: all(
            (s := cluster.core.read_namespaced_pod("web", ns).status.ephemeral_container_statuses)
            and s[0].state.terminated
            for ns in (allowed, denied)
        ),
    )

    result = run_lookup(tmp_path, [f"{allowed}/web", f"{denied}/web"], {**auth, "parse": "json_lines"})
    got = {r["namespace"]: r for r in records(result)}
    assert got[allowed]["error"] is None and len(got[allowed]["output"]) == 2
    assert got[denied]["error"].startswith(
        f"pod {denied}/web: permission denied: grant 'get' on 'pods/log' in namespace '{denied}'"
    ), got[denied]["error"]
    assert got[denied]["state"] == "terminated"  # the state is still reported

    only_denied = run_lookup(tmp_path, [f"{denied}/web"], auth)
    assert only_denied["failed"] is True
    assert "nothing could be collected: pod" in only_denied["msg"] and "'get' on 'pods/log'" in only_denied["msg"]
    assert auth["api_key"] not in only_denied["_stdout"]
