# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Generated role variables for every role's entry points, through the checks a play runs before touching a cluster.

A case is a role's good input (tests/unit/test_role_arguments.py runs the same input with ansible-playbook) with one
variable changed to a valid or a hostile value. It goes the way a play takes it, in-process:

1. the role's argument spec (``meta/argument_specs.yml``), with ansible-core's ``ArgumentSpecValidator`` as the
   implicit ``validate_argument_spec`` task uses it (the role then sees the variables as given, not converted);
2. the role's input check: the real ``recipe_plan`` or ``incident_plan`` action plugin, given the options its task
   builds (read from the role's task files and rendered with Jinja's native types, as ansible-core >= 2.19 does);
3. then, as the role goes on: a shim (``dns``, ...) includes the recipe role's entry point, whose argument spec and
   plan must accept what the shim accepted; a recipe adds its container with ``ephemeral_container`` (roles/recipe/
   tasks/run.yml), and incident_snapshot reads the pods with ``pod_snapshot_info`` and runs each of its recipes -
   each module's real ``main()`` against the fake API server of apiserver.py.

Properties: never a traceback; a refusal at any step names the changed variable as the user wrote it (``dns_run_id``,
not ``recipe_run_id``); and input that got past the first two steps is never refused later (a problem found after
the pods were touched is one the role's check should have found before).
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Mapping
from functools import cache
from itertools import chain
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from ansible.errors import AnsibleError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.filter.core import combine
from hypothesis import given
from hypothesis import strategies as st
from jinja2.nativetypes import NativeEnvironment, NativeTemplate

from ansible_collections.kubedebug.ephemeral.plugins.action import incident_plan, recipe_plan
from ansible_collections.kubedebug.ephemeral.plugins.modules import ephemeral_container, pod_snapshot_info
from ansible_collections.kubedebug.ephemeral.tests.unit.property.apiserver import NS, property_apiserver
from ansible_collections.kubedebug.ephemeral.tests.unit.property.harness import (
    Answer,
    assert_names,
    module_context,
    property_settings,
    record,
    run_module,
    upstream_or_traceback,
)
from ansible_collections.kubedebug.ephemeral.tests.unit.property.strategies import (
    ANY_TEXT,
    BAD_LABEL_SELECTOR,
    BOOL_WORDS,
    CONTROL_TEXT,
    DNS_LABEL,
    HOSTILE,
    HUGE_INT,
    LABEL_SELECTOR,
    LONG_TEXT,
    NOT_DNS_LABEL,
    NUMBER_WORDS,
    str_lists,
)

pytestmark = pytest.mark.stress

ROOT = Path(__file__).resolve().parents[3]
ROLES = ROOT / "roles"
RECIPES = ("dns", "network", "processes", "filesystem", "capture", "jvm", "python")
POD = "with-volumes"
ENTRIES = (*RECIPES, *(f"recipe.{r}" for r in ("main", *RECIPES)), "incident_snapshot")

# --------------------------------------------------------------------------- the roles' files


@cache
def specs(role: str) -> dict[str, Any]:
    return dict(yaml.safe_load((ROLES / role / "meta" / "argument_specs.yml").read_text(encoding="utf-8"))["argument_specs"])


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def split(entry: str) -> tuple[str, str]:
    """``recipe.dns`` -> (recipe, dns); ``dns`` -> (dns, main)."""
    role, _dot, point = entry.partition(".")
    return role, point or "main"


def prefix(entry: str) -> str:
    return split(entry)[0]


def defaults(entry: str) -> dict[str, Any]:
    role, point = split(entry)
    return dict(load(ROLES / role / "defaults" / f"{point}.yml") or {})


def first_task_args(path: Path, action: str) -> dict[str, Any]:
    task = load(path)[0]
    assert action in task, f"{path}: the first task is not {action}"
    return dict(task[action] if action != "vars" else task["vars"])


def _keep_types(values: Any) -> Any:
    """Jinja's native concat without its literal_eval: a string stays a string, as in ansible-core >= 2.19."""
    items = list(values)
    return items[0] if len(items) == 1 else "".join(str(item) for item in items)


class Template(NativeTemplate):
    environment_class = None  # set below: the template renders with Env's concat, not NativeEnvironment's


class Env(NativeEnvironment):
    concat = staticmethod(_keep_types)  # type: ignore[assignment]
    template_class = Template


Template.environment_class = Env


ENV = Env()
ENV.filters["combine"] = combine


@cache
def template(source: str) -> Any:
    return ENV.from_string(source)


def render(value: Any, variables: Mapping[str, Any]) -> Any:
    if isinstance(value, str) and "{{" in value:
        return template(value).render(variables)
    if isinstance(value, Mapping):
        return {key: render(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [render(item, variables) for item in value]
    return value


# --------------------------------------------------------------------------- running the steps


def action(plugin: Any, args: dict[str, Any], role: str) -> Answer:
    """Run an action plugin's ``run()`` as a task of ``role`` would (no connection, no templating left to do)."""
    task = SimpleNamespace(
        args=args,
        async_val=0,
        check_mode=False,
        action=plugin.__name__,
        get_search_path=lambda: [str(ROLES / role), str(ROLES / role / "tasks")],
    )
    connection = SimpleNamespace(_shell=SimpleNamespace(tmpdir="/nonexistent-kd-prop"))
    module = plugin.ActionModule(task, connection, None, DataLoader(), None, None)
    try:
        result = module.run(task_vars={})
    except AnsibleError as exc:
        return Answer("refused", str(exc), exc)
    except Exception as exc:  # the property: an action fails with an AnsibleError or a failed result, nothing else
        return Answer("traceback", f"{type(exc).__name__}: {exc}", traceback.format_exc())
    if result.get("failed"):
        return Answer("refused", str(result.get("msg", "")), result)
    return Answer("ok", detail=result)


def validate(entry: str, variables: Mapping[str, Any]) -> Answer:
    """The implicit first task of a role: ``validate_argument_spec`` with the entry point's options."""
    role, point = split(entry)
    options = specs(role)[point]["options"]
    try:
        result = ArgumentSpecValidator(options).validate({k: v for k, v in variables.items() if k in options}, validate_role_argument_spec=True)
    except Exception as exc:  # ansible-core's check_type_int("inf") raises OverflowError: counted apart, not hidden
        return Answer(upstream_or_traceback(exc), f"{type(exc).__name__}: {exc}", traceback.format_exc())
    if result.error_messages:
        return Answer("refused", "Validation of arguments failed:\n" + "\n".join(result.error_messages))
    return Answer("ok")


def recipe_entry(point: str, recipe_vars: dict[str, Any]) -> list[tuple[str, Answer]]:
    """The recipe role's entry point ``point`` with ``recipe_vars`` (defaults_from the same name): every step's answer."""
    variables = {**defaults(f"recipe.{point}"), **recipe_vars}
    steps = [("recipe arguments", validate(f"recipe.{point}", variables))]
    if steps[-1][1].kind != "ok":
        return steps
    variables["__recipe_common_options"] = render(load(ROLES / "recipe" / "vars" / "main.yml")["__recipe_common_options"], variables)
    args = render(first_task_args(ROLES / "recipe" / "tasks" / f"{point}.yml", "kubedebug.ephemeral.recipe_plan"), variables)
    plan = action(recipe_plan, args, "recipe")
    steps.append(("recipe plan", plan))
    if plan.kind != "ok":
        return steps
    # roles/recipe/tasks/run.yml: "omit" where it says "or omit".
    p = plan.detail
    module_args = {
        "namespace": p["namespaces"] or None,
        "all_namespaces": variables["recipe_all_namespaces"] if not p["namespaces"] else None,
        "pod": variables["recipe_pod"] or None,
        "label_selector": variables["recipe_label_selector"] or None,
        "container": p["container"],
        "image": variables["recipe_image"],
        "profile": variables["recipe_profile"],
        "target_container": variables["recipe_target_container"] or None,
        "command": p["command"],
        "env": variables["recipe_env"] or None,
        "annotate": variables["recipe_annotate"],
        "reason": variables["recipe_reason"] or None,
        "wait": "none",
        "parallel": variables["recipe_parallel"],
    }
    steps.append(("ephemeral_container", run_module(ephemeral_container.main, {k: v for k, v in module_args.items() if v is not None})))
    return steps


def shim(role: str, variables: dict[str, Any]) -> list[tuple[str, Answer]]:
    """roles/<recipe>/tasks/main.yml: check the input under the role's names, then include the recipe role."""
    args = render(first_task_args(ROLES / role / "tasks" / "main.yml", "kubedebug.ephemeral.recipe_plan"), variables)
    steps = [("check", action(recipe_plan, args, role))]
    if steps[-1][1].kind != "ok":
        return steps
    return steps + recipe_entry(role, dict(args["options"]))


def incident(variables: dict[str, Any]) -> list[tuple[str, Answer]]:
    """roles/incident_snapshot/tasks: the plan, the pods' snapshot, then each recipe as recipe.yml includes it."""
    tasks = ROLES / "incident_snapshot" / "tasks"
    args = render(first_task_args(tasks / "main.yml", "kubedebug.ephemeral.incident_plan"), variables)
    plan = action(incident_plan, args, "incident_snapshot")
    steps = [("incident plan", plan)]
    if plan.kind != "ok":
        return steps
    snapshot_args = {
        "namespace": variables["incident_snapshot_namespace"],
        "pod": [variables["incident_snapshot_pod"]] if variables["incident_snapshot_pod"] else None,
        "label_selector": variables["incident_snapshot_label_selector"] or None,
        "events_limit": variables["incident_snapshot_events_limit"],
        "tail_lines": variables["incident_snapshot_tail_lines"],
    }
    steps.append(("pod_snapshot_info", run_module(pod_snapshot_info.main, {k: v for k, v in snapshot_args.items() if v is not None})))
    include = load(tasks / "recipe.yml")
    for recipe in variables["incident_snapshot_recipes"]:
        scope = {**variables, "__incident_snapshot_plan": plan.detail, "__incident_snapshot_recipe": recipe, "ansible_check_mode": False}
        task = include[0] if not variables["incident_snapshot_debug_image"] else include[1]
        steps += recipe_entry(recipe, render(task["vars"], scope))
    return steps


# --------------------------------------------------------------------------- what to generate

IMAGE = st.from_regex(r"\A[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+){0,2}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,20})?\Z")
COUNT = st.one_of(st.integers(max_value=0), HUGE_INT, NUMBER_WORDS, st.floats())
NATURAL = st.one_of(st.integers(max_value=-1), HUGE_INT, NUMBER_WORDS, st.floats())
ENV_VARS = st.dictionaries(st.from_regex(r"\A[A-Z_][A-Z0-9_]{0,10}\Z"), ANY_TEXT, max_size=3)
PATHS = st.from_regex(r"\A/[a-z0-9/_.-]{0,30}\Z")


def run_id(longest: int) -> st.SearchStrategy[str]:
    return st.one_of(DNS_LABEL.filter(lambda r: len(r) <= longest), st.just("r" * longest))


# Per option (without the role's prefix): valid values (the role must accept them) and hostile ones.
def option_values(entry: str, option: str, spec: Mapping[str, Any]) -> tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]:
    recipe = "greet" if entry == "recipe.main" else split(entry)[1] if entry.startswith("recipe.") else split(entry)[0]
    longest_run_id = 63 - len(f"kd-{recipe}-") if entry != "incident_snapshot" else 63 - len("kd--") - len("processes")
    known: dict[str, tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]] = {
        "namespace": (st.just(NS), st.one_of(NOT_DNS_LABEL.filter(bool), st.lists(HOSTILE, max_size=2), st.just([NS]))),
        "pod": (st.sampled_from([POD, "plain", "states"]), st.one_of(NOT_DNS_LABEL, st.sampled_from(["missing", "a/b"]))),
        "label_selector": (LABEL_SELECTOR, BAD_LABEL_SELECTOR),
        "run_id": (run_id(longest_run_id), st.one_of(NOT_DNS_LABEL, st.integers(longest_run_id + 1, 300).map(lambda n: "r" * n))),
        "container": (DNS_LABEL.filter(lambda c: c not in ("app", "sidecar", "init")), NOT_DNS_LABEL.filter(bool)),
        "target_container": (st.sampled_from(["", "app", "sidecar"]), st.one_of(NOT_DNS_LABEL.filter(bool), st.just("nope"))),
        "image": (IMAGE, st.one_of(st.sampled_from(["", " ", " busybox", "busybox\n"]), CONTROL_TEXT)),
        "debug_image": (st.one_of(st.just(""), IMAGE), st.one_of(st.sampled_from([" ", " busybox", "busybox\n"]), CONTROL_TEXT)),
        "env": (ENV_VARS, st.lists(HOSTILE, min_size=1, max_size=2)),
        "debug_env": (ENV_VARS, st.lists(HOSTILE, min_size=1, max_size=2)),
        "wait_timeout": (st.integers(301, 604800) if recipe == "capture" else st.integers(0, 604800), st.one_of(NATURAL, st.integers(604801, 10**9))),
        "parallel": (st.integers(1, 1000), COUNT),
        "limit_bytes": (st.integers(1, 2**40), st.one_of(COUNT, st.just(2**63))),
        "max_bytes": (st.integers(1, 2**30), st.one_of(COUNT, st.just(2**63))),
        "duration": (st.integers(1, 300), st.one_of(COUNT, st.integers(301, 10**6))),
        # capture's must cover its duration (10 s by default) and 10 s more.
        "time_limit": (st.integers(20 if recipe == "capture" else 1, 86400), st.one_of(COUNT, st.integers(86401, 10**9))),
        "nice": (st.integers(0, 19), st.one_of(st.integers(max_value=-1), st.integers(20, 10**6), HUGE_INT, NUMBER_WORDS, st.floats())),
        "count": (st.integers(1, 10**6), COUNT),
        "pid": (st.integers(0, 2**22), NATURAL),
        "canary": (st.integers(0, 10**6), NATURAL),
        "events_limit": (st.integers(0, 10**4), NATURAL),
        "tail_lines": (st.integers(1, 10**6), st.one_of(COUNT, st.just(2**63))),
        "names": (str_lists(st.from_regex(r"\A[a-z0-9.-]{1,30}\Z")), st.one_of(ANY_TEXT, st.dictionaries(ANY_TEXT, HOSTILE, max_size=2))),
        "checks": (
            str_lists(st.from_regex(r"\A(tcp|http):[a-z0-9.-]{1,20}:[0-9]{1,5}\Z")),
            st.one_of(ANY_TEXT, st.dictionaries(ANY_TEXT, HOSTILE, max_size=2)),
        ),
        "paths": (str_lists(PATHS), st.one_of(ANY_TEXT, st.dictionaries(ANY_TEXT, HOSTILE, max_size=2))),
        "args": (str_lists(), st.one_of(ANY_TEXT, st.dictionaries(ANY_TEXT, HOSTILE, max_size=2))),
        "script": (st.text(min_size=1, max_size=200).filter(str.strip), st.sampled_from(["", " ", "\n\t"])),
        "name": (DNS_LABEL.filter(lambda n: len(n) <= 20), NOT_DNS_LABEL),
        "reason": (
            st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9 _.:-]{0,60}\Z"),
            st.one_of(st.sampled_from(["", " ", "---", "ÄÖÜ", "!!!"]), CONTROL_TEXT, LONG_TEXT),
        ),
        "recipes": (st.lists(st.sampled_from(RECIPES), min_size=1, max_size=3, unique=True), st.lists(ANY_TEXT, min_size=1, max_size=2)),
        "recipe_vars": (
            st.fixed_dictionaries({}, optional={"recipe_names": str_lists(st.from_regex(r"\A[a-z0-9.-]{1,30}\Z")), "recipe_paths": str_lists(PATHS)}),
            st.one_of(
                st.dictionaries(st.sampled_from(["recipe_names", "recipe_checks", "recipe_paths", "recipe_image", "names"]), HOSTILE, min_size=1, max_size=2),
                st.lists(HOSTILE, max_size=2),
            ),
        ),  # fmt: skip
        "dest": (PATHS.filter(lambda p: len(p) > 1), st.sampled_from(["", None])),
        "interface": (st.from_regex(r"\A[a-z0-9]{1,15}\Z"), HOSTILE),
        "filter": (st.sampled_from(["", "tcp port 80", "udp"]), HOSTILE),
    }
    if option == "all_namespaces":  # with a label selector and no namespace (COMPANIONS): only true is valid
        return st.sampled_from([True, "yes", "true", "on", 1]), st.sampled_from([False, "no", "false", "off", 0, "nope", ""])
    if option in known:
        return known[option]
    kind = spec.get("type", "str")
    if spec.get("choices") and kind == "str":
        return st.sampled_from(spec["choices"]), st.one_of(st.sampled_from(["", "GENERAL", "privileged"]), HOSTILE)
    if kind == "bool":
        return st.booleans() | st.sampled_from(["yes", "no", "true", "false"]), BOOL_WORDS
    if kind == "dict":
        return st.just({}), st.one_of(st.lists(HOSTILE, max_size=2), ANY_TEXT)
    return ANY_TEXT, HOSTILE


