# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One regular test per bug the property tests found (issue 12), each with the input hypothesis reduced it to.

Not generated and not marked ``stress``: they run in every ``make test``, with exact messages. The bounds of
wait_timeout, tail_lines and limit_bytes are tested with the other option checks
(tests/unit/plugins/module_utils/test_errors_options.py and the modules' tests).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from ansible.errors import AnsibleLookupError
from ansible.plugins.loader import lookup_loader

from ansible_collections.kubedebug.ephemeral.plugins.module_utils._client import name_selector
from ansible_collections.kubedebug.ephemeral.plugins.modules import ephemeral_container, ephemeral_container_info
from ansible_collections.kubedebug.ephemeral.plugins.plugin_utils import _lookup
from ansible_collections.kubedebug.ephemeral.plugins.plugin_utils._lookup import KubedebugLookupBase
from ansible_collections.kubedebug.ephemeral.plugins.plugin_utils._recipes import incident_problems, recipe_args, recipe_plan, recipe_problems
from ansible_collections.kubedebug.ephemeral.tests.unit.property.apiserver import NS, SelectorParsingCluster, property_apiserver
from ansible_collections.kubedebug.ephemeral.tests.unit.property.harness import module_context, run_module
from ansible_collections.kubedebug.ephemeral.tests.unit.property.selectors import SelectorError, check_field_selector

BUSYBOX = "docker.io/library/busybox:1.36"
ADD = {"namespace": NS, "pod": ["with-volumes"], "container": "kd-prop", "image": BUSYBOX, "wait": "none"}


@pytest.fixture
def cluster() -> Iterator[SelectorParsingCluster]:
    with property_apiserver() as (server, cluster), module_context(lambda module: server.client()):
        yield cluster


def refusal(main: Any, args: dict[str, Any]) -> str:
    answer = run_module(main, args)
    assert answer.kind == "refused", answer
    return answer.msg


# --------------------------------------------------------------------------- modules


def test_a_label_selector_the_api_server_cannot_parse_is_named(cluster: SelectorParsingCluster) -> None:
    # Was: "listing pods in namespace 'unit-fixtures' failed with HTTP 400: ..." - no option named.
    msg = refusal(ephemeral_container_info.main, {"namespace": NS, "label_selector": "app in ("})
    assert msg.startswith(
        "the API server refused label_selector 'app in (' listing pods in namespace 'unit-fixtures': "
        'Unable to find "/v1, Resource=pods" that match label selector "app in (", field selector "": unable to parse requirement'
    )
    assert msg.endswith("Check the selector's syntax (for example label_selector app.kubernetes.io/name=web,tier!=db or field_selector status.phase=Running)")


def test_a_field_selector_the_api_server_refuses_is_named(cluster: SelectorParsingCluster) -> None:
    msg = refusal(ephemeral_container_info.main, {"namespace": NS, "field_selector": "foo=bar", "label_selector": "app=web"})
    assert msg.startswith("the API server refused label_selector 'app=web' and field_selector 'foo=bar' listing pods in namespace 'unit-fixtures': ")
    assert "field label not supported: foo" in msg


@pytest.mark.parametrize("name", ["a,b", "a=b", "a\\b"])
def test_a_pod_name_is_escaped_in_its_field_selector(cluster: SelectorParsingCluster, name: str) -> None:
    # Was: the name went into metadata.name=<name> as is; the API server answered 400 about a field selector.
    check_field_selector(name_selector(name))
    with pytest.raises(SelectorError):
        check_field_selector(f"metadata.name={name}")
    msg = refusal(ephemeral_container.main, dict(ADD, pod=[name]))
    assert msg == f"1 of 1 pod(s) failed: pod {NS}/{name} not found: check the pod name and namespace"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        # Was: "unexpected error: AttributeError: 'str' object has no attribute 'get'"
        ({"volumeMounts": "0"}, "spec_override.volumeMounts must be a list of mappings; got '0'"),
        ({"env": "x"}, "spec_override.env must be a list of mappings; got 'x'"),
        ({"command": [1]}, "spec_override.command must be a list of strings; got [1]"),
        # Was: "... volume_mounts names volume None, which the pod does not have" - an option that was not set.
        ({"volumeMounts": [{}]}, "spec_override.volumeMounts: every item needs a 'name'; got [{}]"),
    ],
)
def test_spec_override_lists_of_the_wrong_shape(cluster: SelectorParsingCluster, override: dict[str, Any], message: str) -> None:
    assert refusal(ephemeral_container.main, dict(ADD, spec_override=override)) == message


def test_a_spec_override_mount_of_a_volume_the_pod_lacks_names_spec_override(cluster: SelectorParsingCluster) -> None:
    msg = refusal(ephemeral_container.main, dict(ADD, spec_override={"volumeMounts": [{"name": "nope", "mountPath": "/x"}]}))
    assert "spec_override.volumeMounts names volume 'nope', which the pod does not have" in msg


