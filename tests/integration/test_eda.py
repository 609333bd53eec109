"""From alert to evidence: ansible-rulebook runs the collection's rulebook for real, Alertmanager payloads go to it.

The rulebook (extensions/eda/rulebooks/incident_response.yml) listens with the
collection's own event source (extensions/eda/plugins/event_source/alertmanager.py) on
127.0.0.1 and runs the incident_response playbook against the local cluster. The pods
are on KWOK nodes: the debug container's output is this host's real run of the recipe,
served as its log (prepare_recipe), and it ends with the exit code KWOK is told.
"""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from kubehelpers import Cluster, prepare_recipe, recipe_command, running_pod, wait_for

FIRING, RESOLVED = "firing", "resolved"


def alert(status: str, namespace: str, pod: str, fingerprint: str) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": "KubePodCrashLooping", "namespace": namespace, "pod": pod, "severity": "warning"},
        "annotations": {"summary": f"Pod {namespace}/{pod} is crash looping."},
        "startsAt": "2026-12-07T10:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.invalid/graph",
        "fingerprint": fingerprint,
    }


def post(port: int, token: str, *alerts: dict[str, Any]) -> int:
    """POST one Alertmanager notification (payload version 4) to the rulebook's source; the HTTP status."""
    body = {
        "version": "4",
        "groupKey": '{}:{alertname="KubePodCrashLooping"}',
        "status": alerts[0]["status"],
        "receiver": "kubedebug",
        "groupLabels": {"alertname": "KubePodCrashLooping"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.invalid",
        "alerts": list(alerts),
    }
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/alerts",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1 directly, whatever the environment says
    try:
        with opener.open(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def debug_containers(cluster: Cluster, namespace: str) -> dict[str, list[str]]:
    return {p.metadata.name: [c.name for c in p.spec.ephemeral_containers or []] for p in cluster.core.list_namespaced_pod(namespace).items}


def test_alert_to_incident_bundle_throttled_per_pod(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    for name in ("web-0", "web-1"):
        running_pod(cluster, namespace, name)
    fingerprints = {"web-0": secrets.token_hex(8), "web-1": secrets.token_hex(8)}
    run_ids = {pod: f"alert-{fp}" for pod, fp in fingerprints.items()}
    for pod, run_id in run_ids.items():
        _output, code = prepare_recipe(cluster, [(namespace, pod)], f"kd-network-{run_id}", recipe_command("network", []), tmp_path)
        assert code == 0

    port, token = free_port(), secrets.token_hex(16)
    out = tmp_path / "incidents"
    (tmp_path / "vars.yml").write_text(yaml.safe_dump({
        "kd_eda_port": port, "kd_eda_token": token, "kd_eda_output_dir": str(out), "kd_eda_recipes": ["network"],
        "kd_eda_auth": {"kubeconfig": cluster.kubeconfig}, "kd_eda_debug_env": {"KWOK_EXIT_CODE": "0"},
    }))  # fmt: skip
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump({
        "all": {"hosts": {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}}},
    }))  # fmt: skip
    log = tmp_path / "rulebook.log"
    with log.open("w") as sink:
        rulebook = subprocess.Popen(
            ["ansible-rulebook", "-r", "kubedebug.ephemeral.incident_response", "-i", str(tmp_path / "inventory.yml"), "--vars", str(tmp_path / "vars.yml")],
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    try:

        def listening() -> bool:
            assert rulebook.poll() is None, f"ansible-rulebook ended ({rulebook.returncode}):\n{log.read_text()[-4000:]}"
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        wait_for("ansible-rulebook listening", listening, timeout=180)
        assert post(port, "wrong-token", alert(FIRING, namespace, "web-0", fingerprints["web-0"])) == 401

        def bundle(pod: str) -> bool:
            assert rulebook.poll() is None, f"ansible-rulebook ended ({rulebook.returncode}):\n{log.read_text()[-4000:]}"
            return (out / run_ids[pod] / "report.html").exists()

        start = time.monotonic()
        assert post(port, token, alert(FIRING, namespace, "web-0", fingerprints["web-0"])) == 200
        wait_for("the incident bundle of web-0", lambda: bundle("web-0"), timeout=600, interval=0.5)
        print(f"\nPOST to incident bundle (web-0): {time.monotonic() - start:.1f} s")
        report = json.loads((out / run_ids["web-0"] / "report.json").read_text())
        assert [p["pod"] for p in report["pods"]] == ["web-0"]
        assert report["incident"]["reason"] == f"KubePodCrashLooping: Pod {namespace}/web-0 is crash looping."
        [result] = report["recipes"]["network"]["results"]
        assert (result["pod"], result["state"], result["exit_code"]) == ("web-0", "terminated", 0)

        # The same alert again (Alertmanager repeats it), then resolved: neither adds anything. An alert about
        # web-1 comes last; the ruleset runs its actions one after the other, so when web-1's bundle is there
        # every earlier event has been dealt with.
        assert post(port, token, alert(FIRING, namespace, "web-0", fingerprints["web-0"])) == 200
        assert post(port, token, alert(RESOLVED, namespace, "web-0", fingerprints["web-0"])) == 200
        assert post(port, token, alert(FIRING, namespace, "web-1", fingerprints["web-1"])) == 200
        wait_for("the incident bundle of web-1", lambda: bundle("web-1"), timeout=600, interval=0.5)
        assert debug_containers(cluster, namespace) == {pod: [f"kd-network-{run_id}"] for pod, run_id in run_ids.items()}
    finally:
        rulebook.terminate()
        try:
            rulebook.wait(30)
        except subprocess.TimeoutExpired:
            rulebook.kill()
            rulebook.wait()
    text = log.read_text()
    # One playbook run per pod: 4 firing notifications (one refused), one resolved, two runs.
    assert text.count("PLAY [Incident response]") == 2, text[-6000:]
    print(f"alerts sent 5 (1 refused: wrong token), playbook runs {text.count('PLAY [Incident response]')}, containers added 2")
