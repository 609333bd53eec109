# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: the one exception the shared layer raises."""

from __future__ import annotations


class KubedebugError(Exception):
    """A failure the user can act on.

    ``msg`` says what was refused and what to do about it; the front ends
    (modules call ``fail_json``, the lookup raises ``AnsibleLookupError``) show it
    as is, so it must name the pod, namespace and field where there is one.
    """

    def __init__(self, msg: str, *, status: int | None = None) -> None:
        super().__init__(msg)
        self.msg = msg
        self.status = status


def first_of(messages: list[str], limit: int = 3) -> str:
    """The first ``limit`` messages joined with "; ", and how many more there were.

    One failure report for many pods stays readable in a terminal and in AWX's
    job output; every record still carries its own message.
    """
    more = f"; and {len(messages) - limit} more" if len(messages) > limit else ""
    return "; ".join(messages[:limit]) + more
