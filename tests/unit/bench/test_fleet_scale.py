# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The scale benchmark's arithmetic: what counts as a read or a write, ratios, and which targets hold."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

# bench/ is not a package of the collection: load the benchmark script by its path.
_SPEC = importlib.util.spec_from_file_location("fleet_scale", Path(__file__).resolve().parents[3] / "bench" / "fleet_scale.py")
assert _SPEC is not None and _SPEC.loader is not None
fleet_scale = importlib.util.module_from_spec(_SPEC)
sys.modules["fleet_scale"] = fleet_scale  # dataclasses look their module up by name
_SPEC.loader.exec_module(fleet_scale)


def counts(requests: dict[tuple[str, str], int], rejected: float = 0) -> fleet_scale.Counts:
    return fleet_scale.Counts(Counter(requests), rejected, 245)


def rows(ours: float, limit: float, rerun_writes: int = 0, rerun_lists: int = 10, log_gets: int = 1000) -> list[fleet_scale.Row]:
    add = counts({("LIST", ""): 10, ("WATCH", ""): 10, ("PATCH", "ephemeralcontainers"): 1000})
    empty = fleet_scale.Counts()
    made = [
        fleet_scale.row("ours", 1000, 1000, ours, 200 * 2**20, add - empty, {}),
        fleet_scale.row("ours rerun", 1000, 1000, 5.0, 150 * 2**20, counts({("LIST", ""): rerun_lists, ("PATCH", "ephemeralcontainers"): rerun_writes}), {}),
        fleet_scale.row("ours collect", 1000, 1000, 6.0, 150 * 2**20, counts({("LIST", ""): 10, ("CONNECT", "log"): log_gets}), {}),
        fleet_scale.row("kubectl sequential", 1000, 200, 60.0, 50 * 2**20, counts({("GET", ""): 200, ("PATCH", "ephemeralcontainers"): 200}), {}),
        fleet_scale.row("limit", 1000, 1000, limit, 40 * 2**20, add, {}),
        fleet_scale.row("limit collect", 1000, 1000, 5.5, 40 * 2**20, counts({("LIST", ""): 10, ("CONNECT", "log"): 1000}), {}),
    ]
    by_name = {r.contender: r for r in made}
    for r in made:
        limit_row = by_name.get(fleet_scale.LIMIT_OF.get(r.contender, ""))
        if limit_row:
            r.ratio_to_limit = r.seconds / limit_row.seconds
    return made


def verdicts(made: list[fleet_scale.Row]) -> dict[str, Any]:
    return {what: ok for what, ok, _got in fleet_scale.targets(made, namespaces=10)}


def test_reads_writes_and_log_gets_are_split_as_the_api_server_counts_them() -> None:
    [ours, _rerun, collect, sequential, *_rest] = rows(12.0, 10.0)
    assert (ours.reads, ours.writes, ours.lists, ours.log_gets) == (20, 1000, 10, 0)
    assert (collect.reads, collect.writes, collect.log_gets) == (1010, 0, 1000)  # a log GET is a CONNECT on pods/log
    # Measured on 200 pods, projected to 1,000: time and requests alike, and the table says so.
    assert (sequential.seconds, sequential.writes, sequential.measured_pods) == (300.0, 1000, 200)
    assert "projected from 200" in fleet_scale.table([sequential])


@pytest.mark.parametrize(("ours", "holds"), [(11.9, True), (12.1, False)])
def test_the_ratio_target_is_1_2_times_the_limit(ours: float, holds: bool) -> None:
    assert verdicts(rows(ours, 10.0))["N=1000: ours ≤ 1.2× the limit"] is holds


def test_a_rerun_that_writes_or_lists_twice_misses_its_target() -> None:
    target = "N=1000: rerun makes 0 writes and at most one LIST per namespace"
    assert verdicts(rows(11.0, 10.0))[target] is True
    assert verdicts(rows(11.0, 10.0, rerun_writes=1))[target] is False
    assert verdicts(rows(11.0, 10.0, rerun_lists=11))[target] is False


def test_collect_needs_one_log_get_per_container() -> None:
    target = "N=1000: collect makes one log GET per container, ≤ 1.2× the limit"
    assert verdicts(rows(11.0, 10.0))[target] is True
    assert verdicts(rows(11.0, 10.0, log_gets=1001))[target] is False
    # Without the limit in the run the ratio is not measured: not a miss, unless the count is wrong.
    no_limit = [r for r in rows(11.0, 10.0) if not r.contender.startswith("limit")]
    for r in no_limit:
        r.ratio_to_limit = None
    assert verdicts(no_limit)[target] is None
    wrong = [r for r in rows(11.0, 10.0, log_gets=999) if not r.contender.startswith("limit")]
    for r in wrong:
        r.ratio_to_limit = None
    assert verdicts(wrong)[target] is False


def test_growth_exponent() -> None:
    assert fleet_scale.slope([(100, 1.0), (1000, 10.0)]) == pytest.approx(1.0)
    assert fleet_scale.slope([(100, 1.0), (1000, 100.0)]) == pytest.approx(2.0)
    assert fleet_scale.slope([(100, 1.0)]) is None


def test_subtracting_counts_keeps_only_what_changed() -> None:
    before = counts({("LIST", ""): 5, ("PATCH", "ephemeralcontainers"): 7}, rejected=2)
    after = counts({("LIST", ""): 15, ("PATCH", "ephemeralcontainers"): 7}, rejected=5)
    delta = after - before
    assert (dict(delta.requests), delta.rejected) == ({("LIST", ""): 10}, 3)
