# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for plugins/module_utils/_spec.py: the pure decisions about ephemeral containers.

Pods are the recorded API objects in tests/unit/fixtures/pods (see the README there).
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from ansible_collections.kubedebug.ephemeral.plugins.module_utils import _spec
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._errors import KubedebugError
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._spec import (
    ADD,
    ALLOWED_FIELDS,
    AUDIT_ANNOTATION_PREFIX,
    CONFLICT,
    KNOWN_FORBIDDEN_FIELDS,
    PROFILES,
    REFUSE,
    UNCHANGED,
    Plan,
    Request,
    audit_annotation,
    build_spec,
    copied_mounts,
    deep_merge,
    default_pull_policy,
    differences,
    effective_target,
    normalize_env,
    normalized,
    patch_body,
    plan_pod,
    plan_pods,
    profile_security_context,
    validate_request,
)
from ansible_collections.kubedebug.ephemeral.tests.unit.api_objects import POD_FIXTURES, load_pod

BUSYBOX = "docker.io/library/busybox:1.36"
DIGEST = "sha256:" + "a" * 64
NS = "unit-fixtures"


def req(**kwargs: Any) -> Request:
    """A valid request; keyword arguments replace the defaults."""
    return Request(**{"container": "debug", "image": BUSYBOX, **kwargs})


def kubectl_debug_request(**kwargs: Any) -> Request:
    """What `kubectl debug -c debug --image=busybox:1.36 --target=app --profile=general -- sleep 3600` sent."""
    return req(**{"command": ["sleep", "3600"], **kwargs})


def sa_volume(pod: dict[str, Any]) -> str:
    """The name of the service-account token volume the API server added (random suffix)."""
    names = [v["name"] for v in pod["spec"]["volumes"] if v["name"].startswith("kube-api-access-")]
    assert len(names) == 1, names
    return names[0]


def refusal(pod: str, why: str, container: str = "debug") -> str:
    return f"pod {NS}/{pod}: cannot add ephemeral container {container!r}: {why}"


# --------------------------------------------------------------------------- profiles


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        ("general", {"capabilities": {"add": ["SYS_PTRACE"]}}),
        ("netadmin", {"capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}}),
        ("sysadmin", {"privileged": True}),
        (
            "restricted",
            {
                "runAsNonRoot": True,
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
                "seccompProfile": {"type": "RuntimeDefault"},
            },
        ),
        ("baseline", None),
        ("legacy", None),
    ],
)
def test_profile_security_context_matches_kubectl_debug(profile: str, expected: dict[str, Any] | None) -> None:
    assert profile_security_context(profile) == expected


def test_profile_table_covers_every_profile() -> None:
    assert PROFILES == ("general", "baseline", "restricted", "netadmin", "sysadmin", "legacy")
    for profile in PROFILES:
        profile_security_context(profile)  # none raises


def test_profile_security_context_returns_a_fresh_dict_each_time() -> None:
    first = profile_security_context("general")
    assert first is not None
    first["capabilities"]["add"].append("NET_ADMIN")
    assert profile_security_context("general") == {"capabilities": {"add": ["SYS_PTRACE"]}}


def test_profile_security_context_unknown_profile() -> None:
    with pytest.raises(KubedebugError) as excinfo:
        profile_security_context("admin")
    assert excinfo.value.msg == "profile must be one of general, baseline, restricted, netadmin, sysadmin, legacy; got 'admin'"
    assert excinfo.value.status is None


@pytest.mark.parametrize(
    ("profile", "security_context", "expected"),
    [
        # Top-level keys replace the profile's: capabilities is replaced whole, not merged.
        ("general", {"capabilities": {"drop": ["ALL"]}}, {"capabilities": {"drop": ["ALL"]}}),
        ("general", {"runAsUser": 0}, {"capabilities": {"add": ["SYS_PTRACE"]}, "runAsUser": 0}),
        (
            "restricted",
            {"runAsNonRoot": False, "runAsUser": 65534},
            {
                "runAsNonRoot": False,
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
                "seccompProfile": {"type": "RuntimeDefault"},
                "runAsUser": 65534,
            },
        ),
        ("sysadmin", {"privileged": False}, {"privileged": False}),
        ("baseline", {"readOnlyRootFilesystem": True}, {"readOnlyRootFilesystem": True}),
        ("legacy", {"capabilities": {"add": ["SYS_ADMIN"]}}, {"capabilities": {"add": ["SYS_ADMIN"]}}),
    ],
)
def test_security_context_keys_override_profile_keys(profile: str, security_context: dict[str, Any], expected: dict[str, Any]) -> None:
    spec = build_spec(req(profile=profile, security_context=security_context), pod=None)
    assert spec["securityContext"] == expected


def test_no_security_context_key_for_baseline_and_legacy() -> None:
    assert "securityContext" not in build_spec(req(profile="baseline"), pod=None)
    assert "securityContext" not in build_spec(req(profile="legacy"), pod=None)


def test_profiles_match_the_module_choices() -> None:
    from ansible_collections.kubedebug.ephemeral.plugins.modules.ephemeral_container import argument_spec

    spec = argument_spec()
    assert spec["profile"]["choices"] == list(PROFILES)
    assert spec["profile"]["default"] == Request.__dataclass_fields__["profile"].default == "general"


# --------------------------------------------------------------------------- pull policy

# Checked against the 1.36.3 API server: `kubectl create --dry-run=server` of a pod with these images.
SERVER_PULL_POLICY_DEFAULTS = [
    ("busybox", "Always"),
    ("busybox:latest", "Always"),
    ("busybox:1.36", "IfNotPresent"),
    ("docker.io/library/busybox:1.36", "IfNotPresent"),
    (f"busybox@{DIGEST}", "IfNotPresent"),
    (f"busybox:1.36@{DIGEST}", "IfNotPresent"),
    ("localhost:5000/x", "Always"),
    ("localhost:5000/x:latest", "Always"),
    ("localhost:5000/x:1", "IfNotPresent"),
    ("registry:5000/team/tool", "Always"),
    ("registry.example.com:443/team/tool:v2", "IfNotPresent"),
]


@pytest.mark.parametrize(("image", "expected"), SERVER_PULL_POLICY_DEFAULTS)
def test_default_pull_policy(image: str, expected: str) -> None:
    assert default_pull_policy(image) == expected


def test_default_pull_policy_latest_tag_with_digest() -> None:
    # 1.36.3 `kubectl create --dry-run=server`: busybox:latest@sha256:... -> imagePullPolicy Always
    # (and the same for an ephemeral container: tests/unit/fixtures/pods/debugged-latest-digest.json).
    assert default_pull_policy(f"busybox:latest@{DIGEST}") == "Always"


def test_build_spec_pull_policy_default_and_explicit() -> None:
    assert build_spec(req(image="busybox"), pod=None)["imagePullPolicy"] == "Always"
    assert build_spec(req(image="busybox:1.36"), pod=None)["imagePullPolicy"] == "IfNotPresent"
    assert build_spec(req(image="busybox", image_pull_policy="Never"), pod=None)["imagePullPolicy"] == "Never"


