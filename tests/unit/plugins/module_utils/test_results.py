# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for plugins/module_utils/_results.py and _results_manager.py: records, parsing and ``ResultsManager``.

Pods are the recorded API objects in tests/unit/fixtures/pods (see the README there); a
test that needs a variant (another namespace or name, a container that has finished)
edits a copy and says so. ``ResultsManager.collect`` runs against ``FakeClient``, a stand-in for
``EphemeralClient`` with only the three calls the manager makes (``list_pods``,
``wait_for_pods``, ``read_container_log``), and in a few tests against a real ``EphemeralClient``
whose ``core`` is ``FakeCore`` (same style as test_client.py: CoreCalls methods called
with ``_preload_content=False`` returning an object with ``.data``).
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from ansible_collections.kubedebug.ephemeral.plugins.module_utils._client import RBAC_DOC, CoreCalls, EphemeralClient
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._errors import KubedebugError
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._outcome import Outcome
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._results import (
    DEFAULT_LIMIT_BYTES,
    PARSE_MODES,
    RECORD_KEYS,
    WAIT_MODES,
    Options,
    _seconds_between,
    apply_log,
    collection_failure,
    empty_record,
    empty_selection_warning,
    parse_output,
    records_for_pod,
    validate_options,
    wants_log,
)
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._results_manager import ResultsManager, ResultsRequest
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._selection import Selection, parse_ref, selection_from
from ansible_collections.kubedebug.ephemeral.tests.unit.api_objects import api_error, load_pod

NS = "unit-fixtures"
BUSYBOX = "docker.io/library/busybox:1.36"

# The record keys as documented (docs/docsite/rst/results.rst and the RETURN blocks), spelled
# out here rather than taken from the module so that a dropped or renamed key fails a test.
DOCUMENTED_KEYS = {
    "namespace",
    "pod",
    "node",
    "container",
    "image",
    "target_container",
    "state",
    "reason",
    "message",
    "exit_code",
    "started_at",
    "finished_at",
    "duration_seconds",
    "logs",
    "output",
    "truncated",
    "parse_error",
    "bad_lines",
    "partial_line",
    "invalid_utf8",
    "error",
}


# --------------------------------------------------------------------------- helpers


def record(namespace: str, pod: str, container: str | None, **fields: Any) -> dict[str, Any]:
    """The full expected record: every documented key, ``None`` unless given (``truncated``: False, ``bad_lines``: [],
    ``invalid_utf8``: 0)."""
    expected: dict[str, Any] = dict.fromkeys(DOCUMENTED_KEYS)
    expected.update(namespace=namespace, pod=pod, container=container, truncated=False, bad_lines=[], invalid_utf8=0)
    unknown = set(fields) - DOCUMENTED_KEYS
    assert not unknown, f"not record keys: {unknown}"
    expected.update(fields)
    return expected


# What records_for_pod makes of the recorded pods (values copied from the JSON files).
EXITED = record(
    NS, "states", "exited",
    node="node-000001", image=BUSYBOX, state="terminated", reason="Error", exit_code=3,
    started_at="2026-11-25T09:09:29Z", finished_at="2026-11-25T09:09:32Z", duration_seconds=3.0,
)  # fmt: skip
PULL_FAIL = record(
    NS, "states", "pull-fail",
    node="node-000001", image="registry.invalid/debug:1", state="waiting", reason="ImagePullBackOff",
    message='Back-off pulling image "registry.invalid/debug:1"',
)  # fmt: skip
FRESH = record(NS, "states", "fresh", node="node-000001", image=BUSYBOX, state="running", started_at="2026-11-25T09:09:30Z")
DEBUG = record(NS, "debugged", "debug", node="node-000000", image=BUSYBOX, target_container="app", state="running", started_at="2026-11-25T09:09:14Z")


def moved(pod: dict[str, Any], namespace: str, name: str) -> dict[str, Any]:
    """A copy of a recorded pod under another namespace and name (a variant made for the test)."""
    copied = copy.deepcopy(pod)
    copied["metadata"]["namespace"] = namespace
    copied["metadata"]["name"] = name
    return copied


def terminate(pod: dict[str, Any], container: str, *, exit_code: int = 0, finished_at: str = "2026-11-25T09:10:00Z") -> dict[str, Any]:
    """A copy of ``pod`` in which ``container`` has terminated (a variant made for the test)."""
    copied = copy.deepcopy(pod)
    for status in copied["status"]["ephemeralContainerStatuses"]:
        if status["name"] == container:
            started = (status["state"].get("running") or {}).get("startedAt", "2026-11-25T09:09:00Z")
            status["state"] = {
                "terminated": {
                    "exitCode": exit_code,
                    "reason": "Completed" if exit_code == 0 else "Error",
                    "startedAt": started,
                    "finishedAt": finished_at,
                }
            }
            return copied
    raise AssertionError(f"{container} not in the pod")


class FakeClient:
    """``EphemeralClient`` as ``_results`` uses it; every call is recorded.

    ``pods``: what the cluster holds (a LIST filters them by namespace and by a
    ``metadata.name=`` field selector). ``waited``: what ``wait_for_pods`` returns, keyed
    by ``(namespace, name)``. ``logs``: bytes, or an exception to raise, per
    ``(namespace, pod, container)`` (``None``: the kubelet has no instance to read); a log
    that is not listed fails the test.
    """

    def __init__(
        self,
        pods: list[dict[str, Any]],
        *,
        waited: Mapping[tuple[str, str], dict[str, Any]] | None = None,
        logs: Mapping[tuple[str, str, str], bytes | BaseException | None] | None = None,
        barrier: threading.Barrier | None = None,
    ) -> None:
        self.pods = pods
        self.waited = dict(waited or {})
        self.logs = dict(logs or {})
        self.barrier = barrier
        self.list_calls: list[tuple[list[str] | None, str | None, str | None]] = []
        self.wait_calls: list[dict[str, Any]] = []
        self.log_calls: list[tuple[str, str, str, int | None, int | None]] = []
        self.lock = threading.Lock()

    def list_pods(self, namespaces: list[str] | None, *, label_selector: str | None = None, field_selector: str | None = None) -> list[dict[str, Any]]:
        self.list_calls.append((None if namespaces is None else list(namespaces), label_selector, field_selector))
        found = []
        for pod in self.pods:
            meta = pod["metadata"]
            if namespaces is not None and meta["namespace"] not in namespaces:
                continue
            if field_selector is not None:
                assert field_selector.startswith("metadata.name="), field_selector
                if meta["name"] != field_selector.split("=", 1)[1]:
                    continue
            found.append(copy.deepcopy(pod))
        return found

    def wait_for_pods(
        self, targets: Mapping[str, list[str]], done: Callable[[Mapping[str, Any]], bool], timeout: float
    ) -> dict[tuple[str, str], dict[str, Any]]:
        self.wait_calls.append(
            {
                "targets": {ns: list(names) for ns, names in targets.items()},
                "timeout": timeout,
                # what the done callback says of each pod the wait hands back
                "done": {key: done(pod) for key, pod in self.waited.items()},
            }
        )
        return copy.deepcopy(self.waited)

    def read_container_log(
        self, namespace: str, pod: str, container: str, *, previous: bool = False, tail_lines: int | None = None, limit_bytes: int | None = None
    ) -> bytes | None:
        assert previous is False, "the results never read a previous log"
        with self.lock:
            self.log_calls.append((namespace, pod, container, tail_lines, limit_bytes))
        if self.barrier is not None:
            self.barrier.wait()
        answer = self.logs.get((namespace, pod, container))
        assert (namespace, pod, container) in self.logs, f"unexpected log read {namespace}/{pod}/{container}"
        if isinstance(answer, BaseException):
            raise answer
        return answer


