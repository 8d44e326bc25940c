"""Availability curve: free allocation units over future time, as sorted breakpoints.

``times[i]`` is when segment ``i`` begins and ``free[i]`` the units free from then until
``times[i+1]`` (the last segment runs forever). Backfill builds one per pass from the
running jobs' planned ends and adds a reservation per blocked job it tests, so its size is
bounded by running jobs + ``bf_max_job_test``.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right


class Availability:
    __slots__ = ("times", "free", "capacity")

    def __init__(self, now: int, capacity: int, free_now: int, ends: list[tuple[int, int]]):
        """``ends``: (time, units) freed at that time by running jobs (any order). A job past
        its planned end still holds its units (it is completing, as with ``release_delay``):
        they count from the next second, never as free now."""
        self.capacity = capacity
        times = [now]
        free = [free_now]
        cur = free_now
        for t, u in sorted(ends):
            t = max(t, now + 1)
            cur += u
            if t <= times[-1]:
                free[-1] = cur
            else:
                times.append(t)
                free.append(cur)
        self.times = times
        self.free = free

    @classmethod
    def shifted(cls, times: list[int], free: list[int], now: int, capacity: int) -> Availability:
        """A copy of the curve ``times``/``free`` whose first segment begins at ``now``
        instead (``now`` before ``times[1]``)."""
        prof = cls.__new__(cls)
        prof.capacity = capacity
        prof.times = [now, *times[1:]]
        prof.free = free[:]
        return prof

    def earliest_fit(self, units: int, duration: int, latest_start: int,
                     not_before: int | None = None) -> int | None:
        """Earliest start ≤ ``latest_start`` with ``units`` free for ``duration``, or None;
        ``not_before``: a breakpoint no later than that start, known to the caller."""
        times, free = self.times, self.free
        n = len(times)
        i = 0 if not_before is None else bisect_left(times, not_before)
        while i < n:
            if free[i] < units:
                i += 1
                continue
            start = times[i]
            if start > latest_start:
                return None
            end = start + duration
            j = i + 1
            while j < n and times[j] < end:
                if free[j] < units:
                    break
                j += 1
            else:
                return start
            i = j + 1
        return None

    def fits_now(self, units: int, duration: int) -> bool:
        times, free = self.times, self.free
        end = times[0] + duration
        k = bisect_left(times, end)
        return min(free[:k]) >= units if k else True

    def reserve(self, start: int, end: int, units: int) -> None:
        """Take ``units`` during [start, end)."""
        free = self.free
        i = self._split(start)
        k = self._split(end)
        for x in range(i, k):
            free[x] -= units

    def _split(self, t: int) -> int:
        times = self.times
        i = bisect_right(times, t) - 1
        if times[i] == t:
            return i
        times.insert(i + 1, t)
        self.free.insert(i + 1, self.free[i])
        return i + 1
