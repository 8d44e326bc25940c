"""``sandfill.slurm.sacct`` on output recorded from Slurm 22.05.8 (Debian 12)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandfill.slurm.sacct import final_argv, parse_ids, parse_sacct_final, user_ids_argv

DATA = Path(__file__).parent / "data"


def test_sacct_final() -> None:
    rows = parse_sacct_final((DATA / "sacct_final.txt").read_text())
    assert rows["1"].state == "COMPLETED" and rows["1"].ended and rows["1"].exit_code == "0:0"
    assert rows["2"].state == "PENDING" and rows["2"].nodes is None and rows["2"].start_time is None


def test_final_argv() -> None:
    argv = final_argv(["7", "3"])
    assert argv[:6] == ["sacct", "-X", "-n", "-P", "-j", "3,7"] and argv[6] == "-o"
    with pytest.raises(ValueError):
        final_argv(["7,8"])


def test_history_parsable_and_json() -> None:
    from sandfill.slurm.sacct import history_argv, parse_history

    rows = parse_history((DATA / "sacct_history.txt").read_text())
    assert [(r.job_id, r.partition, r.run, r.time_limit, r.cpus, r.ran) for r in rows] == [
        (1, "batch", 1, 60, 1, True), (2, "batch", 1, 60, 1, True)]
    assert rows[1].submit - rows[0].submit == 0
    js = parse_history((DATA / "sacct_history.json").read_text())
    assert [(r.job_id, r.time_limit, r.cpus) for r in js] == [(1, 60, 1), (2, 60, 1)]
    assert [r.submit for r in js] == [r.submit for r in rows]  # the same epoch either way
    assert history_argv()[-2:] == ["--starttime", "now-7days"]


def test_runs() -> None:
    from sandfill.slurm.sacct import parse_runs, runs_argv

    runs = parse_runs((DATA / "sacct_runs.txt").read_text())
    assert set(runs) == {"1", "2"}  # job 3 has not started
    one, two = runs["1"], runs["2"]
    assert (one.how, two.how) == ("main", "backfill")
    assert (one.start - one.submit, one.end - one.start) == (1, 5)
    assert two.start == one.start and two.end is None  # still running
    assert parse_runs("1|garbage|x|y|z\n\n|||") == {}
    assert runs_argv(["2", "1"])[5] == "1,2"


def test_user_ids_since_a_time() -> None:
    assert user_ids_argv("sftest-ada") == ["sacct", "-X", "-n", "-P", "-u", "sftest-ada", "-S", "now-1days", "-o", "JobID"]
    assert user_ids_argv("sftest-ada", "2026-11-21T09:00")[-3] == "2026-11-21T09:00"
    for bad in ("ada,bob", "-a", ""):
        with pytest.raises(ValueError, match="not a user name"):
            user_ids_argv(bad)
    # ended, running and pending allocations alike, in sacct's order
    assert parse_ids((DATA / "sacct_user_ids.txt").read_text()) == ["1", "2", "3", "4"]
    assert parse_ids("") == []
