"""An independent checker of a simulated schedule.

It recomputes everything from the result's segments and backfill log (no code shared with
the engine) and returns a list of violations (empty = sound):

* no over-commit: at no instant do running segments use more units than the machine has;
* no job starts before it was submitted; every run ends at or after its start and no later
  than its granted limit allows;
* conservative backfill: for every reservation a pass promised to a blocked job, the jobs
  running right after that pass (by their planned ends) plus the reservations promised
  before it in the same pass leave room for it -- so no job was started across it.
"""

from __future__ import annotations

from sandfill.policies.sim.simulator import SimResult


def check_schedule(result: SimResult, *, max_violations: int = 20) -> list[str]:
    out: list[str] = []
    cap = result.capacity
    ids = [j.id for j in result.workload.jobs]

    def add(msg: str) -> bool:
        out.append(msg)
        return len(out) >= max_violations

    # 1. times
    for s in result.segments:
        if s.start < result.submit[s.job] and add(
            f"job {ids[s.job]} started at {s.start} before its submit {result.submit[s.job]}"
        ):
            return out
        if s.end < s.start and add(f"job {ids[s.job]} ended at {s.end} before start {s.start}"):
            return out
    for j, st in enumerate(result.start):
        if st >= 0 and result.end[j] < 0 and j not in result.rejected:
            if add(f"job {ids[j]} started at {st} but never ended"):
                return out
    held = result.config.release_delay  # a finished job keeps its units this long (COMPLETING)
    for s in result.segments:
        if s.outcome != "preempted" and s.end - s.start > result.job_limit[s.job] + held:
            over = s.end - s.start - result.job_limit[s.job] - held
            if add(f"job {ids[s.job]} held its units {over}s past its limit"):
                return out

    # 2. no over-commit: sweep (ends before starts at equal times)
    points = sorted(
        [(s.start, 1, s.units) for s in result.segments]
        + [(s.end, 0, -s.units) for s in result.segments]
    )
    used = 0
    for t, _kind, delta in points:
        used += delta
        if used > cap and add(f"over-commit at t={t}: {used} units used of {cap}"):
            return out

    # 3. reservations promised by backfill passes
    for rec in result.backfill_log:
        intervals = [(start, end, units) for _j, start, end, units in rec.running]
        for r in rec.reservations:
            load = _max_load(intervals, r.start, r.end)
            if load + r.units > cap and add(
                f"backfill at t={rec.time}: reservation of job {ids[r.job]} for "
                f"[{r.start},{r.end}) x{r.units} is overrun ({load} units planned there)"
            ):
                return out
            intervals.append((r.start, r.end, r.units))
    return out


def _max_load(intervals: list[tuple[int, int, int]], lo: int, hi: int) -> int:
    """Largest total units of ``intervals`` overlapping any instant of [lo, hi)."""
    pts = [lo]
    pts += [s for s, e, _u in intervals if lo < s < hi]
    best = 0
    for t in pts:
        load = sum(u for s, e, u in intervals if s <= t < e)
        best = max(best, load)
    return best
