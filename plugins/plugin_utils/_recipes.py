# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: what the recipe and incident_snapshot roles plan and how results are summarized (controller only).

The ``recipe_plan`` and ``incident_plan`` actions and the filters are thin front ends over these pure functions.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ansible.module_utils.common.validation import check_type_list
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.kubedebug.ephemeral.plugins.module_utils._options import DNS1123_LABEL

MAX_CONTAINER_NAME = 63
# What a survey's free text list looks like: "a, b" or one per line.
LIST_ITEM = re.compile(r"[^,\s]+")
# A network interface name as capture.sh accepts it (never an option of tcpdump: no leading '-').
INTERFACE = re.compile(r"[A-Za-z0-9._:@][A-Za-z0-9._:@-]*")
# The recipes the role ships a script for (roles/recipe/files/<name>.sh).
SHIPPED_RECIPES = ("dns", "network", "processes", "filesystem", "capture", "jvm", "python")
# The bounds of every run (roles/recipe/files/boot.sh). The time limit stays below the default recipe_wait_timeout
# (120 s), so that an attached run ends, and says so, before its results are collected; capture's covers its duration.
DEFAULT_TIME_LIMIT = 100
CAPTURE_TIME_LIMIT = 360
MAX_TIME_LIMIT = 86400
# What capture.sh needs beyond recipe_duration: tcpdump's start, and the pcap's base64 on the way out.
CAPTURE_TIME_MARGIN = 10
DEFAULT_NICE = 10
MAX_NICE = 19


def _json(value: Any) -> str:
    """A value as Jinja's ``to_json`` shows it, so that messages quote what the user set."""
    return json.dumps(value, default=str)


def _int(value: Any) -> int | None:
    """The option as a number, or None when it is not one (the argument spec says so before we are reached)."""
    if isinstance(value, bool):
        return int(value)
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _flag_value(value: Any, default: bool) -> bool:
    """A boolean option as Ansible reads it: the role's argument spec checks it but hands it on unconverted, so
    ``"no"`` and ``"false"`` arrive as text (and ``bool("no")`` is true)."""
    if value is None:
        return default
    return bool(boolean(value, strict=False))


def _is_str_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str) and all(isinstance(item, str) for item in value)


@dataclass(frozen=True)
class Plan:
    """What the recipe role adds: the container's name, where, and the command it runs."""

    name: str
    container: str
    namespaces: list[str]
    args: list[str]
    limit_bytes: int
    time_limit: int = DEFAULT_TIME_LIMIT
    nice: int = DEFAULT_NICE
    detach: bool = False


class Naming:
    """How messages name the options: ``<prefix>_<option>``, after ``recipe <name>:`` or ``<prefix>:``.

    A role built on the recipe role passes its own prefix, so that its users read the names they set.
    """

    def __init__(self, recipe: str, prefix: str) -> None:
        self.prefix = prefix
        self.head = f"recipe {recipe}" if prefix == "recipe" else prefix

    def __call__(self, option: str) -> str:
        return f"{self.prefix}_{option}"


def _selection_problems(options: Mapping[str, Any], o: Naming) -> list[str]:
    namespace = options.get("namespace", "")
    pod = options.get("pod", "") or ""
    selector = options.get("label_selector", "") or ""
    all_namespaces = _flag_value(options.get("all_namespaces"), False)
    given = (("pod", pod), ("label_selector", selector))
    problems = [f"{o(option)} must be a string (got {_json(value)})" for option, value in given if not isinstance(value, str)]
    if bool(pod) == bool(selector):
        problems.append(f"give exactly one of {o('pod')} or {o('label_selector')} (got pod={_json(pod)}, label_selector={_json(selector)})")
    if isinstance(namespace, str):
        namespace = namespace.strip()  # the module strips it: blank is no namespace
    is_list = isinstance(namespace, Sequence) and not isinstance(namespace, str)
    if not (isinstance(namespace, str) or _is_str_list(namespace)):
        problems.append(f"{o('namespace')} must be a namespace or a list of namespaces (got {_json(namespace)})")
    elif not namespace and not (selector and all_namespaces):
        problems.append(f"give {o('namespace')} (with {o('label_selector')}: a list of namespaces, or {o('all_namespaces')} true instead)")
    if is_list and not selector:
        problems.append(f"{o('pod')} is one pod: give its namespace as {o('namespace')}, not a list (got {_json(namespace)})")
    return problems


