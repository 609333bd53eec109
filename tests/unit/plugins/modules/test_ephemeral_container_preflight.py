# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ephemeral_container module's preflights, canary and copy_env, through its ``main()`` against the fake API server.

The fake server's nodes are whatever a test puts in ``cluster.nodes`` (others answer with 64Gi allocatable), its
kubelet reports an added container in ``cluster.kubelet_state``. The real pull failure on the real node is
tests/integration/test_preflight.py.
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest

from ansible_collections.kubedebug.ephemeral.plugins.modules.ephemeral_container import main
from ansible_collections.kubedebug.ephemeral.tests.unit.api_objects import load_pod
from ansible_collections.kubedebug.ephemeral.tests.unit.fake_apiserver import FakeApiServer, status_body

NS = "unit-fixtures"
NODE = "node-000001"
ARGS = {"namespace": NS, "container": "debug", "image": "docker.io/library/busybox:1.36", "command": ["sleep", "3600"], "wait": "none"}
PULL_FAILED = {"waiting": {"reason": "ErrImagePull", "message": 'failed to pull image "docker.io/library/busybox:1.36": connection refused'}}


def named(name: str, **spec: Any) -> dict[str, Any]:
    pod = load_pod("plain")
    pod["metadata"]["name"] = name
    pod["spec"].update(copy.deepcopy(spec))
    return pod