# --------------------------------------------------------------------------- validate_request


def test_validate_request_accepts_a_full_request() -> None:
    assert (
        validate_request(
            req(
                command=["sleep", "3600"],
                args=["-x"],
                env={"A": "1"},
                target_container="app",
                profile="restricted",
                security_context={"runAsUser": 65534},
                volume_mounts=[{"name": "data", "mountPath": "/data", "subPath": ""}],
                working_dir="/tmp",
                stdin=True,
                tty=True,
                image_pull_policy="IfNotPresent",
                spec_override={"stdinOnce": True, "securityContext": {"runAsGroup": 3000}, "volumeDevices": []},
                allowed_images=(r"docker\.io/library/busybox:.*",),
            )
        )
        is None
    )


@pytest.mark.parametrize("name", ["Debug", "-debug", "debug-", "deb_ug", "deb.ug", "debug 1", "", "d" * 64, "débug"])
def test_validate_request_bad_container_name(name: str) -> None:
    with pytest.raises(KubedebugError) as excinfo:
        validate_request(req(container=name))
    assert excinfo.value.msg == (
        f"container {name!r} is not a valid container name: use at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit"
    )


@pytest.mark.parametrize("name", ["d", "debug", "debug-1", "1debug", "d" * 63])
def test_validate_request_good_container_name(name: str) -> None:
    validate_request(req(container=name))


def test_validate_request_container_name_with_trailing_newline() -> None:
    with pytest.raises(KubedebugError, match="is not a valid container name"):
        validate_request(req(container="debug\n"))


@pytest.mark.parametrize("image", ["", " busybox:1.36", "busybox:1.36 ", "busybox:1.36\n", "\tbusybox"])
def test_validate_request_image_whitespace(image: str) -> None:
    with pytest.raises(KubedebugError) as excinfo:
        validate_request(req(image=image))
    assert excinfo.value.msg == f"image {image!r} must be set and have no leading or trailing whitespace"


def test_validate_request_unknown_profile() -> None:
    with pytest.raises(KubedebugError) as excinfo:
        validate_request(req(profile="privileged"))
    assert excinfo.value.msg == "profile must be one of general, baseline, restricted, netadmin, sysadmin, legacy; got 'privileged'"


def test_validate_request_checks_the_name_first() -> None:
    with pytest.raises(KubedebugError, match=r"^container 'Bad' is not a valid container name"):
        validate_request(req(container="Bad", image=" x", profile="nope"))


ALLOWED = (r"docker\.io/library/busybox:1\.36", r"docker\.io/nicolaka/netshoot:v.*")


@pytest.mark.parametrize("image", ["docker.io/library/busybox:1.36", "docker.io/nicolaka/netshoot:v0.13", "docker.io/nicolaka/netshoot:v"])
def test_validate_request_allowed_images_match(image: str) -> None:
    validate_request(req(image=image, allowed_images=ALLOWED))


@pytest.mark.parametrize(
    "image",
    [
        "docker.io/library/busybox:1.36-evil",  # a prefix match is not enough
        "evil.example/docker.io/library/busybox:1.36",  # nor a match somewhere inside
        "docker.io/library/busybox:1x36",  # the dot is escaped in the pattern
        "busybox:1.36",  # no implicit registry expansion
        "docker.io/nicolaka/netshoot:latest",
    ],
)
def test_validate_request_allowed_images_fullmatch(image: str) -> None:
    with pytest.raises(KubedebugError) as excinfo:
        validate_request(req(image=image, allowed_images=ALLOWED))
    assert excinfo.value.msg == (
        f"image {image!r} is not in allowed_images (docker\\.io/library/busybox:1\\.36, docker\\.io/nicolaka/netshoot:v.*): "
        "use an image that matches one of these patterns, or ask the playbook owner to allow it"
    )


def test_validate_request_no_allowed_images_allows_any_image() -> None:
    validate_request(req(image="evil.example/anything:latest", allowed_images=()))


@pytest.mark.parametrize(
    ("key", "option"),
    [("name", "container"), ("image", "image"), ("targetContainerName", "target_container")],
)
def test_validate_request_spec_override_cannot_set_identity(key: str, option: str) -> None:
    with pytest.raises(KubedebugError) as excinfo:
        validate_request(req(spec_override={key: "x"}))
    checked = " (which allowed_images checks)" if option == "image" else ""
    assert excinfo.value.msg == f"spec_override.{key} cannot be set: use the {option} option{checked} instead"


PULL_DIGEST = "sha256:" + "ab" * 32
OTHER_DIGEST = "sha256:" + "cd" * 32
NOT_IN = "is not in allowed_images"

# Attempts to run an image the playbook owner did not allow, each with what its refusal says. ALLOWED above allows
# docker.io/library/busybox:1.36 exactly and the netshoot tags starting with "v".
BYPASS_ATTEMPTS = {
    "upper-case host": ("DOCKER.IO/library/busybox:1.36", NOT_IN),
    "upper-case path": ("docker.io/library/BusyBox:1.36", "is not a valid image reference"),
    "control, allowed as written": ("docker.io/library/busybox:1.36", None),
    "upper-case tag": ("docker.io/nicolaka/netshoot:V0.13", NOT_IN),
    "short name": ("busybox:1.36", NOT_IN),  # no docker.io/library/ filled in: CRI-O may resolve it elsewhere
    "library without registry": ("library/busybox:1.36", NOT_IN),
    "docker.io without library": ("docker.io/busybox:1.36", NOT_IN),
    "index.docker.io": ("index.docker.io/library/busybox:1.36", NOT_IN),
    "digest instead of the tag": (f"docker.io/library/busybox@{PULL_DIGEST}", NOT_IN),
    "digest after the exact tag": (f"docker.io/library/busybox:1.36@{PULL_DIGEST}", NOT_IN),
    "digest after an allowed tag pattern": (f"docker.io/nicolaka/netshoot:v0.13@{PULL_DIGEST}", f"is pulled by its digest {PULL_DIGEST}"),
    "registry with a port": ("docker.io:5000/library/busybox:1.36", NOT_IN),
    "port that looks like the tag": ("docker.io:1.36/library/busybox", "is not a valid image reference"),
    "leading whitespace": (" docker.io/library/busybox:1.36", "is not a valid image reference"),
    "trailing whitespace": ("docker.io/library/busybox:1.36 ", "is not a valid image reference"),
    "trailing newline": ("docker.io/library/busybox:1.36\n", "is not a valid image reference"),
    "tab inside": ("docker.io/library/busybox:1.36\tx", "is not a valid image reference"),
    "path traversal": ("docker.io/nicolaka/netshoot:v1/../../evil/x", "is not a valid image reference"),
    "second tag": ("docker.io/nicolaka/netshoot:v1:evil", "is not a valid image reference"),
    "host as a prefix": ("docker.io.evil.example/library/busybox:1.36", NOT_IN),
    "userinfo": ("docker.io@evil.example/library/busybox:1.36", "is not a valid image reference"),
}


