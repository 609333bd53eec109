"""Container output is untrusted and is never lost; allowed_images cannot be bypassed.

* A debug container on the real node really prints good JSON, a warning, more JSON, bytes that are
  not UTF-8 and a last line without a newline: the lookup and the info module keep every good line
  and name the others (bad_lines, partial_line, invalid_utf8).
* Hostile text - HTML, a Jinja lookup that would create a file on the controller, {% raw %}, Markdown
  that would break a table or make a link - comes out of a real debug container and out of a real
  target process, through a real playbook: the lookup, the info module registered and used in later
  tasks, the recipe and incident_snapshot roles' facts, report.json, report.html, report.md and the
  fleet report. The file is never created, the text arrives as it was, escaped in each report.
* allowed_images: refused images and spec_override spellings never reach the API server.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import markupsafe
import pytest

from ansible_collections.kubedebug.ephemeral.plugins.plugin_utils._recipes import markdown_escape

from kubehelpers import (
    BUSYBOX_IMAGE,
    DEBUG_IMAGE_REAL,
    REAL_NODE,
    ROOT,
    Cluster,
    include_role,
    patch_ephemeral,
    real_pod,
    recipe_lines,
    run_lookup,
    run_task,
    run_tasks,
    running_pod,
    wait_for,
)

INFO = "kubedebug.ephemeral.ephemeral_container_info"
MODULE = "kubedebug.ephemeral.ephemeral_container"
NOT_JSON = "Expecting value: line 1 column 1 (char 0)"


def sleeper(name: str = "app") -> dict[str, Any]:
    return {"name": name, "image": BUSYBOX_IMAGE, "command": ["sleep", "3600"]}


def terminated(cluster: Cluster, namespace: str, pod: str, container: str) -> Any:
    def done() -> Any:
        statuses = cluster.core.read_namespaced_pod(pod, namespace).status.ephemeral_container_statuses or []
        return next((s.state.terminated for s in statuses if s.name == container and s.state.terminated), None)

    return wait_for(f"{namespace}/{pod} {container} to terminate", done, timeout=120, interval=0.5)


# --- malformed output ---------------------------------------------------------------------

# busybox printf: octal escapes for the bytes that are not UTF-8 (\377 \376, and \351, a Latin-1 "é"), and no newline
# after the last line.
MALFORMED = (
    r"""printf '%s\n' '{"n": 1}' 'WARNING: disk almost full' '{"n": 2}';"""
    r""" printf '\377\376 garbage\n{"name": "caf\351"}\n{"n": 3}\n{"last": true}'"""
)
MALFORMED_LOG = '{"n": 1}\nWARNING: disk almost full\n{"n": 2}\n\ufffd\ufffd garbage\n{"name": "caf\ufffd"}\n{"n": 3}\n{"last": true}'
GOOD = [{"n": 1}, {"n": 2}, {"name": "caf\ufffd"}, {"n": 3}, {"last": True}]


@pytest.mark.real_node
@pytest.mark.usefixtures("real_node")
def test_malformed_output_loses_nothing(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    real_pod(cluster, namespace, "web", [sleeper()])
    patch_ephemeral(cluster, namespace, "web", [{"name": "noisy", "image": BUSYBOX_IMAGE, "command": ["sh", "-c", MALFORMED]}])
    assert terminated(cluster, namespace, "web", "noisy").exit_code == 0
    raw = cluster.core.read_namespaced_pod_log("web", namespace, container="noisy", _preload_content=False).data
    assert raw.count(b"\n") == 6 and not raw.endswith(b"\n") and b"\xff\xfe" in raw  # what the kubelet really serves

    bad = [
        {"line": 2, "text": "WARNING: disk almost full", "error": NOT_JSON},
        {"line": 4, "text": "\ufffd\ufffd garbage", "error": NOT_JSON},
    ]
    summary = f"2 lines are not JSON (lines 2, 4; see bad_lines); every other line was parsed. Line 2: {NOT_JSON}: 'WARNING: disk almost full'"
    options = {"kubeconfig": cluster.kubeconfig, "container": "noisy", "parse": "json_lines"}
    looked_up = run_lookup(tmp_path, [f"{namespace}/web"], options)
    [via_lookup] = looked_up["ansible_facts"]["records"]
    registered = run_task(tmp_path, INFO, {**options, "pod": [f"{namespace}/web"], "logs": True, "wait_for": "terminated"})
    [via_module] = registered["pods"]
    for rec in (via_lookup, via_module):
        assert (rec["node"], rec["state"], rec["exit_code"]) == (REAL_NODE, "terminated", 0), rec
        # Every good line, before, between and after the bad ones, the last one without its newline included.
        assert rec["output"] == GOOD, json.dumps(rec)
        assert (rec["bad_lines"], rec["parse_error"]) == (bad, summary), rec
        assert (rec["invalid_utf8"], rec["truncated"], rec["partial_line"]) == (3, False, None), rec
        assert rec["logs"] == MALFORMED_LOG

    # limit_bytes cuts the last line: left out, reported, not a bad line.
    cut = run_lookup(tmp_path, [f"{namespace}/web"], {**options, "limit_bytes": len(raw) - 3})
    [rec] = cut["ansible_facts"]["records"]
    print(f"log {len(raw)} bytes, limit_bytes {len(raw) - 3}: partial_line {rec['partial_line']}")
    assert (rec["truncated"], rec["output"], rec["bad_lines"]) == (True, GOOD[:-1], bad), rec
    assert rec["partial_line"] == {"line": 7, "text": '{"last": tr', "chars": 11}


# --- hostile output -----------------------------------------------------------------------


def esc(text: str) -> str:
    """As the templates' ``| e`` escapes it (markupsafe, which Jinja uses)."""
    return str(markupsafe.escape(text))


