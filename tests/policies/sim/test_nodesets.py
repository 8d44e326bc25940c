"""Node sets in the simulator: a tier's jobs only run on its nodes (sandfill.policies.sim.nodesets)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sandfill.dev.invariants import check_schedule
from sandfill.policies.document.load import load_policy, policy_from_mapping
from sandfill.policies.document.model import MachineNode
from sandfill.policies.sim.nodesets import build_pools
from sandfill.policies.sim.prepare import rejection_reasons
from sandfill.policies.sim.simulator import SimConfig, SimResult, simulate
from sandfill.policies.sim.workload import Job, Workload

ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())
GPU_EXAMPLE = ROOT / "policies" / "examples" / "gpu.yaml"
HOSTS = (MachineNode("cpu1", 8, ("cpu",)), MachineNode("cpu2", 8, ("cpu",)),
         MachineNode("bigmem1", 8, ("bigmem",)), MachineNode("gpu1", 8, ("gpu",)))


def _policy(gpu_nodes: dict[str, Any] | None) -> Any:
    gpu: dict[str, Any] = {"max_walltime": "2:00:00", "priority_tier": 10}
    if gpu_nodes is not None:
        gpu["nodes"] = gpu_nodes
    return policy_from_mapping({
        "name": "sets",
        "tiers": {"batch": {"max_walltime": "2:00:00"}, "gpu": gpu},
        "roles": {"default": "batch"},
        "scheduler": {"backfill": {"interval": 30, "window": "1-00:00:00"}},
    })


def _gpu_jobs(n: int) -> list[Job]:
    """``n`` one-node GPU jobs of 1 h, all submitted at once."""
    return [Job(i, 0, 3600, 8, "u", 3600, partition="gpu") for i in range(n)]


def _config(**kw: Any) -> SimConfig:
    kw.setdefault("use_trace_partitions", True)
    return SimConfig(nodes=4, cpus_per_node=8, alloc="cpu", **kw)


def _starts(res: SimResult) -> list[int]:
    return sorted(res.start)


@pytest.mark.parametrize("backfill", ["conservative", "easy", "none"])
def test_a_restricted_tier_queues_while_other_nodes_sit_idle(backfill: str) -> None:
    cfg = _config(machine=HOSTS, backfill=backfill)
    res = simulate(_policy({"features": ["gpu"]}), Workload(tuple(_gpu_jobs(3))), cfg)
    assert check_schedule(res) == []
    assert _starts(res) == [0, 3600, 7200]  # one at a time on gpu1; three nodes stay idle
    assert max(res.timeline_busy) == 8
    # without the node set the three jobs run at once on the four nodes
    free = simulate(_policy(None), Workload(tuple(_gpu_jobs(3))), _config(backfill=backfill))
    assert _starts(free) == [0, 0, 0]


def test_other_tiers_still_use_every_node_and_a_blocked_gpu_job_stops_no_cpu_job() -> None:
    jobs = _gpu_jobs(2) + [Job(10 + i, 0, 600, 8, "v", 600, partition="batch") for i in range(4)]
    res = simulate(_policy({"list": "gpu1"}), Workload(tuple(jobs)), _config(machine=HOSTS))
    assert check_schedule(res) == []
    start = dict(zip([j.id for j in jobs], res.start, strict=True))
    assert start[0] == 0 and start[1] == 3600  # gpu1 one job at a time
    assert sorted(start[i] for i in range(10, 14)) == [0, 0, 0, 600]  # cpu1, cpu2, bigmem1, then


def test_a_job_larger_than_its_tier_set_is_rejected() -> None:
    jobs = [Job(0, 0, 60, 16, "u", 600, partition="gpu"), Job(1, 0, 60, 16, "u", 600, partition="batch")]
    res = simulate(_policy({"features": ["gpu"]}), Workload(tuple(jobs)), _config(machine=HOSTS))
    assert res.rejected == [0]
    assert res.start[1] == 0


def test_tiers_with_node_sets_take_jobs_only_by_name() -> None:
    job = Job(0, 0, 60, 4, "u", 600)  # no partition: the mapper picks by walltime
    policy = _policy({"features": ["gpu"]})
    res = simulate(policy, Workload((job,)), _config(machine=HOSTS, use_trace_partitions=False))
    assert res.tier_names[res.job_tier[0]] == "batch"


def test_the_gpu_example_policy_simulates() -> None:
    policy = load_policy(GPU_EXAMPLE)
    jobs = _gpu_jobs(2) + [Job(10 + i, 30 * i, 1800, 4, f"u{i % 3}", 3600, partition="batch")
                           for i in range(12)]
    res = simulate(policy, Workload(tuple(jobs)), _config(machine=HOSTS))
    assert check_schedule(res) == []
    assert res.rejected == [] and min(res.end) > 0
    gpu = [s for s, t in zip(res.start, res.job_tier, strict=True) if res.tier_names[t] == "gpu"]
    assert sorted(gpu) == [0, 3600]


def test_a_bad_machine_for_the_node_sets_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="tier 'gpu': features gpu matches none"):
        build_pools(_policy({"features": ["gpu"]}), _config())  # node1..node4, no features
    with pytest.raises(ValueError, match="lists 4 nodes, not the 5"):
        build_pools(_policy({"list": "gpu1"}),
                    SimConfig(nodes=5, cpus_per_node=8, machine=HOSTS))
    assert build_pools(_policy(None), _config()) is None  # no node set: the engine as before


def test_a_listed_set_on_the_default_machine() -> None:
    pools = build_pools(_policy({"list": "node[3-4]"}), _config())
    assert pools is not None
    assert pools.tier_units == [32, 16]  # batch: every node; gpu: node3 and node4
    # batch takes the nodes no set restricts first
    assert pools.tier_groups[0][0] != pools.tier_groups[1][0]


def test_a_job_larger_than_its_tier_set_is_counted_with_the_reason() -> None:
    jobs = [Job(0, 0, 60, 16, "u", 600, partition="gpu"), Job(1, 0, 60, 64, "u", 600, partition="gpu")]
    res = simulate(_policy({"features": ["gpu"]}), Workload(tuple(jobs)), _config(machine=HOSTS))
    assert rejection_reasons(res) == {
        "are larger than the node set of tier 'gpu' (features gpu)": 1,
        "are larger than the machine (32 CPUs)": 1,
    }