@pytest.mark.parametrize(("image", "refusal"), list(BYPASS_ATTEMPTS.values()), ids=list(BYPASS_ATTEMPTS))
def test_allowed_images_cannot_be_bypassed(image: str, refusal: str | None) -> None:
    if refusal is None:
        validate_request(req(image=image, allowed_images=ALLOWED))
        return
    with pytest.raises(KubedebugError) as excinfo:
        validate_request(req(image=image, allowed_images=ALLOWED))
    # Every refusal names the option and the image as given.
    assert "allowed_images" in excinfo.value.msg and repr(image) in excinfo.value.msg, excinfo.value.msg
    assert refusal in excinfo.value.msg


def test_allowed_images_digest_refusal_says_what_to_allow() -> None:
    image = f"docker.io/nicolaka/netshoot:v0.13@{PULL_DIGEST}"
    with pytest.raises(KubedebugError) as excinfo:
        validate_request(req(image=image, allowed_images=ALLOWED))
    assert excinfo.value.msg == (
        f"image {image!r} is pulled by its digest {PULL_DIGEST}, whatever its tag 'v0.13' says, and allowed_images "
        r"(docker\.io/library/busybox:1\.36, docker\.io/nicolaka/netshoot:v.*) allow the tag, not that digest: use the tag alone, "
        f"or ask the playbook owner to allow docker.io/nicolaka/netshoot@{PULL_DIGEST}"
    )


@pytest.mark.parametrize(
    ("image", "patterns"),
    [
        # A pattern that allows the repository at any digest, one that names the digest, and exact pinned references.
        (f"registry.example.com/tools/debug:1.2@{PULL_DIGEST}", (r"registry\.example\.com/tools/.*",)),
        (f"registry.example.com/tools/debug@{PULL_DIGEST}", (r"registry\.example\.com/tools/debug@sha256:[0-9a-f]{64}",)),
        (f"registry.example.com/tools/debug:1.2@{PULL_DIGEST}", (rf"registry\.example\.com/tools/debug:1\.2@{PULL_DIGEST}",)),
        (
            f"registry.example.com/tools/debug:1.2@{PULL_DIGEST}",
            (r"registry\.example\.com/tools/debug:1\.2@.*", rf"registry\.example\.com/tools/debug@{PULL_DIGEST}"),
        ),
        # A registry with a port, IPv4 and IPv6 hosts; the port is part of the host, never the tag.
        ("localhost:5000/debug:1", (r"localhost:5000/debug:1",)),
        ("127.0.0.1:5000/tools/debug", (r"127\.0\.0\.1:5000/tools/debug",)),
        ("[::1]:5000/debug:1", (r"\[::1\]:5000/debug:1",)),
        ("busybox", (r"busybox",)),
    ],
)
def test_allowed_images_accepts(image: str, patterns: tuple[str, ...]) -> None:
    validate_request(req(image=image, allowed_images=patterns))


def test_allowed_images_pattern_with_digest_wildcard_does_not_pin_the_digest() -> None:
    image = f"registry.example.com/tools/debug:1.2@{OTHER_DIGEST}"
    with pytest.raises(KubedebugError, match="is pulled by its digest"):
        validate_request(req(image=image, allowed_images=(r"registry\.example\.com/tools/debug:1\.2@.*",)))


@pytest.mark.parametrize("pattern", [" docker\\.io/.*", "docker\\.io/.* ", ""])
def test_allowed_images_patterns_with_whitespace_are_refused(pattern: str) -> None:
    with pytest.raises(KubedebugError) as excinfo:
        validate_request(req(image="docker.io/library/busybox:1.36", allowed_images=(pattern,)))
    assert excinfo.value.msg == (
        f"allowed_images: {pattern!r} is empty or has leading or trailing whitespace, so it never matches an image: remove it or the whitespace"
    )


@pytest.mark.parametrize("key", ["Image", "IMAGE", " image", "image ", "Name", "TargetContainerName"])
def test_spec_override_cannot_set_identity_in_any_spelling(key: str) -> None:
    with pytest.raises(KubedebugError, match=rf"^spec_override\.{re.escape(key)} cannot be set: use the "):
        validate_request(req(spec_override={key: "evil.example/x:1"}))


FORBIDDEN_OVERRIDES = {
    "ports": [{"containerPort": 80}],
    "resources": {"limits": {"cpu": "100m"}},
    "livenessProbe": {"exec": {"command": ["true"]}},
    "readinessProbe": {"exec": {"command": ["true"]}},
    "startupProbe": {"exec": {"command": ["true"]}},
    "lifecycle": {"preStop": {"exec": {"command": ["true"]}}},
    "restartPolicy": "Always",
    "restartPolicyRules": [{"action": "Restart", "exitCodes": {"operator": "In", "values": [42]}}],
    "resizePolicy": [{"resourceName": "cpu", "restartPolicy": "NotRequired"}],
    "someFutureField": {"enabled": True},
}


@pytest.mark.parametrize("field", sorted(FORBIDDEN_OVERRIDES))
def test_validate_request_forbidden_field_in_spec_override(field: str) -> None:
    with pytest.raises(KubedebugError) as excinfo:
        validate_request(req(spec_override={field: FORBIDDEN_OVERRIDES[field]}))
    assert excinfo.value.msg == (
        f"{field} cannot be set on an ephemeral container (the API server refuses ports, resources, probes, "
        "lifecycle, resizePolicy and restartPolicy): remove it from spec_override"
    )


def test_validate_request_several_forbidden_fields_sorted() -> None:
    override = {k: FORBIDDEN_OVERRIDES[k] for k in ("resources", "ports", "livenessProbe")}
    with pytest.raises(KubedebugError) as excinfo:
        validate_request(req(spec_override=override))
    assert excinfo.value.msg == (
        "livenessProbe, ports, resources cannot be set on an ephemeral container (the API server refuses ports, "
        "resources, probes, lifecycle, resizePolicy and restartPolicy): remove them from spec_override"
    )


def test_forbidden_and_allowed_field_lists_are_disjoint() -> None:
    assert set(KNOWN_FORBIDDEN_FIELDS).isdisjoint(ALLOWED_FIELDS)
    assert _spec.forbidden_fields({k: 1 for k in ALLOWED_FIELDS}) == []
    assert _spec.forbidden_fields({k: 1 for k in KNOWN_FORBIDDEN_FIELDS}) == sorted(KNOWN_FORBIDDEN_FIELDS)


@pytest.mark.parametrize("key", ["subPath", "subPathExpr"])
def test_validate_request_refuses_subpath_in_volume_mounts(key: str) -> None:
    mounts = [{"name": "cache", "mountPath": "/cache"}, {"name": "data", "mountPath": "/data", key: "logs"}]
    with pytest.raises(KubedebugError) as excinfo:
        validate_request(req(volume_mounts=mounts))
    assert excinfo.value.msg == (
        f"volume_mounts: the mount of volume 'data' at '/data' sets {key}, which the API server refuses on ephemeral containers: mount the whole volume instead"
    )


