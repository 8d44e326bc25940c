"""The replay's comparison simulates the jobs as Slurm recorded them (no Slurm needed): a job
a loaded machine submitted late, or one that ended early, does not count against the
simulator."""

from __future__ import annotations

from pathlib import Path

from sandfill.policies.document.load import load_policy
from sandfill.policies.replay import ReplayRun, compare, prepare
from sandfill.policies.sim.workload import Job, Workload

REPLAY = Path(__file__).parent / "live" / "data" / "replay-policy.yaml"


def _plan():
    # job 0 fills the 32 CPUs for 30 s; job 1 (1 CPU) waits for it
    wl = Workload((Job(0, 0, 30, 32, "u", 60), Job(1, 1, 5, 1, "u", 60)), nodes=4, cpus_per_node=8)
    return prepare(load_policy(REPLAY), wl, start=0, count=2, compress=1, nodes=4, cpus_per_node=8)


def _run(starts, submits, runs) -> ReplayRun:
    return ReplayRun(0, ["1", "2"], starts, [0.0, 0.0], ["main", "main"], submits=submits, runs=runs)


def test_a_job_that_ended_early_moves_the_simulated_start_of_the_next() -> None:
    plan = _plan()
    assert [j.run for j in plan.jobs] == [30, 5]
    on_plan = _run([0, 31], [0, 1], [30, 5])
    assert on_plan.off_plan(plan) == []
    assert abs(compare(plan, on_plan).errors).max() <= 2
    # the machine cut job 0 short (it failed at 8 s): Slurm started job 1 at once
    early = _run([0, 9], [0, 1], [8, 5])
    assert early.off_plan(plan) == [0]
    fid = compare(plan, early)
    assert abs(fid.errors).max() <= 2, fid.summary()
    assert fid.sim_starts[1] < 15


def test_a_late_submission_is_simulated_when_it_happened() -> None:
    plan = _plan()
    late = _run([20, 51], [20, 21], [30, 5])  # both submitted 20 s late
    assert late.off_plan(plan) == [0, 1]
    fid = compare(plan, late)
    assert fid.sim_starts[0] >= 20 and abs(fid.errors).max() <= 2, fid.summary()
