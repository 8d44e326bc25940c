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
reservations could not change which jobs start in this pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

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


@dataclass(slots=True)
class Decisions:
    starts: list[Start] = field(default_factory=list)
    preempts: list[tuple[int, int]] = field(default_factory=list)  # (victim, for job)
    reservations: list[Reservation] = field(default_factory=list)
    held: list[tuple[int, str]] = field(default_factory=list)


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


def backfill_pass(sim: Simulator, mode: BackfillMode, *, record: bool = False) -> Decisions:
    d = Decisions()
    if mode == "none":
        return d
    bf = sim.backfill
    now = sim.now
    res = bf.resolution
    floor = sim.config.floor_reservations
    prof = _availability(sim, floor)
    latest = now + bf.window.seconds
    ledger = _QosLedger(sim)
    min_units = sim.min_pending_units()
    tested = 0
    started = 0
    per_user: dict[str, int] = {}
    reserved_one = False
    for j in sim.ordered_queue():
        if prof.free[0] < min_units:
            break
        if tested >= bf.max_job_test:
            break
        user = sim.job_user[j]
        if bf.max_job_user:
            n = per_user.get(user, 0)
            if n >= bf.max_job_user:
                continue
            per_user[user] = n + 1
        tested += 1
        reason = ledger.blocked(j)
        if reason is not None:
            d.held.append((j, reason))
            continue
        units = sim.job_units[j]
        tmin = sim.job_time_min[j]
        dur = tmin if tmin else sim.job_limit[j]
        plan = dur if floor else -(-dur // res) * res
        if units <= prof.free[0] and prof.fits_now(units, plan):
            _reserve(prof, floor, now, now, now + plan, units, res)
            ledger.add(j)
            d.starts.append(Start(j, dur, "backfill"))
            started += 1
            if bf.max_job_start and started >= bf.max_job_start:
                break
            continue
        if mode == "easy" and reserved_one:
            continue
        t = prof.earliest_fit(units, plan, latest)
        if t is None:
            continue
        blocked = min(sim.capacity, _reserved_units(sim, units))
        _reserve(prof, floor, now, t, t + plan, blocked, res)
        reserved_one = True
        if record:
            d.reservations.append(Reservation(j, t, t + plan, units))
    return d
