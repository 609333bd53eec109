"""Shell-injection proofs: hostile input to each recipe reaches the debug container as arguments, never as script text.

The input path is the role's own: one ``ansible-playbook --check`` run includes the recipe role's entry point (dns,
network, processes, filesystem, capture, jvm, python and main, a script of your own) once per case, each case an
inventory host whose variables are the role's input. Values with Jinja markers are tagged ``!unsafe``, as AWX tags
survey answers, and some cases go through the ``split_list`` filter the playbooks apply to survey text. Argument validation, the
recipe_plan action, the ephemeral_container module and the kubernetes client all run for real; the module's
dry-run PATCH goes to fake_apiserver on 127.0.0.1, which records the exact container (``command`` + ``args``) the
role would add.

That argv then runs for real on this host: ``sh`` (the host's /bin/sh) and, when there is one, ``busybox sh`` with
only busybox applets on PATH, inside private_resolver's network and mount namespace (nothing can leave it), and in a
process namespace of its own whose pid 1 is a stand-in target, as in a pod (see ``pod_namespace``). Stub
tools first on PATH (getent, nc, curl, tcpdump and the main case's kd-probe) log their argv. Each run proves:

* no marker file: the values hold ``touch <marks>/<name>`` behind ``;``, ``|``, ``&``, ``&&``, a newline, ``$()``,
  backquotes and quotes, ``>`` redirections; the working directory (which holds a file a glob would match) gains
  nothing;
* no extra process: no process carrying the run's token in its environment is left (a ``&`` would leave one);
* every stub the shell ran got each hostile value as one literal argument, and one starting with ``-`` only after
  ``--`` (never as an option): ``getent ahosts NAME``, ``nc -z -w 3 HOST PORT``, ``curl ... --globoff ... URL``,
  ``tcpdump ... -- FILTER``, ``kd-probe ARGS...``;
* what the recipe reports names each value exactly (the filesystem recipe takes ``--pid=...`` for a path).

Input that must not reach a container at all (a process id, an interface name, a recipe name) is refused before
anything is planned, with a message naming the option.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from recipe_runner import BUSYBOX, ROLES, busybox_bin, host_path

from ansible_collections.kubedebug.ephemeral.plugins.plugin_utils._recipes import kubelet_escape, split_list
from ansible_collections.kubedebug.ephemeral.tests.kubelet import kubelet_argv
from ansible_collections.kubedebug.ephemeral.tests.private_resolver import PrivateResolver, Unavailable, private_resolver
from ansible_collections.kubedebug.ephemeral.tests.unit.api_objects import load_pod
from ansible_collections.kubedebug.ephemeral.tests.unit.fake_apiserver import FakeCluster, _Server
from ansible_collections.kubedebug.ephemeral.tests.unit.local_http import serving

ROOT = ROLES.parent
PROXIES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
# Set below (a module fixture's directory); the values name it, so it is fixed before the cases are built.
MARKS_NAME = "marks"
GLOB_BAIT = "glob-bait"


class Unsafe(str):
    """A value written as ``!unsafe`` into the inventory: Ansible never templates it."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(Unsafe, lambda dumper, value: dumper.represent_scalar("!unsafe", str(value), style='"'))


def hostile(marks: Path) -> list[str]:
    """Values that do something when a shell interprets them, and values a tool would take for options."""

    def mark(name: str) -> str:
        return str(marks / name)

    return [
        f"a;touch {mark('semicolon')}",
        f"a|touch {mark('pipe')}",
        f"a&touch {mark('ampersand')}",
        f"a&&touch {mark('and')}",
        f"a||touch {mark('or')}",
        f"a\ntouch {mark('newline')}",
        f"$(touch {mark('dollar-paren')})",
        f"`touch {mark('backquote')}`",
        f"'; touch {mark('single-quote')}; '",
        f'"; touch {mark("double-quote")}; "',
        f"a>{mark('redirect')}",
        f"a>>{mark('append')}",
        f"a<{mark('no-such-input')}",
        f"${{IFS}}touch${{IFS}}{mark('ifs')}",
        "a & sleep 77 &",
        # No '/' and no blank: these pass the network recipe's host and URL checks and reach nc and curl. They would
        # touch a file in the working directory.
        "$(touch${IFS}rel-dollar)",
        "`touch${IFS}rel-backquote`",
        "a;touch${IFS}rel-semicolon",
        "a|touch${IFS}rel-pipe",
        "a&&touch${IFS}rel-and",
        "a\ntouch${IFS}rel-newline",
        "-w",
        "*",
        "?lob-bai?",
        "[g]lob-bait",
        "{a,b}[1-3]",
        "-w /tmp/kd-injection-option",
        "--output=/tmp/kd-injection-option",
        "-h",
        "--",
        "{{ 7 * 7 }}",
        "%s%n",
        # The kubelet's own expansion of a container's command: $(NAME) is a variable of the container, $$ is $.
        "$(HOME)",
        "$$",
    ]


