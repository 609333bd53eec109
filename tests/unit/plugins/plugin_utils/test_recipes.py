# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for plugins/plugin_utils/_recipes.py: what the recipe_plan action checks and plans.

The messages as users see them, through the roles, are tested in tests/unit/test_role_arguments.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.kubedebug.ephemeral.plugins.plugin_utils._recipes import (
    boot_command,
    log_limit,
    recipe_failure,
    recipe_plan,
    recipe_problems,
)

GOOD = {"namespace": "shop", "pod": "web-0", "label_selector": "", "all_namespaces": False, "run_id": "r1", "container": "",
        "image": "busybox", "wait_timeout": 120, "parallel": 10, "limit_bytes": 1024}  # fmt: skip
CAPTURE = {**GOOD, "duration": 10, "count": 1000, "max_bytes": 3, "interface": "any", "filter": ""}


@pytest.mark.parametrize("recipe", ["dns", "network", "processes"])
def test_good_input(recipe: str) -> None:
    assert recipe_problems(recipe, GOOD) == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"namespace": ["shop", "pay"], "pod": "", "label_selector": "app=web"}, None),
        ({"namespace": "", "pod": "", "label_selector": "app=web", "all_namespaces": True}, None),
        ({"namespace": "", "pod": "", "label_selector": "app=web"}, "give dns_namespace (with dns_label_selector"),
        ({"namespace": ["shop", 5], "pod": "", "label_selector": "app=web"}, "dns_namespace must be a namespace or a list of namespaces (got [\"shop\", 5])"),
        ({"run_id": None}, "give a dns_run_id of lower-case letters, digits and '-'"),
        ({"run_id": "-r1"}, "give a dns_run_id"),
        ({"run_id": "r" * 56}, None),  # kd-dns- + 56 = 63
        ({"run_id": "r" * 57}, "dns_run_id is too long: the debug container kd-dns-<run id> may have at most 63 characters, so give at most 56"),
        ({"namespace": ["shop"]}, "dns_pod is one pod: give its namespace as dns_namespace, not a list"),
        ({"run_id": "r" * 58, "container": "mine"}, None),  # the run id only names a container that is not given
        ({"image": "busybox "}, "dns_image must name the debug image"),
        ({"wait_timeout": "x"}, "dns_wait_timeout must be 0 or more seconds (got x)"),
        ({"time_limit": 1, "nice": 0}, None),
        ({"time_limit": "86400", "nice": "19"}, None),
        # The time limit does not have to be below the wait: a detached run, or one collected again later.
        ({"time_limit": 600, "wait_timeout": 5}, None),
        ({"time_limit": 0}, "dns_time_limit must be 1 to 86400 seconds, after which the recipe is stopped (got 0)"),
        ({"time_limit": 86401}, "dns_time_limit must be 1 to 86400 seconds"),
        ({"time_limit": "soon"}, 'dns_time_limit must be 1 to 86400 seconds, after which the recipe is stopped (got "soon")'),
        ({"time_limit": True}, "dns_time_limit must be 1 to 86400 seconds"),
        ({"time_limit": None}, "dns_time_limit must be 1 to 86400 seconds"),
        ({"nice": -1}, "dns_nice must be a niceness of 0 (normal priority) to 19 (the lowest), as nice -n takes it (got -1)"),
        ({"nice": 20}, "dns_nice must be a niceness of 0 (normal priority) to 19"),
        ({"nice": "low"}, 'dns_nice must be a niceness of 0 (normal priority) to 19 (the lowest), as nice -n takes it (got "low")'),
    ],
)  # fmt: skip
def test_problems_name_the_option(change: dict[str, Any], problem: str | None) -> None:
    problems = recipe_problems("dns", {**GOOD, **change}, prefix="dns")
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problems[0].startswith(problem), problems


def test_failure_heads() -> None:
    assert recipe_failure("dns", GOOD, ["a", "b"], prefix="dns") == "dns: a; b"
    assert recipe_failure("main", {"name": "greet"}, ["a"]) == "recipe greet: a"
    assert recipe_failure("jvm", GOOD, ["a"]) == "recipe jvm: a"


@pytest.mark.parametrize(
    ("recipe", "options", "args"),
    [
        ("dns", {"names": ["a.svc", "b"]}, ["a.svc", "b"]),
        ("network", {"checks": ["tcp:db:5432"]}, ["tcp:db:5432"]),
        ("processes", {}, []),
        ("filesystem", {"max_bytes": "64", "paths": ["/etc/hosts"]}, ["--max-bytes", "64", "--", "/etc/hosts"]),
        ("filesystem", {"max_bytes": "64", "paths": ["--pid=1", "-x"]}, ["--max-bytes", "64", "--", "--pid=1", "-x"]),
        ("capture", CAPTURE, ["--duration", "10", "--count", "1000", "--max-bytes", "3", "--interface", "any", "--"]),
        ("capture", {**CAPTURE, "filter": "tcp port 443"},
         ["--duration", "10", "--count", "1000", "--max-bytes", "3", "--interface", "any", "--", "tcp port 443"]),
        ("jvm", {"pid": 0, "histogram": True}, []),
        ("jvm", {"pid": 42, "histogram": False}, ["--pid", "42", "--no-histogram"]),
        ("python", {"pid": "7"}, ["--pid", "7"]),
        ("main", {"name": "greet", "args": ["x", 1]}, ["x", "1"]),
    ],
)  # fmt: skip
def test_plan(recipe: str, options: dict[str, Any], args: list[str]) -> None:
    plan = recipe_plan(recipe, {**GOOD, **options})
    name = options.get("name", recipe)
    assert (plan.name, plan.container, plan.namespaces, plan.args) == (name, f"kd-{name}-r1", ["shop"], args)