def collect(client: Any, selection: Selection, opts: Options) -> list[dict[str, Any]]:
    return ResultsManager(client, ResultsRequest(selection, opts)).collect()


def run_collect(client: FakeClient, selection: Selection, **options: Any) -> list[dict[str, Any]]:
    return collect(client, selection, Options(**options))


def sel(pods: Any, namespace: Any = None, label_selector: Any = None, all_namespaces: bool = False) -> Selection:
    """``selection_from`` with the other options as a module's ``params.get`` would give them."""
    return selection_from(pods, {"namespace": namespace, "label_selector": label_selector, "all_namespaces": all_namespaces}.get)


def get_options(**options: Any) -> Any:
    """The info module's ``params.get`` with its defaults (what ``ResultsRequest.from_options`` reads)."""
    defaults = {"wait_for": "none", "wait_timeout": 120, "logs": False, "tail_lines": None, "limit_bytes": DEFAULT_LIMIT_BYTES, "parse": "raw", "parallel": 10}
    return {**defaults, **options}.get


def refs(*terms: str) -> Selection:
    return Selection(refs=tuple(parse_ref(t, None) for t in terms))


# --------------------------------------------------------------------------- constants


def test_record_keys_are_the_documented_ones() -> None:
    assert len(RECORD_KEYS) == len(set(RECORD_KEYS)) == 21
    assert set(RECORD_KEYS) == DOCUMENTED_KEYS


def test_modes_and_defaults() -> None:
    assert PARSE_MODES == ("raw", "lines", "json", "json_lines")
    assert WAIT_MODES == ("none", "running", "terminated")
    assert DEFAULT_LIMIT_BYTES == 1048576
    assert Options() == Options(
        containers=(),
        wait_for="terminated",
        wait_timeout=120,
        logs=False,
        tail_lines=None,
        limit_bytes=1048576,
        parse="raw",
        parallel=10,
    )


def test_empty_record() -> None:
    assert empty_record("ns", "web", "debug") == record("ns", "web", "debug")
    assert empty_record("ns", "web", None, "boom") == record("ns", "web", None, error="boom")


# --------------------------------------------------------------------------- validate_options


