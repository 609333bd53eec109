# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for plugins/module_utils/_errors.py (``KubedebugError``, ``first_of``) and _options.py (the shared checks)."""

from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.kubedebug.ephemeral.plugins.module_utils._errors import KubedebugError, first_of
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._options import (
    check_choice,
    check_limits,
    check_wait_and_parallel,
)

# --------------------------------------------------------------------------- KubedebugError and first_of


def test_kubedebug_error_carries_its_message_and_status() -> None:
    err = KubedebugError("pod ns/x: refused", status=403)
    assert (err.msg, err.status, str(err)) == ("pod ns/x: refused", 403, "pod ns/x: refused")
    assert KubedebugError("no status").status is None


@pytest.mark.parametrize(
    ("count", "joined"),
    [
        (0, ""),
        (1, "e1"),
        (2, "e1; e2"),
        (3, "e1; e2; e3"),
        (4, "e1; e2; e3; and 1 more"),
        (10, "e1; e2; e3; and 7 more"),
    ],
)
def test_first_of_three(count: int, joined: str) -> None:
    assert first_of([f"e{n}" for n in range(1, count + 1)]) == joined


@pytest.mark.parametrize(("limit", "joined"), [(1, "e1; and 3 more"), (4, "e1; e2; e3; e4"), (5, "e1; e2; e3; e4")])
def test_first_of_other_limits(limit: int, joined: str) -> None:
    assert first_of(["e1", "e2", "e3", "e4"], limit) == joined


# --------------------------------------------------------------------------- _options


@pytest.mark.parametrize("values", [{}, {"tail_lines": None, "limit_bytes": None}, {"tail_lines": 1, "limit_bytes": 1048576}])
def test_check_limits_accepts(values: dict[str, Any]) -> None:
    check_limits(values)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"tail_lines": 0}, "tail_lines must be a positive number (or unset); got 0"),
        ({"limit_bytes": -5}, "limit_bytes must be a positive number (or unset); got -5"),
        # the first bad one, in the order given
        ({"tail_lines": 10, "limit_bytes": 0, "other": -1}, "limit_bytes must be a positive number (or unset); got 0"),
        # regression (property tests): beyond int64 the API server answered 400 about a query parameter
        ({"tail_lines": 2**63}, "tail_lines must be at most 9223372036854775807 (the API's largest number); got 9223372036854775808"),
    ],
)
def test_check_limits_refuses(values: dict[str, Any], message: str) -> None:
    with pytest.raises(KubedebugError) as err:
        check_limits(values)
    assert err.value.msg == message
    assert err.value.status is None


@pytest.mark.parametrize(("wait_timeout", "parallel"), [(0, 1), (120, 10), (0.5, 1000), (604800, 2**63)])
def test_check_wait_and_parallel_accepts(wait_timeout: float, parallel: int) -> None:
    check_wait_and_parallel(wait_timeout, parallel)


@pytest.mark.parametrize(
    ("wait_timeout", "parallel", "message"),
    [
        (-1, 10, "wait_timeout must be 0 to 604800 seconds (a week); got -1"),
        (-0.1, 1, "wait_timeout must be 0 to 604800 seconds (a week); got -0.1"),
        # regression (property tests): 2**63 seconds was an OverflowError in the middle of the wait
        (2**63, 1, "wait_timeout must be 0 to 604800 seconds (a week); got 9223372036854775808"),
        (604801, 1, "wait_timeout must be 0 to 604800 seconds (a week); got 604801"),
        (float("nan"), 1, "wait_timeout must be 0 to 604800 seconds (a week); got nan"),
        (120, 0, "parallel must be at least 1; got 0"),
        (120, -2, "parallel must be at least 1; got -2"),
    ],
)
def test_check_wait_and_parallel_refuses(wait_timeout: float, parallel: int, message: str) -> None:
    with pytest.raises(KubedebugError) as err:
        check_wait_and_parallel(wait_timeout, parallel)
    assert err.value.msg == message


def test_check_choice() -> None:
    check_choice("parse", "json", ("raw", "json"))
    with pytest.raises(KubedebugError) as err:
        check_choice("parse", "JSON", ("raw", "json"))
    assert err.value.msg == "parse must be one of raw, json; got 'JSON'"
    with pytest.raises(KubedebugError) as err:
        check_choice("wait_for", None, ("none", "running"))
    assert err.value.msg == "wait_for must be one of none, running; got None"
