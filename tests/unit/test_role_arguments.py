"""Bad input to each role is refused before anything reaches a cluster, with a message naming the role and the option.

Two layers refuse it, both run by ansible-playbook here (no cluster is needed):

* Ansible's role argument validation (``meta/argument_specs.yml``): the implicit first task
  ``Validating arguments against arg spec 'main'`` fails on a missing required option, a
  value of the wrong type or one outside ``choices``. Its result names the role
  (``validate_args_context``) and its message the option.
* the roles' own input checks for what a spec cannot say: exactly one of pod or label selector,
  the run id's form and length, negative numbers... The recipe role and the shims built on it
  check theirs with the ``kubedebug.ephemeral.recipe_plan`` action (task "Check the input"),
  incident_snapshot with the ``kubedebug.ephemeral.incident_plan`` action; both return every problem
  as ``problems``.
  Each problem is named with the option the user set (``jvm_run_id``, not ``recipe_run_id``).

The recipe role's entry points (``tasks_from``/``defaults_from`` dns, network, ...) are cases
of their own, ``recipe.<entry point>``; each ``defaults/<entry point>.yml`` repeats exactly the
defaults its argument spec declares.

All the cases run in one ansible-playbook run: each case is an inventory host (connection
local) whose host vars are the role's input; the play includes the role in a block whose
rescue keeps the failed task and its result. Good input of each role gets past both layers
and fails at the first cluster access, on a kubeconfig that does not exist: so the checks
do not refuse what they must accept, and a case that no check refuses fails its test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES = ROOT / "roles"
ROLE_NAMES = tuple(sorted(path.parents[1].name for path in ROLES.glob("*/meta/argument_specs.yml")))
RECIPE_ROLES = ("capture", "dns", "filesystem", "jvm", "network", "processes", "python")
# The recipe role's entry points other than main: a case for "recipe.dns" includes it with tasks_from dns.
ENTRY_POINTS = tuple(f"recipe.{name}" for name in RECIPE_ROLES)
KUBECONFIG = "/nonexistent/kubedebug-unit-tests/kubeconfig"
ARG_SPEC_TASK = "Validating arguments against arg spec 'main'"
RECIPE_CHECK = "Check the input"
PLAN_ACTIONS = ("kubedebug.ephemeral.recipe_plan", "kubedebug.ephemeral.incident_plan")
PROFILES = "general, baseline, restricted, netadmin, sysadmin, legacy"
# Asserts that check what the role did, not its input: no input makes them fail.
NOT_INPUT_CHECKS = {("recipe.capture", "Check that each pcap written is the one captured")}


class _Drop:
    """Marks an option a case leaves out."""

    def __repr__(self) -> str:
        return "DROP"


DROP = _Drop()


def good_input(role: str) -> dict[str, Any]:
    """Input ``role`` accepts: one pod, a run id, and a kubeconfig that does not exist."""
    if role == "incident_snapshot":
        return {
            "incident_snapshot_namespace": "shop",
            "incident_snapshot_pod": "web-0",
            "incident_snapshot_reason": "INC-4711",
            "incident_snapshot_auth": {"kubeconfig": KUBECONFIG},
        }
    extra = {"recipe_name": "greet", "recipe_script": "emit_check greet world true hello"} if role == "recipe" else {}
    prefix = option_prefix(role)
    return {f"{prefix}_namespace": "shop", f"{prefix}_pod": "web-0", f"{prefix}_run_id": "inc1", f"{prefix}_auth": {"kubeconfig": KUBECONFIG}, **extra}


def option_prefix(role: str) -> str:
    """The prefix of a role's options: an entry point of the recipe role takes recipe_*."""
    return role.split(".", 1)[0]


def role_and_entry(role: str) -> tuple[str, str]:
    """``recipe.dns`` -> (recipe, dns); ``dns`` -> (dns, main)."""
    name, _dot, entry = role.partition(".")
    return name, entry or "main"