def pull_secret(name: str, *registries: str) -> dict[str, Any]:
    config = {"auths": {r: {"auth": base64.b64encode(b"user:secret-password").decode()} for r in registries}}
    data = {".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()}
    return {"kind": "Secret", "metadata": {"namespace": NS, "name": name}, "type": "kubernetes.io/dockerconfigjson", "data": data}


def small_node(memory: str) -> dict[str, Any]:
    return {"kind": "Node", "metadata": {"name": NODE}, "status": {"allocatable": {"memory": memory}, "images": [{"names": ["kd.local/busybox:1.35"]}]}}


@pytest.fixture
def cluster(apiserver: FakeApiServer) -> Any:
    return apiserver.cluster


def test_by_default_each_node_is_read_once_and_reported_per_pod(cluster: Any, run_module: Any) -> None:
    cluster.add(named("a"), named("b"), named("c"))
    result = run_module(main, dict(ARGS, label_selector="app=web"))
    assert result["rc"] == 0 and result["warnings"] == [], result
    gets = [(path, query) for _method, path, query in cluster.calls("GET")]
    assert gets.count((f"/api/v1/nodes/{NODE}", {})) == 1
    assert gets.count(("/api/v1/pods", {"fieldSelector": [f"spec.nodeName={NODE}"]})) == 1
    for record in result["pods"]:
        assert record["action"] == "added"
        assert record["preflight"]["image_pull"]["status"] == "no_secrets"
        memory = record["preflight"]["memory"]
        assert (memory["status"], memory["node"], memory["allocatable"], memory["requested"]) == ("ok", NODE, 64 * 2**30, 0)


def test_a_registry_no_pull_secret_names_is_one_warning_and_the_secret_is_read_once(cluster: Any, run_module: Any) -> None:
    secrets = [{"name": "regcred"}, {"name": "gone"}]
    cluster.add(named("a", imagePullSecrets=secrets), named("b", imagePullSecrets=secrets))
    cluster.secrets[(NS, "regcred")] = pull_secret("regcred", "registry.example.com")
    result = run_module(main, dict(ARGS, label_selector="app=web"))
    assert result["rc"] == 0 and [r["action"] for r in result["pods"]] == ["added", "added"]
    assert len(result["warnings"]) == 1, result["warnings"]
    [warning] = result["warnings"]
    assert warning.startswith("preflight image_pull: registry docker.io is not covered by the pod's imagePullSecrets regcred, gone (gone not found")
    assert warning.endswith("(pod unit-fixtures/a and 1 more)")
    assert [path for _m, path, _q in cluster.calls("GET")].count(f"/api/v1/namespaces/{NS}/secrets/regcred") == 1
    assert "secret-password" not in json.dumps(result) and "dXNlcjpzZWNyZXQtcGFzc3dvcmQ" not in json.dumps(result)
    check = result["pods"][0]["preflight"]["image_pull"]
    assert (check["status"], check["secrets"], check["covered_by"]) == ("not_covered", ["regcred", "gone"], [])


def test_a_covering_secret_and_an_image_the_node_has(cluster: Any, run_module: Any) -> None:
    cluster.add(named("a", imagePullSecrets=[{"name": "regcred"}]))
    cluster.secrets[(NS, "regcred")] = pull_secret("regcred", "https://index.docker.io/v1/")
    covered = run_module(main, dict(ARGS, pod="a"))
    assert covered["pods"][0]["preflight"]["image_pull"]["covered_by"] == ["regcred"] and covered["warnings"] == []
    cluster.nodes[NODE] = small_node("64Gi")
    present = run_module(main, dict(ARGS, pod="a", container="debug2", image="kd.local/busybox:1.35"))
    assert present["pods"][0]["preflight"]["image_pull"]["status"] == "present"


def test_low_memory_headroom_warns_with_the_numbers_and_still_adds(cluster: Any, run_module: Any) -> None:
    hungry = [{"name": "app", "image": "registry.k8s.io/pause:3.10", "resources": {"requests": {"memory": "900Mi"}}}]
    cluster.add(named("a"), named("big", containers=hungry))
    cluster.nodes[NODE] = small_node("1Gi")
    result = run_module(main, dict(ARGS, pod="a", min_memory_headroom="256Mi"))
    assert result["rc"] == 0 and result["pods"][0]["action"] == "added"
    memory = result["pods"][0]["preflight"]["memory"]
    assert (memory["status"], memory["headroom"]) == ("low", 124 * 2**20)
    assert result["warnings"] == [
        f"preflight memory: node {NODE} has 124Mi of memory headroom, less than min_memory_headroom 256Mi (allocatable 1Gi, requested by its "
        "pods 900Mi, headroom 124Mi): ephemeral containers have no resources, so a memory-hungry recipe risks getting this pod evicted; "
        "prefer a light recipe, or a pod on another node (pod unit-fixtures/a)"
    ]
    quiet = run_module(main, dict(ARGS, pod="a", container="debug2", min_memory_headroom="100Mi"))
    assert quiet["warnings"] == [] and quiet["pods"][0]["preflight"]["memory"]["status"] == "ok"


def test_no_permission_on_nodes_is_said_in_the_records_not_warned(cluster: Any, run_module: Any) -> None:
    cluster.add(named("a"), named("b"))
    cluster.refuse[("GET", f"/api/v1/nodes/{NODE}")] = (403, status_body(403, f'nodes "{NODE}" is forbidden: User "jane" cannot get resource "nodes"'))
    result = run_module(main, dict(ARGS, label_selector="app=web"))
    assert result["rc"] == 0 and [r["action"] for r in result["pods"]] == ["added", "added"]
    assert result["warnings"] == []
    for record in result["pods"]:
        memory = record["preflight"]["memory"]
        assert memory["status"] == "unknown" and memory["msg"] == (
            f"node {NODE}: no permission to read nodes (grant 'get' on 'nodes' and 'list' on 'pods' cluster-wide to check "
            "memory headroom, or leave memory out of preflight)"
        )
        assert record["preflight"]["image_pull"]["status"] == "no_secrets"


def test_no_permission_on_pull_secrets_is_unknown_in_the_records(cluster: Any, run_module: Any) -> None:
    cluster.add(named("a", imagePullSecrets=[{"name": "regcred"}]))
    cluster.refuse[("GET", f"/api/v1/namespaces/{NS}/secrets/regcred")] = (403, status_body(403, 'secrets "regcred" is forbidden'))
    result = run_module(main, dict(ARGS, pod="a"))
    assert result["rc"] == 0 and result["warnings"] == []
    check = result["pods"][0]["preflight"]["image_pull"]
    assert check["status"] == "unknown" and check["msg"].startswith("could not read imagePullSecrets regcred: no permission to read secrets")


def test_check_mode_reports_the_preflights(cluster: Any, run_module: Any) -> None:
    cluster.add(named("a"))
    cluster.nodes[NODE] = small_node("100Mi")
    result = run_module(main, dict(ARGS, pod="a"), check_mode=True)
    assert result["pods"][0]["action"] == "would_add" and result["pods"][0]["preflight"]["memory"]["status"] == "low"
    assert any(w.startswith("preflight memory:") for w in result["warnings"])
    assert not cluster.pods[(NS, "a")]["spec"].get("ephemeralContainers")


def test_a_rerun_checks_nothing_and_sends_only_its_list(cluster: Any, run_module: Any) -> None:
    cluster.add(named("a"))
    run_module(main, dict(ARGS, pod="a"))
    before = len(cluster.calls())
    again = run_module(main, dict(ARGS, pod="a"))
    assert again["pods"][0]["action"] == "unchanged" and again["pods"][0]["preflight"] == {}
    assert [m for m, _p, _q in cluster.calls()[before:]] == ["GET"]


def test_preflight_empty_checks_nothing(cluster: Any, run_module: Any) -> None:
    cluster.add(named("a"))
    result = run_module(main, dict(ARGS, pod="a", preflight=[]))
    assert result["pods"][0]["preflight"] == {} and [m for m, _p, _q in cluster.calls()] == ["GET", "PATCH"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"min_memory_headroom": "lots"}, "min_memory_headroom 'lots' is not a memory quantity"),
        ({"canary": -1}, "canary must be 0 (no canary) or a number of pods; got -1"),
        ({"preflight": ["disk"]}, "preflight"),
        ({"copy_env": True, "profile": "baseline"}, "copy_env copies the target container's env and envFrom, but there is no target"),
    ],
)
def test_bad_options_are_refused_by_name(cluster: Any, run_module: Any, args: dict[str, Any], message: str) -> None:
    cluster.add(named("a"))
    result = run_module(main, dict(ARGS, pod="a", **args))
    assert result["rc"] == 1 and message in result["msg"] and "Traceback" not in json.dumps(result)
    assert not [c for c in cluster.calls() if c[0] == "PATCH"]


