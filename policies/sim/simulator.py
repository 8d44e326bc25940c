"""Discrete-event replay of a workload under a Policy.

The loop pops ``(time, order, seq, event)`` from a heap: job ends first, then submissions,
then the main scheduler, then the backfill scheduler (``order``), ties in insertion order
(``seq``). Schedulers (:mod:`sandfill.policies.sim.backfill`) return decisions; only this module
changes state.

Resource model (documented choice): the machine is a pool of allocation units with no
placement -- ``alloc="node"`` allocates whole nodes (``ceil(cpus / cpus_per_node)``), as
LLNL's Slurm on Atlas did and as exclusive-node sites do; ``alloc="cpu"`` allocates CPUs
(select/cons_tres sharing nodes, e.g. the devcluster), ignoring fragmentation across nodes.
A policy whose tiers have node sets splits the pool into groups of nodes, each tier's jobs
using only its set's groups (:mod:`sandfill.policies.sim.nodesets`, its own passes; every
other policy runs the engine below unchanged).

Mapping jobs to tiers: with ``use_trace_partitions`` a job whose trace partition names a
tier (or its partition) goes there; otherwise it goes to the tier with the shortest
``max_walltime`` that admits its requested time and size, among tiers that are neither the
``notebooks`` tier nor preemptable (jobs reach those only by name); a job that asked for no
time goes to the default tier and gets its ``default_walltime`` (else ``max_walltime``), as
Slurm does. Requests above every tier's limits are rejected (counted, not run).

Priority (multifactor, as Slurm normalises it): age = min(wait, PriorityMaxAge)/MaxAge;
job size = (nodes/total nodes + cpus/total cpus) / 2 (1 - that with favor_small); partition =
PriorityJobFactor / the largest; QOS = QOS priority / the largest. Fair share is not
modelled. Without accounting (``accounting=False``) age, QOS factors and QOS caps are off,
as in Slurm without slurmdbd.

Backfill passes run on the ``bf_interval`` grid while anything changed since the last pass
(a pass over an unchanged state would decide the same). Preempted jobs are requeued
(``requeue``: pending again, age restarting) or cancelled (``cancel``).
"""

from __future__ import annotations

import heapq
import sys
import time as _time
from array import array
from bisect import bisect_left as _bisect_left
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from sandfill.policies.document.model import MachineNode, Policy
from sandfill.policies.sim.backfill import (
    BackfillMode,
    Decisions,
    PassMemo,
    backfill_pass,
    main_pass,
    planned_durations,
)
from sandfill.policies.sim.nodesets import build_pools, pools_backfill_pass, pools_main_pass
from sandfill.policies.sim.prepare import PriorityNorm, prepare_jobs, qos_table
from sandfill.policies.sim.workload import Workload

END, SUBMIT, SCHED, BACKFILL = 0, 1, 2, 3
Alloc = Literal["node", "cpu"]


@dataclass(frozen=True, slots=True)
class SimConfig:
    nodes: int
    cpus_per_node: int
    backfill: BackfillMode = "conservative"
    alloc: Alloc = "node"
    use_trace_partitions: bool = False
    accounting: bool = True
    record_reservations: bool = False
    #: when backfill passes run. "grid": on the next multiple of bf_interval whenever
    #: something changed. "thread": as slurmctld's backfill thread does: a pass at least
    #: bf_interval after the previous one, as soon as anything changed since that pass (the
    #: thread polls every second once the interval is up), jobs started by a pass counting as
    #: a change; ``bf_last`` is the time of the live thread's last pass before the replay.
    bf_timing: Literal["grid", "thread"] = "grid"
    bf_last: int | None = None
    sched_delay: int = 0  # batch_sched_delay: submission-driven main passes at most this often
    end_sched_delay: int = 0  # main passes a finished job triggers: at most this often
    release_delay: int = 0  # seconds a finished job keeps its CPUs (Slurm's COMPLETING)
    node_reservations: bool = False  # alloc="cpu": backfill reserves whole nodes (as Slurm)
    floor_reservations: bool = False  # Slurm's _add_reservation: times rounded DOWN to bf_resolution
    #: the nodes and their features, for tiers with node sets (default: node1..nodeN, none)
    machine: tuple[MachineNode, ...] = ()


