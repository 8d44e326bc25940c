"""The backfill cluster's keeper: the loop that holds its size across walltime churn.

Each round (every ``keeper-interval``, and at once after a scale or adapt) reads the shared
queue poller's snapshot -- no Slurm call of its own -- and:

* records worker jobs that ended (and why), and cancels and replaces a running job whose
  workers all vanished for longer than ``lost-worker-grace``;
* counts a job as *expiring* from ``retire-margin + replace-ahead`` before its real end
  (never more than 60 % of its walltime), so its replacement is submitted ahead of time;
* submits jobs up to the target (at most ``max-pending-jobs`` pending at once), each with a
  walltime the gap planner fits into the schedule, or holds them back while there is no gap
  before a planned start;
* retires the surplus: pending jobs are cancelled first (newest first), then the running
  jobs with the least time left retire their workers gracefully;
* retries every ``scancel`` that failed (a busy controller), with a doubling delay, until
  Slurm says the job ended: a job the cluster meant to end is never forgotten, and the
  cluster's model lists it until then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from distributed.core import Status
from distributed.diagnostics.plugin import SchedulerPlugin

from sandfill.dask.model import RETIRED, WorkerJob, worker_job
from sandfill.dask.preemption import PREEMPTED, preempted
from sandfill.slurm import JobStatus

if TYPE_CHECKING:
    from sandfill.dask.cluster import BackfillSLURMCluster
    from sandfill.dask.job import BackfillSLURMJob
    from sandfill.dask.placement import TimeLeftFeed

log = logging.getLogger("sandfill.dask.keeper")

LIVE = (Status.created, Status.starting, Status.running)
CANCEL_RETRY_MAX = 60.0  # seconds between two tries of a failed scancel, at most


@dataclass
class CancelOwed:
    """A job the cluster meant to end whose ``scancel`` failed: tried again from ``next_try``."""

    error: str
    tries: int
    next_try: float


@dataclass
class JobInfo:
    """What the cluster knows of one worker job beyond Slurm's view of it."""

    created: float
    job_id: str | None = None
    ever_connected: bool = False
    last_connected: float = 0.0
    retiring: bool = False
    due: bool = False  # seen RUNNING within its replacement lead: its workers retire soon
    why: str | None = None  # set when the cluster itself ends the job


class SeenWorkers(SchedulerPlugin):
    """Tells the keeper of every worker that joins (the scheduler runs in-process)."""

    def __init__(self, keeper: Keeper) -> None:
        self.keeper = keeper

    def add_worker(self, scheduler: Any, worker: str) -> None:
        ws = scheduler.workers.get(worker)
        if ws is not None:
            self.keeper.worker_joined(str(ws.name))


