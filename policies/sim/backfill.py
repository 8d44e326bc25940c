"""Scheduling algorithms. They read the simulator's state and return decisions; they never
touch the event queue or change the state (the simulator applies the decisions).

* :func:`main_pass` -- Slurm's main scheduler: pending jobs in order (PriorityTier, then
  priority, submit time, id); start what fits with its full time limit; a job held by a
  QOS limit is skipped; the first job that does not fit stops the pass (Slurm then takes that
  job's partition nodes away from every later job, and here all tiers share the nodes).
  A job may preempt running jobs of lower-PriorityTier, preemptable tiers.
* :func:`backfill_pass` -- Slurm's backfill: walk up to ``bf_max_job_test`` pending jobs in
  the same order over an availability curve (planned ends rounded up to
  ``bf_resolution``, horizon ``bf_window``); start a job if it fits now, otherwise reserve
  its earliest start (``conservative``: every tested job; ``easy``: only the first blocked
  job). A job with ``--time-min`` is planned and granted exactly its minimum, as Slurm
  22.05's backfill does.

The pass stops early once no remaining job is small enough for the units free now: later
reservations could not change which jobs start in this pass. Three more shortcuts keep
saturated replays fast and give the same decisions (tests/policies/sim/test_simulator_fingerprint.py
holds the engine to the schedules recorded before them): (1) the pass's window (the jobs it
may test) is checked against its first profile in one numpy step, and it stops planning once
none of the window's jobs that fit it still fits the profile as reservations fill it (the
profile only loses units during a pass), recording only the QOS holds it would still have
recorded; (2) EASY, after its one reservation, looks only at those jobs; (3) a job at least
as wide and as long as one that found no start within ``bf_window`` is not searched again.
Without QOS caps, bf_max_job_user, floor or recorded reservations a pass runs a lean loop
(:func:`_simple_pass`) that also (4) reuses the last pass's decision, or replays its log up
to the first window position that changed, while the running set is the same (see
:class:`PassMemo`), and (5) starts each start search where the pass last found one for a job
as wide and no longer. A pass (main or backfill) with fewer units free than its first test
needs returns before building anything.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import chain
from typing import TYPE_CHECKING, Literal

import numpy as np

from sandfill.policies.sim.availability import Availability

if TYPE_CHECKING:
    from sandfill.policies.sim.simulator import Simulator

BackfillMode = Literal["conservative", "easy", "none"]
QOS_JOBS = "QOSMaxJobsPerUserLimit"
QOS_CPUS = "QOSMaxCpuPerUserLimit"


@dataclass(frozen=True, slots=True)
class Start:
    job: int
    limit: int  # granted time limit (s)
    by: str  # "main" | "backfill"


@dataclass(frozen=True, slots=True)
class Reservation:
    job: int
    start: int
    end: int
    units: int


@dataclass(frozen=True, slots=True)
class PassMemo:
    """What a backfill pass that started and held nothing saw and did: the running set (its
    version, see Simulator.run_version), the window it tested, what it did at each position
    (``log``: ``(pos, start, end, units)`` for a reservation, ``(pos, None, units, plan)``
    for a shape that found no start) and where it stopped. A later pass that sees the same
    running set before ``until`` decides, at the positions its window shares with this one
    (up to ``stop``), what this one decided (see :func:`_memo`): with the same window, nothing;
    else it replays the shared positions' log and plans on from the first that differs."""

    run_version: int
    until: int  # the memo holds while now < until
    window: list[int]
    log: list[tuple]
    stop: int
    base_times: list[int]  # the profile the pass began with
    base_free: list[int]


@dataclass(slots=True)
class Decisions:
    starts: list[Start] = field(default_factory=list)
    preempts: list[tuple[int, int]] = field(default_factory=list)  # (victim, for job)
    reservations: list[Reservation] = field(default_factory=list)
    held: list[tuple[int, str]] = field(default_factory=list)
    memo: PassMemo | None = None  # set by a backfill pass that may be reused (see PassMemo)


