"""roles/recipe/files/network.sh, run for real in every available shell (see conftest.py).

Everything stays on loopback: an HTTP server, a listener that accepts and never talks,
a closed port and (where the host has IPv6 on lo) listeners on ::1 and ::. What the
script decodes from /proc/net is compared with the same files decoded here.
"""

from __future__ import annotations

import http.server
import ipaddress
import os
import re
import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

INFO_CHECKS = ["interfaces", "routes", "listening"]
TCP_KEYS = ["check", "target", "ok", "detail", "ms", "tool"]
HTTP_KEYS = ["check", "target", "ok", "status", "ms", "detail", "tool"]
INVALID_KEYS = ["check", "target", "ok", "detail"]
LITTLE_ENDIAN = struct.pack("=I", 1) == struct.pack("<I", 1)
NO_TCP_CLIENT = ("nc", "bash", "busybox")
NO_HTTP_CLIENT = ("curl", "wget", "busybox")


class Handler(http.server.BaseHTTPRequestHandler):
    """200 on /, a 302 to / on /redirect, 404 elsewhere."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path == "/":
            body = b"ok\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.send_error(404)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's signature)
        return


class Silent:
    """A listener that accepts connections and never reads, writes or closes them."""

    def __init__(self, family: int, host: str) -> None:
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn = self.sock.accept()[0]
            except OSError:
                continue
            self.conns.append(conn)

    def accepted(self, count: int) -> list[socket.socket]:
        """The connections accepted so far, once there are ``count`` (a hang guard, not a time limit: 30s)."""
        for _tick in range(300):
            if len(self.conns) >= count:
                break
            threading.Event().wait(0.1)
        return list(self.conns)

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        for conn in self.conns:
            conn.close()
        self.sock.close()


@dataclass
class Servers:
    http_port: int
    silent_port: int
    closed_port: int
    v6_port: int | None  # a listener on ::1
    v6_any_port: int | None  # a listener on ::


def closed_port() -> int:
    """A loopback port nothing listens on (bound and released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    silent = Silent(socket.AF_INET, "127.0.0.1")
    v6: list[Silent] = []
    for host in ("::1", "::"):
        try:
            v6.append(Silent(socket.AF_INET6, host))
        except OSError:
            break
    try:
        yield Servers(
            http_port=httpd.server_address[1],
            silent_port=silent.port,
            closed_port=closed_port(),
            v6_port=v6[0].port if len(v6) == 2 else None,
            v6_any_port=v6[1].port if len(v6) == 2 else None,
        )
    finally:
        httpd.shutdown()
        httpd.server_close()
        silent.close()
        for server in v6:
            server.close()


def by_check(lines: list[dict], check: str) -> dict:
    (found,) = [line for line in lines if line["check"] == check]
    return found


def checks(lines: list[dict]) -> list[dict]:
    return [line for line in lines if line["check"] not in (*INFO_CHECKS, "summary")]


# --- /proc/net decoded independently -------------------------------------------------


def host_word(hex8: str) -> bytes:
    """A /proc/net 8-hex-digit word (host byte order) as the 4 address bytes."""
    return struct.pack("=I", int(hex8, 16))


def proc_v4(hex8: str) -> str:
    return socket.inet_ntop(socket.AF_INET, host_word(hex8))


def proc_v6(hex32: str) -> str:
    packed = b"".join(host_word(hex32[i : i + 8]) for i in range(0, 32, 8))
    return rfc5952(ipaddress.IPv6Address(packed))


def rfc5952(address: ipaddress.IPv6Address) -> str:
    if address.ipv4_mapped is not None:
        return f"::ffff:{address.ipv4_mapped}"
    return address.compressed


def proc_routes() -> list[dict]:
    routes = []
    for line in Path("/proc/net/route").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        prefix = bin(int.from_bytes(host_word(fields[7]), "big")).count("1")
        routes.append({"destination": f"{proc_v4(fields[1])}/{prefix}", "gateway": proc_v4(fields[2]), "iface": fields[0], "metric": int(fields[6])})
    return routes


def proc_interfaces() -> list[str]:
    return [line.split(":", 1)[0].strip() for line in Path("/proc/net/dev").read_text().splitlines()[2:] if ":" in line]


def proc_if_inet6() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    path = Path("/proc/net/if_inet6")
    if path.exists():
        for line in path.read_text().splitlines():
            fields = line.split()
            address = rfc5952(ipaddress.IPv6Address(bytes.fromhex(fields[0])))
            found.setdefault(fields[5], []).append(f"{address}/{int(fields[2], 16)}")
    return found


# --- what the tools are ------------------------------------------------------------


def tcp_tools(run_recipe, hide=()) -> set[str | None]:
    """The values the tcp line's "tool" may have with this shell's PATH."""
    if run_recipe.has("nc", hide):
        return {"nc -z", "nc -e true"}
    if run_recipe.has("bash", hide):
        return {"bash /dev/tcp"}
    if run_recipe.has("busybox", hide):
        return {"busybox nc -z", "busybox nc -e true"}
    return {None}


def http_tool(run_recipe, hide=()) -> str | None:
    """The value the http line's "tool" has with this shell's PATH."""
    if run_recipe.has("curl", hide):
        return "curl"
    wget = run_recipe.which("wget", hide)
    if wget is not None:
        # A bare name: the shell's own busybox applet (a standalone busybox shell).
        is_busybox = not os.path.isabs(wget) or os.path.basename(os.path.realpath(wget)) == "busybox"
        return "wget (busybox)" if is_busybox else "wget"
    if run_recipe.has("busybox", hide):
        return "busybox wget"
    return None


def follows_redirects(tool: str | None) -> bool:
    return tool in ("wget (busybox)", "busybox wget")


# --- the information lines ---------------------------------------------------------------


def test_output_without_checks(run_recipe):
    lines = run_recipe("network")
    assert [line["check"] for line in lines] == [*INFO_CHECKS, "summary"]
    assert [line["target"] for line in lines] == ["/proc/net/dev", "/proc/net/route", "/proc/net/tcp", "network"]
    assert lines[-1] == {"check": "summary", "target": "network", "ok": True, "detail": "0 of 0 checks passed"}


def test_interfaces(run_recipe):
    line = by_check(run_recipe("network"), "interfaces")
    assert list(line) == ["check", "target", "ok", "detail", "interfaces"]
    assert line["ok"] is True
    names = [iface["name"] for iface in line["interfaces"]]
    assert names == proc_interfaces()
    assert "lo" in names
    for iface in line["interfaces"]:
        assert list(iface) == ["name", "addresses", "rx_bytes", "tx_bytes", "operstate"]
        assert isinstance(iface["rx_bytes"], int) and iface["rx_bytes"] >= 0
        assert isinstance(iface["tx_bytes"], int) and iface["tx_bytes"] >= 0
        assert iface["operstate"] is None or isinstance(iface["operstate"], str)
        for address in iface["addresses"]:
            ipaddress.ip_interface(address)
    lo = line["interfaces"][names.index("lo")]
    if run_recipe.has("ip"):
        assert "127.0.0.1/8" in lo["addresses"]
        assert line["detail"] == f"{len(names)} interface(s): {', '.join(names)}; addresses from ip -o addr"
    else:
        assert line["detail"].endswith("addresses from /proc/net/if_inet6 (IPv6 only: no ip command)")


def skip_unless_hidden(run_recipe, hide):
    """Skip where hiding a tool cannot work: a busybox built with a standalone shell runs its own applet whatever PATH holds."""
    found = [tool for tool in hide if run_recipe.has(tool, hide)]
    if found:
        pytest.skip(f"{run_recipe.shell.name} finds {', '.join(found)} without PATH (its busybox runs its own applets)")


def test_interfaces_without_ip(run_recipe):
    skip_unless_hidden(run_recipe, ("ip",))
    line = by_check(run_recipe("network", hide=("ip",)), "interfaces")
    names = proc_interfaces()
    assert line["detail"] == f"{len(names)} interface(s): {', '.join(names)}; addresses from /proc/net/if_inet6 (IPv6 only: no ip command)"
    v6 = proc_if_inet6()
    assert {iface["name"]: iface["addresses"] for iface in line["interfaces"]} == {name: v6.get(name, []) for name in proc_interfaces()}


def test_routes(run_recipe):
    line = by_check(run_recipe("network"), "routes")
    assert list(line) == ["check", "target", "ok", "detail", "routes"]
    assert line["ok"] is True
    # May be empty in a sandbox; whatever is there must be what the kernel says.
    assert line["routes"] == proc_routes()
    for route in line["routes"]:
        assert list(route) == ["destination", "gateway", "iface", "metric"]
        ipaddress.ip_network(route["destination"])
        ipaddress.ip_address(route["gateway"])
    default = [route for route in line["routes"] if route["destination"] == "0.0.0.0/0"]
    summary = f"default via {default[0]['gateway']} dev {default[0]['iface']}" if default else "no default route"
    assert line["detail"] == f"{len(line['routes'])} IPv4 route(s); {summary}"


def test_listening(run_recipe, servers):
    line = by_check(run_recipe("network"), "listening")
    assert list(line) == ["check", "target", "ok", "detail", "sockets"]
    assert line["ok"] is True
    sockets = line["sockets"]
    assert line["detail"] == f"{len(sockets)} listening TCP socket(s)"
    for entry in sockets:
        assert list(entry) == ["proto", "address", "port"]
        assert entry["proto"] in ("tcp", "tcp6")
        ipaddress.ip_address(entry["address"])
        assert 0 < entry["port"] < 65536
    assert len({(entry["proto"], entry["address"], entry["port"]) for entry in sockets}) == len(sockets)
    assert {"proto": "tcp", "address": "127.0.0.1", "port": servers.http_port} in sockets
    assert {"proto": "tcp", "address": "127.0.0.1", "port": servers.silent_port} in sockets
    assert servers.closed_port not in [entry["port"] for entry in sockets]
    if servers.v6_port is not None:
        assert {"proto": "tcp6", "address": "::1", "port": servers.v6_port} in sockets
        assert {"proto": "tcp6", "address": "::", "port": servers.v6_any_port} in sockets


def test_listening_matches_proc(run_recipe, servers):
    """Our listeners, decoded here from /proc/net/tcp{,6}, appear exactly so in the output."""
    ours = {servers.http_port, servers.silent_port, servers.v6_port, servers.v6_any_port} - {None}
    expected = []
    for name, proto, decode in (("tcp", "tcp", proc_v4), ("tcp6", "tcp6", proc_v6)):
        for row in Path(f"/proc/net/{name}").read_text().splitlines()[1:]:
            fields = row.split()
            address, port = fields[1].split(":")
            if fields[3] == "0A" and int(port, 16) in ours:
                expected.append({"proto": proto, "address": decode(address), "port": int(port, 16)})
    sockets = by_check(run_recipe("network"), "listening")["sockets"]
    assert [entry for entry in sockets if entry["port"] in ours] == expected


# --- tcp -----------------------------------------------------------------------------


def test_tcp_open(run_recipe, servers):
    target = f"127.0.0.1:{servers.http_port}"
    line = checks(run_recipe("network", f"tcp:{target}"))[0]
    assert list(line) == TCP_KEYS
    assert (line["check"], line["target"], line["ok"], line["detail"]) == ("tcp", target, True, "connected")
    assert isinstance(line["ms"], int) and line["ms"] >= 0
    assert line["tool"] in tcp_tools(run_recipe)


def test_tcp_silent_server_is_open(run_recipe):
    """A server that accepts and never talks or closes: connected, and the client hangs up without waiting for it."""
    silent = Silent(socket.AF_INET, "127.0.0.1")  # this test's own: every connection it accepts is the recipe's
    try:
        # The longest probe the recipe allows (60s, the connect timeout one less): a tool that waited for the server to
        # speak would be killed by the recipe's watchdog ("timed out", not "connected"), or run past the hang guard.
        line = checks(run_recipe("network", f"tcp:127.0.0.1:{silent.port}", env={"KD_NET_TIMEOUT": "60"}, timeout=45))[0]
        assert (line["ok"], line["detail"]) == (True, "connected"), line
        conns = silent.accepted(1)
        assert conns, "the recipe reported connected, but the server accepted nothing"
        for conn in conns:
            # The server never wrote nor closed: end of stream here means the client closed the connection itself.
            conn.settimeout(30)  # a hang guard: a connection the client left open would block until then
            assert conn.recv(1) == b"", "the client sent data"
    finally:
        silent.close()


def test_tcp_closed(run_recipe, servers):
    target = f"127.0.0.1:{servers.closed_port}"
    lines = run_recipe("network", f"tcp:{target}")
    line = checks(lines)[0]
    assert list(line) == TCP_KEYS
    assert (line["check"], line["target"], line["ok"]) == ("tcp", target, False)
    assert line["detail"].startswith("connect failed (exit 1)")
    assert "refused" in line["detail"].lower()
    assert line["tool"] in tcp_tools(run_recipe)
    assert lines[-1] == {"check": "summary", "target": "network", "ok": False, "detail": "0 of 1 checks passed"}


def test_tcp_ipv6(run_recipe, servers):
    if servers.v6_port is None:
        pytest.skip("no IPv6 on loopback")
    target = f"[::1]:{servers.v6_port}"
    line = checks(run_recipe("network", f"tcp:{target}"))[0]
    assert (line["target"], line["ok"], line["detail"]) == (target, True, "connected")


@pytest.mark.parametrize("hide", [("nc",), ("nc", "bash")], ids=["no-nc", "no-nc-no-bash"])
def test_tcp_fallbacks(run_recipe, servers, hide):
    """Without nc: bash's /dev/tcp; without bash either: busybox nc (its small build has no -z)."""
    lines = run_recipe(
        "network", f"tcp:127.0.0.1:{servers.http_port}", f"tcp:127.0.0.1:{servers.closed_port}", f"tcp:127.0.0.1:{servers.silent_port}", hide=hide
    )
    open_line, closed_line, silent_line = checks(lines)
    assert open_line["tool"] == closed_line["tool"] == silent_line["tool"]
    assert open_line["tool"] in tcp_tools(run_recipe, hide)
    if open_line["tool"] is None:
        pytest.skip("neither bash nor busybox here")
    assert (open_line["ok"], open_line["detail"]) == (True, "connected")
    assert (silent_line["ok"], silent_line["detail"]) == (True, "connected")
    assert closed_line["ok"] is False and "refused" in closed_line["detail"].lower()


def test_tcp_without_any_client(run_recipe, servers):
    skip_unless_hidden(run_recipe, NO_TCP_CLIENT)
    line = checks(run_recipe("network", f"tcp:127.0.0.1:{servers.http_port}", hide=NO_TCP_CLIENT))[0]
    assert line == {
        "check": "tcp",
        "target": f"127.0.0.1:{servers.http_port}",
        "ok": False,
        "detail": "no TCP client in this image (nc, bash or busybox nc)",
        "ms": line["ms"],
        "tool": None,
    }


# --- http ----------------------------------------------------------------------------


def test_http_ok(run_recipe, servers):
    url = f"http://127.0.0.1:{servers.http_port}/"
    line = checks(run_recipe("network", url))[0]
    assert list(line) == HTTP_KEYS
    assert line == {"check": "http", "target": url, "ok": True, "status": 200, "ms": line["ms"], "detail": "HTTP 200", "tool": http_tool(run_recipe)}
    assert isinstance(line["ms"], int) and line["ms"] >= 0


def test_http_not_found(run_recipe, servers):
    url = f"http://127.0.0.1:{servers.http_port}/missing"
    lines = run_recipe("network", url)
    line = checks(lines)[0]
    assert line == {"check": "http", "target": url, "ok": False, "status": 404, "ms": line["ms"], "detail": "HTTP 404", "tool": http_tool(run_recipe)}
    assert lines[-1] == {"check": "summary", "target": "network", "ok": False, "detail": "0 of 1 checks passed"}


def test_http_redirect_is_a_pass(run_recipe, servers):
    url = f"http://127.0.0.1:{servers.http_port}/redirect"
    line = checks(run_recipe("network", url))[0]
    status = 200 if follows_redirects(line["tool"]) else 302
    assert (line["ok"], line["status"], line["detail"]) == (True, status, f"HTTP {status}")


def test_http_shorthand(run_recipe, servers):
    line = checks(run_recipe("network", f"http:127.0.0.1:{servers.http_port}/"))[0]
    assert (line["target"], line["ok"], line["status"]) == (f"http://127.0.0.1:{servers.http_port}/", True, 200)


def test_http_connection_refused(run_recipe, servers):
    url = f"http://127.0.0.1:{servers.closed_port}/"
    line = checks(run_recipe("network", url))[0]
    assert (line["target"], line["ok"], line["status"]) == (url, False, None)
    assert line["detail"].startswith("request failed (exit ")
    assert "refused" in line["detail"].lower() or "connect" in line["detail"].lower()


def test_https_to_a_plain_http_port_fails(run_recipe, servers):
    url = f"https://127.0.0.1:{servers.http_port}/"
    line = checks(run_recipe("network", url, env={"KD_NET_TIMEOUT": "3"}))[0]
    assert (line["check"], line["target"], line["ok"], line["status"]) == ("http", url, False, None)


def test_http_silent_server_times_out(run_recipe, servers):
    url = f"http://127.0.0.1:{servers.silent_port}/"
    # The recipe's own watchdog says it cut the request off ("timed out"); run_recipe's timeout is only a hang guard.
    line = checks(run_recipe("network", url, env={"KD_NET_TIMEOUT": "2"}, timeout=60))[0]
    assert (line["ok"], line["status"]) == (False, None)
    assert "timed out" in line["detail"].lower() or "timeout" in line["detail"].lower()


@pytest.mark.parametrize(
    "hide",
    [("curl",), ("curl", "wget"), ("curl", "timeout")],
    ids=["wget", "busybox-wget", "wget-shell-watchdog"],
)
def test_http_fallbacks(run_recipe, servers, hide):
    base = f"http://127.0.0.1:{servers.http_port}"
    lines = checks(run_recipe("network", f"{base}/", f"{base}/missing", f"{base}/redirect", hide=hide))
    tool = http_tool(run_recipe, hide)
    assert [line["tool"] for line in lines] == [tool] * 3
    if tool is None:
        pytest.skip("no wget or busybox here")
    redirect = 200 if follows_redirects(tool) else 302
    assert [(line["ok"], line["status"]) for line in lines] == [(True, 200), (False, 404), (True, redirect)]


def test_http_silent_server_with_shell_watchdog(run_recipe, servers):
    """Without curl and timeout, a server that never answers is cut off by the script itself."""
    url = f"http://127.0.0.1:{servers.silent_port}/"
    # The silent server never answers nor closes: the run ends only because the client was cut off (wget's own -T, or
    # the script's watchdog); run_recipe's timeout is only a hang guard.
    line = checks(run_recipe("network", url, hide=("curl", "timeout"), env={"KD_NET_TIMEOUT": "2"}, timeout=60))[0]
    assert (line["ok"], line["status"]) == (False, None)


def test_http_without_any_client(run_recipe, servers):
    skip_unless_hidden(run_recipe, NO_HTTP_CLIENT)
    url = f"http://127.0.0.1:{servers.http_port}/"
    line = checks(run_recipe("network", url, hide=NO_HTTP_CLIENT))[0]
    assert line == {
        "check": "http",
        "target": url,
        "ok": False,
        "status": None,
        "ms": line["ms"],
        "detail": "request failed (exit 127): no HTTP client in this image (curl, wget or busybox wget)",
        "tool": None,
    }


# --- bad specs and the summary -------------------------------------------------------------

TCP_USAGE = "(expected tcp:HOST:PORT or tcp:[IPV6]:PORT)"


# (spec, detail): every spec the script must refuse, with a line saying why.
BAD_SPECS = [
    ("bogus", 'invalid check "bogus": expected tcp:HOST:PORT, http://URL or https://URL'),
    ("", 'invalid check "": expected tcp:HOST:PORT, http://URL or https://URL'),
    ("udp:127.0.0.1:53", 'invalid check "udp:127.0.0.1:53": expected tcp:HOST:PORT, http://URL or https://URL'),
    ("tcp:", f'invalid check "tcp:": nothing after "tcp:" {TCP_USAGE}'),
    ("tcp:localhost", f'invalid check "tcp:localhost": no port {TCP_USAGE}'),
    ("tcp:localhost:", f'invalid check "tcp:localhost:": the port is not a number {TCP_USAGE}'),
    ("tcp:127.0.0.1:http", f'invalid check "tcp:127.0.0.1:http": the port is not a number {TCP_USAGE}'),
    ("tcp:127.0.0.1:0", f'invalid check "tcp:127.0.0.1:0": the port is out of range {TCP_USAGE}'),
    ("tcp:127.0.0.1:65536", f'invalid check "tcp:127.0.0.1:65536": the port is out of range {TCP_USAGE}'),
    ("tcp:127.0.0.1:99999999999999999999", f'invalid check "tcp:127.0.0.1:99999999999999999999": the port is out of range {TCP_USAGE}'),
    ("tcp::80", f'invalid check "tcp::80": no host {TCP_USAGE}'),
    ("tcp:-lp:80", f'invalid check "tcp:-lp:80": the host is not a host name or address {TCP_USAGE}'),
    ("tcp:a b:80", f'invalid check "tcp:a b:80": the host is not a host name or address {TCP_USAGE}'),
    ("tcp:../../x:80", f'invalid check "tcp:../../x:80": the host is not a host name or address {TCP_USAGE}'),
    ("tcp:[::1]", f'invalid check "tcp:[::1]": the host is not a host name or address {TCP_USAGE}'),
    ("tcp:[]:80", f'invalid check "tcp:[]:80": no host {TCP_USAGE}'),
    ("http://", 'invalid check "http://": expected http://HOST[:PORT]/PATH or https://HOST[:PORT]/PATH'),
    ("https:///path", 'invalid check "https:///path": expected http://HOST[:PORT]/PATH or https://HOST[:PORT]/PATH'),
    ("http://a b/", 'invalid check "http://a b/": expected http://HOST[:PORT]/PATH or https://HOST[:PORT]/PATH'),
    ('quo"te\\back', 'invalid check "quo"te\\back": expected tcp:HOST:PORT, http://URL or https://URL'),
    ("two\nlines\ttab\r", 'invalid check "two\nlines\ttab\r": expected tcp:HOST:PORT, http://URL or https://URL'),
    ("\x1b[31mred\x01", 'invalid check "[31mred": expected tcp:HOST:PORT, http://URL or https://URL'),
    ("ünï $(id) `id` %s *", 'invalid check "ünï $(id) `id` %s *": expected tcp:HOST:PORT, http://URL or https://URL'),
]
# Control characters json_str does not escape; the script drops them from what it prints.
UNESCAPED_CONTROL = re.compile("[\x01-\x08\x0b\x0c\x0e-\x1f]")


def test_bad_specs(run_recipe):
    """One run with every bad spec: one "invalid" line each, in order, and no crash."""
    lines = run_recipe("network", *(spec for spec, detail in BAD_SPECS))
    invalid = checks(lines)
    assert len(invalid) == len(BAD_SPECS)
    for line, (spec, detail) in zip(invalid, BAD_SPECS, strict=True):
        assert list(line) == INVALID_KEYS
        assert line == {"check": "invalid", "target": UNESCAPED_CONTROL.sub("", spec), "ok": False, "detail": detail}
    assert lines[-1] == {"check": "summary", "target": "network", "ok": False, "detail": f"0 of {len(BAD_SPECS)} checks passed"}


def test_summary_counts_every_check(run_recipe, servers):
    lines = run_recipe(
        "network",
        f"tcp:127.0.0.1:{servers.http_port}",
        f"tcp:127.0.0.1:{servers.closed_port}",
        f"http://127.0.0.1:{servers.http_port}/",
        f"http://127.0.0.1:{servers.http_port}/missing",
        "nonsense",
    )
    assert [line["check"] for line in lines] == [*INFO_CHECKS, "tcp", "tcp", "http", "http", "invalid", "summary"]
    assert [line["ok"] for line in checks(lines)] == [True, False, True, False, False]
    assert lines[-1] == {"check": "summary", "target": "network", "ok": False, "detail": "2 of 5 checks passed"}


def test_all_checks_passing(run_recipe, servers):
    lines = run_recipe("network", f"tcp:127.0.0.1:{servers.http_port}", f"http://127.0.0.1:{servers.http_port}/")
    assert lines[-1] == {"check": "summary", "target": "network", "ok": True, "detail": "2 of 2 checks passed"}


def test_script_has_no_jinja_markers():
    """roles/recipe/tasks passes the script through Ansible variables, which template it."""
    text = (Path(__file__).resolve().parents[3] / "roles" / "recipe" / "files" / "network.sh").read_text(encoding="utf-8")
    for marker in ("{{", "}}", "{%", "%}", "{#", "#}"):
        assert marker not in text
