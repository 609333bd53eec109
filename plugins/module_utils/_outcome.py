# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: what a manager hands back to its front end."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class Outcome:
    """The whole answer of one task or lookup call.

    ``result`` is what a module returns (``changed`` included); ``failure``, when
    set, is the message to fail with, and the result is still returned beside it
    so that a user sees which pods succeeded. Warnings are shown by the front end
    (``module.warn`` or ``display.warning``).
    """

    result: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    failure: str | None = None


class Manager(Protocol):
    """What a front end runs: built from a client and a checked request, ``run`` does the work."""

    def run(self) -> Outcome: ...
