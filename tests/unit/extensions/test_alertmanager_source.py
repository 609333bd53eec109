# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Alertmanager event source: alerts to incidents (pure), and its HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import socket
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

# ansible-rulebook loads event sources by path, not as collection modules: so do the tests.
_PATH = Path(__file__).resolve().parents[3] / "extensions" / "eda" / "plugins" / "event_source" / "alertmanager.py"
_SPEC = importlib.util.spec_from_file_location("kd_alertmanager_source", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
source = importlib.util.module_from_spec(_SPEC)
sys.modules["kd_alertmanager_source"] = source
_SPEC.loader.exec_module(source)

OPTS = source.settings({})


def alert(status: str = "firing", fingerprint: str = "3f2a9c1d0b7e6a54", annotations: dict[str, str] | None = None, **labels: str) -> dict[str, Any]:
    """One alert as Alertmanager sends it in a webhook notification (payload version 4)."""
    return {
        "status": status,
        "labels": {"alertname": "KubePodCrashLooping", **labels},
        "annotations": {"summary": "Pod is crash looping."} if annotations is None else annotations,
        "startsAt": "2026-12-07T10:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example/graph",
        "fingerprint": fingerprint,
    }


def notification(*alerts: dict[str, Any], status: str = "firing") -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": '{}:{alertname="KubePodCrashLooping"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "kubedebug",
        "groupLabels": {"alertname": "KubePodCrashLooping"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example",
        "alerts": list(alerts),
    }


def test_an_alert_about_a_pod_becomes_the_incident_playbooks_variables() -> None:
    [event] = source.alert_events(notification(alert(namespace="shop", pod="web-0")), OPTS, "alerts")
    assert event["alert"]["status"] == "firing" and event["alert"]["labels"]["pod"] == "web-0"
    assert event["meta"] == {
        "endpoint": "alerts",
        "receiver": "kubedebug",
        "groupKey": '{}:{alertname="KubePodCrashLooping"}',
        "externalURL": "http://alertmanager.example",
        "version": "4",
    }
    incident = event["incident"]
    assert (incident["ok"], incident["error"], incident["key"]) == (True, None, "shop/web-0")
    assert incident["extra_vars"] == {
        "kd_namespace": "shop",
        "kd_pod": "web-0",
        "kd_label_selector": "",  # the playbook wants exactly one of the two set
        "kd_reason": "KubePodCrashLooping: Pod is crash looping.",
        "kd_run_id": "alert-3f2a9c1d0b7e6a54",
    }


def test_extra_vars_go_with_every_incident_but_cannot_replace_the_alerts() -> None:
    opts = source.settings({"extra_vars": {"kd_recipes": ["processes"], "kd_output_dir": "/srv/incidents"}})
    [event] = source.alert_events(notification(alert(namespace="shop", pod="web-0")), opts)
    assert event["incident"]["extra_vars"]["kd_recipes"] == ["processes"] and event["incident"]["extra_vars"]["kd_pod"] == "web-0"
    with pytest.raises(ValueError, match="extra_vars cannot set kd_namespace, kd_pod: they come from each alert"):
        source.settings({"extra_vars": {"kd_pod": "x", "kd_namespace": "y"}})
    with pytest.raises(ValueError, match="extra_vars must be a mapping"):
        source.settings({"extra_vars": ["kd_recipes"]})


def test_the_same_alert_names_the_same_run_and_another_alert_another() -> None:
    first, again, other = (
        source.alert_events(notification(a), OPTS)[0]["incident"]
        for a in (alert(namespace="shop", pod="web-0"), alert(namespace="shop", pod="web-0"), alert(fingerprint="aa", namespace="shop", pod="web-0"))
    )
    assert first == again
    assert (other["run_id"], other["key"]) == ("alert-aa", first["key"])  # throttled together, by pod


def test_a_workload_alert_names_a_selector_from_a_label_or_an_annotation() -> None:
    by_label, by_annotation, both = (
        source.alert_events(notification(a), OPTS)[0]["incident"]
        for a in (
            alert(namespace="shop", kubedebug_selector="app=web"),
            alert(namespace="shop", annotations={"kubedebug_selector": "app in (web,api)"}),
            alert(namespace="shop", pod="web-0", kubedebug_selector="app=web"),
        )
    )
    assert (by_label["extra_vars"]["kd_label_selector"], by_label["extra_vars"]["kd_pod"]) == ("app=web", "")
    assert by_label["key"] == "shop?app=web"
    assert by_annotation["extra_vars"]["kd_label_selector"] == "app in (web,api)"
    assert (both["extra_vars"]["kd_pod"], both["extra_vars"]["kd_label_selector"]) == ("web-0", "")  # the pod wins


def test_other_label_names_are_options() -> None:
    opts = source.settings({"namespace_label": "exported_namespace", "pod_label": "exported_pod"})
    [event] = source.alert_events(notification(alert(exported_namespace="shop", exported_pod="web-0", namespace="monitoring")), opts)
    assert event["incident"]["extra_vars"]["kd_namespace"] == "shop"


@pytest.mark.parametrize(
    ("labels", "error"),
    [
        ({"pod": "web-0"}, "alert 'KubePodCrashLooping' has no label 'namespace': set it"),
        ({"namespace": "Shop!", "pod": "web-0"}, "label 'namespace' is 'Shop!', which is not a namespace name"),
        ({"namespace": "shop"}, "in namespace 'shop' has neither a label 'pod' nor a label or annotation 'kubedebug_selector'"),
        ({"namespace": "shop", "pod": "../web"}, "label 'pod' is '../web', which is not a pod name"),
        ({"namespace": "shop", "kubedebug_selector": "app={{ x }}"}, "'kubedebug_selector' is 'app={{ x }}', which is not a label selector"),
    ],
)
def test_an_alert_that_names_no_pod_says_which_label_to_fix(labels: dict[str, str], error: str) -> None:
    [event] = source.alert_events(notification(alert(**labels)), OPTS)
    incident = event["incident"]
    assert incident["ok"] is False and incident["extra_vars"] == {} and incident["key"] is None
    assert error in incident["error"], incident["error"]


def test_an_alert_without_a_fingerprint_cannot_name_its_run() -> None:
    [event] = source.alert_events(notification(alert(fingerprint="", namespace="shop", pod="web-0")), OPTS)
    assert event["incident"]["ok"] is False and "no fingerprint" in event["incident"]["error"]


def test_alert_text_cannot_template_the_playbook() -> None:
    # Ansible templates extra vars: an annotation is anyone's text, and must reach the playbook inert.
    hostile = {"summary": "{{ lookup('pipe', 'id') }} {% raw %}\n#{# x #} $(id) `id`"}
    [event] = source.alert_events(notification(alert(annotations=hostile, namespace="shop", pod="web-0")), OPTS)
    reason = event["incident"]["extra_vars"]["kd_reason"]
    assert not set("{}%#$`\n") & set(reason), reason
    assert reason.startswith("KubePodCrashLooping: __ lookup('pipe', 'id') __")
    long = source.alert_events(notification(alert(annotations={"summary": "x" * 500}, namespace="shop", pod="web-0")), OPTS)
    assert len(long[0]["incident"]["reason"]) == source.REASON_MAX and long[0]["incident"]["reason"].endswith("...")


def test_a_resolved_alert_is_an_event_with_its_status() -> None:
    events = source.alert_events(notification(alert("resolved", namespace="shop", pod="web-0"), alert(namespace="shop", pod="web-1"), status="firing"), OPTS)
    assert [(e["alert"]["status"], e["incident"]["pod"]) for e in events] == [("resolved", "web-0"), ("firing", "web-1")]


@pytest.mark.parametrize("payload", [[], {"alerts": {}}, {"status": "firing"}, {"alerts": ["x"]}, "alerts"])
def test_what_is_not_an_alertmanager_notification_is_refused(payload: Any) -> None:
    with pytest.raises(source.NotAlertmanager, match="not an Alertmanager notification"):
        source.alert_events(payload, OPTS)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"prot": 1}, "unknown argument(s) prot"),
        ({"port": "http"}, "port must be a number, not 'http'"),
        ({"port": 70000}, "port must be 1-65535"),
        ({"max_body_bytes": 10}, "max_body_bytes must be at least 1024"),
        ({"certfile": "/c.pem"}, "set certfile and keyfile together"),
        ({"pod_label": 3}, "pod_label must be a string"),
        ({"host": "0.0.0.0"}, "listening on 0.0.0.0 without a token would let anyone who reaches it start debug containers"),
        ({"host": "10.0.0.5", "token": ""}, "listening on 10.0.0.5 without a token"),
    ],
)
def test_bad_arguments_are_refused_by_name(args: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        source.settings(args)


def test_any_address_with_a_token_and_loopback_without_one() -> None:
    assert source.settings({"host": "0.0.0.0", "token": "s3cret"})["token"] == "s3cret"
    for host in ("127.0.0.1", "127.0.0.53", "::1", "localhost"):
        assert "token" not in source.settings({"host": host, "token": ""})  # an unset rulebook variable renders as ""


def test_the_token_is_a_bearer_token() -> None:
    assert source.authorized(None, None) and source.authorized("anything", "")
    assert source.authorized("Bearer s3cret", "s3cret") and source.authorized("bearer  s3cret ", "s3cret")
    assert not source.authorized(None, "s3cret") and not source.authorized("Bearer wrong", "s3cret")
    assert not source.authorized("Basic s3cret", "s3cret")


# --------------------------------------------------------------------------- the server, on 127.0.0.1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def exchange(args: dict[str, Any], requests: list[tuple[dict[str, str], bytes]]) -> tuple[list[tuple[int, Any]], list[dict[str, Any]]]:
    """Start the source, send ``requests`` (headers, body) in turn, stop it; the answers and the queued events."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for _attempt in range(5):  # another process may take the port between free_port() and the bind
        port = free_port()
        task = asyncio.create_task(source.main(queue, {**args, "host": "127.0.0.1", "port": port}))
        for _wait in range(200):
            await asyncio.sleep(0.01)
            if task.done():
                break
            try:
                _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                continue
            writer.close()
            break
        if not task.done():
            break
        task.exception()  # retrieved: the port was taken, try another
    else:
        raise AssertionError("the source did not start on 5 ports")
    answers = []
    try:
        async with aiohttp.ClientSession() as session:
            for headers, body in requests:
                async with session.post(f"http://127.0.0.1:{port}/alerts", data=body, headers=headers) as response:
                    answers.append((response.status, await response.json()))
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    events = []
    while not queue.empty():
        events.append(queue.get_nowait())
    return answers, events


def test_the_server_queues_one_event_per_alert_and_refuses_what_is_not_for_it() -> None:
    good = json.dumps(notification(alert(namespace="shop", pod="web-0"), alert(namespace="shop"))).encode()
    auth = {"Authorization": "Bearer s3cret", "Content-Type": "application/json"}
    answers, events = asyncio.run(
        exchange(
            {"token": "s3cret"},
            [
                (auth, good),
                ({"Content-Type": "application/json"}, good),
                ({"Authorization": "Bearer nope"}, good),
                (auth, b"{not json"),
                (auth, b'{"alerts": 1}'),
                (auth, b"x" * (2 * 1048576)),
            ],
        )
    )
    assert [a[0] for a in answers] == [200, 401, 401, 400, 400, 413]
    assert answers[0][1] == {"events": 2}
    assert "not an Alertmanager notification" in answers[4][1]["error"]
    assert [(e["incident"]["ok"], e["incident"]["pod"], e["meta"]["endpoint"]) for e in events] == [(True, "web-0", "alerts"), (False, None, "alerts")]


def test_the_server_refuses_bad_arguments_before_listening() -> None:
    with pytest.raises(ValueError, match="unknown argument"):
        asyncio.run(source.main(asyncio.Queue(), {"bogus": 1}))