def test_validate_request_refuses_subpath_in_spec_override_volume_mounts() -> None:
    with pytest.raises(KubedebugError, match="sets subPath"):
        validate_request(req(spec_override={"volumeMounts": [{"name": "data", "mountPath": "/data", "subPath": "logs"}]}))


@pytest.mark.parametrize(
    ("env", "msg"),
    [
        ("A=1", "env must be a mapping of NAME: value or a list of EnvVar mappings; got str"),
        (42, "env must be a mapping of NAME: value or a list of EnvVar mappings; got int"),
        (["A=1"], "env[0] must be a mapping with a 'name' (an EnvVar such as {name: X, value: y}); got 'A=1'"),
        (
            [{"name": "A", "value": "1"}, {"value": "x"}],
            "env[1] must be a mapping with a 'name' (an EnvVar such as {name: X, value: y}); got {'value': 'x'}",
        ),
        (
            [{"name": "", "value": "x"}],
            "env[0] must be a mapping with a 'name' (an EnvVar such as {name: X, value: y}); got {'name': '', 'value': 'x'}",
        ),
        ([None], "env[0] must be a mapping with a 'name' (an EnvVar such as {name: X, value: y}); got None"),
    ],
)
def test_validate_request_bad_env(env: Any, msg: str) -> None:
    with pytest.raises(KubedebugError) as excinfo:
        validate_request(req(env=env))
    assert excinfo.value.msg == msg


def test_normalize_env_mapping() -> None:
    assert normalize_env({"B": "2", "A": 1, "EMPTY": None, "FLAG": False}) == [
        {"name": "B", "value": "2"},
        {"name": "A", "value": "1"},
        {"name": "EMPTY", "value": ""},
        {"name": "FLAG", "value": "False"},
    ]


