# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the property tests share: how many cases they run, how an answer is judged, and how a module runs.

Every generated case ends in one of three ways, and ``judge`` says which:

* ``ok``: the front end succeeded;
* ``refused``: a clean failure (a module's ``fail_json`` with ``msg``, an ``AnsibleError`` from the lookup or an
  action) whose message names what was wrong;
* ``traceback``: anything else - an exception that escaped, or a module's ``unexpected error`` (``run_module``'s
  catch-all, which is a traceback in a user's terminal: it names no option and says nothing to do).

``CASES`` counts each of them per test; tests/unit/property/conftest.py prints the totals at the end of the session
(``property cases: N, tracebacks: 0``), so a log says how many cases really ran, not how many were asked for.

Imported as ``ansible_collections.kubedebug.ephemeral.tests.unit.property.harness`` (see tests/unit/api_objects.py).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ansible.module_utils import _internal as ansible_internal
from ansible.module_utils.common import warnings as ansible_warnings
from ansible.module_utils.testing import patch_module_args
from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

from ansible_collections.kubedebug.ephemeral.tests.sizes import STRESS, size

# Per test: how many cases ended ok, refused or in a traceback.
CASES: defaultdict[str, Counter[str]] = defaultdict(Counter)

ROOT = Path(__file__).resolve().parents[3]


def property_settings(small: int, full: int) -> settings:
    """The hypothesis settings of one property test: ``size(small, full)`` examples.

    Under ``make test`` the examples are derandomized (a fixed seed per test, no example database): CI runs the same
    cases every time, so a red build is reproduced by rerunning the same command, and a change cannot make it flaky.
    Under ``make stress`` (``KD_STRESS=1``) each run draws new examples and keeps any failing one in
    ``.cache/hypothesis`` (git-ignored), so the next run replays it first; the failure report prints a
    ``@reproduce_failure`` blob. No deadline: a case's time is dominated by HTTP on loopback and by the 2 shared
    cores, not by the code under test, and a slow case is not a wrong one.
    """
    common: dict[str, Any] = {
        "max_examples": size(small, full),
        "deadline": None,
        "print_blob": True,
        # Hostile values are big on purpose (long strings, deep lists); the filters reject few examples.
        "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    }
    if STRESS:
        return settings(derandomize=False, database=DirectoryBasedExampleDatabase(str(ROOT / ".cache" / "hypothesis")), **common)
    return settings(derandomize=True, database=None, **common)


@dataclass(frozen=True)
class Answer:
    kind: str  # ok, refused, traceback; upstream: a traceback of ansible-core's own, before any code of ours ran
    msg: str = ""
    detail: Any = None


def upstream_or_traceback(exc: BaseException) -> str:
    """``upstream`` for ansible-core's own OverflowError in its type checks (``check_type_int("inf")``).

    It is raised while AnsibleModule (or a role's argument validation) converts an option, before any code of this
    collection runs, so this collection cannot turn it into a message; it is counted apart, not hidden.
    """
    frames = traceback.extract_tb(exc.__traceback__)
    if isinstance(exc, OverflowError) and frames and frames[-1].filename.endswith("module_utils/common/validation.py"):
        return "upstream"
    return "traceback"


def record(test: str, answer: Answer) -> Answer:
    CASES[test][answer.kind] += 1
    return answer


def mentions(msg: str, names: Iterable[str]) -> bool:
    """Whether ``msg`` names one of ``names`` as a word (``pod`` is not named by ``pods`` alone, nor by ``podname``)."""
    return any(re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", msg) for name in names)


def pod_level(msg: str) -> bool:
    """Whether ``msg`` is about a pod, named with its namespace (``pod <namespace>/<name>``)."""
    return re.search(r"\bpod [^/]+/\S+", msg) is not None


# The options that choose pods: a refusal about the pods they chose (not found, not readable) names the pod and its
# namespace instead of the option.
SELECTION = frozenset({"pod", "name", "namespace", "_terms"})


def assert_names(answer: Answer, names: Iterable[str], *, case: Any) -> None:
    """Property 2: a refusal names one of ``names`` (the options the case changed, as the user writes them).

    When one of them chooses pods, a pod-level failure (``pod <namespace>/<name> ...``) names what is wrong too.
    """
    names = list(names)
    if answer.kind == "upstream":
        return
    assert answer.kind != "traceback", f"traceback for {case!r}: {answer.msg}\n{answer.detail or ''}"
    if answer.kind == "refused":
        assert answer.msg.strip(), f"a refusal without a message for {case!r}"
        about_pods = SELECTION.intersection(names) and pod_level(answer.msg)
        assert mentions(answer.msg, names) or about_pods, f"the message names none of {names} for {case!r}: {answer.msg}"


def assert_ok(answer: Answer, *, case: Any) -> None:
    """Property 3: valid input is accepted."""
    assert answer.kind in ("ok",), f"valid input refused ({answer.kind}) for {case!r}: {answer.msg}\n{answer.detail or ''}"


# --------------------------------------------------------------------------- modules


@contextlib.contextmanager
def module_context(client_for: Callable[[Any], Any]) -> Iterator[None]:
    """What tests/unit/plugins/modules/conftest.py sets up for a module run, for a whole hypothesis test.

    Its fixtures are function-scoped, and a hypothesis test runs many examples in one function: this is the same
    setup as a context manager (``_module.module_client`` patched, the module's context, fresh warning lists).
    """
    from ansible_collections.kubedebug.ephemeral.plugins.module_utils import _module

    with pytest.MonkeyPatch.context() as scope:
        scope.setattr(_module, "module_client", client_for)
        scope.setattr(ansible_internal, "is_controller", False)
        yield


def run_module(main: Callable[[], None], args: dict[str, Any], *, check_mode: bool = False) -> Answer:
    """Run ``main()`` with ``args`` in-process and judge its JSON result."""
    module_args = dict(args, _ansible_check_mode=check_mode)
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as scope:
        scope.setattr(ansible_warnings, "_global_warnings", {})
        scope.setattr(ansible_warnings, "_global_deprecations", {})
        try:
            with patch_module_args(module_args), contextlib.redirect_stdout(out):
                main()
        except SystemExit:
            pass
        except Exception as exc:  # the property: nothing escapes a module's main()
            return Answer(upstream_or_traceback(exc), f"{type(exc).__name__}: {exc}", traceback.format_exc())
    text = out.getvalue().strip()
    try:
        result = json.loads(text)
    except ValueError:
        return Answer("traceback", f"the module printed no JSON result: {text[:500]!r}")
    if not result.get("failed"):
        return Answer("ok", detail=result)
    msg = str(result.get("msg", ""))
    if "exception" in result or msg.startswith("unexpected error"):
        return Answer("traceback", msg, result.get("exception"))
    return Answer("refused", msg, result)


def summary_lines() -> list[str]:
    total = Counter[str]()
    for counts in CASES.values():
        total.update(counts)
    lines = [
        f"property cases: {sum(total.values())}, tracebacks: {total['traceback']} "
        f"(ok {total['ok']}, refused {total['refused']}, ansible-core's own tracebacks {total['upstream']}; KD_STRESS={os.environ.get('KD_STRESS', '0')})"
    ]
    for test, counts in sorted(CASES.items()):
        lines.append(f"  {test}: {sum(counts.values())} cases (ok {counts['ok']}, refused {counts['refused']}, tracebacks {counts['traceback']})")
    return lines
