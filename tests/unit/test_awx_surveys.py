"""Checks of the AWX job template material in playbooks/awx/ and of the EE metadata in meta/.

The survey rules are AWX's own (ansible/awx, devel):

* ``awx/api/views/__init__.py`` ``JobTemplateSurveySpec._validate_spec_data``: what
  ``POST /api/v2/job_templates/<id>/survey_spec/`` accepts;
* ``awx/main/models/mixins.py`` ``SurveyJobTemplateMixin._survey_element_validation``:
  what a launch accepts, and which defaults AWX puts into the extra vars by itself
  (``_update_unified_job_kwargs`` adds a default only if it passes this validation);
* ``awx/main/constants.py`` ``SURVEY_TYPE_MAPPING``: the question types and the Python
  type of a default.

Each survey is then checked against its playbook: every question sets a variable the
playbook reads, every variable its input check (the first assert) needs is asked for,
and the answer has the type the playbook works with.
"""

from __future__ import annotations

import fnmatch
import json
import pathlib
import re
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement

ROOT = pathlib.Path(__file__).resolve().parents[2]
AWX = ROOT / "playbooks" / "awx"
PLAYBOOKS = ("incident_response", "fleet_diagnostics")

# awx/main/constants.py SURVEY_TYPE_MAPPING
SURVEY_TYPE_MAPPING: dict[str, Any] = {
    "text": str,
    "textarea": str,
    "password": str,
    "multiplechoice": str,
    "multiselect": str,
    "integer": int,
    "float": (float, int),
}

# Survey answers that are deliberately not of the playbook's default type. A text
# answer is a string; the recipe roles take a string namespace as one namespace.
STRING_FOR_LIST = {
    ("fleet_diagnostics", "kd_namespaces"): "one namespace per launch; several need a list, which no survey type can type in",
}

KD_VAR = re.compile(r"\bkd_\w+")


def load_survey(playbook: str) -> dict[str, Any]:
    return json.loads((AWX / f"{playbook}.survey.json").read_text(encoding="utf-8"))


def load_playbook(playbook: str) -> tuple[list[dict[str, Any]], str]:
    text = (ROOT / "playbooks" / f"{playbook}.yml").read_text(encoding="utf-8")
    return yaml.safe_load(text), text


def choice_list(question: dict[str, Any]) -> list[str]:
    choices = question["choices"]
    if isinstance(choices, str):
        return [c for c in choices.splitlines() if c.strip()]
    return list(choices)


def awx_spec_errors(spec: dict[str, Any]) -> list[str]:
    """What AWX's survey_spec endpoint would refuse (JobTemplateSurveySpec._validate_spec_data)."""
    errors = []
    for field, expect in (("name", str), ("description", str), ("spec", list)):
        if not isinstance(spec.get(field), expect):
            errors.append(f"{field!r} missing or not a {expect.__name__}")
    if errors:
        return errors
    if not spec["spec"]:
        errors.append("'spec' doesn't contain any items")
    seen: set[str] = set()
    for idx, item in enumerate(spec["spec"]):
        if not isinstance(item, dict):
            errors.append(f"question {idx} is not an object")
            continue
        for field in ("type", "question_name", "variable", "required"):
            expect = bool if field == "required" else str
            if not isinstance(item.get(field), expect):
                errors.append(f"question {idx}: {field!r} missing or not a {expect.__name__}")
        if errors:
            continue
        if item["variable"] in seen:
            errors.append(f"question {idx}: variable {item['variable']!r} duplicated")
        seen.add(item["variable"])
        qtype = item["type"]
        if qtype not in SURVEY_TYPE_MAPPING:
            errors.append(f"question {idx}: type {qtype!r} is not one of {sorted(SURVEY_TYPE_MAPPING)}")
            continue
        if "default" in item and item["default"] != "" and not isinstance(item["default"], SURVEY_TYPE_MAPPING[qtype]):
            errors.append(f"question {idx}: default {item['default']!r} has the wrong type for {qtype}")
        for key in ("min", "max"):
            if item.get(key) is not None and (not isinstance(item[key], int) or isinstance(item[key], bool)):
                errors.append(f"question {idx}: {key} must be an integer")
        if qtype in ("multiplechoice", "multiselect"):
            if "choices" not in item:
                errors.append(f"question {idx}: {qtype} must specify choices")
                continue
            default = item.get("default")
            defaults = [d for d in default.splitlines() if d.strip()] if isinstance(default, str) else (default or [])
            if qtype == "multiplechoice" and len(defaults) > 1:
                errors.append(f"question {idx}: multiplechoice can only have one default")
            if any(d not in choice_list(item) for d in defaults):
                errors.append(f"question {idx}: default {default!r} is not among the choices")
    return errors


