"""Every recipe role's round trip, for real, on the real node.

Nothing here is simulated: no log is served from a file and no exit code is handed to a
simulated kubelet. Each test runs a role the way a user does (``include_role`` in a play,
through ``ansible-playbook``), and what comes back is what really happened:

* the cluster: kube-apiserver, etcd, kube-controller-manager and kube-scheduler, and the
  node kd-real-node (hack/node.sh) with its kubelet, containerd and runc. The debug
  containers are real ephemeral containers that the kubelet starts next to the pod's
  containers (in the target container's PID namespace where the role targets one, always in
  the pod's network namespace), and their logs, states and exit codes are the kubelet's;
* the images: the kd.local/* images built on this machine (hack/images) and imported into
  the node's containerd. The targets are distroless-style (kd.local/server:1 has nothing but
  /server; the JVM and Python images have no shell), so everything the recipes run comes
  from the debug image (kd.local/busybox:1.35, or kd.local/debug:1 for tcpdump, jattach and
  py-spy);
* the processes the recipes look at: the Go HTTP server, a deadlocked OpenJDK 17
  (thread dump and heap histogram with jattach) and a CPython 3.11 (stack dump with py-spy);
* the network: pods have their own network namespaces on the node's bridge (10.244.0.0/24);
  names resolve through the node's resolver, a dnsmasq kept in step with the cluster's
  Services (hack/node-dns-sync.sh). There is no kube-proxy, so Services are headless. The only
  traffic a test sends itself goes from this host to a pod IP on the bridge (capture).

The KWOK-based versions of these round trips (test_roles.py) remain for what a real node
cannot produce on demand.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from kubehelpers import (
    BUSYBOX_IMAGE,
    DEBUG_IMAGE_REAL,
    JVM_IMAGE,
    PYTHON_IMAGE,
    REAL_NODE,
    SERVER_IMAGE,
    Cluster,
    include_role,
    real_pod,
    recipe_lines,
    run_tasks,
    wait_for,
)

pytestmark = [pytest.mark.real_node, pytest.mark.usefixtures("real_node")]


def server(name: str = "app", *extra_args: str) -> dict[str, Any]:
    return {"name": name, "image": SERVER_IMAGE, "args": ["-listen", ":8080", *extra_args]}


def sleeper(name: str = "sh") -> dict[str, Any]:
    return {"name": name, "image": BUSYBOX_IMAGE, "command": ["sleep", "3600"]}


def node_ip(cluster: Cluster) -> str:
    """The real node's address on the pod bridge: the pods' gateway and resolver."""
    return next(a.address for a in cluster.core.read_node(REAL_NODE).status.addresses if a.type == "InternalIP")


def headless_service(cluster: Cluster, namespace: str, name: str, selector: dict[str, str]) -> None:
    cluster.core.create_namespaced_service(
        namespace,
        client.V1Service(
            metadata=client.V1ObjectMeta(name=name),
            spec=client.V1ServiceSpec(cluster_ip="None", selector=selector, ports=[client.V1ServicePort(port=8080)]),
        ),
    )


def wait_resolves(cluster: Cluster, namespace: str, probe_pod: str, name: str, address: str) -> None:
    """Wait until the node's resolver answers ``name`` with ``address``, asked from inside a pod (it follows the Service's
    endpoints a moment behind), so that the role under test does not race it."""

    def answered() -> bool:
        out = cluster.kubectl_run("exec", "-n", namespace, probe_pod, "--", "nslookup", name, check=False).stdout
        return address in out

    wait_for(f"{name} to resolve to {address} in the pod network", answered, timeout=60, interval=1)


def wait_logged(cluster: Cluster, namespace: str, pod: str, container: str, text: str) -> str:
    """Wait until the container's real log holds ``text`` (the program says it is ready)."""

    def logged() -> str | None:
        log = cluster.core.read_namespaced_pod_log(pod, namespace, container=container)
        return log if text in log else None

    return wait_for(f"{namespace}/{pod} {container} to log {text!r}", logged, timeout=90, interval=0.5)


