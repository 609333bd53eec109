"""ansible-rulebook event source: Alertmanager webhooks, one event per alert, each naming the pods to diagnose.

ansible-rulebook loads this file on its own (not as part of an Ansible collection on
``sys.path``), so everything it needs is here: the pure mapping from an alert to an
incident (``alert_events``), and a small aiohttp server (``main``) around it.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import ssl
from collections.abc import Mapping
from typing import Any

DOCUMENTATION = r"""
---
short_description: Receive Alertmanager webhooks; one event per alert, with the pods it names
description:
  - An ansible-rulebook event source that listens for Alertmanager's webhook notifications (payload version 4) and
    puts one event on the queue per alert in the notification.
  - Each event has C(alert) (status, labels, annotations, startsAt, endsAt, fingerprint, generatorURL), C(meta)
    (receiver, groupKey, externalURL, endpoint) and C(incident) - what the alert asks to diagnose - C(ok), C(error),
    C(namespace), C(pod), C(label_selector), C(reason), C(run_id), C(key), and C(extra_vars) ready for the
    C(kubedebug.ephemeral.incident_response) playbook (C(kd_namespace), C(kd_pod) or C(kd_label_selector),
    C(kd_reason), C(kd_run_id)).
  - The namespace comes from the label O(namespace_label), the pod from O(pod_label); when the alert has no pod label,
    a label selector from the label or annotation O(selector_label). An alert without a namespace, or with neither a
    pod nor a selector, or with values that are not Kubernetes names, gets C(incident.ok=false) and C(incident.error)
    saying which label to fix: rules should match on C(event.incident.ok).
  - Listening on anything but a loopback address without a O(token) is refused: whoever reaches the port could start
    debug containers.
  - C(run_id) is C(alert-<fingerprint>): the same alert, however often it is sent, names the same debug containers,
    so the incident playbook adds nothing the second time.
  - Requests are refused with 401 without the right O(token) (when set), 400 when the body is not an Alertmanager
    notification, 413 above O(max_body_bytes).
options:
  host:
    description: The address to listen on. The default listens on this machine only.
    type: str
    default: 127.0.0.1
  port:
    description: The TCP port to listen on.
    type: int
    default: 5050
  token:
    description:
      - When set, every request must carry C(Authorization: Bearer <token>) (Alertmanager's C(http_config.authorization)).
    type: str
  certfile:
    description: A certificate (PEM) to serve HTTPS with; O(keyfile) holds its key.
    type: str
  keyfile:
    description: The key of O(certfile).
    type: str
  namespace_label:
    description: The alert label holding the pod's namespace.
    type: str
    default: namespace
  pod_label:
    description: The alert label holding the pod's name.
    type: str
    default: pod
  selector_label:
    description:
      - The alert label, or else annotation, holding a label selector (such as C(app=web)) for alerts about a workload
        rather than one pod. Used only when the alert has no O(pod_label).
    type: str
    default: kubedebug_selector
  max_body_bytes:
    description: The largest notification accepted.
    type: int
    default: 1048576
  extra_vars:
    description:
      - More variables for the playbook, added to every incident's C(extra_vars) (say C(kd_recipes), C(kd_output_dir),
        C(kd_auth)). The variables taken from the alert (C(kd_namespace), C(kd_pod), C(kd_label_selector), C(kd_reason),
        C(kd_run_id)) cannot be set here.
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Alerts to incident bundles
  hosts: localhost
  sources:
    - kubedebug.ephemeral.alertmanager:
        host: 127.0.0.1
        port: 5050
        token: "{{ alertmanager_token }}"
  rules:
    - name: Diagnose the pod a firing alert names
      condition: event.alert.status == "firing" and event.incident.ok == true
      throttle:
        once_within: 10 minutes
        group_by_attributes:
          - event.incident.key
      action:
        run_playbook:
          name: kubedebug.ephemeral.incident_response
          extra_vars: "{{ event.incident.extra_vars }}"