def test_a_mount_path_that_is_no_string(cluster: SelectorParsingCluster) -> None:
    # Was: "unexpected error: TypeError: unhashable type: 'list'"
    msg = refusal(ephemeral_container.main, dict(ADD, volume_mounts=[{"name": "data", "mountPath": ["a"]}]))
    assert msg == "volume_mounts: every mount needs a 'name' and a 'mountPath' (strings); got {'name': 'data', 'mountPath': ['a']}"


# --------------------------------------------------------------------------- the lookup


@pytest.fixture
def query() -> Iterator[Any]:
    with property_apiserver() as (server, cluster), pytest.MonkeyPatch.context() as scope:
        scope.setattr(KubedebugLookupBase, "client", lambda self: server.client())
        scope.setattr(_lookup, "display", type("Quiet", (), {"warning": lambda self, msg: None, "vvv": lambda self, msg: None})())

        def run(*terms: Any, **options: Any) -> Any:
            return lookup_loader.get("kubedebug.ephemeral.ephemeral_results").run(list(terms), variables={}, **options)

        yield run


def test_the_lookup_refuses_an_unknown_keyword(query: Any) -> None:
    # Was: ignored, so a misspelt container= collected every container.
    with pytest.raises(AnsibleLookupError) as err:
        query(f"{NS}/states", contianer="exited", wait_for="none")
    assert err.value.message.startswith("ephemeral_results: unsupported option(s) contianer; supported options: all_namespaces, api_key, ")


@pytest.mark.parametrize("value", ["inf", "-Infinity", float("inf")])
def test_the_lookup_refuses_an_infinite_number(query: Any, value: Any) -> None:
    # Was: OverflowError "cannot convert Infinity to integer" out of ansible-core's option conversion.
    with pytest.raises(AnsibleLookupError) as err:
        query(f"{NS}/states", wait_timeout=value)
    assert err.value.message == "ephemeral_results: wait_timeout must be a finite number"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        # Was: AttributeError ("'int' object has no attribute 'strip'")
        ({"namespace": NS, "field_selector": [1]}, "field_selector must be a string or a list of strings; got [1]"),
        ({"namespace": [NS, 5], "label_selector": "app=web"}, f"namespace must be a string or a list of strings; got ['{NS}', 5]"),
        # Was: TypeError ("unhashable type: 'list'")
        ({"namespace": NS, "label_selector": "app=web", "container": [[]]}, "container must be a container name or a list of them; got [[]]"),
    ],
)
def test_the_lookup_refuses_list_items_that_are_no_strings(query: Any, options: dict[str, Any], message: str) -> None:
    with pytest.raises(AnsibleLookupError) as err:
        query(wait_for="none", **options)
    assert err.value.message == f"ephemeral_results: {message}"


# --------------------------------------------------------------------------- the recipe roles

GOOD = {"namespace": "", "pod": "", "label_selector": "app=web", "all_namespaces": True, "run_id": "r1", "container": "", "image": "busybox",
        "wait_timeout": 120, "parallel": 10, "limit_bytes": 1024}  # fmt: skip


@pytest.mark.parametrize("value", ["no", "false", "off", "0"])
def test_all_namespaces_given_as_text_false_is_false(value: str) -> None:
    # A role's argument spec checks a bool but hands it on unconverted. Was: bool("no") is True, so the check
    # accepted a selector without a namespace, and the module refused it after the role's check.
    assert recipe_problems("dns", {**GOOD, "all_namespaces": value}, prefix="dns") == [
        "give dns_namespace (with dns_label_selector: a list of namespaces, or dns_all_namespaces true instead)"
    ]
    assert recipe_problems("dns", {**GOOD, "all_namespaces": "yes"}, prefix="dns") == []


@pytest.mark.parametrize(("value", "args"), [("no", ["--no-histogram"]), ("false", ["--no-histogram"]), (False, ["--no-histogram"]), ("yes", []), (True, [])])
def test_jvm_histogram_given_as_text(value: Any, args: list[str]) -> None:
    # Was: "no" (truthy text) kept the histogram.
    assert recipe_args("jvm", {"pid": 0, "histogram": value}) == args


INCIDENT = {
    "namespace": "shop",
    "pod": "web-0",
    "reason": "INC-1",
    "dest": "/tmp",
    "recipe_vars": {},
    "events_limit": 20,
    "tail_lines": 100,
    "wait_timeout": 120,
}


@pytest.mark.parametrize("option", ["namespace", "pod", "label_selector", "reason"])
def test_incident_options_that_are_no_strings(option: str) -> None:
    # The argument spec let [] through as text "[]"; the incident was planned, and its recipes failed one by one
    # on recipe_namespace, an option the user never set.
    options = {**INCIDENT, option: []}
    assert f"incident_snapshot_{option} must be a string (got [])" in incident_problems(options)