def only(records: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(records) == 1, records
    return records[0]


def assert_finished_on_the_real_node(record: dict[str, Any], container: str) -> None:
    assert (record["node"], record["container"], record["state"], record["exit_code"]) == (
        REAL_NODE,
        container,
        "terminated",
        0,
    ), record
    assert record["parse_error"] is None and record["output"], record
    # Every recipe runs bounded, and says so first: at niceness 10 (read by the script itself), for 100 s (capture: 360).
    bounds = record["output"][0]["bounds"]
    assert (bounds["nice"], bounds["niceness"], bounds["time_limit"]) == (10, 10, 360 if "capture" in container else 100), bounds
    assert bounds["nice_by"] in ("nice", "renice") and bounds["time_limit_by"] in ("timeout", "watchdog"), bounds


# --- dns ----------------------------------------------------------------------------------


def test_dns_role_asks_the_pod_networks_resolver(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    web = real_pod(cluster, namespace, "web", [server()], metadata={"labels": {"app": "web"}})
    headless_service(cluster, namespace, "web", {"app": "web"})
    real_pod(cluster, namespace, "probe", [sleeper()])
    found, missing = f"web.{namespace}.svc.cluster.local", f"nope.{namespace}.svc.cluster.local"
    wait_resolves(cluster, namespace, "probe", found, web.status.pod_ip)

    # In the distroless pod itself: the debug container brings nslookup, the pod brings its resolv.conf.
    tasks = include_role(
        cluster, "dns", dns_namespace=namespace, dns_pod="web", dns_run_id="real1", dns_image=BUSYBOX_IMAGE,
        dns_names=[found, missing],
    )  # fmt: skip
    got = run_tasks(tmp_path, tasks, "{'results': dns_results, 'summary': dns_summary}")

    record = only(got["results"])
    assert_finished_on_the_real_node(record, "kd-dns-real1")
    resolv, hit, miss, summary = recipe_lines(record["output"])
    # The kubelet's resolv.conf: the node's resolver and the namespace's search domains.
    assert (resolv["check"], resolv["ok"]) == ("resolv_conf", True)
    assert resolv["nameservers"] == [node_ip(cluster)]
    assert resolv["search"][0] == f"{namespace}.svc.cluster.local"
    # The headless Service's name is the server pod's real IP.
    assert (hit["check"], hit["target"], hit["ok"], hit["tool"]) == ("resolve", found, True, "nslookup"), hit
    assert hit["addresses"] == [web.status.pod_ip]
    # A name nobody registered: the resolver says NXDOMAIN.
    assert (miss["target"], miss["ok"], miss["addresses"]) == (missing, False, []), miss
    assert "NXDOMAIN" in miss["detail"], miss
    assert summary == {"check": "summary", "target": "dns", "ok": False, "detail": "1 of 2 names resolved"}
    assert (got["summary"]["checks"], got["summary"]["failed_checks"]) == (4, 1)


# --- network ------------------------------------------------------------------------------


def test_network_role_checks_a_real_server(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    # The server (HTTP on 8080, a bare TCP listener on 9000) and a client pod; the role runs in both (a selector).
    web = real_pod(cluster, namespace, "web", [server("app", "-tcp", "9000")], metadata={"labels": {"app": "web", "kd-check": "net"}})
    real_pod(cluster, namespace, "client", [sleeper()], metadata={"labels": {"kd-check": "net"}})
    headless_service(cluster, namespace, "web", {"app": "web"})
    name, ip = f"web.{namespace}.svc.cluster.local", web.status.pod_ip
    wait_resolves(cluster, namespace, "client", name, ip)
    checks = [
        f"http://{ip}:8080/",  # 200 "ok"
        f"http://{name}:8080/status/503",  # the server answers 503
        f"tcp:{name}:9000",  # open
        f"tcp:{ip}:9001",  # nothing listens: refused
    ]

    tasks = include_role(
        cluster, "network", network_namespace=namespace, network_label_selector="kd-check=net", network_run_id="real1",
        network_image=BUSYBOX_IMAGE, network_checks=checks,
    )  # fmt: skip
    got = run_tasks(tmp_path, tasks, "{'results': network_results, 'summary': network_summary}")

    records = {r["pod"]: r for r in got["results"]}
    assert set(records) == {"client", "web"}
    for pod, record in records.items():
        assert_finished_on_the_real_node(record, "kd-network-real1")
        by = {(c["check"], c["target"]): c for c in recipe_lines(record["output"])}
        ok_200 = by["http", checks[0]]
        assert (ok_200["ok"], ok_200["status"], ok_200["detail"]) == (True, 200, "HTTP 200"), (pod, ok_200)
        failing = by["http", checks[1]]
        assert (failing["ok"], failing["status"], failing["detail"]) == (False, 503, "HTTP 503"), (pod, failing)
        assert by["tcp", f"{name}:9000"]["ok"] is True, (pod, by["tcp", f"{name}:9000"])
        closed = by["tcp", f"{ip}:9001"]
        assert closed["ok"] is False and "refused" in closed["detail"].lower(), (pod, closed)
        assert record["output"][-1] == {"check": "summary", "target": "network", "ok": False, "detail": "2 of 4 checks passed"}
        # What the pod's own network namespace shows: its address on the bridge and its listening sockets.
        addresses = [a for i in by["interfaces", "/proc/net/dev"]["interfaces"] for a in i["addresses"]]
        pod_ip = cluster.core.read_namespaced_pod(pod, namespace).status.pod_ip
        assert f"{pod_ip}/24" in addresses, (pod, addresses)
        ports = {s["port"] for s in by["listening", "/proc/net/tcp"]["sockets"]}
        if pod == "web":
            assert {8080, 9000} <= ports, ports
        else:
            assert not ports & {8080, 9000}, ports
    assert (got["summary"]["pods"], got["summary"]["failed_checks"]) == (2, 4)


# --- processes and filesystem on a distroless target ---------------------------------------------

# /etc/passwd of kd.local/server:1 (hack/images/build_images.py: build_server, base_accounts("/sbin/nologin")).
# The debug images' /etc/passwd differs (root's shell is /bin/sh there): reading it proves whose file was read.
SERVER_PASSWD = (
    b"root:x:0:0:root:/root:/sbin/nologin\n"
    b"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
    b"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
)


def test_processes_and_filesystem_roles_on_a_distroless_target(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    real_pod(cluster, namespace, "api", [server("api")])
    common = {"namespace": namespace, "pod": "api", "run_id": "real1", "image": BUSYBOX_IMAGE}
    fetched = tmp_path / "fetched"
    tasks = include_role(cluster, "processes", **{f"processes_{k}": v for k, v in common.items()}) + include_role(
        cluster, "filesystem", **{f"filesystem_{k}": v for k, v in common.items()},
        filesystem_paths=["/etc/passwd", "/"], filesystem_fetch_dir=str(fetched),
    )  # fmt: skip
    got = run_tasks(tmp_path, tasks, "{'processes': processes_results, 'filesystem': filesystem_results}")

    proc = only(got["processes"])
    assert_finished_on_the_real_node(proc, "kd-processes-real1")
    assert proc["target_container"] == "api"
    *processes, summary = recipe_lines(proc["output"])
    # Exactly the target's one process, the server as its image's user; the recipe's own sh and its children are left out.
    assert [(p["pid"], p["name"], p["cmdline"], p["uid"]) for p in processes] == [
        (1, "server", ["/server", "-listen", ":8080"], 65532)
    ], processes
    [srv] = processes
    assert srv["ok"] is True and srv["threads"] >= 1 and srv["open_fds"] >= 3  # SYS_PTRACE lets root list its fds
    assert isinstance(srv["max_open_files"], int) and srv["rss_kb"] > 0
    assert summary == {"check": "summary", "target": "processes", "ok": True, "detail": "1 processes", "count": 1}

    fs = only(got["filesystem"])
    assert_finished_on_the_real_node(fs, "kd-filesystem-real1")
    by = {(c["check"], c["target"]): c for c in recipe_lines(fs["output"])}
    passwd = by["file", "/etc/passwd"]
    assert (passwd["ok"], passwd["resolved"], passwd["size"], passwd["mode"], passwd["truncated"]) == (
        True, "/etc/passwd", len(SERVER_PASSWD), "0644", False
    ), passwd  # fmt: skip
    assert passwd["sha256"] == hashlib.sha256(SERVER_PASSWD).hexdigest()
    assert base64.b64decode(passwd["content_base64"]) == SERVER_PASSWD
    # The role wrote it on the controller, byte for byte.
    assert (fetched / namespace / "api" / "etc" / "passwd").read_bytes() == SERVER_PASSWD
    # The target's root (through /proc/1/root): /server is there, the debug image's /bin is not.
    root = by["dir", "/"]
    assert {"etc", "server", "tmp"} <= set(root["entries"]) and "bin" not in root["entries"], root
    overlay = by["disk_usage", "/"]
    assert overlay["fstype"] == "overlay" and overlay["size_kb"] > 0, overlay
    assert fs["output"][-1]["pid"] == 1


# --- jvm and python: attaching to the real process of the target container ------------------


def test_jvm_role_dumps_the_deadlocked_jvm_with_jattach(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    # The JVM is the pod's second container; a sidecar comes first, so the role must be told the target.
    real_pod(cluster, namespace, "orders", [server("sidecar"), {"name": "orders", "image": JVM_IMAGE}])
    wait_logged(cluster, namespace, "orders", "orders", "kd jvm-app started")

    tasks = include_role(
        cluster, "jvm", jvm_namespace=namespace, jvm_pod="orders", jvm_run_id="real1", jvm_image=DEBUG_IMAGE_REAL,
        jvm_target_container="orders",
    )  # fmt: skip
    got = run_tasks(tmp_path, tasks, "{'results': jvm_results, 'summary': jvm_summary}")

    record = only(got["results"])
    assert_finished_on_the_real_node(record, "kd-jvm-real1")
    assert record["target_container"] == "orders"
    dump, histogram, summary = recipe_lines(record["output"])
    # The debug image has jattach and no JDK: the recipe falls back to it. The JVM is pid 1 of its container.
    assert (dump["check"], dump["target"], dump["tool"]) == ("thread_dump", "1", "jattach"), dump["detail"]
    assert (dump["ok"], dump["deadlocks"], dump["truncated"]) == (False, 1, False), dump["detail"]
    assert "1 deadlock(s) found" in dump["detail"]
    assert "Found one Java-level deadlock:" in dump["dump"]
    for thread in ("kd-deadlock-a", "kd-deadlock-b", "kd-lock-holder"):
        assert f'"{thread}"' in dump["dump"], thread
    assert dump["threads"] >= 4
    assert (histogram["check"], histogram["target"], histogram["ok"], histogram["tool"]) == (
        "heap_histogram", "1", True, "jattach"
    ), histogram["detail"]  # fmt: skip
    rows = {row["class"]: row for row in histogram["top"]}
    assert rows["KdPayload"]["instances"] == 400_000, histogram["top"]
    assert summary == {"check": "summary", "target": "jvm", "ok": False, "detail": "1 JVMs", "count": 1}
    assert (got["summary"]["checks"], got["summary"]["failed_checks"]) == (3, 1)  # the deadlock


def test_python_role_dumps_the_real_python_stack(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    real_pod(cluster, namespace, "worker", [{"name": "worker", "image": PYTHON_IMAGE}])
    wait_logged(cluster, namespace, "worker", "worker", "kd python-app started")

    tasks = include_role(
        cluster, "python", python_namespace=namespace, python_pod="worker", python_run_id="real1",
        python_image=DEBUG_IMAGE_REAL,
    )  # fmt: skip
    got = run_tasks(tmp_path, tasks, "{'results': python_results, 'summary': python_summary}")

    record = only(got["results"])
    assert_finished_on_the_real_node(record, "kd-python-real1")
    dump, summary = recipe_lines(record["output"])
    assert (dump["check"], dump["target"], dump["tool"], dump["ok"]) == ("stack_dump", "1", "py-spy", True), dump["detail"]
    [thread] = dump["threads"]
    frames = thread["frames"]
    # Innermost first: app.py's main -> kd_outer -> kd_inner, under the module's own frame.
    assert [f["function"] for f in frames] == ["kd_inner", "kd_outer", "main", "<module>"], frames
    assert {f["file"] for f in frames} == {"/app/app.py"}
    assert summary == {"check": "summary", "target": "python", "ok": True, "detail": "1 Python processes", "count": 1}


# --- capture ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TcpPacket:
    src: str
    dst: str
    sport: int
    dport: int
    payload: bytes


def read_pcap(data: bytes) -> tuple[int, list[TcpPacket]]:
    """The number of records of a classic pcap file and its IPv4 TCP packets (Ethernet or Linux cooked capture v1/v2)."""
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        order = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        order = ">"
    else:
        raise AssertionError(f"not a pcap file: magic {magic.hex()}")
    linktype = struct.unpack(order + "I", data[20:24])[0] & 0x0FFFFFFF
    offset, records, packets = 24, 0, []
    while offset < len(data):
        _sec, _frac, length, _orig = struct.unpack(order + "IIII", data[offset : offset + 16])
        frame = data[offset + 16 : offset + 16 + length]
        assert len(frame) == length, f"record {records} is cut short"
        offset += 16 + length
        records += 1
        if linktype == 1:  # Ethernet
            ethertype, ip = int.from_bytes(frame[12:14], "big"), frame[14:]
        elif linktype == 113:  # Linux cooked v1 ("any")
            ethertype, ip = int.from_bytes(frame[14:16], "big"), frame[16:]
        elif linktype == 276:  # Linux cooked v2
            ethertype, ip = int.from_bytes(frame[0:2], "big"), frame[20:]
        else:
            raise AssertionError(f"link type {linktype} is not one this test reads")
        if ethertype != 0x0800 or len(ip) < 20 or ip[9] != 6:
            continue
        tcp = ip[(ip[0] & 0x0F) * 4 : int.from_bytes(ip[2:4], "big")]
        sport, dport = struct.unpack("!HH", tcp[:4])
        packets.append(TcpPacket(socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20]), sport, dport, tcp[(tcp[12] >> 4) * 4 :]))
    return records, packets


AGENT = "kd-capture-test"


@contextmanager
def http_requests(address: str, port: int) -> Iterator[list[int]]:
    """GET / on a pod IP, again and again (a short pause between), until the block ends; yields the statuses seen."""
    stop, statuses = threading.Event(), []

    def loop() -> None:
        while not stop.is_set():
            conn = http.client.HTTPConnection(address, port, timeout=5)
            try:
                conn.request("GET", "/", headers={"User-Agent": AGENT})
                statuses.append(conn.getresponse().status)
            except OSError:
                statuses.append(0)
            finally:
                conn.close()
            stop.wait(0.25)

    worker = threading.Thread(target=loop, daemon=True)
    worker.start()
    try:
        yield statuses
    finally:
        stop.set()
        worker.join(10)


def test_capture_role_records_real_traffic_to_the_pod(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    web = real_pod(cluster, namespace, "web", [server()])
    ip, host = web.status.pod_ip, node_ip(cluster)  # this host reaches the pod from the bridge's address
    dest = tmp_path / "pcaps"
    tasks = include_role(
        cluster, "capture", capture_namespace=namespace, capture_pod="web", capture_run_id="real1",
        capture_image=DEBUG_IMAGE_REAL, capture_duration=5, capture_count=400, capture_filter="tcp port 8080",
        capture_dest_dir=str(dest), capture_wait_timeout=120,
    )  # fmt: skip
    with http_requests(ip, 8080) as statuses:
        got = run_tasks(tmp_path, tasks, "{'results': capture_results, 'summary': capture_summary}")
    assert statuses and set(statuses) == {200}, statuses

    record = only(got["results"])
    assert_finished_on_the_real_node(record, "kd-capture-real1")
    captured, summary = recipe_lines(record["output"])
    assert (captured["check"], captured["target"], captured["ok"], captured["filter"]) == ("capture", "any", True, "tcp port 8080"), captured["detail"]
    assert summary["ok"] is True
    # The pcap landed on the controller, and it is the one the debug container took.
    pcap = dest / namespace / "web.pcap"
    data = pcap.read_bytes()
    assert hashlib.sha256(data).hexdigest() == captured["sha256"] and len(data) == captured["size"]
    assert data == base64.b64decode(captured["pcap_base64"])
    assert record["pcap"] == {"path": str(pcap), "size": len(data), "sha256": captured["sha256"]}
    # What is in it: this host's requests to the server's port, and the server's answers.
    records, packets = read_pcap(data)
    assert records == captured["packets"] > 0
    requests = [p for p in packets if (p.src, p.dst, p.dport) == (host, ip, 8080)]
    assert requests and len(requests) + len([p for p in packets if (p.src, p.dst, p.sport) == (ip, host, 8080)]) == records
    assert any(p.payload.startswith(b"GET / HTTP/1.1\r\n") and AGENT.encode() in p.payload for p in requests)


# --- incident_snapshot -----------------------------------------------------------------------

# Crashes on its first boot only (a marker in an emptyDir, which outlives the container), then keeps running: the
# restarted container is running when the snapshot is taken, so its current and previous logs are two boots.
CRASH_ONCE = (
    'echo "boot-$(cat /proc/sys/kernel/random/uuid)"; '
    "if [ ! -e /state/crashed ]; then touch /state/crashed; echo 'crashing with exit 3'; sleep 2; exit 3; fi; "
    "exec sleep 3600"
)


def test_incident_snapshot_of_a_pod_that_really_restarted(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    container = {
        "name": "app", "image": BUSYBOX_IMAGE, "command": ["sh", "-c", CRASH_ONCE],
        "volumeMounts": [{"name": "state", "mountPath": "/state"}],
    }  # fmt: skip
    real_pod(cluster, namespace, "crashy", [container], restartPolicy="Always", volumes=[{"name": "state", "emptyDir": {}}])

    def restarted() -> Any:
        [status] = cluster.core.read_namespaced_pod("crashy", namespace).status.container_statuses
        terminated = status.last_state.terminated
        return status.restart_count >= 1 and status.state.running and terminated and terminated.exit_code == 3 and status

    status = wait_for("the kubelet to restart crashy's container", restarted, timeout=120, interval=0.5)
    assert status.restart_count == 1
    # What the kubelet serves for both instances, read here to compare with the bundle.
    previous = cluster.core.read_namespaced_pod_log("crashy", namespace, container="app", previous=True)
    current = wait_for(
        "the running container's log", lambda: cluster.core.read_namespaced_pod_log("crashy", namespace, container="app")
    )

    dest = tmp_path / "incidents"
    tasks = include_role(
        cluster, "incident_snapshot", incident_snapshot_namespace=namespace, incident_snapshot_pod="crashy",
        incident_snapshot_reason="INC-7: crashy restarts", incident_snapshot_recipes=["processes", "filesystem"],
        incident_snapshot_debug_image=DEBUG_IMAGE_REAL, incident_snapshot_recipe_vars={"recipe_paths": ["/etc/hostname"]},
        incident_snapshot_dest=str(dest),
    )  # fmt: skip
    got = run_tasks(tmp_path, tasks, "{'bundle': incident_snapshot_bundle}")
    bundle = dest / "inc-7-crashy-restarts"
    assert got["bundle"] == str(bundle)
    report = json.loads((bundle / "report.json").read_text())

    # The snapshot: taken before the recipes added their containers, with both boots' real logs.
    [pod] = report["pods"]
    assert (pod["pod"], pod["node"], pod["phase"], pod["error"]) == ("crashy", REAL_NODE, "Running", None)
    [app] = pod["containers"]
    assert (app["name"], app["restart_count"], app["state"]["status"]) == ("app", 1, "running")
    assert (app["last_termination"]["reason"], app["last_termination"]["exit_code"]) == ("Error", 3)
    logs = pod["logs"]["app"]
    assert (logs["previous"], logs["current"]) == (previous, current)
    first, second = previous.splitlines(), current.splitlines()
    assert len(first) == 2 and first[0].startswith("boot-") and first[1] == "crashing with exit 3", first
    assert len(second) == 1 and second[0].startswith("boot-") and second[0] != first[0], second
    # The kubelet's own events: it started the container twice.
    assert sum(e["count"] for e in pod["events"] if e["reason"] == "Started") == 2, pod["events"]
    row = only(report["summary"])
    assert (row["restarts"], row["last_terminations"], row["ready"]) == (1, ["Error"], True)
    html = (bundle / "report.html").read_text()
    assert first[0] in html and second[0] in html
    # Each recipe says how it was bounded, in the bundle's report; none was stopped.
    md = (bundle / "report.md").read_text()
    assert md.count("Bounds: time limit 100 s (watchdog), niceness 10 (renice).") == 2, md
    assert html.count("<p>Bounds: time limit 100 s (watchdog), niceness 10 (renice).</p>") == 2
    assert row["timed_out_recipes"] == [] and "stopped after" not in md

    # The recipes ran in the restarted container: its one process, and its /etc/hostname (the kubelet's).
    processes = only(report["recipes"]["processes"]["results"])
    assert_finished_on_the_real_node(processes, "kd-processes-inc-7-crashy-restarts")
    assert [(p["pid"], p["cmdline"]) for p in recipe_lines(processes["output"])[:-1]] == [(1, ["sleep", "3600"])]
    filesystem = only(report["recipes"]["filesystem"]["results"])
    assert_finished_on_the_real_node(filesystem, "kd-filesystem-inc-7-crashy-restarts")
    [hostname] = [c for c in recipe_lines(filesystem["output"]) if c["check"] == "file"]
    assert (hostname["ok"], base64.b64decode(hostname["content_base64"])) == (True, b"crashy\n")
    assert (bundle / "files" / namespace / "crashy" / "etc" / "hostname").read_bytes() == b"crashy\n"
    assert row["checks"] == sum(
        len([c for c in recipe_lines(r["output"]) if c["check"] != "summary"]) for r in (processes, filesystem)
    )
    after = cluster.core.read_namespaced_pod("crashy", namespace)
    assert {c.name: c.image for c in after.spec.ephemeral_containers} == {
        "kd-processes-inc-7-crashy-restarts": DEBUG_IMAGE_REAL,  # incident_snapshot_debug_image, for every recipe
        "kd-filesystem-inc-7-crashy-restarts": DEBUG_IMAGE_REAL,
    }
    audit = after.metadata.annotations["debug.kubedebug.io/kd-processes-inc-7-crashy-restarts"]
    assert json.loads(audit)["reason"] == "INC-7: crashy restarts"
