"""``sandfill policy simulate`` through the root CLI."""

from __future__ import annotations

import html
import re
from pathlib import Path

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


def test_default_policy_on_atlas_says_why_jobs_are_rejected(tmp_path, capsys, traces_dir) -> None:
    """The admin's first try: the 4-node default policy on the 1,152-node Atlas trace. The
    CLI opens with one count (skipped + rejected + simulated = read) and its reasons, the
    same as the report's, and a warning saying how to make the policy and machine fit."""
    report = tmp_path / "r.html"
    rc = main(["policy", "simulate", default_policy_path(), "--trace",
               str(traces_dir / "LLNL-Atlas-2006-2.1-cln.first8000.swf.gz"), "--limit", "1500",
               "--report", str(report)])
    assert rc == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    read, skipped, rejected, simulated = (int(n.replace(",", "")) for n in re.match(
        r"([\d,]+) jobs in \S+: ([\d,]+) skipped, ([\d,]+) rejected by policy default, "
        r"([\d,]+) simulated\.$", lines[0]).groups())
    assert read == skipped + rejected + simulated and rejected > 0 and simulated + rejected == 1500
    reasons = [ln for ln in lines[1:] if ln.startswith("  rejected")]
    assert sum(int(ln.split(":")[0].split()[-1].replace(",", "")) for ln in reasons) == rejected
    assert any("ask more nodes than any tier allows (max_nodes 4)" in ln for ln in reasons)
    assert any(ln.startswith("  skipped") and "never ran" in ln for ln in lines[1:])
    warning = next(ln for ln in lines if ln.startswith("warning:"))
    assert "does not fit this machine" in warning and "--nodes 4 --cpus-per-node 8" in warning
    assert lines.index(warning) < next(i for i, ln in enumerate(lines) if ln.startswith("class"))
    assert "tier:interactive" not in out  # no job went there: the class is left out
    assert "0.0%" not in out
    assert html.escape(lines[0]) in report.read_text()  # the report says the same


def test_vs_table_says_which_change_is_better(tmp_path, capsys, traces_dir) -> None:
    wide = tmp_path / "wide.yaml"
    text = Path(default_policy_path()).read_text()
    text = re.sub(r"max_nodes: 4\b", "max_nodes: 1152", text.replace("name: default", "name: wide"))
    wide.write_text(text.replace("max_cpus_per_job: 32", "max_cpus_per_job: 9216"))
    rc = main(["policy", "simulate", default_policy_path(), "--vs", str(wide), "--trace",
               str(traces_dir / "LLNL-Atlas-2006-2.1-cln.first8000.swf.gz"), "--limit", "1500"])
    assert rc == 0
    util = next(ln for ln in capsys.readouterr().out.splitlines() if "utilization" in ln)
    assert util.rstrip().endswith("(better)"), util
