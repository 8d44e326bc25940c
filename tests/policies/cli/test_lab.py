"""``sandfill policy sweep`` and ``sandfill policy recommend`` through the root CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from sandfill.cli import main

ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())  # the checkout
ATLAS = ROOT / "policies" / "traces" / "LLNL-Atlas-2006-2.1-cln.first8000.swf.gz"
BASE = ("name: atlas\ntiers:\n  short: {max_walltime: '1:00:00', priority_tier: 10, priority_job_factor: 100}\n"
        "  batch: {max_walltime: 10-00:00:00, priority_job_factor: 10}\nroles: {default: batch}\n"
        "priority: {type: multifactor, weights: {age: 1000, partition: 1000}}\n"
        "scheduler: {backfill: {window: 10-00:00:00}}\n")


@pytest.fixture
def base(tmp_path: Path) -> Path:
    p = tmp_path / "atlas.yaml"
    p.write_text(BASE)
    return p


def test_sweep_on_a_local_cluster_writes_the_table_policies_and_report(tmp_path, base, capsys) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("knobs:\n  tiers.short.max_walltime: ['30:00', '2:00:00']\n"
                    "  priority.weights.age: {from: 0, to: 4000, steps: 3}\nloads: [1.5]\n")
    out = tmp_path / "res" / "results.csv"
    out.parent.mkdir()
    report = tmp_path / "report.html"
    rc = main(["policy", "sweep", str(base), "--spec", str(spec), "--trace", str(ATLAS),
               "--limit", "800", "--workers", "2", "--out", str(out), "--report", str(report)])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert "6 variants of atlas on 800 jobs (2 local workers)" in cap.err
    assert "6/6 variants" in cap.err  # the progress bar reached the end
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(r["variant"] for r in rows) == [f"atlas-v{i:04d}" for i in range(1, 7)]
    assert {r["load"] for r in rows} == {"1.5"}
    assert any(r["pareto"] == "True" for r in rows)
    for r in rows:
        assert (out.parent / r["policy_file"]).is_file()
    html = report.read_text()
    assert "res/results-policies/atlas-v0001.yaml" in html  # links relative to the report
    assert "Pareto front" in html


def test_sweep_loads_on_the_command_line_replace_the_specs(tmp_path, base, capsys) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("knobs: {scheduler.backfill.interval: [30, 60]}\nloads: [3]\n")
    out = tmp_path / "r.csv"
    assert main(["policy", "sweep", str(base), "--spec", str(spec), "--trace", str(ATLAS),
                 "--limit", "300", "--workers", "0", "--load", "1", "1.2", "--out", str(out)]) == 0
    with open(out, newline="") as fh:
        assert sorted((r["policy"], r["load"]) for r in csv.DictReader(fh)) == [
            ("atlas-v0001", "1"), ("atlas-v0001", "1.2"), ("atlas-v0002", "1"), ("atlas-v0002", "1.2")]


@pytest.mark.parametrize(("spec", "named"), [
    ("knobs: {tiers.short.max_walltime: ['1h'], scheduler.backfill.bf_window: [60]}\n",
     "unknown knob 'scheduler.backfill.bf_window'"),
    ("knobs: {priority.weights.age: {from: 10, to: 1, steps: 2}}\n", "knobs.priority.weights.age: range runs backwards"),
    ("knobs: [1, 2]\n", "knobs"),
    ("knobs: {priority.weights.age: [1]\n", "not valid YAML"),
])
def test_a_bad_spec_is_refused_before_any_work(tmp_path, base, capsys, monkeypatch, spec, named) -> None:
    import sandfill.policies.cli.simulate as simulate_cli
    import sandfill.policies.lab.run as run

    def no_work(*a, **k):
        raise AssertionError("work started")

    monkeypatch.setattr(run, "run_variants", no_work)
    monkeypatch.setattr(simulate_cli, "load_workload", no_work)
    f = tmp_path / "spec.yaml"
    f.write_text(spec)
    out = tmp_path / "r.csv"
    rc = main(["policy", "sweep", str(base), "--spec", str(f), "--trace", str(ATLAS), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc in (1, 2)
    assert named in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["atlas.yaml", "spec.yaml"]  # nothing written


@pytest.mark.parametrize(("extra", "named"), [
    (["--load", "0"], "--load must be positive and at most 100 (got 0)"),
    (["--workers", "-1"], "--workers must be 0 or more (got -1)"),
    (["--out", "r.parquet"], "Parquet needs pyarrow"),
    (["--out", "/nonexistent/r.csv"], "cannot write /nonexistent/r.csv: /nonexistent is not a writable folder"),
    (["--report", "/nonexistent/r.html"], "cannot write /nonexistent/r.html"),
])
def test_bad_sweep_options_name_the_value(tmp_path, base, capsys, extra, named) -> None:
    if "r.parquet" in extra:
        from sandfill.policies.lab.results import parquet_ok

        if parquet_ok():
            pytest.skip("pyarrow is installed")
    f = tmp_path / "spec.yaml"
    f.write_text("knobs: {priority.weights.age: [1]}\n")
    rc = main(["policy", "sweep", str(base), "--spec", str(f), "--trace", str(ATLAS), *extra])
    assert rc == 2
    assert named in capsys.readouterr().err


FLAT = ("name: flat\ntiers:\n  short: {max_walltime: '1:00:00'}\n  batch: {max_walltime: 10-00:00:00}\n"
        "roles: {default: batch}\npriority: {type: multifactor, weights: {age: 1000}}\n"
        "scheduler: {backfill: {window: 10-00:00:00}}\n")
SEARCH = ("holdout: 0.5\nsearch:\n  knobs:\n    tiers.short.priority_tier: [1, 10]\n"
          "    tiers.short.priority_job_factor: [1, 100]\n"
          "    priority.weights.partition: {from: 0, to: 4000, steps: 3}\n")


def recommend(tmp_path: Path, goals: str, *extra: str) -> int:
    base = tmp_path / "flat.yaml"
    base.write_text(FLAT)
    g = tmp_path / "goals.yaml"
    g.write_text(goals)
    return main(["policy", "recommend", str(base), "--goals", str(g), "--trace", str(ATLAS),
                 "--limit", "1500", "--load", "1.5", *extra])


def test_recommend_prints_a_policy_that_check_accepts_with_its_figures(tmp_path, capsys) -> None:
    out = tmp_path / "best.yaml"
    rc = recommend(tmp_path, SEARCH + "goals:\n  short.p95_wait: {at_most: '-30%'}\n"
                   "  long.mean_wait: {at_most: '+10%'}\n", "--workers", "2", "--out", str(out))
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert "goals met on both parts: yes" in cap.err
    assert "short.p95_wait at most -30%" in cap.err and "held-out: current" in cap.err
    printed = tmp_path / "printed.yaml"
    printed.write_text(cap.out)
    assert out.read_text() == cap.out
    assert cap.out.startswith("# recommended by `sandfill policy recommend`")
    assert main(["policy", "check", str(printed)]) == 0
    assert "OK (policy 'flat-recommended'" in capsys.readouterr().out


def test_recommend_says_when_nothing_meets_the_goals(tmp_path, capsys) -> None:
    rc = recommend(tmp_path, SEARCH + "goals:\n  short.p95_wait: {at_most: '0:01'}\n", "--workers", "0")
    cap = capsys.readouterr()
    assert rc == 3
    assert "nothing tried meets every goal on the held-out part: printing the closest policy" in cap.err
    (tmp_path / "closest.yaml").write_text(cap.out)
    assert main(["policy", "check", str(tmp_path / "closest.yaml")]) == 0


def test_recommend_says_when_the_goals_contradict_each_other(tmp_path, capsys) -> None:
    rc = recommend(tmp_path, "goals:\n  all.max_wait: {at_most: 1h}\n  short.max_wait: {at_least: 2h}\n",
                   "--workers", "0")
    cap = capsys.readouterr()
    assert rc == 1
    assert "the goals contradict each other" in cap.err and "short jobs are among all jobs" in cap.err
    assert cap.out == ""  # no policy printed


def test_recommend_names_a_bad_goal(tmp_path, capsys) -> None:
    rc = recommend(tmp_path, "goals:\n  short.p95_wiat: {at_most: 10m}\n", "--workers", "0")
    assert rc == 1
    assert "unknown metric 'short.p95_wiat'" in capsys.readouterr().err


def test_recommend_needs_enough_history_to_hold_part_out(tmp_path, capsys) -> None:
    rc = recommend(tmp_path, "goals:\n  short.p95_wait: {at_most: 10m}\n", "--workers", "0",
                   "--limit", "12")  # the last --limit wins
    assert rc == 2
    assert "the history has 12 jobs: too few to hold part of it out" in capsys.readouterr().err


def test_sweep_with_an_unreachable_scheduler_says_so(tmp_path, base, capsys, monkeypatch) -> None:
    import socket

    import sandfill.policies.lab.run as run

    monkeypatch.setattr(run, "CONNECT_TIMEOUT", "1s")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    f = tmp_path / "spec.yaml"
    f.write_text("knobs: {priority.weights.age: [1, 2]}\nloads: [1, 1.5, 1]\n")
    rc = main(["policy", "sweep", str(base), "--spec", str(f), "--trace", str(ATLAS), "--limit", "50"])
    assert rc == 1 and "loads: lists 1 more than once" in capsys.readouterr().err
    f.write_text("knobs: {priority.weights.age: [1, 2]}\n")
    out = tmp_path / "r.csv"
    rc = main(["policy", "sweep", str(base), "--spec", str(f), "--trace", str(ATLAS), "--limit", "50",
               "--scheduler", f"tcp://127.0.0.1:{port}", "--out", str(out)])
    assert rc == 2
    assert f"cannot reach the Dask scheduler 'tcp://127.0.0.1:{port}'" in capsys.readouterr().err
    assert not out.exists()


def test_sweep_keeps_every_row_when_a_variant_fails(tmp_path, base, capsys, monkeypatch) -> None:
    import sandfill.policies.lab.run as run

    real = run.evaluate

    def flaky(policy, *a):
        if policy.priority.weights.age == 2:
            raise RuntimeError("simulator fell over")
        return real(policy, *a)

    monkeypatch.setattr(run, "evaluate", flaky)
    f = tmp_path / "spec.yaml"
    f.write_text("knobs: {priority.weights.age: [1, 2, 3]}\n")
    out = tmp_path / "r.csv"
    rc = main(["policy", "sweep", str(base), "--spec", str(f), "--trace", str(ATLAS), "--limit", "200",
               "--workers", "0", "--out", str(out), "--report", str(tmp_path / "r.html")])
    assert rc == 1
    assert "variant atlas-v0002 failed: RuntimeError: simulator fell over" in capsys.readouterr().err
    with open(out, newline="") as fh:
        rows = {r["variant"]: r for r in csv.DictReader(fh)}
    assert sorted(rows) == ["atlas-v0001", "atlas-v0002", "atlas-v0003"]
    assert rows["atlas-v0002"]["error"] and rows["atlas-v0002"]["pareto"] == "False"
    assert rows["atlas-v0001"]["short.p95_wait"] != ""
    assert "Failed variants" in (tmp_path / "r.html").read_text()


def test_sweep_on_an_existing_scheduler(tmp_path, base, capsys) -> None:
    import logging

    from distributed import LocalCluster

    f = tmp_path / "spec.yaml"
    f.write_text("knobs: {priority.weights.age: [0, 1000, 4000]}\n")
    out = tmp_path / "r.csv"
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.CRITICAL) as cluster:
        workers = set(cluster.scheduler_info["workers"])
        rc = main(["policy", "sweep", str(base), "--spec", str(f), "--trace", str(ATLAS), "--limit", "300",
                   "--scheduler", cluster.scheduler_address, "--out", str(out)])
        cap = capsys.readouterr()
        assert rc == 0, cap.err
        assert f"(scheduler {cluster.scheduler_address})" in cap.err
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 and {r["worker"] for r in rows} <= workers  # the site's workers ran them


def test_an_interrupted_sweep_keeps_its_rows_and_the_same_command_computes_only_the_rest(
        tmp_path, base, capsys, monkeypatch) -> None:
    import sandfill.policies.lab.run as run

    real, calls = run.evaluate, []

    def interrupted_third(policy, *a):
        calls.append(policy.name)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(policy, *a)

    monkeypatch.setattr(run, "evaluate", interrupted_third)
    f = tmp_path / "spec.yaml"
    f.write_text("knobs: {priority.weights.age: [1, 2, 3, 4]}\n")
    out = tmp_path / "r.csv"
    argv = ["policy", "sweep", str(base), "--spec", str(f), "--trace", str(ATLAS), "--limit", "200",
            "--workers", "0", "--out", str(out)]
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert "interrupted: 2 of 4 variants are done and kept in" in err and not out.exists()
    journal = Path(str(out) + ".partial.jsonl")
    assert len(journal.read_text().splitlines()) == 2

    calls.clear()
    monkeypatch.setattr(run, "evaluate", lambda policy, *a: calls.append(policy.name) or real(policy, *a))
    assert main(argv) == 0
    assert "resuming: 2 of 4 variants already done" in capsys.readouterr().err
    assert calls == ["atlas-v0003", "atlas-v0004"]  # only the rest
    with open(out, newline="") as fh:
        rows = {r["variant"]: r for r in csv.DictReader(fh)}
    assert sorted(rows) == [f"atlas-v000{i}" for i in range(1, 5)] and rows["atlas-v0001"]["short.p95_wait"]
    assert not journal.exists()  # a finished sweep leaves no journal

    # a line written for another sweep (another key) is not reused
    journal.write_text(json.dumps({"variant": "atlas-v0001", "key": "0" * 16, "row": {"utilization": 9}}) + "\n")
    calls.clear()
    assert main(argv) == 0 and len(calls) == 4
