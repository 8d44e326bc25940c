"""The sweep's table, policy files and Pareto front."""

from __future__ import annotations

import csv

from sandfill.cli import main
from sandfill.policies.document.load import load_policy, policy_from_yaml
from sandfill.policies.lab.results import pareto, policy_yaml, write_results
from sandfill.policies.lab.spec import expand, read_spec

BASE = policy_from_yaml(
    "name: base\ntiers:\n  short: {max_walltime: '1:00:00', priority_tier: 10}\n"
    "  batch: {max_walltime: 10-00:00:00}\nroles: {default: batch}\n"
    "priority: {type: multifactor, weights: {age: 1000}}\n")


def row(load: float, p95: float, mean: float, util: float) -> dict:
    return {"load": load, "short.p95_wait": p95, "long.mean_wait": mean, "utilization": util}


def test_the_front_keeps_what_no_variant_of_the_same_load_beats() -> None:
    rows = [row(1, 10, 10, 0.5),   # 0: front
            row(1, 20, 20, 0.5),   # 1: beaten by 0 in both waits
            row(1, 5, 30, 0.5),    # 2: front (best short p95)
            row(1, 10, 10, 0.6),   # 3: front, beats 0 on utilization
            row(2, 20, 20, 0.5)]   # 4: front of load 2 (alone there)
    assert pareto(rows) == {2, 3, 4}
    assert pareto([row(1, 1, 1, 0.5), row(1, 1, 1, 0.5)]) == {0, 1}  # ties both stay


def test_the_table_has_one_row_per_variant_and_each_policy_file_checks(tmp_path, capsys) -> None:
    knobs, _ = read_spec({"knobs": {"tiers.short.max_walltime": ["30:00", "2h"]}}, BASE)
    vs = expand(knobs, [1.0, 1.5], BASE)
    figures = {v.name: {"short.p95_wait": 60.0 * i, "long.mean_wait": 100.0 - i, "utilization": 0.5,
                        "worker": "w"} for i, v in enumerate(vs)}
    table = tmp_path / "out" / "results.csv"
    table.parent.mkdir()
    rows = write_results(vs, figures, table)
    with open(table, newline="") as fh:
        got = list(csv.DictReader(fh))
    assert [r["variant"] for r in got] == [v.name for v in vs]
    assert got[0]["tiers.short.max_walltime"] == "00:30:00" and got[0]["pareto"] == "True"
    assert {r["pareto"] for r in rows} == {True}  # p95 up, mean down: nobody dominates
    files = sorted((tmp_path / "out" / "results-policies").iterdir())
    assert [f.name for f in files] == ["base-v0001.yaml", "base-v0002.yaml"]
    assert got[-1]["policy_file"] == "results-policies/base-v0002.yaml"
    for f in files:
        assert main(["policy", "check", str(f)]) == 0
        assert load_policy(f) == next(v.policy for v in vs if v.policy.name == f.stem)
    assert "OK" in capsys.readouterr().out


def test_policy_yaml_round_trips_with_its_header() -> None:
    text = policy_yaml(BASE, ["made by a test"])
    assert text.startswith("# made by a test\nname: base\n")
    assert policy_from_yaml(text) == BASE


def test_a_failed_variant_is_never_on_the_front() -> None:
    rows = [row(1, 10, 10, 0.5), {"load": 1, "error": "RuntimeError: boom"}]
    assert pareto(rows) == {0}
