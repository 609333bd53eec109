# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for the markdown_escape filter: untrusted text as inert Markdown in report.md.

What a renderer makes of the output is checked with markdown-it-py when it is installed (CommonMark plus GitHub's
tables, as GitHub and most viewers render report.md); the expected strings are checked everywhere.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from ansible_collections.kubedebug.ephemeral.plugins.filter.markdown_escape import FilterModule, markdown_escape

HOSTILE = [
    "<script>alert(1)</script>",
    "[x](javascript:alert(1))",
    "![img](http://127.0.0.1/x.png)",
    "<http://127.0.0.1/>",
    "a | b | c",
    "`code` and ``more``",
    "*bold* _em_ ~~strike~~ $x$",
    "&lt;not an entity&gt; &#60;",
    "line one\nline two\r\n| injected | row |",
    "{{ lookup('pipe', 'touch /tmp/x') }} {% raw %}",
    "\\| backslash before a pipe",
    "\x1b[31mred\x1b[0m\x00",
]


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("kubernetes.default.svc", "kubernetes.default.svc"),  # plain text stays readable
        ("<script>alert(1)</script>", "\\<script\\>alert(1)\\</script\\>"),
        ("[x](javascript:alert(1))", "\\[x\\](javascript:alert(1))"),
        ("a | b", "a \\| b"),
        ("`x`", "\\`x\\`"),
        ("one\ntwo\r\nthree\u2028four", "one two  three four"),
        ("\\|", "\\\\\\|"),  # a backslash cannot eat the escape of the pipe after it
        ("\x1b[31m", "\ufffd\\[31m"),
        (None, ""),
        (42, "42"),
        (True, "true"),
        ({"a": "<b>"}, '{"a": "\\<b\\>"}'),
        (["x|y"], '\\["x\\|y"\\]'),
    ],
)
def test_escaped_text(value: Any, escaped: str) -> None:
    assert markdown_escape(value) == escaped


@pytest.mark.parametrize(
    ("value", "span"),
    [
        ("kubernetes.default.svc", "`kubernetes.default.svc`"),
        ("a`b", "``a`b``"),
        ("``", "``` `` ```"),  # padded: a span may not start or end with its own fence
        ("`x", "`` `x ``"),
        ("a|b", "`a\\|b`"),
        ("a\\|b", "a\\\\\\|b"),  # escaped text, not a span: a literal backslash before "\|" would be ambiguous
        ("<script>", "`<script>`"),  # literal inside a code span
        ("two\nlines", "`two lines`"),
        ("", ""),
        (None, ""),
    ],
)
def test_code_span(value: Any, span: str) -> None:
    assert markdown_escape(value, code=True) == span


def test_the_filter_is_registered() -> None:
    assert FilterModule().filters() == {"markdown_escape": markdown_escape}


# The characters markdown_escape escapes; every one of them in its output must follow an odd run of backslashes.
SPECIAL = set("\\`*_[]<>|&!~$")


def _unescaped_specials(text: str) -> list[int]:
    """Where ``text`` has a special character that is not backslash-escaped (a backslash escapes the next character)."""
    found, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in SPECIAL:
            i += 2
            continue
        if text[i] in SPECIAL:
            found.append(i)
        i += 1
    return found


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_text_has_no_markup_left(value: str) -> None:
    escaped = markdown_escape(value)
    assert _unescaped_specials(escaped) == [], escaped
    assert not re.search(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", escaped.replace("\t", "")), escaped
    # Escapes taken off, the text is the value with its line breaks as spaces: nothing is lost.
    assert re.sub(r"\\(.)", r"\1", escaped) == re.sub(r"[\x00-\x08\x0e-\x1b\x1f]", "\ufffd", re.sub(r"\r|\n", " ", value))


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_code_span_cannot_end_early(value: str) -> None:
    span = markdown_escape(value, code=True)
    if "\\|" in value:
        assert span == markdown_escape(value)
        return
    fence = re.match(r"`+", span)
    assert fence and span.endswith(fence.group()), span
    inner = span[len(fence.group()) : -len(fence.group())]
    # No run of backticks as long as the fence inside, and no pipe that is not escaped for the table.
    assert all(len(run) < len(fence.group()) for run in re.findall(r"`+", inner)), span
    assert not re.search(r"(?<!\\)\|", inner) and "\n" not in inner, span