# Where good input fails: the first task that needs the cluster.
FIRST_CLUSTER_TASK = {role: "Add the recipe's debug container" for role in (*RECIPE_ROLES, "recipe", *ENTRY_POINTS)} | {
    "incident_snapshot": "Read the pods' status, restarts, events and logs"
}


@dataclass(frozen=True)
class Case:
    role: str
    name: str
    change: Mapping[str, Any]  # applied to good_input(role); DROP leaves an option out
    task: str  # the task that must fail
    says: tuple[str, ...]  # what its message must say

    @property
    def id(self) -> str:
        return f"{self.role}-{self.name}"

    def host_vars(self) -> dict[str, Any]:
        merged = {**good_input(self.role), **self.change}
        return {key: value for key, value in merged.items() if value is not DROP}


def spec(role: str, kind: str, change: Mapping[str, Any], *says: str) -> Case:
    """A case the argument spec refuses; ``kind`` is missing, type or choices."""
    task = ARG_SPEC_TASK.replace("'main'", f"'{role_and_entry(role)[1]}'")
    return Case(role, kind, change, task, ("Validation of arguments failed:", *says))


def wrong_type(role: str, option: str, value: Any, wanted: str) -> Case:
    return spec(role, "type", {option: value}, f"argument '{option}' is of type", f"unable to convert to {wanted}")


def check(role: str, name: str, change: Mapping[str, Any], task: str, *says: str) -> Case:
    """A case one of the role's own asserts refuses."""
    return Case(role, name, change, task, says)


SPEC_CASES = (
    *(spec(r, "missing", {f"{r}_run_id": DROP}, f"missing required arguments: {r}_run_id") for r in RECIPE_ROLES),
    spec("recipe", "missing", {"recipe_script": DROP}, "missing required arguments: recipe_script"),
    *(spec(e, "missing", {"recipe_run_id": DROP}, "missing required arguments: recipe_run_id") for e in ENTRY_POINTS),
    spec("incident_snapshot", "missing", {"incident_snapshot_reason": DROP}, "missing required arguments: incident_snapshot_reason"),
    *(
        spec(r, "choices", {f"{r}_profile": "privileged"}, f"value of {r}_profile must be one of: {PROFILES}, got: privileged")
        for r in (*RECIPE_ROLES, "recipe")
    ),
    *(spec(e, "choices", {"recipe_profile": "privileged"}, f"value of recipe_profile must be one of: {PROFILES}, got: privileged") for e in ENTRY_POINTS),
    spec(
        "incident_snapshot",
        "choices",
        {"incident_snapshot_recipes": ["dns", "strace"]},
        "value of incident_snapshot_recipes must be one or more of: dns, network, processes,",
        "no match for: strace",
    ),
    wrong_type("capture", "capture_duration", "ten seconds", "int"),
    wrong_type("dns", "dns_names", {"kubernetes": "default.svc"}, "list"),
    wrong_type("filesystem", "filesystem_max_bytes", "64k", "int"),
    wrong_type("incident_snapshot", "incident_snapshot_events_limit", "all", "int"),
    wrong_type("jvm", "jvm_histogram", "sometimes", "bool"),
    wrong_type("network", "network_checks", {"tcp": "db:5432"}, "list"),
    wrong_type("processes", "processes_env", ["HTTPS_PROXY"], "dict"),
    wrong_type("python", "python_pid", "main", "int"),
    wrong_type("recipe", "recipe_args", {"--pid": 1}, "list"),
    wrong_type("recipe.capture", "recipe_duration", "ten seconds", "int"),
    wrong_type("recipe.dns", "recipe_names", {"kubernetes": "default.svc"}, "list"),
    wrong_type("recipe.filesystem", "recipe_max_bytes", "64k", "int"),
    wrong_type("recipe.jvm", "recipe_histogram", "sometimes", "bool"),
    wrong_type("recipe.network", "recipe_checks", {"tcp": "db:5432"}, "list"),
    wrong_type("recipe.processes", "recipe_env", ["HTTPS_PROXY"], "dict"),
    wrong_type("recipe.python", "recipe_pid", "main", "int"),
)

