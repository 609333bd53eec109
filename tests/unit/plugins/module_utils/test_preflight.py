# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The preflights' pure part: registries, pull secret coverage, memory quantities and headroom."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from ansible_collections.kubedebug.ephemeral.plugins.module_utils._errors import KubedebugError
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._preflight import (
    full_image,
    human_bytes,
    image_registry,
    image_repository,
    memory_check,
    node_headroom,
    pod_memory_limit,
    pod_memory_request,
    preflight_view,
    preflight_warnings,
    pull_check,
    quantity_bytes,
    registry_covers,
    secret_registries,
)

GI = 2**30
MI = 2**20


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("256Mi", 256 * MI),
        ("1Gi", GI),
        ("1.5Gi", 3 * GI // 2),
        ("500M", 500 * 10**6),
        ("1e3", 1000),
        ("128974848", 128974848),
        ("0", 0),
        ("1k", 1000),
        ("100m", 1),
    ],
)
def test_quantities_in_bytes(text: str, expected: int) -> None:
    assert quantity_bytes(text) == expected


@pytest.mark.parametrize("text", ["", "Mi", "lots", "-1Gi", "1.2.3Gi", "nan", "inf"])
def test_a_bad_quantity_names_the_option(text: str) -> None:
    with pytest.raises(KubedebugError, match=r"min_memory_headroom .* is not a memory quantity: give bytes or .* 256Mi"):
        quantity_bytes(text, "min_memory_headroom")


def test_human_bytes() -> None:
    assert [human_bytes(n) for n in (256 * MI, 3 * GI // 2, -12 * MI, 100)] == ["256Mi", "1.5Gi", "-12Mi", "100"]


@pytest.mark.parametrize(
    ("image", "registry", "repository", "full"),
    [
        ("busybox", "docker.io", "docker.io/library/busybox", "docker.io/library/busybox:latest"),
        ("busybox:1.36", "docker.io", "docker.io/library/busybox", "docker.io/library/busybox:1.36"),
        ("nicolaka/netshoot:v0.13", "docker.io", "docker.io/nicolaka/netshoot", "docker.io/nicolaka/netshoot:v0.13"),
        ("docker.io/library/busybox:1.36", "docker.io", "docker.io/library/busybox", "docker.io/library/busybox:1.36"),
        ("index.docker.io/library/busybox:1.36", "docker.io", "docker.io/library/busybox", "docker.io/library/busybox:1.36"),
        (
            "registry.example.com:5000/tools/debug:1",
            "registry.example.com:5000",
            "registry.example.com:5000/tools/debug",
            "registry.example.com:5000/tools/debug:1",
        ),
        ("localhost/debug", "localhost", "localhost/debug", "localhost/debug:latest"),
        ("kd.local/busybox:1.35", "kd.local", "kd.local/busybox", "kd.local/busybox:1.35"),
        ("ghcr.io/o/i@sha256:" + "a" * 64, "ghcr.io", "ghcr.io/o/i", "ghcr.io/o/i@sha256:" + "a" * 64),
    ],
)
def test_registries_as_the_runtime_fills_them_in(image: str, registry: str, repository: str, full: str) -> None:
    assert (image_registry(image), image_repository(image), full_image(image)) == (registry, repository, full)


@pytest.mark.parametrize(
    ("key", "image", "covered"),
    [
        ("registry.example.com", "registry.example.com/tools/debug:1", True),
        ("https://registry.example.com/v2/", "registry.example.com/tools/debug:1", True),
        ("registry.example.com", "other.example.com/tools/debug:1", False),
        ("*.example.com", "registry.example.com/tools/debug:1", True),
        ("*.example.com", "example.com/tools/debug:1", False),
        ("registry.example.com/tools", "registry.example.com/tools/debug:1", True),
        ("registry.example.com/team", "registry.example.com/tools/debug:1", False),
        ("registry.example.com/tool", "registry.example.com/tools/debug:1", False),
        ("registry.example.com:5000", "registry.example.com/tools/debug:1", False),
        ("registry.example.com:5000", "registry.example.com:5000/tools/debug:1", True),
        ("https://index.docker.io/v1/", "busybox:1.36", True),
        ("docker.io", "docker.io/library/busybox:1.36", True),
        ("https://index.docker.io/v1/", "ghcr.io/o/i:1", False),
    ],
)
def test_registry_keys_match_as_the_kubelet_keyring_does(key: str, image: str, covered: bool) -> None:
    assert registry_covers(key, image) is covered


def pull_secret(name: str, registries: list[str], legacy: bool = False) -> dict[str, Any]:
    auths = {r: {"auth": base64.b64encode(b"user:pass").decode()} for r in registries}
    if legacy:
        return {"metadata": {"name": name}, "type": "kubernetes.io/dockercfg", "data": {".dockercfg": base64.b64encode(json.dumps(auths).encode()).decode()}}
    data = base64.b64encode(json.dumps({"auths": auths}).encode()).decode()
    return {"metadata": {"name": name}, "type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": data}}


def test_secret_registries_keep_the_keys_and_drop_the_credentials() -> None:
    assert secret_registries(pull_secret("regcred", ["b.example.com", "a.example.com"])) == ["a.example.com", "b.example.com"]
    assert secret_registries(pull_secret("old", ["https://index.docker.io/v1/"], legacy=True)) == ["https://index.docker.io/v1/"]
    assert "pass" not in repr(secret_registries(pull_secret("regcred", ["a.example.com"])))


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ({"metadata": {"name": "tls"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}}, "secret 'tls' has neither .dockerconfigjson"),
        ({"metadata": {"name": "bad"}, "data": {".dockerconfigjson": "not base64!"}}, "secret 'bad': .dockerconfigjson is not base64-encoded JSON"),
        ({"metadata": {"name": "flat"}, "data": {".dockerconfigjson": base64.b64encode(b'{"x": 1}').decode()}}, "secret 'flat': .dockerconfigjson has no"),
    ],
)
def test_a_secret_the_kubelet_cannot_use_is_said(secret: dict[str, Any], message: str) -> None:
    with pytest.raises(KubedebugError, match=message):
        secret_registries(secret)