def test_a_canary_that_cannot_pull_stops_the_fleet(cluster: Any, run_module: Any) -> None:
    cluster.add(named("a"), named("b"), named("c"))
    cluster.kubelet_state = PULL_FAILED
    result = run_module(main, dict(ARGS, label_selector="app=web", canary=1, wait="running", wait_timeout=20))
    assert result["rc"] == 1
    assert [(r["pod"], r["action"], r["canary"]) for r in result["pods"]] == [("a", "failed", True), ("b", "skipped", False), ("c", "skipped", False)]
    assert result["summary"]["skipped"] == 2 and result["summary"]["failed"] == 1
    assert [p for m, p, _q in cluster.calls() if m == "PATCH"] == [f"/api/v1/namespaces/{NS}/pods/a/ephemeralcontainers"]
    assert result["msg"].startswith(
        "1 of 3 pod(s) failed and 2 were not tried: canary pod unit-fixtures/a: the debug container did not start (waiting (ErrImagePull: failed to pull"
    )
    assert result["pods"][1]["msg"].startswith("not tried: canary pod unit-fixtures/a")
    assert result["changed"] is True  # the canary pod did get the container, and keeps it


def test_a_canary_that_starts_lets_the_others_go(cluster: Any, run_module: Any) -> None:
    cluster.add(named("a"), named("b"), named("c"))
    result = run_module(main, dict(ARGS, label_selector="app=web", canary=1, wait="running", wait_timeout=20))
    assert result["rc"] == 0, result
    assert [(r["pod"], r["action"], r["canary"]) for r in result["pods"]] == [("a", "added", True), ("b", "added", False), ("c", "added", False)]
    patches = [p for m, p, _q in cluster.calls() if m == "PATCH"]
    assert patches[0] == f"/api/v1/namespaces/{NS}/pods/a/ephemeralcontainers" and len(patches) == 3


def test_a_canary_is_not_tried_in_check_mode_or_for_too_few_pods(cluster: Any, run_module: Any) -> None:
    cluster.add(named("a"), named("b"))
    cluster.kubelet_state = PULL_FAILED
    dry = run_module(main, dict(ARGS, label_selector="app=web", canary=1), check_mode=True)
    assert [r["action"] for r in dry["pods"]] == ["would_add", "would_add"] and not any(r["canary"] for r in dry["pods"])
    few = run_module(main, dict(ARGS, label_selector="app=web", canary=2))
    assert [r["action"] for r in few["pods"]] == ["added", "added"] and not any(r["canary"] for r in few["pods"])


def test_copy_env_copies_the_targets_env_and_env_from_and_env_wins(cluster: Any, run_module: Any) -> None:
    env = [{"name": "DB_HOST", "value": "db"}, {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}}]
    env_from = [{"configMapRef": {"name": "settings"}}]
    app = [{"name": "app", "image": "registry.k8s.io/pause:3.10", "env": env, "envFrom": env_from}]
    cluster.add(named("a", containers=app))
    result = run_module(main, dict(ARGS, pod="a", copy_env=True, env={"DB_HOST": "replica"}))
    assert result["rc"] == 0, result
    stored = cluster.pods[(NS, "a")]["spec"]["ephemeralContainers"][0]
    assert stored["env"] == [env[1], {"name": "DB_HOST", "value": "replica"}]
    assert stored["envFrom"] == env_from
    again = run_module(main, dict(ARGS, pod="a", copy_env=True, env={"DB_HOST": "replica"}))
    assert again["pods"][0]["action"] == "unchanged" and again["changed"] is False
