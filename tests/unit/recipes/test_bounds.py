"""roles/recipe/files/boot.sh and the prelude's bounds, run for real on this host.

Every recipe runs as ``sh -c BOOT kd-boot LIMIT NICE SCRIPT NAME ARGS...`` (the recipe_plan action's command, built by
``boot_command``): the boot runs ``sh -c SCRIPT NAME ARGS...`` at niceness NICE and stops it after LIMIT seconds. Each
test runs that command in every shell a debug image may have (conftest's ``run_recipe`` shells: dash, bash --posix,
busybox sh with this host's tools, and busybox sh with nothing but busybox applets), with tools taken off PATH to
reach each fallback: GNU ``timeout`` absent (busybox's does not count: it signals the script's shell alone, and its
watcher leaves the script's ancestry) -> the prelude's watchdog; ``nice`` absent -> ``renice``; both absent -> none.
What the shell finds is asked of the shell itself (``run_recipe.has``): Debian's busybox-static runs its own applets
whatever PATH holds, so hiding a tool from it hides nothing, and it has no ``nice`` applet at all.

The output is parsed as the ephemeral_results lookup parses a container log (``parse_output``, json_lines), and the
Python summary (``recipe_summary``) reads it as the role does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pytest
from recipe_runner import ROLES

from ansible_collections.kubedebug.ephemeral.plugins.module_utils._results import parse_output
from ansible_collections.kubedebug.ephemeral.plugins.plugin_utils._recipes import Plan, boot_command, recipe_summary
from ansible_collections.kubedebug.ephemeral.tests.kubelet import kubelet_argv

# conftest's RecipeRunner (the run_recipe fixture): conftest is not a module to import.
RecipeRunner = Any
FILES = ROLES / "recipe" / "files"
# As the recipe_plan action reads the files: trailing whitespace stripped.
BOOT = (FILES / "boot.sh").read_text(encoding="utf-8").rstrip()
PRELUDE = (FILES / "prelude.sh").read_text(encoding="utf-8").rstrip()
# The niceness pytest runs at: the boot never lowers it (a CI runner may run everything niced).
BASE_NICENESS = os.nice(0)

# A script of one's own: its $0 and arguments, the niceness it reads of itself, then SLEEP seconds and a last line.
PROBE = r"""
kd_niceness "$$"
emit_check probe "$0" true "$*" "\"niceness\":$_kd_ni,\"args\":$#"
[ "${SLEEP:-0}" = 0 ] || sleep "$SLEEP"
emit_check after "$0" true "slept $SLEEP"
exit "${EXIT:-0}"
"""


@dataclass
class Run:
    rc: int
    lines: list[dict[str, Any]]
    seconds: float
    record: dict[str, Any]

    @property
    def bounds(self) -> dict[str, Any]:
        first = self.lines[0]
        assert set(first) == {"bounds"}, f"the first line does not say how the run was bounded: {first}"
        return first["bounds"]

    def checks(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("check") == name]


def boot(
    runner: RecipeRunner,
    script: str = PROBE,
    *args: str,
    name: str = "probe",
    limit: int = 100,
    nice: int = 10,
    hide: Iterable[str] = (),
    env: dict[str, str] | None = None,
    wrap: tuple[str, ...] = (),
) -> Run:
    """Run ``script`` (after the prelude) under the boot, as the debug container runs a recipe."""
    plan = Plan(name=name, container=f"kd-{name}-r1", namespaces=["shop"], args=list(args), limit_bytes=1 << 20, time_limit=limit, nice=nice)
    # As the container's process gets the planned command: the kubelet turns the role's $$ back into $.
    command = kubelet_argv(boot_command(BOOT, plan, PRELUDE + "\n" + script))
    assert command[:2] == ["sh", "-c"]
    run_env = {"PATH": runner.path(hide), "LC_ALL": "C", **(env or {})}
    start = time.monotonic()
    proc = subprocess.run([*wrap, *runner.shell.argv, *command[1:]], capture_output=True, env=run_env, timeout=120, check=False)
    seconds = time.monotonic() - start
    assert proc.stderr == b"", f"{runner.shell.name}: wrote to stderr (the container log would mix it in): {proc.stderr[-2000:]!r}"
    parsed = parse_output(proc.stdout.decode("utf-8", "replace"), "json_lines")
    assert parsed.error is None, f"{runner.shell.name}: {parsed.error}\n{proc.stdout.decode(errors='replace')}"
    record = {"namespace": "shop", "pod": "web-0", "state": "terminated", "exit_code": proc.returncode, "output": parsed.output}
    return Run(proc.returncode, parsed.output, seconds, record)


def gnu_timeout(runner: RecipeRunner, hide: Iterable[str] = ()) -> bool:
    """Whether the shell, with this PATH, runs GNU coreutils' timeout (the only one with --foreground)."""
    argv = [*runner.shell.argv, "-c", "timeout --foreground 1 true"]
    return subprocess.run(argv, capture_output=True, env={"PATH": runner.path(hide), "LC_ALL": "C"}, timeout=30, check=False).returncode == 0


