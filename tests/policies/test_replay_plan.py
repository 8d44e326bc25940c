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


def test_a_late_first_pass_is_aligned_not_counted_against_the_simulator() -> None:
    """The CI run that missed the goal: the controller's first pass ran 1 s late and took in
    the next second's submissions. Here "real" is the simulator's own schedule of that
    situation; compared with the clocks aligned it is exact, unaligned 14 % of the jobs
    were ~28 s off."""
    import dataclasses

    from sandfill.policies.sim.simulator import simulate
    from sandfill.policies.sim.trace import read_swf

    traces = Path(__file__).parents[2] / "policies" / "traces"
    policy = load_policy(REPLAY)
    trace = read_swf(traces / "LLNL-Atlas-2006-2.1-cln.first8000.swf.gz", limit=5110)
    plan = prepare(policy, trace, start=5000, count=110, compress=500, nodes=4, cpus_per_node=8)
    wl = plan.workload()
    late = dataclasses.replace(wl, jobs=tuple(dataclasses.replace(j, submit=max(0, j.submit - 1))
                                              for j in wl.jobs))
    real = [s + 1 for s in simulate(policy, late, plan.config).start]
    n = len(plan.jobs)
    run = ReplayRun(0, [str(i) for i in range(n)], real, [0.0] * n, [""] * n,
                    submits=[j.submit for j in plan.jobs], runs=[j.run for j in plan.jobs])
    fid = compare(plan, run)
    assert fid.late == 1 and fid.within == 1.0 and abs(fid.errors).max() == 0, fid.summary()
    assert "first pass 1 s late" in fid.summary()