@dataclass(frozen=True, slots=True)
class Segment:
    """One run of a job on the machine (a requeued job has several)."""

    job: int
    start: int
    end: int
    units: int
    outcome: str  # completed | timeout | preempted
    by: str  # main | backfill


@dataclass(frozen=True, slots=True)
class BackfillRecord:
    time: int
    reservations: tuple
    running: tuple  # (job, start, planned_end, units) after the pass's starts


@dataclass(slots=True)
class SimResult:
    policy: Policy
    config: SimConfig
    workload: Workload
    capacity: int
    tier_names: list[str]
    job_tier: list[int]
    job_units: list[int]
    job_cpus: list[int]
    job_limit: list[int]
    submit: list[int]
    start: list[int]  # first start (-1 never started)
    end: list[int]  # final end (-1 never ended)
    granted: list[int]  # granted limit of the final run
    preemptions: list[int]
    held: dict[int, str]
    rejected: list[int]
    segments: list[Segment]
    timeline_t: array = field(default_factory=lambda: array("q"))
    timeline_busy: array = field(default_factory=lambda: array("q"))
    timeline_queue: array = field(default_factory=lambda: array("q"))
    backfill_log: list[BackfillRecord] = field(default_factory=list)
    events: int = 0
    passes: int = 0
    wall_seconds: float = 0.0

    @property
    def n_jobs(self) -> int:
        return len(self.submit)


