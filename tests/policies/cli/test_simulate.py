"""``sandfill policy simulate`` through the root CLI."""

from __future__ import annotations

from sandfill.cli import main
from sandfill.policies.document.load import default_policy_path


def test_simulate_trace_vs_and_report(tmp_path, capsys, traces_dir) -> None:
    single = tmp_path / "single.yaml"
    single.write_text(
        "name: single\ntiers: {batch: {max_walltime: 10-00:00:00}}\nroles: {default: batch}\n"
        "priority: {type: multifactor, weights: {age: 1000}}\n"
    )
    short = tmp_path / "short.yaml"
    short.write_text(
        "name: short\ntiers:\n  debug: {max_walltime: '30:00', priority_tier: 10}\n"
        "  batch: {max_walltime: 10-00:00:00}\nroles: {default: batch}\n"
        "priority: {type: multifactor, weights: {age: 1000}}\n"
    )
    report = tmp_path / "r.html"
    rc = main(["policy", "simulate", str(single), "--vs", str(short), "--trace", str(traces_dir / "LLNL-Atlas-2006-2.1-cln.first8000.swf.gz"),
               "--limit", "1500", "--load", "2", "--report", str(report), "--backfill", "easy"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "class" in out and "change" in out and "tier:debug" in out
    assert "Parallel Workloads Archive" in out
    assert report.exists()


def test_simulate_needs_nodes_for_sacct(tmp_path, capsys) -> None:
    f = tmp_path / "s.txt"
    f.write_text("JobID|User|Partition|Submit|Start|End|ElapsedRaw|TimelimitRaw|NCPUS|NNodes\n"
                 "1|a|batch|2024-01-01T00:00:00|2024-01-01T00:00:05|2024-01-01T00:01:05|60|10|4|1\n")
    assert main(["policy", "simulate", default_policy_path(), "--sacct-file", str(f)]) == 2
    assert "--nodes" in capsys.readouterr().err
    assert main(["policy", "simulate", default_policy_path(), "--sacct-file", str(f),
                 "--nodes", "4", "--cpus-per-node", "8"]) == 0
