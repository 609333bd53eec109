# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for the attach_files filter, on the results of a registered stat loop as Ansible returns them."""

from __future__ import annotations

from typing import Any

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.kubedebug.ephemeral.plugins.filter.attach_files import attach_files

WEB0 = {"namespace": "shop", "pod": "web-0", "output": [{"check": "capture"}]}
WEB1 = {"namespace": "shop", "pod": "web-1", "output": [{"check": "capture"}]}
PAY0 = {"namespace": "pay", "pod": "web-0", "output": None}


def stat(record: dict[str, Any], path: str, size: int, checksum: str) -> dict[str, Any]:
    return {"item": [record, record["output"][0]], "stat": {"exists": True, "path": path, "size": size, "checksum": checksum}}


def test_attach_files() -> None:
    stats = [
        stat(WEB0, "/out/shop/web-0.pcap", 24, "ab12"),
        {"item": [WEB1, WEB1["output"][0]], "skipped": True, "skip_reason": "Conditional result was False"},
    ]
    got = attach_files([WEB0, WEB1, PAY0], stats)
    assert got[0] == {**WEB0, "pcap": {"path": "/out/shop/web-0.pcap", "size": 24, "sha256": "ab12"}}
    # Same pod name in another namespace, or a skipped item: no file.
    assert got[1]["pcap"] is None and got[2]["pcap"] is None
    assert "pcap" not in WEB0  # the records given are not changed


def test_other_key() -> None:
    [got] = attach_files([WEB0], [stat(WEB0, "/f", 1, "c")], key="file")
    assert got["file"] == {"path": "/f", "size": 1, "sha256": "c"} and "pcap" not in got


@pytest.mark.parametrize("stats", [[], None])
def test_without_files(stats: Any) -> None:
    if stats is None:
        with pytest.raises(AnsibleFilterError, match="both lists"):
            attach_files([WEB0], stats)
    else:
        assert attach_files([WEB0], stats) == [{**WEB0, "pcap": None}]


def test_stat_not_from_a_pair_loop() -> None:
    with pytest.raises(AnsibleFilterError, match=r"does not come from a loop over \[record, check\] pairs"):
        attach_files([WEB0], [{"item": "web-0", "stat": {"path": "/f"}}])