def test_normalize_env_list_is_copied() -> None:
    item = {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
    out = normalize_env([item])
    assert out == [item]
    assert out is not None and out[0] is not item


def test_normalize_env_none_and_empty() -> None:
    assert normalize_env(None) is None
    assert normalize_env({}) == []
    assert normalize_env([]) == []
    assert "env" not in build_spec(req(env={}), pod=None)


# --------------------------------------------------------------------------- build_spec


def test_build_spec_without_pod() -> None:
    assert build_spec(req(command=["sleep", "3600"]), pod=None) == {
        "name": "debug",
        "image": BUSYBOX,
        "command": ["sleep", "3600"],
        "imagePullPolicy": "IfNotPresent",
        "terminationMessagePolicy": "File",
        "securityContext": {"capabilities": {"add": ["SYS_PTRACE"]}},
    }


def test_build_spec_every_option(volumes_pod: dict[str, Any]) -> None:
    spec = build_spec(
        req(
            image="busybox",
            command=["sh"],
            args=["-c", "sleep 1"],
            env={"A": "1"},
            target_container="sidecar",
            profile="netadmin",
            security_context={"runAsUser": 0},
            volume_mounts=[{"name": "cache", "mountPath": "/cache", "readOnly": True}],
            working_dir="/work",
            stdin=True,
            tty=True,
            image_pull_policy="Never",
            spec_override={"stdinOnce": True, "securityContext": {"capabilities": {"drop": ["MKNOD"]}}},
        ),
        volumes_pod,
    )
    assert spec == {
        "name": "debug",
        "image": "busybox",
        "command": ["sh"],
        "args": ["-c", "sleep 1"],
        "env": [{"name": "A", "value": "1"}],
        "workingDir": "/work",
        "stdin": True,
        "tty": True,
        "stdinOnce": True,
        "imagePullPolicy": "Never",
        "terminationMessagePolicy": "File",
        "securityContext": {"capabilities": {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["MKNOD"]}, "runAsUser": 0},
        "targetContainerName": "sidecar",
        "volumeMounts": [{"name": "cache", "mountPath": "/cache", "readOnly": True}],
    }


def test_build_spec_omits_false_and_empty_options() -> None:
    spec = build_spec(
        req(command=[], args=[], env=None, working_dir="", stdin=False, tty=False, volume_mounts=[], spec_override={}),
        pod=None,
    )
    assert sorted(spec) == ["image", "imagePullPolicy", "name", "securityContext", "terminationMessagePolicy"]


def test_build_spec_spec_override_replaces_lists_and_merges_mappings() -> None:
    spec = build_spec(
        req(
            command=["sleep", "1"],
            spec_override={
                "command": ["sh"],
                "securityContext": {"runAsUser": 1000},
                "terminationMessagePolicy": "FallbackToLogsOnError",
            },
        ),
        pod=None,
    )
    assert spec["command"] == ["sh"]
    assert spec["securityContext"] == {"capabilities": {"add": ["SYS_PTRACE"]}, "runAsUser": 1000}
    assert spec["terminationMessagePolicy"] == "FallbackToLogsOnError"


def test_build_spec_does_not_alias_request_values(volumes_pod: dict[str, Any]) -> None:
    request = req(
        command=["sleep"],
        volume_mounts=[{"name": "cache", "mountPath": "/cache"}],
        security_context={"capabilities": {"add": ["NET_ADMIN"]}},
        spec_override={"securityContext": {"seLinuxOptions": {"level": "s0"}}},
    )
    before = copy.deepcopy(request)
    spec = build_spec(request, volumes_pod)
    spec["command"].append("x")
    spec["volumeMounts"][0]["readOnly"] = True
    spec["securityContext"]["seLinuxOptions"]["level"] = "s1"
    assert request == before


def test_deep_merge() -> None:
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    override = {"a": {"c": [3], "e": {"f": 1}}, "g": None}
    merged = deep_merge(base, override)
    assert merged == {"a": {"b": 1, "c": [3], "e": {"f": 1}}, "d": 1, "g": None}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    merged["a"]["e"]["f"] = 2
    assert override["a"]["e"]["f"] == 1
    assert deep_merge({"a": 1}, {"a": {"b": 2}}) == {"a": {"b": 2}}
    assert deep_merge({"a": {"b": 2}}, {"a": 1}) == {"a": 1}


# --------------------------------------------------------------------------- target


@pytest.mark.parametrize(
    ("profile", "target", "expected"),
    [
        ("general", None, "app"),
        ("sysadmin", None, "app"),
        ("baseline", None, None),
        ("restricted", None, None),
        ("netadmin", None, None),
        ("legacy", None, None),
        ("general", "", None),
        ("sysadmin", "", None),
        ("general", "sidecar", "sidecar"),
        ("baseline", "sidecar", "sidecar"),
        ("restricted", "init", "init"),
    ],
)
def test_plan_pod_target_default(volumes_pod: dict[str, Any], profile: str, target: str | None, expected: str | None) -> None:
    plan = plan_pod(req(profile=profile, target_container=target), volumes_pod)
    assert plan.action == ADD, plan.msg
    assert plan.spec is not None
    assert plan.spec.get("targetContainerName") == expected
    assert ("targetContainerName" in plan.spec) == (expected is not None)
    assert effective_target(req(profile=profile, target_container=target), volumes_pod) == expected


def test_effective_target_without_pod() -> None:
    assert effective_target(req(profile="general"), None) is None
    assert effective_target(req(profile="general", target_container="app"), None) == "app"


def test_effective_target_pod_without_containers() -> None:
    assert effective_target(req(profile="general"), {"spec": {}}) is None


# --------------------------------------------------------------------------- plan_pod: add


def test_plan_pod_add_to_plain_pod(plain_pod: dict[str, Any]) -> None:
    plan = plan_pod(kubectl_debug_request(), plain_pod)
    assert plan == Plan(
        namespace=NS,
        pod="plain",
        action=ADD,
        msg="",
        spec={
            "name": "debug",
            "image": BUSYBOX,
            "command": ["sleep", "3600"],
            "imagePullPolicy": "IfNotPresent",
            "terminationMessagePolicy": "File",
            "securityContext": {"capabilities": {"add": ["SYS_PTRACE"]}},
            "targetContainerName": "app",
        },
        existing_names=[],
        differences=[],
        resource_version=plain_pod["metadata"]["resourceVersion"],
    )


def test_plan_pod_add_lists_existing_ephemeral_names(states_pod: dict[str, Any]) -> None:
    plan = plan_pod(req(profile="baseline"), states_pod)
    assert plan.action == ADD
    assert plan.existing_names == ["exited", "pull-fail", "fresh"]


def test_plan_pod_add_with_volume_mounts_of_existing_volumes(volumes_pod: dict[str, Any]) -> None:
    mounts = [{"name": "data", "mountPath": "/data"}, {"name": "cache", "mountPath": "/cache", "readOnly": True}]
    plan = plan_pod(req(volume_mounts=mounts), volumes_pod)
    assert plan.action == ADD, plan.msg
    assert plan.spec is not None and plan.spec["volumeMounts"] == mounts


def test_plan_pod_pending_pod_is_fine(plain_pod: dict[str, Any]) -> None:
    plain_pod["status"] = {"phase": "Pending"}
    assert plan_pod(req(), plain_pod).action == ADD
    del plain_pod["status"]
    assert plan_pod(req(), plain_pod).action == ADD


# --------------------------------------------------------------------------- plan_pod: existing containers


def test_kubectl_debug_container_is_unchanged(debugged_pod: dict[str, Any]) -> None:
    stored = debugged_pod["spec"]["ephemeralContainers"][0]
    plan = plan_pod(kubectl_debug_request(), debugged_pod)
    assert plan.action == UNCHANGED, plan.differences
    assert plan.msg == "already present with the same spec"
    assert plan.differences == []
    assert plan.existing_names == ["debug"]
    # The comparison had to normalise: the server filled in what the request leaves out.
    assert plan.spec is not None
    assert {k: stored[k] for k in ("resources", "terminationMessagePath")} == {
        "resources": {},
        "terminationMessagePath": "/dev/termination-log",
    }
    assert "resources" not in plan.spec and "terminationMessagePath" not in plan.spec


@pytest.mark.parametrize(
    "extra",
    [
        {"target_container": "app"},
        {"image_pull_policy": "IfNotPresent"},
        {"stdin": False, "tty": False},
        {"security_context": {"capabilities": {"add": ["SYS_PTRACE"]}}},
        {"env": {}, "args": [], "working_dir": ""},
        {"spec_override": {"terminationMessagePath": "/dev/termination-log", "resources": {}}},
    ],
)
def test_kubectl_debug_container_is_unchanged_for_equivalent_requests(debugged_pod: dict[str, Any], extra: dict[str, Any]) -> None:
    plan = plan_pod(kubectl_debug_request(**extra), debugged_pod)
    assert (plan.action, plan.differences) == (UNCHANGED, [])


def test_kubectl_debug_env_container_is_unchanged(states_pod: dict[str, Any]) -> None:
    # kubectl debug --env=KWOK_EXIT_CODE=3 --profile=baseline -- sh -c 'exit 3'; the mapping's int value becomes "3".
    request = req(container="exited", command=["sh", "-c", "exit 3"], env={"KWOK_EXIT_CODE": 3}, profile="baseline")
    plan = plan_pod(request, states_pod)
    assert (plan.action, plan.differences) == (UNCHANGED, [])


def test_rerun_of_what_plan_pod_added_is_unchanged(plain_pod: dict[str, Any]) -> None:
    request = req(
        image="busybox",
        command=["sleep", "1"],
        env=[{"name": "A", "value": ""}],
        profile="restricted",
        stdin=True,
        volume_mounts=[{"name": sa_volume(plain_pod), "mountPath": "/sa", "readOnly": False}],
    )
    added = plan_pod(request, plain_pod)
    assert added.action == ADD and added.spec is not None
    # Store it the way the API server does: defaults filled in, omitempty values dropped.
    stored = dict(added.spec, terminationMessagePath="/dev/termination-log", resources={}, env=[{"name": "A"}])
    plain_pod["spec"]["ephemeralContainers"] = [stored]
    again = plan_pod(request, plain_pod)
    assert (again.action, again.differences) == (UNCHANGED, [])


# The requests behind tests/unit/fixtures/pods/module-added.json: each was planned with plan_pod and sent as
# patch_body(...) to the 1.36.3 API server; the fixture is the pod as the server then stored it.
MODULE_ADDED_REQUESTS = {
    "full": req(
        container="full",
        command=["sh", "-c"],
        args=["sleep 3600"],
        env={"A": "1", "EMPTY": ""},
        profile="restricted",
        security_context={"runAsUser": 65534},
        copy_volume_mounts=True,
        target_container="app",
        volume_mounts=[{"name": "data", "mountPath": "/scratch", "readOnly": True}],
        working_dir="/tmp",
        stdin=True,
        tty=True,
        spec_override={"stdinOnce": True, "terminationMessagePolicy": "FallbackToLogsOnError"},
    ),
    "ro-false": req(
        container="ro-false",
        command=["sleep", "3600"],
        profile="baseline",
        volume_mounts=[{"name": "cache", "mountPath": "/cache", "readOnly": False}],
    ),
    "fieldref": req(
        container="fieldref",
        command=["sleep", "3600"],
        profile="baseline",
        env=[{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
    ),
}


def test_rerun_of_module_added_container_with_every_option_is_unchanged() -> None:
    pod = load_pod("module-added")
    stored = pod["spec"]["ephemeralContainers"][0]
    # What the server changed: env value "" dropped, resources and terminationMessagePath added.
    assert stored["env"] == [{"name": "A", "value": "1"}, {"name": "EMPTY"}]
    assert (stored["resources"], stored["terminationMessagePath"]) == ({}, "/dev/termination-log")
    plan = plan_pod(MODULE_ADDED_REQUESTS["full"], pod)
    assert (plan.action, plan.differences) == (UNCHANGED, [])
    assert plan.existing_names == ["full", "ro-false", "fieldref"]


def test_rerun_of_module_added_container_with_read_only_false_is_unchanged() -> None:
    pod = load_pod("module-added")
    assert pod["spec"]["ephemeralContainers"][1]["volumeMounts"] == [{"name": "cache", "mountPath": "/cache"}]
    plan = plan_pod(MODULE_ADDED_REQUESTS["ro-false"], pod)
    # Today: CONFLICT, "volumeMounts: existing [{'name': 'cache', 'mountPath': '/cache'}], requested [{..., 'readOnly': False}]"
    assert (plan.action, plan.differences) == (UNCHANGED, [])


def test_rerun_of_module_added_container_with_field_ref_env_is_unchanged() -> None:
    pod = load_pod("module-added")
    assert pod["spec"]["ephemeralContainers"][2]["env"] == [{"name": "POD_IP", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}}]
    plan = plan_pod(MODULE_ADDED_REQUESTS["fieldref"], pod)
    assert (plan.action, plan.differences) == (UNCHANGED, [])


def test_conflict_when_image_differs(debugged_pod: dict[str, Any]) -> None:
    plan = plan_pod(kubectl_debug_request(image="docker.io/library/busybox:1.37"), debugged_pod)
    diff = "image: existing 'docker.io/library/busybox:1.36', requested 'docker.io/library/busybox:1.37'"
    assert plan.action == CONFLICT
    assert plan.differences == [diff]
    assert plan.msg == (
        f"pod {NS}/debugged already has an ephemeral container 'debug' with another spec, and ephemeral containers can "
        f"never be changed: use another container name to add a new one. Differences: {diff}"
    )
    assert plan.existing_names == ["debug"]
    assert plan.spec is not None and plan.spec["image"] == "docker.io/library/busybox:1.37"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            {"image": "docker.io/library/busybox:latest"},
            [
                "image: existing 'docker.io/library/busybox:1.36', requested 'docker.io/library/busybox:latest'",
                "imagePullPolicy: existing 'IfNotPresent', requested 'Always'",
            ],
        ),
        (
            {"profile": "netadmin", "target_container": "app"},
            ["securityContext.capabilities.add: existing ['SYS_PTRACE'], requested ['NET_ADMIN', 'NET_RAW']"],
        ),
        (
            {"profile": "baseline"},
            [
                "securityContext: existing {'capabilities': {'add': ['SYS_PTRACE']}}, requested None",
                "targetContainerName: existing 'app', requested None",
            ],
        ),
        ({"command": None}, ["command: existing ['sleep', '3600'], requested None"]),
        ({"tty": True, "stdin": True}, ["stdin: existing None, requested True", "tty: existing None, requested True"]),
        ({"env": {"A": "1"}}, ["env: existing None, requested [{'name': 'A', 'value': '1'}]"]),
    ],
)
def test_conflict_differences_are_readable(debugged_pod: dict[str, Any], extra: dict[str, Any], expected: list[str]) -> None:
    plan = plan_pod(kubectl_debug_request(**extra), debugged_pod)
    assert plan.action == CONFLICT
    assert plan.differences == expected
    assert plan.msg.endswith("Differences: " + "; ".join(expected))


