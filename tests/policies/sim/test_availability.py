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


def test_earliest_fit_from_a_known_bound() -> None:
    """Started from a breakpoint no later than the answer, the search gives the answer."""
    import random

    rng = random.Random(3)
    for _ in range(500):
        ends = [(rng.randint(1, 40) * 60, rng.randint(1, 4)) for _ in range(rng.randint(0, 6))]
        prof = Availability(0, 16, 16 - sum(u for _, u in ends), ends)
        for _ in range(rng.randint(0, 4)):
            t = rng.randint(0, 40) * 60
            prof.reserve(t, t + rng.randint(1, 20) * 60, rng.randint(1, 3))
        units, plan = rng.randint(1, 16), rng.randint(1, 30) * 60
        want = prof.earliest_fit(units, plan, 3600)
        bounds = [b for b in prof.times if want is None or b <= want]
        for b in bounds:
            assert prof.earliest_fit(units, plan, 3600, b) == want


def test_a_job_past_its_planned_end_is_not_free_now() -> None:
    """A job that timed out but still completes (release_delay) holds its units: they free
    from the next second, so a pass cannot start another job on them now."""
    prof = Availability(640, 2, 0, [(600, 2)])
    assert prof.times == [640, 641] and prof.free == [0, 2]
    assert not prof.fits_now(1, 60)
