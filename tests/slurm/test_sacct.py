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


def test_accounting_names_starts_and_flags() -> None:
    from sandfill.slurm.sacct import accounting_argv, parse_accounting

    jobs = parse_accounting((DATA / "sacct_accounting.txt").read_text())
    by_id = {j.row.job_id: j for j in jobs}
    assert 17 not in by_id  # a '|' in its name: the row is skipped, not misread
    assert by_id[11].name == "jupyterhub-alice" and by_id[11].start - by_id[11].row.submit == 2
    assert [by_id[i].how for i in (11, 12, 15)] == ["main", "main", "backfill"]
    assert by_id[18].start is None and not by_id[18].row.ran and by_id[18].how == ""
    argv = accounting_argv("now-1days")
    assert argv[-2:] == ["--starttime", "now-1days"] and argv[4].endswith(",Flags,JobName")


def test_user_ids_since_a_time() -> None:
    assert user_ids_argv("sftest-ada") == ["sacct", "-X", "-n", "-P", "-u", "sftest-ada", "-S", "now-1days", "-o", "JobID"]
    assert user_ids_argv("sftest-ada", "2026-11-21T09:00")[-3] == "2026-11-21T09:00"
    for bad in ("ada,bob", "-a", ""):
        with pytest.raises(ValueError, match="not a user name"):
            user_ids_argv(bad)
    # ended, running and pending allocations alike, in sacct's order
    assert parse_ids((DATA / "sacct_user_ids.txt").read_text()) == ["1", "2", "3", "4"]
    assert parse_ids("") == []


# ---- hardening (#11): one bad line costs that line only ------------------------------------

FINAL_GOOD = "1|COMPLETED|0:0|2026-11-21T08:53:40|2026-11-21T08:53:40|node[1-2]|batch|normal|root|None"


@pytest.mark.parametrize(
    "line",
    [
        "7| |0:0|N/A|N/A|node1|batch|normal|root|None",  # a blank state (was an IndexError)
        "7|COMPLETED|0:0",  # truncated
        FINAL_GOOD.replace("1|", "7|", 1) + "|extra|fields",  # a | where none belongs
        "a\nb|COMPLETED|0:0|N/A|N/A|node1|batch|normal|root|None",  # a newline in a field
        "x\ufffdy|COMPLETED|0:0|N/A|N/A|node1|batch|normal|root|None",  # no job id
        "9" * 100_000,
    ],
    ids=range(6),
)
def test_sacct_final_one_bad_line_spoils_only_itself(line: str) -> None:
    rows = parse_sacct_final(f"{FINAL_GOOD}\n{line}\n{FINAL_GOOD.replace('1|', '2|', 1)}\n")
    assert rows["1"].ended and rows["2"].state == "COMPLETED"
    assert all(r.state != "COMPLETED" for j, r in rows.items() if j not in {"1", "2"})  # never a forged end
    assert set(rows) <= {"1", "2", "7"}


HISTORY_HEAD = "JobID|User|Partition|Submit|Start|End|ElapsedRaw|TimelimitRaw|NCPUS|NNodes|State"
HISTORY_GOOD = "1|root|batch|2026-12-01T09:15:32|2026-12-01T09:15:35|2026-12-01T09:15:36|1|1|1|1|COMPLETED"


@pytest.mark.parametrize(
    "line",
    [
        HISTORY_GOOD.replace("1|root|", "7|root|", 1).replace("|1|1|1|1|", "|1|1|many|1|"),  # NCPUS not a number
        HISTORY_GOOD.replace("1|root|", "x|root|", 1),  # not a job id
        HISTORY_GOOD.replace("|batch|", "|ba|tch|"),  # one field too many
        "7|root|batch|2026-12-01T09:15:32",  # truncated, e.g. by a newline in a field
        "9" * 100_000,
    ],
    ids=range(5),
)
def test_history_one_bad_row_spoils_only_itself(line: str) -> None:
    from sandfill.slurm.sacct import parse_history

    rows = parse_history(f"{HISTORY_HEAD}\n{HISTORY_GOOD}\n{line}\n{HISTORY_GOOD.replace('1|root|', '2|root|', 1)}\n")
    assert [r.job_id for r in rows] == [1, 2]


def test_history_json_skips_a_bad_job() -> None:
    import json

    from sandfill.slurm.sacct import parse_history

    good = json.loads((DATA / "sacct_history.json").read_text())
    good["jobs"][1:1] = [{"job_id": "x", "time": {"submission": 1}}, {"time": {"submission": 1}}, "not a job",
                         {"job_id": 9, "time": {"submission": 1, "elapsed": "long"}}]
    assert [r.job_id for r in parse_history(json.dumps(good))] == [1, 2]