@dataclass
class Case:
    """One inventory host: an entry point of the recipe role and its input."""

    id: str
    entry: str
    options: dict[str, Any]
    refused_by: str = ""  # the option a refusal must name; empty when the input must be planned
    run_id: str = field(default="")

    @property
    def recipe(self) -> str:
        return self.options.get("recipe_name", "probe") if self.entry == "main" else self.entry


def unsafe(value: Any) -> Any:
    """``value`` with its text ``!unsafe`` where it holds Jinja markers: only such text is ever templated (and
    Ansible's ``!unsafe`` constructor refuses the bare scalars ``*``, ``=``, ``!`` and ``&``)."""
    if isinstance(value, str):
        return Unsafe(value) if any(marker in value for marker in ("{{", "{%", "{#")) else value
    if isinstance(value, list):
        return [unsafe(item) for item in value]
    if isinstance(value, dict):
        return {key: unsafe(item) for key, item in value.items()}
    return value


def capture_filters(values: list[str]) -> list[str]:
    """One capture case each (a filter is one text): one of each kind of hostile value, to keep the playbook short."""
    kinds = ("a;", "a\n", "$(", "`", "'", "a>", "a &", "a|", "*", "-w", "--output", "--", "{{")
    return [next(value for value in values if value.startswith(kind)) for kind in kinds]


def build_cases(marks: Path) -> list[Case]:
    values = hostile(marks)
    survey_text = "\n".join(values)  # as a survey's multi-line text answer
    cases = [
        Case("dns", "dns", {"recipe_names": values}),
        Case("dns-survey", "dns", {"kd_survey": survey_text, "recipe_names": "{{ kd_survey | kubedebug.ephemeral.split_list }}"}),
        Case(
            "network",
            "network",
            {"recipe_checks": [*(f"tcp:{v}:80" for v in values), *(f"http://127.0.0.1:9/{v}" for v in values), *values, "http://127.0.0.1:9/{a,b}[1-3]"]},
        ),
        Case("network-survey", "network", {"kd_survey": survey_text, "recipe_checks": "{{ kd_survey | kubedebug.ephemeral.split_list }}"}),
        Case("processes", "processes", {"recipe_reason": values[0], "recipe_env": {"KD_X": values[6]}}),
        Case(
            "filesystem",
            "filesystem",
            {"recipe_paths": [*values, *("/" + v for v in values), "--pid=999999999", "--max-bytes=1", "-x", str(Path(__file__).resolve())]},
        ),
        Case("filesystem-survey", "filesystem", {"kd_survey": survey_text, "recipe_paths": "{{ kd_survey | kubedebug.ephemeral.split_list }}"}),
        Case("main", "main", {"recipe_name": "probe", "recipe_script": 'kd-probe "$@"', "recipe_args": values}),
        Case("main-bad-name", "main", {"recipe_name": values[0], "recipe_script": "true"}, refused_by="recipe_name"),
        Case("jvm", "jvm", {"recipe_pid": 4242, "recipe_histogram": False}),
        Case("python", "python", {"recipe_pid": 4242}),
    ]
    for index, value in enumerate(capture_filters(values)):
        cases.append(Case(f"capture-filter-{index}", "capture", {"recipe_filter": value}))
    for index, value in enumerate((values[0], values[6], "-w /tmp/kd-injection-option", "eth0 -w x", "")):
        cases.append(Case(f"capture-interface-{index}", "capture", {"recipe_interface": value}, refused_by="recipe_interface"))
    for index, value in enumerate((values[0], values[6], "-1; id", "12 13")):
        cases.append(Case(f"jvm-pid-{index}", "jvm", {"recipe_pid": value}, refused_by="recipe_pid"))
        cases.append(Case(f"python-pid-{index}", "python", {"recipe_pid": value}, refused_by="recipe_pid"))
    cases.append(Case("jvm-histogram", "jvm", {"recipe_histogram": values[0]}, refused_by="recipe_histogram"))
    for number, case in enumerate(cases):
        case.run_id = f"inj{number}"
    return cases


