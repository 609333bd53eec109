# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for plugins/module_utils/_selection.py: the selection options, pod references, ``selection_from`` and ``select``.

``select`` is also exercised through the managers (test_results.py, test_snapshot.py) and
the front ends (tests/unit/plugins/modules, tests/unit/plugins/lookup).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from ansible_collections.kubedebug.ephemeral.plugins.doc_fragments.selection import ModuleDocFragment
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._errors import KubedebugError
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._selection import (
    SELECTION_ARG_SPEC,
    SELECTION_MUTUALLY_EXCLUSIVE,
    Missing,
    Selection,
    join_selectors,
    not_found,
    parse_ref,
    select,
    selection_from,
)
from ansible_collections.kubedebug.ephemeral.tests.unit.api_objects import load_pod


def sel(
    pods: Any,
    namespace: Any = None,
    label_selector: Any = None,
    all_namespaces: bool = False,
    *,
    field_selector: Any = None,
    whole_namespace: bool = True,
) -> Selection:
    """``selection_from`` with the other options as a module's ``params.get`` would give them."""
    options = {"namespace": namespace, "label_selector": label_selector, "field_selector": field_selector, "all_namespaces": all_namespaces}
    return selection_from(pods, options.get, whole_namespace=whole_namespace)


# --------------------------------------------------------------------------- options


def test_doc_fragment_matches_the_arg_spec() -> None:
    documented: dict[str, Any] = {}
    for part in ("DOCUMENTATION", "MODULES"):
        documented.update(yaml.safe_load(getattr(ModuleDocFragment, part))["options"])
    assert set(documented) == set(SELECTION_ARG_SPEC)
    for name, spec in SELECTION_ARG_SPEC.items():
        doc = documented[name]
        for key in ("type", "elements", "default", "aliases"):
            assert doc.get(key) == spec.get(key), (name, key)


def test_mutually_exclusive_options_exist() -> None:
    assert {name for pair in SELECTION_MUTUALLY_EXCLUSIVE for name in pair} <= set(SELECTION_ARG_SPEC)


def test_selection_defaults() -> None:
    assert Selection() == Selection(refs=(), namespaces=(), label_selector=None, field_selector=None)


@pytest.mark.parametrize(
    ("selectors", "joined"),
    [(None, None), ([], None), (["app=web"], "app=web"), (["app=web", "tier in (a,b)"], "app=web,tier in (a,b)")],
)
def test_join_selectors(selectors: list[str] | None, joined: str | None) -> None:
    assert join_selectors(selectors) == joined


def test_selection_from_reads_the_other_options_through_get() -> None:
    options = {"namespace": "shop", "label_selector": ["app=web"], "all_namespaces": False}
    assert selection_from([], options.get) == Selection(namespaces=("shop",), label_selector="app=web")
    assert selection_from(["web-0"], {**options, "label_selector": None}.get) == Selection(refs=(("shop", "web-0"),))


def test_selection_from_reads_only_the_selection_options() -> None:
    asked: list[str] = []

    def get(name: str) -> Any:
        asked.append(name)
        return {"namespace": ["shop"]}.get(name)

    selection_from(["web-0"], get)
    assert sorted(set(asked)) == ["all_namespaces", "field_selector", "label_selector", "namespace"]


# --------------------------------------------------------------------------- parse_ref


@pytest.mark.parametrize(
    ("term", "default_namespace", "expected"),
    [
        ("ns/pod", None, ("ns", "pod")),
        ("ns/pod", "other", ("ns", "pod")),  # an explicit namespace wins over the default
        ("web-0", "shop", ("shop", "web-0")),
        ("  shop/web-0 \n", None, ("shop", "web-0")),  # surrounding blanks are dropped
        (" web-0 ", "shop", ("shop", "web-0")),
    ],
)
def test_parse_ref(term: str, default_namespace: str | None, expected: tuple[str, str]) -> None:
    assert parse_ref(term, default_namespace) == expected


@pytest.mark.parametrize("default_namespace", [None, ""])
def test_parse_ref_bare_name_without_namespace(default_namespace: str | None) -> None:
    with pytest.raises(KubedebugError) as err:
        parse_ref("web-0", default_namespace)
    assert err.value.msg == "pod reference 'web-0' has no namespace: write namespace/pod or set the namespace option"
    assert err.value.status is None


