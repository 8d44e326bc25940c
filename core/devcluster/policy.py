"""The policy that the devcluster's slurm.conf is rendered from.

Until the policies part is present this is a plain built-in policy: three partitions
(interactive, burst, batch), multifactor priority and backfill."""

from __future__ import annotations

BUILTIN_FRAGMENT = """\
# Built-in devcluster policy (no policy file given).
PriorityType=priority/multifactor
PriorityWeightAge=1000
PriorityWeightPartition=10000
PriorityWeightJobSize=100
PriorityMaxAge=1-0
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=5,bf_continue,bf_resolution=60,bf_window=2880
PreemptType=preempt/none
PartitionName=batch Nodes={nodes} Default=YES MaxTime=2-00:00:00 PriorityTier=1 State=UP
PartitionName=burst Nodes={nodes} Default=NO MaxTime=01:00:00 PriorityTier=5 State=UP
PartitionName=interactive Nodes={nodes} Default=NO MaxTime=08:00:00 PriorityTier=10 State=UP
"""


def policy_fragment(policy_path: str | None, *, nodes: str) -> str:
    return BUILTIN_FRAGMENT.format(nodes=nodes)


def policy_sacctmgr(policy_path: str | None) -> list[list[str]]:
    return []