# --- the role's planning, for real ---------------------------------------------------------------------------------


@dataclass
class Planned:
    """What the role did with one case: the container it would add (None when refused), or the refusal."""

    argv: list[str] | None
    failed_task: str | None
    msg: str


def run_playbook(tmp: Path, cases: list[Case], kubeconfig: Path) -> dict[str, dict[str, Any]]:
    entries = sorted({case.entry for case in cases})
    hosts = {}
    for case in cases:
        # The split_list template is the playbook's own (trusted); what the user typed is not.
        options = {key: value if str(value).startswith("{{ kd_survey") else unsafe(value) for key, value in case.options.items()}
        hosts[case.id] = {
            "recipe_namespace": "unit-fixtures",
            "recipe_pod": "plain",
            "recipe_run_id": case.run_id,
            "recipe_auth": {"kubeconfig": str(kubeconfig)},
            **options,
            "kd_case_entry": case.entry,
        }
    outcome = tmp / "outcomes.json"
    play = {
        "name": "Plan each case with the recipe role",
        "hosts": "all",
        "gather_facts": False,
        "strategy": "free",
        "tasks": [
            {
                "block": [
                    *(
                        {
                            "name": f"Include the recipe role ({entry})",
                            "ansible.builtin.include_role": {"name": "kubedebug.ephemeral.recipe", "tasks_from": entry, "defaults_from": entry},
                            "when": f"kd_case_entry == '{entry}'",
                        }
                        for entry in entries
                    ),
                    {"name": "Planned", "ansible.builtin.set_fact": {"kd_outcome": {"task": None, "msg": ""}}},
                ],
                "rescue": [
                    {
                        "name": "Keep the refusal",
                        "ansible.builtin.set_fact": {"kd_outcome": {"task": "{{ ansible_failed_task.name }}", "msg": "{{ ansible_failed_result.msg }}"}},
                    }
                ],
            }
        ],
    }
    collect = {
        "name": "Collect",
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
                "check_mode": False,
            }
        ],
    }
    inventory = {"all": {"vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}, "hosts": hosts}}
    (tmp / "play.yml").write_text(yaml.safe_dump([play, collect], sort_keys=False), encoding="utf-8")
    (tmp / "inventory.yml").write_text(yaml.dump(inventory, Dumper=_Dumper, sort_keys=False, allow_unicode=True), encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if key not in PROXIES}
    env.update(ANSIBLE_NOCOLOR="1", ANSIBLE_HOME=os.environ.get("ANSIBLE_HOME", str(ROOT / ".cache" / "ansible-home")))
    if "ANSIBLE_COLLECTIONS_PATH" not in env:
        collections = subprocess.run(["bash", str(ROOT / "hack" / "collections.sh")], capture_output=True, text=True, check=True)
        env["ANSIBLE_COLLECTIONS_PATH"] = collections.stdout.strip()
    playbook = str(Path(sys.executable).with_name("ansible-playbook"))
    argv = [playbook, "--check", "--forks", "10", "-i", str(tmp / "inventory.yml"), str(tmp / "play.yml")]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=900, check=False)
    if proc.returncode != 0 or not outcome.exists():
        pytest.fail(f"ansible-playbook failed (rc={proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return json.loads(outcome.read_text(encoding="utf-8"))


@dataclass
class Plans:
    marks: Path
    values: list[str]
    cases: dict[str, Case]
    planned: dict[str, Planned]


@pytest.fixture(scope="module")
def plans(tmp_path_factory: pytest.TempPathFactory) -> Plans:
    tmp = tmp_path_factory.mktemp("injection")
    marks = tmp / MARKS_NAME
    marks.mkdir()
    cases = build_cases(marks)
    cluster = FakeCluster()
    cluster.add(load_pod("plain"))
    with serving(_Server(cluster)) as server:
        kubeconfig = tmp / "kubeconfig"
        server_url = f"http://127.0.0.1:{server.server_address[1]}"
        kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "fake", "cluster": {"server": server_url}}],
                    "users": [{"name": "jane", "user": {"token": "unit-test"}}],
                    "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "jane"}}],
                    "current-context": "fake",
                }
            ),
            encoding="utf-8",
        )
        outcomes = run_playbook(tmp, cases, kubeconfig)
    containers: dict[str, list[str]] = {}
    for request in cluster.requests:
        if request["method"] == "PATCH" and request["path"].endswith("/ephemeralcontainers"):
            assert request["query"].get("dryRun") == ["All"], "check mode must only dry-run"
            for container in request["body"]["spec"]["ephemeralContainers"]:
                containers[container["name"]] = [*container.get("command", []), *container.get("args", [])]
    planned = {}
    for case in cases:
        outcome = outcomes[case.id]
        planned[case.id] = Planned(containers.get(f"kd-{case.recipe}-{case.run_id}"), outcome["task"], outcome["msg"])
    assert sorted(os.listdir(marks)) == [], "planning alone ran something"
    return Plans(marks, hostile(marks), {case.id: case for case in cases}, planned)


