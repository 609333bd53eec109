"""Self-bounding recipes on the real node: the time limit, the niceness and detached runs, for real.

The recipe role runs a script of one's own (``recipe_script``) in a real ephemeral container that the real node's
kubelet, containerd and runc start (hack/node.sh), with the busybox debug image built on this machine
(kd.local/busybox:1.35, from Debian's busybox-static: busybox's ``timeout`` and no ``nice`` applet, so the time
limit is the prelude's watchdog and the niceness ``renice``'s). What is asserted is what the kubelet reports (states,
exit codes, timings) and what the container printed of itself (its niceness, read from ``/proc/self/stat`` inside
the container), never the role's word for it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from kubehelpers import BUSYBOX_IMAGE, REAL_NODE, Cluster, real_pod, recipe_lines, run_tasks

pytestmark = [pytest.mark.real_node, pytest.mark.usefixtures("real_node")]

# One check before the sleep, with the niceness the script reads of itself, one after it.
SCRIPT = r"""
kd_niceness "$$"
read -r _stat </proc/self/stat
_fields=${_stat##*) }
_field19=$(echo "$_fields" | cut -d' ' -f17)
emit_check started "$0" true "sleeping $1 s" "\"niceness\":$(json_num "$_kd_ni"),\"stat_niceness\":$(json_num "$_field19")"
sleep "$1"
emit_check finished "$0" true "slept $1 s"
"""


def sleeper(cluster: Cluster, namespace: str, name: str) -> None:
    real_pod(cluster, namespace, name, [{"name": "app", "image": BUSYBOX_IMAGE, "command": ["sleep", "3600"]}])


def recipe(cluster: Cluster, namespace: str, pod: str, run_id: str, seconds: int, **extra: Any) -> list[dict[str, Any]]:
    return [
        {
            "name": "Run the recipe",
            "ansible.builtin.include_role": {"name": "kubedebug.ephemeral.recipe"},
            "vars": {
                "recipe_auth": {"kubeconfig": cluster.kubeconfig},
                "recipe_namespace": namespace,
                "recipe_pod": pod,
                "recipe_run_id": run_id,
                "recipe_name": "nap",
                "recipe_script": SCRIPT,
                "recipe_args": [str(seconds)],
                "recipe_image": BUSYBOX_IMAGE,
                **extra,
            },
        }
    ]


def debug_state(cluster: Cluster, namespace: str, pod: str, container: str) -> dict[str, Any]:
    """The kubelet's state of the debug container, as the API server has it (not through the collection)."""
    status = cluster.core.read_namespaced_pod(pod, namespace).status
    [state] = [s.state.to_dict() for s in status.ephemeral_container_statuses or [] if s.name == container]
    return {key: value for key, value in state.items() if value}


def test_a_recipe_past_its_time_limit_is_stopped_and_reported(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    sleeper(cluster, namespace, "web")
    got = run_tasks(
        tmp_path, recipe(cluster, namespace, "web", "limit1", 60, recipe_time_limit=3), "{'results': recipe_results, 'summary': recipe_summary}"
    )
    [record] = got["results"]
    # The kubelet's word: the container ended with the boot's status for a stop by the limit, long before 60 s.
    assert (record["node"], record["state"], record["exit_code"]) == (REAL_NODE, "terminated", 124), record
    assert record["duration_seconds"] is not None and record["duration_seconds"] < 45, record
    lines = record["output"]
    assert lines[0]["bounds"]["time_limit"] == 3 and lines[0]["bounds"]["time_limit_by"] == "watchdog", lines[0]
    assert [c["check"] for c in recipe_lines(lines)] == ["started"], lines  # stopped in its sleep: no "finished"
    stopped = lines[-1]["bounds"]
    assert (stopped["timed_out"], stopped["time_limit"], stopped["time_limit_by"]) == (True, 3, "watchdog"), stopped
    assert stopped["exit_code"] in (137, 143) and stopped["elapsed"] >= 3, stopped
    summary = got["summary"]
    assert summary["timed_out_pods"] == ["web"]
    assert summary["stopped"] == [f"{namespace}/web: stopped after 3 s (recipe_time_limit)"]
    assert (summary["checks"], summary["failed_checks"], summary["unfinished_pods"]) == (1, 0, [])


def test_a_normal_run_carries_its_bounds_and_really_runs_niced(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    sleeper(cluster, namespace, "web")
    got = run_tasks(tmp_path, recipe(cluster, namespace, "web", "nice1", 0), "{'results': recipe_results, 'summary': recipe_summary}")
    [record] = got["results"]
    assert (record["state"], record["exit_code"]) == ("terminated", 0), record
    bounds = record["output"][0]["bounds"]
    # busybox-static has renice but no nice applet, and busybox's timeout is not used for the limit.
    assert bounds == {"time_limit": 100, "time_limit_by": "watchdog", "nice": 10, "nice_by": "renice", "niceness": 10}
    started, finished = recipe_lines(record["output"])
    # What the script read inside the container, two ways: the prelude's kd_niceness and field 19 of its own stat.
    assert (started["check"], started["niceness"], started["stat_niceness"]) == ("started", 10, 10), started
    assert finished["check"] == "finished"
    summary = got["summary"]
    assert (summary["checks"], summary["failed_checks"], summary["timed_out_pods"]) == (2, 0, [])
    assert summary["bounds"] == bounds and summary["bounds_text"] == "time limit 100 s (watchdog), niceness 10 (renice)"


COLLECT = (
    "{{ query('kubedebug.ephemeral.ephemeral_results', *started.lookup_terms,"
    " **(started.lookup_options | combine({'kubeconfig': kubeconfig}))) }}"
)


def collect_later(cluster: Cluster, tmp_path: Path, started: dict[str, Any]) -> dict[str, Any]:
    """Another play, with nothing but what recipe_started said (and the connection): the lookup and the summary."""
    tasks = [
        {"name": "Collect the detached run", "ansible.builtin.set_fact": {"collected": COLLECT}},
        {
            "name": "Sum it up as the role does",
            "ansible.builtin.set_fact": {
                "summary": "{{ collected | kubedebug.ephemeral.recipe_summary(recipe=started.recipe, container=started.container) }}"
            },
        },
    ]
    return run_tasks(
        tmp_path, tasks, "{'results': collected, 'summary': summary}", play_extra={"vars": {"started": started, "kubeconfig": cluster.kubeconfig}}
    )


def test_a_detached_run_returns_at_once_and_is_collected_later(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    sleeper(cluster, namespace, "web")
    container = "kd-nap-detach1"
    got = run_tasks(
        tmp_path,
        recipe(cluster, namespace, "web", "detach1", 25, recipe_detach=True, recipe_time_limit=90),
        "{'results': recipe_results, 'summary': recipe_summary, 'started': recipe_started}",
    )
    # The play is over and the script still sleeps: the role did not wait for it.
    state = debug_state(cluster, namespace, "web", container)
    assert "terminated" not in state, state
    assert got["results"] == [] and got["summary"]["pods"] == 0
    started = got["started"]
    assert {k: v for k, v in started.items() if k != "lookup_options"} == {
        "recipe": "nap", "container": container, "pods": [f"{namespace}/web"], "time_limit": 90, "nice": 10,
        "lookup_terms": [f"{namespace}/web"],
    }  # fmt: skip
    assert started["lookup_options"] == {
        "container": [container], "parse": "json_lines", "wait_for": "terminated", "wait_timeout": 120, "parallel": 10,
        "limit_bytes": 1048576,
    }  # fmt: skip
    assert "kubeconfig" not in str(started)  # the connection stays out of the fact

    # Later: the lookup waits for the run to end and reads all of it.
    later = collect_later(cluster, tmp_path, started)
    [record] = later["results"]
    assert (record["pod"], record["container"], record["state"], record["exit_code"]) == ("web", container, "terminated", 0), record
    assert [c["check"] for c in recipe_lines(record["output"])] == ["started", "finished"]
    assert record["output"][0]["bounds"]["time_limit"] == 90
    assert (later["summary"]["checks"], later["summary"]["timed_out_pods"]) == (2, [])


def test_the_time_limit_bounds_a_detached_run_nobody_waits_for(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    sleeper(cluster, namespace, "web")
    container = "kd-nap-detach2"
    got = run_tasks(
        tmp_path, recipe(cluster, namespace, "web", "detach2", 600, recipe_detach=True, recipe_time_limit=5), "{'started': recipe_started}"
    )
    started = got["started"]
    # Nobody collects: the container ends by itself, as the kubelet reports, long before its 600 s sleep.
    deadline = time.monotonic() + 90
    while "terminated" not in (state := debug_state(cluster, namespace, "web", container)) and time.monotonic() < deadline:
        time.sleep(1)
    assert state.get("terminated", {}).get("exit_code") == 124, state
    later = collect_later(cluster, tmp_path, started)
    [record] = later["results"]
    assert [c["check"] for c in recipe_lines(record["output"])] == ["started"]
    assert record["output"][-1]["bounds"]["timed_out"] is True
    assert later["summary"]["stopped"] == [f"{namespace}/web: stopped after 5 s (recipe_time_limit)"]


def test_the_wrapper_roles_hand_their_bounds_on(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    """The dns role (a shim over the recipe role) and incident_snapshot pass their own time limit and niceness on:
    the boot in the real container reports them, and the niceness is the one it measured of itself."""
    sleeper(cluster, namespace, "web")
    auth = {"kubeconfig": cluster.kubeconfig}
    shim = {
        "name": "The dns role",
        "ansible.builtin.include_role": {"name": "kubedebug.ephemeral.dns"},
        "vars": {"dns_auth": auth, "dns_namespace": namespace, "dns_pod": "web", "dns_run_id": "shim1", "dns_image": BUSYBOX_IMAGE,
                 "dns_time_limit": 37, "dns_nice": 5},
    }  # fmt: skip
    got = run_tasks(tmp_path, [shim], "{'results': dns_results}")
    [record] = got["results"]
    assert (record["node"], record["state"], record["exit_code"]) == (REAL_NODE, "terminated", 0), record
    assert record["output"][0]["bounds"] == {"time_limit": 37, "time_limit_by": "watchdog", "nice": 5, "nice_by": "renice", "niceness": 5}

    incident = {
        "name": "The incident_snapshot role",
        "ansible.builtin.include_role": {"name": "kubedebug.ephemeral.incident_snapshot"},
        "vars": {"incident_snapshot_auth": auth, "incident_snapshot_namespace": namespace, "incident_snapshot_pod": "web",
                 "incident_snapshot_reason": "bounds", "incident_snapshot_recipes": ["dns", "processes"],
                 "incident_snapshot_debug_image": BUSYBOX_IMAGE, "incident_snapshot_dest": str(tmp_path / "incidents"),
                 "incident_snapshot_time_limit": 41, "incident_snapshot_nice": 3},
    }  # fmt: skip
    got = run_tasks(tmp_path, [incident], "incident_snapshot_report")
    for name in ("dns", "processes"):
        [record] = got["recipes"][name]["results"]
        assert (record["node"], record["state"]) == (REAL_NODE, "terminated"), record
        bounds = record["output"][0]["bounds"]
        assert (bounds["time_limit"], bounds["nice"], bounds["niceness"]) == (41, 3, 3), (name, bounds)
