"""playbooks/fleet_diagnostics.yml run the way AWX / Ansible Automation Platform runs a job template.

AWX hands a job to ansible-runner: a private data directory, the inventory, the extra
vars (job template extra vars, then the survey's defaults, then the launch's answers),
and the environment its credentials inject. The "OpenShift or Kubernetes API Bearer
Token" credential injects (awx/main/models/credential/injectors.py,
``kubernetes_bearer_token``) K8S_AUTH_HOST, K8S_AUTH_API_KEY, K8S_AUTH_VERIFY_SSL and,
when it has a CA, K8S_AUTH_SSL_CA_CERT naming a file it writes under
``<private data dir>/env``. set_stats data reaches the job's artifacts through the
``artifact_data`` of the ``playbook_on_stats`` event (awx/main/tasks/callback.py,
``RunnerCallback.event_handler``). This test does the same with ansible_runner.run and a
real ServiceAccount token bound to the ClusterRoles the documentation gives.

KWOK runs no container process: the dns recipe's real command runs once on the test
host and its output and exit code become every debug container's
(kubehelpers.prepare_recipe).
"""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from kubehelpers import ROOT, Cluster, cri_log, prepare_recipe, recipe_command, recipe_lines, serve_logs, service_account_auth

# Only the "latest" profile installs ansible-runner (tests/requirements-latest.txt).
ansible_runner = pytest.importorskip("ansible_runner")

PLAYBOOK = ROOT / "playbooks" / "fleet_diagnostics.yml"
SURVEY = ROOT / "playbooks" / "awx" / "fleet_diagnostics.survey.json"
INCIDENT_PLAYBOOK = ROOT / "playbooks" / "incident_response.yml"
INCIDENT_SURVEY = ROOT / "playbooks" / "awx" / "incident_response.survey.json"
RUN_ID = "awx-sweep-1"
SERVICE_ACCOUNT = "awx-job"


def rst_cluster_roles(rst: Path) -> dict[str, dict[str, Any]]:
    """The ClusterRoles of an .rst page's YAML code blocks, by name, exactly as documented."""
    roles = {}
    for block in rst.read_text(encoding="utf-8").split(".. code-block:: yaml\n")[1:]:
        lines = []
        for line in block.splitlines()[1:]:
            if line and not line.startswith("    "):
                break
            lines.append(line[4:])
        doc = yaml.safe_load("\n".join(lines))
        if isinstance(doc, dict) and doc.get("kind") == "ClusterRole":
            roles[doc["metadata"]["name"]] = doc
    return roles


def grant(cluster: Cluster, namespace: str, roles: list[dict[str, Any]]) -> list[str]:
    """Create ``roles`` (renamed for this namespace) and bind each to the job's ServiceAccount in ``namespace``."""
    rbac = client.RbacAuthorizationV1Api(cluster.api_client)
    names = []
    for role in roles:
        role = {**role, "metadata": {"name": f"{role['metadata']['name']}-{namespace}"}}
        rbac.create_cluster_role(role)
        names.append(role["metadata"]["name"])
        rbac.create_namespaced_role_binding(namespace, {
            "metadata": {"name": role["metadata"]["name"]},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role["metadata"]["name"]},
            "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": namespace}],
        })  # fmt: skip
    return names


def launch_extra_vars(survey: dict[str, Any], answers: dict[str, Any], template_vars: dict[str, Any]) -> dict[str, Any]:
    """AWX's extra vars for a launch: job template vars, then survey defaults that validate, then the answers.

    Answers are checked as AWX checks them at launch (types, choices, lengths); a
    multiselect default is a string and never validates, so AWX leaves it out.
    """

    def errors(question: dict[str, Any], value: Any) -> bool:
        qtype, lo, hi = question["type"], question.get("min"), question.get("max")
        if qtype in ("text", "textarea", "password"):
            return not isinstance(value, str) or (lo is not None and len(value) < lo) or (hi is not None and len(value) > hi)
        if qtype == "integer":
            return not isinstance(value, int) or isinstance(value, bool) or (lo is not None and value < lo) or (hi is not None and value > hi)
        if qtype == "multiselect":
            return not isinstance(value, list) or any(v not in question["choices"] for v in value)
        if qtype == "multiplechoice":
            return value not in question["choices"]
        return False

    extra = dict(template_vars)
    for question in survey["spec"]:
        var = question["variable"]
        if var in answers:
            assert not errors(question, answers[var]), f"AWX would refuse {var}={answers[var]!r}"
        else:
            assert not question["required"], f"AWX would not launch without {var}"
        if question.get("default") is not None and not errors(question, question["default"]):
            extra[var] = question["default"]
    extra.update(answers)
    # The job's metadata AWX adds to every job's extra vars.
    extra.update({"awx_job_id": 42, "awx_job_template_name": survey["name"], "awx_user_name": "oncall"})
    return extra