def planned_spec(plans: Plans, case_id: str) -> list[str]:
    """The command the role put in the debug container's spec."""
    planned = plans.planned[case_id]
    assert planned.failed_task is None, f"{case_id}: {planned.failed_task} failed: {planned.msg}"
    assert planned.argv is not None, f"{case_id}: no debug container was planned"
    return planned.argv


# Variables the debug container has, as a kubelet would substitute them for $(NAME) in its command.
KUBELET_ENV = {"HOME": "/kubelet-substituted", "PATH": "/kubelet-substituted"}


def planned_argv(plans: Plans, case_id: str) -> list[str]:
    """The argv the debug container's process gets: the spec's command after the kubelet's expansion ($$ -> $,
    $(NAME) -> the variable's value)."""
    return kubelet_argv(planned_spec(plans, case_id), KUBELET_ENV)


# --- running the planned argv, for real ----------------------------------------------------------------------------

STUB = """#!{python} -I
import json, os, sys
name = os.path.basename(sys.argv[0])
with open(os.environ["KD_STUB_LOG"], "a", encoding="utf-8") as log:
    log.write(json.dumps([name, *sys.argv[1:]]) + "\\n")
if name == "getent":
    sys.exit(2)
if name == "curl":
    sys.stdout.write("\\n200")
if name == "tcpdump" and "-w" in sys.argv:
    with open(sys.argv[sys.argv.index("-w") + 1], "wb") as pcap:
        pcap.write(bytes.fromhex("d4c3b2a1020004000000000000000000ffff000001000000"))
"""
STUBS = ("getent", "nc", "curl", "tcpdump", "kd-probe")


@pytest.fixture(scope="module")
def resolver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateResolver]:
    try:
        with private_resolver(tmp_path_factory.mktemp("resolver")) as started:
            yield started
    except Unavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the injection proofs in a private network namespace: {exc}")
        pytest.skip(str(exc))


SHELLS = ["sh", *(["busybox"] if BUSYBOX else [])]


@dataclass
class Run:
    records: list[dict[str, Any]]
    calls: list[list[str]]
    ran_stub: dict[str, bool]


@contextmanager
def pod_namespace(resolver: PrivateResolver) -> Iterator[int]:
    """A process namespace like a pod's, inside the resolver's network and mount namespaces: its pid 1 (a ``sleep``,
    the stand-in target) is the only process in it; yields that process's pid as this host sees it.

    The recipe joins it as a debug container joins its target's (``nsenter --pid``: its parent is outside, so its PPid
    is 0). Without it, a recipe that picks "the target's main process" (the filesystem recipe without --pid: the
    lowest pid not its own) would pick whatever process of this host has the lowest pid, say another test's container
    with a root of its own, where none of the paths under test exist.
    """
    # /proc is mounted afresh so that the recipe sees only this namespace's processes.
    argv = [*resolver.wrap(), "unshare", "--pid", "--kill-child", "--mount-proc", "--", "sleep", "3600"]
    holder = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    target = None
    try:
        # A hang guard only: unshare forks its child at once, however loaded the machine is.
        for _tick in range(600):
            target = next((pid for pid in _children(holder.pid) if _comm(pid) == "sleep"), None)
            if target is not None or holder.poll() is not None:
                break
            time.sleep(0.1)
        if target is None:
            why = holder.stderr.read().decode(errors="replace") if holder.poll() is not None and holder.stderr else "sleep never started"
            pytest.fail(f"no process namespace: {why}")
        yield target
    finally:
        # unshare ignores SIGTERM while it waits for its child: end the namespace's pid 1, which ends everything in it.
        if target is not None:
            os.kill(target, signal.SIGKILL)
        else:
            holder.kill()  # --kill-child takes the child with it
        holder.wait(timeout=60)


