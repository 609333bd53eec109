"""Integration tests of playbooks/fleet_diagnostics.yml and playbooks/incident_response.yml.

Simulated by KWOK: no container process runs. Each recipe's exact command (the
script the role puts in the debug container) is run for real on the test host
first; its real output is served as every debug container's log and its real exit
code becomes theirs (kubehelpers.prepare_recipe). The two "clusters" of the fleet
run are two contexts of the one local cluster, each given its own namespaces.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from kubehelpers import Cluster, on_this_host, prepare_recipe, recipe_command, recipe_lines, run_playbook

RUN_ID = "sweep-1"


def two_cluster_inventory(cluster: Cluster, tmp_path: Path, namespaces: dict[str, list[str]]) -> str:
    """An inventory with one host per "cluster": two contexts of the local cluster's kubeconfig."""
    config = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    base = config["contexts"][0]
    config["contexts"] = [{"name": name, "context": dict(base["context"])} for name in namespaces]
    config["current-context"] = next(iter(namespaces))
    kubeconfig = tmp_path / "clusters.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    inventory = {
        "all": {
            "children": {
                "kubedebug_clusters": {
                    "hosts": {
                        name: {"kd_kubeconfig": str(kubeconfig), "kd_context": name, "kd_namespaces": ns}
                        for name, ns in namespaces.items()
                    }
                }
            }
        }
    }
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory))
    return str(path)