def awx_answer_errors(question: dict[str, Any], data: dict[str, Any]) -> list[str]:
    """What AWX refuses at launch for one question (SurveyJobTemplateMixin._survey_element_validation)."""
    var, qtype = question["variable"], question["type"]
    if var not in data:
        return [f"{var!r} value missing"] if question["required"] else []
    value = data[var]
    lo, hi = question.get("min"), question.get("max")
    lo = None if lo in ("", None) else lo
    hi = None if hi in ("", None) else hi
    if qtype in ("text", "textarea", "password"):
        if not isinstance(value, str):
            return [f"{var!r}: expected a string"]
        if (lo is not None and len(value) < lo) or (hi is not None and len(value) > hi):
            return [f"{var!r}: length {len(value)} outside [{lo}, {hi}]"]
    elif qtype == "integer":
        if not isinstance(value, int) or isinstance(value, bool):  # AWX refuses booleans here
            return [f"{var!r}: expected an integer"]
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            return [f"{var!r}: {value} outside [{lo}, {hi}]"]
    elif qtype == "float":
        if type(value) not in (float, int):
            return [f"{var!r}: expected a number"]
    elif qtype == "multiselect":
        if not isinstance(value, list):
            return [f"{var!r}: expected a list"]
        return [f"{var!r}: {v!r} is not a choice" for v in value if v not in choice_list(question)]
    elif qtype == "multiplechoice":
        if value not in choice_list(question):
            return [f"{var!r}: {value!r} is not a choice"]
    return []


def awx_injected_defaults(survey: dict[str, Any]) -> dict[str, Any]:
    """The extra vars AWX adds from survey defaults when a launch leaves a question out."""
    injected = {}
    for question in survey["spec"]:
        default = question.get("default")
        if default is not None and not awx_answer_errors(question, {question["variable"]: default}):
            injected[question["variable"]] = default
    return injected


def first_assert_variables(plays: list[dict[str, Any]]) -> set[str]:
    for task in plays[0]["tasks"]:
        if "ansible.builtin.assert" in task:
            return set(KD_VAR.findall(" ".join(task["ansible.builtin.assert"]["that"])))
    raise AssertionError("the playbook's first play has no ansible.builtin.assert task")