def _children(pid: int) -> list[int]:
    """Pids whose parent is ``pid`` (nsenter may have forked, so the grandchildren as well)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as handle:
                ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            found.extend([int(entry), *_children(int(entry))])
    return found


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def execute(argv: list[str], shell: str, tmp: Path, resolver: PrivateResolver, marks: Path) -> Run:
    stubs = tmp / "stubs"
    stubs.mkdir(parents=True)
    for name in STUBS:
        (stubs / name).write_text(STUB.format(python=sys.executable), encoding="utf-8")
        (stubs / name).chmod(0o755)
    work = tmp / "work"
    work.mkdir()
    (work / GLOB_BAIT).write_text("", encoding="utf-8")
    log = tmp / "stubs.log"
    token = uuid.uuid4().hex
    assert argv[0] == "sh"
    if shell == "sh":
        command, path = argv, f"{stubs}{os.pathsep}{host_path()}"
    else:
        command, path = [BUSYBOX or "busybox", *argv], f"{stubs}{os.pathsep}{busybox_bin()}"
    env = {"PATH": path, "LC_ALL": "C", "KD_STUB_LOG": str(log), "KD_INJECTION_TOKEN": token, "HOME": str(work)}
    shell_argv = [command[0]] if shell == "sh" else command[:2]
    ran_stub = {}
    for name in STUBS:
        found = subprocess.run([*shell_argv, "-c", 'command -v "$1"', "which", name], capture_output=True, text=True, env=env, check=False)
        ran_stub[name] = found.stdout.strip() == str(stubs / name)
    with pod_namespace(resolver) as target:
        # The target's namespaces, and the working directory given to nsenter: entering a mount namespace moves to its root.
        enter = ["nsenter", f"--target={target}", "--net", "--mount", "--pid", f"--wd={work}", "--"]
        proc = subprocess.run([*enter, *command], capture_output=True, env=env, cwd=work, timeout=300, check=False)
        leftovers = _leftovers(token)
    assert leftovers == [], f"processes left behind: {leftovers}"
    assert sorted(os.listdir(marks)) == [], f"a hostile value ran: {sorted(os.listdir(marks))}"
    assert sorted(os.listdir(work)) == [GLOB_BAIT], f"files appeared: {sorted(os.listdir(work))}"
    assert not Path("/tmp/kd-injection-option").exists()
    assert proc.stderr == b"", proc.stderr[-2000:]
    records = [json.loads(line) for line in proc.stdout.decode("utf-8", "replace").splitlines()]
    calls = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()] if log.exists() else []
    return Run(records, calls, ran_stub)


def _leftovers(token: str) -> list[str]:
    """The command lines of processes carrying ``token`` in their environment, while the namespace still holds them."""
    # busybox's timeout leaves a watchdog that notices within a second that its command is gone: give the recipe's
    # own processes that long; a process a hostile value started ("&") is still there.
    deadline = time.monotonic() + 10
    while (leftovers := [pid for pid in os.listdir("/proc") if pid.isdigit() and _has_token(pid, token)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    return [_cmdline(pid) for pid in leftovers]


def _has_token(pid: str, token: str) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            return token.encode() in handle.read()
    except OSError:
        return False


def _cmdline(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "?"


def assert_operand(call: list[str], value: str) -> None:
    """``value`` is one argument of ``call``, and not an option: after ``--``, or not starting with '-'."""
    assert call.count(value) >= 1, f"{value!r} is not one argument of {call!r}"
    index = len(call) - 1 - call[::-1].index(value)
    if value.startswith("-"):
        assert "--" in call[:index], f"{value!r} could be taken for an option in {call!r}"


def expected_command(recipe: str, args: list[str]) -> list[str]:
    """The command the recipe role gives a shipped recipe: the boot, its bounds (the role's default time limit and
    niceness), the prelude and the script's text, then the arguments."""
    # As the recipe_plan action reads the files (trailing whitespace stripped).
    boot = (ROLES / "recipe" / "files" / "boot.sh").read_text(encoding="utf-8").rstrip()
    prelude = (ROLES / "recipe" / "files" / "prelude.sh").read_text(encoding="utf-8").rstrip()
    script = (ROLES / "recipe" / "files" / f"{recipe}.sh").read_text(encoding="utf-8").rstrip()
    time_limit = "360" if recipe == "capture" else "100"
    # Every $ doubled: the kubelet turns $$ back into $, and leaves no $(NAME) to replace with a variable's value.
    return [kubelet_escape(arg) for arg in ["sh", "-c", boot, "kd-boot", time_limit, "10", prelude + "\n" + script, recipe, *args]]