"""

logger = logging.getLogger(__name__)

DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
DNS1123_SUBDOMAIN = re.compile(r"(?=.{1,253}$)[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
# Label selector syntax, loosely: keys, values, operators, set expressions; no quotes, no spaces at the ends.
SELECTOR = re.compile(r"[A-Za-z0-9][-A-Za-z0-9_./=!,() ]{0,1023}")
FINGERPRINT = re.compile(r"[0-9a-f]{1,64}")
# The reason reaches the playbook as an extra var, and Ansible templates extra vars: text from an alert (anyone who
# can set a label or annotation) must not be able to write "{{ ... }}". Only these characters pass; others become "_".
REASON_UNSAFE = re.compile(r"[^A-Za-z0-9 _.,:;/()+=@'\-]")
REASON_MAX = 200
FROM_ALERT = ("kd_namespace", "kd_pod", "kd_label_selector", "kd_reason", "kd_run_id")
LOOPBACK = re.compile(r"127(\.\d{1,3}){3}|::1|localhost")
DEFAULTS: dict[str, Any] = {
    "host": "127.0.0.1",
    "port": 5050,
    "namespace_label": "namespace",
    "pod_label": "pod",
    "selector_label": "kubedebug_selector",
    "max_body_bytes": 1048576,
    "extra_vars": {},
}


class NotAlertmanager(ValueError):
    """The body is not an Alertmanager webhook notification."""


def settings(args: Mapping[str, Any]) -> dict[str, Any]:
    """The source's arguments with their defaults; unknown or ill-typed ones are refused by name."""
    known = {*DEFAULTS, "token", "certfile", "keyfile"}
    unknown = sorted(set(args) - known)
    if unknown:
        raise ValueError(f"kubedebug.ephemeral.alertmanager: unknown argument(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    # A rulebook variable left unset renders as "" (kd_eda_token | default('')): the same as not set.
    out = {**DEFAULTS, **{k: v for k, v in args.items() if v is not None and v != ""}}
    for key in ("port", "max_body_bytes"):
        try:
            out[key] = int(out[key])
        except (TypeError, ValueError):
            raise ValueError(f"kubedebug.ephemeral.alertmanager: {key} must be a number, not {out[key]!r}") from None
    if not 0 < out["port"] < 65536:
        raise ValueError(f"kubedebug.ephemeral.alertmanager: port must be 1-65535, not {out['port']}")
    if out["max_body_bytes"] < 1024:
        raise ValueError(f"kubedebug.ephemeral.alertmanager: max_body_bytes must be at least 1024, not {out['max_body_bytes']}")
    for key in ("host", "namespace_label", "pod_label", "selector_label", "token", "certfile", "keyfile"):
        if key in out and not isinstance(out[key], str):
            raise ValueError(f"kubedebug.ephemeral.alertmanager: {key} must be a string")
    if bool(out.get("certfile")) != bool(out.get("keyfile")):
        raise ValueError("kubedebug.ephemeral.alertmanager: set certfile and keyfile together")
    if not out.get("token") and not LOOPBACK.fullmatch(out["host"]):
        raise ValueError(
            f"kubedebug.ephemeral.alertmanager: listening on {out['host']} without a token would let anyone who reaches "
            "it start debug containers: set token (and Alertmanager's http_config.authorization), or listen on 127.0.0.1"
        )
    extra = out["extra_vars"]
    if not isinstance(extra, Mapping) or not all(isinstance(k, str) for k in extra):
        raise ValueError(f"kubedebug.ephemeral.alertmanager: extra_vars must be a mapping of variable names, not {extra!r}")
    taken = sorted(set(extra) & set(FROM_ALERT))
    if taken:
        raise ValueError(f"kubedebug.ephemeral.alertmanager: extra_vars cannot set {', '.join(taken)}: they come from each alert")
    out["extra_vars"] = dict(extra)
    return out


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def incident_of(alert: Mapping[str, Any], opts: Mapping[str, Any]) -> dict[str, Any]:
    """What one alert asks to diagnose, or why it cannot be (``ok``/``error``, naming the label to fix)."""
    labels = _mapping(alert.get("labels"))
    annotations = _mapping(alert.get("annotations"))
    name = _text(labels.get("alertname")) or "alert"
    namespace = _text(labels.get(opts["namespace_label"]))
    pod = _text(labels.get(opts["pod_label"]))
    selector = "" if pod else _text(labels.get(opts["selector_label"])) or _text(annotations.get(opts["selector_label"]))
    fingerprint = _text(alert.get("fingerprint")).lower()
    summary = _text(annotations.get("summary")) or _text(annotations.get("description"))
    reason = REASON_UNSAFE.sub("_", " ".join((f"{name}: {summary}" if summary else name).split()))
    reason = reason if len(reason) <= REASON_MAX else reason[: REASON_MAX - 3] + "..."
    incident: dict[str, Any] = {
        "ok": False,
        "error": None,
        "namespace": namespace or None,
        "pod": pod or None,
        "label_selector": selector or None,
        "reason": reason,
        # Alertmanager's fingerprints are 16 hex digits; the run id names debug containers (63 characters at most).
        "run_id": f"alert-{fingerprint[:16]}" if FINGERPRINT.fullmatch(fingerprint) else None,
        "key": None,
        "extra_vars": {},
    }
    where = f"alert {name!r}"
    if not namespace:
        incident["error"] = f"{where} has no label {opts['namespace_label']!r}: set it (namespace_label names the label to read)"
    elif not DNS1123_LABEL.fullmatch(namespace):
        incident["error"] = f"{where}: label {opts['namespace_label']!r} is {namespace!r}, which is not a namespace name"
    elif not pod and not selector:
        incident["error"] = (
            f"{where} in namespace {namespace!r} has neither a label {opts['pod_label']!r} nor a label or annotation "
            f"{opts['selector_label']!r} (a label selector): nothing to diagnose"
        )
    elif pod and not DNS1123_SUBDOMAIN.fullmatch(pod):
        incident["error"] = f"{where}: label {opts['pod_label']!r} is {pod!r}, which is not a pod name"
    elif selector and not SELECTOR.fullmatch(selector):
        incident["error"] = f"{where}: {opts['selector_label']!r} is {selector!r}, which is not a label selector"
    elif incident["run_id"] is None:
        incident["error"] = f"{where}: no fingerprint (Alertmanager sends one with every alert): cannot name the run"
    else:
        # Both kd_pod and kd_label_selector, one of them empty: the playbook wants exactly one set.
        from_alert = {"kd_namespace": namespace, "kd_pod": pod, "kd_label_selector": selector, "kd_reason": reason, "kd_run_id": incident["run_id"]}
        incident.update(
            ok=True,
            key=f"{namespace}/{pod}" if pod else f"{namespace}?{selector}",
            extra_vars={**opts["extra_vars"], **from_alert},
        )
    return incident


def alert_events(payload: Any, opts: Mapping[str, Any], endpoint: str = "") -> list[dict[str, Any]]:
    """The events of one Alertmanager notification: one per alert, in the order sent."""
    if not isinstance(payload, Mapping) or not isinstance(payload.get("alerts"), list):
        raise NotAlertmanager("not an Alertmanager notification: a JSON object with a list 'alerts' is expected")
    meta = {
        "endpoint": endpoint,
        "receiver": payload.get("receiver"),
        "groupKey": payload.get("groupKey"),
        "externalURL": payload.get("externalURL"),
        "version": payload.get("version"),
    }
    events = []
    for i, alert in enumerate(payload["alerts"]):
        if not isinstance(alert, Mapping):
            raise NotAlertmanager(f"not an Alertmanager notification: alerts[{i}] is not an object")
        kept = {k: alert.get(k) for k in ("status", "labels", "annotations", "startsAt", "endsAt", "fingerprint", "generatorURL")}
        kept["status"] = _text(kept["status"]) or _text(payload.get("status")) or "firing"
        events.append({"alert": kept, "incident": incident_of(alert, opts), "meta": meta})
    return events


def authorized(header: str | None, token: str | None) -> bool:
    """Whether an Authorization header carries the token (always, when no token is set)."""
    if not token:
        return True
    scheme, _sep, given = (header or "").strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


async def main(queue: asyncio.Queue[Any], args: dict[str, Any]) -> None:
    """Serve Alertmanager's webhook until cancelled; each alert becomes an event on ``queue``."""
    from aiohttp import web  # pylint: disable=import-outside-toplevel  # ansible-rulebook brings it; the tests of the mapping do not need it

    opts = settings(args)

    async def receive(request: web.Request) -> web.Response:
        if not authorized(request.headers.get("Authorization"), opts.get("token")):
            return web.json_response({"error": "missing or wrong bearer token"}, status=401)
        if request.content_length is not None and request.content_length > opts["max_body_bytes"]:
            return web.json_response({"error": f"body over {opts['max_body_bytes']} bytes"}, status=413)
        body = await request.content.read(opts["max_body_bytes"] + 1)
        if len(body) > opts["max_body_bytes"]:
            return web.json_response({"error": f"body over {opts['max_body_bytes']} bytes"}, status=413)
        try:
            events = alert_events(json.loads(body), opts, request.match_info.get("endpoint", ""))
        except (ValueError, UnicodeDecodeError) as exc:
            # json.JSONDecodeError and NotAlertmanager are ValueErrors.
            logger.warning("kubedebug.ephemeral.alertmanager: refused a request from %s: %s", request.remote, exc)
            return web.json_response({"error": str(exc)}, status=400)
        for event in events:
            if not event["incident"]["ok"]:
                logger.warning("kubedebug.ephemeral.alertmanager: %s", event["incident"]["error"])
            await queue.put(event)
        return web.json_response({"events": len(events)})

    app = web.Application(client_max_size=opts["max_body_bytes"] + 1)
    app.router.add_post(r"/{endpoint:.*}", receive)
    context = None
    if opts.get("certfile"):
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(opts["certfile"], opts["keyfile"])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, opts["host"], opts["port"], ssl_context=context)
    await site.start()
    logger.info("kubedebug.ephemeral.alertmanager: listening on %s:%s", opts["host"], opts["port"])
    try:
        await asyncio.Future()
    finally:
        await runner.cleanup()