def good_input(entry: str) -> dict[str, Any]:
    """What tests/unit/test_role_arguments.py's good_input gives, on the fake API server's pod."""
    if entry == "incident_snapshot":
        return {
            "incident_snapshot_namespace": NS,
            "incident_snapshot_pod": POD,
            "incident_snapshot_reason": "INC-4711",
            "incident_snapshot_dest": "/nonexistent-kd-prop",
        }
    p = prefix(entry)
    extra = {"recipe_name": "greet", "recipe_script": "emit_check greet world true hello"} if entry == "recipe.main" else {}
    return {f"{p}_namespace": NS, f"{p}_pod": POD, f"{p}_run_id": "inc1", **extra}


# Variables that only make sense together: a label selector instead of the pod, all namespaces instead of one.
COMPANIONS = {
    "label_selector": {"pod": ""},
    "all_namespaces": {"pod": "", "label_selector": "app=web", "namespace": ""},
}


@st.composite
def role_cases(draw: st.DrawFn, entry: str) -> tuple[str, Any, bool]:
    role, point = split(entry)
    options = specs(role)[point]["options"]
    name = draw(st.sampled_from(sorted(o for o in options if not o.endswith("_auth"))))
    option = name.removeprefix(prefix(entry) + "_")
    valid, hostile = option_values(entry, option, options[name])
    if draw(st.booleans()):
        return name, draw(valid), True
    return name, draw(st.one_of(hostile, HOSTILE)), False


