"""A real ServiceAccount token never shows anywhere a play leaves output.

A token from the TokenRequest API (what ``kubectl create token`` asks for), bound to a Role
with what the collection needs, reaches the cluster three ways: the ``api_key`` option, a
kubeconfig file, and ``K8S_AUTH_API_KEY``. With it, ``ansible-playbook -vvv --diff`` runs every
front end: the ephemeral_container module (check mode, a real run, a rerun with a conflict and a
missing pod, a namespace it may not touch), ephemeral_container_info, pod_snapshot_info, the
lookup (and its refusal), the recipe role and the incident_snapshot role writing its bundle;
then playbooks/incident_response.yml. Everything the runs leave is searched for the token: stdout,
stderr, the Ansible log (ANSIBLE_LOG_PATH), every registered result dumped as JSON, and every
file of the incident bundles. The search is proven able to find it by a play that prints it.

A kubeconfig with a client certificate from a CA the API server does not trust (so that every
request fails with 401 and errors are produced) is searched for the body of the key's PEM.

KWOK runs no process: the debug containers end with the exit code of KWOK_EXIT_CODE, and their
log is KWOK's stand-in line, which the recipes report as unparsed output.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from playrun import run_play, save_results

from ansible_collections.kubedebug.ephemeral.tests.pki import CertificateAuthority
from ansible_collections.kubedebug.ephemeral.tests.sizes import size

from kubehelpers import ROOT, Cluster, make_pod, service_account_auth, wait_for

IMAGE = "docker.io/library/busybox:1.36"
SERVICE_ACCOUNT = "kd-secrets"


def token_needles(token: str) -> dict[str, str]:
    # The whole token, and its signature alone: the part nobody else can make (a JWT's
    # header is the same for every token of the cluster, its payload is not secret).
    return {"token": token, "token signature": token.rsplit(".", 1)[1]}


def front_end_tasks(forbidden: str, bundle: Path) -> list[dict[str, Any]]:
    """Every front end, with the connection options in ``kd_auth`` (empty: the environment)."""
    lookup = "query('kubedebug.ephemeral.ephemeral_results', namespace=kd_namespace, label_selector='app=web', container='debug', wait_for='none', **kd_auth)"
    add = {"namespace": "{{ kd_namespace }}", "label_selector": "app=web", "container": "debug", "image": IMAGE, "annotate": True, "reason": "INC-SECRETS"}
    conflicting = {"container": "debug", "image": IMAGE + "-other", "wait": "none"}
    selection = {"namespace": "{{ kd_namespace }}", "label_selector": "app=web"}
    return [
        {"name": "Add in check mode", "kubedebug.ephemeral.ephemeral_container": add, "check_mode": True, "register": "r_check"},
        {"name": "Add", "kubedebug.ephemeral.ephemeral_container": {**add, "wait_timeout": 60}, "register": "r_add"},
        {
            "name": "Add again, differently, to a pod that exists and one that does not",
            "kubedebug.ephemeral.ephemeral_container": {"namespace": "{{ kd_namespace }}", "pod": ["web-0", "missing"], **conflicting},
            "register": "r_conflict",
            "ignore_errors": True,
        },
        {
            "name": "Add where the token may not",
            "kubedebug.ephemeral.ephemeral_container": {"namespace": forbidden, "pod": ["web-0"], **conflicting},
            "register": "r_forbidden",
            "ignore_errors": True,
        },
        {"name": "Info", "kubedebug.ephemeral.ephemeral_container_info": {"namespace": "{{ kd_namespace }}"}, "register": "r_info"},
        {"name": "Snapshot", "kubedebug.ephemeral.pod_snapshot_info": {**selection}, "register": "r_snapshot"},
        {"name": "Lookup", "ansible.builtin.set_fact": {"r_lookup": "{{ " + lookup + " }}"}},
        {
            "name": "Lookup where the token may not",
            "ansible.builtin.set_fact": {"r_lookup_forbidden": "{{ " + lookup.replace("namespace=kd_namespace", f"namespace='{forbidden}'") + " }}"},
            "register": "r_lookup_refused",
            "ignore_errors": True,
        },
        {
            "name": "Recipe",
            "ansible.builtin.include_role": {"name": "kubedebug.ephemeral.recipe", "tasks_from": "dns", "defaults_from": "dns"},
            "vars": {
                "recipe_namespace": "{{ kd_namespace }}",
                "recipe_pod": "web-0",
                "recipe_run_id": "secrets",
                "recipe_auth": "{{ kd_auth }}",
                "recipe_env": {"KWOK_EXIT_CODE": "0"},
                "recipe_annotate": True,
                "recipe_reason": "INC-SECRETS",
                "recipe_wait_timeout": 90,
            },
        },
        {"name": "Keep the recipe's results", "ansible.builtin.set_fact": {"r_recipe": "{{ recipe_results }}"}},
        {
            "name": "Incident snapshot",
            "ansible.builtin.include_role": {"name": "kubedebug.ephemeral.incident_snapshot"},
            "vars": {
                "incident_snapshot_namespace": "{{ kd_namespace }}",
                "incident_snapshot_label_selector": "app=web",
                "incident_snapshot_reason": "INC-SECRETS-2",
                "incident_snapshot_recipes": ["dns"],
                "incident_snapshot_auth": "{{ kd_auth }}",
                "incident_snapshot_debug_env": {"KWOK_EXIT_CODE": "0"},
                "incident_snapshot_dest": str(bundle),
                "incident_snapshot_wait_timeout": 90,
            },
        },
        {"name": "Keep the incident report", "ansible.builtin.set_fact": {"r_incident": "{{ incident_snapshot_report }}"}},
    ]


REGISTERED = ["r_check", "r_add", "r_conflict", "r_forbidden", "r_info", "r_snapshot", "r_lookup", "r_lookup_refused", "r_recipe", "r_incident"]


@pytest.fixture
def token_setup(cluster: Cluster, namespace_factory: Any, tmp_path: Path) -> dict[str, Any]:
    """Pods web-<i> in a namespace where the ServiceAccount has the collection's permissions, web-0 in one where it has none."""
    namespace, forbidden = namespace_factory(), namespace_factory()
    pods = size(2, 10)
    print(f"pods: {pods}")
    app = [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]
    for i in range(pods):
        cluster.core.create_namespaced_pod(namespace, make_pod(f"web-{i}", app, metadata={"labels": {"app": "web"}}))
    cluster.core.create_namespaced_pod(forbidden, make_pod("web-0", app, metadata={"labels": {"app": "web"}}))
    wait_for(
        "the pods Running",
        lambda: all(p.status.phase == "Running" for ns in (namespace, forbidden) for p in cluster.core.list_namespaced_pod(ns).items),
        timeout=120,
    )
    rbac = client.RbacAuthorizationV1Api(cluster.api_client)
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "debugger"},
            "rules": [
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "patch"]},
                {"apiGroups": [""], "resources": ["pods/ephemeralcontainers"], "verbs": ["patch"]},
                {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
                {"apiGroups": [""], "resources": ["events"], "verbs": ["list"]},
            ],
        },
    )
    auth = service_account_auth(cluster, namespace, SERVICE_ACCOUNT, tmp_path)
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "debugger"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "debugger"},
            "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": namespace}],
        },
    )
    return {"namespace": namespace, "forbidden": forbidden, "pods": pods, "auth": auth}