def test_validate_options_accepts_the_defaults_and_the_bounds() -> None:
    for opts in (
        Options(),
        Options(wait_timeout=0, parallel=1, tail_lines=1, limit_bytes=1),
        Options(tail_lines=None, limit_bytes=None),
        *(Options(parse=p) for p in PARSE_MODES),
        *(Options(wait_for=w) for w in WAIT_MODES),
    ):
        validate_options(opts)
        assert collect(FakeClient([]), Selection(refs=()), opts) == []


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"parse": "yaml"}, "parse must be one of raw, lines, json, json_lines; got 'yaml'"),
        ({"parse": "JSON"}, "parse must be one of raw, lines, json, json_lines; got 'JSON'"),
        ({"wait_for": "done"}, "wait_for must be one of none, running, terminated; got 'done'"),
        ({"wait_for": ""}, "wait_for must be one of none, running, terminated; got ''"),
        ({"tail_lines": 0}, "tail_lines must be a positive number (or unset); got 0"),
        ({"tail_lines": -10}, "tail_lines must be a positive number (or unset); got -10"),
        ({"limit_bytes": 0}, "limit_bytes must be a positive number (or unset); got 0"),
        ({"limit_bytes": -1}, "limit_bytes must be a positive number (or unset); got -1"),
        ({"wait_timeout": -1}, "wait_timeout must be 0 to 604800 seconds (a week); got -1"),
        ({"wait_timeout": -0.5}, "wait_timeout must be 0 to 604800 seconds (a week); got -0.5"),
        ({"wait_timeout": 2**63}, "wait_timeout must be 0 to 604800 seconds (a week); got 9223372036854775808"),
        ({"parallel": 0}, "parallel must be at least 1; got 0"),
        ({"parallel": -3}, "parallel must be at least 1; got -3"),
    ],
)
def test_validate_options_refuses(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(KubedebugError) as err:
        validate_options(Options(**changes))
    assert err.value.msg == message


def test_request_validates_before_any_api_call() -> None:
    # The request is built (and refused) before the front ends create a client.
    with pytest.raises(KubedebugError) as err:
        ResultsRequest.from_options([f"{NS}/states"], get_options(parallel=0))
    assert err.value.msg == "parallel must be at least 1; got 0"
    with pytest.raises(KubedebugError) as err:
        ResultsRequest.from_options([f"{NS}/states"], get_options(parse="yaml"))
    assert err.value.msg == "parse must be one of raw, lines, json, json_lines; got 'yaml'"


def test_request_from_options() -> None:
    request = ResultsRequest.from_options(["states", "ns-b/web-0"], get_options(namespace=NS, container=["exited"], logs=True, tail_lines=5))
    assert request == ResultsRequest(
        Selection(refs=((NS, "states"), ("ns-b", "web-0"))),
        Options(containers=("exited",), wait_for="none", logs=True, tail_lines=5),
    )


# --------------------------------------------------------------------------- parse_output


@pytest.mark.parametrize("text", ["", "hello\n", "a\r\nb\n\n", "{not json", "\ufffd binary-ish \x00"])
def test_parse_output_raw_is_the_text(text: str) -> None:
    assert parse_output(text, "raw") == (text, None, ())


@pytest.mark.parametrize(
    ("text", "lines"),
    [
        ("", []),
        ("one", ["one"]),
        ("one\n", ["one"]),
        ("one\ntwo\n", ["one", "two"]),
        ("one\r\ntwo\r\n", ["one", "two"]),
        ("one\n\n  \nfour", ["one", "", "  ", "four"]),  # blank lines are kept
    ],
)
def test_parse_output_lines(text: str, lines: list[str]) -> None:
    assert parse_output(text, "lines") == (lines, None, ())


@pytest.mark.parametrize(
    ("text", "output"),
    [
        ('{"ok": true, "n": [1, 2]}', {"ok": True, "n": [1, 2]}),
        ('{\n  "ok": true\n}\n', {"ok": True}),  # pretty-printed over several lines
        ("[1, 2]\n", [1, 2]),
        ("42", 42),
        ('"text"', "text"),
    ],
)
def test_parse_output_json(text: str, output: Any) -> None:
    assert parse_output(text, "json") == (output, None, ())


@pytest.mark.parametrize(
    ("text", "detail", "bad_line"),
    [
        ("", "Expecting value: line 1 column 1 (char 0)", {"line": 1, "text": ""}),
        ("ready\n", "Expecting value: line 1 column 1 (char 0)", {"line": 1, "text": "ready"}),
        ('{"a": 1}\n{"b": 2}\n', "Extra data: line 2 column 1 (char 9)", {"line": 2, "text": '{"b": 2}'}),
    ],
)
def test_parse_output_json_invalid(text: str, detail: str, bad_line: dict[str, Any]) -> None:
    output, error, bad_lines = parse_output(text, "json")
    assert output is None
    assert error == f"logs are not one JSON document: {detail}"
    # The line the JSON error points at, so that users need not count lines in the logs.
    assert bad_lines == ({**bad_line, "error": detail},)


def test_parse_output_json_lines() -> None:
    text = '{"name": "a", "ok": true}\n\n   \n[1]\n7\n"s"\r\nnull\n{"name": "b", "ok": false}'
    assert parse_output(text, "json_lines") == ([{"name": "a", "ok": True}, [1], 7, "s", None, {"name": "b", "ok": False}], None, ())


@pytest.mark.parametrize("text", ["", "\n", "\n  \n\t\n"])
def test_parse_output_json_lines_nothing(text: str) -> None:
    assert parse_output(text, "json_lines") == ([], None, ())


NOT_JSON = "Expecting value: line 1 column 1 (char 0)"


def test_parse_output_json_lines_keeps_every_good_line_around_bad_ones() -> None:
    # Line numbers count blank lines too: the bad lines are the 4th and 6th lines of the text.
    text = '{"a": 1}\n\n{"b": 2}\nstarting up\n{"c": 3}\nnot json either\n{"d": 4}\n'
    output, error, bad_lines = parse_output(text, "json_lines")
    assert output == [{"a": 1}, {"b": 2}, {"c": 3}, {"d": 4}]  # before, between and after the bad lines
    assert bad_lines == (
        {"line": 4, "text": "starting up", "error": NOT_JSON},
        {"line": 6, "text": "not json either", "error": NOT_JSON},
    )
    assert error == f"2 lines are not JSON (lines 4, 6; see bad_lines); every other line was parsed. Line 4: {NOT_JSON}: 'starting up'"


def test_parse_output_json_lines_one_bad_line_reads_as_before() -> None:
    output, error, bad_lines = parse_output('{"a": 1}\nstarting up\n{"c": 3}\n', "json_lines")
    assert output == [{"a": 1}, {"c": 3}]
    assert error == f"line 2 is not JSON: {NOT_JSON}: 'starting up'"
    assert bad_lines == ({"line": 2, "text": "starting up", "error": NOT_JSON},)


def test_parse_output_json_lines_bad_first_line() -> None:
    detail = "Expecting value: line 1 column 7 (char 6)"
    assert parse_output('{"a": \n{"b": 2}\n', "json_lines") == (
        [{"b": 2}],
        f"line 1 is not JSON: {detail}: '{{\"a\": '",
        ({"line": 1, "text": '{"a": ', "error": detail},),
    )


def test_parse_output_json_lines_quotes_at_most_200_characters_of_the_bad_line() -> None:
    bad = "x" * 500
    output, error, bad_lines = parse_output(f"1\n{bad}\n2\n", "json_lines")
    assert output == [1, 2]
    assert error == f"line 2 is not JSON: {NOT_JSON}: {'x' * 200!r}"
    assert bad_lines == ({"line": 2, "text": "x" * 200, "error": NOT_JSON},)


def test_parse_output_json_lines_bounds_what_it_lists_but_counts_every_bad_line() -> None:
    # A container that prints nothing but noise must not make a record of hundreds of thousands of entries.
    lines = [f"noise {n}" if n % 2 else json.dumps({"n": n}) for n in range(1, 1001)]
    output, error, bad_lines = parse_output("\n".join(lines) + "\n", "json_lines")
    assert output == [{"n": n} for n in range(2, 1001, 2)]
    assert [b["line"] for b in bad_lines] == list(range(1, 200, 2))  # the first 100
    named = ", ".join(str(n) for n in range(1, 40, 2))  # the first 20
    assert error == (
        f"500 lines are not JSON (lines {named} and 480 more; bad_lines has the first 100); every other line was parsed. Line 1: {NOT_JSON}: 'noise 1'"
    )


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85"])
def test_parse_output_json_lines_with_unicode_line_separators_in_strings(separator: str) -> None:
    docs = [{"msg": f"first{separator}second"}, {"ok": True}]
    text = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs)
    assert text.count("\n") == 2  # two JSON Lines
    assert parse_output(text, "json_lines") == (docs, None, ())


# --------------------------------------------------------------------------- records_for_pod


def test_records_for_pod_states() -> None:
    records = records_for_pod(load_pod("ephemeral-states"))
    assert records == [EXITED, PULL_FAIL, FRESH]  # in the pod's spec order
    for rec in records:
        assert set(rec) == set(RECORD_KEYS)


def test_records_for_pod_debugged_has_its_target() -> None:
    assert records_for_pod(load_pod("debugged")) == [DEBUG]


def test_records_for_pod_latest_digest() -> None:
    image = "docker.io/library/busybox:latest@sha256:" + "a" * 64
    assert records_for_pod(load_pod("debugged-latest-digest")) == [
        record(NS, "digest", "debug", node="node-000000", image=image, target_container="app", state="running", started_at="2026-11-25T09:11:47Z")
    ]


def test_records_for_pod_early_states_are_waiting_or_pending() -> None:
    assert records_for_pod(load_pod("ephemeral-states-early")) == [
        record(NS, "states", "exited", node="node-000001", image=BUSYBOX, state="waiting", reason="ContainerCreating"),
        record(NS, "states", "pull-fail", node="node-000001", image="registry.invalid/debug:1", state="pending"),
        record(NS, "states", "fresh", node="node-000001", image=BUSYBOX, state="pending"),
    ]


def test_records_for_pod_module_added_in_another_namespace() -> None:
    records = records_for_pod(load_pod("module-added"))
    assert [(r["namespace"], r["pod"], r["container"], r["target_container"], r["state"]) for r in records] == [
        ("unit-fixtures-rerun", "rerun", "full", "app", "running"),
        ("unit-fixtures-rerun", "rerun", "ro-false", None, "running"),
        ("unit-fixtures-rerun", "rerun", "fieldref", None, "running"),
    ]


@pytest.mark.parametrize("name", ["plain", "with-volumes", "succeeded", "windows", "mirror", "terminating"])
def test_records_for_pod_without_ephemeral_containers(name: str) -> None:
    assert records_for_pod(load_pod(name)) == []


def test_records_for_pod_selected_containers_in_the_requested_order() -> None:
    assert records_for_pod(load_pod("ephemeral-states"), ["fresh", "exited"]) == [FRESH, EXITED]


def test_records_for_pod_duplicate_names_are_collapsed() -> None:
    assert records_for_pod(load_pod("ephemeral-states"), ("exited", "fresh", "exited", "fresh")) == [EXITED, FRESH]


def test_records_for_pod_container_the_pod_lacks() -> None:
    records = records_for_pod(load_pod("ephemeral-states"), ["fresh", "ghost"])
    assert records == [
        FRESH,
        record(
            NS, "states", "ghost",
            error="pod unit-fixtures/states has no ephemeral container named 'ghost' (it has: exited, pull-fail, fresh)",
        ),
    ]  # fmt: skip


