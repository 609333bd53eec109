# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for the recipe_summary filter, on records as the ephemeral_results lookup returns them."""

from __future__ import annotations

from typing import Any

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.kubedebug.ephemeral.plugins.filter.recipe_summary import recipe_summary


def record(pod: str, state: str = "terminated", output: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"namespace": "shop", "pod": pod, "container": "kd-dns-r1", "state": state, "output": output}


OK = {"check": "resolve", "target": "kubernetes.default.svc", "ok": True}
FAIL = {"check": "resolve", "target": "api.payments.svc", "ok": False, "detail": "NXDOMAIN"}
SUMMARY_LINE = {"check": "summary", "target": "dns", "ok": False, "detail": "1 of 2 checks passed"}


@pytest.mark.parametrize(
    ("results", "checks", "failed", "unfinished"),
    [
        pytest.param([], 0, 0, [], id="no-pods"),
        pytest.param([record("web-0", output=[OK, FAIL, SUMMARY_LINE])], 3, 1, [], id="summary-line-counted-as-output-not-as-failure"),
        pytest.param([record("web-0", state="running", output=None)], 0, 0, ["web-0"], id="unfinished-no-output"),
        pytest.param([record("web-0", state="waiting", output=[])], 0, 0, ["web-0"], id="empty-output"),
        pytest.param(
            [record("web-0", output=[OK, SUMMARY_LINE]), record("web-1", output=[FAIL, FAIL]), record("web-2", state="waiting")],
            4, 2, ["web-2"], id="several-pods",
        ),
        pytest.param([record("web-0", output=[{"check": "ps"}])], 1, 1, [], id="check-without-ok-failed"),
    ],
)  # fmt: skip
def test_recipe_summary(results: list[dict[str, Any]], checks: int, failed: int, unfinished: list[str]) -> None:
    assert recipe_summary(results, recipe="dns", container="kd-dns-r1") == {
        "recipe": "dns",
        "container": "kd-dns-r1",
        "pods": len(results),
        "checks": checks,
        "failed_checks": failed,
        "unfinished_pods": unfinished,
        "unparsed_pods": [],
        "timed_out_pods": [],
        "stopped": [],
        "bounds": {},
        "bounds_text": "",
    }


BOUNDS = {"bounds": {"time_limit": 100, "time_limit_by": "timeout", "nice": 10, "nice_by": "nice", "niceness": 10}}


def stopped_line(limit: int = 3, exit_code: int = 124) -> dict[str, Any]:
    return {"bounds": {"timed_out": True, "time_limit": limit, "time_limit_by": "watchdog", "exit_code": exit_code, "elapsed": limit}}


def test_bounds_lines_are_not_checks_and_say_how_the_run_was_bounded() -> None:
    got = recipe_summary([record("web-0", output=[BOUNDS, OK, FAIL, SUMMARY_LINE]), record("web-1", output=[BOUNDS, OK])], recipe="dns", container="kd-dns-r1")
    # As without the bounds lines: 3 + 1 lines, 1 failed.
    assert (got["checks"], got["failed_checks"], got["timed_out_pods"], got["stopped"]) == (4, 1, [], [])
    assert got["bounds"] == BOUNDS["bounds"]
    assert got["bounds_text"] == "time limit 100 s (timeout), niceness 10 (nice)"


@pytest.mark.parametrize(
    ("web_0", "exit_code", "cut"),
    [
        pytest.param([BOUNDS, OK, stopped_line()], 124, {}, id="boot-says-timed-out"),
        pytest.param([BOUNDS, OK, stopped_line(exit_code=143)], 124, {}, id="watchdog-term"),
        # limit_bytes cut the log before the boot's last line: the bounded run's exit status says it.
        pytest.param([BOUNDS, OK], 124, {"truncated": True}, id="exit-124-log-truncated"),
        pytest.param([BOUNDS, OK], 124, {"partial_line": {"line": 3, "text": "{", "chars": 1}}, id="exit-124-last-line-cut"),
    ],
)
def test_a_pod_the_time_limit_stopped_is_named(web_0: list[dict[str, Any]], exit_code: int, cut: dict[str, Any]) -> None:
    results = [{**record("web-0", output=web_0), "exit_code": exit_code, **cut}, {**record("web-1", output=[BOUNDS, OK]), "exit_code": 0}]
    got = recipe_summary(results, recipe="dns", container="kd-dns-r1", option_prefix="dns")
    assert got["timed_out_pods"] == ["web-0"]
    limit = 3 if len(web_0) == 3 else 100
    assert got["stopped"] == [f"shop/web-0: stopped after {limit} s (dns_time_limit)"]
    assert (got["checks"], got["failed_checks"]) == (2, 0)


@pytest.mark.parametrize(
    ("output", "exit_code", "cut"),
    [
        # A script run without boot.sh that exits 124 of its own accord, its log cut or not.
        pytest.param([OK], 124, {"truncated": True}, id="no-bounds-line"),
        # Under boot.sh, with its whole log: the boot would have said so had the limit stopped it.
        pytest.param([BOUNDS, OK], 124, {"truncated": False, "partial_line": None}, id="exit-124-whole-log"),
        pytest.param([BOUNDS, OK], 137, {"truncated": True}, id="killed-otherwise"),  # OOM, for one
        pytest.param([BOUNDS, {"bounds": {"timed_out": "yes"}}], 0, {}, id="timed-out-not-true"),
    ],
)
def test_not_stopped_by_the_limit(output: list[dict[str, Any]], exit_code: int, cut: dict[str, Any]) -> None:
    got = recipe_summary([{**record("web-0", output=output), "exit_code": exit_code, **cut}], recipe="dns", container="kd-dns-r1")
    assert got["timed_out_pods"] == [] and got["stopped"] == []


def test_a_check_named_bounds_stays_a_check() -> None:
    line = {"check": "bounds", "bounds": {"timed_out": True}, "ok": False}
    got = recipe_summary([record("web-0", output=[line])], recipe="dns", container="kd-dns-r1")
    assert (got["checks"], got["failed_checks"], got["timed_out_pods"]) == (1, 1, [])


def test_option_prefix_must_be_text() -> None:
    with pytest.raises(AnsibleFilterError, match="option_prefix must be a string"):
        recipe_summary([], recipe="dns", container="kd-dns-r1", option_prefix=["dns"])  # type: ignore[arg-type]


def test_recipe_summary_names_the_pods_whose_output_was_not_all_parsed() -> None:
    bad_line = {"line": 2, "text": "warning: x", "error": "Expecting value: line 1 column 1 (char 0)"}
    results = [
        {**record("web-0", output=[OK, FAIL]), "bad_lines": [bad_line], "parse_error": "line 2 is not JSON: ..."},
        {**record("web-1", output=[OK]), "bad_lines": [], "partial_line": {"line": 9, "text": '{"check"', "chars": 8}},
        {**record("web-2", output=[OK]), "bad_lines": [], "partial_line": None, "parse_error": None},
        record("web-3", output=[OK]),  # a record from before bad_lines existed
    ]
    got = recipe_summary(results, recipe="dns", container="kd-dns-r1")
    # The good lines around the bad one still count.
    assert (got["checks"], got["failed_checks"], got["unparsed_pods"]) == (5, 1, ["web-0", "web-1"])


@pytest.mark.parametrize("results", [None, "web-0", {"pod": "web-0"}, ["web-0"]])
def test_recipe_summary_wrong_types(results: Any) -> None:
    with pytest.raises(AnsibleFilterError, match="recipe_summary: expects the list of records"):
        recipe_summary(results, recipe="dns", container="kd-dns-r1")
