# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: the checks of numeric options that every front end shares.

Ansible's argument spec checks types, not ranges; these say which option is
wrong and what it must be, in the same words for every module and the lookup.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ansible_collections.kubedebug.ephemeral.plugins.module_utils._errors import KubedebugError

# A container name (and so a recipe's run id, part of one) is a DNS-1123 label: the API server refuses anything else.
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# The API's numbers (tailLines, limitBytes) are int64: a larger one is a 400 from the API server about a query
# parameter the user never wrote.
MAX_INT64 = 2**63 - 1
# A week. Far beyond any debug session, and far below what Python's timers, sockets and the API's watch timeout
# overflow on (a wait_timeout of 2**63 seconds was an OverflowError in the middle of the wait).
MAX_WAIT_TIMEOUT = 7 * 24 * 3600


def check_limits(values: Mapping[str, Any]) -> None:
    """Refuse a bound that is not positive, or beyond the API's int64 (``tail_lines``, ``limit_bytes``: None means no bound)."""
    for name, value in values.items():
        if value is not None and value < 1:
            raise KubedebugError(f"{name} must be a positive number (or unset); got {value}")
        if value is not None and value > MAX_INT64:
            raise KubedebugError(f"{name} must be at most {MAX_INT64} (the API's largest number); got {value}")


def check_wait_and_parallel(wait_timeout: float, parallel: int) -> None:
    """Refuse a negative or absurdly long timeout, or fewer than one request at a time."""
    if not 0 <= wait_timeout <= MAX_WAIT_TIMEOUT:
        raise KubedebugError(f"wait_timeout must be 0 to {MAX_WAIT_TIMEOUT} seconds (a week); got {wait_timeout}")
    if parallel < 1:
        raise KubedebugError(f"parallel must be at least 1; got {parallel}")


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    """Refuse a value outside ``choices`` (the lookup's options are not checked by an argument spec)."""
    if value not in choices:
        raise KubedebugError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