def test_kubectl_debug_container_with_latest_digest_is_unchanged(latest_digest_pod: dict[str, Any]) -> None:
    plan = plan_pod(kubectl_debug_request(image=f"docker.io/library/busybox:latest@{DIGEST}"), latest_digest_pod)
    # Today: CONFLICT, differences ["imagePullPolicy: existing 'Always', requested 'IfNotPresent'"].
    assert (plan.action, plan.differences) == (UNCHANGED, [])


@pytest.mark.parametrize(
    ("phase", "deleting"),
    [("Succeeded", False), ("Failed", False), ("Running", True), ("Succeeded", True)],
)
def test_existing_container_unchanged_or_conflict_whatever_the_pod_state(debugged_pod: dict[str, Any], phase: str, deleting: bool) -> None:
    # The fixture is Running; phase and deletionTimestamp are edited here.
    debugged_pod["status"]["phase"] = phase
    if deleting:
        debugged_pod["metadata"]["deletionTimestamp"] = "2026-11-25T09:30:00Z"
    assert plan_pod(kubectl_debug_request(), debugged_pod).action == UNCHANGED
    assert plan_pod(kubectl_debug_request(image="busybox:1.37"), debugged_pod).action == CONFLICT


# --------------------------------------------------------------------------- plan_pod: refusals


def test_refuse_name_of_regular_container(plain_pod: dict[str, Any]) -> None:
    plan = plan_pod(req(container="app"), plain_pod)
    assert plan == Plan(
        namespace=NS,
        pod="plain",
        action=REFUSE,
        msg=refusal(
            "plain",
            "the pod already has a regular container named 'app'; names must be unique across containers, init containers "
            "and ephemeral containers: choose another container name",
            container="app",
        ),
    )


def test_refuse_name_of_init_container(volumes_pod: dict[str, Any]) -> None:
    plan = plan_pod(req(container="init"), volumes_pod)
    assert plan.action == REFUSE
    assert plan.msg == refusal(
        "with-volumes",
        "the pod already has a regular init container named 'init'; names must be unique across containers, init "
        "containers and ephemeral containers: choose another container name",
        container="init",
    )


def test_refuse_missing_target(volumes_pod: dict[str, Any]) -> None:
    plan = plan_pod(req(target_container="nope"), volumes_pod)
    assert plan.action == REFUSE
    assert plan.msg == refusal("with-volumes", "target_container 'nope' does not exist in the pod (containers: app, sidecar, init)")


def test_refuse_target_that_is_an_ephemeral_container(states_pod: dict[str, Any]) -> None:
    plan = plan_pod(req(target_container="fresh"), states_pod)
    assert plan.action == REFUSE
    assert plan.msg == refusal("states", "target_container 'fresh' does not exist in the pod (containers: states)")


def test_refuse_mirror_pod(mirror_pod: dict[str, Any]) -> None:
    plan = plan_pod(req(), mirror_pod)
    assert plan.action == REFUSE
    assert plan.msg == refusal(
        "static-web-node-000000",
        "it is a static (mirror) pod, which does not support ephemeral containers: debug the node "
        "(kubectl debug node/<node>) or edit the static pod's manifest",
    )


def test_refuse_succeeded_pod(succeeded_pod: dict[str, Any]) -> None:
    assert succeeded_pod["status"]["phase"] == "Succeeded"
    plan = plan_pod(req(), succeeded_pod)
    assert plan.action == REFUSE
    assert plan.msg == refusal(
        "done-wg7q2",
        "the pod has phase Succeeded and the kubelet never starts containers in a finished pod: debug a copy of it instead (kubectl debug --copy-to)",
    )


