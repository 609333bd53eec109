# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: which pods a task or the lookup looks at.

The ``ephemeral_container_info`` and ``pod_snapshot_info`` modules and the
``ephemeral_results`` lookup choose pods the same way: named ``namespace/pod``
(the lookup's terms, the modules' ``pod``), or by ``namespace`` (or
``all_namespaces``) and ``label_selector``. They share the options (documented in
the doc fragment ``kubedebug.ephemeral.selection``), the checks and the LISTs.
``ephemeral_container`` has options of its own (several namespaces, one pod,
field selectors) but lists pods through ``select`` as well.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ansible_collections.kubedebug.ephemeral.plugins.module_utils._client import EphemeralClient
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._errors import KubedebugError

# Doc fragment kubedebug.ephemeral.selection: DOCUMENTATION (namespace, label_selector,
# all_namespaces) and MODULES (pod; the lookup takes pods as its terms).
SELECTION_ARG_SPEC: dict[str, dict[str, Any]] = {
    "pod": {"type": "list", "elements": "str", "aliases": ["name"]},
    "namespace": {"type": "str"},
    "label_selector": {"type": "list", "elements": "str"},
    "all_namespaces": {"type": "bool", "default": False},
}
# The modules refuse these combinations before any API call. The lookup has only
# selection_from's checks, which let all_namespaces win over a namespace.
SELECTION_MUTUALLY_EXCLUSIVE: list[tuple[str, str]] = [
    ("pod", "label_selector"),
    ("pod", "all_namespaces"),
    ("namespace", "all_namespaces"),
]


@dataclass(frozen=True)
class Selection:
    """Which pods: explicit references, or a selector over namespaces (``None``: all namespaces)."""

    refs: tuple[tuple[str, str], ...] = ()
    namespaces: tuple[str, ...] | None = ()
    label_selector: str | None = None
    field_selector: str | None = None


def join_selectors(selectors: Iterable[str] | None) -> str | None:
    """Several label or field selectors as the one the API takes (they are ANDed); ``None`` for none."""
    return ",".join(selectors or []) or None


def parse_ref(term: str, default_namespace: str | None) -> tuple[str, str]:
    """``namespace/pod``, or a bare pod name in ``default_namespace``."""
    term = term.strip()
    if term.count("/") == 1:
        namespace, pod = term.split("/")
    elif "/" not in term and default_namespace:
        namespace, pod = default_namespace, term
    elif "/" not in term:
        raise KubedebugError(
            f"pod reference {term!r} has no namespace: write namespace/pod or set the namespace option"
        )
    else:
        raise KubedebugError(f"pod reference {term!r} is not of the form namespace/pod")
    if not namespace or not pod:
        raise KubedebugError(f"pod reference {term!r} is not of the form namespace/pod")
    return namespace, pod


def selection_from(
    pods: Iterable[str], namespace: str | None, label_selector: Iterable[str] | str | None, all_namespaces: bool
) -> Selection:
    """The selection the lookup's terms or the info modules' options describe."""
    pods = [p for p in pods if p]
    labels = [label_selector] if isinstance(label_selector, str) else list(label_selector or [])
    labels = [label for label in labels if label]
    if pods and labels:
        raise KubedebugError("name pods or give a label_selector, not both")
    if pods:
        if all_namespaces:
            raise KubedebugError("all_namespaces applies to a label_selector, not to named pods")
        return Selection(refs=tuple(parse_ref(p, namespace) for p in pods))
    if not namespace and not all_namespaces:
        if labels:
            raise KubedebugError("a label_selector needs a namespace (or all_namespaces: true)")
        raise KubedebugError(
            "name the pods (namespace/pod), or give a namespace (or all_namespaces: true) and optionally a label_selector"
        )
    return Selection(namespaces=None if all_namespaces else (namespace or "",), label_selector=join_selectors(labels))


def selection_from_options(pods: Iterable[str], get: Callable[[str], Any]) -> Selection:
    """``selection_from`` with the other options read by the lookup's ``get_option`` or a module's ``params.get``."""
    return selection_from(pods, get("namespace"), get("label_selector"), get("all_namespaces"))


def not_found(namespace: str, name: str) -> str:
    """The error of a named pod that ``select`` did not find."""
    return f"pod {namespace}/{name} not found"


def select(client: EphemeralClient, selection: Selection) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """The pods to look at, and the references among ``selection.refs`` that name no pod.

    One LIST per namespace (a single-pod namespace uses a field selector).
    """
    if not selection.refs:
        namespaces = None if selection.namespaces is None else list(dict.fromkeys(selection.namespaces))
        pods = client.list_pods(
            namespaces, label_selector=selection.label_selector, field_selector=selection.field_selector
        )
        return pods, []
    wanted: dict[str, list[str]] = {}
    for namespace, name in selection.refs:
        wanted.setdefault(namespace, [])
        if name not in wanted[namespace]:
            wanted[namespace].append(name)
    pods, missing = [], []
    for namespace, names in wanted.items():
        field = f"metadata.name={names[0]}" if len(names) == 1 else None
        found = {p["metadata"]["name"]: p for p in client.list_pods([namespace], field_selector=field)}
        for name in names:
            if name in found:
                pods.append(found[name])
            else:
                missing.append((namespace, name))
    return pods, missing
