# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Credentials never show, and TLS is verified, for the modules and the lookup, with their real connection code.

Unlike the other front-end tests, nothing here patches how the client is built: the
options go through ``_auth`` (``resolve_auth``, ``create_api_client``) as in a play, to
a fake API server on loopback (tests/unit/fake_apiserver.py) that

* echoes the credentials it receives (``Authorization``, ``Proxy-Authorization``) in the
  message of a 403, as a hostile or careless server or proxy could: a front end repeats
  an API server's message, so it must mask every credential it knows, including those
  that never were a no_log option (``K8S_AUTH_API_KEY``, a kubeconfig's token, the
  password in a proxy URL);
* speaks TLS with a certificate of a CA made for the test (tests/pki.py), to check what
  a wrong CA, a wrong address and ``validate_certs: false`` do.

For the modules, the whole JSON a module prints (what the controller receives, its
``invocation`` included) is searched; for the lookup, what it returns, raises, warns and
logs at -vvv.
"""

from __future__ import annotations

import base64
import http.server
import json
import ssl
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.errors import AnsibleLookupError
from ansible.plugins.loader import lookup_loader
from urllib3.exceptions import InsecureRequestWarning

from ansible_collections.kubedebug.ephemeral.plugins.module_utils import _module
from ansible_collections.kubedebug.ephemeral.plugins.modules import ephemeral_container, ephemeral_container_info, pod_snapshot_info
from ansible_collections.kubedebug.ephemeral.plugins.plugin_utils import _lookup
from ansible_collections.kubedebug.ephemeral.tests.pki import CertificateAuthority, Issued
from ansible_collections.kubedebug.ephemeral.tests.sizes import size
from ansible_collections.kubedebug.ephemeral.tests.unit.api_objects import load_pod
from ansible_collections.kubedebug.ephemeral.tests.unit.fake_apiserver import FakeCluster, _Handler, _Server, status_body
from ansible_collections.kubedebug.ephemeral.tests.unit.local_http import serving, without_proxies

NS = "unit-fixtures"
IMAGE = "docker.io/library/busybox:1.36"
# How the module's connection is really built (the run_module fixture replaces it).
REAL_MODULE_CLIENT = _module.module_client
TOKEN = "eyJhbGciOiJSUzI1NiJ9.unit-test-token-payload.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"
PASSWORD = "s3cret-basic-password"
PROXY_PASSWORD = "pr0xy-url-password"
PROXY_HEADER_PASSWORD = "pr0xy-header-password"
MODULES = {
    "ephemeral_container": ephemeral_container.main,
    "ephemeral_container_info": ephemeral_container_info.main,
    "pod_snapshot_info": pod_snapshot_info.main,
}


# --------------------------------------------------------------------------- servers


class EchoingCluster(FakeCluster):
    """Answers the LIST of pods in namespace ``echo`` with a 403 that repeats the credentials it was sent."""

    ECHO_PATH = "/api/v1/namespaces/echo/pods"

    def __init__(self) -> None:
        super().__init__()
        self.local = threading.local()
        self.credentials_seen: list[str] = []

    def answer(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        if path == self.ECHO_PATH:
            headers = self.local.headers
            sent = [f"{name}: {headers[name]}" for name in ("Authorization", "Proxy-Authorization") if headers.get(name)]
            self.credentials_seen.extend(sent)
            return 403, status_body(403, f"pods is forbidden: refused the request with {'; '.join(sent) or 'no credentials'}")
        return super().answer(method, path, query, body)


class _EchoingHandler(_Handler):
    def _handle(self) -> None:
        self.server.cluster.local.headers = self.headers  # type: ignore[attr-defined]
        super()._handle()

    do_GET = do_PATCH = do_POST = _handle


class _Server2(_Server):
    """The fake API server on any loopback address, with any handler, optionally speaking TLS."""

    def __init__(self, cluster: FakeCluster, *, address: str = "127.0.0.1", tls: ssl.SSLContext | None = None, handler: type = _Handler) -> None:
        # _Server.__init__ binds 127.0.0.1 with its own handler: skip it for the base that takes both.
        http.server.ThreadingHTTPServer.__init__(self, (address, 0), handler)  # pylint: disable=non-parent-init-called
        self.cluster = cluster
        self.tls = tls
        self.connections = 0

    def get_request(self) -> tuple[Any, Any]:
        sock, address = super().get_request()
        self.connections += 1
        if self.tls is None:
            return sock, address
        # A refused handshake raises ssl.SSLError here, which socketserver drops with the connection.
        return self.tls.wrap_socket(sock, server_side=True), address


@contextmanager
def api_server(
    cluster: FakeCluster, *, address: str = "127.0.0.1", cert: Issued | None = None, tmp_path: Path | None = None, handler: type = _Handler
) -> Iterator[tuple[_Server2, str]]:
    context = None
    if cert is not None:
        assert tmp_path is not None
        cert_file, key_file = cert.write(tmp_path, "server")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
    with serving(_Server2(cluster, address=address, tls=context, handler=handler)) as server:
        scheme = "https" if context else "http"
        yield server, f"{scheme}://{address}:{server.server_address[1]}"


@pytest.fixture
def echoing(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[EchoingCluster, str]]:
    without_proxies(monkeypatch)
    cluster = EchoingCluster()
    cluster.add(load_pod("debugged"))
    with api_server(cluster, handler=_EchoingHandler) as (_server, url):
        yield cluster, url


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The API server's CA and certificate (for 127.0.0.1 only), and another CA."""
    directory = tmp_path_factory.mktemp("pki")
    server_ca, other_ca = CertificateAuthority("kd-unit-server-ca"), CertificateAuthority("kd-unit-other-ca")
    (directory / "server-ca.crt").write_bytes(server_ca.cert_pem)
    (directory / "other-ca.crt").write_bytes(other_ca.cert_pem)
    return {"server": server_ca.server("127.0.0.1"), "ca": str(directory / "server-ca.crt"), "other_ca": str(directory / "other-ca.crt")}