def credential_env(private_data_dir: Path, auth: dict[str, Any], *, ca: bool = True) -> dict[str, str]:
    """What the "OpenShift or Kubernetes API Bearer Token" credential injects (verify_ssl on)."""
    env = {"K8S_AUTH_HOST": auth["host"], "K8S_AUTH_API_KEY": auth["api_key"]}
    if ca:
        env["K8S_AUTH_VERIFY_SSL"] = "True"
        handle, path = tempfile.mkstemp(dir=private_data_dir / "env")
        with os.fdopen(handle, "w") as f:
            os.chmod(path, stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IWGRP)
            f.write(Path(auth["ca_cert"]).read_text())
        env["K8S_AUTH_SSL_CA_CERT"] = path
    else:
        # What the injector does for a credential without a CA, whatever its verify_ssl says.
        env["K8S_AUTH_VERIFY_SSL"] = "False"
    return env


def job_dir(tmp_path: Path) -> Path:
    """A fresh private data directory, as AWX makes one per job (runner would reuse env/ files it finds)."""
    private_data_dir = Path(tempfile.mkdtemp(prefix="awx_job_", dir=tmp_path))
    (private_data_dir / "env").mkdir()
    return private_data_dir


def run_job(
    private_data_dir: Path, extra_vars: dict[str, Any], env: dict[str, str], playbook: Path = PLAYBOOK, **kwargs: Any
) -> tuple[Any, dict[str, Any], str]:
    """Run the playbook through ansible-runner as AWX does; return the runner, the job's artifacts and its stdout."""
    artifacts: dict[str, Any] = {}

    def event_handler(event: dict[str, Any]) -> bool:
        # awx/main/tasks/callback.py RunnerCallback.event_handler
        if event.get("event_data", {}).get("artifact_data", {}):
            artifacts.update(event["event_data"]["artifact_data"])
        return True

    inventory = {"all": {"children": {"kubedebug_clusters": {"hosts": {"local": {
        # A named host with connection local runs modules with the interpreter that discovery finds;
        # in an EE that need not be the one with the kubernetes client.
        "ansible_python_interpreter": "{{ ansible_playbook_python }}",
    }}}}}}  # fmt: skip
    runner = ansible_runner.run(
        private_data_dir=str(private_data_dir),
        playbook=str(playbook),
        inventory=inventory,
        extravars=extra_vars,
        # The EE has no kubeconfig; make sure none on this host is used either.
        envvars={**env, "KUBECONFIG": str(private_data_dir / "no-kubeconfig")},
        event_handler=event_handler,
        # AWX_RUNNER_OMIT_ENV_FILES (on by default): env vars and extra vars are not written to env/.
        suppress_env_files=True,
        quiet=True,
        **kwargs,
    )
    return runner, artifacts, runner.stdout.read()


def failures(runner: Any) -> list[str]:
    """The messages of the failed tasks (what the AWX job output shows in red), per pod where there are pods."""
    msgs = []
    for event in runner.events:
        if event.get("event") == "runner_on_failed":
            res = event["event_data"]["res"]
            msgs += [p["msg"] for p in res.get("pods", []) if p.get("msg")] or [str(res.get("msg"))]
    if not msgs:  # an error outside a task (a role that does not load, ...)
        msgs = re.sub(r"\x1b\[[0-9;]*m", "", runner.stdout.read()).splitlines()[-30:]
    return msgs


def web_pods(cluster: Cluster, namespace: str, count: int) -> list[tuple[str, str]]:
    for i in range(count):
        cluster.core.create_namespaced_pod(namespace, {
            "metadata": {"name": f"web-{i}", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]},
        })  # fmt: skip
    cluster.core.create_namespaced_pod(namespace, {
        "metadata": {"name": "db-0", "labels": {"app": "db"}},
        "spec": {"containers": [{"name": "db", "image": "registry.k8s.io/pause:3.10"}]},
    })  # fmt: skip
    cluster.kubectl_run("wait", "-n", namespace, "--for=jsonpath={.status.phase}=Running", "pod", "--all", "--timeout=180s")
    return [(namespace, f"web-{i}") for i in range(count)]


