# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A fault-injecting proxy for the tests: between the collection and an API server, on 127.0.0.1 only.

Standard library only; imported as ``ansible_collections.kubedebug.ephemeral.tests.faultproxy``
by the unit tests (in front of tests/unit/fake_apiserver.py) and by the integration tests
(in front of the local cluster's kube-apiserver).

Two modes:

* ``http``: speaks HTTP/1.1 with the client (keep-alive, chunked streams) and sends each
  request on its own connection to the upstream, so it can act per request: answer 429/503
  with ``Retry-After`` itself, reset or stall before or after the upstream got the request,
  delay it, cut its answer short, cut a watch after K events or answer a watch with 410 Gone.
  Either side may speak TLS: ``server_context`` is what the proxy presents to the client (a
  test CA's certificate for 127.0.0.1), ``upstream_context`` how it reaches the upstream
  (that server's CA and the client certificate it wants).
* ``tcp``: copies bytes and acts per connection (reset, stall, latency, truncation after a
  number of bytes); TLS passes through untouched, so the client still verifies the real
  server's certificate (whose names must include 127.0.0.1).

Every fault is bounded: it hits ``times`` requests (or connections), one in ``every`` of
those it matches, after letting ``skip`` pass, and a stall or a delay lasts at most ``seconds``. The proxy itself stops
after ``lifetime`` seconds, whatever happens: a test that forgets it cannot hang on it.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any, BinaryIO
from urllib.parse import parse_qs, urlsplit

HTTP_FAULTS = frozenset({"reset", "stall", "latency", "truncate", "throttle", "watch_cut", "watch_gone"})
TCP_FAULTS = frozenset({"reset", "stall", "latency", "truncate"})
MAX_HEAD = 64 * 1024


@dataclass
class Fault:
    """One fault and which requests (``http``) or connections (``tcp``) it hits.

    ``kind``: ``reset`` (RST instead of an answer), ``stall`` (accept, never answer, close
    after ``seconds``), ``latency`` (``seconds`` before forwarding), ``truncate`` (half the
    answer, then close; ``tcp``: close after ``nbytes`` from the server), ``throttle``
    (answer ``status``, 429 or 503, with ``Retry-After: seconds``; ``apf`` adds the headers of
    API Priority and Fairness), ``watch_cut`` (relay ``events`` watch events, then reset),
    ``watch_gone`` (answer a watch with an ERROR event 410 Gone).

    ``after``: ``reset`` and ``stall`` once the upstream got the request and answered (its
    effect happened, the answer is lost), not before. ``method``, ``path`` (a regex searched
    in the path) and ``watch`` narrow the requests it matches (``http`` only); of those it
    lets ``skip`` pass, then hits one in ``every``, ``times`` times.
    """

    kind: str
    times: int = 1
    skip: int = 0
    every: int = 1
    method: str | None = None
    path: str | None = None
    watch: bool | None = None
    after: bool = False
    seconds: float = 1.0
    status: int = 429
    apf: bool = False
    events: int = 1
    nbytes: int = 0
    seen: int = field(default=0, init=False)
    applied: int = field(default=0, init=False)

    def matches(self, method: str | None, path: str | None, watch: bool | None) -> bool:
        if self.kind.startswith("watch_") and not watch:
            return False
        if self.method is not None and method != self.method:
            return False
        if self.path is not None and (path is None or not re.search(self.path, path)):
            return False
        return self.watch is None or watch == self.watch


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _reset(sock: socket.socket) -> None:
    """Close with a TCP RST (SO_LINGER 0): what a crashed peer or a middlebox dropping the flow looks like."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    _close(sock)


def _close(sock: socket.socket | None) -> None:
    if sock is None:
        return
    try:
        sock.close()
    except OSError:
        pass


def _read_head(stream: BinaryIO) -> bytes | None:
    """One request or response head up to its blank line, or None at the end of the stream."""
    lines = []
    size = 0
    while True:
        line = stream.readline(MAX_HEAD)
        if not line:
            return None if not lines else b"".join(lines)
        if not lines and line in (b"\r\n", b"\n"):
            continue  # tolerated between keep-alive requests
        lines.append(line)
        size += len(line)
        if line in (b"\r\n", b"\n") or size > MAX_HEAD:
            return b"".join(lines)


def _headers(head: bytes) -> tuple[str, list[tuple[str, str]]]:
    first, *rest = head.decode("latin-1").split("\r\n")
    headers = []
    for line in rest:
        if ":" in line:
            name, value = line.split(":", 1)
            headers.append((name.strip(), value.strip()))
    return first, headers


def _get(headers: list[tuple[str, str]], name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name.lower():
            return value
    return None


def _read_chunks(stream: BinaryIO) -> Any:
    """The chunks of a chunked body as they arrive (the trailer is read and dropped)."""
    while True:
        size_line = stream.readline(1024)
        if not size_line:
            raise ConnectionError("chunked body ended without its last chunk")
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while stream.readline(1024) not in (b"\r\n", b"\n", b""):
                pass
            return
        data = stream.read(size)
        stream.readline(2)
        if len(data) < size:
            raise ConnectionError("chunk cut short")
        yield data


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _status_body(code: int, message: str, reason: str) -> bytes:
    return json.dumps(
        {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "details": {}, "code": code}
    ).encode()


class FaultProxy:
    """``with FaultProxy(("127.0.0.1", port), faults=[Fault("throttle", times=3)]) as proxy:`` then talk to ``proxy.url``."""

    def __init__(
        self,
        upstream: tuple[str, int],
        *,
        mode: str = "http",
        faults: list[Fault] | tuple[Fault, ...] = (),
        server_context: ssl.SSLContext | None = None,
        upstream_context: ssl.SSLContext | None = None,
        upstream_hostname: str | None = None,
        tls_passthrough: bool = False,
        lifetime: float = 120.0,
    ) -> None:
        host, _port = upstream
        if not _loopback(host):
            raise ValueError(f"the fault proxy only forwards to loopback addresses, not {host!r}")
        if mode not in ("http", "tcp"):
            raise ValueError(f"mode must be http or tcp, not {mode!r}")
        allowed = HTTP_FAULTS if mode == "http" else TCP_FAULTS
        for fault in faults:
            if fault.kind not in allowed:
                raise ValueError(f"fault {fault.kind!r} is not possible in {mode} mode (possible: {', '.join(sorted(allowed))})")
            if fault.times < 0 or fault.skip < 0 or fault.every < 1 or not 0 <= fault.seconds <= lifetime:
                raise ValueError(f"fault {fault.kind!r}: times and skip must be >= 0, every >= 1, and seconds within the proxy's lifetime")
        if mode == "tcp" and (server_context or upstream_context):
            raise ValueError("tcp mode passes TLS through: give no TLS contexts")
        if mode == "http" and tls_passthrough:
            raise ValueError("http mode reads the requests: give server_context and upstream_context for TLS")
        self.upstream = upstream
        self.mode = mode
        self.faults = list(faults)
        self.server_context = server_context
        self.upstream_context = upstream_context
        self.upstream_hostname = upstream_hostname or host
        self.tls_passthrough = tls_passthrough
        self.lifetime = lifetime
        self.log: list[dict[str, Any]] = []
        self.connections = 0
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._deadline = time.monotonic() + lifetime
        self._thread = threading.Thread(target=self._accept, name="faultproxy", daemon=True)

    # -- the outside -----------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    @property
    def url(self) -> str:
        """The URL a client uses: https where the proxy presents TLS, or passes through the upstream's (``tls_passthrough``)."""
        scheme = "https" if self.server_context or self.tls_passthrough else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, close every connection (the open ones too) and wait for the accept loop."""
        self._stopped.set()
        _close(self._listener)
        with self._lock:
            sockets, self._sockets = set(self._sockets), set()
        for sock in sockets:
            _close(sock)
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def applied(self, kind: str | None = None) -> int:
        """How often faults (of ``kind``) were injected."""
        with self._lock:
            return sum(f.applied for f in self.faults if kind is None or f.kind == kind)

    def requests(self, method: str | None = None, path: str | None = None) -> list[dict[str, Any]]:
        """The requests seen (``http`` mode), each with the fault that hit it, if any."""
        with self._lock:
            return [dict(r) for r in self.log if (method is None or r["method"] == method) and (path is None or re.search(path, r["path"]))]

    # -- plumbing --------------------------------------------------------------

    def _track(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            if self._stopped.is_set():
                _close(sock)
                raise ConnectionError("the proxy stopped")
            self._sockets.add(sock)
        return sock

    def _untrack(self, *socks: socket.socket | None) -> None:
        with self._lock:
            for sock in socks:
                if sock is not None:
                    self._sockets.discard(sock)
        for sock in socks:
            _close(sock)

    def _remaining(self) -> float:
        return max(0.0, self._deadline - time.monotonic())

    def _hold(self, seconds: float) -> None:
        """Wait ``seconds``, or less when the proxy stops."""
        self._stopped.wait(min(seconds, self._remaining()))

    def _pick(self, method: str | None, path: str | None, watch: bool | None) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.applied >= fault.times or not fault.matches(method, path, watch):
                    continue
                fault.seen += 1
                if fault.seen <= fault.skip or (fault.seen - fault.skip - 1) % fault.every:
                    continue
                fault.applied += 1
                return fault
        return None

    def _accept(self) -> None:
        while not self._stopped.is_set():
            if self._remaining() <= 0:
                self.stop()  # the lifetime is over: nothing outlives it
                return
            try:
                client, _address = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
            handler = self._serve_http if self.mode == "http" else self._serve_tcp
            threading.Thread(target=self._guarded, args=(handler, client), daemon=True).start()

    def _guarded(self, handler: Any, client: socket.socket) -> None:
        try:
            self._track(client)
            client.settimeout(self._remaining() or 0.01)
            handler(client)
        except (OSError, ValueError, ConnectionError):
            pass  # a peer that went away, or the proxy stopped: nothing to report to anyone
        finally:
            self._untrack(client)

    def _connect_upstream(self) -> socket.socket:
        sock = socket.create_connection(self.upstream, timeout=self._remaining() or 0.01)
        if self.upstream_context is not None:
            sock = self.upstream_context.wrap_socket(sock, server_hostname=self.upstream_hostname)
        return self._track(sock)

    # -- tcp -------------------------------------------------------------------

    def _serve_tcp(self, client: socket.socket) -> None:
        fault = self._pick(None, None, None)
        if fault is not None and fault.kind == "reset" and not fault.nbytes:
            _reset(client)
            return
        if fault is not None and fault.kind == "stall":
            self._hold(fault.seconds)
            return
        if fault is not None and fault.kind == "latency":
            self._hold(fault.seconds)
        upstream = self._connect_upstream()
        try:
            upward = threading.Thread(target=self._pump, args=(client, upstream, None), daemon=True)
            upward.start()
            self._pump(upstream, client, fault)
        finally:
            self._untrack(upstream)

    def _pump(self, source: socket.socket, sink: socket.socket, fault: Fault | None) -> None:
        """Copy ``source`` to ``sink``; a reset or truncate fault acts once ``fault.nbytes`` went through."""
        sent = 0
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    sink.shutdown(socket.SHUT_WR)
                    return
                if fault is not None and fault.nbytes and sent + len(data) >= fault.nbytes:
                    sink.sendall(data[: fault.nbytes - sent])
                    (_reset if fault.kind == "reset" else _close)(sink)
                    _close(source)
                    return
                sink.sendall(data)
                sent += len(data)
        except OSError:
            _close(sink)

    # -- http ------------------------------------------------------------------

    def _serve_http(self, client: socket.socket) -> None:
        if self.server_context is not None:
            tls = self.server_context.wrap_socket(client, server_side=True)
            self._track(tls)
            client = tls
        reader = client.makefile("rb")
        while not self._stopped.is_set():
            head = _read_head(reader)
            if head is None:
                return
            request_line, headers = _headers(head)
            method, target, _version = (request_line.split(" ", 2) + ["", ""])[:3]
            body = self._request_body(reader, headers)
            url = urlsplit(target)
            # Go's ParseBool, as the API server reads it (the Python client sends "True").
            watch = (parse_qs(url.query).get("watch") or [""])[0].lower() in ("1", "t", "true")
            fault = self._pick(method, url.path, watch)
            entry = {"method": method, "path": url.path, "query": url.query, "watch": watch, "fault": fault.kind if fault else None, "status": None}
            with self._lock:
                self.log.append(entry)
            if not self._answer(client, reader, method, target, headers, body, fault, entry):
                return

    @staticmethod
    def _request_body(reader: BinaryIO, headers: list[tuple[str, str]]) -> bytes:
        if (_get(headers, "Transfer-Encoding") or "").lower() == "chunked":
            return b"".join(_read_chunks(reader))
        length = int(_get(headers, "Content-Length") or 0)
        return reader.read(length) if length else b""

    def _answer(
        self,
        client: socket.socket,
        reader: BinaryIO,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        fault: Fault | None,
        entry: dict[str, Any],
    ) -> bool:
        """Answer one request; False when the client connection is done with."""
        kind = fault.kind if fault else None
        if fault is not None and kind == "reset" and not fault.after:
            _reset(client)
            return False
        if fault is not None and kind == "stall" and not fault.after:
            self._hold(fault.seconds)
            return False
        if fault is not None and kind == "throttle":
            reason = "TooManyRequests" if fault.status == 429 else "ServiceUnavailable"
            extra = [("X-Kubernetes-PF-FlowSchema-UID", "fs-test"), ("X-Kubernetes-PF-PriorityLevel-UID", "pl-test")] if fault.apf else []
            payload = _status_body(fault.status, "Too many requests, please try again later.", reason)
            entry["status"] = fault.status
            self._send(client, f"HTTP/1.1 {fault.status} {reason}", [("Retry-After", f"{fault.seconds:g}"), *extra], payload)
            return True
        if fault is not None and kind == "watch_gone" and entry["watch"]:
            gone = json.loads(_status_body(410, "too old resource version: 1 (2)", "Expired"))
            data = json.dumps({"type": "ERROR", "object": gone}).encode() + b"\n"
            entry["status"] = 200
            client.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + _chunk(data) + b"0\r\n\r\n")
            return True
        if fault is not None and kind == "latency":
            self._hold(fault.seconds)
        upstream = self._connect_upstream()
        try:
            return self._forward(client, upstream, method, target, headers, body, fault, entry)
        finally:
            self._untrack(upstream)

    @staticmethod
    def _send(client: socket.socket, status_line: str, headers: list[tuple[str, str]], payload: bytes) -> None:
        lines = [status_line, "Content-Type: application/json", f"Content-Length: {len(payload)}", *(f"{k}: {v}" for k, v in headers)]
        client.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload)

    def _forward(
        self,
        client: socket.socket,
        upstream: socket.socket,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        fault: Fault | None,
        entry: dict[str, Any],
    ) -> bool:
        # One upstream connection per request: the upstream closes it after its answer.
        skip = {"connection", "content-length", "transfer-encoding", "keep-alive", "proxy-connection"}
        kept = [(k, v) for k, v in headers if k.lower() not in skip]
        lines = [f"{method} {target} HTTP/1.1", *(f"{k}: {v}" for k, v in kept), f"Content-Length: {len(body)}", "Connection: close"]
        upstream.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        upstream_reader = upstream.makefile("rb")
        head = _read_head(upstream_reader)
        if head is None:
            _reset(client)
            return False
        status_line, answer_headers = _headers(head)
        entry["status"] = int(status_line.split(" ", 2)[1])
        kind = fault.kind if fault else None
        if fault is not None and kind == "reset" and fault.after:
            _reset(client)
            return False
        if fault is not None and kind == "stall" and fault.after:
            self._hold(fault.seconds)
            return False
        chunked = (_get(answer_headers, "Transfer-Encoding") or "").lower() == "chunked"
        length = _get(answer_headers, "Content-Length")
        no_body = method == "HEAD" or entry["status"] in (204, 304) or entry["status"] < 200
        relayed = [(k, v) for k, v in answer_headers if k.lower() not in ("connection", "keep-alive")]
        until_close = not chunked and length is None and not no_body
        out_head = "\r\n".join([status_line, *(f"{k}: {v}" for k, v in relayed), *(["Connection: close"] if until_close else [])])
        client.sendall(out_head.encode("latin-1") + b"\r\n\r\n")
        if no_body:
            return True
        if chunked:
            return self._relay_chunks(client, upstream_reader, fault)
        data = upstream_reader.read(int(length)) if length is not None else upstream_reader.read()
        if fault is not None and kind == "truncate":
            client.sendall(data[: len(data) // 2])
            _close(client)
            return False
        client.sendall(data)
        return not until_close

    @staticmethod
    def _relay_chunks(client: socket.socket, upstream_reader: BinaryIO, fault: Fault | None) -> bool:
        """Relay a chunked answer as it comes (a watch); a watch_cut fault resets after its events, truncate after half a chunk."""
        events = 0
        for data in _read_chunks(upstream_reader):
            if fault is not None and fault.kind == "truncate":
                client.sendall(_chunk(data)[: max(1, len(data) // 2)])
                _close(client)
                return False
            if fault is not None and fault.kind == "watch_cut":
                lines = data.split(b"\n")
                for index in range(len(lines) - 1):
                    events += 1
                    if events >= fault.events:
                        client.sendall(_chunk(b"\n".join(lines[: index + 1]) + b"\n"))
                        _reset(client)
                        return False
            client.sendall(_chunk(data))
        client.sendall(b"0\r\n\r\n")
        return True