def _name_text(value: Any) -> Any:
    """A name the argument spec checked as a string: YAML reads ``run_id: 20240101`` as a number, handed on as one."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _container_problems(name: str, options: Mapping[str, Any], o: Naming) -> list[str]:
    run_id = _name_text(options.get("run_id"))
    container = _name_text(options.get("container", "")) or ""
    problems = []
    if not (isinstance(run_id, str) and DNS1123_LABEL.fullmatch(run_id)):
        problems.append(f"give a {o('run_id')} of lower-case letters, digits and '-', starting and ending with a letter or digit (got run_id={_json(run_id)})")
    stem = f"kd-{name}-"
    if not container and len(stem) >= MAX_CONTAINER_NAME:
        # The name alone leaves no room for a run id: it is the name (of a script of your own) to shorten.
        problems.append(
            f"{o('name')} is too long: the debug container kd-<name>-<run id> may have at most {MAX_CONTAINER_NAME}"
            f" characters, so give at most {MAX_CONTAINER_NAME - len('kd--') - 1} (got {len(name)})"
        )
    elif not container and len(stem + str(run_id or "")) > MAX_CONTAINER_NAME:
        problems.append(
            f"{o('run_id')} is too long: the debug container kd-{name}-<run id> may have at most {MAX_CONTAINER_NAME}"
            f" characters, so give at most {MAX_CONTAINER_NAME - len(stem)} (got {len(str(run_id))})"
        )
    if container and not (isinstance(container, str) and DNS1123_LABEL.fullmatch(container) and len(container) <= MAX_CONTAINER_NAME):
        problems.append(
            f"{o('container')} must be at most {MAX_CONTAINER_NAME} lower-case letters, digits and '-', starting and ending"
            f" with a letter or digit (got {_json(container)})"
        )
    if not DNS1123_LABEL.fullmatch(name):
        problems.append(f"{o('name')} must be lower-case letters, digits and '-', as it is part of the container name (got {_json(name)})")
    return problems


def _at_least(options: Mapping[str, Any], o: Naming, option: str, low: int, text: str) -> list[str]:
    value = _int(options.get(option))
    return [] if value is not None and value >= low else [f"{o(option)} {text} (got {options.get(option)})"]


# Options the argument spec checks as strings but hands on as given (a list passes as its text).
TEXT_OPTIONS = ("target_container", "reason", "script", "name", "interface", "filter")
LIST_OPTIONS = ("names", "checks", "paths", "args")


def _run_problems(options: Mapping[str, Any], o: Naming) -> list[str]:
    image = options.get("image", "")
    problems = [
        f"{o(option)} must be a string (got {_json(options[option])})"
        for option in TEXT_OPTIONS
        if options.get(option) is not None and not isinstance(options[option], str)
    ]
    if "script" in options and isinstance(options["script"] or "", str) and not (options["script"] or "").strip():
        problems.append(f"{o('script')} is empty: give the POSIX sh script to run")
    if not (isinstance(image, str) and image and image == image.strip()):
        problems.append(f"{o('image')} must name the debug image, without spaces around it (got {_json(image)})")
    for option in LIST_OPTIONS:
        try:
            _items(options, option)
        except TypeError:
            problems.append(f"{o(option)} must be a list of strings (got {_json(options[option])})")
    problems += _at_least(options, o, "wait_timeout", 0, "must be 0 or more seconds")
    for option in ("parallel", "limit_bytes"):
        if option in options:
            problems += _at_least(options, o, option, 1, "must be at least 1")
    if "canary" in options:
        problems += _at_least(options, o, "canary", 0, "must be 0 (no canary) or a number of pods")
    return problems + _bounds_problems(options, o)


def _bounds_problems(options: Mapping[str, Any], o: Naming) -> list[str]:
    """The time limit and niceness every run is bounded by (absent: the defaults, as a role built on this one that
    does not hand them on gets)."""
    problems = []
    time_limit, nice = _int(options.get("time_limit", DEFAULT_TIME_LIMIT)), _int(options.get("nice", DEFAULT_NICE))
    if isinstance(options.get("time_limit"), bool) or time_limit is None or not 1 <= time_limit <= MAX_TIME_LIMIT:
        problems.append(f"{o('time_limit')} must be 1 to {MAX_TIME_LIMIT} seconds, after which the recipe is stopped (got {_json(options.get('time_limit'))})")
    if isinstance(options.get("nice"), bool) or nice is None or not 0 <= nice <= MAX_NICE:
        problems.append(
            f"{o('nice')} must be a niceness of 0 (normal priority) to {MAX_NICE} (the lowest), as nice -n takes it (got {_json(options.get('nice'))})"
        )
    return problems


def _capture_problems(options: Mapping[str, Any], o: Naming) -> list[str]:
    duration, wait = _int(options.get("duration")), _int(options.get("wait_timeout"))
    problems = []
    if duration is None or not 1 <= duration <= 300:
        problems.append(f"{o('duration')} must be 1 to 300 seconds (got {options.get('duration')})")
    if duration is None or wait is None or wait <= duration:
        problems.append(
            f"{o('wait_timeout')} must be longer than {o('duration')}, to leave time to pull the image"
            f" (got wait_timeout={options.get('wait_timeout')}, duration={options.get('duration')})"
        )
    time_limit = _int(options.get("time_limit", CAPTURE_TIME_LIMIT))
    if duration is not None and time_limit is not None and 1 <= time_limit < duration + CAPTURE_TIME_MARGIN:
        problems.append(
            f"{o('time_limit')} must be at least {o('duration')} + {CAPTURE_TIME_MARGIN} seconds, or the capture is stopped before"
            f" its pcap is written (got time_limit={options.get('time_limit')}, duration={options.get('duration')})"
        )
    problems += _at_least(options, o, "count", 1, "must be at least 1 packet")
    problems += _at_least(options, o, "max_bytes", 1, "must be at least 1")
    interface = options.get("interface", "any")
    if not (isinstance(interface, str) and INTERFACE.fullmatch(interface)):
        problems.append(
            f"{o('interface')} must be the name of a network interface (letters, digits, '.', '_', ':', '@' and '-', not"
            f" starting with '-'), such as any or eth0 (got {_json(interface)})"
        )
    return problems


RECIPE_PROBLEMS: dict[str, Callable[[Mapping[str, Any], Naming], list[str]]] = {
    "capture": _capture_problems,
    "filesystem": lambda options, o: _at_least(options, o, "max_bytes", 1, "must be at least 1"),
    "jvm": lambda options, o: _at_least(options, o, "pid", 0, "must be a process id, or 0 for every JVM of the target container"),
    "python": lambda options, o: _at_least(options, o, "pid", 0, "must be a process id, or 0 for every Python process of the target container"),
}


def recipe_name(recipe: str, options: Mapping[str, Any]) -> str:
    """The recipe's name: a shipped recipe's own, or the ``name`` option of a script of your own (``main``)."""
    return str(options.get("name", "")) if recipe == "main" else recipe


def _no_problems(_options: Mapping[str, Any], _o: Naming) -> list[str]:
    """A script of your own has no options beyond the shared ones."""
    return []


def recipe_problems(recipe: str, options: Mapping[str, Any], prefix: str = "recipe") -> list[str]:
    """Every problem of the input of the entry point ``recipe`` at once, each naming the option as ``<prefix>_<option>``."""
    name = recipe_name(recipe, options)
    o = Naming(name, prefix)
    problems = _selection_problems(options, o) + _container_problems(name, options, o) + _run_problems(options, o)
    return problems + RECIPE_PROBLEMS.get(recipe, _no_problems)(options, o)


def recipe_failure(recipe: str, options: Mapping[str, Any], problems: Sequence[str], prefix: str = "recipe") -> str:
    return f"{Naming(recipe_name(recipe, options), prefix).head}: {'; '.join(problems)}"


def _flag(name: str, value: Any) -> list[str]:
    return [name, str(value)]


def _items(options: Mapping[str, Any], option: str) -> list[str]:
    """A list option as the argument spec read it (``check_type_list``: ``"a,b"`` is two items, ``5`` is ``["5"]``).

    The spec checks it so but hands it on as given, and a text iterated as it is would be one item per character.
    """
    value = options.get(option)
    return [] if value is None else [str(item) for item in check_type_list(value)]


def recipe_args(recipe: str, options: Mapping[str, Any]) -> list[str]:
    """The arguments the script of entry point ``recipe`` takes, from its options (``main`` takes ``args``)."""
    if recipe == "dns":
        return _items(options, "names")
    if recipe == "network":
        return _items(options, "checks")
    if recipe == "processes":
        return []
    if recipe == "filesystem":
        # "--": a path such as "--pid=1" is a path to report on, never an option of the script.
        return _flag("--max-bytes", _int(options["max_bytes"])) + ["--", *_items(options, "paths")]
    if recipe == "capture":
        bounds = _flag("--duration", _int(options["duration"])) + _flag("--count", _int(options["count"]))
        bounds += _flag("--max-bytes", _int(options["max_bytes"])) + _flag("--interface", options.get("interface", "any"))
        return [*bounds, "--", *([options["filter"]] if options.get("filter") else [])]
    if recipe in ("jvm", "python"):
        pid = _int(options.get("pid", 0)) or 0
        args = _flag("--pid", pid) if pid > 0 else []
        if recipe == "jvm" and not _flag_value(options.get("histogram"), True):
            args.append("--no-histogram")
        return args
    return _items(options, "args")


def log_limit(recipe: str, options: Mapping[str, Any]) -> int:
    """How many bytes of each debug container's log are read."""
    if recipe == "capture":
        # The pcap travels base64-encoded (4/3 of its size) in one log line: read the logs with room for it.
        return ((_int(options["max_bytes"]) or 0) + 2) // 3 * 4 + 65536
    return _int(options.get("limit_bytes", 1048576)) or 1048576