def test_records_for_pod_container_asked_of_a_pod_without_any() -> None:
    assert records_for_pod(load_pod("plain"), ["debug", "debug"]) == [
        record(NS, "plain", "debug", error="pod unit-fixtures/plain has no ephemeral container named 'debug' (it has: none)")
    ]


def test_records_for_pod_a_container_without_a_status_is_pending() -> None:
    pod = load_pod("debugged")
    del pod["status"]["ephemeralContainerStatuses"]  # variant: the kubelet has not reported yet
    assert records_for_pod(pod) == [record(NS, "debugged", "debug", node="node-000000", image=BUSYBOX, target_container="app", state="pending")]


def test_records_for_pod_terminated_with_a_message() -> None:
    pod = terminate(load_pod("debugged"), "debug", exit_code=137, finished_at="2026-11-26T09:09:13Z")
    pod["status"]["ephemeralContainerStatuses"][0]["state"]["terminated"].update(reason="OOMKilled", message="out of memory")
    assert records_for_pod(pod) == [
        record(
            NS, "debugged", "debug",
            node="node-000000", image=BUSYBOX, target_container="app", state="terminated", reason="OOMKilled", message="out of memory",
            exit_code=137, started_at="2026-11-25T09:09:14Z", finished_at="2026-11-26T09:09:13Z",
            duration_seconds=86399.0,  # one day less one second, across midnight
        )
    ]  # fmt: skip


def test_records_for_pod_does_not_change_the_pod() -> None:
    pod = load_pod("ephemeral-states")
    before = copy.deepcopy(pod)
    records = records_for_pod(pod, ["exited"])
    records[0]["state"] = "changed"
    assert pod == before


@pytest.mark.parametrize(
    ("start", "end", "seconds"),
    [
        ("2026-11-25T09:09:29Z", "2026-11-25T09:09:32Z", 3.0),
        ("2026-11-25T09:09:29Z", "2026-11-25T09:09:29Z", 0.0),
        ("2026-12-31T23:59:59Z", "2027-01-01T00:01:00Z", 61.0),
        ("2026-11-25T09:09:32Z", "2026-11-25T09:09:29Z", -3.0),  # as the server says, not clamped
        ("2026-11-25T09:09:29Z", None, None),
        (None, "2026-11-25T09:09:29Z", None),
        ("", "2026-11-25T09:09:29Z", None),
        ("yesterday", "2026-11-25T09:09:29Z", None),
        ("2026-11-25 09:09:29", "2026-11-25T09:09:29Z", None),
    ],
)
def test_seconds_between(start: str | None, end: str | None, seconds: float | None) -> None:
    assert _seconds_between(start, end) == seconds


# --------------------------------------------------------------------------- collection_failure


def err(n: int) -> dict[str, Any]:
    return record("ns", f"p{n}", None, error=f"pod ns/p{n} not found")


def test_collection_failure_nothing_selected() -> None:
    assert collection_failure([]) is None


def test_collection_failure_no_errors() -> None:
    assert collection_failure([dict(EXITED), dict(FRESH)]) is None


def test_collection_failure_some_errors() -> None:
    assert collection_failure([dict(EXITED), err(1), err(2)]) is None


@pytest.mark.parametrize(
    ("count", "message"),
    [
        (1, "nothing could be collected: pod ns/p1 not found"),
        (2, "nothing could be collected: pod ns/p1 not found; pod ns/p2 not found"),
        (3, "nothing could be collected: pod ns/p1 not found; pod ns/p2 not found; pod ns/p3 not found"),
        (4, "nothing could be collected: pod ns/p1 not found; pod ns/p2 not found; pod ns/p3 not found; and 1 more"),
        (7, "nothing could be collected: pod ns/p1 not found; pod ns/p2 not found; pod ns/p3 not found; and 4 more"),
    ],
)
def test_collection_failure_all_errors(count: int, message: str) -> None:
    assert collection_failure([err(n) for n in range(1, count + 1)]) == message


# --------------------------------------------------------------------------- empty_selection_warning


def test_empty_selection_warning_only_for_a_selector_that_found_nothing() -> None:
    by_selector = Selection(namespaces=("shop",), label_selector="app=web")
    assert empty_selection_warning(by_selector, []) == "the selection matched no pods with ephemeral containers"
    assert empty_selection_warning(by_selector, [dict(EXITED)]) is None
    assert empty_selection_warning(refs("shop/web-0"), []) is None


# --------------------------------------------------------------------------- collect: selecting pods


def test_selection_from_namespace_audit_lists_every_pod_of_the_namespace() -> None:
    client = FakeClient([load_pod("debugged"), load_pod("plain"), moved(load_pod("debugged"), "ns-b", "web-0")])
    records = run_collect(client, sel([], NS), wait_for="none")
    assert client.list_calls == [([NS], None, None)]
    assert records == [DEBUG]


def test_collect_one_list_per_namespace_with_a_field_selector_for_a_single_pod() -> None:
    states = load_pod("ephemeral-states")
    debugged = load_pod("debugged")
    other = moved(load_pod("debugged"), "ns-b", "web-0")
    client = FakeClient([states, debugged, other])
    records = run_collect(client, refs(f"{NS}/states", "ns-b/web-0", f"{NS}/debugged", f"{NS}/states"), wait_for="none")
    assert client.list_calls == [
        ([NS], None, None),  # two pods there: one LIST of the namespace
        (["ns-b"], None, "metadata.name=web-0"),
    ]
    assert records == [
        dict(DEBUG, namespace="ns-b", pod="web-0"),  # sorted: namespace first
        DEBUG,
        EXITED,
        FRESH,
        PULL_FAIL,
    ]


def test_collect_missing_pod_is_an_error_record() -> None:
    client = FakeClient([load_pod("debugged")])
    records = run_collect(client, refs(f"{NS}/debugged", f"{NS}/gone", "elsewhere/gone"), wait_for="none")
    assert client.list_calls == [([NS], None, None), (["elsewhere"], None, "metadata.name=gone")]
    assert records == [
        record("elsewhere", "gone", None, error="pod elsewhere/gone not found"),
        DEBUG,
        record(NS, "gone", None, error="pod unit-fixtures/gone not found"),
    ]
    assert collection_failure(records) is None


def test_collect_only_missing_pods_fails_the_collection() -> None:
    records = run_collect(FakeClient([]), refs("a/x", "b/y"), wait_for="terminated", logs=True)
    assert records == [record("a", "x", None, error="pod a/x not found"), record("b", "y", None, error="pod b/y not found")]
    assert collection_failure(records) == "nothing could be collected: pod a/x not found; pod b/y not found"


def test_collect_label_selector_in_namespaces() -> None:
    client = FakeClient([load_pod("debugged"), moved(load_pod("debugged"), "ns-b", "web-0")])
    sel = Selection(namespaces=(NS, "ns-b", NS), label_selector="app=web")
    records = run_collect(client, sel, wait_for="none")
    assert client.list_calls == [([NS, "ns-b"], "app=web", None)]  # namespaces deduplicated, one call
    assert records == [dict(DEBUG, namespace="ns-b", pod="web-0"), DEBUG]