INCIDENT_CHECK = "Check the incident's input"
CHECK_CASES = (
    # The recipe role's checks, reached through the roles built on it: the message names their options.
    check("jvm", "pod-and-selector", {"jvm_label_selector": "app=api"}, RECIPE_CHECK,
          'jvm: give exactly one of jvm_pod or jvm_label_selector (got pod="web-0", label_selector="app=api")'),
    check("dns", "neither-pod-nor-selector", {"dns_pod": ""}, RECIPE_CHECK, "dns: give exactly one of dns_pod or dns_label_selector"),
    check("network", "namespace-mapping", {"network_namespace": {"name": "shop"}}, RECIPE_CHECK,
          'network: network_namespace must be a namespace or a list of namespaces (got {"name": "shop"})'),
    check("processes", "no-namespace", {"processes_namespace": ""}, RECIPE_CHECK,
          "processes: give processes_namespace (with processes_label_selector: a list of namespaces, or processes_all_namespaces true"),
    check("filesystem", "pod-in-namespaces", {"filesystem_namespace": ["shop", "payments"]}, RECIPE_CHECK,
          "filesystem: filesystem_pod is one pod: give its namespace as filesystem_namespace, not a list"),
    check("python", "run-id-upper-case", {"python_run_id": "INC_4711"}, RECIPE_CHECK,
          "python: give a python_run_id of lower-case letters, digits and '-'", 'got run_id="INC_4711"'),
    check("capture", "run-id-too-long", {"capture_run_id": "a" * 60}, RECIPE_CHECK,
          "capture: capture_run_id is too long: the debug container kd-capture-<run id> may have at most 63 characters, so give at most 52 (got 60)"),
    check("jvm", "empty-image", {"jvm_image": ""}, RECIPE_CHECK, 'jvm: jvm_image must name the debug image, without spaces around it (got "")'),
    check("dns", "negative-wait", {"dns_wait_timeout": -1}, RECIPE_CHECK, "dns: dns_wait_timeout must be 0 or more seconds (got -1)"),
    check("recipe", "bad-name", {"recipe_name": "Greet"}, RECIPE_CHECK, "recipe Greet: recipe_name must be lower-case letters, digits and '-'"),
    check("recipe", "bad-container", {"recipe_container": "debug_1"}, RECIPE_CHECK,
          'recipe greet: recipe_container must be at most 63 lower-case letters, digits and \'-\'', '(got "debug_1")'),
    check("recipe", "blank-script", {"recipe_script": " \n"}, RECIPE_CHECK, "recipe greet: recipe_script is empty: give the POSIX sh script to run"),
    check("recipe", "parallel-0", {"recipe_parallel": 0}, RECIPE_CHECK, "recipe greet: recipe_parallel must be at least 1 (got 0)"),
    check("recipe", "limit-bytes-0", {"recipe_limit_bytes": 0}, RECIPE_CHECK, "recipe greet: recipe_limit_bytes must be at least 1 (got 0)"),
    check("recipe", "every-problem-at-once", {"recipe_pod": "", "recipe_run_id": "Run 1"}, RECIPE_CHECK,
          'recipe greet: give exactly one of recipe_pod or recipe_label_selector (got pod="", label_selector=""); '
          "give a recipe_run_id of lower-case letters"),
    # The checks of the shims' own options, and those of the entry points, under the recipe role's names.
    check("recipe.capture", "duration-0", {"recipe_duration": 0}, RECIPE_CHECK, "recipe capture: recipe_duration must be 1 to 300 seconds (got 0)"),
    check("recipe.capture", "wait-shorter-than-duration", {"recipe_duration": 60, "recipe_wait_timeout": 30}, RECIPE_CHECK,
          "recipe capture: recipe_wait_timeout must be longer than recipe_duration", "(got wait_timeout=30, duration=60)"),
    check("recipe.jvm", "negative-pid", {"recipe_pid": -1}, RECIPE_CHECK, "recipe jvm: recipe_pid must be a process id, or 0 for every JVM", "(got -1)"),
    check("recipe.python", "run-id-too-long", {"recipe_run_id": "a" * 60}, RECIPE_CHECK,
          "recipe python: recipe_run_id is too long: the debug container kd-python-<run id> may have at most 63 characters, so give at most 53 (got 60)"),
    check("recipe.filesystem", "max-bytes-0", {"recipe_max_bytes": 0}, RECIPE_CHECK, "recipe filesystem: recipe_max_bytes must be at least 1 (got 0)"),
    check("recipe.dns", "neither-pod-nor-selector", {"recipe_pod": ""}, RECIPE_CHECK, "recipe dns: give exactly one of recipe_pod or recipe_label_selector"),
    check("recipe.network", "negative-wait", {"recipe_wait_timeout": -1}, RECIPE_CHECK,
          "recipe network: recipe_wait_timeout must be 0 or more seconds (got -1)"),
    check("recipe.processes", "empty-image", {"recipe_image": " busybox"}, RECIPE_CHECK,
          'recipe processes: recipe_image must name the debug image, without spaces around it (got " busybox")'),
    check("capture", "duration-0", {"capture_duration": 0}, RECIPE_CHECK, "capture: capture_duration must be 1 to 300 seconds (got 0)"),
    check("capture", "wait-shorter-than-duration", {"capture_duration": 60, "capture_wait_timeout": 30}, RECIPE_CHECK,
          "capture: capture_wait_timeout must be longer than capture_duration", "(got wait_timeout=30, duration=60)"),
    check("capture", "count-0", {"capture_count": 0}, RECIPE_CHECK, "capture: capture_count must be at least 1 packet (got 0)"),
    check("capture", "max-bytes-negative", {"capture_max_bytes": -5}, RECIPE_CHECK, "capture: capture_max_bytes must be at least 1 (got -5)"),
    check("jvm", "negative-pid", {"jvm_pid": -1}, RECIPE_CHECK, "jvm: jvm_pid must be a process id, or 0 for every JVM", "(got -1)"),
    check("python", "negative-pid", {"python_pid": -7}, RECIPE_CHECK,
          "python: python_pid must be a process id, or 0 for every Python process", "(got -7)"),
    check("filesystem", "max-bytes-0", {"filesystem_max_bytes": 0}, RECIPE_CHECK,
          "filesystem: filesystem_max_bytes must be at least 1 (got 0)"),
    check("incident_snapshot", "empty-namespace", {"incident_snapshot_namespace": ""}, INCIDENT_CHECK,
          "incident_snapshot: give incident_snapshot_namespace, the namespace of the pods"),
    check("incident_snapshot", "pod-and-selector", {"incident_snapshot_label_selector": "app=web"}, INCIDENT_CHECK,
          "incident_snapshot: give exactly one of incident_snapshot_pod or incident_snapshot_label_selector"),
    check("incident_snapshot", "blank-reason", {"incident_snapshot_reason": "  "}, INCIDENT_CHECK,
          "incident_snapshot: give incident_snapshot_reason, the incident id or why the snapshot is taken"),
    check("incident_snapshot", "reason-without-run-id", {"incident_snapshot_reason": "!!!"}, INCIDENT_CHECK,
          'incident_snapshot: incident_snapshot_reason "!!!" has no letter or digit to make a run id of: set incident_snapshot_run_id'),
    check("incident_snapshot", "run-id-upper-case", {"incident_snapshot_run_id": "INC-4711"}, INCIDENT_CHECK,
          "incident_snapshot: give an incident_snapshot_run_id of lower-case letters, digits and '-'", '(got "INC-4711")'),
    check("incident_snapshot", "run-id-too-long", {"incident_snapshot_run_id": "r" * 51}, INCIDENT_CHECK,
          "incident_snapshot: incident_snapshot_run_id is too long", "kd-<recipe>-<run id> may have at most 63 characters, so give at most 50 (got 51)"),
    check("incident_snapshot", "negative-events-limit", {"incident_snapshot_events_limit": -1}, INCIDENT_CHECK,
          "incident_snapshot: incident_snapshot_events_limit must be 0 (no events) or more (got -1)"),
    check("incident_snapshot", "tail-lines-0", {"incident_snapshot_tail_lines": 0}, INCIDENT_CHECK,
          "incident_snapshot: incident_snapshot_tail_lines must be at least 1 (got 0)"),
    check("incident_snapshot", "negative-wait", {"incident_snapshot_wait_timeout": -30}, INCIDENT_CHECK,
          "incident_snapshot: incident_snapshot_wait_timeout must be 0 or more seconds (got -30)"),
    check("incident_snapshot", "recipe-vars-of-the-old-roles", {"incident_snapshot_recipe_vars": {"dns_names": ["api"]}}, INCIDENT_CHECK,
          'incident_snapshot: incident_snapshot_recipe_vars takes recipe_names, recipe_checks and recipe_paths (got ["dns_names"])'),
    check("incident_snapshot", "empty-dest", {"incident_snapshot_dest": ""}, INCIDENT_CHECK,
          "incident_snapshot: give incident_snapshot_dest, the directory on the controller"),
    check("incident_snapshot", "every-problem-at-once", {"incident_snapshot_namespace": "", "incident_snapshot_tail_lines": 0}, INCIDENT_CHECK,
          "incident_snapshot: give incident_snapshot_namespace, the namespace of the pods; "
          "incident_snapshot_tail_lines must be at least 1 (got 0)"),
)  # fmt: skip