def default_time_limit(recipe: str) -> int:
    """The time limit of a recipe's entry point when none is given (a capture runs for its duration, then writes)."""
    return CAPTURE_TIME_LIMIT if recipe == "capture" else DEFAULT_TIME_LIMIT


def recipe_plan(recipe: str, options: Mapping[str, Any]) -> Plan:
    """What to add, for input ``recipe_problems`` accepted."""
    namespace = options.get("namespace") or []
    return Plan(
        name=recipe_name(recipe, options),
        container=_name_text(options.get("container")) or f"kd-{recipe_name(recipe, options)}-{options['run_id']}",
        namespaces=[namespace] if isinstance(namespace, str) else list(namespace),
        args=recipe_args(recipe, options),
        limit_bytes=log_limit(recipe, options),
        time_limit=_int(options.get("time_limit")) or default_time_limit(recipe),
        nice=DEFAULT_NICE if options.get("nice") is None else _int(options["nice"]) or 0,
        detach=_flag_value(options.get("detach"), False),
    )


def kubelet_escape(arg: str) -> str:
    """``arg`` as a container's command must hold it for the process to get ``arg``: the kubelet reads ``$(NAME)`` in
    command and args as a reference to an environment variable of the container, and ``$$`` as ``$``, ephemeral
    containers included. Every ``$`` doubled comes out as it was: the scripts' ``$$`` (their pid) stays ``$$``, and
    an argument such as ``$(HTTPS_PROXY)`` is not replaced by the value of a ``recipe_env`` entry."""
    return arg.replace("$", "$$")


