"""The metrics table: the direction of "better" per metric, empty classes left out, the count
of jobs with reasons, and the warning when a policy does not fit the machine."""

from __future__ import annotations

import dataclasses

from sandfill.policies.document.load import load_policy
from sandfill.policies.sim.metrics import (
    compared,
    fit_warning,
    format_table,
    job_counts,
    percent,
    summarize,
    verdict,
)
from sandfill.policies.sim.simulator import SimConfig, simulate
from sandfill.policies.sim.workload import Job, Workload


def test_better_is_lower_for_waits_and_higher_for_utilization() -> None:
    for f in ("mean_wait", "median_wait", "p95_wait", "max_wait", "mean_bsld", "starved"):
        assert (verdict(f, 10, 5), verdict(f, 5, 10), verdict(f, 5, 5)) == ("better", "worse", "")
    assert (verdict("utilization", 0.5, 0.6), verdict("utilization", 0.6, 0.5)) == ("better",
                                                                                     "worse")
    assert verdict("jobs", 10, 20) == verdict("jobs", 20, 10) == ""


def _run(jobs: tuple[Job, ...], nodes: int = 4):
    wl = Workload(jobs, nodes=nodes, cpus_per_node=8, source="t.swf", skipped=2)
    res = simulate(load_policy(), wl, SimConfig(nodes=nodes, cpus_per_node=8))
    return res, summarize(res)


def test_empty_classes_are_left_out_and_deltas_say_better_or_worse() -> None:
    # two 4-node batch jobs, one behind the other: no interactive or burst job
    jobs = (Job(1, 0, 7200, 32, "u", 7200), Job(2, 10, 7200, 32, "u", 7200))
    res, met = _run(jobs)
    names = {r.cells[0] for r in compared(met)}
    assert "tier:batch" in names and not names & {"tier:interactive", "tier:burst", "short"}
    quicker = dataclasses.replace(met, policy="b", classes=tuple(
        dataclasses.replace(c, mean_wait=c.mean_wait / 2) for c in met.classes),
        utilization=met.utilization / 2)
    rows = {(r.cells[0], r.cells[1]): r for r in compared(met, quicker)}
    assert rows[("all", "mean_wait")].verdict == "better"
    assert rows[("all", "utilization")].verdict == "worse"
    assert rows[("all", "jobs")].verdict == ""
    text = format_table(met, quicker)
    assert "-50% (better)" in text and "-50% (worse)" in text and "tier:burst" not in text


def test_the_job_count_adds_up_with_its_reasons_and_a_misfit_is_warned() -> None:
    # 1152-node machine: the policy's 4-node cap rejects the 64-CPU jobs
    jobs = tuple(Job(i, i, 60, 64 if i % 2 else 8, "u", 600) for i in range(10))
    res, met = _run(jobs, nodes=1152)
    counts = job_counts(res)
    assert (counts.read, counts.n_skipped, counts.n_rejected, counts.simulated) == (12, 2, 5, 5)
    assert counts.n_rejected == met.rejected == len(res.rejected)
    head, *reasons = counts.lines()
    assert head == ("12 jobs in t.swf: 2 skipped, 5 rejected by policy default, 5 simulated.")
    assert reasons == ["  skipped        2: never ran",
                       "  rejected       5: ask more nodes than any tier allows (max_nodes 4)"]
    warning = fit_warning(res, counts)
    assert warning is not None and "5 of 10 jobs (50%)" in warning
    assert "--nodes 4 --cpus-per-node 8" in warning and "max_nodes up to 1152" in warning


def test_a_small_utilization_is_not_printed_as_zero() -> None:
    assert (percent(0.00013), percent(0.0), percent(0.25)) == ("0.013%", "0.0%", "25.0%")


def test_a_policy_that_fits_gets_no_warning() -> None:
    res, _ = _run(tuple(Job(i, i, 60, 8, "u", 600) for i in range(10)))
    assert fit_warning(res, job_counts(res)) is None
