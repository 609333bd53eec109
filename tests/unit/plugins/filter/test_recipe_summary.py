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
    }


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
