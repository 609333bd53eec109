# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How the API server parses the label and field selectors of a pod LIST, for the property tests' fake API server.

A port of the parsers of k8s.io/apimachinery (``pkg/labels/selector.go``: lexer, ``parseRequirement``,
``validateLabelKey``/``validateLabelValue``; ``pkg/fields/selector.go``: ``parseSelector``, ``splitTerm``) and of
the pod field labels kube-apiserver supports (``pkg/registry/core/pod/strategy.go``, ``ToSelectableFields`` plus
the label conversion). What it refuses, the real API server answers with HTTP 400; the message has the real one's
shape (``Unable to find "/v1, Resource=pods" that match label selector ..., field selector ...: <reason>``). Checked
against kube-apiserver v1.36 (see the commit that added it); it does not evaluate selectors, only parses them.
"""

from __future__ import annotations

import re

_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_INTEGER = re.compile(r"^[-+]?[0-9]+$")
# The lexer's special symbols, longest first (selector.go's string2token).
_SYMBOLS = ("!=", "==", "!", "=", "(", ")", ",", ">", "<")
_SYMBOL_START = frozenset("!=(),<>")
_WHITESPACE = frozenset(" \t\r\n")
# Field labels a pod LIST accepts (pod strategy's selectable fields, with the conversion's aliases).
POD_FIELD_LABELS = frozenset(
    {
        "metadata.name",
        "metadata.namespace",
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.podIPs",
        "status.nominatedNodeName",
    }
)


class SelectorError(ValueError):
    """Why the API server refuses a selector."""


def _tokens(text: str) -> list[tuple[str, str]]:
    """``(kind, value)``: kind is the symbol itself, ``in``/``notin``, or ``id`` for an identifier."""
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in _WHITESPACE:
            i += 1
            continue
        if ch in _SYMBOL_START:
            symbol = next(s for s in _SYMBOLS if text.startswith(s, i))
            out.append((symbol, symbol))
            i += len(symbol)
            continue
        j = i
        while j < len(text) and text[j] not in _WHITESPACE and text[j] not in _SYMBOL_START:
            j += 1
        word = text[i:j]
        out.append((word if word in ("in", "notin") else "id", word))
        i = j
    return out


def _check_key(key: str) -> None:
    prefix, _slash, name = key.rpartition("/")
    if "/" in key and (not prefix or len(prefix) > 253 or not _DNS1123_SUBDOMAIN.match(prefix)):
        raise SelectorError(f"unable to parse requirement: <nil>: Invalid value: {key!r}: prefix part must be a DNS-1123 subdomain")
    if not name or len(name) > 63 or not _NAME.match(name):
        raise SelectorError(f"unable to parse requirement: <nil>: Invalid value: {key!r}: name part must consist of alphanumeric characters")


def _check_value(value: str) -> None:
    if value and (len(value) > 63 or not _NAME.match(value)):
        raise SelectorError(f"unable to parse requirement: values[0]: Invalid value: {value!r}: a valid label must be an empty string or ...")


def check_label_selector(text: str) -> None:
    """Raise ``SelectorError`` when kube-apiserver would refuse ``text`` as a label selector."""
    tokens = _tokens(text)
    i = 0

    def peek() -> str:
        return tokens[i][0] if i < len(tokens) else "end"

    while i < len(tokens):
        negated = peek() == "!"
        if negated:
            i += 1
        if peek() != "id":
            raise SelectorError(f"found {tokens[i][1] if i < len(tokens) else ''!r}, expected: !, identifier, or 'end of string'")
        key = tokens[i][1]
        _check_key(key)
        i += 1
        if negated or peek() in (",", "end"):
            if negated and peek() not in (",", "end"):
                raise SelectorError(f"unable to parse requirement: found {tokens[i][1]!r}, expected: ',' or 'end of string'")
        elif peek() in ("in", "notin"):
            i += 1
            if peek() != "(":
                raise SelectorError(f"unable to parse requirement: found {tokens[i][1] if i < len(tokens) else ''!r}, expected: '('")
            i += 1
            # "()" and empty entries ("(a,)", "(,)") are the empty value, as parseIdentifiersList reads them.
            values: list[str] = []
            expect_value = True
            while True:
                kind = peek()
                if kind == "id" and expect_value:
                    values.append(tokens[i][1])
                    expect_value = False
                elif kind == ",":
                    expect_value = True
                elif kind == ")":
                    i += 1
                    break
                else:
                    wanted = "',', ')' or identifier" if expect_value else "',' or ')'"
                    raise SelectorError(f"unable to parse requirement: found {tokens[i][1] if i < len(tokens) else ''!r}, expected: {wanted}")
                i += 1
            for value in values:
                _check_value(value)
        elif peek() in ("=", "==", "!=", ">", "<"):
            op = peek()
            i += 1
            value = tokens[i][1] if peek() == "id" else ""
            if peek() == "id":
                i += 1
            elif peek() not in (",", "end"):
                raise SelectorError(f"unable to parse requirement: found {tokens[i][1]!r}, expected: identifier")
            if op in (">", "<") and not _INTEGER.match(value):
                raise SelectorError(f"unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer (got {value!r})")
            if op not in (">", "<"):
                _check_value(value)
        else:
            raise SelectorError(f"unable to parse requirement: found {tokens[i][1]!r}, expected: in, notin, =, ==, !=, gt, lt")
        if peek() == ",":
            i += 1
            if peek() == "end":
                raise SelectorError("found '', expected: identifier after ','")
        elif peek() != "end":
            raise SelectorError(f"found {tokens[i][1]!r}, expected: ',' or 'end of string'")


def _split_unescaped(text: str) -> list[str]:
    parts, current, i = [], "", 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            current += text[i : i + 2]
            i += 2
            continue
        if text[i] == ",":
            parts.append(current)
            current = ""
        else:
            current += text[i]
        i += 1
    parts.append(current)
    return parts


def _split_term(term: str) -> tuple[str, str] | None:
    i = 0
    while i < len(term):
        if term[i] == "\\":
            i += 2
            continue
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], term[i + len(op) :]
        i += 1
    return None


def _unescape(value: str) -> None:
    i = 0
    while i < len(value):
        if value[i] == "\\":
            if i + 1 >= len(value) or value[i + 1] not in "\\,=":
                raise SelectorError(f"invalid field selector: invalid escape sequence in {value!r}")
            i += 2
            continue
        if value[i] in ",=":
            raise SelectorError(f"invalid field selector: unescaped {value[i]!r} in {value!r}")
        i += 1


def check_field_selector(text: str) -> None:
    """Raise ``SelectorError`` when kube-apiserver would refuse ``text`` as a field selector of a pod LIST."""
    for part in _split_unescaped(text):
        if not part:
            continue
        split = _split_term(part)
        if split is None:
            raise SelectorError(f"invalid selector: {part!r}; can't understand {part!r}")
        label, value = split
        _unescape(value)
        if label not in POD_FIELD_LABELS:
            raise SelectorError(f"field label not supported: {label}")
