"""The module and the lookup through the fault proxy (tests/faultproxy.py), in front of the real kube-apiserver.

Two ways through TLS:

* ``http`` mode ends TLS at the proxy: it presents a certificate for 127.0.0.1 from a CA
  made for the test (the kubeconfig the play uses trusts only that CA) and reaches the
  API server with the cluster's own CA and client certificate. So it can answer a PATCH
  with 429 and Retry-After itself, or reset the connection once the API server has
  applied a PATCH.
* ``tcp`` mode passes TLS through untouched: the client verifies the API server's own
  certificate (its names include 127.0.0.1), and connections are reset, stalled or cut.

The cluster is read back directly (not through the proxy, not through the module) to
confirm that every pod ended with exactly one debug container, and that nothing was lost.
"""

from __future__ import annotations

import ssl
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from ansible_collections.kubedebug.ephemeral.tests.faultproxy import Fault, FaultProxy
from ansible_collections.kubedebug.ephemeral.tests.pki import CertificateAuthority
from ansible_collections.kubedebug.ephemeral.tests.sizes import size

from kubehelpers import Cluster, cri_log, make_pod, patch_ephemeral, run_lookup, run_task, serve_logs, wait_for

MODULE = "kubedebug.ephemeral.ephemeral_container"
DEBUG_IMAGE = "docker.io/library/busybox:1.36"
PATCH = r"/ephemeralcontainers$"


# --------------------------------------------------------------------------- TLS for the proxy


@pytest.fixture(scope="module")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA made for these tests, and a certificate it signed for 127.0.0.1 (what the proxy presents).

    tests/pki.py's, whose certificates carry the key identifiers that Python >= 3.13 verifies strictly.
    """
    directory = tmp_path_factory.mktemp("proxy-ca")
    authority = CertificateAuthority("kubedebug fault proxy test CA")
    (directory / "ca.crt").write_bytes(authority.cert_pem)
    cert, key = authority.server("127.0.0.1").write(directory, "proxy")
    return {"ca": directory / "ca.crt", "cert": cert, "key": key}


def cluster_access(cluster: Cluster) -> dict[str, Any]:
    """The API server's address, CA and client certificate, from the cluster's kubeconfig (files, as kwokctl writes them)."""
    config = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    server = config["clusters"][0]["cluster"]
    user = config["users"][0]["user"]
    url = urlsplit(server["server"])
    assert url.hostname == "127.0.0.1", "the proxy forwards to loopback only"
    return {"address": (url.hostname, url.port), "ca": server["certificate-authority"], "cert": user["client-certificate"], "key": user["client-key"]}


def proxy_kubeconfig(path: Path, url: str, ca: str, user: dict[str, str]) -> str:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "proxied", "cluster": {"server": url, "certificate-authority": ca}}],
        "users": [{"name": "proxied", "user": user}],
        "contexts": [{"name": "proxied", "context": {"cluster": "proxied", "user": "proxied"}}],
        "current-context": "proxied",
    }
    path.write_text(yaml.safe_dump(config))
    return str(path)


@pytest.fixture
def tls_proxy(cluster: Cluster, test_ca: dict[str, Path], tmp_path: Path) -> Iterator[Any]:
    """``tls_proxy(*faults)`` -> (proxy, kubeconfig): the proxy ends TLS and acts per request."""
    access = cluster_access(cluster)
    proxies: list[FaultProxy] = []

    def start(*faults: Fault) -> tuple[FaultProxy, str]:
        server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_context.load_cert_chain(test_ca["cert"], test_ca["key"])
        upstream_context = ssl.create_default_context(cafile=access["ca"])
        upstream_context.load_cert_chain(access["cert"], access["key"])
        proxy = FaultProxy(
            access["address"], mode="http", faults=list(faults), server_context=server_context, upstream_context=upstream_context, lifetime=600
        ).start()
        proxies.append(proxy)
        # No credentials: the proxy authenticates to the API server with the cluster's client certificate.
        return proxy, proxy_kubeconfig(tmp_path / f"proxy-{len(proxies)}.yaml", proxy.url, str(test_ca["ca"]), {})

    yield start
    for proxy in proxies:
        proxy.stop()


@pytest.fixture
def tcp_proxy(cluster: Cluster, tmp_path: Path) -> Iterator[Any]:
    """``tcp_proxy(*faults)`` -> (proxy, kubeconfig): TLS passes through, faults hit connections."""
    access = cluster_access(cluster)
    proxies: list[FaultProxy] = []

    def start(*faults: Fault) -> tuple[FaultProxy, str]:
        proxy = FaultProxy(access["address"], mode="tcp", faults=list(faults), tls_passthrough=True, lifetime=600).start()
        proxies.append(proxy)
        user = {"client-certificate": access["cert"], "client-key": access["key"]}
        return proxy, proxy_kubeconfig(tmp_path / f"tcp-{len(proxies)}.yaml", proxy.url, access["ca"], user)

    yield start
    for proxy in proxies:
        proxy.stop()


# --------------------------------------------------------------------------- pods


def kwok_pods(cluster: Cluster, namespace: str, count: int) -> list[str]:
    """``count`` pods on the simulated nodes, labelled app=fleet, all Running."""
    names = [f"fleet-{i:03d}" for i in range(count)]
    for name in names:
        pod = make_pod(name, [{"name": "app", "image": "registry.k8s.io/pause:3.10"}], metadata={"labels": {"app": "fleet"}})
        cluster.core.create_namespaced_pod(namespace, pod)
    wait_for(
        f"{count} pods Running in {namespace}",
        lambda: sum(p.status.phase == "Running" for p in cluster.core.list_namespaced_pod(namespace).items) == count,
        timeout=300,
        interval=1,
    )
    return names


def debug_containers(cluster: Cluster, namespace: str) -> dict[str, list[str]]:
    """What the API server stores, read directly: each pod's ephemeral container names."""
    return {p.metadata.name: [c.name for c in p.spec.ephemeral_containers or []] for p in cluster.core.list_namespaced_pod(namespace).items}


