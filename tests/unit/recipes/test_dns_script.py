"""roles/recipe/files/dns.sh, run for real in every available shell (see conftest.py).

Every run happens inside private_resolver's network and mount namespace: the recipe reads the
test's /etc/resolv.conf, /etc/hosts and /etc/nsswitch.conf and asks the test's own DNS server on
127.0.0.1, so no lookup reaches this host's resolver or leaves the namespace, and the results do
not depend on how this host resolves. ``localhost`` resolves from that /etc/hosts, the names in
private_resolver.ZONE through DNS, names under the reserved ``.invalid`` TLD never. The nslookup
and dig parsers, which this host's tools may not reach, run against stubs that print those tools'
output.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.kubedebug.ephemeral.tests.private_resolver import FILES, ZONE, PrivateResolver, Unavailable, private_resolver

INVALID = "kd-recipe-test.invalid"
RESOLVE_KEYS = ["check", "target", "ok", "detail", "ms", "addresses", "tool"]
RESOLV_CONF_KEYS = ["check", "target", "ok", "detail", "nameservers", "search", "options"]
# Control characters json_str does not escape; the script drops them from what it prints.
UNESCAPED_CONTROL = re.compile("[\x01-\x08\x0b\x0c\x0e-\x1f]")
NO_RESOLVER_TOOLS = ("getent", "nslookup", "dig", "busybox")


def parse_resolv_conf(text: str) -> tuple[list[str], list[str], list[str]]:
    """nameservers, search domains and options, as glibc reads them (last search/domain line wins)."""
    nameservers: list[str] = []
    search: list[str] = []
    options: list[str] = []
    for line in text.splitlines():
        words = line.split()
        if not words:
            continue
        key, rest = words[0], words[1:]
        if key == "nameserver" and rest and rest[0] not in nameservers:
            nameservers.append(rest[0])
        elif key in ("search", "domain"):
            search = list(dict.fromkeys(rest))
        elif key == "options":
            options += [word for word in rest if word not in options]
    return nameservers, search, options


@pytest.fixture(scope="module")
def resolver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateResolver]:
    try:
        with private_resolver(tmp_path_factory.mktemp("resolver")) as started:
            yield started
    except Unavailable as exc:
        # CI runs as root: there, a refusal must not quietly skip every DNS test.
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the dns recipe against its private resolver: {exc}")
        pytest.skip(str(exc))


class InResolver:
    """The conftest's ``run_recipe``, each run inside the private resolver's namespaces."""

    def __init__(self, runner: Any, resolver: PrivateResolver) -> None:
        self._runner = runner
        self.resolver = resolver

    def __call__(self, name: str, *args: str, **kwargs: Any) -> list[dict[str, Any]]:
        return self._runner(name, *args, wrap=self.resolver.wrap(), **kwargs)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._runner, attribute)


@pytest.fixture
def run_recipe(run_recipe: Any, resolver: PrivateResolver) -> InResolver:
    return InResolver(run_recipe, resolver)


def hosts_file_addresses(name: str) -> list[str]:
    """The addresses the private resolver's /etc/hosts gives ``name``."""
    found: list[str] = []
    for line in private_resolver_file("hosts").splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) >= 2 and name.lower() in (word.lower() for word in words[1:]) and words[0] not in found:
            found.append(words[0])
    return found


def private_resolver_file(name: str) -> str:
    return FILES[name]


def resolver_tool(run_recipe: InResolver) -> str | None:
    """The tool the recipe resolves a name missing from /etc/hosts with, in this shell."""
    if run_recipe.has("getent"):
        return "getent ahosts"
    for tool in ("nslookup", "dig"):
        if run_recipe.has(tool):
            return "dig +short" if tool == "dig" else tool
    return "busybox nslookup" if run_recipe.has("busybox") else None


def resolve_lines(lines: list[dict]) -> list[dict]:
    return [line for line in lines if line["check"] == "resolve"]