def boot_command(boot: str, plan: Plan, script: str) -> list[str]:
    """The debug container's command: boot.sh runs ``sh -c SCRIPT NAME ARGS...`` under the plan's bounds.

    One literal argv: the bounds, the script and its arguments are positional parameters of boot.sh, never shell text;
    and each as the kubelet must be given it (``kubelet_escape``) for the container to see it unchanged.
    """
    argv = ["sh", "-c", boot, "kd-boot", str(plan.time_limit), str(plan.nice), script, plan.name, *plan.args]
    return [kubelet_escape(arg) for arg in argv]


# The incident_snapshot role's input (the incident_plan action): its checks and its run id.

INCIDENT_PREFIX = "incident_snapshot"
# The keys of incident_snapshot_recipe_vars: the options of the recipe role's entry points it hands on.
INCIDENT_RECIPE_VARS = ("recipe_names", "recipe_checks", "recipe_paths")
RUN_ID_FROM_REASON = 40
# Jinja's truncate keeps a text up to 5 characters longer than asked (its "truncate.leeway" policy). The role made its
# run id with truncate(40, True, ''), so a reason of 41 to 45 characters gave a run id of that length: keep it so, or
# a rerun of an incident taken before would get another run id and add its containers again.
TRUNCATE_LEEWAY = 5


@dataclass(frozen=True)
class IncidentPlan:
    """What the incident_snapshot role runs under: its run id, the bundle directory it writes, and each recipe's time
    limit (the one given for all, else the recipe's own)."""

    run_id: str
    bundle: str
    time_limits: dict[str, int] = field(default_factory=dict)


def _text(options: Mapping[str, Any], option: str) -> str:
    value = options.get(option)
    return "" if value is None else str(value)


def run_id_from_reason(reason: str) -> str:
    """The run id made of ``reason``: lower case, every run of other characters than a-z, 0-9 and '-' one '-', no '-'
    at either end, at most 40 characters (45 when that is all of it, as Jinja's truncate did)."""
    run_id = re.sub(r"[^a-z0-9-]+", "-", reason.lower()).strip("-")
    if len(run_id) > RUN_ID_FROM_REASON + TRUNCATE_LEEWAY:
        run_id = run_id[:RUN_ID_FROM_REASON]
    return run_id.rstrip("-")


def incident_run_id(options: Mapping[str, Any]) -> str:
    """The run id given, or the one made of the reason."""
    return _text(options, "run_id") or run_id_from_reason(_text(options, "reason"))


def max_incident_run_id(recipes: Sequence[Any]) -> int:
    """The longest run id the debug containers kd-<recipe>-<run id> leave room for."""
    return MAX_CONTAINER_NAME - len("kd-") - len("-") - max((len(str(recipe)) for recipe in recipes), default=0)


def _incident_run_id_problems(options: Mapping[str, Any], o: Naming) -> list[str]:
    given, reason, run_id = _text(options, "run_id"), _text(options, "reason"), incident_run_id(options)
    longest = max_incident_run_id(options.get("recipes") or [])
    problems = []
    if given and not DNS1123_LABEL.fullmatch(given):
        problems.append(
            f"give an {o('run_id')} of lower-case letters, digits and '-', starting and ending with a letter or digit,"
            f" or leave it empty to make one of {o('reason')} (got {_json(options.get('run_id'))})"
        )
    if not given and reason.strip() and not run_id:
        problems.append(f"{o('reason')} {_json(options.get('reason'))} has no letter or digit to make a run id of: set {o('run_id')}")
    if len(run_id) > longest:
        problems.append(
            f"{o('run_id')} is too long: the debug containers kd-<recipe>-<run id> may have at most {MAX_CONTAINER_NAME}"
            f" characters, so give at most {longest} (got {len(run_id)})"
        )
    return problems