def test_refuse_failed_pod(succeeded_pod: dict[str, Any]) -> None:
    succeeded_pod["status"]["phase"] = "Failed"  # edited: KWOK only completes Job pods successfully
    plan = plan_pod(req(), succeeded_pod)
    assert plan.action == REFUSE
    assert plan.msg == refusal(
        "done-wg7q2",
        "the pod has phase Failed and the kubelet never starts containers in a finished pod: debug a copy of it instead (kubectl debug --copy-to)",
    )


def test_refuse_terminating_pod(terminating_pod: dict[str, Any]) -> None:
    assert terminating_pod["status"]["phase"] == "Running"
    plan = plan_pod(req(), terminating_pod)
    assert plan.action == REFUSE
    assert plan.msg == refusal("terminating", "the pod is being deleted, so the container would never start")


def test_refusal_order_deleting_before_phase(succeeded_pod: dict[str, Any]) -> None:
    succeeded_pod["metadata"]["deletionTimestamp"] = "2026-11-25T09:30:00Z"
    assert plan_pod(req(), succeeded_pod).msg == refusal("done-wg7q2", "the pod is being deleted, so the container would never start")


@pytest.mark.parametrize(
    ("profile", "security_context", "fields"),
    [
        ("general", None, "capabilities"),
        ("netadmin", None, "capabilities"),
        ("sysadmin", None, "privileged"),
        ("restricted", None, "capabilities, seccompProfile, allowPrivilegeEscalation"),
        ("baseline", {"runAsUser": 0, "readOnlyRootFilesystem": True}, "runAsUser, readOnlyRootFilesystem"),
    ],
)
def test_refuse_linux_only_security_context_on_windows(windows_pod: dict[str, Any], profile: str, security_context: Any, fields: str) -> None:
    plan = plan_pod(req(profile=profile, security_context=security_context), windows_pod)
    assert plan.action == REFUSE
    assert plan.msg == refusal(
        "windows",
        f"it is a Windows pod, which refuses the Linux-only securityContext field(s) {fields} "
        f"(set by profile {profile!r} or security_context): use profile: baseline",
    )


@pytest.mark.parametrize("security_context", [None, {"windowsOptions": {"runAsUserName": "ContainerUser"}}, {"runAsNonRoot": True}])
def test_add_baseline_on_windows(windows_pod: dict[str, Any], security_context: Any) -> None:
    plan = plan_pod(
        req(image="mcr.microsoft.com/windows/nanoserver:ltsc2022", profile="baseline", security_context=security_context),
        windows_pod,
    )
    assert plan.action == ADD, plan.msg
    assert plan.spec is not None
    assert plan.spec.get("securityContext") == security_context
    assert "targetContainerName" not in plan.spec


def test_refuse_volume_mount_of_missing_volume(volumes_pod: dict[str, Any]) -> None:
    plan = plan_pod(
        req(volume_mounts=[{"name": "data", "mountPath": "/data"}, {"name": "scratch", "mountPath": "/scratch"}]),
        volumes_pod,
    )
    assert plan.action == REFUSE
    assert plan.msg == refusal(
        "with-volumes",
        f"volume_mounts names volume 'scratch', which the pod does not have (volumes: cache, config, data, {sa_volume(volumes_pod)}); "
        "ephemeral containers cannot add volumes",
    )


def test_refuse_volume_mount_in_pod_without_volumes(plain_pod: dict[str, Any]) -> None:
    del plain_pod["spec"]["volumes"]
    plan = plan_pod(req(volume_mounts=[{"name": "data", "mountPath": "/data"}]), plain_pod)
    assert plan.msg == refusal(
        "plain",
        "volume_mounts names volume 'data', which the pod does not have (volumes: none); ephemeral containers cannot add volumes",
    )


def test_refuse_volume_mount_from_spec_override(plain_pod: dict[str, Any]) -> None:
    plan = plan_pod(req(spec_override={"volumeMounts": [{"name": "data", "mountPath": "/data"}]}), plain_pod)
    assert plan.action == REFUSE
    assert "spec_override.volumeMounts names volume 'data', which the pod does not have" in plan.msg


# --------------------------------------------------------------------------- copy_volume_mounts


def test_copy_volume_mounts_skips_subpath(volumes_pod: dict[str, Any]) -> None:
    plan = plan_pod(req(copy_volume_mounts=True), volumes_pod)
    assert plan.action == ADD, plan.msg
    assert plan.spec is not None
    assert plan.spec["targetContainerName"] == "app"
    assert plan.spec["volumeMounts"] == [
        {"mountPath": "/data", "name": "data"},
        {"mountPath": "/etc/app", "name": "config", "readOnly": True},
        {
            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
            "name": sa_volume(volumes_pod),
            "readOnly": True,
        },
    ]
    assert copied_mounts(volumes_pod, "app")[1] == ["/var/log/app"]


def test_copy_volume_mounts_explicit_mount_wins_on_same_path(volumes_pod: dict[str, Any]) -> None:
    plan = plan_pod(req(copy_volume_mounts=True, volume_mounts=[{"name": "cache", "mountPath": "/data"}]), volumes_pod)
    assert plan.action == ADD, plan.msg
    assert plan.spec is not None
    assert plan.spec["volumeMounts"] == [
        {"mountPath": "/etc/app", "name": "config", "readOnly": True},
        {
            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
            "name": sa_volume(volumes_pod),
            "readOnly": True,
        },
        {"name": "cache", "mountPath": "/data"},
    ]


@pytest.mark.parametrize(("target", "paths"), [("sidecar", ["/cache"]), ("init", ["/data"])])
def test_copy_volume_mounts_of_named_target(volumes_pod: dict[str, Any], target: str, paths: list[str]) -> None:
    plan = plan_pod(req(profile="baseline", target_container=target, copy_volume_mounts=True), volumes_pod)
    assert plan.action == ADD, plan.msg
    assert plan.spec is not None
    assert [m["mountPath"] for m in plan.spec["volumeMounts"]] == [
        *paths,
        "/var/run/secrets/kubernetes.io/serviceaccount",
    ]


@pytest.mark.parametrize("extra", [{"profile": "baseline"}, {"profile": "general", "target_container": ""}])
def test_copy_volume_mounts_without_target_is_refused(extra: dict[str, Any]) -> None:
    # baseline targets nothing (and "" opts out), so there is no container to copy mounts from.
    with pytest.raises(KubedebugError) as excinfo:
        validate_request(req(copy_volume_mounts=True, **extra))
    assert excinfo.value.msg == (
        "copy_volume_mounts copies the target container's mounts, but there is no target: set target_container, "
        "or use profile general or sysadmin, which target the pod's first container"
    )


