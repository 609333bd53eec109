# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for the split_list filter: survey answers (strings) and command line values (lists) alike."""

from __future__ import annotations

from typing import Any

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.kubedebug.ephemeral.plugins.filter.split_list import FilterModule, split_list


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("shop", ["shop"]),
        ("shop, payments", ["shop", "payments"]),
        ("shop,payments", ["shop", "payments"]),
        ("shop\npayments\n", ["shop", "payments"]),  # a textarea answer, one per line
        ("  shop ,, payments\r\n", ["shop", "payments"]),  # empty items and CRLF are dropped
        ("tcp:db:5432 https://api/", ["tcp:db:5432", "https://api/"]),  # colons and slashes are kept
        ("", []),
        (None, []),
        (["shop", "payments"], ["shop", "payments"]),
        (["a, b"], ["a, b"]),  # a list is taken as it is: its items are not split again
        ((), []),
    ],
)
def test_split_list(value: Any, expected: list[str]) -> None:
    assert split_list(value) == expected


@pytest.mark.parametrize("value", [{"shop": 1}, 5, True])
def test_split_list_refuses_what_is_no_list(value: Any) -> None:
    with pytest.raises(AnsibleFilterError, match=r"^split_list: expected a list or a text of items"):
        split_list(value)


def test_split_list_returns_a_new_list() -> None:
    given = ["shop"]
    got = split_list(given)
    got.append("payments")
    assert given == ["shop"]


def test_registered_name() -> None:
    assert FilterModule().filters() == {"split_list": split_list}