GOOD_CASES = tuple(
    Case(role, "good-input", {}, FIRST_CLUSTER_TASK[role], (f"The kubeconfig file {KUBECONFIG} does not exist",)) for role in (*ROLE_NAMES, *ENTRY_POINTS)
)
ALL_CASES = (*SPEC_CASES, *CHECK_CASES, *GOOD_CASES)


@cache
def collections_path() -> str:
    """hack/unit.sh sets ANSIBLE_COLLECTIONS_PATH; a bare pytest run gets it from hack/collections.sh."""
    found = os.environ.get("ANSIBLE_COLLECTIONS_PATH")
    if found:
        return found
    return subprocess.run(["bash", str(ROOT / "hack" / "collections.sh")], capture_output=True, text=True, check=True).stdout.strip()


def ansible_playbook(tmp: Path, plays: list[dict[str, Any]], inventory: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``plays`` with ``inventory`` (YAML inventory data) as a user would, with this venv's ansible-playbook."""
    (tmp / "play.yml").write_text(yaml.safe_dump(plays, sort_keys=False), encoding="utf-8")
    (tmp / "inventory.yml").write_text(yaml.safe_dump(inventory, sort_keys=False), encoding="utf-8")
    env = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": collections_path(),
        "ANSIBLE_HOME": os.environ.get("ANSIBLE_HOME", str(ROOT / ".cache" / "ansible-home")),
        "ANSIBLE_NOCOLOR": "1",
    }
    cmd = [str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(tmp / "inventory.yml"), *args, str(tmp / "play.yml")]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, check=False)


