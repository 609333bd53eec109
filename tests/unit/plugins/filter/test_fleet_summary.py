# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for the fleet_summary filter: which checks fail where, across clusters."""

from __future__ import annotations

import json
from pathlib import Path
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


def test_pods_the_time_limit_stopped_are_listed_and_bounds_lines_are_not_checks() -> None:
    bounds = {"bounds": {"time_limit": 3, "time_limit_by": "watchdog", "nice": 10, "nice_by": "renice", "niceness": 10}}
    stopped = {"bounds": {"timed_out": True, "time_limit": 3, "time_limit_by": "watchdog", "exit_code": 143, "elapsed": 3}}
    records = [
        record("eu", "shop", "web-0", "n", [bounds, check("api", False), stopped], exit_code=124),
        record("eu", "shop", "web-1", "n", [bounds, check("api", True), SUMMARY_LINE], exit_code=0),
    ]
    got = fleet_summary(records, run_id="r", recipe="dns")
    assert (got["checks"], got["failed_checks"], got["unfinished"]) == (2, 1, [])
    assert got["timed_out"] == [{"cluster": "eu", "namespace": "shop", "pod": "web-0", "detail": "stopped after 3 s (recipe_time_limit)"}]
    html = render_report(got)
    section = html[html.index("<h2>Pods whose recipe was stopped by its time limit</h2>") : html.index("<h2>All failures</h2>")]
    assert "<td>eu/shop/web-0</td><td>stopped after 3 s (recipe_time_limit)</td>" in section and "web-1" not in section
    untimed = render_report(fleet_summary(records[1:], run_id="r", recipe="dns"))
    assert "stopped by its time limit" not in untimed


def test_empty_fleet_is_json() -> None:
    got = fleet_summary([], run_id="r", recipe="dns", clusters=["eu"])
    assert json.loads(json.dumps(got)) == got
    assert (got["pods"], got["checks"], got["by_check"], got["unfinished"], got["unparsed"], got["pods_by_cluster"]) == (0, 0, [], [], [], {})


@pytest.mark.parametrize("records", [None, {"cluster": "eu"}, ["eu"]])
def test_wrong_types(records: Any) -> None:
    with pytest.raises(AnsibleFilterError, match="fleet_summary: expects a list of records"):
        fleet_summary(records, run_id="r", recipe="dns")


# --- the pods left carrying debug containers (debugged_pods_info per cluster) ---------------------------------------

HOSTILE = "<script>alert(1)</script>"


def debugged_pod(namespace: str, pod: str, *containers: dict[str, Any], command: str = "kubectl -n shop rollout restart deployment/web") -> dict[str, Any]:
    return {"namespace": namespace, "pod": pod, "containers": list(containers), "restart": {"advice": "restart Deployment web when done", "command": command}}


def debug_container(name: str, running: bool, by: str = "unknown", reason: str | None = None) -> dict[str, Any]:
    return {"name": name, "running": running, "added_by_us": by != "unknown", "by": by, "reason": reason}


DEBUGGED = [
    {
        "cluster": "eu",
        "pods": [debugged_pod("shop", "web-1", debug_container("kd-dns-sweep-1", False), debug_container("dbg", True, "jane", HOSTILE))],
        "error": "",
    },
    {"cluster": "us", "pods": [], "error": "permission denied listing pods in namespace 'shop'"},
]


def test_debugged_section() -> None:
    got = fleet_summary(RECORDS, run_id="sweep-1", recipe="dns", clusters=["eu", "us"], debugged=DEBUGGED)
    assert got["debugged"] == {
        "pods": 1, "containers": 2, "running": 1, "by_us": 1, "unknown": 1,
        "by_cluster": {"eu": {"pods": 1, "containers": 2, "running": 1}, "us": {"pods": 0, "containers": 0, "running": 0}},
        "errors": [{"cluster": "us", "error": "permission denied listing pods in namespace 'shop'"}],
    }  # fmt: skip
    assert got["debugged_pods"] == [
        {
            "cluster": "eu", "namespace": "shop", "pod": "web-1", "containers": ["kd-dns-sweep-1", "dbg"], "by": ["jane", "unknown"],
            "reasons": [HOSTILE], "running": ["dbg"], "restart": "restart Deployment web when done",
            "command": "kubectl -n shop rollout restart deployment/web",
        }
    ]  # fmt: skip
    # Without debugged_pods_info's results the summary is as before.
    assert "debugged" not in fleet_summary(RECORDS, run_id="sweep-1", recipe="dns")


@pytest.mark.parametrize("debugged", [{"cluster": "eu"}, ["eu"]])
def test_debugged_wrong_types(debugged: Any) -> None:
    with pytest.raises(AnsibleFilterError, match="fleet_summary: debugged expects a list of"):
        fleet_summary([], run_id="r", recipe="dns", debugged=debugged)


def render_report(summary: dict[str, Any]) -> str:
    """playbooks/templates/fleet_report.html.j2 as the playbook renders it (with the one Ansible filter it uses)."""
    import jinja2  # noqa: PLC0415 (only these tests render the template)

    root = Path(__file__).resolve().parents[4]
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(root / "playbooks" / "templates")), undefined=jinja2.StrictUndefined)
    env.filters["dict2items"] = lambda d: [{"key": k, "value": v} for k, v in d.items()]
    return env.get_template("fleet_report.html.j2").render(kd_fleet_summary=summary)


def test_report_shows_the_debugged_section_escaped() -> None:
    html = render_report(fleet_summary(RECORDS, run_id="sweep-1", recipe="dns", clusters=["eu", "us"], debugged=DEBUGGED))
    section = html[html.index("<h2>Pods left carrying debug containers</h2>") : html.index("<h2>All failures</h2>")]
    assert '<div class="n">1 / 1</div>added by us / by others' in section
    assert "<td>eu/shop/web-1</td><td>kd-dns-sweep-1, dbg</td><td>jane, unknown</td><td>&lt;script&gt;alert(1)&lt;/script&gt;</td><td>dbg</td>" in section
    assert "<code>kubectl -n shop rollout restart deployment/web</code>" in section
    assert "us: could not be looked through: permission denied listing pods in namespace &#39;shop&#39;" in section
    assert HOSTILE not in html
    assert "Pods left carrying debug containers" not in render_report(fleet_summary(RECORDS, run_id="sweep-1", recipe="dns"))
