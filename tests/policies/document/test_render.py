"""The rendered slurm.conf fragment and sacctmgr commands, as text."""

from __future__ import annotations

import pytest

from sandfill.policies import load_policy, policy_from_mapping, policy_to_mapping
from sandfill.policies.document.render import (
    RenderError,
    check_line,
    render_sacctmgr,
    render_slurm_conf,
    settings_without_accounting,
)


def _scavenger_policy():
    m = policy_to_mapping(load_policy())
    m["tiers"]["scavenger"] = {"max_walltime": "1-00:00:00", "priority_tier": 0,
                               "priority_job_factor": 1, "preempt_mode": "requeue"}
    m["preemption"] = {"type": "partition_prio", "mode": "requeue"}
    return policy_from_mapping(m)


def test_default_fragment() -> None:
    text = render_slurm_conf(load_policy(), nodes="node[1-4]", accounting=True)
    lines = text.splitlines()
    assert "PriorityType=priority/multifactor" in lines
    assert "PriorityWeightAge=1000" in lines
    assert "PriorityWeightJobSize=1000" in lines
    assert "PriorityWeightPartition=10000" in lines
    assert "PriorityWeightQOS=10000" in lines
    assert "PriorityMaxAge=7-00:00:00" in lines
    assert "SchedulerType=sched/backfill" in lines
    assert (
        "SchedulerParameters=bf_interval=30,bf_window=2880,bf_resolution=60,"
        "bf_max_job_test=500,bf_continue" in lines
    )
    assert "PreemptType=preempt/partition_prio" in lines
    assert "PreemptMode=CANCEL" in lines
    assert "JobRequeue=1" not in lines
    assert (
        "PartitionName=interactive Nodes=node[1-4] MaxTime=08:00:00 DefaultTime=04:00:00 "
        "MaxNodes=1 PriorityTier=100 PriorityJobFactor=1000 Default=NO State=UP "
        "QOS=interactive PreemptMode=OFF" in lines
    )
    assert (
        "PartitionName=batch Nodes=node[1-4] MaxTime=2-00:00:00 DefaultTime=01:00:00 "
        "MaxNodes=4 PriorityTier=1 PriorityJobFactor=100 Default=YES State=UP QOS=batch "
        "PreemptMode=OFF" in lines
    )
    # the one preemptable partition: cancelled after 60 s of grace (slurm.conf(5) GraceTime)
    assert (
        "PartitionName=scavenger Nodes=node[1-4] MaxTime=1-00:00:00 DefaultTime=01:00:00 "
        "MaxNodes=4 PriorityTier=0 PriorityJobFactor=1 Default=NO State=UP QOS=scavenger "
        "PreemptMode=CANCEL GraceTime=60" in lines
    )
    parts = [line for line in lines if line.startswith("PartitionName=")]
    assert len(parts) == 4
    assert [p.split()[0] for p in parts if "PreemptMode=OFF" not in p] == ["PartitionName=scavenger"]
    assert sum("GraceTime=" in p for p in parts) == 1
    assert sum("Default=YES" in line for line in lines) == 1
    for forbidden in ("NodeName", "SlurmctldPort", "AccountingStorage", "SlurmdPort", "Include"):
        assert forbidden not in text


def test_fragment_without_accounting_has_no_qos() -> None:
    text = render_slurm_conf(load_policy(), nodes="node[1-4]", accounting=False)
    assert " QOS=" not in text
    assert "PartitionName=burst" in text


def test_partition_prio_sets_preemptmode_on_every_partition() -> None:
    text = render_slurm_conf(_scavenger_policy(), nodes="n[1-2]", accounting=False)
    lines = text.splitlines()
    assert "PreemptType=preempt/partition_prio" in lines
    assert "PreemptMode=REQUEUE" in lines
    assert "JobRequeue=1" in lines
    parts = [ln for ln in lines if ln.startswith("PartitionName=")]
    assert len(parts) == 4
    for ln in parts:
        if ln.startswith("PartitionName=scavenger"):
            assert ln.endswith("PreemptMode=REQUEUE")
        else:
            assert ln.endswith("PreemptMode=OFF")


def test_basic_priority_and_builtin() -> None:
    p = policy_from_mapping({"tiers": {"b": {"max_walltime": 60}}, "roles": {"default": "b"},
                             "scheduler": {"type": "builtin"}})
    text = render_slurm_conf(p, nodes="node1", accounting=False)
    assert "PriorityType=priority/basic" in text
    assert "PriorityWeight" not in text
    assert "SchedulerType=sched/builtin" in text
    assert "PartitionName=b Nodes=node1 MaxTime=01:00:00 MaxNodes=UNLIMITED" in text