def token_kubeconfig(tmp_path: Path, auth: dict[str, Any]) -> Path:
    path = tmp_path / "token-kubeconfig.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "kd", "cluster": {"server": auth["host"], "certificate-authority": auth["ca_cert"]}}],
                "users": [{"name": SERVICE_ACCOUNT, "user": {"token": auth["api_key"]}}],
                "contexts": [{"name": "kd", "context": {"cluster": "kd", "user": SERVICE_ACCOUNT}}],
                "current-context": "kd",
            }
        )
    )
    return path


def check_the_runs_did_their_work(results: dict[str, Any], setup: dict[str, Any]) -> None:
    """The searched output is that of real work: each front end did what it was asked."""
    namespace, pods = setup["namespace"], setup["pods"]
    assert results["r_check"]["summary"]["would_add"] == pods and results["r_check"]["diff"], results["r_check"]
    assert results["r_add"]["summary"]["added"] == pods and len(results["r_add"]["diff"]) == pods
    conflict = results["r_conflict"]
    assert conflict["failed"] and conflict["summary"] == {"matched": 2, "added": 0, "unchanged": 0, "conflict": 1, "failed": 1, "would_add": 0, "skipped": 0}
    assert any("with another spec" in w for w in conflict["warnings"]), conflict
    assert "permission denied" in results["r_forbidden"]["msg"] and f"system:serviceaccount:{namespace}:{SERVICE_ACCOUNT}" in results["r_forbidden"]["msg"]
    assert len(results["r_info"]["pods"]) == pods and len(results["r_snapshot"]["pods"]) == pods
    assert len(results["r_lookup"]) == pods and all(r["error"] is None for r in results["r_lookup"])
    assert results["r_lookup_refused"]["failed"] and "permission denied listing pods" in results["r_lookup_refused"]["msg"]
    assert [(r["pod"], r["state"], r["exit_code"]) for r in results["r_recipe"]] == [("web-0", "terminated", 0)]
    assert len(results["r_incident"]["pods"]) == pods and results["r_incident"]["recipes"]["dns"]["results"]