def run_entry(entry: str, variables: dict[str, Any]) -> list[tuple[str, Answer]]:
    steps = [("arguments", validate(entry, variables))]
    if steps[0][1].kind != "ok":
        return steps
    role, point = split(entry)
    if entry == "incident_snapshot":
        return steps + incident(variables)
    if role == "recipe":
        return steps + recipe_entry(point, variables)
    return steps + shim(role, variables)


def late_but_fine(answer: Answer) -> bool:
    """Refusals only the cluster can make, at the module that first reads it (before anything is changed).

    Only kube-apiserver knows its label selector grammar, and only the pod which containers it has, and whether it
    exists. The roles hand these on; the module's message names the pod and namespace, or its option, which is the
    role's variable without its prefix (``label_selector``, ``target_container``).
    """
    msg = answer.msg
    return (
        msg.startswith("the API server refused label_selector")
        or bool(re.search(r"\bpod .+ not found: check the pod name and namespace", msg, re.DOTALL))
        or bool(re.search(r"target_container .+ does not exist in the pod", msg, re.DOTALL))
    )


@pytest.mark.parametrize("entry", ENTRIES)
def test_one_variable_changed(entry: str) -> None:
    test = f"roles[{entry}]: one variable"
    p = prefix(entry)

    with property_apiserver() as (server, cluster), module_context(lambda module: server.client()):

        @property_settings(small=8, full=150)
        @given(case=role_cases(entry))
        def check(case: tuple[str, Any, bool]) -> None:
            name, value, valid = case
            cluster.reset()
            option = name.removeprefix(p + "_")
            variables = {**defaults(entry), **good_input(entry), **{f"{p}_{k}": v for k, v in COMPANIONS.get(option, {}).items()}, name: value}
            steps = run_entry(entry, variables)
            where, answer = steps[-1]
            record(test, answer)
            if answer.kind == "upstream":
                return
            shown = {"case": case, "steps": [(w, a.kind, a.msg[:300]) for w, a in steps]}
            # The shim's names are the user's; once past its check, a refusal may only come from the role's own
            # check, and must still name what the user set.
            assert_names(answer, [name, option] if late_but_fine(answer) else [name], case=shown)
            if answer.kind == "refused":
                assert where in ("arguments", "check", "incident plan") or entry.startswith("recipe.") and where == "recipe plan" or late_but_fine(answer), (
                    f"refused at {where!r}, after the role's own check accepted it: {shown}"
                )
            if valid:
                assert answer.kind == "ok", f"valid input refused: {shown}"

        check()


def test_every_entry_point_has_cases() -> None:
    # A role or entry point added to the collection must be added here too.
    found = {e.parent.parent.name for e in ROLES.glob("*/meta/argument_specs.yml")}
    assert found == {split(e)[0] for e in ENTRIES}
    assert set(specs("recipe")) == {split(e)[1] for e in ENTRIES if e.startswith("recipe.")}
    assert list(chain.from_iterable(first_task_args(ROLES / r / "tasks" / "main.yml", "kubedebug.ephemeral.recipe_plan")["options"] for r in RECIPES))
    assert all(
        re.fullmatch(r"\{\{ \w+ \}\}", v) for v in first_task_args(ROLES / "dns" / "tasks" / "main.yml", "kubedebug.ephemeral.recipe_plan")["options"].values()
    )