def test_copied_mounts_keeps_only_volume_mount_fields() -> None:
    pod = {
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "volumeMounts": [
                        {
                            "name": "a",
                            "mountPath": "/a",
                            "readOnly": True,
                            "mountPropagation": "HostToContainer",
                            "recursiveReadOnly": "Enabled",
                            "futureKey": 1,
                        },
                        {"name": "b", "mountPath": "/b", "subPathExpr": "$(POD_NAME)"},
                        {"name": "c", "mountPath": "/c", "subPath": ""},
                    ],
                }
            ]
        }
    }
    assert copied_mounts(pod, "app") == (
        [
            {
                "name": "a",
                "mountPath": "/a",
                "readOnly": True,
                "mountPropagation": "HostToContainer",
                "recursiveReadOnly": "Enabled",
            },
            {"name": "c", "mountPath": "/c"},
        ],
        ["/b"],
    )
    assert copied_mounts(pod, None) == ([], [])
    assert copied_mounts(pod, "missing") == ([], [])


# --------------------------------------------------------------------------- plan_pods


def test_plan_pods_orders_by_namespace_then_name(plain_pod: dict[str, Any]) -> None:
    pods = []
    for namespace, name in [("b", "web-2"), ("a", "web-9"), ("b", "web-1"), ("a", "web-10")]:
        pod = copy.deepcopy(plain_pod)
        pod["metadata"].update(namespace=namespace, name=name)
        pods.append(pod)
    assert [(p.namespace, p.pod) for p in plan_pods(req(), pods)] == [
        ("a", "web-10"),
        ("a", "web-9"),
        ("b", "web-1"),
        ("b", "web-2"),
    ]


def test_plan_pods_over_every_recorded_pod() -> None:
    pods = [load_pod(name) for name in POD_FIXTURES if name != "ephemeral-states-early"]  # same pod as ephemeral-states
    plans = plan_pods(kubectl_debug_request(), reversed(pods))
    assert [(p.pod, p.action) for p in plans] == [
        ("debugged", UNCHANGED),
        ("digest", CONFLICT),
        ("done-wg7q2", REFUSE),
        ("plain", ADD),
        ("states", ADD),
        ("static-web-node-000000", REFUSE),
        ("terminating", REFUSE),
        ("windows", REFUSE),
        ("with-volumes", ADD),
        ("rerun", ADD),  # namespace unit-fixtures-rerun sorts after unit-fixtures
    ]
    assert [p.namespace for p in plans] == [NS] * 9 + ["unit-fixtures-rerun"]


def test_plan_pods_empty() -> None:
    assert plan_pods(req(), []) == []


# --------------------------------------------------------------------------- patch_body


def test_patch_body_appends_after_existing() -> None:
    spec = {"name": "debug", "image": BUSYBOX}
    body = patch_body(["exited", "pull-fail", "fresh"], spec)
    assert body == {
        "spec": {
            "$setElementOrder/ephemeralContainers": [
                {"name": "exited"},
                {"name": "pull-fail"},
                {"name": "fresh"},
                {"name": "debug"},
            ],
            "ephemeralContainers": [{"name": "debug", "image": BUSYBOX}],
        }
    }
    assert body["spec"]["ephemeralContainers"][0] is not spec


def test_patch_body_first_container() -> None:
    assert patch_body([], {"name": "debug"}) == {
        "spec": {
            "$setElementOrder/ephemeralContainers": [{"name": "debug"}],
            "ephemeralContainers": [{"name": "debug"}],
        }
    }


def test_patch_body_with_resource_version_is_a_precondition() -> None:
    body = patch_body([], {"name": "debug"}, "4711")
    assert body["metadata"] == {"resourceVersion": "4711"}
    assert "metadata" not in patch_body([], {"name": "debug"})


def test_patch_body_never_lists_a_name_twice() -> None:
    order = patch_body(["debug", "other"], {"name": "debug"})["spec"]["$setElementOrder/ephemeralContainers"]
    assert order == [{"name": "other"}, {"name": "debug"}]


def test_patch_body_from_plan(states_pod: dict[str, Any]) -> None:
    plan = plan_pod(req(profile="baseline"), states_pod)
    assert plan.spec is not None
    body = patch_body(plan.existing_names, plan.spec)
    assert [e["name"] for e in body["spec"]["$setElementOrder/ephemeralContainers"]] == [
        "exited",
        "pull-fail",
        "fresh",
        "debug",
    ]
    assert body["spec"]["ephemeralContainers"] == [plan.spec]


# --------------------------------------------------------------------------- normalisation and differences


def test_normalized_fills_defaults_and_drops_empty_values() -> None:
    assert normalized(
        {
            "name": "d",
            "image": "busybox",
            "stdin": False,
            "tty": True,
            "resources": {},
            "env": [],
            "workingDir": "",
            "securityContext": {"capabilities": {}},
        }
    ) == {
        "name": "d",
        "image": "busybox",
        "tty": True,
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "Always",
    }


def test_normalized_keeps_false_outside_omitempty_bools() -> None:
    out = normalized(
        {
            "name": "d",
            "image": "b:1",
            "securityContext": {"privileged": False},
            "stdinOnce": False,
            "stdin": False,
            "tty": False,
        }
    )
    assert out["securityContext"] == {"privileged": False}  # a *bool in the API: false is kept
    assert not {"stdin", "stdinOnce", "tty"} & set(out)  # plain omitempty bools: false is dropped


def test_normalized_keeps_explicit_values() -> None:
    spec = {
        "name": "d",
        "image": "b",
        "imagePullPolicy": "Never",
        "terminationMessagePath": "/t",
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    assert normalized(spec) == spec


def test_differences_nested_paths() -> None:
    old = {"a": 1, "s": {"c": {"add": ["X"]}, "u": 1}, "l": [1]}
    new = {"a": 1, "s": {"c": {"add": ["Y"]}}, "l": [1, 2], "n": "x"}
    assert differences(old, new) == [
        "l: existing [1], requested [1, 2]",
        "n: existing None, requested 'x'",
        "s.c.add: existing ['X'], requested ['Y']",
        "s.u: existing 1, requested None",
    ]
    assert differences(new, new) == []


# --------------------------------------------------------------------------- audit annotation


def test_audit_annotation_records_who_what_when_and_why() -> None:
    assert AUDIT_ANNOTATION_PREFIX == "debug.kubedebug.io/"
    annotation = audit_annotation("debug", "docker.io/library/busybox:1.36", "jane", "INC-42", "2026-11-25T09:09:14Z")
    assert annotation == {
        "debug.kubedebug.io/debug": ('{"at": "2026-11-25T09:09:14Z", "by": "jane", "image": "docker.io/library/busybox:1.36", "reason": "INC-42"}')
    }


def test_audit_annotation_unknown_user_and_no_reason() -> None:
    (value,) = audit_annotation("kd-dns", "busybox:1.36", None, None, "2026-11-25T09:09:14Z").values()
    assert json.loads(value) == {"by": "unknown", "at": "2026-11-25T09:09:14Z", "image": "busybox:1.36", "reason": ""}
