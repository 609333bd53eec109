# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Generated arguments for the three modules, each run through its real ``main()`` against the fake API server.

A case starts from arguments the module accepts, changes one option (under its name or an alias) to a valid or a
hostile value, and runs ``main()`` in-process: AnsibleModule's argument validation, ``run_module``, the request's
checks, the manager and the HTTP calls on loopback (apiserver.py). The properties (harness.py):

1. never a traceback: ``exit_json``, or ``fail_json`` with a message - never an exception out of ``main()`` and never
   ``run_module``'s ``unexpected error``;
2. a refusal names the option that was changed (its name or alias);
3. a valid value is accepted.

``test_selection_combinations`` changes the selection as a whole (several of pod, namespace, label_selector,
field_selector and all_namespaces at once, some conflicting): a refusal names one of the options given, or, for a
pod-level failure, the pod and its namespace.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.kubedebug.ephemeral.plugins.modules import ephemeral_container, ephemeral_container_info, pod_snapshot_info
from ansible_collections.kubedebug.ephemeral.tests.unit.property.apiserver import NS, property_apiserver
from ansible_collections.kubedebug.ephemeral.tests.unit.property.harness import (
    assert_names,
    assert_ok,
    mentions,
    module_context,
    pod_level,
    property_settings,
    record,
    run_module,
)
from ansible_collections.kubedebug.ephemeral.tests.unit.property.strategies import (
    ANY_TEXT,
    BAD_FIELD_SELECTOR,
    BAD_LABEL_SELECTOR,
    BOOL_WORDS,
    CONTROL_TEXT,
    DNS_LABEL,
    FIELD_SELECTOR,
    HOSTILE,
    HUGE_INT,
    LABEL_SELECTOR,
    LONG_TEXT,
    NOT_DNS_LABEL,
    NUMBER_WORDS,
    Change,
    Option,
    changes,
    hostile_list,
    str_lists,
)

pytestmark = pytest.mark.stress

BUSYBOX = "docker.io/library/busybox:1.36"
POD = "with-volumes"  # containers app and sidecar, init container init, volumes data, cache and config
VOLUMES = ("data", "cache", "config")
TARGETS = ("app", "sidecar", "init")

# --------------------------------------------------------------------------- strategies shared by the modules

TRUE_OR_FALSE = st.booleans() | st.sampled_from(["yes", "no", "true", "false", "on", "off", "1", "0", "True", "n"])
IMAGE = st.from_regex(r"\A[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*){0,2}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,20})?(@sha256:[0-9a-f]{64})?\Z")
NAMES_IN_NAMESPACE = st.sampled_from(["plain", "debugged", "states", POD])


def selection_options(*, modules_pod: bool = True) -> list[Option]:
    """The selection model's options (doc fragment kubedebug.ephemeral.selection), against a base that names one pod."""
    pods = [
        Option(
            "pod",
            st.one_of(NAMES_IN_NAMESPACE, st.lists(NAMES_IN_NAMESPACE, min_size=1, max_size=3), NAMES_IN_NAMESPACE.map(lambda p: [f"{NS}/{p}"])),
            st.one_of(
                hostile_list(st.one_of(NOT_DNS_LABEL, st.sampled_from(["a/b/c", "/x", "ns/", "/", " ", "missing", f"{NS}/missing"]))),
                st.sampled_from(["a/b/c", "/x", "ns/", f"{NS}/"]),
            ),
            aliases=("name",),
        )
    ]
    return [
        *(pods if modules_pod else []),
        Option("namespace", st.sampled_from([NS, [NS], [NS, NS]]), hostile_list(st.one_of(NOT_DNS_LABEL, LONG_TEXT, st.just("a/b")))),
    ]