def play_var_defaults(plays: list[dict[str, Any]]) -> dict[str, Any]:
    defaults: dict[str, Any] = {}
    for play in plays:
        for name, value in (play.get("vars") or {}).items():
            defaults.setdefault(name, value)
    return defaults


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_survey_is_accepted_by_awx(playbook: str) -> None:
    survey = load_survey(playbook)
    assert awx_spec_errors(survey) == []
    assert survey["name"].strip() and survey["description"].strip()


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_questions_are_complete(playbook: str) -> None:
    """Stricter than AWX: the forms of the AWX UI need these to edit a question."""
    for question in load_survey(playbook)["spec"]:
        var = question["variable"]
        assert question["question_description"].strip(), var
        assert "default" in question, f"{var}: the UI cannot edit a question without a default"
        if question["type"] in ("multiplechoice", "multiselect"):
            choices = question["choices"]
            assert isinstance(choices, list) and choices and len(set(choices)) == len(choices), var
            assert all(isinstance(c, str) and c.strip() == c and c for c in choices), var
            # The API stores a multiselect default as one string, choices separated by newlines.
            assert isinstance(question["default"], str), var
        if question["type"] in ("text", "textarea", "password", "integer"):
            assert isinstance(question.get("min"), int) and isinstance(question.get("max"), int), var
            assert question["min"] <= question["max"], var
        if question["required"] and question["type"] in ("text", "textarea", "password"):
            assert question["min"] >= 1, f"{var}: a required text question must refuse an empty answer"


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_every_question_sets_a_variable_the_playbook_reads(playbook: str) -> None:
    _plays, text = load_playbook(playbook)
    read = set(KD_VAR.findall(text))
    asked = {q["variable"] for q in load_survey(playbook)["spec"]}
    assert asked - read == set(), f"{playbook}.yml never reads {sorted(asked - read)}"


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_every_checked_input_is_asked_or_comes_from_the_inventory(playbook: str) -> None:
    plays, _text = load_playbook(playbook)
    asked = {q["variable"] for q in load_survey(playbook)["spec"]}
    readme = (AWX / "README.md").read_text(encoding="utf-8")
    inventory_section = readme.split("## Inventory", 1)[1].split("\n## ", 1)[0]
    missing = {v for v in first_assert_variables(plays) - asked if f"`{v}`" not in inventory_section}
    assert missing == set(), f"{playbook}.yml checks {sorted(missing)}, which neither the survey asks nor the inventory sets"


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_answers_have_the_type_the_playbook_uses(playbook: str) -> None:
    """A survey cannot make a list from typed-in text: list variables must be multiselect questions."""
    plays, text = load_playbook(playbook)
    defaults = play_var_defaults(plays)
    for question in load_survey(playbook)["spec"]:
        var, qtype = question["variable"], question["type"]
        default = defaults.get(var, "")
        if isinstance(default, bool):
            # Only multiplechoice can limit the answer to something `| bool` understands.
            assert qtype == "multiplechoice" and set(question["choices"]) <= {"true", "false"}, var
            assert re.search(rf"\b{var}\s*\|\s*bool\b", text), f"{var} arrives as a string: the playbook must use | bool"
        elif isinstance(default, list):
            if (playbook, var) in STRING_FOR_LIST:
                assert qtype in ("text", "multiplechoice"), var
            else:
                assert qtype == "multiselect", f"{var} is a list in {playbook}.yml; only a multiselect answer is a list"
        elif isinstance(default, int):
            assert qtype == "integer", var
        else:
            assert qtype in ("text", "textarea", "password", "multiplechoice"), var


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_awx_defaults_pass_the_playbook_checks(playbook: str) -> None:
    """What AWX adds by itself agrees with the playbook: the multiselect defaults (strings) are left out."""
    survey = load_survey(playbook)
    injected = awx_injected_defaults(survey)
    for question in survey["spec"]:
        if question["type"] == "multiselect":
            assert question["variable"] not in injected, "AWX would inject a string where the playbook wants a list"
    plays, _text = load_playbook(playbook)
    defaults = play_var_defaults(plays)
    for question in survey["spec"]:
        var = question["variable"]
        if question["type"] == "multiselect" and var in defaults:
            # Launching through the API without this answer keeps the playbook's default:
            # the survey's default must say the same.
            assert choice_list({"choices": question["default"]}) == list(defaults[var]), var


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_example_launch_is_accepted(playbook: str) -> None:
    answers = {
        "incident_response": {
            "kd_namespace": "shop",
            "kd_pod": "",
            "kd_label_selector": "app=web",
            "kd_reason": "INC-4711",
            "kd_recipes": ["dns", "network"],
            "kd_dns_names": ["kubernetes.default.svc", "example.com"],
        },
        "fleet_diagnostics": {
            "kd_label_selector": "app=web",
            "kd_recipe": "dns",
            "kd_run_id": "sweep-2026-11-25",
            "kd_namespaces": "shop",
            "kd_all_namespaces": "false",
            "kd_wait_timeout": 120,
        },
    }[playbook]
    survey = load_survey(playbook)
    extra_vars = {**awx_injected_defaults(survey), **answers}
    errors = [e for q in survey["spec"] for e in awx_answer_errors(q, extra_vars)]
    assert errors == []


def test_execution_environment_metadata() -> None:
    meta = yaml.safe_load((ROOT / "meta" / "execution-environment.yml").read_text(encoding="utf-8"))
    assert meta["version"] == 1
    deps = meta["dependencies"]
    assert set(deps) == {"python", "system"}
    for path in deps.values():
        assert (ROOT / path).is_file(), path

    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text(encoding="utf-8"))
    shipped = ["meta/execution-environment.yml", *deps.values()]
    for path in shipped:
        ignored = [p for p in galaxy.get("build_ignore", []) if fnmatch.fnmatch(path, p) or path.startswith(p.rstrip("/") + "/")]
        assert ignored == [], f"galaxy.yml build_ignore {ignored} would leave {path} out of the collection"

    lines = (ROOT / deps["python"]).read_text(encoding="utf-8").splitlines()
    requirements = {r.name: r for r in (Requirement(line) for line in lines if line.strip() and not line.startswith("#"))}
    assert set(requirements) == {"kubernetes"}
    documented = set()
    for plugin in [*(ROOT / "plugins" / "modules").glob("*.py"), *(ROOT / "plugins" / "lookup").glob("*.py")]:
        documented |= set(re.findall(r"kubernetes \(the Python client\) >= ([\d.]+)", plugin.read_text(encoding="utf-8")))
    assert len(documented) == 1, f"the plugins document different kubernetes minimums: {documented}"
    assert str(requirements["kubernetes"].specifier) == f">={documented.pop()}"


def test_builder_definition_example() -> None:
    definition = yaml.safe_load((AWX / "execution-environment.yml").read_text(encoding="utf-8"))
    assert definition["version"] == 3
    collections = definition["dependencies"]["galaxy"]["collections"]
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text(encoding="utf-8"))
    assert f"{galaxy['namespace']}.{galaxy['name']}" in [c["name"] for c in collections]
