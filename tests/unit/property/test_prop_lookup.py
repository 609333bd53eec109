# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Generated terms and options for the ephemeral_results lookup, run as a play runs it, against the fake API server.

The lookup is loaded by Ansible's lookup loader and its options go through ``set_options`` (Ansible's own type
conversion of the documented options) as the keyword arguments of ``query()`` do; its client is the fake API server
of apiserver.py. A case changes one option (or the terms) of a call the lookup answers, or adds an option it does not
have. The properties (harness.py): never an exception other than an ``AnsibleError`` (the lookup's refusals are
``AnsibleLookupError``, Ansible's own type checks ``AnsibleOptionsError``), a refusal names the option, a valid
value is accepted.
"""

from __future__ import annotations

import traceback
from typing import Any

import pytest
from ansible.errors import AnsibleError
from ansible.plugins.loader import lookup_loader
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.kubedebug.ephemeral.plugins.plugin_utils import _lookup
from ansible_collections.kubedebug.ephemeral.plugins.plugin_utils._lookup import KubedebugLookupBase
from ansible_collections.kubedebug.ephemeral.tests.unit.property.apiserver import NS, property_apiserver
from ansible_collections.kubedebug.ephemeral.tests.unit.property.harness import Answer, assert_names, assert_ok, property_settings, record
from ansible_collections.kubedebug.ephemeral.tests.unit.property.strategies import (
    BAD_FIELD_SELECTOR,
    BAD_LABEL_SELECTOR,
    BOOL_WORDS,
    FIELD_SELECTOR,
    HOSTILE,
    HUGE_INT,
    LABEL_SELECTOR,
    NOT_DNS_LABEL,
    NUMBER_WORDS,
    Change,
    Option,
    changes,
    hostile_list,
    str_lists,
)

pytestmark = pytest.mark.stress

PODS = st.sampled_from(["plain", "debugged", "states", "with-volumes"])
TRUE_OR_FALSE = st.booleans() | st.sampled_from(["yes", "no", "true", "false", "on", "off", "1", "0"])
# wait_for none and wait_timeout 0: a case that changes one of them never waits for containers that never finish.
BASE_OPTIONS = {"wait_for": "none", "wait_timeout": 0}
BASE_TERMS = [f"{NS}/states"]

TERMS = Option(
    "_terms",
    st.lists(st.one_of(PODS.map(lambda p: f"{NS}/{p}"), PODS.map(lambda p: f" {NS}/{p} ")), min_size=1, max_size=3),
    st.lists(st.one_of(NOT_DNS_LABEL, st.sampled_from(["a/b/c", "/x", "ns/", "/", "missing", f"{NS}/missing", "states"]), HOSTILE), min_size=1, max_size=3),
    # How the lookup's messages speak of its terms.
    extra_names=("pod reference", "pod", "namespace/pod"),
)
OPTIONS = [
    Option("container", str_lists(st.sampled_from(["exited", "pull-fail", "fresh"])) | st.sampled_from(["exited", "fresh"]), hostile_list(HOSTILE)),
    Option("wait_for", st.sampled_from(["none", "running", "terminated"]), st.sampled_from(["Running", "yes", "", "all"])),
    Option("wait_timeout", st.integers(0, 604800), st.one_of(st.integers(max_value=-1), st.integers(604801, 10**7), HUGE_INT, NUMBER_WORDS)),
    Option("logs", TRUE_OR_FALSE, BOOL_WORDS),
    Option("parse", st.sampled_from(["raw", "lines", "json", "json_lines"]), st.sampled_from(["JSON", "yaml", ""])),
    Option("tail_lines", st.integers(1, 10**6), st.one_of(st.integers(max_value=0), HUGE_INT, NUMBER_WORDS)),
    Option("limit_bytes", st.integers(1, 10**9), st.one_of(st.integers(max_value=0), HUGE_INT, NUMBER_WORDS)),
    Option("parallel", st.integers(1, 1000), st.one_of(st.integers(max_value=0), HUGE_INT, NUMBER_WORDS)),
    Option("namespace", st.sampled_from([NS, [NS]]), hostile_list(NOT_DNS_LABEL)),
]
# Selectors replace the base's terms; the namespace stays.
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
    # with a label selector and no namespace: only true is valid
    Option("all_namespaces", st.sampled_from([True, "yes", "true", "on"]), st.one_of(st.sampled_from([False, "no", "off"]), BOOL_WORDS)),
]
UNKNOWN = st.from_regex(r"\A[a-z][a-z0-9_]{0,15}\Z").filter(lambda k: k not in {o.name for o in OPTIONS + SELECTORS} | {"label_selectors", "field_selectors"})


class Display:
    """The lookup's display, recorded: warnings are not failures."""

    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warning(self, msg: str) -> None:
        self.warnings.append(msg)

    def vvv(self, msg: str) -> None:
        pass


def query(terms: list[Any], options: dict[str, Any]) -> Answer:
    lookup = lookup_loader.get("kubedebug.ephemeral.ephemeral_results")
    try:
        records = lookup.run(terms, variables={}, **options)
    except AnsibleError as exc:
        return Answer("refused", str(exc), exc)
    except Exception as exc:  # the property: nothing but an AnsibleError leaves a lookup
        return Answer("traceback", f"{type(exc).__name__}: {exc}", traceback.format_exc())
    return Answer("ok", detail=records)


@pytest.fixture
def lookup_env() -> Any:
    with property_apiserver() as (server, cluster), pytest.MonkeyPatch.context() as scope:
        scope.setattr(KubedebugLookupBase, "client", lambda self: server.client())
        scope.setattr(_lookup, "display", Display())
        yield cluster


def test_one_option_changed(lookup_env: Any) -> None:
    cluster = lookup_env
    test = "lookup[ephemeral_results]: one option"

    @property_settings(small=40, full=1200)
    @given(change=changes([TERMS, *OPTIONS, *SELECTORS]))
    def check(change: Change) -> None:
        cluster.reset()
        terms, options = list(BASE_TERMS), dict(BASE_OPTIONS)
        if change.option is TERMS:
            # Ansible hands a lookup its terms as a list: query('...', value) gives [value].
            terms = change.value if isinstance(change.value, list) else [change.value]
        elif change.option in SELECTORS:
            terms = []
            options.setdefault("namespace", NS)
            options[change.key] = change.value
            if change.key == "all_namespaces":
                options.pop("namespace")
                options["label_selector"] = "app=web"
        else:
            options[change.key] = change.value
        answer = record(test, query(terms, options))
        assert_names(answer, change.option.names, case=change)
        if change.valid:
            assert_ok(answer, case=change)

    check()


def test_unknown_option(lookup_env: Any) -> None:
    cluster = lookup_env
    test = "lookup[ephemeral_results]: unknown option"

    @property_settings(small=10, full=200)
    @given(key=UNKNOWN, value=HOSTILE)
    def check(key: str, value: Any) -> None:
        cluster.reset()
        answer = record(test, query(list(BASE_TERMS), {**BASE_OPTIONS, key: value}))
        assert answer.kind == "refused", f"{key}={value!r}: {answer}"
        assert_names(answer, [key], case=(key, value))

    check()
