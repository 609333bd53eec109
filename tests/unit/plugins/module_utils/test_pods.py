# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for plugins/module_utils/_pods.py: reading pods and container states, and what a wait asks for.

Pods are the recorded API objects in tests/unit/fixtures/pods (see the README there).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ansible_collections.kubedebug.ephemeral.plugins.module_utils._pods import (
    WAIT_MODES,
    container_names,
    container_state,
    ephemeral_reached,
    ephemeral_status,
    pod_ref,
    reached,
    status_only,
)
from ansible_collections.kubedebug.ephemeral.tests.unit.api_objects import load_pod

NS = "unit-fixtures"


def terminate(pod: dict[str, Any], container: str) -> dict[str, Any]:
    """A copy of ``pod`` in which ephemeral container ``container`` has terminated (a variant made for the test)."""
    copied = copy.deepcopy(pod)
    for status in copied["status"]["ephemeralContainerStatuses"]:
        if status["name"] == container:
            status["state"] = {"terminated": {"exitCode": 0, "reason": "Completed", "finishedAt": "2026-11-25T09:10:00Z"}}
            return copied
    raise AssertionError(f"{container} not in the pod")


# --------------------------------------------------------------------------- pod_ref and container_names


def test_wait_modes() -> None:
    assert WAIT_MODES == ("none", "running", "terminated")


def test_pod_ref(plain_pod: dict[str, Any]) -> None:
    assert pod_ref(plain_pod) == (NS, "plain")
    assert pod_ref(load_pod("module-added")) == ("unit-fixtures-rerun", "rerun")
    assert pod_ref({}) == ("", "")
    assert pod_ref({"metadata": None}) == ("", "")


def test_container_names(volumes_pod: dict[str, Any], states_pod: dict[str, Any]) -> None:
    assert container_names(volumes_pod) == (["app", "sidecar"], ["init"], [])
    assert container_names(states_pod) == (["states"], [], ["exited", "pull-fail", "fresh"])
    assert container_names(load_pod("debugged")) == (["app"], [], ["debug"])
    assert container_names({}) == ([], [], [])


# --------------------------------------------------------------------------- container state

PENDING = {
    "status": "pending",
    "reason": None,
    "message": None,
    "exit_code": None,
    "started_at": None,
    "finished_at": None,
}


def test_container_state_terminated(states_pod: dict[str, Any]) -> None:
    assert container_state(ephemeral_status(states_pod, "exited")) == {
        "status": "terminated",
        "reason": "Error",
        "message": None,
        "exit_code": 3,
        "started_at": "2026-11-25T09:09:29Z",
        "finished_at": "2026-11-25T09:09:32Z",
    }


def test_status_only_keeps_what_a_record_needs_and_nothing_else(states_pod: dict[str, Any]) -> None:
    for name in ("exited", "pull-fail", "fresh", "not-there"):
        slim = status_only(states_pod, name)
        assert container_state(ephemeral_status(slim, name)) == container_state(ephemeral_status(states_pod, name))
        assert slim and set(slim) == {"status"} and set(slim["status"]) == {"ephemeralContainerStatuses"}
        assert len(slim["status"]["ephemeralContainerStatuses"]) == (0 if name == "not-there" else 1)
    assert status_only({}, "x") == {"status": {"ephemeralContainerStatuses": []}}  # never {}, which means "gone"


def test_container_state_waiting(states_pod: dict[str, Any]) -> None:
    assert container_state(ephemeral_status(states_pod, "pull-fail")) == {
        "status": "waiting",
        "reason": "ImagePullBackOff",
        "message": 'Back-off pulling image "registry.invalid/debug:1"',
        "exit_code": None,
        "started_at": None,
        "finished_at": None,
    }


def test_container_state_running(states_pod: dict[str, Any]) -> None:
    assert container_state(ephemeral_status(states_pod, "fresh")) == {
        "status": "running",
        "reason": None,
        "message": None,
        "exit_code": None,
        "started_at": "2026-11-25T09:09:30Z",
        "finished_at": None,
    }


