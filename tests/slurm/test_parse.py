"""Parsers against output captured from this Slurm (22.05.8, Debian 12)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandfill.slurm.sacct import parse_sacct_final
from sandfill.slurm.sbatch import parse_test_only
from sandfill.slurm.sdiag import parse_sdiag_rpcs, queue_rpcs
from sandfill.slurm.sinfo import parse_sinfo_nodes
from sandfill.slurm.squeue import parse_squeue
from sandfill.units import format_duration, parse_slurm_time, parse_timestamp

DATA = Path(__file__).parent / "data"


def test_squeue_real_output_pending_running_completed() -> None:
    jobs = parse_squeue((DATA / "squeue_mixed.txt").read_text())
    assert set(jobs) == {"1", "2", "3", "4", "5", "6", "7"}
    big = jobs["6"]
    assert big.pending and big.reason == "Resources" and big.nodes is None
    assert big.start_time == parse_timestamp("2026-11-21T09:04:22")  # the estimate
    assert big.time_limit == 3600 and big.partition == "batch" and big.qos == "normal"
    rock = jobs["2"]
    assert rock.reason == "Priority" and rock.name == "rock|1"  # separator inside the name
    assert rock.time_limit == 30 * 60
    run = jobs["7"]
    assert run.running and run.reason is None and run.nodes == "node1" and run.exec_host == "node1"
    assert run.end_time - run.start_time == 600
    assert run.time_left(now=run.start_time + 100) == 500
    done = jobs["1"]
    assert done.ended and done.nodes == "node[1-2]"
    assert not done.pending and not done.running


def test_squeue_rejects_garbled_line() -> None:
    with pytest.raises(ValueError, match="unexpected squeue line"):
        parse_squeue("12|RUNNING|None\n")


def test_test_only_answer() -> None:
    ans = parse_test_only((DATA / "sbatch_test_only.txt").read_text())
    assert ans is not None
    assert ans.cpus == 2 and ans.nodes == "node1" and ans.partition == "burst"
    assert ans.start_time == parse_timestamp("2026-11-21T08:54:29")
    assert parse_test_only("sbatch: error: Batch job submission failed") is None


def test_sdiag_rpc_counts() -> None:
    counts = parse_sdiag_rpcs((DATA / "sdiag.txt").read_text())
    assert counts["REQUEST_SUBMIT_BATCH_JOB"] >= 6
    assert "REQUEST_JOB_INFO" in counts
    # user section is not mixed in
    assert "root" not in counts
    assert queue_rpcs(counts) == counts.get("REQUEST_JOB_INFO", 0) + counts.get("REQUEST_JOB_INFO_SINGLE", 0)


def test_sacct_final() -> None:
    rows = parse_sacct_final((DATA / "sacct_final.txt").read_text())
    assert rows["1"].state == "COMPLETED" and rows["1"].ended and rows["1"].exit_code == "0:0"
    assert rows["2"].state == "PENDING" and rows["2"].nodes is None and rows["2"].start_time is None


def test_sinfo_nodes() -> None:
    rows = parse_sinfo_nodes((DATA / "sinfo_nodes.txt").read_text())
    node1 = [r for r in rows if r["node"] == "node1" and r["partition"] == "batch"][0]
    assert (node1["alloc"], node1["idle"], node1["total"]) == (1, 7, 8)


@pytest.mark.parametrize(
    "text,seconds",
    [("30:00", 1800), ("1:00:00", 3600), ("2-00:00:00", 172800), ("1-02", 93600), ("5", 300), ("UNLIMITED", None), ("00:00:05", 5)],
)
def test_durations(text: str, seconds: int | None) -> None:
    assert parse_slurm_time(text) == seconds
    if seconds is not None:
        assert parse_slurm_time(format_duration(seconds)) == seconds
