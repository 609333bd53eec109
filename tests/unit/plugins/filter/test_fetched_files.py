"""The fetched_files filter: the filesystem recipe's output names paths, and a forged one must not escape fetch_dir."""

from __future__ import annotations

import os
from typing import Any

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.kubedebug.ephemeral.plugins.filter.fetched_files import FilterModule

fetched_files = FilterModule().filters()["fetched_files"]


def record(resolved: Any, namespace: str = "shop", pod: str = "web-0") -> dict[str, Any]:
    check = {"check": "file", "target": "/etc/x", "ok": True, "resolved": resolved, "content_base64": "aGk="}
    return {"namespace": namespace, "pod": pod, "output": [check, {"check": "dir", "target": "/etc", "resolved": "/etc"}]}


def test_a_plain_path_goes_under_fetch_dir_namespace_and_pod() -> None:
    [entry] = fetched_files([record("/etc/app/config.yaml")], fetch_dir="/tmp/f/")
    assert entry == {"label": "shop/web-0:/etc/x", "content_base64": "aGk=", "dest": "/tmp/f/shop/web-0/etc/app/config.yaml", "refused": None}


@pytest.mark.parametrize(
    "resolved",
    ["/../../../root/.ssh/authorized_keys", "/etc/../../x", "/etc/./x", "etc/passwd", "//etc/passwd", "/etc/", "/etc/x\0y", "", None, 7, ["/etc"]],
)
def test_a_forged_path_is_refused_and_never_a_destination(resolved: Any, tmp_path: Any) -> None:
    [entry] = fetched_files([record(resolved)], fetch_dir=str(tmp_path))
    assert entry["dest"] is None
    assert "shop/web-0" in entry["refused"] and "not written" in entry["refused"]


@pytest.mark.parametrize(("namespace", "pod"), [("..", "web-0"), ("shop", ".."), ("shop", "a/b"), ("", "web-0")])
def test_a_namespace_or_pod_that_is_no_kubernetes_name_is_refused(namespace: str, pod: str) -> None:
    [entry] = fetched_files([record("/etc/x", namespace=namespace, pod=pod)], fetch_dir="/tmp/f")
    assert entry["dest"] is None and "not a Kubernetes name" in entry["refused"]


def test_every_destination_stays_inside_fetch_dir(tmp_path: Any) -> None:
    paths = ["/etc/x", "/a/b/c", "/.hidden", "/x..y/..z", "/etc/x/..."]
    for entry in fetched_files([record(p) for p in paths], fetch_dir=str(tmp_path)):
        assert entry["refused"] is None
        assert os.path.realpath(entry["dest"]).startswith(str(tmp_path) + os.sep)


def test_records_without_output_and_checks_without_content_give_nothing() -> None:
    assert fetched_files([{"namespace": "shop", "pod": "web-0", "output": None}, record("/etc/x") | {"output": [{"check": "file"}]}], fetch_dir="/f") == []


def test_bad_input_is_a_filter_error() -> None:
    with pytest.raises(AnsibleFilterError, match="fetch_dir"):
        fetched_files([], fetch_dir="")
    with pytest.raises(AnsibleFilterError, match="list of records"):
        fetched_files("nope", fetch_dir="/f")
