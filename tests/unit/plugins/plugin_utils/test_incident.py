# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for the incident_snapshot part of plugins/plugin_utils/_recipes.py: what the incident_plan action checks.

The messages as users see them, through the role, are tested in tests/unit/test_role_arguments.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import pytest
from ansible.plugins.filter.core import regex_replace

from ansible_collections.kubedebug.ephemeral.plugins.plugin_utils._recipes import (
    controller_dir,
    incident_failure,
    incident_plan,
    incident_problems,
    max_incident_run_id,
    run_id_from_reason,
)

GOOD = {"namespace": "shop", "pod": "web-0", "label_selector": "", "reason": "INC-4711", "run_id": "", "recipes": ["dns", "network", "processes"],
        "recipe_vars": {}, "dest": "/tmp/incidents", "events_limit": 20, "tail_lines": 100, "wait_timeout": 120}  # fmt: skip
# How the role made its run id in Jinja before the incident_plan action: run_id_from_reason must give the same.
ROLE_JINJA = "{{ r | lower | regex_replace('[^a-z0-9-]+', '-') | regex_replace('^-+|-+$', '') | truncate(40, True, '') | regex_replace('-+$', '') }}"


def role_jinja(reason: str) -> str:
    env = jinja2.Environment()
    env.filters["regex_replace"] = regex_replace
    return env.from_string(ROLE_JINJA).render(r=reason)


@pytest.mark.parametrize(
    ("reason", "run_id"),
    [
        ("INC-4711: checkout 502s", "inc-4711-checkout-502s"),
        ("INC-4711", "inc-4711"),
        ("!!!", ""),
        (" -- ?? -- ", ""),
        ("--a--b--", "a--b"),  # '-' is kept, only the ends are stripped
        ("a" * 100, "a" * 40),
        ("a" * 45, "a" * 45),  # Jinja's truncate leaves 5 characters of leeway
        ("a" * 46, "a" * 40),
        ("a" * 39 + " " + "b" * 10, "a" * 39),  # cut after the '-': no '-' at the end
        ("Ünïcödé Straße 3", "n-c-d-stra-e-3"),
        ("İstanbul", "i-stanbul"),  # lower() makes i + a combining dot
        ("INC 1\n", "inc-1"),
        ("日本語", ""),
    ],
)
def test_run_id_from_reason(reason: str, run_id: str) -> None:
    assert run_id_from_reason(reason) == run_id
    assert role_jinja(reason) == run_id


@pytest.mark.parametrize(("recipes", "longest"), [(["dns", "network", "processes"], 50), (["filesystem"], 49), (["dns"], 56), ([], 59)])
def test_max_run_id(recipes: list[str], longest: int) -> None:
    assert max_incident_run_id(recipes) == longest


def test_good_input() -> None:
    assert incident_problems(GOOD) == []
    assert incident_plan(GOOD) == incident_plan({**GOOD, "run_id": "inc-4711"})
    plan = incident_plan(GOOD)
    assert (plan.run_id, plan.bundle) == ("inc-4711", "/tmp/incidents/inc-4711")
    assert incident_plan({**GOOD, "run_id": "mine"}).run_id == "mine"


@pytest.mark.parametrize(
    ("dest", "bundle"),
    [
        ("kubedebug-reports/incidents", "/home/oncall/work/kubedebug-reports/incidents/inc-4711"),
        ("./out/", "/home/oncall/work/out/inc-4711"),
        ("../elsewhere", "/home/oncall/elsewhere/inc-4711"),
        ("/srv/incidents/", "/srv/incidents/inc-4711"),
    ],
)
def test_the_bundle_is_absolute_a_relative_dest_taken_from_the_working_directory(dest: str, bundle: str) -> None:
    assert incident_plan({**GOOD, "dest": dest}, cwd="/home/oncall/work").bundle == bundle