def container_options() -> list[Option]:
    env_name = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,20}\Z")
    env_value = st.one_of(ANY_TEXT, st.integers(-(10**6), 10**6), st.booleans())
    security_context = st.fixed_dictionaries(
        {},
        optional={
            "runAsUser": st.integers(0, 2**31 - 1),
            "runAsNonRoot": st.booleans(),
            "readOnlyRootFilesystem": st.booleans(),
            "capabilities": st.fixed_dictionaries({}, optional={"add": st.lists(st.sampled_from(["NET_ADMIN", "SYS_PTRACE"])), "drop": st.just(["ALL"])}),
        },
    )
    mount = st.fixed_dictionaries(
        {"name": st.sampled_from(VOLUMES), "mountPath": st.from_regex(r"\A/[a-z0-9/_.-]{0,30}\Z")},
        optional={"readOnly": st.booleans()},
    )
    override = st.fixed_dictionaries(
        {},
        optional={
            "stdin": st.booleans(),
            "stdinOnce": st.booleans(),
            "terminationMessagePath": st.from_regex(r"\A/[a-z/-]{1,20}\Z"),
            "terminationMessagePolicy": st.sampled_from(["File", "FallbackToLogsOnError"]),
            "workingDir": st.from_regex(r"\A/[a-z/]{0,20}\Z"),
            "env": st.lists(st.fixed_dictionaries({"name": env_name, "value": ANY_TEXT}), max_size=3),
            "command": str_lists(),
            "securityContext": security_context,
            "volumeMounts": st.lists(mount, max_size=2, unique_by=lambda m: m["mountPath"]),
        },
    )
    bad_mount = st.one_of(
        st.dictionaries(st.sampled_from(["name", "mountPath", "subPath", "subPathExpr", "readOnly", "x"]), HOSTILE, max_size=4),
        mount.map(lambda m: dict(m, subPath="logs")),
        mount.map(lambda m: dict(m, name="nope")),
        mount.map(lambda m: dict(m, mountPath=["a"])),
        mount.map(lambda m: dict(m, mountPath={"a": 1})),
    )
    bad_override = st.one_of(
        st.dictionaries(st.sampled_from(["ports", "resources", "livenessProbe", "lifecycle", "restartPolicy", "resizePolicy", "name", "image",
                                         "targetContainerName", "unknownField", "", "Ünïcode", "volumeMounts", "env", "securityContext"]),
                        HOSTILE, min_size=1, max_size=3),
        st.builds(lambda v: {"volumeMounts": v}, st.one_of(ANY_TEXT, st.lists(st.one_of(ANY_TEXT, HUGE_INT, bad_mount), min_size=1, max_size=3))),
        override.map(lambda o: dict(o, resources={"limits": {"cpu": "1"}})),
    )  # fmt: skip
    return [
        Option("container", DNS_LABEL.filter(lambda n: n not in TARGETS), NOT_DNS_LABEL),
        Option("image", IMAGE, st.one_of(st.sampled_from(["", " ", f" {BUSYBOX}", f"{BUSYBOX}\n"]), CONTROL_TEXT, LONG_TEXT)),
        Option("command", str_lists(), hostile_list(HOSTILE)),
        Option("args", str_lists(), hostile_list(HOSTILE)),
        Option(
            "env",
            st.dictionaries(env_name, env_value, max_size=4) | st.lists(st.fixed_dictionaries({"name": env_name, "value": ANY_TEXT}), max_size=3),
            st.one_of(
                st.lists(st.one_of(ANY_TEXT, st.dictionaries(st.sampled_from(["name", "value", "valueFrom"]), HOSTILE, max_size=3)), min_size=1, max_size=3),
                ANY_TEXT,
                HUGE_INT,
            ),
        ),
        Option("target_container", st.sampled_from([*TARGETS, ""]), st.one_of(NOT_DNS_LABEL, DNS_LABEL)),
        Option(
            "profile", st.sampled_from(["general", "baseline", "restricted", "netadmin", "sysadmin", "legacy"]), st.sampled_from(["GENERAL", "", "privileged"])
        ),
        Option("security_context", security_context, st.one_of(st.sampled_from(["runAsUser=0", "privileged"]), st.lists(HOSTILE, max_size=2))),
        Option("volume_mounts", st.lists(mount, max_size=3, unique_by=lambda m: m["mountPath"]), st.lists(bad_mount, min_size=1, max_size=3)),
        Option("copy_volume_mounts", TRUE_OR_FALSE, BOOL_WORDS),
        Option("working_dir", st.from_regex(r"\A/[a-z/]{0,20}\Z"), st.one_of(CONTROL_TEXT, LONG_TEXT)),
        Option("stdin", TRUE_OR_FALSE, BOOL_WORDS),
        Option("tty", st.just(False), st.just(True) | BOOL_WORDS, extra_names=("stdin",)),
        Option("image_pull_policy", st.sampled_from(["Always", "IfNotPresent", "Never"]), st.sampled_from(["always", "", "Sometimes"])),
        Option("spec_override", override, bad_override),
        Option("on_conflict", st.sampled_from(["warn", "fail"]), st.sampled_from(["WARN", "ignore", ""])),
        Option(
            "allowed_images",
            st.sampled_from([[], [".*"], [r"docker\.io/.*"], [r"nomatch", r".*"]]),
            st.lists(st.one_of(st.sampled_from(["(", "[", "*", "a{2,1}", "(?P<x>", "nomatch", r"\\"]), ANY_TEXT), min_size=1, max_size=3),
            extra_names=("image",),
        ),
        Option("wait", st.sampled_from(["none", "running", "terminated"]), st.sampled_from(["Running", "yes", ""])),
        Option("wait_timeout", st.integers(1, 604800), st.one_of(st.integers(max_value=0), st.integers(604801, 10**7), HUGE_INT, NUMBER_WORDS)),
        Option("parallel", st.integers(1, 1000), st.one_of(st.integers(max_value=0), HUGE_INT, NUMBER_WORDS)),
        Option("annotate", TRUE_OR_FALSE, BOOL_WORDS),
        Option("reason", st.one_of(st.none(), ANY_TEXT, LONG_TEXT), CONTROL_TEXT),
    ]


