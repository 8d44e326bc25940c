"""Loading, validating and round-tripping policy files."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandfill.policies import (
    ClusterShape,
    Duration,
    PolicyError,
    load_policy,
    policy_from_mapping,
    policy_to_mapping,
    policy_warnings,
)

BAD = sorted((Path(__file__).parent / "bad_policies").glob("*.yaml"))


def _expectations(path: Path) -> list[tuple[str, str]]:
    """``# expect: WHERE | TEXT`` lines: a problem at key path WHERE (backslash escapes such
    as ``\\n`` stand for the character: a hostile key is part of the path) whose message
    holds TEXT (as written: the message shows values by their repr)."""
    out = []
    for line in path.read_text(encoding="utf-8").split("\n"):
        if line.startswith("# expect:"):
            where, _, frag = line[len("# expect:") :].partition("|")
            where = where.strip().encode("ascii", "backslashreplace").decode("unicode_escape")
            out.append((where, frag.strip()))
    return out


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_bad_policy_rejected_with_path_and_value(path: Path) -> None:
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    messages = [str(p) for p in info.value.problems]
    expected = _expectations(path)
    assert expected, "each bad policy file says what it expects"
    for where, frag in expected:
        assert any(m.startswith(f"{where}:") and frag in m for m in messages), (
            where,
            frag,
            messages,
        )
    assert str(path) in str(info.value)


def test_all_problems_reported_at_once() -> None:
    with pytest.raises(PolicyError) as info:
        load_policy(Path(__file__).parent / "bad_policies" / "wrong_types.yaml")
    assert len(info.value.problems) == 3


def test_default_policy_loads_and_fits_devcluster() -> None:
    p = load_policy(shape=ClusterShape(nodes=4, cpus_per_node=8))
    assert [t.name for t in p.tiers] == ["interactive", "burst", "batch", "scavenger"]
    assert p.role("notebooks").name == "interactive"
    assert p.role("dask-workers").name == "burst"
    assert p.role("dask-preemptable").name == "scavenger"
    assert p.default_tier.name == "batch"
    assert p.role("anything-else").name == "batch"
    assert p.tier("interactive").max_walltime == Duration.hours(8)
    assert p.tier("interactive").qos.max_jobs_per_user == 2
    assert p.tier("burst").qos.max_cpus_per_user == 16
    assert p.priority.type == "multifactor"
    # only the scavenger tier gives way: cancelled (not requeued) after a 60 s grace time
    assert [t.name for t in p.tiers if t.preemptable] == ["scavenger"]
    assert p.tier("scavenger").preempt_mode == "cancel"
    assert p.tier("scavenger").grace_time == Duration(60)
    assert (p.preemption.type, p.preemption.mode) == ("partition_prio", "cancel")
    assert policy_warnings(p) == []


def test_round_trip() -> None:
    p = load_policy()
    assert policy_from_mapping(policy_to_mapping(p)) == p
    scav = policy_to_mapping(p)
    scav["tiers"]["scavenger"] = {"max_walltime": "1-00:00:00", "priority_tier": 0,
                                  "preempt_mode": "requeue"}
    scav["preemption"] = {"type": "partition_prio", "mode": "requeue"}
    q = policy_from_mapping(scav)
    assert policy_from_mapping(policy_to_mapping(q)) == q
    assert q.tier("scavenger").preemptable


def test_grace_time_is_a_duration_of_a_preemptable_tier() -> None:
    m = policy_to_mapping(load_policy())
    for text, seconds in (("90s", 90), ("2:00", 120), (5, 300)):
        m["tiers"]["scavenger"]["grace_time"] = text
        p = policy_from_mapping(m)
        assert p.tier("scavenger").grace_time == Duration(seconds)
        assert policy_from_mapping(policy_to_mapping(p)) == p
    for bad in ("soon", -5, "0s", True):
        m["tiers"]["scavenger"]["grace_time"] = bad
        with pytest.raises(PolicyError) as info:
            policy_from_mapping(m)
        (problem,) = info.value.problems
        assert str(problem).startswith("tiers.scavenger.grace_time:") and repr(bad) in str(problem)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30:00", 1800),
        ("1-00:00:00", 86400),
        ("8:00:00", 28800),
        ("2h", 7200),
        ("90m", 5400),
        ("45s", 45),
        ("2d", 172800),
        ("1-12", 129600),
        (30, 1800),  # integers are minutes, as Slurm's MaxTime=30
    ],
)
def test_durations(text, seconds) -> None:
    d = Duration.parse(text)
    assert d.seconds == seconds
    assert Duration.parse(d.slurm()) == d


@pytest.mark.parametrize("bad", ["soon", -5, "UNLIMITED", True, 1.5])
def test_bad_durations(bad) -> None:
    with pytest.raises(ValueError):
        Duration.parse(bad)


def test_shape_checks() -> None:
    m = policy_to_mapping(load_policy())
    m["tiers"]["batch"]["max_cpus_per_job"] = 64
    m["tiers"]["batch"]["max_nodes"] = 5
    with pytest.raises(PolicyError) as info:
        policy_from_mapping(m, shape=ClusterShape(4, 8))
    text = str(info.value)
    assert "tiers.batch.max_cpus_per_job: exceeds the cluster's 32 CPUs" in text
    assert "(got 64)" in text
    assert "tiers.batch.max_nodes: exceeds the cluster's 4 nodes (got 5)" in text
    policy_from_mapping(m)  # without a shape these are fine


def test_warnings() -> None:
    m = {"tiers": {"batch": {"max_walltime": "2-00:00:00", "preempt_mode": "requeue"},
                   "top": {"max_walltime": "1:00:00", "priority_tier": 5,
                           "qos": {"max_jobs_per_user": 1}}},
         "roles": {"default": "batch"}}
    p = policy_from_mapping(m)
    ws = policy_warnings(p, accounting=False)
    assert any("priority/basic" in w and "FIFO" in w for w in ws)
    assert any(w.startswith("tiers.batch.preempt_mode") for w in ws)
    assert any("tiers.top.qos.max_jobs_per_user" in w and "slurmdbd" in w for w in ws)
    assert any("bf_window" in w or "backfill.window" in w for w in ws)
    assert not any("slurmdbd" in w for w in policy_warnings(p, accounting=True))