def incident_problems(options: Mapping[str, Any]) -> list[str]:
    """Every problem of the incident_snapshot role's input at once, each naming the option as ``incident_snapshot_<option>``.

    ``options`` are the role's options without the prefix (``namespace``, ``pod``, ``reason``, ``run_id``, ...).
    """
    o = Naming("", INCIDENT_PREFIX)
    pod, selector = _text(options, "pod"), _text(options, "label_selector")
    recipe_vars = options.get("recipe_vars")
    problems = []
    # The argument spec lets a list through as "[...]" text: the role hands it on unconverted, and the recipes then
    # fail on it one by one, after the pods were read.
    for option in ("namespace", "pod", "label_selector", "reason", "run_id", "dest"):
        if options.get(option) is not None and not isinstance(options.get(option), str):
            problems.append(f"{o(option)} must be a string (got {_json(options.get(option))})")
    if not _text(options, "namespace"):
        problems.append(f"give {o('namespace')}, the namespace of the pods")
    if bool(pod) == bool(selector):
        problems.append(
            f"give exactly one of {o('pod')} or {o('label_selector')}"
            f" (got pod={_json(options.get('pod'))}, label_selector={_json(options.get('label_selector'))})"
        )
    if not _text(options, "reason").strip():
        problems.append(f"give {o('reason')}, the incident id or why the snapshot is taken")
    problems += _incident_run_id_problems(options, o)
    problems += _at_least(options, o, "events_limit", 0, "must be 0 (no events) or more")
    problems += _at_least(options, o, "tail_lines", 1, "must be at least 1")
    for option in LIST_OPTIONS:
        try:
            _items(options, option)
        except TypeError:
            problems.append(f"{o(option)} must be a list of strings (got {_json(options[option])})")
    problems += _at_least(options, o, "wait_timeout", 0, "must be 0 or more seconds")
    image = options.get("debug_image")
    if image not in (None, "") and not (isinstance(image, str) and image.strip() and image == image.strip()):
        problems.append(f"{o('debug_image')} must name the debug image without spaces around it, or be empty to keep each recipe's own (got {_json(image)})")
    if not _text(options, "dest"):
        problems.append(f"give {o('dest')}, the directory on the controller the bundle is written in")
    if not isinstance(recipe_vars, Mapping) or set(recipe_vars) - set(INCIDENT_RECIPE_VARS):
        keys = list(recipe_vars) if isinstance(recipe_vars, Mapping) else recipe_vars
        problems.append(f"{o('recipe_vars')} takes recipe_names, recipe_checks and recipe_paths (got {_json(keys)})")
    return problems + _incident_bounds_problems(options, o)


def _incident_bounds_problems(options: Mapping[str, Any], o: Naming) -> list[str]:
    """The bounds the role hands on to every recipe: a time limit (0: each recipe's own), a niceness and a canary."""
    problems = []
    given = options.get("time_limit", 0)
    time_limit = _int(given)
    if isinstance(given, bool) or time_limit is None or not 0 <= time_limit <= MAX_TIME_LIMIT:
        problems.append(
            f"{o('time_limit')} must be 0 (each recipe's own: {DEFAULT_TIME_LIMIT} s, capture {CAPTURE_TIME_LIMIT} s) or 1 to"
            f" {MAX_TIME_LIMIT} seconds, after which a recipe is stopped (got {_json(given)})"
        )
    if "nice" in options:
        nice = _int(options["nice"])
        if isinstance(options["nice"], bool) or nice is None or not 0 <= nice <= MAX_NICE:
            problems.append(f"{o('nice')} must be a niceness of 0 (normal priority) to {MAX_NICE} (the lowest) (got {_json(options['nice'])})")
    if "canary" in options:
        problems += _at_least(options, o, "canary", 0, "must be 0 (no canary) or a number of pods")
    return problems


def incident_failure(problems: Sequence[str]) -> str:
    return f"{INCIDENT_PREFIX}: {'; '.join(problems)}"


def controller_dir(path: str, cwd: str | None = None) -> str:
    """``path`` as an absolute path on the controller: ``~`` expanded, a relative path taken from ``cwd``, by default
    the working directory of ``ansible-playbook`` (the controller's plugins run in its processes, which keep it).

    Never the playbook's directory: that is inside the collection when the playbook runs from an installed one, and
    an installed collection (an execution environment's) may be read-only.
    """
    return os.path.normpath(os.path.join(os.getcwd() if cwd is None else cwd, os.path.expanduser(path)))