# --------------------------------------------------------------------------- tests


@pytest.mark.stress
def test_throttled_and_reset_patches_add_each_container_once(cluster: Cluster, namespace: str, tmp_path: Path, tls_proxy: Any) -> None:
    count = size(20, 200)
    throttled = count // 2
    lost = max(2, count // 10)
    print(f"{count} pods, {throttled} PATCHes answered 429, {lost} PATCH answers reset after the API server applied them")
    names = kwok_pods(cluster, namespace, count)
    proxy, kubeconfig = tls_proxy(
        # Every other PATCH (a retry, mostly, gets through), and every fifth of the rest reset once applied.
        Fault("throttle", times=throttled, every=2, method="PATCH", path=PATCH, seconds=1, apf=True),
        Fault("reset", times=lost, every=5, method="PATCH", path=PATCH, after=True),
        Fault("watch_gone", times=1),
    )
    started = time.monotonic()
    result = run_task(
        tmp_path,
        MODULE,
        {
            "kubeconfig": kubeconfig,
            "namespace": namespace,
            "label_selector": "app=fleet",
            "container": "debug",
            "image": DEBUG_IMAGE,
            "command": ["sleep", "3600"],
            "wait": "running",
            "wait_timeout": 180,
            "request_timeout": 15,
        },
    )
    elapsed = time.monotonic() - started
    seen = Counter((r["method"], r["fault"], r["status"]) for r in proxy.requests())
    print(f"through the proxy (method, fault, status): {dict(seen)}")
    assert result.get("failed") is not True, result.get("msg")
    api = result["api"]
    patches = proxy.requests("PATCH", PATCH)
    print(f"api={api}; PATCH requests through the proxy: {len(patches)}; faults applied: {proxy.applied()}; task took {elapsed:.1f}s")
    assert result["summary"]["added"] == count
    assert proxy.applied("throttle") == throttled and proxy.applied("reset") == lost
    assert api["throttled"] == throttled
    assert api["retries"] >= throttled + lost
    # Each throttled PATCH was sent again; a PATCH whose answer was lost was not (the pod, read again, had the container).
    assert len(patches) == count + throttled
    assert all(p["status"] in (200, 429) for p in patches)
    stored = debug_containers(cluster, namespace)
    duplicates = {pod: containers for pod, containers in stored.items() if containers.count("debug") != 1}
    assert duplicates == {}, f"pods without exactly one debug container: {duplicates}"
    assert sorted(stored) == names


@pytest.mark.stress
def test_lookup_collects_everything_through_resets_and_stalls(cluster: Cluster, namespace: str, tmp_path: Path, tcp_proxy: Any) -> None:
    count = size(10, 100)
    print(f"{count} pods; connections reset at once, cut mid-stream and stalled")
    names = kwok_pods(cluster, namespace, count)
    log_file = tmp_path / "collect.log"
    log_file.write_text(cri_log('{"ok": true}\n{"step": 2}'))
    for name in names:
        serve_logs(cluster, namespace, name, "collect", log_file)
        spec = {"name": "collect", "image": DEBUG_IMAGE, "command": ["true"], "env": [{"name": "KWOK_EXIT_CODE", "value": "0"}]}
        patch_ephemeral(cluster, namespace, name, [spec])
    terms = [f"{namespace}/{name}" for name in names]
    options = {"container": "collect", "parse": "json_lines", "wait_for": "terminated", "wait_timeout": 120, "request_timeout": 3}

    direct = run_lookup(tmp_path, terms, {**options, "kubeconfig": cluster.kubeconfig})
    assert direct.get("failed") is not True, direct.get("msg")
    expected = [{k: v for k, v in r.items() if k != "api"} for r in direct["ansible_facts"]["records"]]
    assert [r["output"] for r in expected] == [[{"ok": True}, {"step": 2}]] * count

    proxy, kubeconfig = tcp_proxy(
        Fault("reset", times=3),  # reset as soon as connected
        Fault("stall", times=2, seconds=60),  # accepted, never answered: the TLS handshake times out
        Fault("truncate", times=2, nbytes=3000),  # cut after 3000 bytes from the server
    )
    started = time.monotonic()
    result = run_lookup(tmp_path, terms, {**options, "kubeconfig": kubeconfig})
    elapsed = time.monotonic() - started
    assert result.get("failed") is not True, result.get("msg")
    records = result["ansible_facts"]["records"]
    api = records[0]["api"]
    print(f"api={api}; connections: {proxy.connections}; faults applied: {proxy.applied()}; lookup took {elapsed:.1f}s")
    assert [{k: v for k, v in r.items() if k != "api"} for r in records] == expected  # nothing lost, nothing different
    assert proxy.applied("reset") == 3 and proxy.applied("stall") == 2
    assert api["retries"] >= 5
    assert api["timeouts"] >= 2  # the stalls, each over after request_timeout
