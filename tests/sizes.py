# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How big the fault, load and property tests are.

``make test`` runs them small, so that the whole suite stays well inside CI's
time; ``make stress`` (hack/stress.sh) sets ``KD_STRESS=1`` and runs the same tests
at the sizes the reliability issue asks for. A test picks its size with
``size(small, full)`` and prints which one it ran, so a log says what was proven.
"""

from __future__ import annotations

import os

STRESS = os.environ.get("KD_STRESS") == "1"


def size(small: int, full: int) -> int:
    """``full`` under ``make stress``, ``small`` under ``make test``."""
    return full if STRESS else small