def test_controller_dir_defaults_to_the_process_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", "/home/oncall")
    assert controller_dir("kubedebug-reports/incidents") == str(tmp_path / "kubedebug-reports" / "incidents")
    assert controller_dir("~/incidents") == "/home/oncall/incidents"
    assert incident_plan({**GOOD, "dest": "kubedebug-reports/incidents"}).bundle == str(tmp_path / "kubedebug-reports" / "incidents" / "inc-4711")


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"namespace": ""}, "give incident_snapshot_namespace, the namespace of the pods"),
        ({"label_selector": "app=web"},
         'give exactly one of incident_snapshot_pod or incident_snapshot_label_selector (got pod="web-0", label_selector="app=web")'),
        ({"pod": ""}, 'give exactly one of incident_snapshot_pod or incident_snapshot_label_selector (got pod="", label_selector="")'),
        ({"reason": " \n"}, "give incident_snapshot_reason, the incident id or why the snapshot is taken"),
        ({"run_id": "INC_4711"},
         "give an incident_snapshot_run_id of lower-case letters, digits and '-', starting and ending with a letter or digit,"
         ' or leave it empty to make one of incident_snapshot_reason (got "INC_4711")'),
        ({"run_id": "-r1"}, "give an incident_snapshot_run_id of lower-case letters"),
        ({"reason": "!!!"}, 'incident_snapshot_reason "!!!" has no letter or digit to make a run id of: set incident_snapshot_run_id'),
        ({"reason": "é"}, 'incident_snapshot_reason "\\u00e9" has no letter or digit to make a run id of'),  # quoted as to_json does
        ({"reason": "!!!", "run_id": "inc1"}, None),
        ({"run_id": "r" * 50}, None),  # kd-processes- + 50 = 63
        ({"run_id": "r" * 51},
         "incident_snapshot_run_id is too long: the debug containers kd-<recipe>-<run id> may have at most 63 characters,"
         " so give at most 50 (got 51)"),
        ({"run_id": "r" * 50, "recipes": ["filesystem"]}, "incident_snapshot_run_id is too long: the debug containers kd-<recipe>-<run id>"
         " may have at most 63 characters, so give at most 49 (got 50)"),
        ({"reason": "a" * 45, "recipes": ["filesystem"]}, None),  # a run id made of the reason always fits
        ({"events_limit": -1}, "incident_snapshot_events_limit must be 0 (no events) or more (got -1)"),
        ({"events_limit": 0}, None),
        ({"tail_lines": 0}, "incident_snapshot_tail_lines must be at least 1 (got 0)"),
        ({"wait_timeout": -30}, "incident_snapshot_wait_timeout must be 0 or more seconds (got -30)"),
        ({"wait_timeout": "0"}, None),
        ({"dest": ""}, "give incident_snapshot_dest, the directory on the controller the bundle is written in"),
        ({"recipe_vars": {"dns_names": ["api"], "recipe_names": []}},
         'incident_snapshot_recipe_vars takes recipe_names, recipe_checks and recipe_paths (got ["dns_names", "recipe_names"])'),
        ({"recipe_vars": {"recipe_names": ["api"], "recipe_checks": [], "recipe_paths": []}}, None),
        ({"time_limit": 0, "nice": 0, "canary": 0}, None),
        ({"time_limit": "86400", "nice": 19, "canary": 2}, None),
        ({"time_limit": -1}, "incident_snapshot_time_limit must be 0 (each recipe's own: 100 s, capture 360 s) or 1 to 86400 seconds"),
        ({"time_limit": 86401}, "incident_snapshot_time_limit must be 0 (each recipe's own"),
        ({"time_limit": True}, "incident_snapshot_time_limit must be 0 (each recipe's own"),
        ({"time_limit": "soon"}, "incident_snapshot_time_limit must be 0"),
        ({"nice": 20}, "incident_snapshot_nice must be a niceness of 0 (normal priority) to 19 (the lowest) (got 20)"),
        ({"nice": -1}, "incident_snapshot_nice must be a niceness of 0"),
        ({"canary": -1}, "incident_snapshot_canary must be 0 (no canary) or a number of pods (got -1)"),
    ],
)  # fmt: skip
def test_each_problem(change: dict[str, Any], problem: str | None) -> None:
    problems = incident_problems({**GOOD, **change})
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problems[0].startswith(problem), problems


def test_every_problem_at_once() -> None:
    bad = {**GOOD, "namespace": "", "pod": "", "reason": "", "run_id": "Run 1", "events_limit": -1, "tail_lines": 0, "wait_timeout": -1,
           "dest": "", "recipe_vars": {"x": 1}}  # fmt: skip
    problems = incident_problems(bad)
    assert [problem.split(" ", 2)[:2] for problem in problems] == [
        ["give", "incident_snapshot_namespace,"],
        ["give", "exactly"],
        ["give", "incident_snapshot_reason,"],
        ["give", "an"],
        ["incident_snapshot_events_limit", "must"],
        ["incident_snapshot_tail_lines", "must"],
        ["incident_snapshot_wait_timeout", "must"],
        ["give", "incident_snapshot_dest,"],
        ["incident_snapshot_recipe_vars", "takes"],
    ]
    assert incident_failure(problems) == "incident_snapshot: " + "; ".join(problems)


@pytest.mark.parametrize(
    ("given", "recipes", "limits"),
    [
        ({}, ["dns", "capture"], {"dns": 100, "capture": 360}),  # each recipe's own, as the recipe role's entry points
        ({"time_limit": 0}, ["network", "capture"], {"network": 100, "capture": 360}),
        ({"time_limit": "45"}, ["dns", "capture"], {"dns": 45, "capture": 45}),  # one limit for every recipe
        ({"time_limit": 600}, [], {}),
    ],
)
def test_time_limits_per_recipe(given: dict[str, Any], recipes: list[str], limits: dict[str, int]) -> None:
    assert incident_plan({**GOOD, **given, "recipes": recipes}).time_limits == limits