def pod(secrets: list[str] | None = None, containers: list[dict[str, Any]] | None = None, node: str = "n1") -> dict[str, Any]:
    spec: dict[str, Any] = {"nodeName": node, "containers": containers or [{"name": "app"}]}
    if secrets is not None:
        spec["imagePullSecrets"] = [{"name": s} for s in secrets]
    return {"metadata": {"namespace": "ns", "name": "p"}, "spec": spec}


def test_pull_covered_by_one_of_the_pods_secrets() -> None:
    check = pull_check(pod(["a", "b"]), "registry.example.com/tools/debug:1", "IfNotPresent", {"a": ["ghcr.io"], "b": ["registry.example.com"]}, None)
    assert check["status"] == "covered" and check["covered_by"] == ["b"] and check["secrets"] == ["a", "b"]


def test_pull_not_covered_says_which_secrets_and_what_to_do() -> None:
    check = pull_check(pod(["a", "gone"]), "docker.io/library/busybox:1.36", "IfNotPresent", {"a": ["registry.example.com"], "gone": None}, [])
    assert check["status"] == "not_covered"
    assert "registry docker.io is not covered by the pod's imagePullSecrets a, gone (gone not found" in check["msg"]
    assert "add a pull secret for docker.io" in check["msg"]


def test_pull_without_secrets_is_no_warning() -> None:
    check = pull_check(pod(), "busybox:1.36", "IfNotPresent", {}, None)
    assert check["status"] == "no_secrets" and "must be public, or the node must have credentials for docker.io" in check["msg"]


def test_an_image_the_node_has_needs_no_pull_unless_always() -> None:
    images = ["docker.io/library/busybox:1.36", "kd.local/busybox:1.35"]
    assert pull_check(pod(["a"]), "busybox:1.36", "IfNotPresent", {"a": ["ghcr.io"]}, images)["status"] == "present"
    assert pull_check(pod(["a"]), "busybox:1.36", "Always", {"a": ["ghcr.io"]}, images)["status"] == "not_covered"
    assert pull_check(pod(), "kd.local/busybox:1.36", "Never", {}, images)["status"] == "never_pulled"
    assert pull_check(pod(), "kd.local/busybox:1.35", "Never", {}, images)["status"] == "present"


def test_an_unreadable_secret_is_unknown_not_a_guess() -> None:
    check = pull_check(pod(["a"]), "busybox:1.36", "IfNotPresent", {"a": "no permission to read secrets in namespace ns"}, None)
    assert check["status"] == "unknown" and "could not read imagePullSecrets a: no permission" in check["msg"]