def test_collect_label_selector_in_all_namespaces() -> None:
    client = FakeClient([moved(load_pod("debugged"), "zz", "web-0"), load_pod("plain"), load_pod("debugged")])
    records = run_collect(client, sel([], None, ["app=web", "tier=front"], True), wait_for="none")
    assert client.list_calls == [(None, "app=web,tier=front", None)]
    assert records == [DEBUG, dict(DEBUG, namespace="zz", pod="web-0")]  # plain has no ephemeral container: no record


def test_collect_selection_field_selector_is_passed_on() -> None:
    client = FakeClient([])
    assert run_collect(client, Selection(namespaces=(NS,), field_selector="metadata.name=x"), wait_for="none") == []
    assert client.list_calls == [([NS], None, "metadata.name=x")]


def test_collect_container_the_pod_lacks() -> None:
    client = FakeClient([load_pod("debugged"), load_pod("ephemeral-states")])
    records = run_collect(client, refs(f"{NS}/debugged", f"{NS}/states"), containers=("debug",), wait_for="terminated")
    assert records == [
        DEBUG,
        record(
            NS, "states", "debug",
            error="pod unit-fixtures/states has no ephemeral container named 'debug' (it has: exited, pull-fail, fresh)",
        ),
    ]  # fmt: skip


# --------------------------------------------------------------------------- collect: waiting


def test_collect_waits_only_for_pods_not_done_and_uses_what_the_wait_returned() -> None:
    states = load_pod("ephemeral-states")
    debugged = load_pod("debugged")
    finished = moved(terminate(load_pod("debugged"), "debug"), "ns-b", "finished")  # already done: not waited for
    later = terminate(terminate(states, "fresh", finished_at="2026-11-25T09:09:31Z"), "pull-fail", exit_code=1)
    client = FakeClient([states, debugged, finished], waited={(NS, "states"): later})
    records = run_collect(client, refs(f"{NS}/states", "ns-b/finished", f"{NS}/debugged"), wait_for="terminated", wait_timeout=7)
    assert client.wait_calls == [
        {
            "targets": {NS: ["states", "debugged"]},
            "timeout": 7,
            "done": {(NS, "states"): True},  # the callback is ephemeral_reached with the options' containers
        }
    ]
    assert records == [
        record(
            "ns-b", "finished", "debug",
            node="node-000000", image=BUSYBOX, target_container="app", state="terminated", reason="Completed", exit_code=0,
            started_at="2026-11-25T09:09:14Z", finished_at="2026-11-25T09:10:00Z", duration_seconds=46.0,
        ),
        DEBUG,  # not returned by the wait: reported as listed
        EXITED,
        dict(FRESH, state="terminated", reason="Completed", exit_code=0, finished_at="2026-11-25T09:09:31Z", duration_seconds=1.0),
        dict(
            PULL_FAIL, state="terminated", reason="Error", message=None, exit_code=1,
            started_at="2026-11-25T09:09:00Z", finished_at="2026-11-25T09:10:00Z", duration_seconds=60.0,
        ),
    ]  # fmt: skip


def test_collect_wait_callback_uses_the_selected_containers() -> None:
    states = load_pod("ephemeral-states")
    client = FakeClient([states], waited={(NS, "states"): states})
    records = run_collect(client, refs(f"{NS}/states"), containers=("fresh", "exited"), wait_for="running")
    assert client.wait_calls == []  # exited and fresh are running or finished already
    assert records == [EXITED, FRESH]

    run_collect(client, refs(f"{NS}/states"), containers=("fresh", "exited"), wait_for="terminated", wait_timeout=0)
    assert client.wait_calls == [{"targets": {NS: ["states"]}, "timeout": 0, "done": {(NS, "states"): False}}]


@pytest.mark.parametrize(
    ("pods", "wait_for", "containers"),
    [
        (["ephemeral-states"], "none", ()),
        (["debugged", "debugged-latest-digest"], "running", ()),
        (["ephemeral-states"], "terminated", ("exited",)),
        (["ephemeral-states"], "terminated", ("ghost",)),  # a container the pod lacks is not waited for
        (["plain"], "terminated", ()),  # nothing to wait for
    ],
)
def test_collect_does_not_wait_when_nothing_is_left_to_wait_for(pods: list[str], wait_for: str, containers: tuple[str, ...]) -> None:
    loaded = [load_pod(p) for p in pods]
    client = FakeClient(loaded)
    run_collect(client, refs(*(f"{NS}/{p['metadata']['name']}" for p in loaded)), wait_for=wait_for, containers=containers)
    assert client.wait_calls == []


def test_collect_a_failed_wait_is_raised() -> None:
    class FailingWait(FakeClient):
        def wait_for_pods(self, targets, done, timeout):  # type: ignore[override]
            raise KubedebugError("permission denied listing pods in namespace 'unit-fixtures'", status=403)

    with pytest.raises(KubedebugError) as raised:
        run_collect(FailingWait([load_pod("debugged")]), refs(f"{NS}/debugged"), wait_for="terminated")
    assert raised.value.msg == "permission denied listing pods in namespace 'unit-fixtures'"


# --------------------------------------------------------------------------- collect: logs


def test_collect_logs_only_for_containers_that_started() -> None:
    states = load_pod("ephemeral-states")
    client = FakeClient(
        [states],
        logs={
            (NS, "states", "exited"): b'{"step": 1}\n{"step": 2}\n',
            (NS, "states", "fresh"): b"",
        },
    )
    records = run_collect(client, refs(f"{NS}/states"), wait_for="none", logs=True, parse="json_lines", tail_lines=50)
    assert sorted(client.log_calls) == [
        (NS, "states", "exited", 50, DEFAULT_LIMIT_BYTES),
        (NS, "states", "fresh", 50, DEFAULT_LIMIT_BYTES),
    ]  # pull-fail is waiting: no log read (the API would answer 400)
    assert records == [
        dict(EXITED, logs='{"step": 1}\n{"step": 2}\n', output=[{"step": 1}, {"step": 2}]),
        dict(FRESH, logs="", output=[]),
        PULL_FAIL,
    ]


def test_collect_no_log_read_for_pending_or_waiting_containers() -> None:
    client = FakeClient([load_pod("ephemeral-states-early")])
    records = run_collect(client, refs(f"{NS}/states"), wait_for="none", logs=True, parse="lines")
    assert client.log_calls == []
    assert [(r["container"], r["state"], r["logs"], r["output"], r["parse_error"]) for r in records] == [
        ("exited", "waiting", None, None, None),
        ("fresh", "pending", None, None, None),
        ("pull-fail", "pending", None, None, None),
    ]


def test_collect_no_logs_unless_asked() -> None:
    client = FakeClient([load_pod("ephemeral-states")])
    assert run_collect(client, refs(f"{NS}/states"), wait_for="none") == [EXITED, FRESH, PULL_FAIL]
    assert client.log_calls == []


