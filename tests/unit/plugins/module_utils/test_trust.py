# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Who the API server takes the client for: impersonation (impersonate_user, impersonate_groups) and 401s.

The refusals are those the 1.36.3 API server of the test cluster answered (with constrained
impersonation, KEP-5284, it names the verb ``impersonate-on:<mode>:<verb>``), and the
message of API servers before it (``cannot impersonate resource "users"``). The client runs
for real against the fake API server (tests/unit/fake_apiserver.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ansible_collections.kubedebug.ephemeral.plugins.module_utils._auth import create_api_client, resolve_auth
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._client import EphemeralClient
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._errors import KubedebugError
from ansible_collections.kubedebug.ephemeral.tests.unit.api_objects import load_pod
from ansible_collections.kubedebug.ephemeral.tests.unit.fake_apiserver import FakeApiServer, fake_apiserver, status_body

NS = "unit-fixtures"
SA = "system:serviceaccount:team:reader"
LIST = ("GET", f"/api/v1/namespaces/{NS}/pods")
PATCH = ("PATCH", f"/api/v1/namespaces/{NS}/pods/plain/ephemeralcontainers")
# As the 1.36.3 API server answered a token of system:serviceaccount:kd:tester, which may not impersonate.
IN_NS = f'resource "pods" in API group "" in the namespace "{NS}"'
CONSTRAINED_SA = f'pods is forbidden: User "system:serviceaccount:kd:tester" cannot impersonate-on:serviceaccount:list {IN_NS}'
CONSTRAINED_USER = f'pods is forbidden: User "system:serviceaccount:kd:tester" cannot impersonate-on:user-info:list {IN_NS}'
LEGACY_USER = 'users "bob" is forbidden: User "jane" cannot impersonate resource "users" in API group "" at the cluster scope'
RBAC_PATCH = f'pods "plain" is forbidden: User "{SA}" cannot patch resource "pods/ephemeralcontainers" in API group "" in the namespace "{NS}"'


@pytest.fixture
def apiserver(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeApiServer]:
    with fake_apiserver(monkeypatch) as server:
        server.cluster.add(load_pod("plain"))
        yield server


def client_for(apiserver: FakeApiServer, **options: Any) -> EphemeralClient:
    host = apiserver.api_client().configuration.host
    return EphemeralClient(create_api_client(resolve_auth({"host": host, "api_key": "tok", **options}, {})), retries=0, sleep=lambda s: None)


def test_the_client_knows_whom_it_acts_as(apiserver: FakeApiServer) -> None:
    assert client_for(apiserver).impersonation() == {}
    acting = client_for(apiserver, impersonate_user=SA, impersonate_groups=["dev", "ops"])
    assert acting.impersonation() == {"user": [SA], "groups": ["dev", "ops"]}


@pytest.mark.parametrize(
    ("user", "groups", "message", "rules"),
    [
        (SA, [], CONSTRAINED_SA, "'serviceaccounts' named 'reader' in namespace 'team'"),
        ("bob", [], CONSTRAINED_USER, "'users' named 'bob'"),
        ("bob", ["dev", "ops"], LEGACY_USER, "'users' named 'bob' and 'groups' named 'dev', 'ops'"),
    ],
)
def test_a_refused_impersonation_says_which_verb_to_grant_or_what_to_remove(
    apiserver: FakeApiServer, user: str, groups: list[str], message: str, rules: str
) -> None:
    apiserver.cluster.refuse[LIST] = (403, status_body(403, message))
    client = client_for(apiserver, impersonate_user=user, impersonate_groups=groups)
    with pytest.raises(KubedebugError) as refused:
        client.list_pods([NS])
    who = "jane" if message is LEGACY_USER else "system:serviceaccount:kd:tester"
    assert refused.value.msg == (
        f"impersonation refused: {who} may not act as another identity: grant it the 'impersonate' verb on {rules}, or remove "
        "impersonate_user and impersonate_groups (K8S_AUTH_IMPERSONATE_USER, K8S_AUTH_IMPERSONATE_GROUPS) to act as yourself. "
        f"API server said: {message}"
    )
    assert refused.value.status == 403


def test_a_refusal_of_the_impersonated_user_names_that_user(apiserver: FakeApiServer) -> None:
    apiserver.cluster.refuse[PATCH] = (403, status_body(403, RBAC_PATCH, {"name": "plain", "kind": "pods"}))
    client = client_for(apiserver, impersonate_user=SA)
    with pytest.raises(KubedebugError) as refused:
        client.add_ephemeral(NS, "plain", {"spec": {"ephemeralContainers": [{"name": "d", "image": "busybox"}]}}, name="d", dry_run=False)
    assert refused.value.msg.startswith(f"pod {NS}/plain: permission denied: grant 'patch' on 'pods/ephemeralcontainers' in namespace '{NS}'")
    assert refused.value.msg.endswith(f"API server said: {RBAC_PATCH} (requests act as {SA} through impersonate_user: grant the permission to {SA})")


def test_without_impersonation_the_same_words_are_an_ordinary_refusal(apiserver: FakeApiServer) -> None:
    apiserver.cluster.refuse[LIST] = (403, status_body(403, CONSTRAINED_SA))
    with pytest.raises(KubedebugError) as refused:
        client_for(apiserver).list_pods([NS])
    assert refused.value.msg.startswith(f"permission denied listing pods in namespace '{NS}': grant 'list' on 'pods'")
    assert "requests act as" not in refused.value.msg


def test_a_read_of_one_pod_is_explained_the_same_way(apiserver: FakeApiServer) -> None:
    apiserver.cluster.refuse[("GET", f"/api/v1/namespaces/{NS}/pods/plain")] = (403, status_body(403, CONSTRAINED_SA))
    with pytest.raises(KubedebugError) as refused:
        client_for(apiserver, impersonate_user=SA).read_pod(NS, "plain")
    assert refused.value.msg.startswith("impersonation refused: system:serviceaccount:kd:tester may not act as another identity")


@pytest.mark.parametrize("environ", [{}, {"K8S_AUTH_IMPERSONATE_GROUPS": "dev,ops"}])
def test_groups_without_a_user_are_refused_before_any_request(environ: dict[str, str]) -> None:
    # The API server would answer every request with 400 "requested ... without impersonating a user name".
    options = {} if environ else {"impersonate_groups": ["dev"]}
    with pytest.raises(KubedebugError) as refused:
        create_api_client(resolve_auth({"host": "http://127.0.0.1:9", "api_key": "tok", **options}, environ))
    assert refused.value.msg == (
        "Option impersonate_groups (K8S_AUTH_IMPERSONATE_GROUPS) needs impersonate_user (K8S_AUTH_IMPERSONATE_USER): the API server "
        "refuses to impersonate groups without a user name. Set impersonate_user too, or remove impersonate_groups."
    )


def test_credentials_the_api_server_does_not_accept_say_what_may_be_wrong(apiserver: FakeApiServer) -> None:
    apiserver.cluster.refuse[LIST] = (401, status_body(401, "Unauthorized"))
    client = client_for(apiserver)
    with pytest.raises(KubedebugError) as refused:
        client.list_pods([NS])
    assert refused.value.msg == (
        f"the API server {client.server()} did not accept the credentials (HTTP 401 Unauthorized): the token (api_key, "
        "K8S_AUTH_API_KEY or the kubeconfig's) may have expired or been revoked, or the client certificate (client_cert and "
        "client_key, or the kubeconfig's) is not signed by a CA the API server trusts. API server said: Unauthorized"
    )
    assert refused.value.status == 401