def test_resolv_conf_line(run_recipe):
    lines = run_recipe("dns")
    first = lines[0]
    assert list(first) == RESOLV_CONF_KEYS
    assert first["check"] == "resolv_conf"
    assert first["target"] == "/etc/resolv.conf"
    nameservers, search, options = parse_resolv_conf(private_resolver_file("resolv.conf"))
    assert nameservers == ["127.0.0.1"]
    assert (first["nameservers"], first["search"], first["options"]) == (nameservers, search, options)
    assert first["ok"] is bool(nameservers)
    if nameservers:
        detail = f"{len(nameservers)} nameserver(s), {len(search)} search domain(s)"
    else:
        detail = "no nameserver line: the resolver falls back to 127.0.0.1"
    if options:
        detail += ", options: " + " ".join(options)
    assert first["detail"] == detail


def test_no_names(run_recipe):
    lines = run_recipe("dns")
    assert [line["check"] for line in lines] == ["resolv_conf", "summary"]
    assert lines[1] == {"check": "summary", "target": "dns", "ok": lines[0]["ok"], "detail": "0 of 0 names resolved"}


def test_localhost_resolves(run_recipe):
    lines = run_recipe("dns", "localhost")
    assert len(lines) == 3
    line = lines[1]
    assert list(line) == RESOLVE_KEYS
    assert line["check"] == "resolve"
    assert line["target"] == "localhost"
    assert line["ok"] is True
    assert isinstance(line["ms"], int) and line["ms"] >= 0
    for address in line["addresses"]:
        ipaddress.ip_address(address)
    # getent reads the same /etc/hosts (nsswitch "files dns"); without getent (busybox image) the script does.
    assert line["tool"] == ("getent ahosts" if run_recipe.has("getent") else "/etc/hosts")
    assert line["addresses"] == hosts_file_addresses("localhost") == ["127.0.0.1"]
    assert line["detail"] == f"{len(line['addresses'])} address(es) via {line['tool']}"
    assert lines[2] == {"check": "summary", "target": "dns", "ok": lines[0]["ok"], "detail": "1 of 1 names resolved"}


def test_invalid_name_does_not_resolve(run_recipe):
    lines = run_recipe("dns", INVALID)
    line = lines[1]
    assert list(line) == RESOLVE_KEYS
    assert (line["check"], line["target"], line["ok"], line["addresses"]) == ("resolve", INVALID, False, [])
    assert isinstance(line["ms"], int) and line["ms"] >= 0
    if run_recipe.has("getent"):
        assert line["tool"] == "getent ahosts"
        assert line["detail"] in (
            "not found (getent ahosts exit 2: no such name, or no address for it)",
            "getent ahosts timed out after 5s",
        )
    elif run_recipe.has("nslookup"):
        assert line["tool"] == "nslookup"
        assert line["detail"].startswith("not found (nslookup") or line["detail"] == "nslookup timed out after 5s"
    assert lines[2] == {"check": "summary", "target": "dns", "ok": False, "detail": "0 of 1 names resolved"}


def test_invalid_name_is_asked_of_the_private_resolver(run_recipe):
    before = len(run_recipe.resolver.queries())
    line = run_recipe("dns", INVALID)[1]
    if line["tool"] is None:
        pytest.skip(f"no resolver tool in {run_recipe.shell.name}")
    assert INVALID in [query["name"] for query in run_recipe.resolver.queries()[before:]]
    assert (line["ok"], line["addresses"]) == (False, [])