VICTIM_SCRIPT = 'echo "$1"; while :; do sleep 9; done'


def hostile(marker: Path) -> str:
    # What reports cut short (report.md shows 300 characters of a check's detail) comes last.
    return (
        f"<script>alert(1)</script> [x](javascript:alert(1)) | cell | `tick` {{{{ lookup('pipe', 'touch {marker}') }}}}"
        " {% raw %} {# c #} ``x`` ![i](http://127.0.0.1/i.png) &lt; *b* _i_"
    )


# A script of one's own (the recipe role's main entry point). The role passes it through Ansible variables, so it holds
# no Jinja markers itself: printf makes the braces (octal 173 and 175) in the container.
HOSTILE_SCRIPT = r"""
o=$(printf '\173\173'); c=$(printf '\175\175'); po=$(printf '\173%%'); pc=$(printf '%%\175')
ho=$(printf '\173#'); hc=$(printf '#\175')
h="<script>alert(1)</script> [x](javascript:alert(1)) | cell | \`tick\` $o lookup('pipe', 'touch $1') $c"
h="$h $po raw $pc $ho c $hc \`\`x\`\` ![i](http://127.0.0.1/i.png) &lt; *b* _i_"
emit_check "$h" "$h" false "$h"
printf 'not json: %s\n' "$h"
emit_check resolve kubernetes.default.svc true ""
"""


KEEP_RECIPE_FACTS = {"hostile_results": "{{ recipe_results }}", "hostile_summary": "{{ recipe_summary }}"}


def md_rows(text: str) -> list[list[str]]:
    """The Markdown table rows of ``text``, split into cells the way GitHub does (an escaped pipe stays in its cell)."""
    rows = []
    for line in text.splitlines():
        if line.startswith("|"):
            cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
            rows.append(cells)
    return rows


def assert_tables_intact(text: str) -> None:
    """Every row of every table has as many cells as its header: nothing in a cell ended it or the row."""
    lines = text.splitlines()
    width = None
    for line in lines:
        if not line.startswith("|"):
            width = None
            continue
        cells = md_rows(line)[0]
        if width is None:
            width = len(cells)
        assert len(cells) == width, line


