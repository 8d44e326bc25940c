"""The recommender's goals: bounds parsed and named, contradictions found."""

from __future__ import annotations

import pytest

from sandfill.policies.document.load import policy_from_yaml
from sandfill.policies.lab.goals import GoalsError, contradictions, read_goals, slack

BASE = policy_from_yaml(
    "name: base\ntiers:\n  short: {max_walltime: '1:00:00', priority_tier: 10}\n"
    "  batch: {max_walltime: 10-00:00:00}\nroles: {default: batch}\n"
    "priority: {type: multifactor, weights: {age: 1000}}\n")


def test_the_issues_goals_read_as_bounds() -> None:
    g = read_goals({"short_limit": "1:00:00", "goals": {
        "short.p95_wait": {"at_most": "10:00"}, "long.mean_wait": {"at_most": "+5%"},
        "all.max_wait": {"at_most": "+0%"}, "utilization": {"at_least": 0.5},
        "tier:short.starved": {"at_most": 0}}}, BASE)
    by = {(lim.metric, lim.op): lim for lim in g.limits}
    assert by["short.p95_wait", "at_most"].value == 600 and not by["short.p95_wait", "at_most"].relative
    assert by["long.mean_wait", "at_most"].relative and by["long.mean_wait", "at_most"].value == pytest.approx(0.05)
    assert by["all.max_wait", "at_most"].resolve({"all.max_wait": 7200.0}) == 7200
    assert g.short_limit == 3600 and g.holdout == 0.25 and g.knobs is None and g.rounds == 2
    assert g.holdout_last is None
    assert read_goals({"holdout_last": "14d", "goals": {"utilization": {"at_least": 0.5}}}, BASE).holdout_last == 14 * 86400
    assert contradictions(g.limits) == []
    lim = by["long.mean_wait", "at_most"]
    assert slack(lim, {"long.mean_wait": 105.0}, {"long.mean_wait": 100.0}) == pytest.approx(0)
    assert slack(lim, {"long.mean_wait": 126.0}, {"long.mean_wait": 100.0}) < 0


@pytest.mark.parametrize(("goals", "named"), [
    ({"goals": {"short.p99_wait": {"at_most": "10m"}}}, "unknown metric 'short.p99_wait'"),
    ({"goals": {"tier:debug.max_wait": {"at_most": "10m"}}}, "unknown metric 'tier:debug.max_wait'"),
    ({"goals": {"short.p95_wait": {"at_most": "soon"}}}, "goals.short.p95_wait.at_most"),
    ({"goals": {"short.p95_wait": {"below": "10m"}}}, "unknown key"),
    ({"goals": {"short.p95_wait": {}}}, "give at_most, at_least or both"),
    ({"goals": {"utilization": {"at_least": "high"}}}, "signed percent"),
    ({"goals": {"utilization": {"at_least": -1}}}, "cannot be negative"),
    ({"goals": {}}, "goals"),
    ({"goals": {"utilization": {"at_least": 0.5}}, "holdout": 1.5}, "holdout"),
    ({"goals": {"utilization": {"at_least": 0.5}}, "holdout": 0.2, "holdout_last": "14d"}, "not both"),
    ({"goals": {"utilization": {"at_least": 0.5}}, "holdout_last": "a fortnight"}, "holdout_last"),
    ({"goals": {"utilization": {"at_least": 0.5}}, "search": {"knobs": {"tiers.x.max_walltime": ["1h"]}}},
     "search.knobs.tiers.x.max_walltime"),
    ({"goals": {"utilization": {"at_least": 0.5}}, "search": {"knobs": {"tiers.short.default_walltime": ["30m", "2h"]}}},
     "search.knobs (tiers.short.default_walltime=02:00:00)"),
])
def test_a_bad_goal_is_named(goals: dict, named: str) -> None:
    with pytest.raises(GoalsError) as exc:
        read_goals(goals, BASE, source="goals.yaml")
    assert "invalid goals file goals.yaml" in str(exc.value)
    assert named in str(exc.value), str(exc.value)


@pytest.mark.parametrize(("goals", "says"), [
    ({"short.p95_wait": {"at_most": "10m", "at_least": "20m"}}, "short.p95_wait at least 00:20:00 contradicts"),
    ({"long.mean_wait": {"at_most": "+5%", "at_least": "+10%"}}, "contradicts long.mean_wait at most +5%"),
    ({"all.max_wait": {"at_most": "1h"}, "short.max_wait": {"at_least": "2h"}}, "short jobs are among all jobs"),
    ({"utilization": {"at_least": 1.2}}, "cannot exceed 100 %"),
    ({"short.mean_wait": {"at_most": "-150%"}}, "below zero"),
])
def test_contradictory_goals_are_found_before_any_simulation(goals: dict, says: str) -> None:
    found = contradictions(read_goals({"goals": goals}, BASE).limits)
    assert any(says in c for c in found), found


def test_relative_goals_contradict_once_the_current_figures_are_known() -> None:
    g = read_goals({"goals": {"short.max_wait": {"at_least": "+0%"}, "all.max_wait": {"at_most": "30m"}}}, BASE)
    assert contradictions(g.limits) == []  # not knowable yet
    assert contradictions(g.limits, {"short.max_wait": 600.0}) == []
    found = contradictions(g.limits, {"short.max_wait": 7200.0})
    assert found and "short jobs are among all jobs" in found[0]
