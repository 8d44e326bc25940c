"""Availability curve: the copy a backfill pass reuses when the running set is unchanged."""

from __future__ import annotations

from sandfill.policies.sim.availability import Availability


def test_shifted_is_the_curve_built_later() -> None:
    """Built at 30 from the same running jobs (all ending after 90), the curve is the one
    built at 0 with its first segment beginning at 30; the copy shares no list with it."""
    ends = [(600, 2), (90, 1), (600, 1), (1200, 4)]
    first = Availability(0, 10, 2, ends)
    later = Availability.shifted(first.times, first.free, 30, 10)
    fresh = Availability(30, 10, 2, ends)
    assert (later.times, later.free, later.capacity) == (fresh.times, fresh.free, 10)
    later.reserve(100, 700, 3)
    assert first.times == [0, 90, 600, 1200] and first.free == [2, 3, 6, 10]