@pytest.mark.parametrize(
    ("term", "shown"),
    [
        ("a/b/c", "a/b/c"),
        ("/pod", "/pod"),
        ("ns/", "ns/"),
        ("/", "/"),
        (" ns/ ", "ns/"),
        ("", ""),  # only reachable with a default namespace: the pod name is empty
    ],
)
@pytest.mark.parametrize("default_namespace", [None, "shop"])
def test_parse_ref_malformed(term: str, shown: str, default_namespace: str | None) -> None:
    if term == "" and default_namespace is None:
        expected = "pod reference '' has no namespace: write namespace/pod or set the namespace option"
    else:
        expected = f"pod reference {shown!r} is not of the form namespace/pod"
    with pytest.raises(KubedebugError) as err:
        parse_ref(term, default_namespace)
    assert err.value.msg == expected


# --------------------------------------------------------------------------- selection_from


def test_selection_from_pods() -> None:
    selection = sel(["shop/web-0", "web-1", "", "other/db-0"], "shop")
    assert selection == Selection(refs=(("shop", "web-0"), ("shop", "web-1"), ("other", "db-0")))
    assert selection.namespaces == () and selection.label_selector is None and selection.field_selector is None


# Changed on purpose (issue 11): selection_from collapses a pod named twice (select did before).
def test_selection_from_pods_collapses_duplicates() -> None:
    assert sel(["shop/web-0", "web-0", " shop/web-0 "], "shop", []).refs == (("shop", "web-0"),)


@pytest.mark.parametrize("pods", ["shop/web-0", ["shop/web-0"], ("shop/web-0",)])
def test_selection_from_a_single_pod_as_a_string(pods: Any) -> None:
    assert sel(pods) == Selection(refs=(("shop", "web-0"),))


@pytest.mark.parametrize("namespace", ["shop", ["shop"], ["shop", "shop"], [" shop ", ""]])
def test_selection_from_namespace_as_a_string_or_a_list(namespace: Any) -> None:
    assert sel(["web-0"], namespace) == Selection(refs=(("shop", "web-0"),))
    assert sel([], namespace, "app=web") == Selection(namespaces=("shop",), label_selector="app=web")


def test_selection_from_pods_reports_a_bad_reference() -> None:
    with pytest.raises(KubedebugError) as err:
        sel(["shop/web-0", "web-1"])
    assert err.value.msg == "pod reference 'web-1' has no namespace: write namespace/pod or set the namespace option"


@pytest.mark.parametrize("label_selector", ["app=web", ["app=web"], ["app=web", "tier=front"]])
def test_selection_from_pods_and_label_selector_are_refused(label_selector: Any) -> None:
    with pytest.raises(KubedebugError) as err:
        sel(["shop/web-0"], "shop", label_selector)
    assert err.value.msg == "name pods or give a label_selector or field_selector, not both"


@pytest.mark.parametrize("field_selector", ["status.phase=Running", ["spec.nodeName=node-1"]])
def test_selection_from_pods_and_field_selector_are_refused(field_selector: Any) -> None:
    with pytest.raises(KubedebugError) as err:
        sel(["shop/web-0"], field_selector=field_selector)
    assert err.value.msg == "name pods or give a label_selector or field_selector, not both"


def test_selection_from_pods_and_label_selector_refused_before_all_namespaces() -> None:
    with pytest.raises(KubedebugError) as err:
        sel(["shop/web-0"], None, "app=web", True)
    assert err.value.msg == "name pods or give a label_selector or field_selector, not both"


def test_selection_from_pods_with_all_namespaces_is_refused() -> None:
    with pytest.raises(KubedebugError) as err:
        sel(["shop/web-0"], None, None, True)
    assert err.value.msg == "all_namespaces applies to a label_selector or field_selector, not to named pods"


@pytest.mark.parametrize("label_selector", ["app=web", ["app=web"], ("app=web",)])
def test_selection_from_label_selector_in_a_namespace(label_selector: Any) -> None:
    assert sel([], "shop", label_selector) == Selection(namespaces=("shop",), label_selector="app=web")


def test_selection_from_label_selectors_are_joined() -> None:
    selection = sel([], "shop", ["app=web", "tier in (front,edge)", "!canary"])
    assert selection == Selection(namespaces=("shop",), label_selector="app=web,tier in (front,edge),!canary")


def test_selection_from_field_selectors_are_joined_and_kept_apart_from_labels() -> None:
    selection = sel([], "shop", "app=web", field_selector=["status.phase=Running", "spec.nodeName=node-1"])
    assert selection == Selection(namespaces=("shop",), label_selector="app=web", field_selector="status.phase=Running,spec.nodeName=node-1")


def test_selection_from_empty_pod_names_do_not_count_as_pods() -> None:
    assert sel(["", ""], "shop", "app=web") == Selection(namespaces=("shop",), label_selector="app=web")