def test_container_state_early(states_early_pod: dict[str, Any]) -> None:
    assert container_state(ephemeral_status(states_early_pod, "exited")) == dict(PENDING, status="waiting", reason="ContainerCreating")
    assert ephemeral_status(states_early_pod, "fresh") is None
    assert container_state(ephemeral_status(states_early_pod, "fresh")) == PENDING


@pytest.mark.parametrize(
    "status",
    [None, {}, {"name": "debug"}, {"name": "debug", "state": {}}, {"name": "debug", "state": {"waiting": None}}],
)
def test_container_state_none(status: Any) -> None:
    assert container_state(status) == PENDING


def test_container_state_prefers_terminated_over_running() -> None:
    status = {"state": {"running": {"startedAt": "t1"}, "terminated": {"exitCode": 0, "reason": "Completed"}, "waiting": None}}
    assert container_state(status)["status"] == "terminated"
    assert container_state({"state": {"running": {"startedAt": "t1"}, "waiting": {"reason": "x"}}})["status"] == "running"


def test_ephemeral_status_lookup(states_pod: dict[str, Any], plain_pod: dict[str, Any]) -> None:
    status = ephemeral_status(states_pod, "pull-fail")
    assert status is not None and status["image"] == "registry.invalid/debug:1"
    assert ephemeral_status(states_pod, "app") is None  # regular containers do not count
    assert ephemeral_status(plain_pod, "debug") is None
    assert ephemeral_status({}, "debug") is None


@pytest.mark.parametrize(
    ("status", "wait", "expected"),
    [
        ("pending", "running", False),
        ("waiting", "running", False),
        ("running", "running", True),
        ("terminated", "running", True),
        ("pending", "terminated", False),
        ("waiting", "terminated", False),
        ("running", "terminated", False),
        ("terminated", "terminated", True),
        ("pending", "none", True),
        ("waiting", "none", True),
        ("running", "none", True),
        ("terminated", "none", True),
    ],
)
def test_reached(status: str, wait: str, expected: bool) -> None:
    assert reached(status, wait) is expected


# --------------------------------------------------------------------------- ephemeral_reached (was _results.pod_done)


@pytest.mark.parametrize(
    ("containers", "wait_for", "done"),
    [
        ((), "none", True),
        ((), "running", False),  # pull-fail is waiting
        ((), "terminated", False),
        (("exited", "fresh"), "running", True),  # terminated counts as running (or finished)
        (("exited", "fresh"), "terminated", False),
        (("exited",), "terminated", True),
        (("pull-fail",), "running", False),
        (("pull-fail",), "none", True),
        (("fresh",), "running", True),
        (("fresh",), "terminated", False),
        (("ghost",), "terminated", True),  # a container the pod lacks does not block
        (("ghost", "exited"), "terminated", True),
        (("ghost", "fresh"), "terminated", False),
    ],
)
def test_ephemeral_reached_states(containers: tuple[str, ...], wait_for: str, done: bool) -> None:
    assert ephemeral_reached(load_pod("ephemeral-states"), containers, wait_for) is done


@pytest.mark.parametrize(
    ("containers", "wait_for", "done"),
    [
        (("exited",), "running", False),  # waiting in ContainerCreating
        (("fresh",), "running", False),  # no status yet: pending
        (("fresh",), "none", True),
    ],
)
def test_ephemeral_reached_early_states(containers: tuple[str, ...], wait_for: str, done: bool) -> None:
    assert ephemeral_reached(load_pod("ephemeral-states-early"), containers, wait_for) is done


@pytest.mark.parametrize("wait_for", WAIT_MODES)
def test_ephemeral_reached_without_ephemeral_containers(wait_for: str) -> None:
    assert ephemeral_reached(load_pod("plain"), (), wait_for) is True
    assert ephemeral_reached(load_pod("plain"), ("debug",), wait_for) is True


def test_ephemeral_reached_once_every_container_terminated() -> None:
    pod = terminate(terminate(load_pod("ephemeral-states"), "fresh"), "pull-fail")
    assert ephemeral_reached(pod, (), "terminated") is True


def test_ephemeral_reached_takes_any_iterable() -> None:
    assert ephemeral_reached(load_pod("ephemeral-states"), iter(["exited"]), "terminated") is True
    assert ephemeral_reached(load_pod("ephemeral-states"), (n for n in ["fresh"]), "terminated") is False
