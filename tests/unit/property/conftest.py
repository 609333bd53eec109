# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The property tests' session summary: how many generated cases ran, and how many ended in a traceback."""

from __future__ import annotations

from typing import Any

from ansible_collections.kubedebug.ephemeral.tests.unit.property.harness import CASES, summary_lines


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if CASES:
        for line in summary_lines():
            terminalreporter.write_line(line)
