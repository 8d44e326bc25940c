"""``sandfill.slurm.sbatch`` on output recorded from Slurm 22.05.8 (Debian 12)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandfill.slurm.sbatch import parse_job_id, parse_test_only, submit_argv, test_only_argv
from sandfill.units import parse_timestamp

DATA = Path(__file__).parent / "data"


def test_test_only_answer() -> None:
    ans = parse_test_only((DATA / "sbatch_test_only.txt").read_text())
    assert ans is not None
    assert ans.cpus == 2 and ans.nodes == "node1" and ans.partition == "burst"
    assert ans.start_time == parse_timestamp("2026-11-21T08:54:29")
    assert parse_test_only("sbatch: error: Batch job submission failed") is None


def test_submit_and_test_only_argv() -> None:
    assert submit_argv(["-p", "batch"]) == ["sbatch", "--parsable", "-p", "batch"]
    assert test_only_argv() == ["sbatch", "--test-only"]


def test_parsable_job_id() -> None:
    assert parse_job_id("42\n") == "42" and parse_job_id("42;sandfill\n") == "42"
    with pytest.raises(ValueError, match="not a Slurm job id"):
        parse_job_id("sbatch: error: Batch job submission failed")