def test_selection_from_label_selector_in_all_namespaces() -> None:
    selection = sel([], None, ["app=web", "tier=front"], True)
    assert selection == Selection(namespaces=None, label_selector="app=web,tier=front")
    assert selection.namespaces is None


# Changed on purpose (issue 11): namespace with all_namespaces was ignored, it is now refused everywhere.
@pytest.mark.parametrize("label_selector", [None, "app=web"])
def test_selection_from_namespace_and_all_namespaces_are_refused(label_selector: str | None) -> None:
    with pytest.raises(KubedebugError) as err:
        sel([], "shop", label_selector, True)
    assert err.value.msg == "give namespace or all_namespaces: true, not both"


@pytest.mark.parametrize("namespace", [None, "", [], [""]])
def test_selection_from_label_selector_needs_a_namespace(namespace: Any) -> None:
    with pytest.raises(KubedebugError) as err:
        sel([], namespace, "app=web")
    assert err.value.msg == "a label_selector or field_selector needs a namespace (or all_namespaces: true)"
    with pytest.raises(KubedebugError) as err:
        sel([], namespace, field_selector="status.phase=Running")
    assert err.value.msg == "a label_selector or field_selector needs a namespace (or all_namespaces: true)"


@pytest.mark.parametrize(("pods", "label_selector"), [([], None), ([""], []), ((), ()), (None, None)])
@pytest.mark.parametrize("namespace", [None, ""])
def test_selection_from_nothing(pods: Any, label_selector: Any, namespace: str | None) -> None:
    with pytest.raises(KubedebugError) as err:
        sel(pods, namespace, label_selector)
    assert err.value.msg == "name the pods (namespace/pod), or give a namespace (or all_namespaces: true) and optionally a label_selector"


# The module and lookup docs: "Without pod, every pod in namespace (or in all namespaces) is looked at,
# narrowed by label_selector"; tests/integration/test_results.py audits a namespace that way.
@pytest.mark.parametrize("label_selector", [None, [], "", [""]])
@pytest.mark.parametrize(
    ("namespace", "all_namespaces", "namespaces"),
    [("prod", False, ("prod",)), (None, True, None), (["prod", "stage"], False, ("prod", "stage"))],
)
def test_selection_from_namespace_without_label_selector_is_every_pod(
    label_selector: Any, namespace: Any, all_namespaces: bool, namespaces: tuple[str, ...] | None
) -> None:
    selection = sel([""], namespace, label_selector, all_namespaces)
    assert selection == Selection(refs=(), namespaces=namespaces, label_selector=None, field_selector=None)


def test_selection_from_ignores_empty_label_selectors() -> None:
    assert sel([], "prod", ["app=web", ""]) == Selection(namespaces=("prod",), label_selector="app=web")
    assert sel(["prod/web-0"], None, "") == Selection(refs=(("prod", "web-0"),))


# --------------------------------------------------------------------------- several namespaces


def test_selection_from_several_namespaces_with_a_selector() -> None:
    selection = sel([], ["prod", "stage", "prod"], "app=web")
    assert selection == Selection(namespaces=("prod", "stage"), label_selector="app=web")


def test_selection_from_several_namespaces_with_qualified_pods() -> None:
    assert sel(["prod/web-0", "stage/web-1"], ["prod", "stage"]) == Selection(refs=(("prod", "web-0"), ("stage", "web-1")))


def test_selection_from_several_namespaces_refuses_a_bare_pod_name() -> None:
    with pytest.raises(KubedebugError) as err:
        sel(["prod/web-0", "web-1"], ["prod", "stage"])
    assert err.value.msg == "pod names without a namespace need exactly one namespace (got prod, stage): write namespace/pod for each pod"


# --------------------------------------------------------------------------- whole_namespace (ephemeral_container)


@pytest.mark.parametrize(("namespace", "all_namespaces"), [("shop", False), (["shop", "prod"], False), (None, True)])
def test_selection_from_refuses_a_whole_namespace_when_asked_to(namespace: Any, all_namespaces: bool) -> None:
    with pytest.raises(KubedebugError) as err:
        sel([], namespace, None, all_namespaces, whole_namespace=False)
    assert err.value.msg == "name the pods, or choose them with a label_selector or field_selector: a namespace alone would select every pod in it"


def test_selection_from_whole_namespace_false_accepts_selectors_and_pods() -> None:
    assert sel([], "shop", "app=web", whole_namespace=False) == Selection(namespaces=("shop",), label_selector="app=web")
    assert sel([], "shop", field_selector="status.phase=Running", whole_namespace=False) == Selection(
        namespaces=("shop",), field_selector="status.phase=Running"
    )
    assert sel(["web-0"], "shop", whole_namespace=False) == Selection(refs=(("shop", "web-0"),))