@pytest.mark.stress
@pytest.mark.parametrize("route", ["api_key", "kubeconfig file", "K8S_AUTH_API_KEY"])
def test_a_token_never_shows_in_output_results_logs_or_bundles(cluster: Cluster, token_setup: dict[str, Any], tmp_path: Path, route: str) -> None:
    auth = token_setup["auth"]
    token = auth["api_key"]
    bundle = tmp_path / "incidents"
    env: dict[str, str] = {}
    if route == "api_key":
        kd_auth: dict[str, Any] = dict(auth)
    elif route == "kubeconfig file":
        kd_auth = {"kubeconfig": str(token_kubeconfig(tmp_path, auth))}
    else:
        kd_auth = {}
        env = {"K8S_AUTH_HOST": auth["host"], "K8S_AUTH_API_KEY": token, "K8S_AUTH_SSL_CA_CERT": auth["ca_cert"]}
    tasks = front_end_tasks(token_setup["forbidden"], bundle)
    play = {
        "name": "every front end with the token",
        "hosts": "localhost",
        "gather_facts": False,
        "module_defaults": {"group/kubedebug.ephemeral.k8s": "{{ kd_auth }}"},
        "tasks": [*tasks, save_results(REGISTERED)],
    }
    run = run_play(tmp_path, [play], extra_vars={"kd_auth": kd_auth, "kd_namespace": token_setup["namespace"]}, env=env, bundles=[bundle])
    assert run.returncode == 0, run.outputs["stdout"][-6000:]
    results = json.loads(run.outputs["results.json"])
    check_the_runs_did_their_work(results, token_setup)
    report = bundle / "inc-secrets-2"
    assert sorted(p.name for p in report.iterdir()) == ["report.html", "report.json", "report.md"]
    # The audit annotation names the ServiceAccount (SelfSubjectReview), not anything of its token.
    pod = cluster.core.read_namespaced_pod("web-0", token_setup["namespace"])
    assert json.loads(pod.metadata.annotations["debug.kubedebug.io/debug"])["by"] == f"system:serviceaccount:{token_setup['namespace']}:{SERVICE_ACCOUNT}"

    hits = run.search(token_needles(token))
    searched = {where: len(text) for where, text in run.outputs.items()}
    print(f"route {route}: searched {len(searched)} outputs, {sum(searched.values())} characters: {searched}")
    print(f"token hits: {sum(len(v) for v in hits.values())} {hits}")
    assert hits == {}


@pytest.mark.stress
def test_incident_response_playbook_with_the_token_shows_it_nowhere(token_setup: dict[str, Any], tmp_path: Path) -> None:
    auth = token_setup["auth"]
    out = tmp_path / "incidents"
    extra = {
        "kd_namespace": token_setup["namespace"],
        "kd_label_selector": "app=web",
        "kd_reason": "INC-PLAYBOOK",
        "kd_recipes": ["dns"],
        "kd_output_dir": str(out),
        "kd_auth": auth,
        "kd_debug_env": {"KWOK_EXIT_CODE": "0"},
    }
    run = run_play(tmp_path, ROOT / "playbooks" / "incident_response.yml", extra_vars=extra, env={}, bundles=[out])
    assert run.returncode == 0, run.outputs["stdout"][-6000:]
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == ["inc-playbook/report.html", "inc-playbook/report.json", "inc-playbook/report.md"], files
    report = json.loads((out / "inc-playbook" / "report.json").read_text())
    assert len(report["pods"]) == token_setup["pods"] and report["recipes"]["dns"]["results"]
    hits = run.search(token_needles(auth["api_key"]))
    print(f"incident_response.yml: searched {len(run.outputs)} outputs, token hits: {sum(len(v) for v in hits.values())} {hits}")
    assert hits == {}