def test_name_resolves_through_the_private_resolver(run_recipe):
    name = "web.kd.test"
    before = len(run_recipe.resolver.queries())
    lines = run_recipe("dns", name)
    line = lines[1]
    tool = resolver_tool(run_recipe)
    if tool is None:
        pytest.skip(f"no resolver tool in {run_recipe.shell.name}")
    assert (line["target"], line["ok"], line["tool"]) == (name, True, tool)
    # The order of A and AAAA answers is the resolver library's (gai.conf): compare them as sets.
    assert sorted(line["addresses"]) == sorted(ZONE[name])
    assert line["detail"] == f"2 address(es) via {tool}"
    assert name in [query["name"] for query in run_recipe.resolver.queries()[before:]]
    assert lines[2] == {"check": "summary", "target": "dns", "ok": True, "detail": "1 of 1 names resolved"}


def test_summary_counts_every_name(run_recipe):
    lines = run_recipe("dns", "localhost", INVALID, "LOCALHOST")
    assert [line["check"] for line in lines] == ["resolv_conf", "resolve", "resolve", "resolve", "summary"]
    assert [line["ok"] for line in resolve_lines(lines)] == [True, False, True]
    assert lines[-1] == {"check": "summary", "target": "dns", "ok": False, "detail": "2 of 3 names resolved"}


@pytest.mark.parametrize(
    "name",
    [
        'quo"te.invalid',
        "back\\slash.invalid",
        "sp ace.invalid",
        "tab\there.invalid",
        "new\nline.invalid",
        "carriage\rreturn.invalid",
        "ctl\x01\x07\x1b[31m.invalid",
        "ünïcödé.invalid",
        "*.invalid",
        "%s%d$(id).invalid",
        "",
        "-n",
        "+short",
        "@10.96.0.10",
    ],
    ids=["quote", "backslash", "space", "tab", "newline", "cr", "control", "unicode", "glob", "format", "empty", "dash", "plus", "at"],
)
def test_awkward_names_stay_json(run_recipe, name):
    lines = run_recipe("dns", name)
    assert [line["check"] for line in lines] == ["resolv_conf", "resolve", "summary"]
    line = lines[1]
    assert list(line) == RESOLVE_KEYS
    assert line["target"] == UNESCAPED_CONTROL.sub("", name)
    assert (line["ok"], line["addresses"]) == (False, [])
    if name == "":
        assert (line["detail"], line["tool"]) == ("empty name", None)
    elif name[0] in "-+@":
        # Never handed to a tool, which could take it for an option or (dig) a server.
        assert (line["detail"], line["tool"]) == (f'invalid name: starts with "{name[0]}"', None)
    assert lines[2]["detail"] == "0 of 1 names resolved"


def test_many_names_in_one_run(run_recipe):
    names = [f"n{index}.invalid" for index in range(5)] + ["localhost"]
    lines = run_recipe("dns", *names)
    assert [line["target"] for line in resolve_lines(lines)] == names
    assert lines[-1]["detail"] == "1 of 6 names resolved"


# --- fallbacks ---------------------------------------------------------------------


def test_without_getent_reads_hosts_file(run_recipe):
    lines = run_recipe("dns", "localhost", hide=NO_RESOLVER_TOOLS)
    line = lines[1]
    assert (line["ok"], line["tool"], line["addresses"]) == (True, "/etc/hosts", hosts_file_addresses("localhost"))


def test_without_any_resolver_tool(run_recipe):
    found = [tool for tool in NO_RESOLVER_TOOLS if run_recipe.has(tool, NO_RESOLVER_TOOLS)]
    if found:
        pytest.skip(f"{run_recipe.shell.name} finds {', '.join(found)} without PATH (its busybox runs its own applets)")
    lines = run_recipe("dns", INVALID, hide=NO_RESOLVER_TOOLS)
    line = lines[1]
    assert line == {
        "check": "resolve",
        "target": INVALID,
        "ok": False,
        "detail": "not in /etc/hosts, and no resolver tool in this image (getent, nslookup, dig or busybox nslookup)",
        "ms": line["ms"],
        "addresses": [],
        "tool": None,
    }