# Where the script's arguments start in that command: after sh -c BOOT kd-boot LIMIT NICE SCRIPT NAME.
ARGS_AT = 8


def checks(run: Run) -> list[dict[str, Any]]:
    """The run's output lines but the bounds lines boot.sh and the prelude print."""
    assert run.records and "bounds" in run.records[0], f"the first line does not say how the run was bounded: {run.records[:1]}"
    return [record for record in run.records if "check" in record]


# --- the proofs ------------------------------------------------------------------------------------------------------


@pytest.fixture(params=SHELLS)
def shell(request: pytest.FixtureRequest) -> str:
    return request.param


def test_every_value_is_planned_as_one_argument(plans: Plans) -> None:
    values = plans.values
    assert planned_spec(plans, "dns") == expected_command("dns", values)
    assert planned_spec(plans, "dns-survey") == expected_command("dns", split_list("\n".join(values)))
    checks = plans.cases["network"].options["recipe_checks"]
    assert planned_spec(plans, "network") == expected_command("network", checks)
    assert planned_spec(plans, "processes") == expected_command("processes", [])
    paths = plans.cases["filesystem"].options["recipe_paths"]
    assert planned_spec(plans, "filesystem") == expected_command("filesystem", ["--max-bytes", "65536", "--", *paths])
    assert planned_spec(plans, "jvm") == expected_command("jvm", ["--pid", "4242", "--no-histogram"])
    assert planned_spec(plans, "python") == expected_command("python", ["--pid", "4242"])
    for index, value in enumerate(capture_filters(values)):
        bounds = ["--duration", "10", "--count", "1000", "--max-bytes", "5242880", "--interface", "any", "--"]
        assert planned_spec(plans, f"capture-filter-{index}") == expected_command("capture", [*bounds, value])
    # What the process gets, through a kubelet that has HOME and PATH to substitute: each value exactly, "$(HOME)"
    # and "$$" included.
    assert "$(HOME)" in values and "$$" in values
    assert planned_argv(plans, "main")[ARGS_AT - 1 :] == ["probe", *values]
    assert planned_argv(plans, "dns")[ARGS_AT:] == values


def test_input_that_must_not_reach_a_container_is_refused(plans: Plans) -> None:
    refused = [case for case in plans.cases.values() if case.refused_by]
    assert len(refused) == 15
    for case in refused:
        planned = plans.planned[case.id]
        assert planned.argv is None, f"{case.id}: planned {planned.argv!r}"
        assert planned.failed_task is not None, f"{case.id} was not refused"
        assert planned.failed_task.startswith(("Validating arguments against arg spec", "Check the input and plan the debug container")), planned
        assert case.refused_by in planned.msg, f"{case.id}: the message does not name {case.refused_by}: {planned.msg}"
        assert "Traceback" not in planned.msg


@pytest.mark.parametrize("case_id", ["dns", "dns-survey"])
def test_dns_names(plans: Plans, resolver: PrivateResolver, shell: str, tmp_path: Path, case_id: str) -> None:
    argv = planned_argv(plans, case_id)
    names = argv[ARGS_AT:]
    run = execute(argv, shell, tmp_path, resolver, plans.marks)
    assert [record["target"] for record in checks(run) if record["check"] == "resolve"] == names
    if run.ran_stub["getent"]:
        looked_up = [name for name in names if name and name[0] not in "-+@"]
        assert [call[1:] for call in run.calls if call[0] == "getent"] == [["ahosts", name] for name in looked_up]
        for call, name in zip((c for c in run.calls if c[0] == "getent"), looked_up, strict=True):
            assert_operand(call, name)