class _QosLedger:
    """Per (qos, user) running jobs and CPUs, with tentative additions during a pass."""

    __slots__ = ("sim", "extra")

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.extra: dict[tuple[int, str], list[int]] = {}

    def blocked(self, j: int) -> str | None:
        sim = self.sim
        q = sim.job_qos[j]
        caps = sim.qos_caps[q]
        if caps is None:
            return None
        key = (q, sim.job_user[j])
        used = sim.qos_used.get(key, (0, 0))
        extra = self.extra.get(key, (0, 0))
        max_jobs, max_cpus = caps
        if max_jobs is not None and used[0] + extra[0] + 1 > max_jobs:
            return QOS_JOBS
        if max_cpus is not None and used[1] + extra[1] + sim.job_cpus[j] > max_cpus:
            return QOS_CPUS
        return None

    def add(self, j: int) -> None:
        sim = self.sim
        q = sim.job_qos[j]
        if sim.qos_caps[q] is None:
            return
        e = self.extra.setdefault((q, sim.job_user[j]), [0, 0])
        e[0] += 1
        e[1] += sim.job_cpus[j]


def _reserved_units(sim: Simulator, units: int) -> int:
    """What a future reservation blocks. Slurm's backfill plans reservations on node
    bitmaps, so with CPU allocation a job reserved for later blocks whole nodes
    (``ceil(cpus / cpus_per_node)`` of them) from lower-priority jobs in that window."""
    if sim.config.alloc != "cpu" or not sim.config.node_reservations:
        return units
    cpn = sim.config.cpus_per_node
    return -(-units // cpn) * cpn


def _availability(sim: Simulator, floor: bool) -> Availability:
    """Free units from now on, as the running jobs' planned ends free them: exact ends with
    ``floor`` (select's will-run test uses them), else rounded up to ``bf_resolution``."""
    res = sim.backfill.resolution
    if floor:
        ends = [(sim.planned_end[r], sim.job_units[r]) for r in sim.running]
    else:
        ends = [(-(-sim.planned_end[r] // res) * res, sim.job_units[r]) for r in sim.running]
    return Availability(sim.now, sim.capacity, sim.free, ends)


def _reserve(prof: Availability, floor: bool, now: int, start: int, end: int, units: int,
             res: int) -> None:
    """Reserve ``units`` from ``start`` to ``end``; with ``floor`` as Slurm's
    ``_add_reservation`` does it: start and end rounded down to ``bf_resolution``."""
    if not floor:
        prof.reserve(start, end, units)
        return
    s = max(now, start // res * res)
    e = end // res * res
    if e > s:
        prof.reserve(s, e, units)


def main_pass(sim: Simulator) -> Decisions:
    d = Decisions()
    if not sim.any_preemptable and all(c is None for c in sim.qos_caps):
        first = sim.queue_first()  # with nothing to hold or preempt, the pass stops at the
        if first is None or sim.job_units[first] > sim.free:  # first job that does not fit
            return d
    free = sim.free
    ledger = _QosLedger(sim)
    victims_taken: set[int] = set()
    for j in sim.ordered_queue():
        reason = ledger.blocked(j)
        if reason is not None:
            d.held.append((j, reason))
            continue
        units = sim.job_units[j]
        if units <= free:
            free -= units
            ledger.add(j)
            d.starts.append(Start(j, sim.job_limit[j], "main"))
            continue
        victims = _pick_victims(sim, j, units - free, victims_taken)
        if victims is None:
            break
        for v in victims:
            victims_taken.add(v)
            d.preempts.append((v, j))
            free += sim.job_units[v]
        free -= units
        ledger.add(j)
        d.starts.append(Start(j, sim.job_limit[j], "main"))
    return d


def _pick_victims(sim: Simulator, j: int, need: int, taken: set[int]) -> list[int] | None:
    if not sim.any_preemptable:
        return None
    tier = sim.job_ptier[j]
    cands = [
        r
        for r in sim.running
        if r not in taken and sim.job_preemptable[r] and sim.job_ptier[r] < tier
    ]
    if not cands:
        return None
    cands.sort(key=lambda r: (-sim.start[r], r))  # newest first (least work lost)
    out, got = [], 0
    for r in cands:
        out.append(r)
        got += sim.job_units[r]
        if got >= need:
            return out
    return None


def planned_durations(sim: Simulator) -> tuple[list[int], list[int]]:
    """Each job's backfill duration (its ``--time-min`` if any, else its limit) and what a
    pass plans for it (that, rounded up to ``bf_resolution`` unless ``floor_reservations``)."""
    res = sim.backfill.resolution
    floor = sim.config.floor_reservations
    durs = [tmin if tmin else lim for tmin, lim in zip(sim.job_time_min, sim.job_limit,
                                                        strict=True)]
    plans = durs if floor else [-(-d // res) * res for d in durs]
    return durs, list(plans)


class _NoFit:
    """Job shapes (units, plan) that found no start within ``bf_window`` in this pass, as a
    staircase (units rising, plans falling). A job at least as wide and as long as one of
    them finds none either: the profile only loses units as the pass goes on."""

    __slots__ = ("units", "plans")

    def __init__(self) -> None:
        self.units: list[int] = []
        self.plans: list[int] = []

    def covers(self, units: int, plan: int) -> bool:
        i = bisect_right(self.units, units) - 1
        return i >= 0 and self.plans[i] <= plan

    def add(self, units: int, plan: int) -> None:
        """Add a shape that ``covers`` does not cover; drop the ones it covers."""
        i = bisect_left(self.units, units)
        j = i
        while j < len(self.plans) and self.plans[j] >= plan:
            j += 1
        self.units[i:j] = [units]
        self.plans[i:j] = [plan]


def _fit_mask(prof: Availability, units: np.ndarray, plans: np.ndarray) -> np.ndarray:
    """Which of the jobs (``units``, ``plans``) fit ``prof`` now, as ``fits_now`` says."""
    lowest = np.minimum.accumulate(np.array(prof.free, dtype=np.int64))
    k = np.searchsorted(np.array(prof.times, dtype=np.int64), prof.times[0] + plans)
    return (k == 0) | (units <= lowest[np.maximum(k - 1, 0)])


class _Watch:
    """Which jobs of a pass's window could still start: those that fit the profile it began
    with (numpy, once), dropped one by one, in window order, once they no longer fit the
    profile as it is (it only loses units as the pass goes on, so a job that does not fit
    now never will in this pass)."""

    __slots__ = ("c_pos", "c_units", "c_plans", "i", "window", "pos", "units", "plans")

    def __init__(self, sim: Simulator, prof: Availability, window: list[int]) -> None:
        """``prof``: the profile the pass begins with. Built from the running jobs' ends
        alone, it never falls, so a job fits it now exactly when it fits its first segment."""
        w = np.fromiter(window, dtype=np.int64, count=len(window))
        units = sim.units_arr[w]
        pos = np.flatnonzero(units <= prof.free[0])
        self.pos, self.units, self.plans = pos, units[pos], sim.plan_arr[w[pos]]
        # the candidates' window positions, units and plans, as lists for the checks below
        self.c_pos, self.c_units, self.c_plans = (pos.tolist(), self.units.tolist(),
                                                  self.plans.tolist())
        self.i = 0
        self.window = window

    def alive(self, pos: int, prof: Availability) -> bool:
        """Whether a job at window position ``pos`` or later may still fit: the next few
        candidates one by one, then (when they are all out) the rest in one numpy step."""
        times, free = prof.times, prof.free
        now, free0 = times[0], free[0]
        c_pos, c_units, c_plans, i, n = self.c_pos, self.c_units, self.c_plans, self.i, len(
            self.c_pos)
        last = min(n, i + ALIVE_SCAN)
        while i < last:
            units = c_units[i]
            if c_pos[i] >= pos and units <= free0:
                k = bisect_left(times, now + c_plans[i])
                if not k or min(free[:k]) >= units:
                    break
            i += 1
        else:
            if i < n:
                left = np.flatnonzero(_fit_mask(prof, self.units[i:], self.plans[i:])
                                      & (self.pos[i:] >= pos))
                i = i + int(left[0]) if len(left) else n
        self.i = i
        return i < n


def _stops_early(sim: Simulator, record: bool) -> bool:
    """Whether a pass may stop testing once nothing can start any more: not when its
    reservations are recorded, nor when QOS holds would be recorded past a point that
    Slurm-style floored reservations can move (floor reservations may take units now)."""
    if record:
        return False
    return not (sim.config.floor_reservations and any(c is not None for c in sim.qos_caps))


FOREVER = 1 << 62
ALIVE_SCAN = 4  # candidates a "can anything still start?" check tests one by one
CHECK_EVERY = 8  # window positions between two "can anything still start?" checks
SMALL_QUEUE = 32  # on shorter queues the check would cost more than it saves


def backfill_pass(sim: Simulator, mode: BackfillMode, *, record: bool = False) -> Decisions:
    d = Decisions()
    if mode == "none" or not sim.pending_key or _nothing_fits_now(sim):
        return d
    window = _window(sim, record)
    if window is not None and _memo_ok(sim):
        return _simple_pass(sim, mode, d, window)
    _general_pass(sim, mode, d, window, record)
    return d


def _general_pass(sim: Simulator, mode: BackfillMode, d: Decisions, window: list[int] | None,
                  record: bool) -> None:
    """A pass with every branch (QOS, bf_max_job_user, floor and recorded reservations)."""
    bf, now, floor = sim.backfill, sim.now, sim.config.floor_reservations
    res, latest = bf.resolution, now + bf.window.seconds
    prof = _availability(sim, floor)
    ledger, min_units = _QosLedger(sim), sim.min_pending_units()
    job_units, job_plan, job_dur, job_user = sim.job_units, sim.job_plan, sim.job_dur, sim.job_user
    tested = started = check = 0
    per_user: dict[str, int] = {}
    reserved_one = False
    watch = _Watch(sim, prof, window) if window is not None else None
    queue = iter(window) if window is not None else sim.ordered_queue()
    nofit: _NoFit | None = None
    # EASY after its one reservation: only window jobs that still fit can start, and with no
    # QOS caps and no bf_max_job_user the others need no look (no holds, nothing to count)
    jump = watch is not None and not bf.max_job_user and not _has_caps(sim)
    for pos, j in enumerate(queue):
        if prof.free[0] < min_units or tested >= bf.max_job_test:
            break
        if watch is not None and pos >= check:
            if not watch.alive(pos, prof):  # nothing can start any more
                _hold_rest(sim, d, ledger, j, queue, tested, per_user)
                break
            check = pos + CHECK_EVERY
        if bf.max_job_user and _user_full(per_user, job_user[j], bf.max_job_user):
            continue
        tested += 1
        reason = ledger.blocked(j)
        if reason is not None:
            d.held.append((j, reason))
            continue
        units = job_units[j]
        plan = job_plan[j]
        if units <= prof.free[0] and prof.fits_now(units, plan):
            _reserve(prof, floor, now, now, now + plan, units, res)
            ledger.add(j)
            d.starts.append(Start(j, job_dur[j], "backfill"))
            started += 1
            if bf.max_job_start and started >= bf.max_job_start:
                break
            continue
        if mode == "easy" and reserved_one:
            if jump:
                _easy_rest(sim, d, prof, watch, pos + 1, started)
                break
            continue
        if nofit is not None and nofit.covers(units, plan):
            continue
        t = prof.earliest_fit(units, plan, latest)
        if t is None:
            if nofit is None:
                nofit = _NoFit()
            nofit.add(units, plan)
            continue
        blocked = min(sim.capacity, _reserved_units(sim, units))
        _reserve(prof, floor, now, t, t + plan, blocked, res)
        reserved_one = True
        if record:
            d.reservations.append(Reservation(j, t, t + plan, units))


def _simple_pass(sim: Simulator, mode: BackfillMode, d: Decisions,
                 window: list[int]) -> Decisions:
    """A pass over ``window`` without QOS caps, bf_max_job_user, floor reservations or
    recorded reservations (nothing to hold or count): the loop of :func:`backfill_pass`
    without those branches, starting from the last pass's memo where it holds."""
    memo = sim.bf_memo
    if memo is not None and (memo.run_version != sim.run_version or sim.now >= memo.until):
        memo = None
    if memo is not None and memo.window == window:
        d.memo = memo  # the same running set and window as a pass that decided nothing
        return d
    if memo is not None:  # the same running set: the same curve from its first end on
        prof = Availability.shifted(memo.base_times, memo.base_free, sim.now, sim.capacity)
    else:
        prof = _availability(sim, False)
    base = (prof.times[:], prof.free[:])
    first_end = prof.times[1] if len(prof.times) > 1 else None
    watch = _Watch(sim, prof, window)
    nofit = _NoFit()
    log: list[tuple] = []
    pos, reserved_one = 0, False
    if memo is not None:
        pos, reserved_one = _replay(prof, nofit, memo, window, log)
    stop = _simple_loop(sim, mode, d, prof, window, watch, nofit, log, pos, reserved_one)
    if not d.starts:
        d.memo = _memo(sim, prof, window, first_end, log, stop, base)
    return d


def _simple_loop(sim: Simulator, mode: BackfillMode, d: Decisions, prof: Availability,
                 window: list[int], watch: _Watch, nofit: _NoFit, log: list[tuple], pos: int,
                 reserved_one: bool) -> int:
    """Plan ``window`` from ``pos`` on; returns the position the pass stopped at (the state
    it leaves is what the positions before it did)."""
    bf = sim.backfill
    times, free = prof.times, prof.free
    now = times[0]
    latest = now + bf.window.seconds
    min_units = sim.min_pending_units()
    job_units, job_plan, job_dur = sim.job_units, sim.job_plan, sim.job_dur
    nf_units, nf_plans = nofit.units, nofit.plans
    easy, started, check, n = mode == "easy", 0, pos, len(window)
    found: dict[int, tuple[int, int]] = {}  # units -> (start, plan) of the last search
    while pos < n:
        if free[0] < min_units:
            break
        if pos >= check:
            if not watch.alive(pos, prof):  # nothing can start any more
                break
            check = pos + CHECK_EVERY
        j = window[pos]
        units, plan = job_units[j], job_plan[j]
        if easy and reserved_one:  # EASY after its reservation: starts only
            if not (units <= free[0] and prof.fits_now(units, plan)):
                _easy_rest(sim, d, prof, watch, pos + 1, started)
                break  # (this job did nothing: the state after it is the state before it)
            t = now
        elif (i := bisect_right(nf_units, units) - 1) >= 0 and nf_plans[i] <= plan:
            t = None  # covered: no start within bf_window (so none now either)
        else:
            # now when it fits now; a job as wide found its start at ``low[0]``: when this
            # one is no shorter, it cannot start before (the profile only loses units)
            low = found.get(units)
            t = prof.earliest_fit(units, plan, latest,
                                  low[0] if low is not None and low[1] <= plan else None)
            if t is None:
                nofit.add(units, plan)
                log.append((pos, None, units, plan))
            else:
                found[units] = (t, plan)
        if t == now:
            prof.reserve(now, now + plan, units)
            d.starts.append(Start(j, job_dur[j], "backfill"))
            started += 1
            if bf.max_job_start and started >= bf.max_job_start:
                break
        elif t is not None:
            blocked = min(sim.capacity, _reserved_units(sim, units))
            prof.reserve(t, t + plan, blocked)
            reserved_one = True
            log.append((pos, t, t + plan, blocked))
        pos += 1
    return pos


def _replay(prof: Availability, nofit: _NoFit, memo: PassMemo, window: list[int],
            log: list[tuple]) -> tuple[int, bool]:
    """Redo, on this pass's profile, what the memo's pass did at the positions before the
    first at which the windows differ (or where it stopped); returns that position and
    whether a reservation was made."""
    resume = min(_common_prefix(window, memo.window), memo.stop)
    reserved_one = False
    for entry in memo.log:
        pos, start, a, b = entry
        if pos >= resume:
            break
        if start is None:
            nofit.add(a, b)
        else:
            prof.reserve(start, a, b)
            reserved_one = True
        log.append(entry)
    return resume, reserved_one


def _common_prefix(a: list[int], b: list[int]) -> int:
    """How many leading items ``a`` and ``b`` share (bisecting on slice equality)."""
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    lo, hi = 0, n  # a[:lo] == b[:lo] and a[:hi] != b[:hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid
    return lo


def _nothing_fits_now(sim: Simulator) -> bool:
    """Whether fewer units are free now than any pending job needs, so that the pass's first
    test would stop it. (Its profile's units free now are the machine's while every running
    job's end lies ahead, as it does unless finished jobs keep their units: release_delay.)"""
    return sim.config.release_delay == 0 and sim.free < sim.min_pending_units()


def _has_caps(sim: Simulator) -> bool:
    return any(c is not None for c in sim.qos_caps)


def _user_full(per_user: dict[str, int], user: str, cap: int) -> bool:
    """bf_max_job_user: whether ``user`` already had ``cap`` jobs tested (else count one)."""
    n = per_user.get(user, 0)
    if n >= cap:
        return True
    per_user[user] = n + 1
    return False


def _window(sim: Simulator, record: bool) -> list[int] | None:
    """The jobs a pass may test, in order, when it may stop early (else None: the pass
    walks the whole queue)."""
    bf = sim.backfill
    if len(sim.pending_key) <= SMALL_QUEUE or not _stops_early(sim, record):
        return None
    return sim.queue_head(len(sim.pending_key) if bf.max_job_user else bf.max_job_test)


def _memo_ok(sim: Simulator) -> bool:
    """Whether a pass's memo may be reused: not with QOS caps (the ledger moves with the
    queue outside the window) or bf_max_job_user (its window is the whole queue), nor with
    floor reservations (their start rounds against now)."""
    return not (sim.backfill.max_job_user or sim.config.floor_reservations
                or any(c is not None for c in sim.qos_caps))


def _memo(sim: Simulator, prof: Availability, window: list[int], first_end: int | None,
          log: list[tuple], stop: int, base: tuple[list[int], list[int]]) -> PassMemo:
    """The memo of a pass over ``window`` that started and held nothing, ending with profile
    ``prof``; ``first_end`` is the first time after now of the profile it began with.

    A later pass at ``now2``, with the same running set (so the same free units and planned
    ends) and the same window, decides the same, while: (a) ``now2 < first_end``: its
    profile is this one's with segment 0 beginning at ``now2`` (no end merges into it), so a
    job that did not fit now does not (it needs a longer stretch from segment 0 on) and
    every other start search meets the same breakpoints with the same units, job by job; and
    (b) no breakpoint of the final profile lies in (now + bf_window, now2 + bf_window]: a
    job whose earliest start lay beyond this pass's horizon lies beyond that one's too
    (every start found is a breakpoint of the profile at the job's turn, and a pass only
    adds breakpoints). The same holds position by position: at each position both windows
    share, up to where this pass stopped, the later pass meets the same profile and shapes."""
    span = sim.backfill.window.seconds
    times = prof.times
    k = bisect_right(times, sim.now + span)
    until = min(first_end if first_end is not None else FOREVER,
                times[k] - span if k < len(times) else FOREVER)
    return PassMemo(sim.run_version, until, window, log, stop, *base)


def _easy_rest(sim: Simulator, d: Decisions, prof: Availability, watch: _Watch, pos: int,
               started: int) -> None:
    """The rest of an EASY pass after its reservation, when nothing is held: start, in
    window order, each job that fit the pass's first profile and fits the profile as it is
    now (one numpy test; the starts then only take units away) and still fits at its turn."""
    bf = sim.backfill
    now = prof.times[0]
    floor, res = sim.config.floor_reservations, bf.resolution
    i = watch.i
    left = _fit_mask(prof, watch.units[i:], watch.plans[i:]) & (watch.pos[i:] >= pos)
    for c in (np.flatnonzero(left) + i).tolist():
        p, units, plan = watch.c_pos[c], watch.c_units[c], watch.c_plans[c]
        if units > prof.free[0] or not prof.fits_now(units, plan):
            continue
        j = watch.window[p]
        _reserve(prof, floor, now, now, now + plan, units, res)
        d.starts.append(Start(j, sim.job_dur[j], "backfill"))
        started += 1
        if bf.max_job_start and started >= bf.max_job_start:
            return


def _hold_rest(sim: Simulator, d: Decisions, ledger: _QosLedger, first: int,
               queue: Iterator[int], tested: int, per_user: dict[str, int]) -> Decisions:
    """The rest of a pass in which nothing can start any more: only the QOS holds of the jobs
    it would still test are left to record (the profile's units free now no longer change,
    nor does the ledger)."""
    if all(c is None for c in sim.qos_caps):
        return d
    bf = sim.backfill
    for j in chain((first,), queue):
        if tested >= bf.max_job_test:
            return d
        if bf.max_job_user and _user_full(per_user, sim.job_user[j], bf.max_job_user):
            continue
        tested += 1
        reason = ledger.blocked(j)
        if reason is not None:
            d.held.append((j, reason))
    return d