def test_collect_no_log_read_for_error_records() -> None:
    client = FakeClient([load_pod("debugged")], logs={(NS, "debugged", "debug"): b"hi\n"})
    records = run_collect(client, refs(f"{NS}/debugged", f"{NS}/gone"), containers=("debug", "ghost"), wait_for="none", logs=True)
    assert client.log_calls == [(NS, "debugged", "debug", None, DEFAULT_LIMIT_BYTES)]
    assert [(r["pod"], r["container"], r["logs"], r["error"] is None) for r in records] == [
        ("debugged", "debug", "hi\n", True),
        ("debugged", "ghost", None, False),
        ("gone", None, None, False),
    ]


@pytest.mark.parametrize(
    ("parse", "output", "parse_error", "bad_lines"),
    [
        ("raw", "ready\n{oops\n[1]\n", None, []),
        ("lines", ["ready", "{oops", "[1]"], None, []),
        ("json", None, f"logs are not one JSON document: {NOT_JSON}", [{"line": 1, "text": "ready", "error": NOT_JSON}]),
        (
            "json_lines",
            [[1]],
            f"2 lines are not JSON (lines 1, 2; see bad_lines); every other line was parsed. Line 1: {NOT_JSON}: 'ready'",
            [
                {"line": 1, "text": "ready", "error": NOT_JSON},
                {"line": 2, "text": "{oops", "error": "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"},
            ],
        ),
    ],
)
def test_collect_parse_modes(parse: str, output: Any, parse_error: str | None, bad_lines: list[dict[str, Any]]) -> None:
    client = FakeClient([load_pod("debugged")], logs={(NS, "debugged", "debug"): b"ready\n{oops\n[1]\n"})
    records = run_collect(client, refs(f"{NS}/debugged"), wait_for="none", logs=True, parse=parse)
    assert records == [dict(DEBUG, logs="ready\n{oops\n[1]\n", output=output, parse_error=parse_error, bad_lines=bad_lines)]
    assert collection_failure(records) is None  # a parse error is not a collection error


@pytest.mark.parametrize(
    ("data", "limit_bytes", "truncated"),
    [
        (b"12345678\n", 10, False),  # 9 bytes < 10
        (b"123456789\n", 10, True),  # exactly the limit: the server may have cut it
        (b"123456789\n123", 10, True),
        (b"x" * 5000, None, False),  # unbounded
        (b"", 1, False),
    ],
)
def test_collect_truncated(data: bytes, limit_bytes: int | None, truncated: bool) -> None:
    client = FakeClient([load_pod("debugged")], logs={(NS, "debugged", "debug"): data})
    records = run_collect(client, refs(f"{NS}/debugged"), wait_for="none", logs=True, limit_bytes=limit_bytes)
    assert client.log_calls == [(NS, "debugged", "debug", None, limit_bytes)]
    assert records[0]["truncated"] is truncated
    assert records[0]["logs"] == records[0]["output"] == data.decode()  # raw keeps everything


@pytest.mark.parametrize(
    ("parse", "output"),
    [
        ("raw", '{"n": 1}\n{"n": 2}\n{"n"'),  # raw is the text as read, cut line included
        ("lines", ['{"n": 1}', '{"n": 2}']),
        ("json_lines", [{"n": 1}, {"n": 2}]),
    ],
)
def test_collect_truncated_leaves_out_the_cut_last_line(parse: str, output: Any) -> None:
    data = b'{"n": 1}\n{"n": 2}\n{"n"'
    client = FakeClient([load_pod("debugged")], logs={(NS, "debugged", "debug"): data})
    records = run_collect(client, refs(f"{NS}/debugged"), wait_for="none", logs=True, limit_bytes=len(data), parse=parse)
    # Reported, never parsed as garbage: it is no bad line.
    partial = {"line": 3, "text": '{"n"', "chars": 4}
    assert records == [dict(DEBUG, logs=data.decode(), output=output, truncated=True, partial_line=partial)]


def test_collect_not_truncated_keeps_a_last_line_without_newline() -> None:
    data = b'{"n": 1}\n{"n": 2}'
    client = FakeClient([load_pod("debugged")], logs={(NS, "debugged", "debug"): data})
    records = run_collect(client, refs(f"{NS}/debugged"), wait_for="none", logs=True, limit_bytes=len(data) + 1, parse="json_lines")
    assert records == [dict(DEBUG, logs=data.decode(), output=[{"n": 1}, {"n": 2}])]


def test_collect_truncated_single_line_parses_nothing() -> None:
    data = b'{"n": 1, "much": "more'
    client = FakeClient([load_pod("debugged")], logs={(NS, "debugged", "debug"): data})
    partial = {"line": 1, "text": data.decode(), "chars": len(data)}
    lines = run_collect(client, refs(f"{NS}/debugged"), wait_for="none", logs=True, limit_bytes=len(data), parse="json_lines")
    assert lines == [dict(DEBUG, logs=data.decode(), output=[], truncated=True, partial_line=partial)]
    one = run_collect(client, refs(f"{NS}/debugged"), wait_for="none", logs=True, limit_bytes=len(data), parse="json")
    assert one == [
        dict(
            DEBUG, logs=data.decode(), truncated=True, partial_line=partial,
            parse_error=f"logs are not one JSON document: {NOT_JSON}", bad_lines=[{"line": 1, "text": "", "error": NOT_JSON}],
        )
    ]  # fmt: skip


def test_collect_logs_that_are_not_utf8() -> None:
    data = "ok é\n".encode() + b"\xff\xfe bytes\n" + "üx".encode() + "ü".encode()[:1]  # the last character cut in half
    client = FakeClient([load_pod("debugged")], logs={(NS, "debugged", "debug"): data})
    records = run_collect(client, refs(f"{NS}/debugged"), wait_for="none", logs=True, parse="lines", limit_bytes=len(data))
    # The cut character is not invalid: the rest of it was never read. It is left out, not replaced.
    assert records[0]["logs"] == "ok é\n\ufffd\ufffd bytes\nüx"
    assert records[0]["output"] == ["ok é", "\ufffd\ufffd bytes"]
    assert (records[0]["truncated"], records[0]["invalid_utf8"]) == (True, 2)
    assert records[0]["partial_line"] == {"line": 3, "text": "üx", "chars": 2}


@pytest.mark.parametrize(
    ("data", "invalid"),
    [
        (b"plain\n", 0),
        ("\ufffd written by the program itself\n".encode(), 0),  # valid UTF-8 of U+FFFD: nothing was replaced
        (b"\xff\n", 1),
        (b"\xe2\x9c\n", 1),  # one incomplete sequence, one replacement
        (b"\xe2\xef\xbf\xbd\n", 1),  # an incomplete sequence before a real U+FFFD
        ("\ufffd".encode() + b"\xc3\x28", 1),
        (b"\x80\x80\x80", 3),  # stray continuation bytes, one each
    ],
)
def test_collect_counts_invalid_utf8(data: bytes, invalid: int) -> None:
    client = FakeClient([load_pod("debugged")], logs={(NS, "debugged", "debug"): data})
    [rec] = run_collect(client, refs(f"{NS}/debugged"), wait_for="none", logs=True, parse="lines", limit_bytes=None)
    assert rec["invalid_utf8"] == invalid
    assert rec["logs"] == data.decode("utf-8", errors="replace")


