"""The sweep spec: knobs and ranges validated against the base policy before anything runs."""

from __future__ import annotations

import pytest

from sandfill.policies.document.load import policy_from_yaml
from sandfill.policies.lab.spec import SpecError, expand, read_spec

BASE = policy_from_yaml(
    "name: base\ntiers:\n  short: {max_walltime: '1:00:00', default_walltime: '30:00', priority_tier: 10}\n"
    "  batch: {max_walltime: 10-00:00:00}\nroles: {default: batch}\n"
    "priority: {type: multifactor, weights: {age: 1000}}\n")


def errors(spec: dict) -> str:
    with pytest.raises(SpecError) as exc:
        knobs, loads = read_spec(spec, BASE, source="spec.yaml")
        expand(knobs, loads, BASE, source="spec.yaml")
    return str(exc.value)


def test_a_grid_of_knobs_and_loads_expands_to_validated_variants() -> None:
    knobs, loads = read_spec({
        "knobs": {"tiers.short.max_walltime": ["45:00", "2h"],
                  "priority.weights.age": {"from": 0, "to": 2000, "steps": 3},
                  "scheduler.backfill.interval": {"from": 30, "to": 90, "step": 30},
                  "tiers.batch.qos.max_jobs_per_user": [None, 4]},
        "loads": [1.0, 1.5]}, BASE)
    variants = expand(knobs, loads, BASE)
    assert len(variants) == 2 * 3 * 3 * 2 * 2
    assert len({v.name for v in variants}) == len(variants)
    assert len({v.policy.name for v in variants}) == len(variants) // 2  # one policy, two loads
    v = next(v for v in variants if dict(v.settings) == {
        "tiers.short.max_walltime": "02:00:00", "priority.weights.age": 1000,
        "scheduler.backfill.interval": 90, "tiers.batch.qos.max_jobs_per_user": 4} and v.load == 1.5)
    assert v.policy.tier("short").max_walltime.seconds == 7200
    assert v.policy.priority.weights.age == 1000
    assert v.policy.scheduler.backfill.interval == 90
    assert v.policy.tier("batch").qos.max_jobs_per_user == 4
    assert v.policy.tier("short").default_walltime.seconds == 1800  # untouched keys stay


@pytest.mark.parametrize(("spec", "named"), [
    ({"knobs": {"tiers.short.max_walltme": ["1h"]}}, "'tiers.short.max_walltme'"),
    ({"knobs": {"tiers.debug.max_walltime": ["1h"]}}, "the base policy's tiers are short, batch"),
    ({"knobs": {"scheduler.backfill.bf_interval": [30]}}, "unknown knob 'scheduler.backfill.bf_interval'"),
    ({"knobs": {"priority.weights.age": {"from": 100, "to": 0, "steps": 3}}}, "range runs backwards"),
    ({"knobs": {"priority.weights.age": {"from": 0, "to": 10, "steps": 3, "step": 5}}}, "exactly one of steps"),
    ({"knobs": {"priority.weights.age": {"from": 0, "to": 10}}}, "exactly one of steps"),
    ({"knobs": {"priority.weights.age": {"from": 0, "to": 10, "step": 0}}}, "step must be positive"),
    ({"knobs": {"tiers.short.max_walltime": ["soon"]}}, "'soon' is not a duration"),
    ({"knobs": {"priority.weights.age": [1.5]}}, "1.5 is not a whole number"),
    ({"knobs": {"scheduler.backfill.continue": {"from": 0, "to": 1, "steps": 2}}}, "take a list"),
    ({"knobs": {"priority.weights.age": [10, 10]}}, "lists a value twice"),
    ({"knobs": {}}, "knobs"),
    ({"knobs": {"priority.weights.age": {"from": 0, "to": 9, "stepz": 3}}},
     "knobs.priority.weights.age: bad range: stepz: unknown key; did you mean 'step'?"),
    ({"knobs": {"priority.weights.age": {"to": 9, "steps": 3}}}, "bad range: from: is required"),
    ({"knobs": {"priority.weights.age": 5}}, "takes a list of values or a range"),
    ({"knobs": {"priority.weights.age": []}}, "takes a list of values or a range"),
    ({"knobs": {"priority.weights.age": [10]}, "loads": [0]}, "loads.0"),
    ({"knobs": {"priority.weights.age": [10]}, "lodas": [1]}, "did you mean 'loads'"),
])
def test_a_bad_spec_names_the_knob_and_value(spec: dict, named: str) -> None:
    msg = errors(spec)
    assert "invalid sweep spec spec.yaml" in msg
    assert named in msg, msg


def test_a_combination_the_policy_file_refuses_is_named_before_anything_runs() -> None:
    msg = errors({"knobs": {"tiers.short.max_walltime": ["20:00", "1h"],
                            "priority.weights.age": [0, -1]}})
    assert "tiers.short.max_walltime=00:20:00" in msg  # below default_walltime 30:00
    assert "default_walltime" in msg and "must not exceed" in msg
    assert "priority.weights.age=-1" in msg


def test_a_grid_too_large_is_refused() -> None:
    msg = errors({"knobs": {"priority.weights.age": {"from": 0, "to": 99, "steps": 100},
                            "priority.weights.job_size": {"from": 0, "to": 99, "steps": 100}}})
    assert "10000 variants (at most 5000)" in msg