def expected_nice(runner: RecipeRunner, hide: Iterable[str] = ()) -> tuple[str, int]:
    """How the boot should apply niceness 10 with this shell and PATH, and the niceness the script should then have."""
    if BASE_NICENESS >= 10:
        return "already", BASE_NICENESS
    if runner.has("nice", hide):
        return "nice", 10
    if runner.has("renice", hide):
        return "renice", 10
    return "none", BASE_NICENESS


def test_a_run_says_how_it_was_bounded_and_really_runs_niced(run_recipe: RecipeRunner) -> None:
    # Values a shell would act on: they reach the script as they are, one argument each.
    args = ["a b", "$(touch x)", "-n", "", "*"]
    run = boot(run_recipe, PROBE, *args)
    nice_by, niceness = expected_nice(run_recipe)
    assert run.rc == 0
    assert run.bounds == {
        "time_limit": 100,
        "time_limit_by": "timeout" if gnu_timeout(run_recipe) else "watchdog",
        "nice": 10,
        "nice_by": nice_by,
        "niceness": niceness,
    }
    [probe] = run.checks("probe")
    # The script's own reading of /proc/self/stat, not the boot's word for it.
    assert probe["niceness"] == niceness
    assert (probe["target"], probe["detail"], probe["args"]) == ("probe", " ".join(args), len(args))
    assert len(run.checks("after")) == 1
    summary = recipe_summary([run.record], "probe", "kd-probe-r1")
    # The bounds line is not a check: two checks, as without it.
    assert (summary["checks"], summary["failed_checks"], summary["timed_out_pods"]) == (2, 0, [])
    assert summary["bounds"] == run.bounds


@pytest.mark.parametrize(
    "hide",
    [pytest.param(("nice",), id="no-nice"), pytest.param(("nice", "renice"), id="no-nice-no-renice")],
)
def test_niceness_without_nice(run_recipe: RecipeRunner, hide: tuple[str, ...]) -> None:
    if run_recipe.has("nice", hide) or (len(hide) == 2 and run_recipe.has("renice", hide)):
        pytest.skip(f"{run_recipe.shell.name} runs its own applets whatever PATH holds: nothing to hide")
    run = boot(run_recipe, hide=hide)
    nice_by, niceness = expected_nice(run_recipe, hide)
    assert (run.bounds["nice_by"], run.bounds["niceness"]) == (nice_by, niceness)
    assert run.checks("probe")[0]["niceness"] == niceness
    if BASE_NICENESS < 10:
        assert nice_by == ("renice" if len(hide) == 1 else "none")


@pytest.mark.parametrize("nice", [0, 19])
def test_the_niceness_asked_is_the_niceness_applied(run_recipe: RecipeRunner, nice: int) -> None:
    run = boot(run_recipe, nice=nice)
    assert run.bounds["nice"] == nice
    assert run.checks("probe")[0]["niceness"] == max(nice, BASE_NICENESS)


@pytest.mark.parametrize("hide", [pytest.param((), id="timeout"), pytest.param(("timeout",), id="watchdog")])
def test_a_script_past_its_limit_is_stopped_and_says_so(run_recipe: RecipeRunner, hide: tuple[str, ...]) -> None:
    enforced = "timeout" if gnu_timeout(run_recipe, hide) else "watchdog"
    if hide and enforced == "timeout":
        pytest.skip(f"{run_recipe.shell.name} runs GNU timeout whatever PATH holds: no watchdog to test")
    token = uuid.uuid4().hex
    run = boot(run_recipe, hide=hide, limit=2, env={"SLEEP": "60", "KD_TEST_TOKEN": token})
    assert run.rc == 124
    assert run.bounds["time_limit_by"] == enforced
    assert len(run.checks("probe")) == 1 and run.checks("after") == []
    last = run.lines[-1]["bounds"]
    assert last["timed_out"] is True and last["time_limit"] == 2 and last["time_limit_by"] == enforced
    # coreutils' timeout exits 124 (137 after its KILL); the watchdog's TERM leaves 143 (KILL: 137).
    assert last["exit_code"] in (124, 137, 143) and last["elapsed"] >= 2
    # Not the script's full minute (a wide margin: the point is that it was stopped, not how fast).
    assert run.seconds < 40
    summary = recipe_summary([run.record], "probe", "kd-probe-r1")
    assert summary["timed_out_pods"] == ["web-0"]
    assert summary["stopped"] == ["shop/web-0: stopped after 2 s (recipe_time_limit)"]
    assert (summary["checks"], summary["failed_checks"]) == (1, 0)
    # What the script started (its sleep 60) is stopped too, not just the script.
    assert leftovers(token) == []