def test_awx_fleet_diagnostics_job(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    pods = web_pods(cluster, namespace, 3)
    container = f"kd-dns-{RUN_ID}"

    # The survey as shipped, with one choice added by the AWX admin (as the README says to).
    survey = json.loads(SURVEY.read_text())
    dns_question = next(q for q in survey["spec"] if q["variable"] == "kd_dns_names")
    dns_question["choices"].append("localhost")
    answers = {
        "kd_label_selector": "app=web",
        "kd_recipe": "dns",
        "kd_run_id": RUN_ID,
        "kd_namespaces": namespace,
        "kd_all_namespaces": "false",
        "kd_dns_names": ["kubernetes.default.svc", "localhost"],
        "kd_reason": "INC-4711",
        "kd_wait_timeout": 120,
    }
    output, code = prepare_recipe(cluster, pods, container, recipe_command("dns", answers["kd_dns_names"]), tmp_path)
    real = recipe_lines([json.loads(line) for line in output.splitlines()])
    checks = [c for c in real if c["check"] != "summary"]
    # Set on the job template (not asked): where reports go, and the simulated kubelet's exit code.
    template_vars = {"kd_output_dir": str(tmp_path / "out"), "kd_debug_env": {"KWOK_EXIT_CODE": str(code)}}
    extra_vars = launch_extra_vars(survey, answers, template_vars)

    roles = rst_cluster_roles(ROOT / "docs" / "docsite" / "rst" / "rbac.rst")
    roles |= rst_cluster_roles(ROOT / "docs" / "docsite" / "rst" / "awx.rst")
    assert set(roles) == {"kubedebug-ephemeral", "kubedebug-ephemeral-playbooks"}
    created = grant(cluster, namespace, list(roles.values()))
    try:
        auth = service_account_auth(cluster, namespace, SERVICE_ACCOUNT, tmp_path)
        private_data_dir = job_dir(tmp_path)
        env = credential_env(private_data_dir, auth)
        assert stat.S_IMODE(os.stat(env["K8S_AUTH_SSL_CA_CERT"]).st_mode) == 0o660

        runner, artifacts, stdout = run_job(private_data_dir, extra_vars, env)
        assert runner.status == "successful", failures(runner)
        fleet = artifacts["fleet"]
        summary = json.loads((tmp_path / "out" / f"fleet-{RUN_ID}" / "summary.json").read_text())
        assert fleet == {k: v for k, v in summary.items() if k not in ("failures", "debugged_pods")}
        # The service account may not read namespaces or ReplicaSets: the section is there all the same.
        assert (fleet["debugged"]["pods"], fleet["debugged"]["errors"]) == (3, []), fleet["debugged"]
        assert (fleet["run_id"], fleet["recipe"], fleet["label_selector"]) == (RUN_ID, "dns", "app=web")
        assert fleet["clusters"] == ["local"] and fleet["pods"] == 3
        assert fleet["unfinished"] == [], fleet["unfinished"]
        assert (fleet["checks"], fleet["failed_checks"]) == (3 * len(checks), 3 * sum(1 for c in checks if not c["ok"]))
        assert fleet["by_namespace"] == {f"local/{namespace}": {"checks": fleet["checks"], "failed_checks": fleet["failed_checks"]}}

        # The token never shows: not in the output, not in any job event AWX stores, not in the artifacts.
        token = auth["api_key"]
        assert token not in stdout
        assert all(token not in json.dumps(event) for event in runner.events)
        assert token not in json.dumps(artifacts)

        # The live cluster, read with the test's own client: one debug container per web pod, annotated.
        for pod in cluster.core.list_namespaced_pod(namespace).items:
            names = [c.name for c in pod.spec.ephemeral_containers or []]
            if pod.metadata.name == "db-0":
                assert names == []
                continue
            assert names == [container]
            audit = json.loads(pod.metadata.annotations[f"debug.kubedebug.io/{container}"])
            assert audit["reason"] == "INC-4711"
            assert audit["by"] == f"system:serviceaccount:{namespace}:{SERVICE_ACCOUNT}"

        # Relaunching the job changes nothing and reports the same.
        private_data_dir = job_dir(tmp_path)
        again, again_artifacts, _stdout = run_job(private_data_dir, extra_vars, credential_env(private_data_dir, auth))
        assert again.status == "successful", failures(again)
        assert again.stats["changed"] == {}, again.stats
        assert again_artifacts == artifacts
    finally:
        rbac = client.RbacAuthorizationV1Api(cluster.api_client)
        for name in created:
            rbac.delete_cluster_role(name)


def test_awx_credential_verify_ssl_needs_the_ca(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    """Verification stays on without a CA file (it fails); only AWX's K8S_AUTH_VERIFY_SSL=False turns it off."""
    web_pods(cluster, namespace, 1)
    roles = rst_cluster_roles(ROOT / "docs" / "docsite" / "rst" / "rbac.rst")
    created = grant(cluster, namespace, list(roles.values()))
    try:
        auth = service_account_auth(cluster, namespace, SERVICE_ACCOUNT, tmp_path)
        survey = json.loads(SURVEY.read_text())
        answers = {
            "kd_label_selector": "app=web", "kd_recipe": "dns", "kd_run_id": RUN_ID, "kd_namespaces": namespace,
            "kd_all_namespaces": "false", "kd_wait_timeout": 30,
        }  # fmt: skip
        extra_vars = launch_extra_vars(survey, answers, {"kd_output_dir": str(tmp_path / "out")})
        # verify_ssl on and no CA: the system trust store does not know the cluster's CA.
        env = {"K8S_AUTH_HOST": auth["host"], "K8S_AUTH_API_KEY": auth["api_key"], "K8S_AUTH_VERIFY_SSL": "True"}
        refused, _artifacts, stdout = run_job(job_dir(tmp_path), extra_vars, env, cmdline="--check")
        assert refused.status == "failed"
        unverified = r"the TLS certificate of the API server \S+ could not be verified \(unable to get local issuer certificate\): set ca_cert"
        assert re.search(unverified, stdout), stdout[-3000:]
        assert auth["api_key"] not in stdout

        # What AWX injects for a credential without a CA: verification off, and the run goes through.
        private_data_dir = job_dir(tmp_path)
        env = credential_env(private_data_dir, auth, ca=False)
        insecure, _artifacts, insecure_stdout = run_job(private_data_dir, extra_vars, env, cmdline="--check")
        assert insecure.status == "successful", failures(insecure)
        assert "TLS certificate verification of the API server" in insecure_stdout, insecure_stdout[-3000:]
    finally:
        rbac = client.RbacAuthorizationV1Api(cluster.api_client)
        for name in created:
            rbac.delete_cluster_role(name)


def test_awx_incident_response_job(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    pods = web_pods(cluster, namespace, 2)
    survey = json.loads(INCIDENT_SURVEY.read_text())
    next(q for q in survey["spec"] if q["variable"] == "kd_dns_names")["choices"].append("localhost")
    answers = {
        "kd_namespace": namespace,
        "kd_pod": "",
        "kd_label_selector": "app=web",
        "kd_reason": "INC-4711",
        "kd_recipes": ["dns"],
        "kd_dns_names": ["kubernetes.default.svc", "localhost"],
    }
    # The run id comes from the incident id: kd-dns-inc-4711.
    output, code = prepare_recipe(cluster, pods, "kd-dns-inc-4711", recipe_command("dns", answers["kd_dns_names"]), tmp_path)
    checks = [c for c in recipe_lines(list(map(json.loads, output.splitlines()))) if c["check"] != "summary"]
    app_log = tmp_path / "app.log"
    app_log.write_text(cri_log("listening on :8080\n"))
    for ns, pod in pods:  # KWOK has no log for a container unless told which file it is
        serve_logs(cluster, ns, pod, "app", app_log)
    template_vars = {"kd_output_dir": str(tmp_path / "incidents"), "kd_debug_env": {"KWOK_EXIT_CODE": str(code)}}
    extra_vars = launch_extra_vars(survey, answers, template_vars)

    roles = rst_cluster_roles(ROOT / "docs" / "docsite" / "rst" / "rbac.rst")
    roles |= rst_cluster_roles(ROOT / "docs" / "docsite" / "rst" / "awx.rst")
    created = grant(cluster, namespace, list(roles.values()))
    try:
        auth = service_account_auth(cluster, namespace, SERVICE_ACCOUNT, tmp_path)
        private_data_dir = job_dir(tmp_path)
        env = credential_env(private_data_dir, auth)
        runner, artifacts, stdout = run_job(private_data_dir, extra_vars, env, playbook=INCIDENT_PLAYBOOK)
        assert runner.status == "successful", failures(runner)
        assert artifacts["incident"]["run_id"] == "inc-4711" and artifacts["incident"]["recipes"] == ["dns"]
        assert artifacts["bundle"] == str(tmp_path / "incidents" / "inc-4711")
        rows = {row["pod"]: row for row in artifacts["summary"]}
        assert set(rows) == {"web-0", "web-1"}
        for row in rows.values():
            assert row["error"] is None, row
            assert (row["checks"], row["unfinished_recipes"]) == (len(checks), []), row
        report = json.loads((tmp_path / "incidents" / "inc-4711" / "report.json").read_text())
        for pod in report["pods"]:
            assert pod.get("error") is None and isinstance(pod["events"], list), pod
        assert auth["api_key"] not in stdout and auth["api_key"] not in json.dumps(artifacts)
    finally:
        rbac = client.RbacAuthorizationV1Api(cluster.api_client)
        for name in created:
            rbac.delete_cluster_role(name)
