"""Replay a time-compressed slice of a trace on a live (dev)cluster and measure how close
the simulator's start times are to real Slurm's.

Preparing the slice (:func:`prepare`) turns trace jobs into jobs that fit the cluster, and
the *same* numbers go to ``sbatch`` and to the simulator:

* submit offsets and run times are divided by ``compress`` and rounded to whole seconds
  (run time at least 1 s);
* requested times are divided by ``compress`` and rounded **up to whole minutes** (Slurm
  keeps time limits in minutes; at least 1 minute); a job without one asks for its run
  time; the run time is clipped to 2 s below its limit so no job races its own time-out;
* processors are scaled by ``cpu_scale`` (default: cluster CPUs / trace CPUs, which keeps
  the slice's load), rounded up to at least 1 and clipped to the cluster's CPUs;
* all jobs belong to one user (the one submitting), in the simulator too, so per-user QOS
  caps act the same on both sides;
* each job goes to the partition the simulator's tier mapping picks (requested time and
  size); jobs no tier admits are dropped and counted.

The live run submits ``sleep RUN`` jobs at their offsets from a start time ``t0`` (a whole
second), waits for them all to finish and reads their starts from ``sacct``. The simulator
then replays the same jobs with ``alloc="cpu"`` (a CPU pool: the devcluster's
``select/cons_tres`` with ``CR_CPU`` and jobs asking ``-n CPUS`` may spread over nodes) and
with backfill passes timed as slurmctld's backfill thread times them (``bf_timing="thread"``:
a pass at least ``bf_interval`` after the previous one, as soon as anything changed; the
thread polls every second once the interval is up). Before ``t0`` the live run warms the
cluster up: one probe job per node, so every node has run a job since the policy was
applied, then a wait until the backfill passes those probes caused are over, so at ``t0``
the thread is idle, as the simulator starts it. It also models these behaviours of a real
slurmctld that matter at this time scale:

* ``sched_delay``: the main scheduler started by submissions runs at most every
  ``batch_sched_delay`` seconds (``SchedulerParameters``, Slurm's default 3 s; read from the
  live configuration by :func:`batch_sched_delay`); one started by a job's end runs at once
  (``end_sched_delay`` 0), and neither brings forward a pass already due;
* ``release_delay``: a finished job holds its CPUs about a second longer (the COMPLETING
  state until slurmd's epilog-complete message; measured ~1 s on the devcluster);
* ``node_reservations``: backfill reservations are planned on node bitmaps, so a job
  reserved for later blocks whole nodes from lower-priority jobs in that window;
* ``floor_reservations``: backfill's ``_add_reservation`` rounds reservation times *down*
  to ``bf_resolution`` and running jobs end at their exact planned end.

The error of a job is ``real start - t0 - simulated start``, where the simulator is given each
job's submit and run time as ``sacct`` recorded them. On a quiet machine those are the plan's;
a loaded one may submit a job late or stretch its run, and the simulator is judged on the
schedule it makes from what happened, not on the machine's noise
(:meth:`ReplayRun.off_plan` counts such jobs).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from sandfill.policies.document.model import Policy
from sandfill.policies.sim.simulator import SimConfig, Simulator, simulate
from sandfill.policies.sim.workload import Job, Workload
from sandfill.slurm import sacct, sbatch, scancel, scontrol, sinfo, squeue
from sandfill.slurm.commands import Runner, WaitTimeout, wait_until

USER = "replay"


@dataclass(frozen=True, slots=True)
class ReplayJob:
    trace_id: int
    submit: int  # seconds after t0
    run: int  # seconds the job sleeps
    limit_min: int  # sbatch --time, minutes
    cpus: int  # sbatch -n
    partition: str


@dataclass
class ReplayPlan:
    policy: Policy
    jobs: list[ReplayJob]
    config: SimConfig
    compress: float
    cpu_scale: float
    dropped: int = 0

    def workload(self, as_run: ReplayRun | None = None) -> Workload:
        """The plan's jobs for the simulator; with ``as_run``, each job's submit time and run
        time as Slurm recorded them (a loaded machine submits late or stretches a job; the
        simulator is judged on the schedule, not on the machine's noise)."""
        def submit_run(i: int, j: ReplayJob) -> tuple[int, int]:
            if as_run is None or as_run.submits[i] is None:
                return j.submit, j.run
            ran = as_run.runs[i]
            return int(as_run.submits[i]), j.run if ran is None else max(1, ran)

        return Workload(
            tuple(
                Job(i, *submit_run(i, j), j.cpus, USER, j.limit_min * 60, partition=j.partition)
                for i, j in enumerate(self.jobs)
            ),
            nodes=self.config.nodes,
            cpus_per_node=self.config.cpus_per_node,
            source="replay slice",
        )


@dataclass
class ReplayRun:
    t0: int
    job_ids: list[str]
    starts: list[int | None]  # seconds after t0 (None: never started)
    submit_lag: list[float]  # how late each sbatch returned after its offset
    started_by: list[str]  # "main" | "backfill" | "" per job (sacct's flags)
    submits: list[int | None] = field(default_factory=list)  # sacct's Submit, s after t0
    runs: list[int | None] = field(default_factory=list)  # sacct's End - Start, seconds

    def off_plan(self, plan: ReplayPlan) -> list[int]:
        """Indexes of the jobs Slurm recorded as submitted or run otherwise than planned
        (by more than a second: sacct keeps whole seconds)."""
        return [i for i, j in enumerate(plan.jobs)
                if (self.submits[i] is not None and abs(self.submits[i] - j.submit) > 1)
                or (self.runs[i] is not None and abs(self.runs[i] - j.run) > 1)]


@dataclass
class Fidelity:
    errors: np.ndarray  # real - simulated, seconds, per started job
    interval: int
    sim_starts: list[int] = field(default_factory=list)
    real_starts: list[int | None] = field(default_factory=list)
    late: int = 0  # seconds the live controller's first pass ran after the simulated one

    @property
    def within(self) -> float:
        """Fraction of jobs whose start is within one bf_interval of the simulated one."""
        return float(np.mean(np.abs(self.errors) <= self.interval)) if len(self.errors) else 0.0

    def summary(self) -> str:
        e = self.errors
        a = np.abs(e)
        if not len(e):
            return "no job started"
        pct = ", ".join(f"p{p}={np.percentile(a, p):.0f}s" for p in (50, 75, 90, 95, 99, 100))
        return (
            f"{len(e)} jobs; |real - simulated| start: {pct}; signed mean {e.mean():+.1f}s, "
            f"median {np.median(e):+.0f}s; within one bf_interval ({self.interval}s): "
            f"{self.within:.1%}; exact: {np.mean(a == 0):.1%}; within 1 s: {np.mean(a <= 1):.1%}"
            + (f"; clocks aligned at the first start (the controller's first pass {self.late} s late)"
               if self.late else "")
        )

    def histogram(self, width: int = 40) -> str:
        e = self.errors
        if not len(e):
            return ""
        lo, hi = int(e.min()), int(e.max())
        edges = list(range(lo, hi + 2)) if hi - lo <= 30 else list(
            np.linspace(lo, hi + 1, 31).round().astype(int))
        counts, _ = np.histogram(e, bins=edges)
        top = max(counts.max(), 1)
        lines = []
        for c, a, b in zip(counts, edges[:-1], edges[1:], strict=True):
            label = f"{a:+d}s" if b - a == 1 else f"{a:+d}..{b - 1:+d}s"
            lines.append(f"{label:>12} {c:4d} {'#' * round(c / top * width)}")
        return "\n".join(lines)


def prepare(
    policy: Policy,
    workload: Workload,
    *,
    start: int,
    count: int,
    compress: float,
    nodes: int,
    cpus_per_node: int,
    cpu_scale: float | None = None,
    sched_delay: int = 3,
    release_delay: int = 1,
) -> ReplayPlan:
    """The slice ``workload.jobs[start:start+count]`` made to fit the cluster (see module)."""
    if compress <= 0:
        raise ValueError("--compress must be positive")
    src = workload.jobs[start:start + count]
    if not src:
        raise ValueError(f"the trace has no jobs in slice {start}:{count}")
    total = nodes * cpus_per_node
    if cpu_scale is None:
        trace_cpus = (workload.nodes or 0) * (workload.cpus_per_node or 1)
        cpu_scale = total / trace_cpus if trace_cpus else 1.0
    t_first = src[0].submit
    draft = []
    for i, j in enumerate(src):
        submit = round((j.submit - t_first) / compress)
        run = max(1, round(j.run_time / compress))
        req = j.time_limit if j.time_limit else j.run_time
        limit_min = max(1, math.ceil(req / compress / 60))
        run = max(1, min(run, limit_min * 60 - 2))
        cpus = min(total, max(1, math.ceil(j.cpus * cpu_scale)))
        draft.append(Job(i, submit, run, cpus, USER, limit_min * 60))
    cfg = SimConfig(nodes=nodes, cpus_per_node=cpus_per_node, alloc="cpu",
                    backfill="conservative", accounting=True, sched_delay=sched_delay,
                    release_delay=release_delay, node_reservations=True,
                    floor_reservations=True, bf_timing="thread")
    wl = Workload(tuple(draft), nodes=nodes, cpus_per_node=cpus_per_node)
    sim = Simulator(policy, wl, cfg)
    rejected = set(sim.rejected)
    jobs = [
        ReplayJob(src[i].id, d.submit, d.run_time, d.time_limit // 60, d.cpus,
                  policy.tiers[sim.job_tier[i]].partition)
        for i, d in enumerate(draft)
        if i not in rejected
    ]
    return ReplayPlan(policy, jobs, cfg, compress, cpu_scale, dropped=len(rejected))


def run_live(
    plan: ReplayPlan,
    runner: Runner,
    *,
    timeout: float | None = None,
    progress: Callable[[str], None] = lambda _m: None,
) -> ReplayRun:
    """Submit the plan's jobs on time, wait for them all to end, read their starts."""
    busy = squeue.parse_ids(runner.check(squeue.ids_argv()))
    if busy:
        raise RuntimeError(
            f"the cluster has {len(busy)} job(s) in its queue: a replay needs it to itself"
        )
    _warm_up(runner, plan, progress)
    t0 = int(time.time()) + 2
    ids: list[str] = []
    lag: list[float] = []
    for n, j in enumerate(plan.jobs):
        delay = t0 + j.submit - time.time()
        if delay > 0:
            time.sleep(delay)  # pacing the replay's own clock, not waiting for a state
        ids.append(_submit(runner, [f"--job-name=sf-replay-{n}", f"--partition={j.partition}",
                                    f"--ntasks={j.cpus}", f"--time={j.limit_min}"],
                           f"exec sleep {j.run}"))
        lag.append(time.time() - (t0 + j.submit))
        if (n + 1) % 20 == 0:
            progress(f"submitted {n + 1}/{len(plan.jobs)}")
    horizon = max(j.submit for j in plan.jobs) + sum(j.run for j in plan.jobs)
    _wait_gone(runner, ids, timeout if timeout is not None else horizon + 120, "replay job(s)")
    runs = sacct.parse_runs(runner.check(sacct.runs_argv(ids)))
    rec = [runs.get(i) for i in ids]
    return ReplayRun(
        t0, ids, [None if r is None else r.start - t0 for r in rec], lag,
        [r.how if r else "" for r in rec],
        submits=[None if r is None else r.submit - t0 for r in rec],
        runs=[None if r is None or r.end is None else r.end - r.start for r in rec],
    )


def compare(plan: ReplayPlan, live: ReplayRun) -> Fidelity:
    """Simulate the plan's jobs as Slurm recorded their submit and run times, and compare
    the simulated starts with the live run's.

    The simulator starts the first job when it is submitted, on an idle controller. When the
    live controller's first pass ran late (by up to ``batch_sched_delay`` seconds: a pass
    just before ``t0``, or load), it took in the submissions of the next seconds too; the
    clocks are then aligned at the first start (:attr:`Fidelity.late`): every submission is
    simulated that much earlier and every simulated start compared that much later."""
    workload = plan.workload(as_run=live)
    sim = list(simulate(plan.policy, workload, plan.config).start)
    late = _first_pass_late(sim, live.starts, plan.config.sched_delay)
    if late:
        earlier = tuple(dataclasses.replace(j, submit=max(0, j.submit - late)) for j in workload.jobs)
        shifted = dataclasses.replace(workload, jobs=earlier)
        sim = [s + late if s >= 0 else s for s in simulate(plan.policy, shifted, plan.config).start]
    errs = [r - s for r, s in zip(live.starts, sim, strict=True) if r is not None and s >= 0]
    return Fidelity(np.asarray(errs, dtype=float), plan.policy.scheduler.backfill.interval,
                    sim, list(live.starts), late=late)


def _first_pass_late(sim: list[int], real: list[int | None], cap: int) -> int:
    """How many seconds (0 to ``cap``) after its simulated start the first job started."""
    if not sim or real[0] is None or sim[0] < 0:
        return 0
    return max(0, min(cap, real[0] - sim[0]))


# ---------------------------------------------------------------------------------------------


def _submit(runner: Runner, options: list[str], command: str) -> str:
    """``sbatch`` a one-line shell job (output discarded); its job id."""
    argv = sbatch.submit_argv([*options, "--output=/dev/null", "--chdir=/tmp"])
    return sbatch.parse_job_id(runner.check(argv, input=f"#!/bin/sh\n{command}\n"))


def _wait_gone(runner: Runner, ids: Sequence[str], limit: float, what: str) -> None:
    """Wait until none of ``ids`` is in the queue; after ``limit`` s cancel them and fail."""
    mine = set(ids)

    def gone() -> bool:
        return not mine.intersection(squeue.parse_ids(runner.check(squeue.ids_argv())))

    try:
        wait_until(what + " to leave the queue", gone, limit, interval=0.5)
    except WaitTimeout:
        left = mine.intersection(squeue.parse_ids(runner.check(squeue.ids_argv())))
        runner(scancel.cancel_argv(ids))
        raise TimeoutError(f"{len(left)} {what} still queued after {limit:.0f} s") from None


def batch_sched_delay(runner: Runner) -> int:
    """``batch_sched_delay`` of the live slurmctld (Slurm's default: 3 s)."""
    config = scontrol.parse_config(runner.check(scontrol.show_config_argv()))
    params = scontrol.scheduler_params(config.get("SchedulerParameters", ""))
    value = params.get("batch_sched_delay", "")
    return int(value) if value.isdigit() else 3


def _warm_up(runner: Runner, plan: ReplayPlan, progress: Callable[[str], None],
             timeout: float = 120.0) -> None:
    """One short probe job per node of the first job's partition; return once they have all
    ended and the backfill passes they caused are over (the thread runs at most one
    ``bf_interval`` after a change), so ``t0`` meets a settled controller."""
    partition = plan.jobs[0].partition
    nodes = sinfo.node_cpus(sinfo.parse_sinfo_nodes(runner.check(sinfo.nodes_argv(partition))))
    ids = [_submit(runner, ["--job-name=sf-replay-probe", f"--partition={partition}",
                            f"--nodelist={node}", "--ntasks=1", "--time=1"], "true")
           for node in dict.fromkeys(nodes)]
    progress(f"warming up: {len(ids)} probe job(s)")
    _wait_gone(runner, ids, timeout, "warm-up probe(s) (are all nodes up? see sinfo)")
    # The passes the probes' ends cause run within one bf_interval; one more interval after
    # them the thread is polling with nothing to do, as the simulator assumes at t0. (sdiag's
    # "Last cycle when" omits passes that found no pending job, so this is waited out.)
    settle = time.monotonic() + 2 * plan.policy.scheduler.backfill.interval + 1
    while time.monotonic() < settle:
        time.sleep(0.2)  # pacing the replay's own clock
