"""The simulator's multifactor priority against Slurm's formulas (priority/multifactor)."""

from __future__ import annotations

import pytest

from sandfill.policies.document.load import policy_from_mapping
from sandfill.policies.sim.simulator import SimConfig, Simulator
from sandfill.policies.sim.workload import Job, Workload


@pytest.mark.parametrize("favor_small", [False, True])
def test_job_size_factor_is_the_mean_of_node_and_cpu_fractions(favor_small: bool) -> None:
    # 4 nodes x 8 CPUs, jobs asking -n N (min nodes 1): Slurm's size factor favouring large
    # jobs is (1/4 + N/32) / 2, so an 8-CPU job outranks a 1-CPU one (a maximum of the two
    # fractions would tie them at 1/4); favouring small jobs it is one minus that.
    policy = policy_from_mapping({
        "tiers": {"batch": {"max_walltime": "1:00:00"}},
        "roles": {"default": "batch"},
        "priority": {"type": "multifactor", "favor_small": favor_small,
                     "weights": {"job_size": 1000}},
    })
    cpus = [1, 2, 8, 16, 32]
    jobs = tuple(Job(i, 0, 10, n, "u", 600) for i, n in enumerate(cpus))
    sim = Simulator(policy, Workload(jobs, nodes=4, cpus_per_node=8),
                    SimConfig(nodes=4, cpus_per_node=8, alloc="cpu"))
    expected = [(1 / 4 + n / 32) / 2 for n in cpus]
    if favor_small:
        expected = [1 - e for e in expected]
    assert sim.job_static == pytest.approx([1000 * e for e in expected])