class Keeper:
    """The replacement/retirement loop of one :class:`BackfillSLURMCluster`."""

    def __init__(
        self,
        cluster: BackfillSLURMCluster,
        *,
        retire_margin: float,
        replace_ahead: float,
        max_pending_jobs: int,
        interval: float,
        lost_worker_grace: float,
    ) -> None:
        if max_pending_jobs < 1:
            raise ValueError(f"max-pending-jobs must be at least 1, got {max_pending_jobs}")
        self.cluster = cluster
        self.retire_margin = retire_margin
        self.replace_ahead = replace_ahead
        self.max_pending_jobs = max_pending_jobs
        self.interval = interval
        self.lost_worker_grace = lost_worker_grace
        self.target_jobs = 0
        self.info: dict[str, JobInfo] = {}  # by worker-spec name
        self.history: deque[WorkerJob] = deque(maxlen=100)  # recently ended, oldest first
        self.waiting = 0  # jobs held back client-side: no gap before a planned start
        self.waiting_reason: str | None = None
        self.hold_until = 0.0  # while holding, the schedule is looked at again after this
        self.seen_workers: set[str] = set()  # names of every worker that ever connected
        self.last_error: str | None = None
        self.cancels_owed: dict[str, CancelOwed] = {}  # by job id
        self.placement: TimeLeftFeed | None = None  # the scheduler's time-aware placement

    # ---- the loop -------------------------------------------------------------------------
    async def loop(self) -> None:
        while self.cluster.status in LIVE:
            try:
                await self.keep_once()
                self.last_error = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.last_error = str(exc)
                log.exception("backfill keeper round failed")
            await asyncio.sleep(self.interval)

    async def keep_once(self) -> None:
        c = self.cluster
        if c.status not in LIVE:
            return
        now = time.time()
        snap = c.poller.snapshot()
        await self._settle_cancels(snap, now)
        changed = await self._check_jobs(snap, now)
        if self.placement is not None:
            self.placement.feed(self.worker_ends(snap))
        effective = [n for n in c.worker_spec if not self.expiring(n, snap, now)]
        pending = [n for n in effective if self.pending(n, snap)]
        deficit = self.target_jobs - len(effective)
        self.waiting = 0
        if deficit > 0 and now < self.hold_until:
            self.waiting = deficit  # holding for a gap: look again later, not every round
        elif deficit > 0:
            changed |= await self._grow(min(deficit, self.max_pending_jobs - len(pending)), deficit, now)
        elif deficit < 0:
            running = [n for n in effective if n not in pending]
            order = sorted(pending, key=lambda n: -self.info[n].created) + sorted(
                running, key=lambda n: self.time_left(n, snap, now)
            )
            for n in order[:-deficit]:
                await self.retire(n, snap)
                changed = True
        if changed:
            await c._correct_state()

    async def _check_jobs(self, snap: dict[str, JobStatus], now: float) -> bool:
        """Record ended jobs; cancel running ones that lost every worker. True if any went."""
        conn = self.connected_by_job()
        changed = False
        for name in list(self.cluster.worker_spec):
            info = self.info.setdefault(name, JobInfo(now))
            ws = conn.get(name, set())
            if ws:
                info.ever_connected = True
                info.last_connected = now
            st = snap.get(info.job_id) if info.job_id else None
            if st is None:
                continue
            if st.state == "RUNNING" and self.expiring(name, snap, now):
                info.due = True
            if st.state == "RUNNING" and not info.retiring and preempted(st):
                await self.give_way(name)  # at once: not only retire-margin before the new end
            if st.state == "RUNNING" and not info.retiring and st.end_time is not None and st.end_time - now <= self.retire_margin:
                await self.retire_before_end(name)  # its end as Slurm has it: no query of its own
            if st.ended:
                self.finish(name, st, self.ended_why(info, st))
                changed = True
            elif (
                st.running
                and (info.ever_connected or self._connected_once(name))
                and not ws
                and not info.retiring
                and not self.expiring(name, snap, now)
                and now - info.last_connected > self.lost_worker_grace
            ):
                log.warning("job %s lost all its workers: cancelling and replacing it", info.job_id)
                job_id = info.job_id
                self.finish(name, st, "lost: workers disconnected")
                if job_id:
                    await self.cancel(job_id, now)
                changed = True
        return changed

    async def _grow(self, room: int, deficit: int, now: float) -> bool:
        """Add up to ``room`` worker jobs, each with a planned walltime; stop and hold the
        rest back when the planner says there is no gap before a planned start."""
        c = self.cluster
        added = False
        for i in range(max(0, room)):
            # long enough for the longest declared task duration waiting
            plan = await c.planner.pick(**(self.placement.sized(c._shape) if self.placement else c._shape))
            if plan.hold:
                self.waiting = deficit - i
                self.waiting_reason = plan.why
                self.hold_until = now + max(30.0, c.planner.ttl)
                break
            for n, spec in c.new_worker_spec().items():
                c.worker_spec[n] = {**spec, "options": {**spec["options"], "plan": plan}}
                self.info[n] = JobInfo(time.time())
            added = True
        return added

    # ---- ending jobs ----------------------------------------------------------------------
    async def cancel(self, job_id: str, now: float | None = None) -> bool:
        """``scancel`` one job. When that fails the job stays owed: watched, tried again
        with a doubling delay (at most :data:`CANCEL_RETRY_MAX`) until Slurm says it ended."""
        now = time.time() if now is None else now
        try:
            await self.cluster.slurm.cancel([job_id])
        except Exception as exc:  # a busy or hung controller, a failed command: try again
            owed = self.cancels_owed.get(job_id)
            tries = owed.tries + 1 if owed else 1
            self.cancels_owed[job_id] = CancelOwed(str(exc), tries, now + min(CANCEL_RETRY_MAX, 2.0**tries))
            self.cluster.poller.watch(job_id)
            log.warning("scancel %s failed (try %d: %s): the job is kept and tried again", job_id, tries, exc)
            return False
        self.cancels_owed.pop(job_id, None)
        return True

    async def _settle_cancels(self, snap: dict[str, JobStatus], now: float) -> None:
        """Forget owed cancels of jobs Slurm says ended; try the others again when due."""
        for job_id, owed in list(self.cancels_owed.items()):
            st = snap.get(job_id)
            if st is not None and st.ended:
                del self.cancels_owed[job_id]
                self.cluster.poller.unwatch(job_id)
            elif now >= owed.next_try:
                await self.cancel(job_id, now)

    async def retire(self, name: str, snap: dict[str, JobStatus]) -> None:
        """Scale-down: pending jobs are cancelled; running ones retire gracefully first."""
        info = self.info[name]
        st = snap.get(info.job_id) if info.job_id else None
        if st is not None and st.running:
            await self._retire_workers(name)
        self.drop(name, "scaled down")

    async def _retire_workers(self, name: str) -> Any:
        """Mark job ``name`` retiring and retire its workers gracefully (their data moves);
        the scheduler's answer, or None when it could not be asked."""
        self.info[name].retiring = True
        with contextlib.suppress(Exception):
            return await self.cluster.scheduler_comm.retire_workers(
                names=self.worker_names(name), remove=True, close_workers=True
            )
        return None

    async def retire_before_end(self, name: str) -> None:
        """Retire job ``name``'s workers gracefully, retire-margin before the end Slurm gave
        the job (read from the cluster's shared poller, so no worker job queries Slurm). The
        job then completes and is recorded as retired; its replacement is already counted."""
        log.info("job %s ends in %.0f s or less: retiring its workers", self.info[name].job_id, self.retire_margin)
        await self._retire_workers(name)

    async def give_way(self, name: str) -> None:
        """Slurm preempted job ``name``: it moved the job's end up to the partition's GraceTime
        (Slurm 22.05 signals the batch step only when that end comes, and kills it KillWait
        later). Its workers retire now, so their data moves, the job ends and the preemptor
        starts long before the grace time is up; the model says "preempted" (Slurm itself
        records such a job, which ended on its own, as COMPLETED). When no other worker can
        take their data (every worker preempted at once), the job is cancelled instead: its
        results would be lost at the grace time's end all the same."""
        info = self.info[name]
        info.why = PREEMPTED
        names = self.worker_names(name)
        log.info("job %s was preempted: its workers %s retire now", info.job_id, ", ".join(names))
        retired = await self._retire_workers(name)
        if isinstance(retired, dict) and len(retired) < len(names) and info.job_id:
            log.info("job %s: no other worker could take its workers' data; cancelling it now", info.job_id)
            await self.cancel(info.job_id)

    def drop(self, name: str, why: str) -> None:
        """The cluster ends job ``name`` itself (``why`` says so in its history)."""
        info = self.info.get(name)
        self.cluster.worker_spec.pop(name, None)
        if info is not None:
            if info.job_id:
                st = self.cluster.poller.status(info.job_id) or JobStatus(info.job_id, "CANCELLED")
                self.history.append(worker_job(info.job_id, st, workers=[], now=time.time(), ended_why=why))
            info.why = why

    def finish(self, name: str, st: JobStatus, why: str | None) -> None:
        """Job ``name`` ended in Slurm: forget it, keep it in the history."""
        info = self.info.pop(name, None)
        self.cluster.worker_spec.pop(name, None)
        job = self.cluster.workers.pop(name, None)
        if job is not None:
            job.status = Status.closed  # ended in Slurm: nothing left to close
        self.history.append(worker_job(st.job_id, st, workers=[], now=time.time(), ended_why=why))
        if info and info.job_id:
            self.cluster.poller.unwatch(info.job_id)

    @staticmethod
    def ended_why(info: JobInfo | None, st: JobStatus) -> str | None:
        """Why the cluster says an ended job ended: its own reason if it ended the job,
        "retired" for a worker job that completed (its workers retired at their lifetime,
        before the walltime), else None (the one job view's words for Slurm's state)."""
        if info is not None and info.why:
            return info.why
        return RETIRED if st.state == "COMPLETED" else None

    def on_submit(self, job: BackfillSLURMJob) -> None:
        info = self.info.setdefault(str(job.name), JobInfo(time.time()))
        info.job_id = job.job_id
        self.cluster.poller.watch(job.job_id)

    # ---- the model ------------------------------------------------------------------------
    def jobs(self) -> list[WorkerJob]:
        """Every worker job: live ones first (in submission order), then recently ended."""
        now = time.time()
        snap = self.cluster.poller.snapshot()
        conn = self.connected_by_job()
        out: list[WorkerJob] = []
        for name in sorted(self.cluster.worker_spec, key=lambda n: self.info.get(n, JobInfo(0)).created):
            info = self.info.get(name) or JobInfo(now)
            st = snap.get(info.job_id) if info.job_id else None
            if info.job_id and st is None:
                st = JobStatus(info.job_id, "PENDING", reason="Submitted", observed=now)
            out.append(
                worker_job(
                    info.job_id,
                    st,
                    workers=sorted(conn.get(name, set())),
                    now=now,
                    retiring=info.retiring or self.expiring(name, snap, now),
                    ended_why=self.ended_why(info, st) if st is not None and st.ended else None,
                )
            )
        out += [worker_job(None, None, workers=[], now=now, submitting_reason="WaitingForGap")] * self.waiting
        return out + list(reversed(self.history))

    # ---- workers and jobs -------------------------------------------------------------------
    def worker_names(self, name: str) -> list[str]:
        spec = self.cluster.worker_spec.get(name) or {}
        if "group" in spec:
            return [f"{name}{suffix}" for suffix in spec["group"]]
        return [str(name)]

    def worker_to_job(self) -> dict[str, str]:
        return {w: name for name in self.cluster.worker_spec for w in self.worker_names(name)}

    def connected_by_job(self) -> dict[str, set[str]]:
        mapping = self.worker_to_job()
        out: dict[str, set[str]] = {}
        for w in self.cluster.scheduler_info.get("workers", {}).values():
            wname = str(w.get("name"))
            job = mapping.get(wname)
            if job is not None:
                out.setdefault(job, set()).add(wname)
        return out

    def worker_joined(self, worker: str) -> None:
        """A worker reached the scheduler: remember it, and when the poller's last word on its
        job is still "pending" (the job started since that round), ask for a round now, so
        the model does not show connected workers on a pending job for a whole interval."""
        self.seen_workers.add(worker)
        name = self.worker_to_job().get(worker)
        if name is not None and self.pending(name, self.cluster.poller.snapshot()):
            self.cluster.poller.request_refresh()

    def _connected_once(self, name: str) -> bool:
        """Did any worker of this job ever reach the scheduler (even between two keeper
        rounds)? Recorded by the SeenWorkers scheduler plugin."""
        return any(w in self.seen_workers for w in self.worker_names(name))

    def status_of(self, name: str, snap: dict[str, JobStatus]) -> JobStatus | None:
        info = self.info.get(name)
        return snap.get(info.job_id) if info and info.job_id else None

    def pending(self, name: str, snap: dict[str, JobStatus]) -> bool:
        st = self.status_of(name, snap)
        return st is None or st.pending

    def expiring(self, name: str, snap: dict[str, JobStatus], now: float) -> bool:
        """Is job ``name`` about to go (retired, or within its lead of the end), so that a
        replacement counts instead? A job Slurm still calls COMPLETING (its end time then is
        when it ended) counts only if it was seen due while RUNNING: one whose workers died
        before (a failed node) is lost, not retiring, and the lost-worker rule replaces it."""
        info = self.info.get(name)
        if info is not None and (info.retiring or info.due):
            return True
        st = self.status_of(name, snap)
        if st is None or st.state != "RUNNING" or st.end_time is None:
            return False
        return st.end_time - now <= self.lead(st)

    def lead(self, st: JobStatus) -> float:
        """How long before its end a job counts as expiring (and is replaced): margin +
        replace-ahead, but never more than 60 % of the job's own walltime."""
        lead = self.retire_margin + self.replace_ahead
        if st.time_limit:
            lead = min(lead, 0.6 * st.time_limit)
        return max(lead, self.retire_margin)

    def worker_ends(self, snap: dict[str, JobStatus]) -> dict[str, float]:
        """Worker name → when it stops taking work (epoch seconds): its job's end as Slurm
        has it, less retire-margin; 0 for a job retiring now. Workers of a job whose end is
        not known yet are left out (they have no time for a task that declares a duration)."""
        out: dict[str, float] = {}
        for name in self.cluster.worker_spec:
            st = self.status_of(name, snap)
            if st is None or st.state != "RUNNING" or st.end_time is None:
                continue
            info = self.info.get(name)
            end = 0.0 if info is not None and info.retiring else st.end_time - self.retire_margin
            out.update(dict.fromkeys(self.worker_names(name), end))
        return out

    def time_left(self, name: str, snap: dict[str, JobStatus], now: float) -> float:
        st = self.status_of(name, snap)
        left = st.time_left(now) if st else None
        return left if left is not None else math.inf