@pytest.mark.parametrize("case_id", ["network", "network-survey"])
def test_network_checks(plans: Plans, resolver: PrivateResolver, shell: str, tmp_path: Path, case_id: str) -> None:
    argv = planned_argv(plans, case_id)
    specs = argv[ARGS_AT:]
    run = execute(argv, shell, tmp_path, resolver, plans.marks)
    lines = [record for record in checks(run) if record["check"] in ("tcp", "http", "invalid")]
    assert len(lines) == len(specs)
    nc_calls = [call for call in run.calls if call[0] == "nc"]
    tcp_by_nc = [line for line in lines if line["check"] == "tcp" and line["tool"] == "nc -z"]
    if run.ran_stub["nc"]:
        assert len(nc_calls) == len(tcp_by_nc)
        for call, line in zip(nc_calls, tcp_by_nc, strict=True):
            host, port = line["target"].rsplit(":", 1)
            assert call[1:] == ["-z", "-w", "3", host, port]
            assert not host.startswith("-")
    curl_calls = [call for call in run.calls if call[0] == "curl"]
    http_lines = [line for line in lines if line["check"] == "http"]
    if run.ran_stub["curl"]:
        assert len(curl_calls) == len(http_lines)
        assert http_lines or case_id == "network-survey"
        for call, line in zip(curl_calls, http_lines, strict=True):
            # One request per URL: curl expands {a,b} and [1-3] unless --globoff.
            assert "--globoff" in call and call[-1] == line["target"] and line["target"].startswith(("http://", "https://"))


def test_filesystem_paths(plans: Plans, resolver: PrivateResolver, shell: str, tmp_path: Path) -> None:
    argv = planned_argv(plans, "filesystem")
    paths = argv[argv.index("--") + 1 :]
    run = execute(argv, shell, tmp_path, resolver, plans.marks)
    path_lines = [record for record in checks(run) if record["check"] in ("file", "dir")]
    assert [line["target"] for line in path_lines] == paths
    summary = checks(run)[-1]
    # The target is the namespace's pid 1 (the lowest pid not the recipe's own), not the pid in "--pid=999999999".
    assert summary["check"] == "summary" and summary["pid"] == 1, summary
    # --max-bytes=1 was a path, not the limit: this file comes back whole.
    this_file = Path(__file__).resolve()
    [mine] = [line for line in path_lines if line["target"] == str(this_file)]
    assert "content_base64" in mine, mine
    assert base64.b64decode(mine["content_base64"]) == this_file.read_bytes()
    assert [line["detail"] for line in path_lines if line["target"] in ("--pid=999999999", "--max-bytes=1", "-x")] == [
        "not an absolute path (paths are as the target sees them, e.g. /etc/resolv.conf)"
    ] * 3


def test_filesystem_survey_paths(plans: Plans, resolver: PrivateResolver, shell: str, tmp_path: Path) -> None:
    argv = planned_argv(plans, "filesystem-survey")
    run = execute(argv, shell, tmp_path, resolver, plans.marks)
    assert [r["target"] for r in checks(run) if r["check"] in ("file", "dir")] == argv[argv.index("--") + 1 :]


def test_capture_filter(plans: Plans, resolver: PrivateResolver, shell: str, tmp_path: Path) -> None:
    for index, value in enumerate(capture_filters(plans.values)):
        argv = planned_argv(plans, f"capture-filter-{index}")
        run = execute(argv, shell, tmp_path / str(index), resolver, plans.marks)
        assert run.ran_stub["tcpdump"]
        capture = [call for call in run.calls if call[0] == "tcpdump" and "-w" in call]
        assert len(capture) == 1, run.calls
        [call] = capture
        assert call[1:8] == ["-i", "any", "-c", "1000", "-U", "-w", call[7]]
        # Everything after -w FILE: "--" and the filter, one argument, whatever it holds.
        assert call[8:] == ["--", value]
        assert_operand(call, value)
        assert checks(run)[0]["filter"] == value


def test_main_script_args(plans: Plans, resolver: PrivateResolver, shell: str, tmp_path: Path) -> None:
    argv = planned_argv(plans, "main")
    run = execute(argv, shell, tmp_path, resolver, plans.marks)
    assert run.ran_stub["kd-probe"]
    assert run.calls == [["kd-probe", *plans.values]]