def limit_options() -> list[Option]:
    return [
        Option("tail_lines", st.integers(1, 10**6), st.one_of(st.integers(max_value=0), HUGE_INT, NUMBER_WORDS)),
        Option("limit_bytes", st.integers(1, 10**9), st.one_of(st.integers(max_value=0), HUGE_INT, NUMBER_WORDS)),
        Option("parallel", st.integers(1, 1000), st.one_of(st.integers(max_value=0), HUGE_INT, NUMBER_WORDS)),
    ]


# Each module: its main(), the arguments it accepts, and its options.
MODULES: dict[str, tuple[Callable[[], None], dict[str, Any], list[Option]]] = {
    "ephemeral_container": (
        ephemeral_container.main,
        {"namespace": NS, "pod": [POD], "container": "kd-prop", "image": BUSYBOX},
        [*selection_options(), *container_options()],
    ),
    "ephemeral_container_info": (
        ephemeral_container_info.main,
        # wait_timeout 0: a case that changes wait_for looks once, and does not wait for containers that never finish
        {"namespace": NS, "pod": ["states"], "wait_timeout": 0},
        [
            *selection_options(),
            Option("container", str_lists(st.sampled_from(["exited", "pull-fail", "fresh"])), hostile_list(HOSTILE)),
            Option("wait_for", st.sampled_from(["none", "running", "terminated"]), st.sampled_from(["Running", "yes", ""])),
            Option("wait_timeout", st.integers(0, 604800), st.one_of(st.integers(max_value=-1), st.integers(604801, 10**7), HUGE_INT, NUMBER_WORDS)),
            Option("logs", TRUE_OR_FALSE, BOOL_WORDS),
            Option("parse", st.sampled_from(["raw", "lines", "json", "json_lines"]), st.sampled_from(["JSON", "yaml", ""])),
            *limit_options(),
        ],
    ),
    "pod_snapshot_info": (
        pod_snapshot_info.main,
        {"namespace": NS, "pod": [POD, "states"]},
        [
            *selection_options(),
            Option("events_limit", st.integers(0, 10**6), st.one_of(st.integers(max_value=-1), HUGE_INT, NUMBER_WORDS)),
            Option("logs", TRUE_OR_FALSE, BOOL_WORDS),
            *limit_options(),
        ],
    ),
}

# Selectors replace the base's named pods (they may not be combined with them).
SELECTORS = [
    Option(
        "label_selector",
        LABEL_SELECTOR | st.lists(LABEL_SELECTOR, min_size=1, max_size=2),
        BAD_LABEL_SELECTOR | hostile_list(BAD_LABEL_SELECTOR),
        aliases=("label_selectors",),
    ),
    Option(
        "field_selector",
        FIELD_SELECTOR | st.lists(FIELD_SELECTOR, min_size=1, max_size=2),
        BAD_FIELD_SELECTOR | hostile_list(BAD_FIELD_SELECTOR),
        aliases=("field_selectors",),
    ),
]


