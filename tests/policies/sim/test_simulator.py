"""Hand-written scenarios: expected start times are written in each YAML file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sandfill.dev.invariants import check_schedule
from sandfill.policies.document.load import policy_from_mapping
from sandfill.policies.sim.simulator import SimConfig, simulate
from sandfill.policies.sim.workload import Job, Workload

SCENARIOS = sorted((Path(__file__).parent / "scenarios").glob("*.yaml"))
CASES = [
    pytest.param(path, i, id=f"{path.stem}-{i}-{run['backfill']}-{run.get('bf_timing', 'grid')}")
    for path in SCENARIOS
    for i, run in enumerate(yaml.safe_load(path.read_text())["runs"])
]


def _run(path: Path, i: int):
    spec = yaml.safe_load(path.read_text())
    run = spec["runs"][i]
    policy = policy_from_mapping(run.get("policy", spec["policy"]))
    jobs = tuple(
        Job(
            id=j["id"],
            submit=j["submit"],
            run_time=j["run"],
            cpus=j["cpus"],
            user=j.get("user", "u"),
            time_limit=j.get("limit"),
            time_min=j.get("time_min"),
            partition=j.get("partition"),
        )
        for j in spec["jobs"]
    )
    cfg = SimConfig(
        nodes=spec["cluster"]["nodes"],
        cpus_per_node=spec["cluster"]["cpus_per_node"],
        backfill=run["backfill"],
        use_trace_partitions=spec.get("use_trace_partitions", False),
        accounting=run.get("accounting", True),
        record_reservations=True,
        bf_timing=run.get("bf_timing", "grid"),
        bf_last=run.get("bf_last"),
    )
    return run, simulate(policy, Workload(jobs), cfg)


@pytest.mark.parametrize(("path", "i"), CASES)
def test_scenario(path: Path, i: int) -> None:
    run, res = _run(path, i)
    ids = [j.id for j in res.workload.jobs]
    assert {j.id: s for j, s in zip(res.workload.jobs, res.start, strict=True)} == run["starts"]
    assert check_schedule(res) == []
    for jid, end in run.get("ends", {}).items():
        assert res.end[ids.index(jid)] == end, f"end of job {jid}"
    for jid, tier in run.get("tiers", {}).items():
        assert res.tier_names[res.job_tier[ids.index(jid)]] == tier
    for jid, reason in run.get("held", {}).items():
        assert res.held.get(ids.index(jid)) == reason
    if "held" in run:
        assert len(res.held) == len(run["held"])
    for jid, n in run.get("preempted", {}).items():
        assert res.preemptions[ids.index(jid)] == n
    if "passes" in run:  # when the backfill passes ran
        assert [r.time for r in res.backfill_log] == run["passes"]
    for jid, t in run.get("last_starts", {}).items():
        assert max(s.start for s in res.segments if s.job == ids.index(jid)) == t


def test_scenarios_distinguish_algorithms() -> None:
    """Each algorithm's expectations differ, so a missing feature would fail a scenario."""
    spec = yaml.safe_load((Path(__file__).parent / "scenarios" / "backfill.yaml").read_text())
    starts = [tuple(sorted(r["starts"].items())) for r in spec["runs"]]
    assert len(set(starts)) == len(starts) == 3


def test_invariant_checker_catches_overcommit() -> None:
    _run_, res = _run(Path(__file__).parent / "scenarios" / "backfill.yaml", 2)
    from sandfill.policies.sim.simulator import Segment

    res.segments.append(Segment(0, 0, 50, 4, "completed", "main"))
    assert any("over-commit" in v for v in check_schedule(res))


def test_invariant_checker_catches_start_before_submit() -> None:
    _run_, res = _run(Path(__file__).parent / "scenarios" / "backfill.yaml", 2)
    from sandfill.policies.sim.simulator import Segment

    res.segments.append(Segment(4, 0, 0, 0, "completed", "main"))
    assert any("before its submit" in v for v in check_schedule(res))


def test_invariant_checker_catches_broken_reservation() -> None:
    _run_, res = _run(Path(__file__).parent / "scenarios" / "backfill.yaml", 2)
    from sandfill.policies.sim.simulator import BackfillRecord

    rec = next(r for r in res.backfill_log if r.reservations)
    r0 = rec.reservations[0]
    intruder = (99, rec.time, r0.end, res.capacity)  # a job started across the reservation
    res.backfill_log.append(BackfillRecord(rec.time, rec.reservations, rec.running + (intruder,)))
    assert any("overrun" in v for v in check_schedule(res))
