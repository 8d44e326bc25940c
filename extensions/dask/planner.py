"""Fit worker walltimes into the gaps of the schedule ("sand between the rocks").

One look at the schedule — free CPUs per node (``sinfo``), the planned starts and nodes of
pending jobs (``squeue --start`` fields), advance reservations (``scontrol show res``) and one
``sbatch --test-only`` confirmation — serves every job submitted within ``ttl`` seconds. Each
pick then books its CPUs in that cached picture, so fifty new workers cost three or four
scheduler calls, not fifty.

The longest walltime in ``[min, max]`` that ends before the first planned start on some node
with enough free CPUs wins. No such gap: the job asks for the shortest useful walltime and
waits.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass, field

from sandfill.slurm import SlurmClient, SlurmCommandError, sinfo
from sandfill.slurm.scontrol import Reservation
from sandfill.slurm.view import ServiceSchedule

log = logging.getLogger("sandfill.dask.planner")


@dataclass(frozen=True)
class Plan:
    walltime: int  # seconds, whole minutes (Slurm's unit)
    time_min: int | None  # --time-min to send, seconds
    fits_now: bool  # a gap was found: the job should start at once
    node: str | None
    why: str
    hold: bool = False  # do not submit yet: it would jump ahead of a planned start


@dataclass
class ScheduleView:
    """What the planner knows of the schedule at ``taken``."""

    taken: float
    free_cpus: dict[str, int]
    free_mem_mb: dict[str, int]
    blocked_from: dict[str, float]  # node → earliest planned start of another job/reservation
    partition_max: int | None  # seconds
    test_only_ok: bool | None = None  # Slurm confirmed "starts now" for this shape
    booked: dict[str, int] = field(default_factory=dict)

    def first_planned_start(self) -> float | None:
        """The earliest planned start on a usable node: the end of the gap workers fit into."""
        return min((t for n, t in self.blocked_from.items() if n in self.free_cpus and t != math.inf), default=None)


class GapPlanner:
    def __init__(self, client: SlurmClient, *, ttl: float = 10.0, safety: float = 60.0,
                 schedule: SlurmClient | ServiceSchedule | None = None) -> None:
        self.client = client
        #: where the picture comes from: Slurm, or the hub's sandfill service under a hub
        #: (``sbatch --test-only`` always asks Slurm, as the user: the service cannot)
        self.schedule = schedule or client
        self.ttl = ttl
        self.safety = safety  # keep this far from a planned start (Slurm plans in minutes)
        self._views: dict[str, ScheduleView] = {}
        self._lock = asyncio.Lock()
        self.probes = 0  # scheduler calls made (for tests and benchmarks)

    async def pick(
        self,
        *,
        cores: int,
        memory_mb: int,
        partition: str | None,
        qos: str | None,
        min_walltime: float,
        max_walltime: float,
        now: float | None = None,
    ) -> Plan:
        async with self._lock:
            key = partition or ""
            view = self._views.get(key)
            t = time.time() if now is None else now
            if view is None or t - view.taken > self.ttl:
                view = await self._look(partition)
                self._views[key] = view
            plan = self._fit(view, cores, memory_mb, min_walltime, max_walltime, t)
            if plan.fits_now and view.test_only_ok is None:
                view.test_only_ok = await self._confirm(partition, qos, cores, memory_mb, plan.walltime, t)
                if not view.test_only_ok:
                    plan = self._no_gap(min_walltime, max_walltime, view, "Slurm says a job of this shape would not start now")
            elif plan.fits_now and view.test_only_ok is False:
                plan = self._no_gap(min_walltime, max_walltime, view, "Slurm says a job of this shape would not start now")
            if plan.fits_now and plan.node:
                view.free_cpus[plan.node] -= cores
                view.free_mem_mb[plan.node] -= memory_mb
                view.booked[plan.node] = view.booked.get(plan.node, 0) + cores
            return plan

    def next_planned_start(self, partition: str | None) -> float | None:
        """The first planned start on ``partition``'s usable nodes, from the last look at the
        schedule (no Slurm call); None before any look, or when nothing is planned."""
        view = self._views.get(partition or "")
        return view.first_planned_start() if view is not None else None

    # ---- the picture ------------------------------------------------------------------------
    async def _look(self, partition: str | None) -> ScheduleView:
        taken = time.time()
        self.probes += 3
        nodes, blocked, reservations = await asyncio.gather(
            self.schedule.nodes(partition), self.schedule.planned_starts(), self._reservations()
        )
        free: dict[str, int] = {}
        mem: dict[str, int] = {}
        pmax: int | None = None
        for row in nodes:
            if not sinfo.node_usable(row["state"]):
                continue  # down, drained, reserved…
            free[row["node"]] = row["idle"]
            mem[row["node"]] = row["free_memory"] if row["free_memory"] is not None else 10**9
            pmax = row["time_limit"]
        for r in reservations:
            start = r.start
            if start is not None:
                for n in r.nodes:
                    blocked[n] = min(blocked.get(n, math.inf), start)
        return ScheduleView(taken, free, mem, blocked, pmax)

    async def _reservations(self) -> list[Reservation]:
        """Advance reservations; none when the controller will not say (``sbatch
        --test-only`` still confirms a gap before a job is sent into it)."""
        try:
            return await self.schedule.reservations()
        except SlurmCommandError as exc:
            log.info("scontrol show reservation failed: %s", exc)
            return []

    async def _confirm(self, partition: str | None, qos: str | None, cores: int, memory_mb: int, walltime: int, now: float) -> bool:
        args = ["-n", "1", f"--cpus-per-task={cores}", f"--mem={memory_mb}M", f"--time={max(1, walltime // 60)}"]
        if partition:
            args.append(f"--partition={partition}")
        if qos:
            args.append(f"--qos={qos}")
        self.probes += 1
        try:
            ans = await self.client.test_only("#!/bin/sh\ntrue\n", args)
        except SlurmCommandError as exc:
            log.info("sbatch --test-only refused the worker shape: %s", exc)
            return False
        return ans is not None and ans.start_time <= now + 5

    # ---- the fit ----------------------------------------------------------------------------
    def _fit(self, view: ScheduleView, cores: int, memory_mb: int, lo: float, hi: float, now: float) -> Plan:
        if view.partition_max is not None:
            hi = min(hi, view.partition_max)
            lo = min(lo, hi)
        best: tuple[float, str] | None = None
        for node, free in view.free_cpus.items():
            if free < cores or view.free_mem_mb.get(node, 0) < memory_mb:
                continue
            room = view.blocked_from.get(node, math.inf) - now - self.safety
            fit = min(hi, room)
            if fit >= lo and (best is None or fit > best[0]):
                best = (fit, node)
        if best is None:
            return self._no_gap(lo, hi, view, "no node has free CPUs until a planned start at least min-walltime away")
        walltime = max(int(lo // 60) * 60, int(best[0] // 60) * 60)
        return Plan(walltime, int(math.ceil(lo / 60)) * 60 if walltime > lo else None, True, best[1], f"fits on {best[1]}")

    @staticmethod
    def _no_gap(lo: float, hi: float, view: ScheduleView, why: str) -> Plan:
        """No gap now. With a planned start on the partition's nodes, a submitted job could
        start ahead of it (a higher partition tier, or CPUs freed early) and delay it: hold
        the job back. Without one, queue it with the shortest useful walltime."""
        walltime = int(math.ceil(lo / 60)) * 60
        first = view.first_planned_start()
        if first is not None:
            return Plan(walltime, None, False, None, f"{why}; waiting for a gap (planned start at {time.strftime('%H:%M:%S', time.localtime(first))})", hold=True)
        return Plan(walltime, None, False, None, why)
