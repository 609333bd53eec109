# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for the incident_summary filter: one row per pod of an incident report."""

from __future__ import annotations

from typing import Any

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.kubedebug.ephemeral.plugins.filter.incident_summary import incident_summary


def pod(name: str, **extra: Any) -> dict[str, Any]:
    return {"namespace": "shop", "pod": name, "node": "node-a", "phase": "Running", **extra}


CRASHY = pod(
    "crashy",
    conditions=[{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "False"}],
    containers=[
        {"name": "app", "kind": "container", "restart_count": 3, "last_termination": {"reason": "OOMKilled"}},
        {"name": "init", "kind": "init", "restart_count": None, "last_termination": None},
        # An ephemeral container's restarts and terminations are the debugger's, not the pod's trouble.
        {"name": "kd-dns-r1", "kind": "ephemeral", "restart_count": 7, "last_termination": {"reason": "Completed"}},
    ],
    events=[{"type": "Warning", "reason": "BackOff"}, {"type": "Normal", "reason": "Pulled"}, {"type": "Warning", "reason": "Unhealthy"}],
)
HEALTHY = pod("web-0", conditions=[{"type": "Ready", "status": "True"}], containers=[{"name": "app", "kind": "container", "restart_count": 0}])


def results(*records: dict[str, Any]) -> dict[str, Any]:
    return {"results": list(records), "summary": {}}


def rec(name: str, state: str, output: Any, namespace: str = "shop") -> dict[str, Any]:
    return {"namespace": namespace, "pod": name, "state": state, "output": output}


RECIPES = {
    "dns": results(rec("crashy", "terminated", [{"check": "resolve", "ok": False}, {"check": "resolve", "ok": True}, {"check": "summary", "ok": False}])),
    "network": results(rec("crashy", "running", None), rec("web-0", "terminated", [{"check": "tcp", "ok": True}])),
    # Same pod name in another namespace: not this pod's.
    "processes": results(rec("crashy", "terminated", [{"check": "process", "ok": False}], namespace="other")),
}


def test_rows() -> None:
    crashy, healthy = incident_summary([CRASHY, HEALTHY], recipes=RECIPES)
    assert crashy == {
        "namespace": "shop", "pod": "crashy", "node": "node-a", "phase": "Running", "ready": False, "restarts": 3,
        "last_terminations": ["OOMKilled"], "warning_events": 2, "checks": 2, "failed_checks": 1,
        "unfinished_recipes": ["network"], "unparsed_recipes": [], "timed_out_recipes": [], "error": None,
    }  # fmt: skip
    assert (healthy["ready"], healthy["restarts"], healthy["checks"], healthy["failed_checks"], healthy["unfinished_recipes"]) == (True, 0, 1, 0, [])


def test_rows_name_the_recipes_whose_output_was_not_all_parsed() -> None:
    partial = {**rec("crashy", "terminated", [{"check": "resolve", "ok": True}]), "partial_line": {"line": 3, "text": "{", "chars": 1}}
    bad = {**rec("crashy", "terminated", [{"check": "tcp", "ok": False}]), "bad_lines": [{"line": 1, "text": "x", "error": "e"}]}
    [row] = incident_summary([CRASHY], recipes={"dns": results(partial), "network": results(bad), "processes": results(rec("crashy", "terminated", []))})
    assert (row["checks"], row["failed_checks"], row["unparsed_recipes"]) == (2, 1, ["dns", "network"])


def test_rows_name_the_recipes_the_time_limit_stopped_and_leave_bounds_lines_out_of_the_checks() -> None:
    bounds = {"bounds": {"time_limit": 3, "time_limit_by": "timeout", "nice": 10, "nice_by": "nice", "niceness": 10}}
    stopped = {"bounds": {"timed_out": True, "time_limit": 3, "time_limit_by": "timeout", "exit_code": 124, "elapsed": 3}}
    dns = rec("crashy", "terminated", [bounds, {"check": "resolve", "ok": True}, stopped])
    # Cut before the boot's last line (limit_bytes): the exit status 124 of a bounded run says it all the same.
    network = {**rec("crashy", "terminated", [bounds, {"check": "tcp", "ok": False}]), "exit_code": 124, "truncated": True}
    processes = rec("crashy", "terminated", [bounds, {"check": "process", "ok": True}, {"check": "summary", "ok": True}])
    [row] = incident_summary([CRASHY], recipes={"dns": results(dns), "network": results(network), "processes": results(processes)})
    assert (row["checks"], row["failed_checks"], row["timed_out_recipes"]) == (3, 1, ["dns", "network"])


@pytest.mark.parametrize(
    ("conditions", "ready"),
    [(None, False), ([], False), ([{"type": "Ready", "status": "Unknown"}], False), ([{"type": "Ready", "status": "True"}], True)],
)
def test_ready(conditions: Any, ready: bool) -> None:
    [row] = incident_summary([pod("p", conditions=conditions)])
    assert row["ready"] is ready


def test_pod_read_partially() -> None:
    """A pod whose snapshot failed has no containers or events: the row still comes, with the error."""
    [row] = incident_summary([pod("gone", phase=None, error="pods \"gone\" not found")], recipes={})
    assert (row["restarts"], row["last_terminations"], row["warning_events"], row["checks"]) == (0, [], 0, 0)
    assert row["error"] == 'pods "gone" not found'


def test_no_pods() -> None:
    assert incident_summary([], recipes=RECIPES) == []


@pytest.mark.parametrize(("pods", "recipes"), [(None, {}), ({"pod": "p"}, {}), ([pod("p")], ["dns"])])
def test_wrong_types(pods: Any, recipes: Any) -> None:
    with pytest.raises(AnsibleFilterError, match="incident_summary: "):
        incident_summary(pods, recipes=recipes)
