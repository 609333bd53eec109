"""Whom the collection trusts and acts as, against the real API server.

* TLS: a CA other than the one that signed the API server's certificate (made here with
  tests/pki.py), given as ``ca_cert`` or in a kubeconfig, fails at once with a message that
  names the server, ``ca_cert`` and ``validate_certs``; ``validate_certs: false`` warns once per
  task, however many pods the task handles in parallel.
* Impersonation: the cluster admin (the test kubeconfig) acting as a ServiceAccount that may
  only read pods is refused with the impersonated identity's missing permission; the Role that
  grants it makes the same task succeed, and the audit annotation records the impersonated
  identity (SelfSubjectReview answers for it). A token without the ``impersonate`` verb is
  refused with a message naming the rule to grant; the Role of docs/docsite/rst/rbac.rst fixes it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from playrun import run_play, save_results

from ansible_collections.kubedebug.ephemeral.tests.pki import CertificateAuthority
from ansible_collections.kubedebug.ephemeral.tests.sizes import size

from kubehelpers import ROOT, Cluster, make_pod, run_tasks, service_account_auth, wait_for

MODULE = "kubedebug.ephemeral.ephemeral_container"
IMAGE = "docker.io/library/busybox:1.36"
LOOKUP = "query('kubedebug.ephemeral.ephemeral_results', namespace=ns, container='debug', wait_for='none', logs=False, **auth)"


def web_pods(cluster: Cluster, namespace: str, count: int) -> None:
    app = [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]
    for i in range(count):
        cluster.core.create_namespaced_pod(namespace, make_pod(f"web-{i}", app, metadata={"labels": {"app": "web"}}))

    def running() -> bool:
        return sum(p.status.phase == "Running" for p in cluster.core.list_namespaced_pod(namespace).items) == count

    wait_for(f"{count} pods Running", running, timeout=120)


def add_and_collect(auth_var: str, **add: Any) -> list[dict[str, Any]]:
    """A module task and a lookup task, both with the connection options of the play variable ``auth_var``."""
    return [
        {
            "name": "Add",
            MODULE: {"namespace": "{{ ns }}", "container": "debug", "image": IMAGE, **add},
            "module_defaults": {"group/kubedebug.ephemeral.k8s": "{{ " + auth_var + " }}"},
            "register": "added",
            "ignore_errors": True,
        },
        {
            "name": "Collect",
            "ansible.builtin.set_fact": {"records": "{{ " + LOOKUP.replace("**auth", "**" + auth_var) + " }}"},
            "register": "collected",
            "ignore_errors": True,
        },
    ]


def bind(cluster: Cluster, namespace: str, role: dict[str, Any], subject: str, subject_namespace: str) -> None:
    rbac = client.RbacAuthorizationV1Api(cluster.api_client)
    rbac.create_namespaced_role(namespace, role)
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": role["metadata"]["name"]},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role["metadata"]["name"]},
            "subjects": [{"kind": "ServiceAccount", "name": subject, "namespace": subject_namespace}],
        },
    )


# --------------------------------------------------------------------------- TLS


def test_another_ca_fails_at_once_saying_what_to_set(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    web_pods(cluster, namespace, 1)
    auth = service_account_auth(cluster, namespace, "kd-tls", tmp_path)
    other_ca = tmp_path / "other-ca.crt"
    other_ca.write_bytes(CertificateAuthority("kd-integration-other-ca").cert_pem)
    kubeconfig = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    kubeconfig["clusters"][0]["cluster"].pop("certificate-authority-data", None)
    kubeconfig["clusters"][0]["cluster"]["certificate-authority"] = str(other_ca)
    other_kubeconfig = tmp_path / "other-ca-kubeconfig.yaml"
    other_kubeconfig.write_text(yaml.safe_dump(kubeconfig))
    play_vars = {"ns": namespace, "with_option": {**auth, "ca_cert": str(other_ca)}, "with_kubeconfig": {"kubeconfig": str(other_kubeconfig)}}
    tasks = []
    for route in ("with_option", "with_kubeconfig"):
        tasks += add_and_collect(route, label_selector="app=web")
        tasks += [{"name": "Keep", "ansible.builtin.set_fact": {route: "{{ {'added': added, 'collected': collected} }}"}}]
    saved = "{'with_option': with_option, 'with_kubeconfig': with_kubeconfig}"
    result = run_tasks(tmp_path, tasks, saved, play_extra={"vars": play_vars})

    expected = (
        f"the TLS certificate of the API server {auth['host']} could not be verified (unable to get local issuer certificate): "
        "set ca_cert (K8S_AUTH_SSL_CA_CERT) or the kubeconfig cluster's certificate-authority to the CA that signed the API "
        "server's certificate, and connect with a host name or address that the certificate names. validate_certs: false "
        "would turn verification off"
    )
    for route in ("with_option", "with_kubeconfig"):
        added, collected = result[route]["added"], result[route]["collected"]
        assert added["failed"] and added["msg"].startswith(expected), added
        assert collected["failed"] and "ephemeral_results: " + expected in collected["msg"], collected
    assert "could not be reached after" not in result["_stdout"]  # not retried like an unreachable server


@pytest.mark.stress
def test_validate_certs_false_warns_once_per_task(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    pods = size(6, 50)
    print(f"pods: {pods}")
    web_pods(cluster, namespace, pods)
    auth = service_account_auth(cluster, namespace, "kd-tls", tmp_path)
    rbac = {
        "metadata": {"name": "debugger"},
        "rules": [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["pods/ephemeralcontainers"], "verbs": ["patch"]},
        ],
    }
    bind(cluster, namespace, rbac, "kd-tls", namespace)
    insecure = {"host": auth["host"], "api_key": auth["api_key"], "validate_certs": False}
    tasks = add_and_collect("insecure", label_selector="app=web", parallel=pods, wait="running", wait_timeout=90)
    play = {"name": "unverified TLS", "hosts": "localhost", "gather_facts": False, "tasks": [*tasks, save_results(["added", "records"])]}
    run = run_play(tmp_path, [play], extra_vars={"ns": namespace, "insecure": insecure}, env={}, bundles=[])
    result = json.loads(run.outputs["results.json"])

    added, records = result["added"], result["records"]
    assert added["summary"]["added"] == pods and len(records) == pods and all(r["state"] == "running" for r in records)
    warning = f"TLS certificate verification of the API server {auth['host']} is off (validate_certs: false"
    module_warnings = [w for w in added["warnings"] if warning in w]
    # Warnings go to stderr (and the log), task results to stdout.
    shown = [line for line in run.outputs["stderr"].splitlines() if warning in line]
    print(f"module result warnings: {len(module_warnings)} of {len(added['warnings'])}; warning lines shown: {shown}")
    assert len(module_warnings) == 1 and len(added["warnings"]) == 1
    # One line from the module's task, one from the lookup's; nothing from urllib3 per request or thread.
    assert len(shown) == 2 and sum(line.startswith("[WARNING]: ephemeral_results: ") for line in shown) == 1
    for where in ("stdout", "stderr", "ansible.log"):
        assert "InsecureRequestWarning" not in run.outputs[where] and "errantly sent data" not in run.outputs[where], where


# --------------------------------------------------------------------------- impersonation


def documented_impersonation_role(namespace: str, service_account: str) -> dict[str, Any]:
    """The Role of docs/docsite/rst/rbac.rst ("Acting as another identity"), for this namespace and ServiceAccount."""
    text = (ROOT / "docs" / "docsite" / "rst" / "rbac.rst").read_text()
    for block in text.split(".. code-block:: yaml\n")[1:]:
        lines = []
        for line in block.splitlines()[1:]:
            if line and not line.startswith("    "):
                break
            lines.append(line[4:])
        doc = yaml.safe_load("\n".join(lines))
        if isinstance(doc, dict) and doc.get("kind") == "Role":
            doc["metadata"]["namespace"] = namespace
            assert doc["rules"][0]["resourceNames"] == ["debugger"]
            doc["rules"][0]["resourceNames"] = [service_account]
            return doc
    raise AssertionError("rbac.rst documents no Role")


def test_impersonation_end_to_end(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    web_pods(cluster, namespace, 1)
    reader = f"system:serviceaccount:{namespace}:reader"
    client.CoreV1Api(cluster.api_client).create_namespaced_service_account(namespace, {"metadata": {"name": "reader"}})
    bind(
        cluster,
        namespace,
        {"metadata": {"name": "pod-reader"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]},
        "reader",
        namespace,
    )
    admin_as_reader = {"kubeconfig": cluster.kubeconfig, "impersonate_user": reader}
    add = {"pod": ["web-0"], "annotate": True, "reason": "INC-AS", "wait": "none"}
    play = {"vars": {"ns": namespace, "as_reader": admin_as_reader}}

    # The admin may impersonate; the reader may not add ephemeral containers, in check mode or for real.
    for check in (True, False):
        tasks = add_and_collect("as_reader", **add)
        tasks[0]["check_mode"] = check
        denied = run_tasks(tmp_path, tasks, "{'added': added, 'collected': collected}", play_extra=play)
        msg = denied["added"]["msg"]
        assert denied["added"]["failed"], denied["added"]
        assert f"pod {namespace}/web-0: permission denied: grant 'patch' on 'pods/ephemeralcontainers' in namespace '{namespace}'" in msg, msg
        assert f'User "{reader}" cannot patch' in msg
        assert msg.endswith(f"(requests act as {reader} through impersonate_user: grant the permission to {reader})"), msg
        # Reading pods is allowed: the lookup only finds no container yet.
        assert "has no ephemeral container named 'debug'" in denied["collected"]["msg"], denied["collected"]

    # Grant it: the same task succeeds, acting as the reader, and the annotation says so.
    debugger = {
        "metadata": {"name": "debugger"},
        "rules": [
            {"apiGroups": [""], "resources": ["pods/ephemeralcontainers"], "verbs": ["patch"]},
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["patch"]},
        ],
    }
    bind(cluster, namespace, debugger, "reader", namespace)
    allowed = run_tasks(tmp_path, add_and_collect("as_reader", **add), "{'added': added, 'records': records}", play_extra=play)
    assert allowed["added"]["summary"]["added"] == 1, allowed["added"]
    assert [(r["pod"], r["container"]) for r in allowed["records"]] == [("web-0", "debug")]
    annotation = json.loads(cluster.core.read_namespaced_pod("web-0", namespace).metadata.annotations["debug.kubedebug.io/debug"])
    assert annotation["by"] == reader and annotation["reason"] == "INC-AS"

    # A token without the impersonate verb: refused, with the rule to grant.
    oncall = service_account_auth(cluster, namespace, "oncall", tmp_path)
    play = {"vars": {"ns": namespace, "oncall_as_reader": {**oncall, "impersonate_user": reader}}}
    add2 = {**add, "pod": ["web-0"], "annotate": False, "container": "debug2"}
    as_oncall = add_and_collect("oncall_as_reader", **add2)
    refused = run_tasks(tmp_path, as_oncall, "{'added': added, 'collected': collected}", play_extra=play)
    expected = (
        f"impersonation refused: system:serviceaccount:{namespace}:oncall may not act as another identity: grant it the "
        f"'impersonate' verb on 'serviceaccounts' named 'reader' in namespace '{namespace}', or remove impersonate_user and "
        "impersonate_groups (K8S_AUTH_IMPERSONATE_USER, K8S_AUTH_IMPERSONATE_GROUPS) to act as yourself. API server said: "
    )
    assert refused["added"]["failed"] and expected in refused["added"]["msg"], refused["added"]
    assert refused["collected"]["failed"] and f"ephemeral_results: {expected}" in refused["collected"]["msg"], refused["collected"]
    assert oncall["api_key"] not in json.dumps(refused) + refused["_stdout"]

    # The Role the documentation gives is enough.
    role = documented_impersonation_role(namespace, "reader")
    bind(cluster, namespace, role, "oncall", namespace)
    granted = run_tasks(tmp_path, as_oncall, "{'added': added, 'records': records}", play_extra=play)
    assert granted["added"]["summary"]["added"] == 1, granted["added"]
    names = [c.name for c in cluster.core.read_namespaced_pod("web-0", namespace).spec.ephemeral_containers]
    assert names == ["debug", "debug2"]