def test_getent_without_ahosts_falls_back_to_hosts(run_recipe, make_stub):
    stubs = make_stub(
        "getent",
        'case "$1" in\n'
        '  ahosts) echo "Unknown database: ahosts" >&2; exit 1 ;;\n'
        '  hosts) echo "10.96.0.1       kubernetes.default.svc.cluster.local kubernetes.default.svc"; exit 0 ;;\n'
        "esac\nexit 1\n",
    )
    line = run_recipe("dns", "kubernetes.default.svc", stubs=stubs)[1]
    assert (line["ok"], line["tool"], line["addresses"], line["detail"]) == (True, "getent hosts", ["10.96.0.1"], "1 address(es) via getent hosts")


def test_getent_v4_and_v6(run_recipe, make_stub):
    stubs = make_stub(
        "getent",
        "cat <<'EOF'\n"
        "10.96.0.1       STREAM kubernetes.default.svc.cluster.local\n"
        "10.96.0.1       DGRAM  \n"
        "10.96.0.1       RAW    \n"
        "fd00:10:96::1   STREAM \n"
        "fd00:10:96::1   DGRAM  \n"
        "EOF\n",
    )
    line = run_recipe("dns", "kubernetes.default.svc", stubs=stubs)[1]
    assert (line["ok"], line["tool"], line["addresses"]) == (True, "getent ahosts", ["10.96.0.1", "fd00:10:96::1"])
    assert line["detail"] == "2 address(es) via getent ahosts"


# nslookup's output in its common implementations. BUSYBOX is busybox 1.35's, recorded
# against a loopback DNS server; BIND is bind9's nslookup; OLD_BUSYBOX is busybox <= 1.28.
BUSYBOX = (
    "Server:\t\t10.96.0.10\nAddress:\t10.96.0.10:53\n\n"
    "Non-authoritative answer:\nName:\tkubernetes.default.svc.cluster.local\nAddress: 10.96.0.1\n\n"
    "Non-authoritative answer:\nName:\tkubernetes.default.svc.cluster.local\nAddress: fd00::1\n\n"
)
BUSYBOX_NXDOMAIN = (
    "Server:\t\t10.96.0.10\nAddress:\t10.96.0.10:53\n\n** server can't find nope.invalid: NXDOMAIN\n\n** server can't find nope.invalid: NXDOMAIN\n\n"
)
BIND = (
    "Server:\t\t10.96.0.10\nAddress:\t10.96.0.10#53\n\n"
    "Name:\tkubernetes.default.svc.cluster.local\nAddress: 10.96.0.1\n"
    "www.example.com\tcanonical name = example.com.\nName:\texample.com\nAddress: 2001:db8::1\n\n"
)
BIND_NXDOMAIN = "Server:\t\t10.96.0.10\nAddress:\t10.96.0.10#53\n\n** server can't find nope.invalid: NXDOMAIN\n\n"
OLD_BUSYBOX = (
    "Server:    10.96.0.10\nAddress 1: 10.96.0.10 kube-dns.kube-system.svc.cluster.local\n\n"
    "Name:      kubernetes.default\nAddress 1: 10.96.0.1 kubernetes.default.svc.cluster.local\n"
)
OLD_BUSYBOX_FAIL = "Server:    10.96.0.10\nAddress 1: 10.96.0.10 kube-dns.kube-system.svc.cluster.local\n\nnslookup: can't resolve 'nope.invalid'\n"


