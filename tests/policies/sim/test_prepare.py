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


def _default_policy():
    from sandfill.policies.document.load import load_policy

    return load_policy()  # interactive 1 node/8 CPUs/8 h, burst 2/16/1 h, batch 4/32/2 days


def _reasons(jobs: tuple[Job, ...], nodes: int = 1152, cpn: int = 8, **cfg) -> dict[str, int]:
    from sandfill.policies.sim.prepare import rejection_reasons
    from sandfill.policies.sim.simulator import simulate

    res = simulate(_default_policy(), Workload(jobs, nodes=nodes, cpus_per_node=cpn),
                   SimConfig(nodes=nodes, cpus_per_node=cpn, **cfg))
    reasons = rejection_reasons(res)
    assert sum(reasons.values()) == len(res.rejected)
    return dict(reasons)


def test_each_rejection_names_the_limit_it_broke() -> None:
    jobs = (
        Job(1, 0, 10, 64, "u", 600),  # 8 nodes of 8 CPUs: more than any tier's max_nodes 4
        Job(2, 1, 10, 48, "u", 600),  # 6 nodes
        Job(3, 2, 10, 8, "u", 3 * 86400),  # 3 days: more than batch's 2 days
        Job(4, 3, 10, 40, "u"),  # no time asked: the default tier (batch, 4 nodes)
        Job(5, 4, 10, 8, "u", 600),  # fits
    )
    assert _reasons(jobs) == {
        "ask more nodes than any tier allows (max_nodes 4)": 2,
        "ask more time than any tier allows (max_walltime 2-00:00:00)": 1,
        "ask more nodes than the default tier 'batch' allows (max_nodes 4), where jobs that "
        "ask no time go": 1,
    }


def test_cpu_caps_trace_partitions_and_the_machine_are_reasons_too() -> None:
    # CPU allocation: 40 CPUs on 2 nodes fits max_nodes 4 but not max_cpus_per_job 32
    assert _reasons((Job(1, 0, 10, 40, "u", 600, nodes=2),), nodes=4, cpn=32, alloc="cpu") == {
        "ask more CPUs than any tier allows (max_cpus_per_job 32)": 1}
    # a trace partition naming the burst tier (2 nodes at most)
    assert _reasons((Job(1, 0, 10, 24, "u", 600, partition="burst"),),
                    use_trace_partitions=True) == {
        "ask more nodes than their trace partition's tier 'burst' allows (max_nodes 2)": 1}
    # a job that a tier admits but the machine cannot hold
    assert _reasons((Job(1, 0, 10, 24, "u", 600),), nodes=2, cpn=8) == {
        "are larger than the machine (2 nodes)": 1}
