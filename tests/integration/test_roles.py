"""Integration tests of the recipe roles against the local cluster.

Simulated by KWOK: no container process runs. The exact command a role puts in
the debug container is run for real on the test host first; its real output is
served as the container's log and its real exit code becomes the container's
(kubehelpers.real_run, serve_logs, the KWOK_EXIT_CODE env). After the play the
test checks that the pod's container really carries that command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubehelpers import ROOT, Cluster, cri_log, real_run, run_tasks, running_pod, serve_logs

PRELUDE = (ROOT / "roles" / "recipe" / "files" / "prelude.sh").read_text().rstrip()
GREET = 'emit_check greet "$1" true "hello $1"\nemit_check refuse "$1" false "not today"\n'


def recipe_command(script: str, name: str, args: list[str]) -> list[str]:
    """The command the recipe role builds (the file lookup strips the prelude's trailing newline)."""
    return ["sh", "-c", PRELUDE + "\n" + script, name, *args]


def prepare(
    cluster: Cluster, namespace: str, pods: list[str], container: str, command: list[str], tmp_path: Path
) -> int:
    """Run ``command`` here for real and serve its output as ``container``'s log in each pod."""
    output, code = real_run(command)
    assert code is not None
    for pod in pods:
        log_file = tmp_path / f"{pod}-{container}.log"
        log_file.write_text(cri_log(output))
        serve_logs(cluster, namespace, pod, container, log_file)
    return code


def include_recipe(cluster: Cluster, **role_vars: Any) -> list[dict[str, Any]]:
    return [
        {
            "name": "Run the recipe",
            "ansible.builtin.include_role": {"name": "kubedebug.ephemeral.recipe"},
            "vars": {"recipe_auth": {"kubeconfig": cluster.kubeconfig}, **role_vars},
        }
    ]


def test_recipe_role_runs_a_script_in_every_selected_pod(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    pods = ["web-0", "web-1"]
    for pod in pods:
        running_pod(cluster, namespace, pod, metadata={"labels": {"app": "web"}})
    command = recipe_command(GREET, "greet", ["world"])
    code = prepare(cluster, namespace, pods, "kd-greet-run1", command, tmp_path)
    role_vars = {
        "recipe_name": "greet",
        "recipe_script": GREET,
        "recipe_args": ["world"],
        "recipe_namespace": namespace,
        "recipe_label_selector": "app=web",
        "recipe_run_id": "run1",
        "recipe_env": {"KWOK_EXIT_CODE": str(code)},
        "recipe_wait_timeout": 30,
    }
    save = "{'results': recipe_results, 'summary': recipe_summary}"

    planned = run_tasks(tmp_path, include_recipe(cluster, **role_vars), save, check=True)
    assert planned["results"] == [] and planned["summary"]["pods"] == 0
    assert all(not cluster.core.read_namespaced_pod(p, namespace).spec.ephemeral_containers for p in pods)

    done = run_tasks(tmp_path, include_recipe(cluster, **role_vars), save)
    assert [(r["pod"], r["container"], r["state"], r["exit_code"]) for r in done["results"]] == [
        (p, "kd-greet-run1", "terminated", 0) for p in pods
    ]
    expected = [
        {"check": "greet", "target": "world", "ok": True, "detail": "hello world"},
        {"check": "refuse", "target": "world", "ok": False, "detail": "not today"},
    ]
    assert all(r["output"] == expected for r in done["results"])
    assert done["summary"] == {
        "recipe": "greet",
        "container": "kd-greet-run1",
        "pods": 2,
        "checks": 4,
        "failed_checks": 2,
        "unfinished_pods": [],
    }
    # The container really carries the command that was run here.
    for pod in pods:
        [container] = cluster.core.read_namespaced_pod(pod, namespace).spec.ephemeral_containers
        assert container.command == command

    # The same run id again adds nothing and reports the same results.
    again = run_tasks(tmp_path, include_recipe(cluster, **role_vars), save)
    assert again["results"] == done["results"]
    assert all(len(cluster.core.read_namespaced_pod(p, namespace).spec.ephemeral_containers) == 1 for p in pods)


def test_recipe_role_rejects_bad_input(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    tasks = include_recipe(
        cluster,
        recipe_name="greet",
        recipe_script=GREET,
        recipe_namespace=namespace,
        recipe_run_id="Run_1",
        recipe_pod="web-0",
    )
    rescued = [
        {
            "block": tasks,
            "rescue": [
                {"name": "Keep the failure", "ansible.builtin.set_fact": {"failure": "{{ ansible_failed_result }}"}}
            ],
        }
    ]
    failure = run_tasks(tmp_path, rescued, "failure")
    assert failure["failed"] is True
    assert "recipe_run_id of lower-case letters, digits and '-'" in failure["msg"]
    assert 'run_id="Run_1"' in failure["msg"]
