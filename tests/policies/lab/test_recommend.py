"""The recommender: grid refinement from the current policy, checked on held-out later jobs."""

from __future__ import annotations

import pytest

from sandfill.policies.document.load import policy_from_yaml
from sandfill.policies.lab.goals import read_goals
from sandfill.policies.lab.recommend import default_knobs, recommend, refine, split
from sandfill.policies.lab.run import SimSettings
from sandfill.policies.lab.spec import resolve_knob
from sandfill.policies.sim.simulator import SimConfig
from sandfill.policies.sim.workload import Job, Workload

# both tiers equal: short jobs queue with the long ones; a priority knob can lift them
FLAT = policy_from_yaml(
    "name: flat\ntiers:\n  short: {max_walltime: '1:00:00'}\n  batch: {max_walltime: 10-00:00:00}\n"
    "roles: {default: batch}\npriority: {type: multifactor, weights: {age: 1000}}\n"
    "scheduler: {backfill: {window: 10-00:00:00}}\n")
SEARCH = {"knobs": {"tiers.short.priority_tier": [1, 10], "tiers.short.priority_job_factor": [1, 100],
                    "priority.weights.partition": {"from": 0, "to": 4000, "steps": 3}}}


def goals(g: dict, **extra):
    return read_goals({"holdout": 0.5, "goals": g, "search": SEARCH, **extra}, FLAT)


@pytest.fixture(scope="module")
def busy(atlas) -> tuple[Workload, SimSettings]:
    return atlas.head(1500).scaled(1.5), SimSettings(SimConfig(nodes=atlas.nodes, cpus_per_node=atlas.cpus_per_node))


def test_goals_met_on_the_held_out_part(busy) -> None:
    wl, settings = busy
    r = recommend(FLAT, goals({"short.p95_wait": {"at_most": "-30%"}, "long.mean_wait": {"at_most": "+10%"}}),
                  wl, settings, workers=0)
    assert r.met and not r.contradiction
    assert r.best is not None and r.current is not None and r.best.hold is not None
    assert r.best.settings, "a change was needed"
    assert r.best.hold["short.p95_wait"] <= 0.7 * r.current.hold["short.p95_wait"]
    assert r.best.hold["long.mean_wait"] <= 1.1 * r.current.hold["long.mean_wait"]
    assert r.best.policy.name == "flat-recommended"
    assert r.tried > 12 - 1  # round 1's grid (less the current policy) and a refinement
    text = r.summary()
    assert "goals met on both parts: yes" in text and "held out: the jobs submitted after" in text


def test_nothing_meets_the_goals_and_the_closest_is_given(busy) -> None:
    wl, settings = busy
    r = recommend(FLAT, goals({"short.p95_wait": {"at_most": "0:01"}, "all.max_wait": {"at_most": "-90%"}}),
                  wl, settings, workers=0)
    assert not r.met and not r.contradiction and r.best is not None
    assert "nothing tried meets every goal" in r.summary()
    assert "NO" in r.summary()


def test_contradictory_goals_run_nothing(busy, monkeypatch) -> None:
    import sandfill.policies.lab.recommend as rec

    monkeypatch.setattr(rec, "run_variants", lambda *a, **k: pytest.fail("simulated"))
    wl, settings = busy
    r = recommend(FLAT, goals({"short.p95_wait": {"at_most": "10m", "at_least": "1h"}}), wl, settings, workers=0)
    assert r.contradiction and r.best is None
    assert r.summary().startswith("the goals contradict each other:")


def test_the_split_holds_out_the_later_jobs() -> None:
    wl = Workload(tuple(Job(i, i * 100, 10, 1, "u") for i in range(40)), nodes=1, cpus_per_node=1)
    early, late, said = split(wl, 0.25)
    assert [j.id for j in early.jobs] == list(range(30)) and [j.id for j in late.jobs] == list(range(30, 40))
    assert "10 of 40" in said
    with pytest.raises(ValueError, match="too few"):
        split(wl.head(5), 0.25)
    with pytest.raises(ValueError, match="each part needs 10"):
        split(wl, 0.05)
    early, late, _ = split(wl, 0.25, last=1500)  # the last 1500 s: submits 2500..3900 s
    assert [j.id for j in late.jobs] == list(range(25, 40)) and len(early.jobs) == 25
    with pytest.raises(ValueError, match="holdout_last 00:05:00 leaves 37 and 3 jobs"):
        split(wl, 0.25, last=300)


def test_refinement_narrows_to_the_best_values_neighbours() -> None:
    from sandfill.policies.lab.spec import RangeDoc

    k = resolve_knob("priority.weights.age", RangeDoc.model_validate({"from": 0, "to": 4000, "steps": 5}), FLAT)
    assert refine(k, 2000).values == (1000, 1500, 2000, 2500, 3000)
    assert refine(k, 0).values == (0, 250, 500, 750, 1000)
    assert refine(k, 1234).values == (1000, 1250, 1500, 1750, 2000)  # the current value, off grid
    b = resolve_knob("scheduler.backfill.continue", [True, False], FLAT)
    assert refine(b, False).values == (False,)


def test_the_default_space_is_around_the_current_policy() -> None:
    paths = {k.path: k.values for k in default_knobs(FLAT)}
    assert paths == {"tiers.short.max_walltime": (1800, 4500, 7200),
                     "priority.weights.age": (0, 1000, 2000),
                     "priority.weights.partition": (0, 1000, 2000)}
