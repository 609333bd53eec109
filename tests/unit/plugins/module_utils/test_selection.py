# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for plugins/module_utils/_selection.py: the selection options, pod references and ``selection_from``.

What ``select`` lists is tested through ``collect`` (test_results.py) and ``snapshot``
(test_snapshot.py), against their fake clients.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from ansible_collections.kubedebug.ephemeral.plugins.doc_fragments.selection import ModuleDocFragment
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._errors import KubedebugError
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._selection import (
    SELECTION_ARG_SPEC,
    SELECTION_MUTUALLY_EXCLUSIVE,
    Selection,
    join_selectors,
    parse_ref,
    selection_from,
    selection_from_options,
)

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


def test_selection_from_options_reads_the_other_options() -> None:
    options = {"namespace": "shop", "label_selector": ["app=web"], "all_namespaces": False}
    assert selection_from_options([], options.get) == Selection(namespaces=("shop",), label_selector="app=web")
    assert selection_from_options(["web-0"], {**options, "label_selector": None}.get) == Selection(refs=(("shop", "web-0"),))


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
    sel = selection_from(["shop/web-0", "web-1", "", "other/db-0"], "shop", None, False)
    assert sel == Selection(refs=(("shop", "web-0"), ("shop", "web-1"), ("other", "db-0")))
    assert sel.namespaces == () and sel.label_selector is None and sel.field_selector is None


def test_selection_from_pods_keeps_duplicates_for_select_to_collapse() -> None:
    assert selection_from(["shop/web-0", "web-0"], "shop", [], False).refs == (("shop", "web-0"), ("shop", "web-0"))


def test_selection_from_pods_reports_a_bad_reference() -> None:
    with pytest.raises(KubedebugError) as err:
        selection_from(["shop/web-0", "web-1"], None, None, False)
    assert err.value.msg == "pod reference 'web-1' has no namespace: write namespace/pod or set the namespace option"


@pytest.mark.parametrize("label_selector", ["app=web", ["app=web"], ["app=web", "tier=front"]])
def test_selection_from_pods_and_label_selector_are_refused(label_selector: Any) -> None:
    with pytest.raises(KubedebugError) as err:
        selection_from(["shop/web-0"], "shop", label_selector, False)
    assert err.value.msg == "name pods or give a label_selector, not both"


def test_selection_from_pods_and_label_selector_refused_before_all_namespaces() -> None:
    with pytest.raises(KubedebugError) as err:
        selection_from(["shop/web-0"], None, "app=web", True)
    assert err.value.msg == "name pods or give a label_selector, not both"


def test_selection_from_pods_with_all_namespaces_is_refused() -> None:
    with pytest.raises(KubedebugError) as err:
        selection_from(["shop/web-0"], None, None, True)
    assert err.value.msg == "all_namespaces applies to a label_selector, not to named pods"


@pytest.mark.parametrize("label_selector", ["app=web", ["app=web"], ("app=web",)])
def test_selection_from_label_selector_in_a_namespace(label_selector: Any) -> None:
    assert selection_from([], "shop", label_selector, False) == Selection(namespaces=("shop",), label_selector="app=web")


def test_selection_from_label_selectors_are_joined() -> None:
    sel = selection_from([], "shop", ["app=web", "tier in (front,edge)", "!canary"], False)
    assert sel == Selection(namespaces=("shop",), label_selector="app=web,tier in (front,edge),!canary")


def test_selection_from_empty_pod_names_do_not_count_as_pods() -> None:
    assert selection_from(["", ""], "shop", "app=web", False) == Selection(namespaces=("shop",), label_selector="app=web")


@pytest.mark.parametrize("namespace", [None, "shop"])
def test_selection_from_label_selector_in_all_namespaces(namespace: str | None) -> None:
    sel = selection_from([], namespace, ["app=web", "tier=front"], True)
    assert sel == Selection(namespaces=None, label_selector="app=web,tier=front")
    assert sel.namespaces is None


@pytest.mark.parametrize("namespace", [None, ""])
def test_selection_from_label_selector_needs_a_namespace(namespace: str | None) -> None:
    with pytest.raises(KubedebugError) as err:
        selection_from([], namespace, "app=web", False)
    assert err.value.msg == "a label_selector needs a namespace (or all_namespaces: true)"


@pytest.mark.parametrize(("pods", "label_selector"), [([], None), ([""], []), ((), ())])
@pytest.mark.parametrize("namespace", [None, ""])
def test_selection_from_nothing(pods: Any, label_selector: Any, namespace: str | None) -> None:
    with pytest.raises(KubedebugError) as err:
        selection_from(pods, namespace, label_selector, False)
    assert err.value.msg == "name the pods (namespace/pod), or give a namespace (or all_namespaces: true) and optionally a label_selector"


# The module and lookup docs: "Without pod, every pod in namespace (or in all namespaces) is looked at,
# narrowed by label_selector"; tests/integration/test_results.py audits a namespace that way.
@pytest.mark.parametrize("label_selector", [None, [], "", [""]])
@pytest.mark.parametrize(
    ("namespace", "all_namespaces", "namespaces"),
    [("prod", False, ("prod",)), (None, True, None), ("prod", True, None)],
)
def test_selection_from_namespace_without_label_selector_is_every_pod(
    label_selector: Any, namespace: str | None, all_namespaces: bool, namespaces: tuple[str, ...] | None
) -> None:
    sel = selection_from([""], namespace, label_selector, all_namespaces)
    assert sel == Selection(refs=(), namespaces=namespaces, label_selector=None, field_selector=None)


def test_selection_from_ignores_empty_label_selectors() -> None:
    assert selection_from([], "prod", ["app=web", ""], False) == Selection(namespaces=("prod",), label_selector="app=web")
    assert selection_from(["prod/web-0"], None, "", False) == Selection(refs=(("prod", "web-0"),))
