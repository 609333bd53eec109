# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Hypothesis strategies for the front ends' input: plausible values and hostile ones.

Values are what a playbook can hand a module or a lookup: JSON/YAML data (strings, numbers, booleans, null, lists,
mappings), never Python objects. Hostile ones are the wrong type, empty, huge, negative, non-finite, unicode,
control characters, names that break DNS-1123, selectors that do not parse, booleans written as strings.

Imported as ``ansible_collections.kubedebug.ephemeral.tests.unit.property.strategies``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

# Any unicode (no surrogates, which no YAML or JSON document can carry), controls, and the odd ones in particular.
CONTROL = st.characters(min_codepoint=0, max_codepoint=0x1F) | st.sampled_from(["\x7f", "\u0085", "\u2028", "\u200b", "\ufeff"])
ANY_TEXT = st.text(max_size=40)
CONTROL_TEXT = st.text(st.characters(codec="utf-8") | CONTROL, min_size=1, max_size=20).filter(lambda s: any(ord(c) < 0x20 or c == "\x7f" for c in s))
LONG_TEXT = st.text(st.characters(codec="utf-8"), min_size=300, max_size=3000) | st.integers(64, 5000).map(lambda n: "a" * n)
BOOL_WORDS = st.sampled_from(["yes", "no", "true", "False", "on", "off", "1", "0", "y", "N", "TRUE", "nope"])
NUMBER_WORDS = st.sampled_from(["10", "-1", "0", "1e3", "0x10", "1_000", " 5 ", "5.5", "inf", "NaN", "∞", "١٢"])
HUGE_INT = st.sampled_from([2**31, 2**63, 2**64 + 1, 10**30, -(2**63), -(10**30)]) | st.integers(min_value=-(2**80), max_value=2**80)
FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.5, -0.5, 1.0, 1e300, -0.0])

SCALARS: SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-5, max_value=5),
    HUGE_INT,
    FLOATS,
    st.just(""),
    st.sampled_from([" ", "\t", "\n", "-", "/", "=", ",", "*", "{{ x }}", "null", "None", "~"]),
    ANY_TEXT,
    CONTROL_TEXT,
    LONG_TEXT,
    BOOL_WORDS,
    NUMBER_WORDS,
)
HOSTILE: SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)

# DNS-1123 labels (container names, run ids): valid ones, and every way of breaking them.
DNS_LABEL = st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z")
NOT_DNS_LABEL = st.one_of(
    st.just(""),
    st.from_regex(r"\A-[a-z0-9-]{0,10}\Z"),
    st.from_regex(r"\A[a-z0-9-]{0,10}-\Z"),
    st.from_regex(r"\A[a-z0-9]{0,5}[A-Z_.:/ @][a-z0-9]{0,5}\Z"),
    st.integers(64, 300).map(lambda n: "a" * n),
    st.sampled_from(["ä", "dé-bug", "debug\n", " debug", "debug ", "DEBUG", "x" * 64, "a..b", "ａ"]),
    CONTROL_TEXT,
)

# Label selectors: what the grammar allows, and what it does not (selectors.py decides, as the API server does).
LABEL_KEY = st.from_regex(r"\A([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]+)?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,20}[A-Za-z0-9])?\Z")
LABEL_VALUE = st.from_regex(r"\A([A-Za-z0-9]([-A-Za-z0-9_.]{0,20}[A-Za-z0-9])?)?\Z")
LABEL_REQUIREMENT = st.one_of(
    st.builds(lambda k, op, v: f"{k}{op}{v}", LABEL_KEY, st.sampled_from(["=", "==", "!="]), LABEL_VALUE),
    st.builds(lambda k, op, vs: f"{k} {op} ({','.join(vs)})", LABEL_KEY, st.sampled_from(["in", "notin"]), st.lists(LABEL_VALUE, min_size=1, max_size=3)),
    LABEL_KEY,
    LABEL_KEY.map(lambda k: "!" + k),
)
LABEL_SELECTOR = st.lists(LABEL_REQUIREMENT, min_size=1, max_size=3).map(",".join)
BAD_LABEL_SELECTOR = st.one_of(
    st.sampled_from(["app in (", "=x", "a b", "x,", "app=web,,tier=db", "!", "a in (b c)", "ÄÖ=1", "a=b=c", "a>b", "(a)", "a notin x"]),
    st.builds(lambda k, junk: f"{k}={junk}", LABEL_KEY, st.sampled_from(["a b", "-x", "x-", "é", "a" * 64, "v/w"])),
    st.builds(lambda a, b: f"{a} {b}", LABEL_KEY, LABEL_KEY),
)
FIELD_SELECTOR = st.lists(
    st.builds(
        lambda label, op, value: f"{label}{op}{value}",
        st.sampled_from(["metadata.name", "spec.nodeName", "status.phase", "status.podIP", "spec.restartPolicy"]),
        st.sampled_from(["=", "==", "!="]),
        st.from_regex(r"\A[A-Za-z0-9.-]{0,20}\Z"),
    ),
    min_size=1,
    max_size=3,
).map(",".join)
BAD_FIELD_SELECTOR = st.one_of(
    st.sampled_from(["status.phase", "foo=bar", "metadata.labels=x", "spec.nodeName", "a\\x=b", "status.phase=Run\\ning"]),
    st.text(st.characters(codec="ascii", exclude_characters="=!\\,"), min_size=1, max_size=20),
)


class Option:
    """One option of a front end: values it must accept (``valid``) and values to try it with (``hostile``).

    ``names`` are how a message may name it: its name and aliases, and ``extra_names`` when a refusal rightly
    names another option with it (``tty`` needs ``stdin``). A refusal of a hostile value must say one of them.
    """

    def __init__(
        self,
        name: str,
        valid: SearchStrategy[Any],
        hostile: SearchStrategy[Any] = HOSTILE,
        *,
        aliases: tuple[str, ...] = (),
        extra_names: tuple[str, ...] = (),
    ) -> None:
        self.name, self.valid, self.hostile, self.aliases = name, valid, hostile, aliases
        self.names = (name, *aliases, *extra_names)

    def __repr__(self) -> str:  # what a failing example prints: the option, not its strategies
        return self.name


@dataclass(frozen=True)
class Change:
    """One generated case: ``option`` (through ``key``, the name or an alias) set to ``value``; ``valid``: must pass."""

    option: Option
    key: str
    value: Any
    valid: bool


@st.composite
def changes(draw: st.DrawFn, options: list[Option]) -> Change:
    """One option, under its name or an alias, set to a valid or a hostile value."""
    option = draw(st.sampled_from(options))
    key = draw(st.sampled_from((option.name, *option.aliases)))
    if draw(st.booleans()):
        return Change(option, key, draw(option.valid), True)
    return Change(option, key, draw(st.one_of(option.hostile, HOSTILE)), False)


def hostile_list(element: SearchStrategy[Any]) -> SearchStrategy[Any]:
    """Lists whose elements are hostile, a list given as a plain string, and everything else."""
    return st.one_of(st.lists(st.one_of(element, HOSTILE), max_size=4), ANY_TEXT, st.dictionaries(ANY_TEXT, HOSTILE, max_size=3))


def str_lists(element: SearchStrategy[str] = ANY_TEXT, *, min_size: int = 0) -> SearchStrategy[list[str]]:
    return st.lists(element, min_size=min_size, max_size=4)
