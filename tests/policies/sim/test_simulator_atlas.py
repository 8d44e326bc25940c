"""On the LLNL Atlas trace: a 30-minute high-priority short tier vs one queue."""

from __future__ import annotations

from sandfill.dev.invariants import check_schedule
from sandfill.policies.document.load import policy_from_mapping
from sandfill.policies.sim.metrics import summarize
from sandfill.policies.sim.simulator import SimConfig, simulate

COMMON = {
    "priority": {"type": "multifactor", "weights": {"age": 1000, "job_size": 100,
                                                    "partition": 10000}},
    "scheduler": {"backfill": {"window": "10-00:00:00"}},
    "roles": {"default": "batch"},
}
SINGLE = {"name": "single", "tiers": {"batch": {"max_walltime": "10-00:00:00"}}, **COMMON}
SHORT = {
    "name": "short-tier",
    "tiers": {
        "debug": {"max_walltime": "30:00", "priority_tier": 10, "priority_job_factor": 1000},
        "batch": {"max_walltime": "10-00:00:00", "priority_job_factor": 1},
    },
    **COMMON,
}


def test_short_tier_cuts_short_job_waits(atlas) -> None:
    wl = atlas.head(8000).scaled(1.5)  # a busy stretch so that queues form
    cfg = SimConfig(nodes=atlas.nodes, cpus_per_node=atlas.cpus_per_node)
    a = simulate(policy_from_mapping(SINGLE), wl, cfg)
    b = simulate(policy_from_mapping(SHORT), wl, cfg)
    ma = summarize(a, short_limit=1800).by_name()
    mb = summarize(b, short_limit=1800).by_name()
    assert ma["short"].jobs == mb["short"].jobs > 500
    assert mb["short"].mean_wait < 0.5 * ma["short"].mean_wait
    assert mb["short"].median_wait <= ma["short"].median_wait
    assert mb["tier:debug"].jobs == mb["short"].jobs
    # long jobs pay little or nothing for it (the change is visible either way)
    assert mb["long"].mean_wait < 1.5 * ma["long"].mean_wait


def test_atlas_slice_schedules_are_sound(atlas) -> None:
    wl = atlas.head(2000).scaled(3.0)
    pol = policy_from_mapping(SINGLE)
    for mode in ("conservative", "easy", "none"):
        cfg = SimConfig(nodes=atlas.nodes, cpus_per_node=8, backfill=mode,
                        record_reservations=True)
        res = simulate(pol, wl, cfg)
        assert check_schedule(res) == [], mode
        assert all(s >= 0 for i, s in enumerate(res.start) if i not in set(res.rejected))


def test_backfill_beats_fcfs_on_atlas(atlas) -> None:
    wl = atlas.head(4000).scaled(1.5)
    pol = policy_from_mapping(SINGLE)
    waits = {}
    for mode in ("conservative", "easy", "none"):
        res = simulate(pol, wl, SimConfig(nodes=1152, cpus_per_node=8, backfill=mode))
        waits[mode] = summarize(res).by_name()["all"].mean_wait
    assert waits["conservative"] < waits["none"]
    assert waits["easy"] < waits["none"]


def test_load_factor_compresses_arrivals(atlas) -> None:
    wl = atlas.head(100)
    busier = wl.scaled(2.0)
    span = wl.jobs[-1].submit - wl.jobs[0].submit
    assert abs((busier.jobs[-1].submit - busier.jobs[0].submit) - span / 2) <= 1