# --------------------------------------------------------------------------- front ends


@pytest.fixture
def module(run_module: Callable[..., dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> Callable[..., dict[str, Any]]:
    """``module(name, args)`` -> the JSON result the module printed, its real connection code building the client."""
    monkeypatch.setattr(_module, "module_client", REAL_MODULE_CLIENT)
    return lambda name, args, **kwargs: run_module(MODULES[name], args, **kwargs)


class RecordingDisplay:
    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.verbose: list[str] = []

    def warning(self, msg: str) -> None:
        self.warnings.append(msg)

    def vvv(self, msg: str) -> None:
        self.verbose.append(msg)


@pytest.fixture
def lookup(monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[Any, RecordingDisplay]]:
    """``lookup(*terms, **options)`` -> (records or the AnsibleLookupError, what it displayed), connecting for real."""

    def run(*terms: str, **options: Any) -> tuple[Any, RecordingDisplay]:
        display = RecordingDisplay()
        with monkeypatch.context() as scope:
            scope.setattr(_lookup, "display", display)
            plugin = lookup_loader.get("kubedebug.ephemeral.ephemeral_results")
            try:
                return plugin.run(list(terms), variables={}, **options), display
            except AnsibleLookupError as exc:
                return exc, display

    return run


def kubeconfig(server: str, user: dict[str, Any], **cluster: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server, **cluster}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "ctx",
    }


def basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


# Each way of giving a credential: (options, environment, the secrets it involves, what the server must receive).
ROUTES: dict[str, Callable[[str, Path], tuple[dict[str, Any], dict[str, str], list[str], str]]] = {
    "api_key option": lambda url, tmp: ({"host": url, "api_key": TOKEN}, {}, [TOKEN], f"Bearer {TOKEN}"),
    "K8S_AUTH_API_KEY": lambda url, tmp: ({}, {"K8S_AUTH_HOST": url, "K8S_AUTH_API_KEY": TOKEN}, [TOKEN], f"Bearer {TOKEN}"),
    "kubeconfig file": lambda url, tmp: (
        {"kubeconfig": str(_write(tmp / "kubeconfig", kubeconfig(url, {"token": TOKEN})))},
        {},
        [TOKEN],
        f"Bearer {TOKEN}",
    ),
    "kubeconfig dict": lambda url, tmp: ({"kubeconfig": kubeconfig(url, {"token": TOKEN})}, {}, [TOKEN], f"Bearer {TOKEN}"),
    "username and password": lambda url, tmp: (
        {"host": url, "username": "jane", "password": PASSWORD},
        {},
        [PASSWORD, basic("jane", PASSWORD)],
        f"Basic {basic('jane', PASSWORD)}",
    ),
    # A proxy URL with credentials: the fake API server is the proxy too (it reads the path of an absolute URI).
    "proxy URL password": lambda url, tmp: (
        {"host": url, "api_key": TOKEN, "proxy": url.replace("http://", f"http://puser:{PROXY_PASSWORD}@")},
        {},
        [TOKEN, PROXY_PASSWORD],
        f"Bearer {TOKEN}",
    ),
    "proxy_headers": lambda url, tmp: (
        {"host": url, "api_key": TOKEN, "proxy": url, "proxy_headers": {"proxy_basic_auth": f"puser:{PROXY_HEADER_PASSWORD}"}},
        {},
        [TOKEN, PROXY_HEADER_PASSWORD, basic("puser", PROXY_HEADER_PASSWORD)],
        f"Proxy-Authorization: Basic {basic('puser', PROXY_HEADER_PASSWORD)}",
    ),
}


def _write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def assert_hidden(secrets: list[str], *outputs: str) -> None:
    for secret in secrets:
        for output in outputs:
            assert secret not in output, f"{secret!r} shows in: {output[:2000]}"


# --------------------------------------------------------------------------- credentials


@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize("name", list(MODULES))
def test_a_module_never_shows_a_credential_even_when_the_server_repeats_it(
    route: str, name: str, echoing: tuple[EchoingCluster, str], module: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster, url = echoing
    options, env, secrets, sent = ROUTES[route](url, tmp_path)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    args = {**options, "namespace": "echo", "label_selector": "app=web"}
    if name == "ephemeral_container":
        args.update(container="debug", image=IMAGE)
    result = module(name, args)

    assert result["rc"] == 1
    # The server got the credential and repeated it; the module masked it everywhere it would have shown.
    assert any(sent in seen for seen in cluster.credentials_seen), cluster.credentials_seen
    assert "permission denied listing pods in namespace 'echo'" in result["msg"] and "********" in result["msg"]
    assert_hidden(secrets, json.dumps(result))


@pytest.mark.parametrize("route", list(ROUTES))
def test_the_lookup_never_shows_a_credential_even_when_the_server_repeats_it(
    route: str, echoing: tuple[EchoingCluster, str], lookup: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster, url = echoing
    options, env, secrets, sent = ROUTES[route](url, tmp_path)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    error, display = lookup(namespace="echo", **options)

    assert isinstance(error, AnsibleLookupError)
    assert any(sent in seen for seen in cluster.credentials_seen), cluster.credentials_seen
    assert "permission denied listing pods in namespace 'echo'" in str(error) and "********" in str(error)
    assert display.verbose, "the traceback is logged at -vvv"
    assert_hidden(secrets, str(error), *display.verbose, *display.warnings)


def test_the_lookup_masks_credentials_in_its_records_too(echoing: tuple[EchoingCluster, str], lookup: Any) -> None:
    cluster, url = echoing
    other = load_pod("debugged")
    other["metadata"]["name"] = "debugged-2"
    cluster.add(other)
    cluster.logs[(NS, "debugged-2", "debug", False)] = b"fine\n"
    # A log read refused with the token in the message becomes that record's error, not the lookup's failure.
    cluster.refuse[("GET", f"/api/v1/namespaces/{NS}/pods/debugged/log")] = (403, status_body(403, f"refused Bearer {TOKEN}"))
    records, display = lookup(f"{NS}/debugged", f"{NS}/debugged-2", host=url, api_key=TOKEN, wait_for="none")
    assert [(r["pod"], r["logs"]) for r in records] == [("debugged", None), ("debugged-2", "fine\n")]
    assert records[0]["error"].startswith(f"pod {NS}/debugged: permission denied: grant 'get' on 'pods/log'")
    assert records[0]["error"].endswith("API server said: refused ********")
    assert_hidden([TOKEN], json.dumps(records), *display.warnings)


# --------------------------------------------------------------------------- TLS


def test_the_right_ca_verifies_and_warns_of_nothing(pki: dict[str, Any], module: Any, lookup: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    without_proxies(monkeypatch)
    cluster = FakeCluster()
    cluster.add(load_pod("debugged"))
    with api_server(cluster, cert=pki["server"], tmp_path=tmp_path) as (_server, url):
        result = module("ephemeral_container_info", {"host": url, "api_key": TOKEN, "ca_cert": pki["ca"], "namespace": NS})
        records, display = lookup(namespace=NS, host=url, api_key=TOKEN, ca_cert=pki["ca"], wait_for="none", logs=False)
    assert result["rc"] == 0 and [p["pod"] for p in result["pods"]] == ["debugged"] and result["warnings"] == []
    assert [r["pod"] for r in records] == ["debugged"] and display.warnings == []


@pytest.mark.parametrize(
    ("case", "why"),
    [
        ("another CA", "unable to get local issuer certificate"),
        # The certificate names 127.0.0.1 only; the server listens on 127.0.0.2 (loopback too).
        ("another address", "IP address mismatch, certificate is not valid for '127.0.0.2'"),
    ],
)
def test_an_unverified_server_fails_at_once_saying_what_to_set(
    case: str, why: str, pki: dict[str, Any], module: Any, lookup: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    without_proxies(monkeypatch)
    cluster = FakeCluster()
    cluster.add(load_pod("debugged"))
    ca, address = (pki["other_ca"], "127.0.0.1") if case == "another CA" else (pki["ca"], "127.0.0.2")
    with api_server(cluster, address=address, cert=pki["server"], tmp_path=tmp_path) as (server, url):
        add = {"namespace": NS, "label_selector": "a=b", "container": "x", "image": IMAGE}
        result = module("ephemeral_container", {"host": url, "api_key": TOKEN, "ca_cert": ca, **add})
        module_connections = server.connections
        error, _display = lookup(namespace=NS, host=url, api_key=TOKEN, ca_cert=ca)
        lookup_connections = server.connections - module_connections
    expected = (
        f"the TLS certificate of the API server {url} could not be verified ({why}): set ca_cert (K8S_AUTH_SSL_CA_CERT) "
        "or the kubeconfig cluster's certificate-authority to the CA that signed the API server's certificate, and connect "
        "with a host name or address that the certificate names. validate_certs: false would turn verification off"
    )
    assert result["rc"] == 1 and result["msg"].startswith(expected), result["msg"]
    assert isinstance(error, AnsibleLookupError) and str(error).startswith("ephemeral_results: " + expected), error
    assert cluster.requests == []  # no request got through
    # One attempt of ours; at most urllib3's own retries of the handshake (Retry(3) by default), where
    # retrying like an unreachable server would make 5 attempts of 4 handshakes each.
    print(f"TLS handshakes: module {module_connections}, lookup {lookup_connections}")
    assert 1 <= module_connections <= 4 and 1 <= lookup_connections <= 4


@pytest.mark.stress
@pytest.mark.parametrize("how", ["validate_certs: false", "insecure-skip-tls-verify"])
def test_unverified_tls_warns_once_per_task_whatever_the_number_of_pods_and_threads(
    how: str, pki: dict[str, Any], module: Any, lookup: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    without_proxies(monkeypatch)
    pods = size(8, 100)
    print(f"pods: {pods}")
    cluster = FakeCluster()
    base = load_pod("plain")
    for i in range(pods):
        pod = json.loads(json.dumps(base))
        pod["metadata"]["name"] = f"web-{i}"
        cluster.add(pod)
    with api_server(cluster, cert=pki["server"], tmp_path=tmp_path) as (_server, url):
        if how == "validate_certs: false":
            options: dict[str, Any] = {"host": url, "api_key": TOKEN, "validate_certs": False}
        else:
            options = {"kubeconfig": kubeconfig(url, {"token": TOKEN}, **{"insecure-skip-tls-verify": True})}
        with warnings.catch_warnings(record=True) as python_warnings:
            warnings.simplefilter("always")  # urllib3 warns on every unverified request unless silenced
            result = module(
                "ephemeral_container",
                {**options, "namespace": NS, "label_selector": "app=plain", "container": "debug", "image": IMAGE, "parallel": 8, "wait": "none"},
            )
            records, display = lookup(namespace=NS, label_selector="app=plain", container="debug", wait_for="none", logs=False, parallel=8, **options)
    warning = f"TLS certificate verification of the API server {url} is off"
    assert result["rc"] == 0 and result["summary"]["added"] == pods
    assert isinstance(records, list), records
    assert len(records) == pods
    assert [w for w in result["warnings"] if warning in w] == [result["warnings"][0]] and len(result["warnings"]) == 1, result["warnings"]
    assert len(display.warnings) == 1 and display.warnings[0].startswith("ephemeral_results: " + warning), display.warnings
    assert "Give the API server's CA with ca_cert (K8S_AUTH_SSL_CA_CERT)" in display.warnings[0]
    requests = len(cluster.requests)
    insecure = [w for w in python_warnings if issubclass(w.category, InsecureRequestWarning)]
    print(f"requests: {requests}, urllib3 InsecureRequestWarnings shown: {len(insecure)}")
    # One LIST, the preflights' GET of the pods' node and LIST of the pods on it, and a PATCH per pod (in 8 threads)
    # for the module, one LIST for the lookup: one warning each.
    assert requests == pods + 4 and insecure == []


def test_the_tls_warning_masks_a_password_in_the_host_url(
    pki: dict[str, Any], module: Any, lookup: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    without_proxies(monkeypatch)
    cluster = FakeCluster()
    cluster.add(load_pod("debugged"))
    with api_server(cluster, cert=pki["server"], tmp_path=tmp_path) as (_server, url):
        host = url.replace("https://", "https://jane:h0st-url-password@")
        options = {"host": host, "api_key": TOKEN, "validate_certs": False}
        result = module("ephemeral_container_info", {**options, "namespace": NS})
        records, display = lookup(namespace=NS, wait_for="none", logs=False, **options)
    assert result["rc"] == 0 and [r["pod"] for r in records] == ["debugged"]
    masked = url.replace("https://", "https://jane:********@")
    assert result["warnings"] == [w for w in result["warnings"] if masked in w] and len(result["warnings"]) == 1
    assert len(display.warnings) == 1 and masked in display.warnings[0]
    assert_hidden(["h0st-url-password"], json.dumps(result), *display.warnings)