def test_the_search_finds_a_token_that_is_printed(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    """The control: a play that shows the token, through the same run and search as above."""
    auth = service_account_auth(cluster, namespace, SERVICE_ACCOUNT, tmp_path)
    play = {
        "name": "a careless play",
        "hosts": "localhost",
        "gather_facts": False,
        "tasks": [
            {"name": "Print it", "ansible.builtin.debug": {"msg": "the token is {{ kd_auth.api_key }}"}},
            {"name": "Register it", "ansible.builtin.set_fact": {"careless": "{{ kd_auth.api_key.split('.')[-1] }}"}, "register": "r_careless"},
            save_results(["r_careless"]),
        ],
    }
    run = run_play(tmp_path, [play], extra_vars={"kd_auth": auth}, env={}, bundles=[])
    assert run.returncode == 0, run.outputs["stdout"][-4000:]
    hits = run.search(token_needles(auth["api_key"]))
    print(f"control: token hits {hits}")
    assert {where.split(":")[0] for where in hits["token"]} == {"stdout", "ansible.log"}
    assert {where.split(":")[0] for where in hits["token signature"]} == {"stdout", "ansible.log", "results.json"}


def test_a_client_key_never_shows_when_its_certificate_is_refused(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    """A kubeconfig (file and inline dict) whose client certificate the API server does not trust: every request is a 401."""
    issued = CertificateAuthority("kd-untrusted-client-ca").client("kd-intruder")
    server = yaml.safe_load(Path(cluster.kubeconfig).read_text())["clusters"][0]["cluster"]
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kd", "cluster": server}],
        "users": [
            {
                "name": "intruder",
                "user": {
                    "client-certificate-data": base64.b64encode(issued.cert_pem).decode(),
                    "client-key-data": base64.b64encode(issued.key_pem).decode(),
                },
            }
        ],
        "contexts": [{"name": "kd", "context": {"cluster": "kd", "user": "intruder"}}],
        "current-context": "kd",
    }
    path = tmp_path / "client-cert-kubeconfig.yaml"
    path.write_text(yaml.safe_dump(kubeconfig))
    tasks = []
    for label, value, option in (("file", str(path), f"'{path}'"), ("dict", "{{ kd_kubeconfig }}", "kd_kubeconfig")):
        tasks += [
            {
                "name": f"Add, kubeconfig {label}",
                "kubedebug.ephemeral.ephemeral_container": {"kubeconfig": value, "namespace": namespace, "pod": ["web"], "container": "d", "image": IMAGE},
                "register": f"r_add_{label}",
                "ignore_errors": True,
            },
            {
                "name": f"Lookup, kubeconfig {label}",
                "ansible.builtin.set_fact": {"x": "{{ query('kubedebug.ephemeral.ephemeral_results', " + f"namespace='{namespace}', kubeconfig={option}) }}}}"},
                "register": f"r_lookup_{label}",
                "ignore_errors": True,
            },
        ]
    registered = ["r_add_file", "r_lookup_file", "r_add_dict", "r_lookup_dict"]
    play = {"name": "a refused client certificate", "hosts": "localhost", "gather_facts": False, "tasks": [*tasks, save_results(registered)]}
    run = run_play(tmp_path, [play], extra_vars={"kd_kubeconfig": kubeconfig}, env={}, bundles=[])
    results = json.loads(run.outputs["results.json"])
    for name in registered:
        assert results[name]["failed"] and "did not accept the credentials (HTTP 401 Unauthorized)" in results[name]["msg"], results[name]
    key_b64 = kubeconfig["users"][0]["user"]["client-key-data"]
    needles = {"key PEM body": issued.key_body(), "client-key-data": key_b64}
    # Each line of the PEM body too, in case something prints the key as it is stored.
    needles |= {f"key PEM line {i}": line for i, line in enumerate(issued.key_pem.decode().splitlines()[1:-1], 1) if len(line) >= 40}
    hits = run.search(needles)
    print(f"client key: searched {len(run.outputs)} outputs for {len(needles)} needles, hits: {hits}")
    assert hits == {}
    assert re.search(r"did not accept the credentials", run.outputs["stdout"])