def test_a_run_id_or_container_written_as_a_yaml_number() -> None:
    # "dns_run_id: 20240101" is a number in YAML; the argument spec accepts it as a string and hands on the number.
    # Was: refused ("give a dns_run_id of lower-case letters ... (got run_id=20240101)"), and a numeric container a
    # TypeError out of the regular expression.
    assert recipe_problems("dns", {**GOOD, "run_id": 20240101}, prefix="dns") == []
    assert recipe_problems("dns", {**GOOD, "container": 4}, prefix="dns") == []
    assert recipe_plan("dns", {**GOOD, "run_id": 1, "container": 4}).container == "4"
    assert recipe_plan("dns", {**GOOD, "run_id": 20240101}).container == "kd-dns-20240101"


def test_a_pod_that_is_no_string() -> None:
    # Was: accepted, and the module refused "argument 'pod' is of type dict" - not the role's variable.
    options = {**GOOD, "namespace": "shop", "all_namespaces": False, "label_selector": "", "pod": {"a": 1}}
    assert recipe_problems("dns", options, prefix="dns")[0] == 'dns_pod must be a string (got {"a": 1})'


@pytest.mark.parametrize("image", [" ", " busybox", "busybox\n", ["busybox"]])
def test_an_incident_debug_image_with_spaces(image: Any) -> None:
    # Was: not checked by the incident's plan; every recipe then failed on recipe_image after the pods were read.
    options = {**INCIDENT, "debug_image": image}
    assert [p for p in incident_problems(options) if "debug_image" in p] == [
        f"incident_snapshot_debug_image must name the debug image without spaces around it, or be empty to keep each recipe's own (got {json.dumps(image)})"
    ]
    assert incident_problems({**options, "debug_image": ""}) == incident_problems({**options, "debug_image": "registry.example/debug:1"}) == []


def test_a_run_id_with_a_trailing_newline() -> None:
    # Was: accepted (re.match with "$" matches before a final newline); the module then refused the container name.
    assert recipe_problems("dns", {**GOOD, "run_id": "debug\n"}, prefix="dns")[0].startswith("give a dns_run_id of lower-case letters")
    assert recipe_problems("main", {**GOOD, "name": "greet\n", "script": "true"})[0].startswith("recipe_name must be lower-case letters")


def test_a_blank_namespace_is_no_namespace() -> None:
    # Was: accepted; the module strips it and refused "pod reference 'web-0' has no namespace".
    options = {**GOOD, "namespace": " ", "pod": "web-0", "label_selector": "", "all_namespaces": False}
    assert recipe_problems("dns", options, prefix="dns") == [
        "give dns_namespace (with dns_label_selector: a list of namespaces, or dns_all_namespaces true instead)"
    ]


@pytest.mark.parametrize("option", ["target_container", "script", "reason"])
def test_recipe_text_options_that_are_no_strings(option: str) -> None:
    # Was: a list got through; target_container reached the module as "['']", script was a TypeError in the action.
    assert recipe_problems("main", {**GOOD, "name": "greet", "script": "true", option: [""]})[0] == f'recipe_{option} must be a string (got [""])'


def test_a_wait_that_times_out_names_wait_timeout(cluster: SelectorParsingCluster) -> None:
    cluster.kubelet_state = {"waiting": {"reason": "ContainerCreating"}}
    msg = refusal(ephemeral_container.main, dict(ADD, wait="running", wait_timeout=0))
    assert msg == f"1 of 1 pod(s) failed: pod {NS}/with-volumes: added, but it was not running within 0s (wait_timeout): the container is pending"


@pytest.mark.parametrize(("names", "args"), [("kubernetes.default.svc", ["kubernetes.default.svc"]), ("a,b", ["a", "b"]), (False, ["False"]), (5, ["5"])])
def test_a_list_option_given_as_text_or_a_scalar(names: Any, args: list[str]) -> None:
    # The argument spec accepts dns_names: "kubernetes.default.svc" as a list of one, but hands on the text. Was: one
    # name per character; and a TypeError for a boolean.
    assert recipe_problems("dns", {**GOOD, "names": names}, prefix="dns") == []
    assert recipe_args("dns", {"names": names}) == args


def test_a_name_that_leaves_no_room_for_the_run_id() -> None:
    # Was: "recipe_run_id is too long ... so give at most -2" - the name is what is too long.
    problems = recipe_problems("main", {**GOOD, "name": "a" * 61, "script": "true"})
    assert problems == ["recipe_name is too long: the debug container kd-<name>-<run id> may have at most 63 characters, so give at most 58 (got 61)"]