def local_hosts(hosts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"all": {"vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}, "hosts": hosts}}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Case id -> ``{"task": the failed task's name or None, "result": its result}``, from one ansible-playbook run."""
    tmp = tmp_path_factory.mktemp("role-arguments")
    hosts = {
        case.id: {**case.host_vars(), "kd_case_role": role_and_entry(case.role)[0], "kd_case_entry": role_and_entry(case.role)[1]} for case in ALL_CASES
    }
    assert len(hosts) == len(ALL_CASES), "case ids must be unique"
    outcome = tmp / "outcomes.json"
    play = {
        "name": "Give each role its case's input",
        "hosts": "all",
        "gather_facts": False,
        "strategy": "free",  # no host waits for the others: each case is on its own
        "tasks": [
            {
                "block": [
                    # One include per entry point: hosts that include the same task with different templated
                    # tasks_from would share one include (IncludedFile compares the arguments without *_from).
                    *(
                        {
                            "name": f"Include the role under test ({entry})",
                            "ansible.builtin.include_role": {"name": "kubedebug.ephemeral.{{ kd_case_role }}", "tasks_from": entry, "defaults_from": entry},
                            "when": f"kd_case_entry == '{entry}'",
                        }
                        for entry in ("main", *(e.split(".")[1] for e in ENTRY_POINTS))
                    ),
                    {"name": "Nothing refused the input", "ansible.builtin.set_fact": {"kd_outcome": {"task": None, "result": {}}}},
                ],
                "rescue": [
                    {
                        "name": "Keep the failed task and its result",
                        "ansible.builtin.set_fact": {
                            "kd_outcome": {
                                "task": "{{ ansible_failed_task.name }}",
                                "result": "{{ ansible_failed_result | dict2items | rejectattr('key', 'eq', 'argument_spec_data') | items2dict }}",
                            }
                        },
                    }
                ],
            }
        ],
    }
    collect = {
        "name": "Collect the outcomes",
        "hosts": "all",
        "gather_facts": False,
        "tasks": [
            {
                "name": "Write every case's outcome",
                "ansible.builtin.copy": {
                    "content": "{{ dict(ansible_play_hosts_all | zip(ansible_play_hosts_all | map('extract', hostvars, 'kd_outcome'))) | to_json }}",
                    "dest": str(outcome),
                    "mode": "0600",
                },
                "run_once": True,
            },
        ],
    }
    proc = ansible_playbook(tmp, [play, collect], local_hosts(hosts), "--forks", "20")
    if proc.returncode != 0 or not outcome.exists():
        pytest.fail(f"ansible-playbook failed (rc={proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return json.loads(outcome.read_text(encoding="utf-8"))


def refusal(outcomes: dict[str, dict[str, Any]], case: Case) -> tuple[str, dict[str, Any]]:
    """The failed task's name and result of ``case``, after checking that what failed is ``case.task``, saying ``case.says``."""
    got = outcomes[case.id]
    task, result = got["task"], got["result"]
    assert task is not None, f"nothing refused {case.host_vars()}"
    assert task.startswith(case.task), f"{task!r} failed, not {case.task!r}: {result.get('msg')}"
    assert result["failed"] is True
    for fragment in case.says:
        assert fragment in result["msg"], f"{fragment!r} is not in {result['msg']!r}"
    return task, result


@pytest.mark.parametrize("case", SPEC_CASES, ids=lambda case: case.id)
def test_argument_spec_refuses(outcomes: dict[str, dict[str, Any]], case: Case) -> None:
    _task, result = refusal(outcomes, case)
    # validate_args_context names the role; the message names the option it refused.
    context = result["validate_args_context"]
    role, entry = role_and_entry(case.role)
    assert (context["type"], context["name"], context["argument_spec_name"]) == ("role", role, entry)
    assert Path(context["path"]).name == role
    [error] = result["argument_errors"]
    assert error in result["msg"]
    options = [key for key in case.change if key in error]
    assert options, f"the error names none of {list(case.change)}: {error!r}"


@pytest.mark.parametrize("case", CHECK_CASES, ids=lambda case: case.id)
def test_role_check_refuses(outcomes: dict[str, dict[str, Any]], case: Case) -> None:
    _task, result = refusal(outcomes, case)
    # A plan action refused it: every problem is in problems, and the message is all of them.
    assert result["problems"] and result["msg"].endswith(": " + "; ".join(result["problems"])), result
    # The problems are joined by "; ": only those of the case, a check that fires on good input would add its own.
    assert result["msg"].count("; ") == case.says[0].count("; "), result["msg"]


@pytest.mark.parametrize("case", GOOD_CASES, ids=lambda case: case.id)
def test_good_input_gets_past_every_check(outcomes: dict[str, dict[str, Any]], case: Case) -> None:
    refusal(outcomes, case)


def test_every_role_and_input_check_has_cases() -> None:
    """A role added without cases, or an input assert without one, fails here."""
    kinds = {(case.role, case.name) for case in SPEC_CASES}
    missing = [(role, kind) for role in (*ROLE_NAMES, *ENTRY_POINTS) for kind in ("missing", "type", "choices") if (role, kind) not in kinds]
    assert not missing, f"roles without an argument spec case: {missing}"
    entries = {f"recipe.{entry}" for entry in yaml.safe_load((ROLES / "recipe" / "meta" / "argument_specs.yml").read_text())["argument_specs"]}
    assert entries - {"recipe.main"} == set(ENTRY_POINTS)
    checks = set()
    for path in ROLES.glob("*/tasks/*.yml"):
        role = path.parents[1].name if path.stem in ("main", "run") else f"{path.parents[1].name}.{path.stem}"
        for task in yaml.safe_load(path.read_text(encoding="utf-8")):
            if "ansible.builtin.assert" in task or any(action in task for action in PLAN_ACTIONS):
                checks.add((role, task["name"].split(" and ")[0]))
    checked = {(case.role, case.task) for case in CHECK_CASES}
    assert checks - NOT_INPUT_CHECKS == checked


@pytest.mark.parametrize("entry", ["main", *(e.split(".")[1] for e in ENTRY_POINTS)])
def test_defaults_repeat_the_argument_spec(entry: str) -> None:
    """defaults/<entry point>.yml (main.yml for main) sets exactly the defaults the entry point's spec declares."""
    spec = yaml.safe_load((ROLES / "recipe" / "meta" / "argument_specs.yml").read_text(encoding="utf-8"))["argument_specs"][entry]
    declared = {name: option["default"] for name, option in spec["options"].items() if "default" in option}
    assert all("default" not in option for option in spec["options"].values() if option.get("required")), entry
    defaults = yaml.safe_load((ROLES / "recipe" / "defaults" / f"{entry}.yml").read_text(encoding="utf-8"))
    assert defaults == declared


@pytest.mark.parametrize("role", [r for r in ROLE_NAMES if r != "recipe"])
def test_role_defaults_repeat_the_argument_spec(role: str) -> None:
    spec = yaml.safe_load((ROLES / role / "meta" / "argument_specs.yml").read_text(encoding="utf-8"))["argument_specs"]
    assert list(spec) == ["main"], f"{role}: only the recipe role has entry points"
    declared = {name: option["default"] for name, option in spec["main"]["options"].items() if "default" in option}
    defaults = yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text(encoding="utf-8"))
    assert defaults == declared


# Not rescued: the play itself fails, as a user sees it, with the role named in the task header.
UNRESCUED = {case.id: case for case in ALL_CASES if case.id in ("jvm-missing", "python-negative-pid", "incident_snapshot-choices")}


@pytest.mark.parametrize("case_id", sorted(UNRESCUED))
def test_the_play_fails(tmp_path: Path, case_id: str) -> None:
    case = UNRESCUED[case_id]
    play = {"name": "Use the role", "hosts": "all", "gather_facts": False, "roles": [{"role": f"kubedebug.ephemeral.{case.role}", **case.host_vars()}]}
    proc = ansible_playbook(tmp_path, [play], local_hosts({"localhost": {}}))
    assert proc.returncode == 2, proc.stdout[-4000:]
    assert f"TASK [kubedebug.ephemeral.{case.role} : {case.task}" in proc.stdout
    fatal = [line for line in proc.stdout.splitlines() if line.startswith("fatal: [localhost]: FAILED! => ")]
    assert len(fatal) == 1, proc.stdout[-4000:]
    message = json.loads(fatal[0].split(" => ", 1)[1])["msg"]
    assert all(fragment in message for fragment in case.says), message
    assert "failed=1" in proc.stdout.split("PLAY RECAP", 1)[1]