def incident_plan(options: Mapping[str, Any], cwd: str | None = None) -> IncidentPlan:
    """The run id and bundle directory (absolute: ``dest`` is taken from ``cwd``, see ``controller_dir``), for input
    ``incident_problems`` accepted."""
    run_id = incident_run_id(options)
    given = _int(options.get("time_limit", 0)) or 0
    time_limits = {recipe: given or default_time_limit(recipe) for recipe in options.get("recipes") or [] if isinstance(recipe, str)}
    return IncidentPlan(run_id=run_id, bundle=os.path.join(controller_dir(_text(options, "dest"), cwd), run_id), time_limits=time_limits)


# Summaries of the records of the ephemeral_results lookup (one per pod, "output" the list of checks).


def _is_bounds(line: Any) -> bool:
    """Whether an output line is one boot.sh and the prelude print about the run's bounds, not a check."""
    return isinstance(line, Mapping) and "check" not in line and isinstance(line.get("bounds"), Mapping)


def _lines(record: Mapping[str, Any]) -> list[Any]:
    """A record's output lines without the bounds lines: what the scripts print, as they did before the bounds."""
    output = record.get("output")
    return [line for line in output if not _is_bounds(line)] if isinstance(output, list) else []


def _checks(record: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The checks of a record, without the script's closing summary line and the bounds lines."""
    return [check for check in _lines(record) if isinstance(check, Mapping) and check.get("check") != "summary"]


def run_bounds(record: Mapping[str, Any]) -> dict[str, Any]:
    """What a record's bounds lines say, merged: ``time_limit``, ``time_limit_by``, ``nice``, ``nice_by``,
    ``niceness``, and ``timed_out`` (with ``exit_code``, ``elapsed``) when the limit stopped the script.

    Timed out too when the log was cut (``limit_bytes``) before boot.sh's last line but the container exited 124, the
    status boot.sh exits with then. A whole log without that line is a script that exited 124 of its own accord.
    """
    bounds: dict[str, Any] = {}
    output = record.get("output")
    for line in output if isinstance(output, list) else []:
        if _is_bounds(line):
            bounds.update(line["bounds"])
    if bounds and record.get("exit_code") == 124 and (record.get("truncated") or record.get("partial_line")):
        bounds.setdefault("timed_out", True)
    bounds["timed_out"] = bounds.get("timed_out") is True
    return bounds


def stopped_text(bounds: Mapping[str, Any], prefix: str = "recipe") -> str:
    """What a report says of a run its time limit stopped."""
    return f"stopped after {bounds.get('time_limit', '?')} s ({prefix}_time_limit)"


def bounds_text(bounds: Mapping[str, Any]) -> str:
    """How a run was bounded, in words: ``time limit 100 s (timeout), niceness 10 (nice)``."""
    if not bounds.get("time_limit_by"):
        return ""
    niceness = bounds.get("niceness")
    return (
        f"time limit {bounds.get('time_limit', '?')} s ({bounds.get('time_limit_by')}),"
        f" niceness {'?' if niceness is None else niceness} ({bounds.get('nice_by', 'none')})"
    )


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on", "y", "t")
    return bool(value)


def _unparsed(record: Mapping[str, Any]) -> bool:
    """Whether some of a record's log did not make it into its output: lines that are not JSON, or a cut last line.

    Every line that did parse is in the output all the same; the summaries name these records so that nobody takes
    "no failed checks" for "every check passed" when a check's line may be among the unparsed ones.
    """
    return bool(record.get("bad_lines") or record.get("partial_line") or record.get("parse_error"))


def recipe_summary(results: Sequence[Mapping[str, Any]], recipe: str, container: str, prefix: str = "recipe") -> dict[str, Any]:
    """``<role>_summary``: how many pods and checks, how many failed, which pods have not finished or were stopped by
    the time limit, and how the runs were bounded."""
    bounds = [(record, run_bounds(record)) for record in results]
    timed_out = [(record, each) for record, each in bounds if each["timed_out"]]
    # Every pod runs the same image with the same bounds: the first pod's say how all of them ran.
    first = next((each for _record, each in bounds if each.get("time_limit_by")), {})
    return {
        "recipe": recipe,
        "container": container,
        "pods": len(results),
        "checks": sum(len(_lines(record)) for record in results),
        "failed_checks": sum(1 for record in results for check in _checks(record) if not check.get("ok")),
        "unfinished_pods": [record.get("pod") for record in results if record.get("state") != "terminated"],
        "unparsed_pods": [record.get("pod") for record in results if _unparsed(record)],
        "timed_out_pods": [record.get("pod") for record, _each in timed_out],
        "stopped": [f"{record.get('namespace')}/{record.get('pod')}: {stopped_text(each, prefix)}" for record, each in timed_out],
        "bounds": {key: first[key] for key in ("time_limit", "time_limit_by", "nice", "nice_by", "niceness") if key in first},
        "bounds_text": bounds_text(first),
    }


def _counts(rows: Iterable[Mapping[str, Any]], key: Callable[[Mapping[str, Any]], str]) -> dict[str, dict[str, int]]:
    groups: dict[str, dict[str, int]] = {}
    for row in rows:
        group = groups.setdefault(key(row), {"checks": 0, "failed_checks": 0})
        group["checks"] += 1
        group["failed_checks"] += 0 if row["ok"] else 1
    return groups


def fleet_summary(records: Sequence[Mapping[str, Any]], *, run_id: str, recipe: str, label_selector: str, clusters: Sequence[str]) -> dict[str, Any]:
    """Which checks fail where, grouped by cluster, namespace and node; each record carries its ``cluster``."""
    unfinished = [
        {key: record.get(key) for key in ("cluster", "namespace", "pod", "state", "reason", "error")}
        for record in records
        if record.get("state") != "terminated" or record.get("error")
    ]
    timed_out = [
        {**{key: record.get(key) for key in ("cluster", "namespace", "pod")}, "detail": stopped_text(bounds)}
        for record in records
        if (bounds := run_bounds(record))["timed_out"]
    ]
    unparsed = [
        {
            **{key: record.get(key) for key in ("cluster", "namespace", "pod", "parse_error")},
            "bad_lines": len(record.get("bad_lines") or []),
            "partial_line": bool(record.get("partial_line")),
        }
        for record in records
        if _unparsed(record)
    ]
    rows = [
        {
            "cluster": record.get("cluster"),
            "namespace": record.get("namespace"),
            "node": record.get("node") or "-",
            "pod": record.get("pod"),
            "check": check["check"],
            "target": check.get("target", ""),
            "ok": _truthy(check.get("ok")),
            "detail": str(check.get("detail", "")),
        }
        for record in records
        for check in _checks(record)
        if "check" in check
    ]
    failures = [row for row in rows if not row["ok"]]
    by_check: dict[str, dict[str, Any]] = {}
    for row in failures:
        entry = by_check.setdefault(f"{row['check']} {row['target']}", {"check": row["check"], "target": row["target"], "failed": 0, "where": []})
        entry["failed"] += 1
        entry["where"].append(f"{row['cluster']}/{row['namespace']}/{row['pod']}")
    pods_by_cluster: dict[Any, int] = {}
    for record in records:
        pods_by_cluster[record.get("cluster")] = pods_by_cluster.get(record.get("cluster"), 0) + 1
    return {
        "run_id": run_id,
        "recipe": recipe,
        "label_selector": label_selector,
        "clusters": list(clusters),
        "pods": len(records),
        "pods_by_cluster": dict(sorted(pods_by_cluster.items())),
        "checks": len(rows),
        "failed_checks": len(failures),
        "unfinished": unfinished,
        "unparsed": unparsed,
        "timed_out": timed_out,
        "by_cluster": _counts(rows, lambda row: str(row["cluster"])),
        "by_namespace": _counts(rows, lambda row: f"{row['cluster']}/{row['namespace']}"),
        "by_node": _counts(rows, lambda row: f"{row['cluster']}/{row['node']}"),
        "by_check": sorted(by_check.values(), key=lambda entry: entry["failed"], reverse=True),
        "failures": failures,
    }


def _is_ready(pod: Mapping[str, Any]) -> bool:
    statuses = [c.get("status") for c in pod.get("conditions") or [] if c.get("type") == "Ready"]
    return bool(statuses) and statuses[0] == "True"


def incident_summary(pods: Sequence[Mapping[str, Any]], recipes: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per pod for an incident report: status, restarts, warnings, and its recipes' checks."""
    rows = []
    for pod in pods:
        app = [c for c in pod.get("containers") or [] if c.get("kind") != "ephemeral"]
        total = failed = 0
        unfinished = []
        unparsed = []
        timed_out = []
        for name, recipe in recipes.items():
            for record in recipe.get("results") or []:
                if (record.get("namespace"), record.get("pod")) != (pod.get("namespace"), pod.get("pod")):
                    continue
                checks = _checks(record)
                total += len(checks)
                failed += sum(1 for check in checks if not check.get("ok"))
                if record.get("state") != "terminated":
                    unfinished.append(name)
                if _unparsed(record):
                    unparsed.append(name)
                if run_bounds(record)["timed_out"]:
                    timed_out.append(name)
        rows.append(
            {
                "namespace": pod.get("namespace"),
                "pod": pod.get("pod"),
                "node": pod.get("node"),
                "phase": pod.get("phase"),
                "ready": _is_ready(pod),
                "restarts": sum(c.get("restart_count") or 0 for c in app),
                "last_terminations": [c["last_termination"].get("reason") for c in app if c.get("last_termination")],
                "warning_events": sum(1 for event in pod.get("events") or [] if event.get("type") == "Warning"),
                "checks": total,
                "failed_checks": failed,
                "unfinished_recipes": unfinished,
                "unparsed_recipes": unparsed,
                "timed_out_recipes": timed_out,
                "error": pod.get("error"),
            }
        )
    return rows


# Report text: container output (and anything else read from a cluster) is untrusted.

# ASCII punctuation that starts or ends inline Markdown (emphasis, code, links, images, autolinks, raw HTML, entities,
# strikethrough, GitHub's math) or a table cell. CommonMark lets a backslash escape any ASCII punctuation.
_MD_INLINE = re.compile(r"([\\`*_\[\]<>|&!~$])")
# Whatever ends a line for a Markdown renderer or a terminal: a table row or a paragraph must not end early.
_MD_BREAKS = re.compile(r"[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]")
# Other control characters (ANSI escape sequences in a terminal, NUL) have no business in a report.
_MD_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1b\x1f\x7f-\x84\x86-\x9f]")


def _report_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float)):
        return json.dumps(value)
    return json.dumps(value, default=str, ensure_ascii=False)