def create_fleet(cluster: Cluster, namespaces: list[str], count: int) -> list[tuple[str, str]]:
    """``count`` web pods spread over ``namespaces`` (plus one pod per namespace that the selector skips)."""
    pods = []
    for i in range(count):
        ns = namespaces[i % len(namespaces)]
        name = f"web-{i:03d}"
        cluster.core.create_namespaced_pod(ns, {
            "metadata": {"name": name, "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]},
        })  # fmt: skip
        pods.append((ns, name))
    for ns in namespaces:
        cluster.core.create_namespaced_pod(ns, {
            "metadata": {"name": "db-0", "labels": {"app": "db"}},
            "spec": {"containers": [{"name": "db", "image": "registry.k8s.io/pause:3.10"}]},
        })  # fmt: skip
    for ns in namespaces:
        cluster.kubectl_run(
            "wait", "-n", ns, "--for=jsonpath={.status.phase}=Running", "pod", "--all", "--timeout=180s"
        )
    return pods


def debug_containers(cluster: Cluster, namespace: str) -> dict[str, list[str]]:
    return {
        p.metadata.name: [c.name for c in p.spec.ephemeral_containers or []]
        for p in cluster.core.list_namespaced_pod(namespace).items
    }


def test_fleet_diagnostics_50_pods_3_namespaces_2_clusters(
    cluster: Cluster, namespace_factory: Any, tmp_path: Path
) -> None:
    ns = [namespace_factory() for _ns in range(3)]
    pods = create_fleet(cluster, ns, 50)
    names = ["localhost", "nothing-here.invalid"]
    output, code = prepare_recipe(cluster, pods, f"kd-dns-{RUN_ID}", recipe_command("dns", names), tmp_path)
    real = recipe_lines([json.loads(line) for line in output.splitlines()])
    inventory = two_cluster_inventory(cluster, tmp_path, {"cluster-a": ns[:2], "cluster-b": ns[2:]})
    extra = {
        "kd_label_selector": "app=web", "kd_recipe": "dns", "kd_run_id": RUN_ID, "kd_dns_names": names,
        "kd_output_dir": str(tmp_path / "out"), "kd_debug_env": {"KWOK_EXIT_CODE": str(code)}, "kd_wait_timeout": 120,
    }  # fmt: skip

    planned = run_playbook("fleet_diagnostics.yml", extra, inventory=inventory, check=True)
    assert planned.returncode == 0, planned.stdout[-3000:]
    assert all(not any(c for c in debug_containers(cluster, n).values()) for n in ns)
    assert not (tmp_path / "out").exists()
    # debugged_pods_info only reads: it runs in check mode too, and finds nothing left behind yet.
    assert "0 pods carry debug containers (0 still running): restart" in planned.stdout, planned.stdout[-3000:]

    done = run_playbook("fleet_diagnostics.yml", extra, inventory=inventory)
    assert done.returncode == 0, done.stdout[-5000:]
    summary = json.loads((tmp_path / "out" / f"fleet-{RUN_ID}" / "summary.json").read_text())
    per_pod_failures = sum(1 for c in real if c["check"] != "summary" and not c["ok"])
    per_pod_checks = sum(1 for c in real if c["check"] != "summary")
    assert per_pod_failures >= 1  # nothing-here.invalid never resolves
    assert summary["clusters"] == ["cluster-a", "cluster-b"]
    assert summary["pods"] == 50
    assert summary["pods_by_cluster"] == {"cluster-a": 34, "cluster-b": 16}
    assert (summary["checks"], summary["failed_checks"]) == (50 * per_pod_checks, 50 * per_pod_failures)
    assert summary["unfinished"] == []
    worst = summary["by_check"][0]
    assert (worst["check"], worst["target"], worst["failed"]) == ("resolve", "nothing-here.invalid", 50)
    assert set(summary["by_namespace"]) == {f"cluster-a/{ns[0]}", f"cluster-a/{ns[1]}", f"cluster-b/{ns[2]}"}
    assert summary["by_namespace"][f"cluster-b/{ns[2]}"]["failed_checks"] == 16 * per_pod_failures
    assert {key.split("/")[0] for key in summary["by_node"]} == {"cluster-a", "cluster-b"}
    # What the run left behind: every selected pod carries the recipe's container, for good (no kd_reason: no audit
    # annotation, so who added it is unknown); the bare pods are to be deleted and recreated.
    assert summary["debugged"] == {
        "pods": 50, "containers": 50, "running": 0, "by_us": 0, "unknown": 50, "errors": [],
        "by_cluster": {"cluster-a": {"pods": 34, "containers": 34, "running": 0}, "cluster-b": {"pods": 16, "containers": 16, "running": 0}},
    }  # fmt: skip
    assert {(row["cluster"], row["namespace"], row["pod"]) for row in summary["debugged_pods"]} == {
        ("cluster-a" if n in ns[:2] else "cluster-b", n, p) for n, p in pods
    }
    first = summary["debugged_pods"][0]
    assert (first["containers"], first["by"], first["running"]) == ([f"kd-dns-{RUN_ID}"], ["unknown"], [])
    assert first["command"] == f"kubectl -n {first['namespace']} delete pod {first['pod']}"
    html = (tmp_path / "out" / f"fleet-{RUN_ID}" / "report.html").read_text()
    assert "<svg" in html and "nothing-here.invalid" in html
    assert "<h2>Pods left carrying debug containers</h2>" in html
    assert f"<code>kubectl -n {first['namespace']} delete pod {first['pod']}</code>" in html
    # Only the selected pods got a debug container, exactly one each.
    for n in ns:
        containers = debug_containers(cluster, n)
        assert containers.pop("db-0") == []
        assert set(map(tuple, containers.values())) == {(f"kd-dns-{RUN_ID}",)}

    again = run_playbook("fleet_diagnostics.yml", extra, inventory=inventory)
    assert again.returncode == 0, again.stdout[-3000:]
    recap = [line for line in again.stdout.split("PLAY RECAP")[1].splitlines() if ":" in line]
    assert len(recap) == 3 and all("changed=0" in line for line in recap), recap  # cluster-a, cluster-b, localhost
    assert json.loads((tmp_path / "out" / f"fleet-{RUN_ID}" / "summary.json").read_text()) == summary
    for n in ns:
        assert all(len(c) <= 1 for c in debug_containers(cluster, n).values())


def test_incident_response_bundle(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    for name in ("web-0", "web-1"):
        cluster.core.create_namespaced_pod(namespace, {
            "metadata": {"name": name, "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "app", "image": "gcr.io/distroless/static-debian12:nonroot"}]},
        })  # fmt: skip
    cluster.kubectl_run(
        "wait", "-n", namespace, "--for=jsonpath={.status.phase}=Running", "pod", "--all", "--timeout=120s"
    )
    pods = [(namespace, "web-0"), (namespace, "web-1")]
    run_id = "inc-42"  # what the playbook derives from the reason "INC-42"
    commands = {
        "dns": recipe_command("dns", ["localhost"]),
        "processes": recipe_command("processes", []),
        "filesystem": on_this_host(recipe_command("filesystem", ["--max-bytes", "65536", "--", "/etc/hostname"])),
    }
    outputs, codes = {}, set()
    for recipe, command in commands.items():
        outputs[recipe], code = prepare_recipe(cluster, pods, f"kd-{recipe}-{run_id}", command, tmp_path)
        codes.add(code)
    assert codes == {0}
    out = tmp_path / "incidents"
    extra = {
        "kd_namespace": namespace, "kd_label_selector": "app=web", "kd_reason": "INC-42",
        "kd_recipes": ["dns", "processes", "filesystem"], "kd_dns_names": ["localhost"], "kd_filesystem_paths": ["/etc/hostname"],
        "kd_output_dir": str(out), "kd_auth": {"kubeconfig": cluster.kubeconfig}, "kd_debug_env": {"KWOK_EXIT_CODE": "0"},
    }  # fmt: skip

    planned = run_playbook("incident_response.yml", extra, check=True)
    assert planned.returncode == 0, planned.stdout[-4000:]
    assert "Check mode: nothing was added and no bundle was written." in planned.stdout
    assert not out.exists() and all(not c for c in debug_containers(cluster, namespace).values())

    done = run_playbook("incident_response.yml", extra)
    assert done.returncode == 0, done.stdout[-6000:]
    bundle = out / run_id
    report = json.loads((bundle / "report.json").read_text())
    assert report["incident"]["reason"] == "INC-42" and report["incident"]["run_id"] == run_id
    assert [p["pod"] for p in report["pods"]] == ["web-0", "web-1"]
    # The snapshot is taken first, before the recipes add their containers.
    assert [c["name"] for c in report["pods"][0]["containers"]] == ["app"]
    for recipe in commands:
        results = report["recipes"][recipe]["results"]
        assert [(r["pod"], r["state"], r["exit_code"]) for r in results] == [
            ("web-0", "terminated", 0),
            ("web-1", "terminated", 0),
        ]
        assert results[0]["output"] == [json.loads(line) for line in outputs[recipe].splitlines()]
    failed_dns = sum(
        1 for c in recipe_lines(report["recipes"]["dns"]["results"][0]["output"]) if c["check"] != "summary" and not c["ok"]
    )
    assert [(s["pod"], s["ready"], s["restarts"]) for s in report["summary"]] == [
        ("web-0", True, 0),
        ("web-1", True, 0),
    ]
    assert report["summary"][0]["failed_checks"] >= failed_dns
    md = (bundle / "report.md").read_text()
    assert md.startswith("\n# Incident INC-42") or md.startswith("# Incident INC-42")
    # A check without a detail (the processes recipe's) shows its fields as "key: value", not as JSON.
    assert re.search(r"^\| process \| `\d+` \| ok \| pid: \d+; ppid: \d+; name: [^;]+; state: ", md, re.M), md[-3000:]
    html = (bundle / "report.html").read_text()
    assert html.index("<h2>Summary</h2>") < html.index(f'id="pod-{namespace}-web-0"')
    fetched = bundle / "files" / namespace / "web-0" / "etc" / "hostname"
    assert fetched.read_text() == Path("/etc/hostname").read_text()  # the real run read this host's file
    audit = json.loads(
        cluster.core.read_namespaced_pod("web-0", namespace).metadata.annotations["debug.kubedebug.io/kd-dns-inc-42"]
    )
    assert audit["reason"] == "INC-42"

    before = debug_containers(cluster, namespace)
    again = run_playbook("incident_response.yml", extra)
    assert again.returncode == 0, again.stdout[-4000:]
    assert debug_containers(cluster, namespace) == before
    added = [
        block
        for block in again.stdout.split("TASK [")
        if block.startswith("kubedebug.ephemeral.recipe : Add the recipe")
    ]
    assert len(added) == 3 and all("changed:" not in block for block in added), added