@pytest.mark.parametrize("name", sorted(MODULES))
def test_one_option_changed(name: str) -> None:
    main, base, options = MODULES[name]
    test = f"modules[{name}]: one option"

    with property_apiserver() as (server, cluster), module_context(lambda module: server.client()):

        @property_settings(small=40, full=1200)
        @given(change=changes(options + SELECTORS))
        def check(change: Change) -> None:
            cluster.reset()
            args = dict(base)
            if change.option in SELECTORS:
                args.pop("pod")
            args[change.key] = change.value
            answer = record(test, run_module(main, args))
            assert_names(answer, change.option.names, case=change)
            if change.valid:
                assert_ok(answer, case=change)

        check()


def mostly(plausible: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Three times in four a plausible value, else a hostile one: with five options at once, some cases must pass."""
    return st.integers(0, 3).flatmap(lambda i: HOSTILE if i == 0 else plausible)


SELECTION_VALUES = {
    "pod": mostly(st.one_of(NAMES_IN_NAMESPACE, st.lists(st.one_of(NAMES_IN_NAMESPACE, NAMES_IN_NAMESPACE.map(lambda p: f"{NS}/{p}")), max_size=3))),
    "name": mostly(NAMES_IN_NAMESPACE),
    "namespace": mostly(st.sampled_from([NS, [NS], "other", [NS, "other"], [], ""])),
    "label_selector": mostly(st.one_of(LABEL_SELECTOR, BAD_LABEL_SELECTOR, st.just(""))),
    "label_selectors": mostly(st.lists(LABEL_SELECTOR, max_size=2)),
    "field_selector": mostly(st.one_of(FIELD_SELECTOR, BAD_FIELD_SELECTOR, st.just(""))),
    "field_selectors": mostly(st.lists(FIELD_SELECTOR, max_size=2)),
    "all_namespaces": mostly(TRUE_OR_FALSE),
}
SELECTION_NAMES = ("pod", "name", "namespace", "label_selector", "label_selectors", "field_selector", "field_selectors", "all_namespaces")


@pytest.mark.parametrize("name", sorted(MODULES))
def test_selection_combinations(name: str) -> None:
    main, base, _options = MODULES[name]
    test = f"modules[{name}]: selection"
    rest = {k: v for k, v in base.items() if k not in ("pod", "namespace")}

    with property_apiserver() as (server, cluster), module_context(lambda module: server.client()):

        @property_settings(small=25, full=800)
        # One to three of the options at once: with more, nearly every case conflicts and none shows what passes.
        @given(
            selection=st.sets(st.sampled_from(sorted(SELECTION_VALUES)), max_size=3).flatmap(
                lambda keys: st.fixed_dictionaries({k: SELECTION_VALUES[k] for k in keys})
            )
        )
        def check(selection: dict[str, Any]) -> None:
            cluster.reset()
            answer = record(test, run_module(main, {**rest, **selection}))
            assert answer.kind != "traceback", f"traceback for {selection!r}: {answer.msg}\n{answer.detail or ''}"
            if answer.kind == "refused":
                assert mentions(answer.msg, SELECTION_NAMES) or pod_level(answer.msg), (
                    f"the message names no selection option nor pod for {selection!r}: {answer.msg}"
                )

        check()


UNKNOWN = st.from_regex(r"\A[a-z][a-z0-9_]{0,15}\Z")


@pytest.mark.parametrize("name", sorted(MODULES))
def test_unknown_option(name: str) -> None:
    main, base, _options = MODULES[name]
    spec = {"ephemeral_container": ephemeral_container, "ephemeral_container_info": ephemeral_container_info, "pod_snapshot_info": pod_snapshot_info}[
        name
    ].argument_spec()
    known = {alias for option, definition in spec.items() for alias in (option, *definition.get("aliases", []))}
    test = f"modules[{name}]: unknown option"

    with property_apiserver() as (server, cluster), module_context(lambda module: server.client()):

        @property_settings(small=5, full=100)
        @given(key=UNKNOWN.filter(lambda k: k not in known), value=HOSTILE)
        def check(key: str, value: Any) -> None:
            cluster.reset()
            answer = record(test, run_module(main, {**base, key: value}))
            assert answer.kind == "refused", f"{key}={value!r}: {answer}"
            assert_names(answer, [key], case=(key, value))

        check()