# --------------------------------------------------------------------------- select


class ListingClient:
    """``EphemeralClient.list_pods`` over a list of pods; ``refuse`` maps a namespace to the KubedebugError its LIST raises."""

    def __init__(self, pods: list[dict[str, Any]], refuse: dict[str, KubedebugError] | None = None) -> None:
        self.pods = pods
        self.refuse = refuse or {}
        self.calls: list[tuple[list[str] | None, str | None, str | None]] = []

    def list_pods(self, namespaces: Any, *, label_selector: str | None = None, field_selector: str | None = None) -> list[dict[str, Any]]:
        self.calls.append((None if namespaces is None else list(namespaces), label_selector, field_selector))
        for namespace in namespaces or []:
            if namespace in self.refuse:
                raise self.refuse[namespace]
        found = []
        for pod in self.pods:
            meta = pod["metadata"]
            if namespaces is not None and meta["namespace"] not in namespaces:
                continue
            if field_selector and field_selector.startswith("metadata.name=") and meta["name"] != field_selector.split("=", 1)[1]:
                continue
            found.append(copy.deepcopy(pod))
        return found


def moved(name: str, namespace: str, pod: str) -> dict[str, Any]:
    """A recorded pod under another namespace and name (a variant made for the test)."""
    copied = load_pod(name)
    copied["metadata"].update(namespace=namespace, name=pod)
    return copied


def test_not_found_message() -> None:
    assert not_found("shop", "web-0") == "pod shop/web-0 not found"


def test_select_named_pods_one_list_per_namespace_and_missing_records() -> None:
    client = ListingClient([load_pod("plain"), load_pod("debugged"), moved("plain", "shop", "web-0")])
    selection = Selection(refs=(("unit-fixtures", "plain"), ("shop", "web-0"), ("unit-fixtures", "debugged"), ("unit-fixtures", "gone"), ("elsewhere", "x")))
    pods, missing = select(client, selection)  # type: ignore[arg-type]
    assert [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in pods] == [
        ("unit-fixtures", "plain"),
        ("unit-fixtures", "debugged"),
        ("shop", "web-0"),
    ]
    assert missing == [
        Missing("unit-fixtures", "gone", "pod unit-fixtures/gone not found"),
        Missing("elsewhere", "x", "pod elsewhere/x not found"),
    ]
    assert client.calls == [
        (["unit-fixtures"], None, None),  # three pods there: one LIST of the namespace
        (["shop"], None, "metadata.name=web-0"),
        (["elsewhere"], None, "metadata.name=x"),
    ]


def test_select_a_namespace_that_may_not_be_listed_gives_missing_records_and_reads_the_others() -> None:
    denied = KubedebugError("permission denied listing pods in namespace 'secret': grant 'list' on 'pods'", status=403)
    client = ListingClient([load_pod("plain")], refuse={"secret": denied})
    pods, missing = select(client, Selection(refs=(("secret", "a"), ("secret", "b"), ("unit-fixtures", "plain"))))  # type: ignore[arg-type]
    assert [p["metadata"]["name"] for p in pods] == ["plain"]
    assert missing == [Missing("secret", "a", denied.msg), Missing("secret", "b", denied.msg)]


def test_select_by_selector_raises_a_list_refusal() -> None:
    denied = KubedebugError("permission denied listing pods in namespace 'secret'", status=403)
    client = ListingClient([], refuse={"secret": denied})
    with pytest.raises(KubedebugError) as err:
        select(client, Selection(namespaces=("secret",), label_selector="app=web"))  # type: ignore[arg-type]
    assert err.value is denied


def test_select_by_selector_passes_the_selectors_and_reports_nothing_missing() -> None:
    client = ListingClient([load_pod("plain"), moved("plain", "shop", "web-0")])
    selection = Selection(
        namespaces=("shop", "unit-fixtures", "shop"), label_selector="app=web", field_selector="status.phase=Running"
    )
    pods, missing = select(client, selection)  # type: ignore[arg-type]
    assert missing == []
    assert len(pods) == 2
    assert client.calls == [(["shop", "unit-fixtures"], "app=web", "status.phase=Running")]


def test_select_all_namespaces_is_one_cluster_wide_list() -> None:
    client = ListingClient([load_pod("plain")])
    pods, missing = select(client, Selection(namespaces=None, label_selector="app=web"))  # type: ignore[arg-type]
    assert (len(pods), missing) == (1, [])
    assert client.calls == [(None, "app=web", None)]
