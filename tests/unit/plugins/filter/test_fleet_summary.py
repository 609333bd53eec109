# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for the fleet_summary filter: which checks fail where, across clusters."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.kubedebug.ephemeral.plugins.filter.fleet_summary import fleet_summary


def record(cluster: str, namespace: str, pod: str, node: str | None, output: Any, state: str = "terminated", **extra: Any) -> dict[str, Any]:
    return {"cluster": cluster, "namespace": namespace, "pod": pod, "node": node, "state": state, "reason": None, "error": None,
            "output": output, **extra}  # fmt: skip


def check(target: str, ok: Any, detail: Any = "") -> dict[str, Any]:
    return {"check": "resolve", "target": target, "ok": ok, "detail": detail}


SUMMARY_LINE = {"check": "summary", "target": "dns", "ok": False}

RECORDS = [
    record("eu", "shop", "web-0", "node-a", [check("api", True), check("db", False, "NXDOMAIN"), SUMMARY_LINE]),
    record("eu", "pay", "api-0", "node-a", [check("db", False, "timeout")]),
    record("us", "shop", "web-0", None, [check("db", False), check("api", False)]),
    record("us", "shop", "web-1", "node-b", None, state="waiting", reason="ErrImagePull"),
    record("us", "shop", "web-2", "node-b", [check("api", True)], error="log cut"),
]


@pytest.fixture
def summary() -> dict[str, Any]:
    return fleet_summary(RECORDS, run_id="sweep-1", recipe="dns", label_selector="app=web", clusters=["eu", "us", "ap"])


def test_totals(summary: dict[str, Any]) -> None:
    assert (summary["run_id"], summary["recipe"], summary["label_selector"]) == ("sweep-1", "dns", "app=web")
    assert summary["clusters"] == ["eu", "us", "ap"]  # a cluster without records is still listed
    assert (summary["pods"], summary["checks"], summary["failed_checks"]) == (5, 6, 4)
    assert summary["pods_by_cluster"] == {"eu": 2, "us": 3}


def test_groups(summary: dict[str, Any]) -> None:
    assert summary["by_cluster"] == {"eu": {"checks": 3, "failed_checks": 2}, "us": {"checks": 3, "failed_checks": 2}}
    assert summary["by_namespace"] == {
        "eu/shop": {"checks": 2, "failed_checks": 1},
        "eu/pay": {"checks": 1, "failed_checks": 1},
        "us/shop": {"checks": 3, "failed_checks": 2},
    }
    # A pod without a node is grouped under "-".
    assert summary["by_node"] == {
        "eu/node-a": {"checks": 3, "failed_checks": 2},
        "us/-": {"checks": 2, "failed_checks": 2},
        "us/node-b": {"checks": 1, "failed_checks": 0},
    }


def test_by_check_most_frequent_first(summary: dict[str, Any]) -> None:
    assert summary["by_check"] == [
        {"check": "resolve", "target": "db", "failed": 3, "where": ["eu/shop/web-0", "eu/pay/api-0", "us/shop/web-0"]},
        {"check": "resolve", "target": "api", "failed": 1, "where": ["us/shop/web-0"]},
    ]


def test_unfinished_and_failures(summary: dict[str, Any]) -> None:
    # Not terminated, or terminated with an error reading its results.
    assert [(u["cluster"], u["pod"], u["state"], u["reason"], u["error"]) for u in summary["unfinished"]] == [
        ("us", "web-1", "waiting", "ErrImagePull", None),
        ("us", "web-2", "terminated", None, "log cut"),
    ]
    assert summary["failures"][0] == {
        "cluster": "eu", "namespace": "shop", "node": "node-a", "pod": "web-0", "check": "resolve", "target": "db", "ok": False, "detail": "NXDOMAIN",
    }  # fmt: skip
    assert all(f["check"] != "summary" for f in summary["failures"])


@pytest.mark.parametrize(
    ("ok", "counted_as_failed"),
    [(True, False), (False, True), ("true", False), ("False", True), ("yes", False), (None, True), (1, False), (0, True)],
)
def test_ok_as_ansible_bool(ok: Any, counted_as_failed: bool) -> None:
    got = fleet_summary([record("eu", "shop", "web-0", "n", [check("api", ok)])], run_id="r", recipe="dns")
    assert got["failed_checks"] == int(counted_as_failed)


def test_detail_is_text_and_target_optional() -> None:
    got = fleet_summary([record("eu", "shop", "web-0", "n", [{"check": "ports", "ok": False, "detail": {"open": [80]}}])], run_id="r", recipe="network")
    assert got["failures"][0]["target"] == "" and got["failures"][0]["detail"] == "{'open': [80]}"


def test_lines_without_check_are_ignored() -> None:
    got = fleet_summary([record("eu", "shop", "web-0", "n", [{"note": "x"}, "not a dict", check("api", True)])], run_id="r", recipe="dns")
    assert got["checks"] == 1


def test_unparsed_output_is_listed_per_pod() -> None:
    bad = [{"line": 2, "text": "warning", "error": "e"}, {"line": 5, "text": "x", "error": "e"}]
    records = [
        record("eu", "shop", "web-0", "n", [check("api", False)], bad_lines=bad, parse_error="2 lines are not JSON (lines 2, 5; ...)"),
        record("us", "shop", "web-1", "n", [check("api", True)], bad_lines=[], partial_line={"line": 4, "text": "{", "chars": 1}),
        record("us", "shop", "web-2", "n", [check("api", True)], bad_lines=[], partial_line=None, parse_error=None),
    ]
    got = fleet_summary(records, run_id="r", recipe="dns")
    assert (got["checks"], got["failed_checks"]) == (3, 1)
    assert got["unparsed"] == [
        {"cluster": "eu", "namespace": "shop", "pod": "web-0", "parse_error": "2 lines are not JSON (lines 2, 5; ...)", "bad_lines": 2, "partial_line": False},
        {"cluster": "us", "namespace": "shop", "pod": "web-1", "parse_error": None, "bad_lines": 0, "partial_line": True},
    ]


def test_empty_fleet_is_json() -> None:
    got = fleet_summary([], run_id="r", recipe="dns", clusters=["eu"])
    assert json.loads(json.dumps(got)) == got
    assert (got["pods"], got["checks"], got["by_check"], got["unfinished"], got["unparsed"], got["pods_by_cluster"]) == (0, 0, [], [], [], {})


@pytest.mark.parametrize("records", [None, {"cluster": "eu"}, ["eu"]])
def test_wrong_types(records: Any) -> None:
    with pytest.raises(AnsibleFilterError, match="fleet_summary: expects a list of records"):
        fleet_summary(records, run_id="r", recipe="dns")