def leftovers(token: str, wait: float = 6) -> list[str]:
    """Processes with ``token`` in their environment, once the watchdog's KILL round (2 s after TERM) has passed."""
    deadline = time.monotonic() + wait
    while True:
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/environ", "rb") as handle:
                    if token.encode() not in handle.read():
                        continue
                with open(f"/proc/{pid}/cmdline", "rb") as handle:
                    found.append(handle.read().replace(b"\0", b" ").decode(errors="replace")[:80])
            except OSError:
                continue
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_a_quick_script_is_not_held_up_by_the_watchdog(run_recipe: RecipeRunner) -> None:
    """The watchdog leaves within a second of the script, and holds no end of the log open meanwhile."""
    if gnu_timeout(run_recipe, ("timeout",)):
        pytest.skip(f"{run_recipe.shell.name} runs GNU timeout whatever PATH holds: no watchdog to test")
    token = uuid.uuid4().hex
    run = boot(run_recipe, hide=("timeout",), limit=60, env={"KD_TEST_TOKEN": token})
    assert run.rc == 0 and run.bounds["time_limit_by"] == "watchdog" and len(run.checks("after")) == 1
    assert run.seconds < 30
    assert leftovers(token, wait=5) == []


@pytest.mark.parametrize("status", [124, 143, 3])
def test_a_script_that_exits_so_by_itself_was_not_stopped(run_recipe: RecipeRunner, status: int) -> None:
    run = boot(run_recipe, limit=30, env={"EXIT": str(status)})
    assert run.rc == status
    assert [line for line in run.lines if "bounds" in line and line["bounds"].get("timed_out")] == []
    # The whole log, without the boot's line for a stop: the summary does not take the status for the limit's.
    assert recipe_summary([run.record], "probe", "kd-probe-r1")["timed_out_pods"] == []


def test_no_time_limit_tool_at_all(run_recipe: RecipeRunner) -> None:
    """Neither timeout nor sleep: the run says its time is not bounded rather than spin a watchdog without sleep."""
    hide = ("timeout", "sleep")
    if gnu_timeout(run_recipe, hide) or run_recipe.has("sleep", hide):
        pytest.skip(f"{run_recipe.shell.name} runs its own applets whatever PATH holds: nothing to hide")
    run = boot(run_recipe, hide=hide, limit=1)
    assert run.rc == 0 and run.bounds["time_limit_by"] == "none" and len(run.checks("after")) == 1


@pytest.mark.parametrize(("limit", "nice"), [("0", "10"), ("x", "10"), ("5", ""), ("5", "1;id"), ("", "")])
def test_the_boot_refuses_bounds_that_are_not_numbers(run_recipe: RecipeRunner, limit: str, nice: str) -> None:
    argv = [*run_recipe.shell.argv, "-c", BOOT, "kd-boot", limit, nice, PRELUDE + "\n" + PROBE, "probe"]
    proc = subprocess.run(argv, capture_output=True, env={"PATH": run_recipe.path(), "LC_ALL": "C"}, timeout=30, check=False)
    assert proc.returncode == 2 and proc.stderr == b""
    [line] = parse_output(proc.stdout.decode(), "json_lines").output
    assert line["check"] == "bounds" and line["ok"] is False and line["detail"].startswith("usage: BOOT LIMIT NICE SCRIPT")


UNSHARE = shutil.which("unshare")


def _can_unshare() -> bool:
    if UNSHARE is None:
        return False
    return subprocess.run([UNSHARE, "--pid", "--fork", "--mount-proc", "true"], capture_output=True, check=False).returncode == 0


@pytest.mark.skipif(not _can_unshare(), reason="needs unshare --pid --mount-proc (root)")
@pytest.mark.parametrize("hide", [pytest.param((), id="timeout"), pytest.param(("timeout",), id="watchdog")])
def test_the_processes_recipe_does_not_list_the_bounds_own_processes(run_recipe: RecipeRunner, hide: tuple[str, ...]) -> None:
    """In a process namespace of its own the boot is pid 1 and there is no target: the processes recipe must find
    nothing, neither GNU timeout (an ancestor) nor the watchdog and its sleep (children of the script)."""
    script = (FILES / "processes.sh").read_text(encoding="utf-8").rstrip()
    # The watchdog is up: its first sleep starts before the script's own lines run.
    run = boot(run_recipe, "sleep 1\n" + script, name="processes", hide=hide, wrap=(UNSHARE or "unshare", "--pid", "--fork", "--mount-proc", "--"))
    assert run.rc == 0
    assert run.bounds["time_limit_by"] == ("timeout" if gnu_timeout(run_recipe, hide) else "watchdog")
    assert run.checks("process") == []
    assert run.checks("summary")[0]["count"] == 0