def test_plan_container_and_namespaces() -> None:
    plan = recipe_plan("dns", {**GOOD, "container": "mine", "namespace": ["a", "b"]})
    assert (plan.container, plan.namespaces) == ("mine", ["a", "b"])
    assert recipe_plan("dns", {**GOOD, "namespace": ""}).namespaces == []


@pytest.mark.parametrize(("max_bytes", "limit"), [(1, 65540), (3, 65540), (4, 65544), (5242880, 7056044)])
def test_capture_reads_room_for_the_base64_pcap(max_bytes: int, limit: int) -> None:
    assert log_limit("capture", {**CAPTURE, "max_bytes": max_bytes}) == limit
    assert log_limit("dns", GOOD) == 1024


@pytest.mark.parametrize(
    ("recipe", "change", "problems"),
    [
        ("capture", {"duration": 301, "wait_timeout": 420}, ["recipe_duration must be 1 to 300 seconds (got 301)"]),
        ("capture", {"duration": 0, "count": 0, "max_bytes": 0},
         ["recipe_duration must be 1 to 300", "recipe_count must be at least 1 packet", "recipe_max_bytes must be at least 1"]),
        ("capture", {"duration": 30, "wait_timeout": 30}, ["recipe_wait_timeout must be longer than recipe_duration"]),
        ("capture", {"interface": "-w /etc/x"}, ["recipe_interface must be the name of a network interface"]),
        ("capture", {"interface": "eth0;id"}, ["recipe_interface must be the name of a network interface"]),
        ("capture", {"interface": ""}, ["recipe_interface must be the name of a network interface"]),
        ("jvm", {"pid": -1}, ["recipe_pid must be a process id, or 0 for every JVM"]),
        ("python", {"pid": -1}, ["recipe_pid must be a process id, or 0 for every Python process"]),
        ("filesystem", {"max_bytes": 0}, ["recipe_max_bytes must be at least 1 (got 0)"]),
        ("capture", {"duration": 300, "time_limit": 309}, ["recipe_time_limit must be at least recipe_duration + 10 seconds, or the capture is stopped"]),
        ("capture", {"duration": 300, "time_limit": 310}, []),
        ("capture", {"duration": 300}, []),  # the default time limit covers the longest capture
        ("capture", {"time_limit": 0}, ["recipe_time_limit must be 1 to 86400 seconds"]),
        ("main", {"name": "Greet", "script": " "}, ["recipe_name must be lower-case", "recipe_script is empty"]),
        ("dns", {"canary": -1}, ["recipe_canary must be 0 (no canary) or a number of pods (got -1)"]),
        ("dns", {"canary": 2}, []),
    ],
)  # fmt: skip
def test_recipe_checks(recipe: str, change: dict[str, Any], problems: list[str]) -> None:
    got = recipe_problems(recipe, {**CAPTURE, "wait_timeout": 420, **change})
    assert len(got) == len(problems) and all(g.startswith(p) for g, p in zip(got, problems, strict=True)), got


@pytest.mark.parametrize(
    ("recipe", "options", "bounds"),
    [
        ("dns", {}, (100, 10, False)),
        ("capture", CAPTURE, (360, 10, False)),
        ("dns", {"time_limit": "3", "nice": "0", "detach": "yes"}, (3, 0, True)),
        ("main", {"name": "greet", "time_limit": 5, "nice": 19, "detach": False}, (5, 19, False)),
    ],
)  # fmt: skip
def test_plan_bounds(recipe: str, options: dict[str, Any], bounds: tuple[int, int, bool]) -> None:
    plan = recipe_plan(recipe, {**GOOD, **options})
    assert (plan.time_limit, plan.nice, plan.detach) == bounds


def test_boot_command_keeps_everything_positional() -> None:
    """The boot, the bounds, the script and each argument are one argv element each: nothing is spliced into text."""
    plan = recipe_plan("main", {**GOOD, "name": "greet", "args": ["a;b", "c d"], "time_limit": 7, "nice": 3})
    assert boot_command("BOOT", plan, "SCRIPT") == ["sh", "-c", "BOOT", "kd-boot", "7", "3", "SCRIPT", "greet", "a;b", "c d"]


def test_boot_command_is_escaped_for_the_kubelet() -> None:
    """The kubelet turns $$ into $ and $(NAME) into the value of the container's variable NAME: every $ is doubled,
    so that the container runs the script's $$ (its pid) and an argument $(HOME) as they were written."""
    plan = recipe_plan("main", {**GOOD, "name": "greet", "args": ["$(HOME)", "$$", "a$b"]})
    command = boot_command("echo $$", plan, 'echo "$1" $(id)')
    assert command == ["sh", "-c", "echo $$$$", "kd-boot", "100", "10", 'echo "$$1" $$(id)', "greet", "$$(HOME)", "$$$$", "a$$b"]