def test_collect_json_lines_with_invalid_utf8_keeps_the_json() -> None:
    # Invalid bytes inside a JSON string do not cost the line: it parses, with U+FFFD where they were.
    data = b'{"a": 1}\n{"name": "caf\xe9"}\n\xff\xfe\n{"b": 2}\n'
    client = FakeClient([load_pod("debugged")], logs={(NS, "debugged", "debug"): data})
    [rec] = run_collect(client, refs(f"{NS}/debugged"), wait_for="none", logs=True, parse="json_lines")
    assert rec["output"] == [{"a": 1}, {"name": "caf\ufffd"}, {"b": 2}]
    assert rec["bad_lines"] == [{"line": 3, "text": "\ufffd\ufffd", "error": NOT_JSON}]
    assert rec["invalid_utf8"] == 3


def test_collect_log_error_becomes_the_record_error() -> None:
    states = load_pod("ephemeral-states")
    denied = KubedebugError("pod unit-fixtures/states: permission denied: grant 'get' on 'pods/log'", status=403)
    client = FakeClient([states], logs={(NS, "states", "exited"): denied, (NS, "states", "fresh"): b"tick\n"})
    records = run_collect(client, refs(f"{NS}/states"), wait_for="none", logs=True, parse="lines")
    assert records == [
        dict(EXITED, error="pod unit-fixtures/states: permission denied: grant 'get' on 'pods/log'"),  # state kept
        dict(FRESH, logs="tick\n", output=["tick"]),
        PULL_FAIL,
    ]
    assert collection_failure(records) is None


def test_collect_log_errors_everywhere_fail_the_collection() -> None:
    debugged = load_pod("debugged")
    client = FakeClient([debugged], logs={(NS, "debugged", "debug"): KubedebugError("pod unit-fixtures/debugged: gone")})
    records = run_collect(client, refs(f"{NS}/debugged"), wait_for="none", logs=True)
    assert records == [dict(DEBUG, error="pod unit-fixtures/debugged: gone")]
    assert collection_failure(records) == "nothing could be collected: pod unit-fixtures/debugged: gone"


def test_collect_other_exceptions_from_read_logs_propagate() -> None:
    client = FakeClient([load_pod("debugged")], logs={(NS, "debugged", "debug"): RuntimeError("bug")})
    with pytest.raises(RuntimeError, match="^bug$"):
        run_collect(client, refs(f"{NS}/debugged"), wait_for="none", logs=True)


def test_collect_reads_logs_in_parallel() -> None:
    # Both reads must be in flight at once to pass the barrier (which times out otherwise).
    pods = [moved(load_pod("debugged"), NS, "a"), moved(load_pod("debugged"), NS, "b")]
    client = FakeClient(
        pods,
        logs={(NS, "a", "debug"): b"A\n", (NS, "b", "debug"): b"B\n"},
        barrier=threading.Barrier(2, timeout=10),
    )
    records = run_collect(client, refs(f"{NS}/b", f"{NS}/a"), wait_for="none", logs=True, parallel=2)
    assert [(r["pod"], r["logs"]) for r in records] == [("a", "A\n"), ("b", "B\n")]


def test_collect_records_are_sorted_by_namespace_pod_container() -> None:
    pods = [
        moved(load_pod("ephemeral-states"), "b", "web"),
        moved(load_pod("debugged"), "a", "zeta"),
        moved(load_pod("ephemeral-states"), "a", "alpha"),
    ]
    client = FakeClient(pods)
    records = run_collect(client, refs("b/web", "a/zeta", "b/aaa-missing", "a/alpha", "a/zeta"), wait_for="none")
    assert [(r["namespace"], r["pod"], r["container"]) for r in records] == [
        ("a", "alpha", "exited"),
        ("a", "alpha", "fresh"),
        ("a", "alpha", "pull-fail"),
        ("a", "zeta", "debug"),
        ("b", "aaa-missing", None),
        ("b", "web", "exited"),
        ("b", "web", "fresh"),
        ("b", "web", "pull-fail"),
    ]
    for rec in records:
        assert set(rec) == set(RECORD_KEYS)


# --------------------------------------------------------------------------- collect through a real EphemeralClient