def markdown_escape(value: Any, code: bool = False) -> str:
    """``value`` as inert Markdown inline text: one line, no markup, and no ``|`` that ends a table cell.

    ``code=True`` gives a code span for a table cell instead (fenced with more backticks than the text has in a row),
    whose text is shown as it is, punctuation and all.
    """
    text = _MD_CONTROLS.sub("\ufffd", _MD_BREAKS.sub(" ", _report_text(value)))
    # In a code span a backslash is literal, and renderers disagree on whether the pipe of "\\" + "\\|" is escaped:
    # such text goes out as escaped text instead, whose every backslash and pipe is escaped on its own.
    if not code or "\\|" in text:
        return _MD_INLINE.sub(r"\\\1", text)
    # GitHub's tables split cells on "|" before anything else, even inside code spans: "\|" keeps it in the cell.
    text = text.replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith(("`", " ")) or text.endswith(("`", " ")) else ""
    return f"{fence}{pad}{text}{pad}{fence}" if text else ""


def split_list(value: Any) -> list[Any]:
    """A survey answer as a list: text becomes its items (separated by commas, blanks or lines); a list stays."""
    if value is None:
        return []
    if isinstance(value, str):
        return LIST_ITEM.findall(value)
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        return list(value)
    raise TypeError(f"expected a list or a text of items separated by commas, blanks or lines, got {type(value).__name__}: {value!r}")