class Simulator:
    """State of one replay. Schedulers read its attributes; only its methods change them."""

    def __init__(self, policy: Policy, workload: Workload, config: SimConfig) -> None:
        self.policy, self.workload, self.config = policy, workload, config
        self.backfill = policy.scheduler.backfill
        cpn = config.cpus_per_node
        self.capacity = config.nodes if config.alloc == "node" else config.nodes * cpn
        self.free = self.capacity
        self.now = 0
        self.tiers = list(policy.tiers)
        qos_of_tier, self.qos_caps = qos_table(policy, config.accounting)
        self.any_preemptable = policy.preemption.type != "none" and any(
            t.preemptable for t in self.tiers)
        self.pools = build_pools(policy, config)  # tiers with node sets (sim.nodesets)
        prio = PriorityNorm(policy, config)
        self.age_rate, self.max_age = prio.age_rate, prio.max_age
        table = prepare_jobs(policy, workload, config, self.capacity, qos_of_tier, self.any_preemptable,
                             prio, self.pools.tier_units if self.pools else None)
        self.jobs = table.jobs
        self.job_tier, self.job_units, self.job_cpus = table.job_tier, table.job_units, table.job_cpus
        self.job_limit, self.job_time_min = table.job_limit, table.job_time_min
        self.job_user, self.job_qos, self.job_ptier = table.job_user, table.job_qos, table.job_ptier
        self.job_preemptable, self.job_static = table.job_preemptable, table.job_static
        self.rejected = table.rejected
        self.tier_names = [t.name for t in self.tiers]
        self.running: set[int] = set()
        self.run_version = 0  # bumped whenever a job starts or stops running
        self.bf_memo: PassMemo | None = None  # the last backfill pass's, if reusable
        self.planned_end: dict[int, int] = {}
        n = len(self.jobs)
        self.start, self.end = [-1] * n, [-1] * n
        self.granted, self.preemptions, self.run_id, self.run_start = [0] * n, [0] * n, [0] * n, [0] * n
        self.run_by = [""] * n
        self.held: dict[int, str] = {}
        self.segments: list[Segment] = []
        self.qos_used: dict[tuple[int, str], list[int]] = {}
        self.pending: list[tuple] = []  # sorted keys (see _key)
        self.pending_ids: list[int] = []  # their jobs (key[3]), for windows cut in one slice
        self.pending_key: dict[int, tuple[bool, tuple]] = {}
        self.capped: list[tuple] = []  # keys of jobs past PriorityMaxAge
        self.capped_ids: list[int] = []
        self.head_cache: tuple | None = None  # the last window cut (see queue_head)
        self.elig_heap: list[tuple] = []
        self.units_count: dict[int, int] = {}
        # what each job's backfill test grants and plans (s), also as arrays for backfill's
        # "can anything still start?" check (sandfill.policies.sim.backfill)
        self.job_dur, self.job_plan = planned_durations(self)
        self.units_arr = np.array(self.job_units, dtype=np.int64)
        self.plan_arr = np.array(self.job_plan, dtype=np.int64)
        self.heap: list[tuple] = []
        self.seq = 0
        self.sched_at = -1
        self.last_main = -(10**12)
        self.backfill_at = -1
        self.dirty = False
        self.bf_thread = config.bf_timing == "thread"
        self.backfills = config.backfill != "none" and policy.scheduler.type == "backfill"
        self.bf_last = config.bf_last if config.bf_last is not None else -(10**12)
        self.timeline_t, self.timeline_busy, self.timeline_queue = array("q"), array("q"), array("q")
        self.backfill_log: list[BackfillRecord] = []
        self.events = self.passes = 0

    # -- queue -------------------------------------------------------------------------------
    def _key(self, j: int, eligible: int) -> tuple:
        # priority(now) = static + age_rate * (now - eligible) until capped: sorting by
        # (age_rate * eligible - static) is time-invariant while no job is capped.
        return (-self.job_ptier[j], self.age_rate * eligible - self.job_static[j],
                self.jobs[j].submit, j)

    def enqueue(self, j: int) -> None:
        now = self.now
        key = self._key(j, now)
        self.pending_key[j] = (False, key)
        _insert(self.pending, self.pending_ids, key)
        if self.age_rate:
            heapq.heappush(self.elig_heap, (now, j, key))
        u = self.job_units[j]
        self.units_count[u] = self.units_count.get(u, 0) + 1

    def dequeue(self, j: int) -> None:
        capped, key = self.pending_key.pop(j)
        lst, ids = (self.capped, self.capped_ids) if capped else (self.pending, self.pending_ids)
        i = _bisect_left(lst, key)
        del lst[i], ids[i]
        u = self.job_units[j]
        c = self.units_count[u] - 1
        if c:
            self.units_count[u] = c
        else:
            del self.units_count[u]

    def min_pending_units(self) -> int:
        return min(self.units_count) if self.units_count else 0

    def _promote_capped(self) -> None:
        """Jobs older than PriorityMaxAge stop gaining age: move them to the capped list."""
        h = self.elig_heap
        limit = self.now - self.max_age
        while h and h[0][0] < limit:
            _, j, key = heapq.heappop(h)
            cur = self.pending_key.get(j)
            if cur is None or cur[0] or cur[1] != key:
                continue  # started, or requeued since
            i = _bisect_left(self.pending, key)
            del self.pending[i], self.pending_ids[i]
            ckey = (key[0], -(self.job_static[j] + self.age_rate * self.max_age), key[2], j)
            self.pending_key[j] = (True, ckey)
            _insert(self.capped, self.capped_ids, ckey)

    def ordered_queue(self) -> Iterator[int]:
        """Pending job indices in scheduling order at ``now`` (lazy: read before applying)."""
        if self.age_rate:
            self._promote_capped()
        if not self.capped:
            return (k[3] for k in self.pending)
        shift = self.age_rate * self.now
        live = ((k[0], k[1] - shift, k[2], k[3]) for k in self.pending)
        return (k[3] for k in heapq.merge(live, self.capped))

    def queue_first(self) -> int | None:
        """The first job of :meth:`ordered_queue` (None when nothing is pending)."""
        if self.age_rate:
            self._promote_capped()
        if not self.capped:
            return self.pending_ids[0] if self.pending_ids else None
        if not self.pending:
            return self.capped_ids[0]
        k = self.pending[0]
        live = (k[0], k[1] - self.age_rate * self.now, k[2], k[3])
        return k[3] if live < self.capped[0] else self.capped_ids[0]

    def queue_head(self, m: int) -> list[int]:
        """The first ``m`` jobs of :meth:`ordered_queue` (a list, built in one go)."""
        if self.age_rate:
            self._promote_capped()
        if not self.capped:
            return self.pending_ids[:m]
        shift = self.age_rate * self.now
        last = self.head_cache
        if last is not None and last[0] == m and _head_holds(self, last, shift):
            return last[1]
        pairs: list[tuple[int, int]] = []
        head = _merge_head(self.pending, self.capped, m, shift, self.pending_ids,
                           self.capped_ids, pairs)
        n_live, n_capped = pairs.pop()
        self.head_cache = (m, head, self.pending_ids[:n_live], self.capped_ids[:n_capped],
                           pairs)
        return head

    # -- events ------------------------------------------------------------------------------
    def push(self, t: int, kind: int, payload: object = None) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, kind, self.seq, payload))

    def run(self, progress: Callable[[int, int], None] | None = None) -> SimResult:
        t0 = _time.perf_counter()
        rejected = set(self.rejected)
        for j, job in enumerate(self.jobs):
            if j not in rejected:
                self.push(job.submit, SUBMIT, j)
        total = len(self.jobs) - len(rejected)
        done = 0
        heap = self.heap
        pop = heapq.heappop
        step = max(1, total // 200)
        while heap:
            t, kind, _, payload = pop(heap)
            self.now = t
            self.events += 1
            if kind == END:
                if self._end(*payload):
                    done += 1
                    if progress is not None and done % step == 0:
                        progress(done, total)
            elif kind == SUBMIT:
                self.enqueue(payload)
                self._mark_dirty()
            elif kind == SCHED:
                self._main_pass()
            else:
                self._backfill_pass()
        if progress is not None:
            progress(total, total)
        return self._result(_time.perf_counter() - t0)

    def _end(self, j: int, rid: int) -> bool:
        """A job's END event: finish it unless the event is stale (requeued since)."""
        if self.run_id[j] != rid or j not in self.running:
            return False
        self._finish(j)
        return True

    def _main_pass(self) -> None:
        self.sched_at = -1
        self.last_main = self.now
        self._apply((pools_main_pass if self.pools else main_pass)(self))
        self._sample()

    def _backfill_pass(self) -> None:
        self.backfill_at = -1
        if not self.dirty:
            return
        self.dirty = False
        self.passes += 1
        self.bf_last = self.now
        rec = self.config.record_reservations
        d = (pools_backfill_pass if self.pools else backfill_pass)(self, self.config.backfill, record=rec)
        self.bf_memo = d.memo
        self._apply(d)  # (thread timing: its own starts are news to the next check)
        if rec:
            self._log_backfill(d)
        self._sample()

    def _result(self, wall_seconds: float) -> SimResult:
        return SimResult(
            policy=self.policy,
            config=self.config,
            workload=self.workload,
            capacity=self.capacity,
            tier_names=self.tier_names,
            job_tier=self.job_tier,
            job_units=self.job_units,
            job_cpus=self.job_cpus,
            job_limit=self.job_limit,
            submit=[j.submit for j in self.jobs],
            start=self.start,
            end=self.end,
            granted=self.granted,
            preemptions=self.preemptions,
            held=self.held,
            rejected=self.rejected,
            segments=self.segments,
            timeline_t=self.timeline_t,
            timeline_busy=self.timeline_busy,
            timeline_queue=self.timeline_queue,
            backfill_log=self.backfill_log,
            events=self.events,
            passes=self.passes,
            wall_seconds=wall_seconds,
        )

    def _mark_dirty(self, ended: bool = False) -> None:
        """A job arrived (or, ``ended``, finished): a main pass is due, no sooner than the
        matching delay after the last one, and backfill has news."""
        t = self.now
        delay = self.config.end_sched_delay if ended else self.config.sched_delay
        if self.sched_at < 0:  # a pass already due is not brought forward
            self.sched_at = max(t, self.last_main + delay)
            self.push(self.sched_at, SCHED)
        if self.backfills:
            self._touch_backfill()

    def _touch_backfill(self) -> None:
        """Something changed: make sure a backfill pass is coming."""
        self.dirty = True
        if self.backfill_at >= 0:
            return
        iv = self.backfill.interval
        t = self.now
        self.backfill_at = max(t, self.bf_last + iv) if self.bf_thread else -(-t // iv) * iv
        self.push(self.backfill_at, BACKFILL)

    def _apply(self, d: Decisions) -> None:
        for j, reason in d.held:
            self.held.setdefault(j, reason)
        for victim, _by in d.preempts:
            self._preempt(victim)
        for s in d.starts:
            self._start(s.job, s.limit, s.by)
        if self.bf_thread and d.starts and self.backfills:
            self._touch_backfill()  # a main pass's starts change the state backfill saw

    def _start(self, j: int, limit: int, by: str) -> None:
        self.dequeue(j)
        now = self.now
        units = self.job_units[j]
        assert units <= self.free, "scheduler over-committed"
        self.free -= units
        self.running.add(j)
        self.run_version += 1
        if self.start[j] < 0:
            self.start[j] = now
        self.run_start[j] = now
        self.run_by[j] = by
        self.granted[j] = limit
        self.planned_end[j] = now + limit
        self.run_id[j] += 1
        self.pools and self.pools.take(j, self.job_tier[j], units)
        caps = self.qos_caps[self.job_qos[j]]
        if caps is not None:
            u = self.qos_used.setdefault((self.job_qos[j], self.job_user[j]), [0, 0])
            u[0] += 1
            u[1] += self.job_cpus[j]
        runtime = self.jobs[j].run_time
        end = now + min(runtime, limit) + self.config.release_delay
        self.push(end, END, (j, self.run_id[j]))

    def _release(self, j: int, outcome: str) -> None:
        self.running.discard(j)
        self.run_version += 1
        del self.planned_end[j]
        self.free += self.job_units[j]
        self.pools and self.pools.give_back(j)
        caps = self.qos_caps[self.job_qos[j]]
        if caps is not None:
            u = self.qos_used[(self.job_qos[j], self.job_user[j])]
            u[0] -= 1
            u[1] -= self.job_cpus[j]
        self.segments.append(
            Segment(j, self.run_start[j], self.now, self.job_units[j], outcome, self.run_by[j])
        )
        self._mark_dirty(ended=True)

    def _finish(self, j: int) -> None:
        timeout = self.jobs[j].run_time > self.granted[j]
        self.end[j] = self.now - self.config.release_delay
        self._release(j, "timeout" if timeout else "completed")

    def _preempt(self, j: int) -> None:
        self.preemptions[j] += 1
        self.run_id[j] += 1  # its END event is now stale
        self._release(j, "preempted")
        mode = self.tiers[self.job_tier[j]].preempt_mode
        if mode == "cancel":
            self.end[j] = self.now
        else:
            self.enqueue(j)

    def _sample(self) -> None:
        ts = self.timeline_t
        busy = self.capacity - self.free
        q = len(self.pending_key)
        if ts and ts[-1] == self.now:
            self.timeline_busy[-1] = busy
            self.timeline_queue[-1] = q
            return
        ts.append(self.now)
        self.timeline_busy.append(busy)
        self.timeline_queue.append(q)

    def _log_backfill(self, d: Decisions) -> None:
        running = tuple(
            (r, self.run_start[r], self.planned_end[r], self.job_units[r]) for r in self.running
        )
        self.backfill_log.append(BackfillRecord(self.now, tuple(d.reservations), running))


def _head_holds(sim: Simulator, last: tuple, shift: float) -> bool:
    """Whether the last window cut is still the queue's head: the same live and capped
    keys lead their lists (nothing arrived, left or was promoted among them), no key
    came after a short window, and each capped key that came before a live one still
    does (live keys only move ahead as time passes, so the others hold)."""
    m, head, live_ids, capped_ids, pairs = last
    pending, capped = sim.pending, sim.capped
    if (sim.pending_ids[:len(live_ids)] != live_ids
            or sim.capped_ids[:len(capped_ids)] != capped_ids):
        return False
    if len(head) < m and (len(pending) != len(live_ids) or len(capped) != len(capped_ids)):
        return False
    for ci, pi in pairs:
        if pi < len(pending):
            k = pending[pi]
            if not capped[ci] < (k[0], k[1] - shift, k[2], k[3]):
                return False
    return True


def _insert(keys: list[tuple], ids: list[int], key: tuple) -> None:
    i = _bisect_left(keys, key)
    keys.insert(i, key)
    ids.insert(i, key[3])


def _merge_head(pending: list[tuple], capped: list[tuple], m: int, shift: float,
                pending_ids: list[int] | None = None,
                capped_ids: list[int] | None = None,
                pairs: list[tuple[int, int]] | None = None) -> list[int]:
    """The first ``m`` jobs of ``pending`` (keys at ``shift`` = age_rate * now: their second
    field minus ``shift``) merged with ``capped`` (keys as they are), as sorting both heads
    would order them, found run by run with bisect (keys are unique: they end with the job).
    ``pending_ids``/``capped_ids``: the lists' jobs in their order (else read off the keys).
    ``pairs`` (filled if given): for each capped run followed by a live key (in the window
    or next after it), (last capped index, that live index); then (live taken, capped taken)."""
    if pending_ids is None:
        pending_ids = [k[3] for k in pending]
    if capped_ids is None:
        capped_ids = [k[3] for k in capped]

    def live(k: tuple) -> tuple:
        return (k[0], k[1] - shift, k[2], k[3])

    out: list[int] = []
    i, c = 0, 0
    last_capped = False  # whether the last run taken was capped keys
    n_live, n_capped = min(len(pending), m), min(len(capped), m)
    one_tier = bool(n_live and n_capped) and (
        pending[0][0] == pending[n_live - 1][0] == capped[0][0] == capped[n_capped - 1][0])
    while len(out) < m:
        if c >= n_capped:
            k = n_live
        elif i >= n_live:
            k = i
        elif one_tier:
            k = _first_after(pending, capped[c], i, n_live, shift)
        else:
            k = _bisect_left(pending, capped[c], i, n_live, key=live)
        k = min(k, i + m - len(out))
        if k > i:
            if last_capped and pairs is not None:
                pairs.append((c - 1, i))
            out += pending_ids[i:k]
            i, last_capped = k, False
        if len(out) >= m or c >= n_capped:
            break
        k = _bisect_left(capped, live(pending[i]), c, n_capped) if i < n_live else n_capped
        k = min(k, c + m - len(out))
        if k > c:
            out += capped_ids[c:k]
            c, last_capped = k, True
        if i >= n_live and c >= n_capped:
            break
    if pairs is not None:
        if last_capped:
            pairs.append((c - 1, i))  # the next live key must stay behind the window
        pairs.append((i, c))  # (how many live and capped keys the window took)
    return out


def _first_after(pending: list[tuple], ckey: tuple, lo: int, hi: int, shift: float) -> int:
    """``bisect_left(pending, ckey, lo, hi, key=live)`` when every key has ``ckey``'s first
    field: bisect on the shifted second field, then step over its ties the rest orders first."""
    k = _bisect_left(pending, ckey[1], lo, hi, key=lambda key: key[1] - shift)
    rest = ckey[2:]
    while k < hi and pending[k][1] - shift == ckey[1] and pending[k][2:] < rest:
        k += 1
    return k


def simulate(
    policy: Policy,
    workload: Workload,
    config: SimConfig,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> SimResult:
    """Replay ``workload`` under ``policy``; see the module docstring for the model."""
    return Simulator(policy, workload, config).run(progress)


def stderr_progress(label: str = "simulating") -> Callable[[int, int], None]:
    """A minimal progress bar on stderr (only when stderr is a terminal)."""
    tty = sys.stderr.isatty()

    def report(done: int, total: int) -> None:
        if not tty or total <= 0:
            return
        frac = done / total
        bar = "#" * int(frac * 30)
        sys.stderr.write(f"\r{label} [{bar:<30}] {frac:6.1%} {done}/{total} jobs")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return report