class Response:
    """What a CoreV1Api method returns with ``_preload_content=False``: only ``.data`` is used."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.status = 200


class FakeCore:
    """The CoreV1Api methods ``collect`` reaches through ``EphemeralClient`` when it does not wait."""

    def __init__(self, pods: list[dict[str, Any]], logs: Mapping[tuple[str, str, str], bytes | BaseException]) -> None:
        self.pods = pods
        self.logs = dict(logs)
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.lock = threading.Lock()

    def _called(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        assert kwargs.get("_preload_content") is False
        assert kwargs.get("_request_timeout"), f"{method} called without a timeout"
        with self.lock:
            self.calls.append((method, args, {k: v for k, v in kwargs.items() if k not in ("_preload_content", "_request_timeout")}))

    def _items(self, namespace: str | None, kwargs: dict[str, Any]) -> Response:
        items = []
        for pod in self.pods:
            if namespace is not None and pod["metadata"]["namespace"] != namespace:
                continue
            if "field_selector" in kwargs and kwargs["field_selector"] != f"metadata.name={pod['metadata']['name']}":
                continue
            item = copy.deepcopy(pod)
            item.pop("kind", None)
            item.pop("apiVersion", None)
            items.append(item)
        return Response(json.dumps({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items}).encode())

    def list_namespaced_pod(self, namespace, **kwargs):
        self._called("list_namespaced_pod", (namespace,), kwargs)
        return self._items(namespace, kwargs)

    def list_pod_for_all_namespaces(self, **kwargs):
        self._called("list_pod_for_all_namespaces", (), kwargs)
        return self._items(None, kwargs)

    def read_namespaced_pod_log(self, name, namespace, **kwargs):
        self._called("read_namespaced_pod_log", (name, namespace), kwargs)
        answer = self.logs[(namespace, name, kwargs["container"])]
        if isinstance(answer, BaseException):
            raise answer
        return Response(answer)


def real_client(core: FakeCore) -> EphemeralClient:
    client = EphemeralClient(object(), retries=0, sleep=lambda seconds: None)
    assert isinstance(client.core, CoreCalls)
    client.core = core
    return client


def test_collect_with_ephemeral_client() -> None:
    other = moved(load_pod("debugged"), "ns-b", "web-0")
    core = FakeCore(
        [load_pod("debugged"), load_pod("ephemeral-states"), other],
        logs={
            (NS, "debugged", "debug"): b'{"ok": true}\n',
            ("ns-b", "web-0", "debug"): api_error(403, 'pods "web-0" is forbidden: User "jane" cannot get resource "pods/log"'),
            (NS, "states", "exited"): b"not json\n",
        },
    )
    records = collect(
        real_client(core),
        sel(["debugged", "ns-b/web-0", "states"], NS),
        Options(containers=("debug", "exited"), wait_for="none", logs=True, parse="json_lines", tail_lines=5, limit_bytes=4096),
    )
    lists = [(m, a, k) for m, a, k in core.calls if m.startswith("list")]
    reads = sorted((a, k) for m, a, k in core.calls if m == "read_namespaced_pod_log")
    assert lists == [
        ("list_namespaced_pod", (NS,), {}),
        ("list_namespaced_pod", ("ns-b",), {"field_selector": "metadata.name=web-0"}),
    ]
    assert reads == [
        (("debugged", NS), {"container": "debug", "tail_lines": 5, "limit_bytes": 4096}),
        (("states", NS), {"container": "exited", "tail_lines": 5, "limit_bytes": 4096}),
        (("web-0", "ns-b"), {"container": "debug", "tail_lines": 5, "limit_bytes": 4096}),
    ]
    assert records == [
        dict(
            DEBUG, namespace="ns-b", pod="web-0",
            error=(
                f"pod ns-b/web-0: permission denied: grant 'get' on 'pods/log' in namespace 'ns-b'; see {RBAC_DOC}. "
                "API server said: "
                'pods "web-0" is forbidden: User "jane" cannot get resource "pods/log"'
            ),
        ),
        record("ns-b", "web-0", "exited", error="pod ns-b/web-0 has no ephemeral container named 'exited' (it has: debug)"),
        dict(DEBUG, logs='{"ok": true}\n', output=[{"ok": True}]),
        record(
            NS, "debugged", "exited",
            error="pod unit-fixtures/debugged has no ephemeral container named 'exited' (it has: debug)",
        ),
        record(NS, "states", "debug", error="pod unit-fixtures/states has no ephemeral container named 'debug' (it has: exited, pull-fail, fresh)"),
        dict(
            EXITED, logs="not json\n", output=[],
            parse_error="line 1 is not JSON: Expecting value: line 1 column 1 (char 0): 'not json'",
            bad_lines=[{"line": 1, "text": "not json", "error": NOT_JSON}],
        ),
    ]  # fmt: skip


def test_collect_with_ephemeral_client_all_namespaces() -> None:
    core = FakeCore([load_pod("debugged"), moved(load_pod("plain"), "ns-b", "web-0")], logs={})
    records = collect(real_client(core), sel([], None, "app=web", True), Options(wait_for="running"))
    assert core.calls == [("list_pod_for_all_namespaces", (), {"label_selector": "app=web"})]
    assert records == [DEBUG]


def test_parse_output_lines_split_on_newline_only() -> None:
    # U+2028 is text inside a log line, not a line break: the kubelet splits on "\n".
    assert parse_output("a\u2028b\r\nc\n", "lines") == (["a\u2028b", "c"], None, ())


def test_collect_reports_a_pod_deleted_while_waiting() -> None:
    states = load_pod("ephemeral-states")
    client = FakeClient([states], waited={(NS, "states"): {}})  # the wait saw it deleted
    records = run_collect(client, refs(f"{NS}/states"), wait_for="terminated", wait_timeout=3)
    assert records == [empty_record(NS, "states", None, f"pod {NS}/states was deleted while waiting")]


# --------------------------------------------------------------------------- apply_log and wants_log


def test_apply_log_none_leaves_the_record_alone() -> None:
    rec = dict(DEBUG)
    apply_log(rec, None, Options(parse="json"))
    assert rec == DEBUG


@pytest.mark.parametrize(
    ("data", "opts", "fields"),
    [
        (b"a\nb\n", Options(), {"logs": "a\nb\n", "output": "a\nb\n"}),
        (b"a\nb\n", Options(parse="lines"), {"logs": "a\nb\n", "output": ["a", "b"]}),
        (
            b'{"n": 1}\n{"n"',
            Options(parse="json_lines", limit_bytes=13),
            {"logs": '{"n": 1}\n{"n"', "output": [{"n": 1}], "truncated": True, "partial_line": {"line": 2, "text": '{"n"', "chars": 4}},
        ),
        # A whole last line without a newline (the program exited without writing one) is parsed.
        (b'{"n": 1}\n{"n": 2}', Options(parse="json_lines", limit_bytes=100), {"logs": '{"n": 1}\n{"n": 2}', "output": [{"n": 1}, {"n": 2}]}),
        # limit_bytes hit exactly at a line's end: nothing is cut.
        (b'{"n": 1}\n', Options(parse="json_lines", limit_bytes=9), {"logs": '{"n": 1}\n', "output": [{"n": 1}], "truncated": True}),
        (b"x" * 10, Options(limit_bytes=None), {"logs": "x" * 10, "output": "x" * 10}),
        (
            b"{oops",
            Options(parse="json"),
            {
                "logs": "{oops",
                "parse_error": "logs are not one JSON document: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
                "bad_lines": [{"line": 1, "text": "{oops", "error": "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"}],
            },
        ),
    ],
)
def test_apply_log(data: bytes, opts: Options, fields: dict[str, Any]) -> None:
    rec = dict(DEBUG)
    apply_log(rec, data, opts)
    assert rec == dict(DEBUG, **fields)


@pytest.mark.parametrize(
    ("fields", "wanted"),
    [
        ({"state": "running"}, True),
        ({"state": "terminated"}, True),
        ({"state": "waiting"}, False),
        ({"state": "pending"}, False),
        ({"state": None, "error": "pod ns/x not found"}, False),
        ({"state": "running", "error": "pod ns/x: gone"}, False),
    ],
)
def test_wants_log(fields: dict[str, Any], wanted: bool) -> None:
    assert wants_log(record("ns", "x", "debug", **fields)) is wanted


def test_collect_a_log_the_kubelet_does_not_have_stays_empty() -> None:
    # read_container_log answers None when the container is (again) waiting to start.
    client = FakeClient([load_pod("debugged")], logs={(NS, "debugged", "debug"): None})
    assert run_collect(client, refs(f"{NS}/debugged"), wait_for="none", logs=True, parse="lines") == [DEBUG]
    assert client.log_calls == [(NS, "debugged", "debug", None, DEFAULT_LIMIT_BYTES)]


# --------------------------------------------------------------------------- ResultsManager.run


def run(client: FakeClient, selection: Selection, **options: Any) -> Outcome:
    return ResultsManager(client, ResultsRequest(selection, Options(**options))).run()  # type: ignore[arg-type]


def test_run_returns_the_records_unchanged() -> None:
    outcome = run(FakeClient([load_pod("debugged")]), refs(f"{NS}/debugged"), wait_for="none")
    assert outcome == Outcome(result={"changed": False, "pods": [DEBUG]}, warnings=[], failure=None)


def test_run_warns_when_a_selector_found_nothing() -> None:
    outcome = run(FakeClient([load_pod("plain")]), Selection(namespaces=(NS,), label_selector="app=web"), wait_for="none")
    assert outcome == Outcome(result={"changed": False, "pods": []}, warnings=["the selection matched no pods with ephemeral containers"])


def test_run_fails_when_nothing_could_be_collected_and_still_returns_the_records() -> None:
    outcome = run(FakeClient([]), refs("a/x", "b/y"), wait_for="none")
    assert outcome.failure == "nothing could be collected: pod a/x not found; pod b/y not found"
    assert outcome.result == {"changed": False, "pods": [record("a", "x", None, error="pod a/x not found"), record("b", "y", None, error="pod b/y not found")]}
    assert outcome.warnings == []
