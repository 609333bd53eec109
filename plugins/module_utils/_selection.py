# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: which pods a task or the lookup looks at — the one selection model.

Every module, the lookup and (through them) the roles choose pods with the same
options, of the same types (doc fragment ``kubedebug.ephemeral.selection``):
named pods (``pod``, or the lookup's terms: ``namespace/pod`` or a bare name in
the one ``namespace``), or ``namespace`` (one or several) or ``all_namespaces``
with ``label_selector`` and ``field_selector``. The names and aliases follow
kubernetes.core (``name``, ``label_selectors``, ``field_selectors``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ansible_collections.kubedebug.ephemeral.plugins.module_utils._client import EphemeralClient, name_selector
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._errors import KubedebugError

SELECTION_ARG_SPEC: dict[str, dict[str, Any]] = {
    "pod": {"type": "list", "elements": "str", "aliases": ["name"]},
    "namespace": {"type": "list", "elements": "str"},
    "label_selector": {"type": "list", "elements": "str", "aliases": ["label_selectors"]},
    "field_selector": {"type": "list", "elements": "str", "aliases": ["field_selectors"]},
    "all_namespaces": {"type": "bool", "default": False},
}
# Refused before any API call; selection_from() refuses the same for the lookup,
# whose options no argument spec checks.
SELECTION_MUTUALLY_EXCLUSIVE: list[tuple[str, str]] = [
    ("pod", "label_selector"),
    ("pod", "field_selector"),
    ("pod", "all_namespaces"),
    ("namespace", "all_namespaces"),
]


@dataclass(frozen=True)
class Selection:
    """Which pods: explicit references, or selectors over namespaces (``None``: all namespaces)."""

    refs: tuple[tuple[str, str], ...] = ()
    namespaces: tuple[str, ...] | None = ()
    label_selector: str | None = None
    field_selector: str | None = None


OptionsT = TypeVar("OptionsT")


@dataclass(frozen=True)
class ReadRequest(Generic[OptionsT]):
    """Pods chosen by the one selection model, and a reader's options (``read``, then ``check``).

    A reader (results, snapshot) subclasses it and sets ``read`` and ``check``.
    """

    selection: Selection
    options: OptionsT

    @staticmethod
    def read(get: Callable[[str], Any]) -> Any:
        """The reader's options, read through ``get``."""
        raise NotImplementedError

    @staticmethod
    def check(opts: Any) -> None:
        """Refuse options out of range, naming the option."""
        raise NotImplementedError

    @classmethod
    def from_options(cls, pods: Iterable[str] | str | None, get: Callable[[str], Any]) -> Any:
        """From the module's ``pod`` and ``params.get``, or the lookup's terms and ``get_option``; checks every value."""
        request = cls(selection_from(pods, get), cls.read(get))
        cls.check(request.options)
        return request


@dataclass(frozen=True)
class Missing:
    """A named pod that is not there, or whose namespace could not be listed (``error`` says which)."""

    namespace: str
    pod: str
    error: str


def join_selectors(selectors: Iterable[str] | str | None, option: str = "label_selector") -> str | None:
    """Several label or field selectors as the one the API takes (they are ANDed); ``None`` for none."""
    return ",".join(_strings(selectors, option)) or None


def _strings(value: Iterable[str] | str | None, option: str) -> list[str]:
    """A string or a list of strings, each stripped, the empty ones left out.

    A module's argument spec has made them strings already; the lookup's options are only checked to be lists, so
    anything else is refused here, naming the option.
    """
    items = [value] if isinstance(value, str) else value if isinstance(value, (list, tuple)) else [] if value is None else None
    if items is None or not all(isinstance(item, str) for item in items):
        raise KubedebugError(f"{option} must be a string or a list of strings; got {value!r}")
    return [item.strip() for item in items if item.strip()]


def parse_ref(term: str, default_namespace: str | None) -> tuple[str, str]:
    """``namespace/pod``, or a bare pod name in ``default_namespace``."""
    term = term.strip()
    if term.count("/") == 1:
        namespace, pod = term.split("/")
    elif "/" not in term and default_namespace:
        namespace, pod = default_namespace, term
    elif "/" not in term:
        raise KubedebugError(f"pod reference {term!r} has no namespace: write namespace/pod or set the namespace option")
    else:
        raise KubedebugError(f"pod reference {term!r} is not of the form namespace/pod")
    if not namespace or not pod:
        raise KubedebugError(f"pod reference {term!r} is not of the form namespace/pod")
    return namespace, pod


def selection_from(
    pods: Iterable[str] | str | None,
    get: Callable[[str], Any],
    *,
    whole_namespace: bool = True,
) -> Selection:
    """The selection that named pods and the other options (read through ``get``) describe.

    ``get`` is a module's ``params.get`` or the lookup's ``get_option``.
    ``whole_namespace=False`` (``ephemeral_container``) refuses a namespace
    without a selector: adding a container to every pod of a namespace must be
    asked for with a selector that says so.
    """
    names = _strings(pods, "pod")
    namespaces = list(dict.fromkeys(_strings(get("namespace"), "namespace")))
    labels = join_selectors(get("label_selector"), "label_selector")
    fields = join_selectors(get("field_selector"), "field_selector")
    all_namespaces = bool(get("all_namespaces"))
    if names:
        if labels or fields:
            raise KubedebugError("name pods or give a label_selector or field_selector, not both")
        if all_namespaces:
            raise KubedebugError("all_namespaces applies to a label_selector or field_selector, not to named pods")
        if len(namespaces) > 1 and any("/" not in n for n in names):
            raise KubedebugError(f"pod names without a namespace need exactly one namespace (got {', '.join(namespaces)}): write namespace/pod for each pod")
        default = namespaces[0] if namespaces else None
        return Selection(refs=tuple(dict.fromkeys(parse_ref(n, default) for n in names)))
    if namespaces and all_namespaces:
        raise KubedebugError("give namespace or all_namespaces: true, not both")
    if not namespaces and not all_namespaces:
        if labels or fields:
            raise KubedebugError("a label_selector or field_selector needs a namespace (or all_namespaces: true)")
        raise KubedebugError("name the pods (namespace/pod), or give a namespace (or all_namespaces: true) and optionally a label_selector")
    if not whole_namespace and not (labels or fields):
        raise KubedebugError("name the pods, or choose them with a label_selector or field_selector: a namespace alone would select every pod in it")
    return Selection(namespaces=None if all_namespaces else tuple(namespaces), label_selector=labels, field_selector=fields)


def not_found(namespace: str, name: str) -> str:
    """The error of a named pod that ``select`` did not find."""
    return f"pod {namespace}/{name} not found"


def select(client: EphemeralClient, selection: Selection) -> tuple[list[dict[str, Any]], list[Missing]]:
    """The pods to look at, and the named pods that could not be found or read.

    One LIST per namespace (a namespace with one named pod uses a field selector).
    A selector that cannot be listed raises; named pods are read one namespace at
    a time, so a namespace whose pods may not be listed gives ``Missing`` entries
    with the API's refusal and the other namespaces are still read.
    """
    if not selection.refs:
        namespaces = None if selection.namespaces is None else list(dict.fromkeys(selection.namespaces))
        listed = client.list_pods(namespaces, label_selector=selection.label_selector, field_selector=selection.field_selector)
        return listed, []
    wanted: dict[str, list[str]] = {}
    for namespace, name in selection.refs:
        names = wanted.setdefault(namespace, [])
        if name not in names:
            names.append(name)
    pods: list[dict[str, Any]] = []
    missing: list[Missing] = []
    for namespace, names in wanted.items():
        field = name_selector(names[0]) if len(names) == 1 else None
        try:
            listed = client.list_pods([namespace], field_selector=field)
        except KubedebugError as exc:
            missing.extend(Missing(namespace, name, exc.msg) for name in names)
            continue
        found = {p["metadata"]["name"]: p for p in listed}
        for name in names:
            if name in found:
                pods.append(found[name])
            else:
                missing.append(Missing(namespace, name, not_found(namespace, name)))
    return pods, missing