def test_sacctmgr_commands() -> None:
    cmds = render_sacctmgr(load_policy())
    assert cmds[0] == ["sacctmgr", "-i", "add", "qos", "interactive"]
    assert cmds[1] == ["sacctmgr", "-i", "modify", "qos", "where", "name=interactive", "set",
                       "Priority=1000", "MaxJobsPerUser=2", "MaxTRESPerUser=cpu=-1"]
    assert ["sacctmgr", "-i", "modify", "qos", "where", "name=burst", "set", "Priority=500",
            "MaxJobsPerUser=-1", "MaxTRESPerUser=cpu=16"] in cmds
    assert len(cmds) == 8  # four tiers, each its own QOS (scavenger included)
    assert all(isinstance(a, str) for c in cmds for a in c)


def test_sacctmgr_qos_preemption() -> None:
    m = policy_to_mapping(_scavenger_policy())
    m["preemption"]["type"] = "qos"
    cmds = render_sacctmgr(policy_from_mapping(m))
    batch = next(c for c in cmds if "name=batch" in c)
    assert "Preempt=scavenger" in batch
    scav = next(c for c in cmds if "name=scavenger" in c)
    assert "PreemptMode=Requeue" in scav
    text = render_slurm_conf(policy_from_mapping(m), nodes="n1", accounting=True)
    assert "PreemptType=preempt/qos" in text


def test_settings_without_accounting() -> None:
    items = settings_without_accounting(load_policy())
    assert any(i.startswith("tiers.interactive.qos.max_jobs_per_user=2") for i in items)
    assert any(i.startswith("tiers.burst.qos.max_cpus_per_user=16") for i in items)
    assert any(i.startswith("priority.weights.age=1000") for i in items)
    assert not any("partition" in i.split()[0] for i in items)


# --- defence in depth: the renderer itself refuses what the loader would refuse ---------------

_HOSTILE_NAMES = ["batch\nPrologSlurmctld=/tmp/x.sh", "batch\n", "a,normal", "b#", "x=y",
                  "b Default=YES", "-normal", "", "a\x00b", "b\u0661", "n" * 65]


def _with(policy, **tier_changes):
    """``policy`` with its first tier changed (a Policy built without the loader)."""
    import dataclasses

    first = dataclasses.replace(policy.tiers[0], **tier_changes)
    return dataclasses.replace(policy, tiers=(first, *policy.tiers[1:]))


@pytest.mark.parametrize("bad", _HOSTILE_NAMES, ids=repr)
@pytest.mark.parametrize("where", ["partition", "qos", "name", "policy", "role"])
def test_renderer_refuses_a_hostile_name_wherever_it_is(bad: str, where: str) -> None:
    import dataclasses

    from sandfill.policies.document.model import Qos

    p = load_policy()
    if where == "partition":
        p = _with(p, partition=bad)
    elif where == "qos":
        p = _with(p, qos=Qos(bad))
    elif where == "name":
        p = _with(p, name=bad)
    elif where == "policy":
        p = dataclasses.replace(p, name=bad)
    else:
        p = dataclasses.replace(p, roles=(*p.roles, (bad, "batch")))
    for render in (lambda: render_slurm_conf(p, nodes="node[1-4]", accounting=True),
                   lambda: render_sacctmgr(p)):
        with pytest.raises(RenderError) as exc:
            render()
        assert repr(bad) in str(exc.value)


@pytest.mark.parametrize("nodes", ["node[1-4]\nPrologSlurmctld=/tmp/x", "node1#", "n1 Default=YES",
                                   "n=1", "", "node[1-4]\n"], ids=repr)
def test_renderer_refuses_a_hostile_node_list(nodes: str) -> None:
    with pytest.raises(RenderError) as exc:
        render_slurm_conf(load_policy(), nodes=nodes, accounting=True)
    assert repr(nodes) in str(exc.value)


@pytest.mark.parametrize("line", ["PrologSlurmctld=/tmp/x.sh", "PartitionName=a Epilog=/x",
                                  "PartitionName=a#b", "Include /etc/x", "# one\rline",
                                  "# a\u2028b", "MaxTime=1\x00", "PartitionName=\u0661"], ids=repr)
def test_only_the_policys_own_settings_can_be_a_fragment_line(line: str) -> None:
    with pytest.raises(RenderError) as exc:
        check_line(line)
    assert "refusing to render" in str(exc.value)


def test_every_rendered_line_passes_the_line_check() -> None:
    for p in (load_policy(), _scavenger_policy()):
        for accounting in (True, False):
            for line in render_slurm_conf(p, nodes="a1,b[01-02]", accounting=accounting).split("\n"):
                check_line(line)