def attach_files(results: Sequence[Mapping[str, Any]], stats: Sequence[Mapping[str, Any]], key: str = "pcap") -> list[dict[str, Any]]:
    """The records with the file written for each pod as ``key`` (``path``, ``size``, ``sha256``; null when none).

    ``stats`` are the registered results of an ``ansible.builtin.stat`` loop over ``[record, check]`` pairs.
    """
    written = {}
    for stat in stats:
        if stat.get("skipped") or "stat" not in stat:
            continue
        record = stat["item"][0]
        written[(record["namespace"], record["pod"])] = {
            "path": stat["stat"].get("path"),
            "size": stat["stat"].get("size"),
            "sha256": stat["stat"].get("checksum"),
        }
    return [{**record, key: written.get((record.get("namespace"), record.get("pod")))} for record in results]


def fetched_files(results: Sequence[Mapping[str, Any]], fetch_dir: str) -> list[dict[str, Any]]:
    """Where on the controller each file the filesystem recipe read goes: ``<fetch_dir>/<namespace>/<pod><resolved>``.

    ``resolved`` comes from the container's output, which the target's processes can
    forge (they share the debug container's process namespace). A path that is not
    absolute, has a ``..`` or ``.`` component, a NUL, or a namespace or pod that is not a
    DNS-1123 name would let a forged line write outside ``fetch_dir``: such a file is not
    written, and its entry says why (``refused``).
    """
    files: list[dict[str, Any]] = []
    for record in results:
        namespace, pod = str(record.get("namespace") or ""), str(record.get("pod") or "")
        for check in record.get("output") or []:
            if not isinstance(check, Mapping) or check.get("check") != "file" or not check.get("content_base64"):
                continue
            resolved = check.get("resolved")
            label = f"{namespace}/{pod}:{check.get('target')}"
            entry: dict[str, Any] = {"label": label, "content_base64": check["content_base64"], "dest": None, "refused": None}
            plain = isinstance(resolved, str) and resolved.startswith("/") and "\0" not in resolved
            parts = str(resolved).split("/")[1:]
            if not (DNS1123_LABEL.fullmatch(namespace) and re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", pod)):
                entry["refused"] = f"{label}: namespace or pod is not a Kubernetes name"
            elif not plain or any(p in ("", ".", "..") for p in parts):
                entry["refused"] = f"{label}: the container reported the path {resolved!r}, which is not a plain absolute path: not written"
            else:
                entry["dest"] = "/".join([fetch_dir.rstrip("/"), namespace, pod, *parts])
            files.append(entry)
    return files