@pytest.mark.real_node
@pytest.mark.usefixtures("real_node")
def test_hostile_output_stays_text_from_container_to_reports(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    marker = Path(f"/tmp/kd-untrusted-{uuid.uuid4().hex[:12]}")
    text = hostile(marker)
    # A hostile workload: its command line and its log carry the text (set through the API, never through Ansible).
    real_pod(cluster, namespace, "victim", [{"name": "app", "image": BUSYBOX_IMAGE, "command": ["sh", "-c", VICTIM_SCRIPT, "sh", text]}])
    wait_for("the victim's log", lambda: text in cluster.core.read_namespaced_pod_log("victim", namespace, container="app"))
    dest, fleet = tmp_path / "incidents", tmp_path / "fleet"
    auth = {"kubeconfig": cluster.kubeconfig}
    tasks = [
        # A recipe of one's own whose debug container prints the text in every field of a check, and as a bad line.
        *include_role(
            cluster, "recipe", recipe_namespace=namespace, recipe_pod="victim", recipe_run_id="hostile", recipe_name="hostile",
            recipe_image=BUSYBOX_IMAGE, recipe_script=HOSTILE_SCRIPT, recipe_args=[str(marker)], recipe_target_container="",
        ),
        # Kept: the incident role runs the recipe role again, which sets recipe_results anew.
        {"name": "Keep the recipe's facts", "ansible.builtin.set_fact": KEEP_RECIPE_FACTS},
        # The info module's result, registered and used by later tasks.
        {"name": "Read it as a task", INFO: {**auth, "pod": [f"{namespace}/victim"], "container": ["kd-hostile-hostile"], "logs": True,
                                             "parse": "json_lines"}, "register": "info"},
        # The first line says how the run was bounded; the text is in the first check.
        {"name": "Use the registered text", "ansible.builtin.set_fact": {"from_info": "{{ info.pods[0].output[1].detail }}",
                                                                         "from_logs": "{{ info.pods[0].logs }}"}},
        {"name": "Show it", "ansible.builtin.debug": {"msg": "{{ from_info }} {{ info.pods[0].parse_error }}"}},
        # The incident role: the processes recipe reads the victim's command line; the snapshot reads its log.
        *include_role(
            cluster, "incident_snapshot", incident_snapshot_namespace=namespace, incident_snapshot_pod="victim",
            incident_snapshot_reason="INC-9 hostile output", incident_snapshot_recipes=["processes"],
            incident_snapshot_debug_image=DEBUG_IMAGE_REAL, incident_snapshot_dest=str(dest),
        ),
        # The fleet report of the recipe's records, with the playbook's own filter and template.
        {"name": "Sum up the fleet", "ansible.builtin.set_fact": {"kd_fleet_summary": (
            "{{ hostile_results | map('combine', {'cluster': 'local'}) | list | kubedebug.ephemeral.fleet_summary("
            "run_id='hostile', recipe='hostile', label_selector='', clusters=['local']) }}")}},
        {"name": "Write the fleet report", "ansible.builtin.template": {
            "src": str(ROOT / "playbooks" / "templates" / "fleet_report.html.j2"), "dest": str(fleet / "report.html"), "mode": "0644"}},
    ]  # fmt: skip
    fleet.mkdir()
    got = run_tasks(
        tmp_path, tasks, "{'results': hostile_results, 'summary': hostile_summary, 'info': info, 'from_info': from_info, "
        "'from_logs': from_logs, 'bundle': incident_snapshot_bundle, 'report': incident_snapshot_report}",
    )  # fmt: skip
    stdout = got.pop("_stdout")

    # Nothing was evaluated: the lookup in the text never ran, anywhere.
    assert not marker.exists(), f"{marker} was created: container output was templated\n{stdout[-3000:]}"

    # The text arrived as it was: in the lookup's records (the recipe role's fact), the module's registered result and
    # the facts made of it.
    [rec] = got["results"]
    assert (rec["state"], rec["exit_code"]) == ("terminated", 0), rec
    assert recipe_lines(rec["output"]) == [
        {"check": text, "target": text, "ok": False, "detail": text},
        {"check": "resolve", "target": "kubernetes.default.svc", "ok": True, "detail": ""},
    ]
    assert set(rec["output"][0]) == {"bounds"}
    # Line 1 is the bounds line, line 2 the first check.
    assert rec["bad_lines"] == [{"line": 3, "text": f"not json: {text}"[:200], "error": NOT_JSON}]
    assert got["summary"]["unparsed_pods"] == ["victim"] and got["summary"]["failed_checks"] == 1
    [info] = got["info"]["pods"]
    assert (info["output"], info["bad_lines"]) == (rec["output"], rec["bad_lines"])
    assert got["from_info"] == text and text in got["from_logs"]
    assert text in stdout  # the debug task showed it, untouched

    # The incident bundle: report.json has it as data, from the target's command line and log.
    bundle = Path(got["bundle"])
    report = json.loads((bundle / "report.json").read_text())
    [processes] = report["recipes"]["processes"]["results"]
    cmdline = ["sh", "-c", VICTIM_SCRIPT, "sh", text]
    assert [p["cmdline"] for p in processes["output"] if p.get("pid") == 1] == [cmdline], processes["output"]
    assert text in report["pods"][0]["logs"]["app"]["current"]

    # report.html: escaped wherever it shows (the command line, the log), never markup.
    page = (bundle / "report.html").read_text()
    assert "<script" not in page and "<img" not in page and 'href="javascript' not in page
    assert esc(text) in page  # the log, whole
    assert esc(json.dumps(cmdline))[:150] in page  # the process's command line, as to_json shows it

    # report.md: inert text, every table row intact.
    md = (bundle / "report.md").read_text()
    assert_tables_intact(md)
    # No markup left: every "<", "[", "]" and "!" of the text is escaped (a backslash before it).
    assert not re.search(r"(?<!\\)<script|(?<!\\)\]\(javascript:|(?<!\\)!(?<!\\)\[i", md), md
    shown = text[: text.index(" {% raw %}")]  # within the 300 characters report.md shows of the command line
    assert "\\<script\\>alert(1)\\</script\\> \\[x\\](javascript:alert(1)) \\| cell \\| \\`tick\\` {{ lookup('pipe', 'touch " in md, md
    assert markdown_escape(shown) in md and shown.endswith(f"'touch {marker}') }}}}")  # literally, not evaluated

    # The fleet report: escaped in the failing checks and in the unparsed output.
    fleet_page = (fleet / "report.html").read_text()
    assert "<script" not in fleet_page and "<img" not in fleet_page and 'href="javascript' not in fleet_page
    assert fleet_page.count(esc(text)) >= 3, fleet_page  # check, target, detail of the failed check
    assert esc(f"not json: {text}"[:100]) in fleet_page  # the bad line, in parse_error


# --- allowed_images -----------------------------------------------------------------------

# Tags 1.x of one image: the ".*" also matches what follows the tag, which is what the digest and whitespace cases try.
ALLOWED = [r"registry\.example\.com/tools/debug:1\..*"]
GOOD_IMAGE = "registry.example.com/tools/debug:1.2"
EVIL = "evil.example/x:1"


def ephemeral_state(cluster: Cluster, namespace: str, pod: str) -> tuple[list[str], str, dict[str, str]]:
    read = cluster.core.read_namespaced_pod(pod, namespace)
    return [c.name for c in read.spec.ephemeral_containers or []], read.metadata.resource_version, read.metadata.annotations or {}


def test_allowed_images_refusals_never_reach_the_api_server(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    running_pod(cluster, namespace, "web")
    before = ephemeral_state(cluster, namespace, "web")
    base = {"kubeconfig": cluster.kubeconfig, "namespace": namespace, "pod": ["web"], "container": "debug", "annotate": True,
            "reason": "bypass", "allowed_images": ALLOWED, "wait": "none"}  # fmt: skip
    digest = "sha256:" + "ab" * 32
    attempts = {
        "spec_override.image": ({"image": GOOD_IMAGE, "spec_override": {"image": EVIL}}, "spec_override.image cannot be set"),
        "spec_override.Image": ({"image": GOOD_IMAGE, "spec_override": {"Image": EVIL}}, "spec_override.Image cannot be set"),
        "mixed case": ({"image": "REGISTRY.example.com/tools/debug:1.2"}, "is not in allowed_images"),
        "digest after the tag": ({"image": f"registry.example.com/tools/debug:1.2@{digest}"}, "is pulled by its digest"),
        "port": ({"image": "registry.example.com:5000/tools/debug:1.2"}, "is not in allowed_images"),
        "docker.io expansion": ({"image": "docker.io/registry.example.com/tools/debug:1.2"}, "is not in allowed_images"),
        "whitespace": ({"image": "registry.example.com/tools/debug:1.2 "}, "is not a valid image reference"),
    }  # fmt: skip
    for name, (args, refusal) in attempts.items():
        # Check mode once: the refusal comes before the dry run too.
        for check in (True, False) if name == "spec_override.image" else (False,):
            result = run_task(tmp_path, MODULE, {**base, **args}, check=check)
            assert result["failed"] is True and refusal in result["msg"], (name, check, result["msg"])
            assert "allowed_images" in result["msg"] or "spec_override" in result["msg"], (name, result["msg"])
    # Nothing reached the pod: no container, no annotation, not one write (the resourceVersion is the same).
    assert ephemeral_state(cluster, namespace, "web") == before

    # Through a recipe role: its image variable is checked all the same, and its auth dict cannot lift the module's
    # allowed_images (module_defaults for the module win over the group defaults the role sets).
    for auth_extra in ({}, {"allowed_images": [".*"]}):
        role = include_role(cluster, "dns", dns_namespace=namespace, dns_pod="web", dns_run_id="bypass", dns_image="evil.example/x:1")
        role[0]["vars"]["dns_auth"] = {"kubeconfig": cluster.kubeconfig, **auth_extra}
        tasks = [{"name": "Try", "block": role, "rescue": [{"name": "Keep", "ansible.builtin.set_fact": {"failure": "{{ ansible_failed_result }}"}}]}]
        got = run_tasks(tmp_path, tasks, "failure | default({})", play_extra={"module_defaults": {MODULE: {"allowed_images": ALLOWED}}})
        assert "image 'evil.example/x:1' is not in allowed_images" in got.get("msg", ""), (auth_extra, got.get("msg"), got["_stdout"][-2000:])
    assert ephemeral_state(cluster, namespace, "web") == before