@pytest.mark.parametrize(
    ("output", "status", "addresses", "detail"),
    [
        (BUSYBOX, 0, ["10.96.0.1", "fd00::1"], "2 address(es) via nslookup"),
        (BIND, 0, ["10.96.0.1", "2001:db8::1"], "2 address(es) via nslookup"),
        (OLD_BUSYBOX, 0, ["10.96.0.1"], "1 address(es) via nslookup"),
        (BUSYBOX_NXDOMAIN, 1, [], "not found (nslookup: ** server can't find nope.invalid: NXDOMAIN)"),
        (BIND_NXDOMAIN, 1, [], "not found (nslookup: ** server can't find nope.invalid: NXDOMAIN)"),
        (OLD_BUSYBOX_FAIL, 1, [], "not found (nslookup: nslookup: can't resolve 'nope.invalid')"),
        ("", 1, [], "not found (nslookup exit 1)"),
    ],
    ids=["busybox", "bind", "old-busybox", "busybox-nxdomain", "bind-nxdomain", "old-busybox-fail", "silent"],
)
def test_nslookup_output(run_recipe, make_stub, tmp_path, output, status, addresses, detail):
    canned = tmp_path / "nslookup.out"
    canned.write_text(output, encoding="utf-8")
    stubs = make_stub("nslookup", f"cat '{canned}'\nexit {status}\n")
    if not run_recipe.runs_stub("nslookup", stubs, hide=("getent",)):
        pytest.skip(f"{run_recipe.shell.name} runs its busybox's own nslookup, not the stub")
    line = run_recipe("dns", "kubernetes.default.svc.cluster.local", hide=("getent",), stubs=stubs)[1]
    assert (line["tool"], line["addresses"], line["ok"], line["detail"]) == ("nslookup", addresses, bool(addresses), detail)


@pytest.mark.parametrize(
    ("a_output", "aaaa_output", "status", "addresses", "detail"),
    [
        ("web.example.\n10.96.0.1\n", "fd00::1\n", 0, ["10.96.0.1", "fd00::1"], "2 address(es) via dig +short"),
        ("", "", 0, [], "not found (dig +short: no A or AAAA record)"),
        (
            ";; connection timed out; no servers could be reached\n",
            ";; connection timed out; no servers could be reached\n",
            9,
            [],
            "not found (dig +short: ;; connection timed out; no servers could be reached)",
        ),
    ],
    ids=["answer", "nxdomain", "no-server"],
)
def test_dig_output(run_recipe, make_stub, a_output, aaaa_output, status, addresses, detail):
    stubs = make_stub(
        "dig",
        f"case \"$*\" in\n  *' A '*' AAAA') printf '%s' '{a_output}{aaaa_output}' ;;\n  *) echo 'unexpected arguments:' \"$@\" ;;\nesac\nexit {status}\n",
    )
    if run_recipe.has("nslookup", ("getent", "nslookup")) or not run_recipe.runs_stub("dig", stubs, hide=("getent", "nslookup")):
        pytest.skip(f"{run_recipe.shell.name} runs its busybox's own nslookup, not the dig stub")
    line = run_recipe("dns", "web.example", hide=("getent", "nslookup"), stubs=stubs)[1]
    assert (line["tool"], line["addresses"], line["ok"], line["detail"]) == ("dig +short", addresses, bool(addresses), detail)


@pytest.mark.parametrize("hide", [(), ("timeout",)], ids=["timeout-command", "shell-watchdog"])
def test_hanging_lookup_is_killed(run_recipe, make_stub, hide):
    stubs = make_stub("getent", "exec sleep 30\n")
    # The stub sleeps 30s: the run ends within run_recipe's timeout (a hang guard) only if the recipe's watchdog
    # killed it, and the detail says that it did.
    lines = run_recipe("dns", "kubernetes.default.svc", hide=hide, stubs=stubs, env={"KD_DNS_TIMEOUT": "1"}, timeout=25)
    line = lines[1]
    assert (line["ok"], line["tool"], line["detail"]) == (False, "getent ahosts", "getent ahosts timed out after 1s")
    assert lines[-1]["ok"] is False


def test_script_has_no_jinja_markers():
    """roles/recipe/tasks passes the script through Ansible variables, which template it."""
    text = (Path(__file__).resolve().parents[3] / "roles" / "recipe" / "files" / "dns.sh").read_text(encoding="utf-8")
    for marker in ("{{", "}}", "{%", "%}", "{#", "#}"):
        assert marker not in text