def test_memory_request_counts_containers_init_peak_sidecars_and_overhead() -> None:
    spec_pod = {
        "spec": {
            "containers": [{"resources": {"requests": {"memory": "100Mi"}}}, {"resources": {}}],
            "initContainers": [
                {"resources": {"requests": {"memory": "50Mi"}}, "restartPolicy": "Always"},
                {"resources": {"requests": {"memory": "500Mi"}}},
            ],
            "overhead": {"memory": "10Mi"},
        }
    }
    # Init peak: the sidecar (50) + the 500Mi init container; running: 100 + 50.
    assert pod_memory_request(spec_pod) == 560 * MI
    assert pod_memory_limit(spec_pod) is None
    limited = {"spec": {"containers": [{"resources": {"limits": {"memory": "1Gi"}}}, {"resources": {"limits": {"memory": "512Mi"}}}]}}
    assert pod_memory_limit(limited) == GI + 512 * MI


def node(allocatable: str, pressure: bool = False) -> dict[str, Any]:
    conditions = [{"type": "MemoryPressure", "status": "True" if pressure else "False"}]
    return {"metadata": {"name": "n1"}, "status": {"allocatable": {"memory": allocatable}, "conditions": conditions}}


def requesting(memory: str, phase: str = "Running") -> dict[str, Any]:
    return {"spec": {"containers": [{"resources": {"requests": {"memory": memory}}}]}, "status": {"phase": phase}}


def test_headroom_is_allocatable_minus_what_the_running_pods_request() -> None:
    headroom = node_headroom(node("2Gi"), [requesting("1Gi"), requesting("512Mi"), requesting("1Gi", phase="Succeeded")])
    assert headroom == {"allocatable": 2 * GI, "requested": GI + 512 * MI, "headroom": 512 * MI, "pressure": False}


def test_memory_check_statuses() -> None:
    low = memory_check(pod(), "n1", node_headroom(node("2Gi"), [requesting("1900Mi")]), 256 * MI)
    assert low["status"] == "low" and low["headroom"] == 148 * MI
    assert "node n1 has 148Mi of memory headroom, less than min_memory_headroom 256Mi (allocatable 2Gi, requested by its pods 1.9Gi" in low["msg"]
    assert memory_check(pod(), "n1", node_headroom(node("2Gi"), [requesting("1Gi")]), 256 * MI)["status"] == "ok"
    assert memory_check(pod(), "n1", node_headroom(node("64Gi", pressure=True), []), 256 * MI)["status"] == "pressure"
    assert memory_check(pod(), "", None, 256 * MI)["status"] == "unknown"
    unknown = memory_check(pod(), "n1", "no permission to read nodes", 256 * MI)
    assert unknown["status"] == "unknown" and unknown["msg"] == "node n1: no permission to read nodes"
    limited = memory_check(pod(containers=[{"resources": {"limits": {"memory": "256Mi"}}}]), "n1", node_headroom(node("8Gi"), []), 256 * MI)
    assert limited["status"] == "ok" and limited["pod_limit"] == 256 * MI and "shares the pod's cgroup limit of 256Mi" in limited["msg"]


def test_warnings_are_one_per_problem_with_a_count() -> None:
    bad = {"image_pull": {"status": "not_covered", "msg": "registry docker.io is not covered"}, "memory": {"status": "ok", "msg": ""}}
    unknown = {"image_pull": {"status": "unknown", "msg": "could not read"}, "memory": {"status": "unknown", "msg": "node n1: no permission"}}
    records = [{"namespace": "ns", "pod": f"p{i}", "preflight": bad} for i in range(3)] + [{"namespace": "ns", "pod": "q", "preflight": {}}]
    records.append({"namespace": "ns", "pod": "u", "preflight": unknown})
    assert preflight_warnings(records) == ["preflight image_pull: registry docker.io is not covered (pod ns/p0 and 2 more)"]


def test_the_view_the_manager_keeps_gives_the_same_checks_as_the_pod() -> None:
    full = pod(["regcred"], containers=[{"name": "app", "image": "x", "env": [{"name": "A", "value": "b" * 1000}], "resources": {"limits": {"memory": "1Gi"}}}])
    full["status"] = {"containerStatuses": [{"name": "app", "ready": True}]}
    view = preflight_view(full)
    assert view == {"spec": {"nodeName": "n1", "imagePullSecrets": [{"name": "regcred"}], "containers": [{"resources": {"limits": {"memory": "1Gi"}}}]}}
    headroom = node_headroom(node("8Gi"), [])
    assert memory_check(view, "n1", headroom, MI) == memory_check(full, "n1", headroom, MI)
    assert pull_check(view, "busybox", "IfNotPresent", {"regcred": ["ghcr.io"]}, None) == pull_check(
        full, "busybox", "IfNotPresent", {"regcred": ["ghcr.io"]}, None
    )
    unlimited = pod(containers=[{"name": "app"}, {"name": "side", "resources": {"limits": {"memory": "1Gi"}}}])
    assert pod_memory_limit(preflight_view(unlimited)) is None
