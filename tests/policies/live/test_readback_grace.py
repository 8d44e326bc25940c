"""A preemptable partition's ``GraceTime`` read back from a live cluster (no Slurm needed:
a LiveState as ``scontrol show partition`` would fill it)."""

from __future__ import annotations

from sandfill.policies.document.compare import diff_policies
from sandfill.policies.document.load import load_policy, policy_from_mapping
from sandfill.policies.live.readback import live_mapping
from sandfill.policies.live.state import LiveState
from sandfill.units import Duration


def _state(grace: str) -> LiveState:
    def row(name: str, tier: int, mode: str, grace_time: str = "0") -> dict[str, str]:
        return {"PartitionName": name, "Nodes": "node[1-4]", "MaxTime": "1-00:00:00",
                "PriorityTier": str(tier), "Default": "YES" if name == "batch" else "NO",
                "PreemptMode": mode, "GraceTime": grace_time}

    config = {"PreemptType": "preempt/partition_prio", "PreemptMode": "CANCEL"}
    rows = [row("batch", 1, "OFF"), row("scavenger", 0, "CANCEL", grace)]
    return LiveState("", "", "", config=config, partitions=rows)


def test_a_partitions_grace_time_reads_back_and_zero_is_none() -> None:
    mapping, _notes = live_mapping(_state("60"))
    assert mapping["tiers"]["scavenger"]["grace_time"] == "60s"
    assert mapping["tiers"]["batch"]["grace_time"] is None  # GraceTime=0: Slurm's default
    live = policy_from_mapping(mapping)
    assert live.tier("scavenger").grace_time == Duration(60)
    mapping, _notes = live_mapping(_state("0"))
    assert policy_from_mapping(mapping).tier("scavenger").grace_time is None


def test_diff_names_a_changed_grace_time() -> None:
    live = policy_from_mapping(live_mapping(_state("30"))[0])
    wanted = load_policy()  # the shipped policy: scavenger with 60 s of grace
    changes = [str(c) for c in diff_policies(live, wanted, accounting=False) if "grace_time" in c.key]
    assert changes == ["~ tiers.scavenger.grace_time: 00:00:30 -> 00:01:00"]
