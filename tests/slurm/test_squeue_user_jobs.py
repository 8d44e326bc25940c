"""``sandfill.slurm.squeue``'s ``--json`` reading of one user's jobs, on ``squeue --json``
output recorded from Slurm 22.05.8 (``squeue_user_jobs.json``: the records of a devcluster,
with user names, states, names and output patterns edited to cover each case)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandfill.slurm.squeue import parse_user_jobs, user_jobs_argv

DATA = Path(__file__).parent / "data"
TEXT = (DATA / "squeue_user_jobs.json").read_text()


def test_the_argv_is_typed_and_a_bad_user_name_is_refused() -> None:
    assert user_jobs_argv("sftest-ada") == ["squeue", "--json", "-u", "sftest-ada"]
    with pytest.raises(ValueError, match="'-t all'"):
        user_jobs_argv("-t all")


def test_only_that_users_jobs_are_kept_whatever_the_controller_sent() -> None:
    jobs = parse_user_jobs(TEXT, "sftest-ada", observed=0)
    assert [j.status.job_id for j in jobs] == ["50", "72", "74", "80_2"]
    assert all(j.status.user == "sftest-ada" for j in jobs)
    assert [j.status.job_id for j in parse_user_jobs(TEXT, "sftest-bob")] == ["29"]
    assert parse_user_jobs(TEXT, "nobody") == []


def test_a_name_with_a_newline_and_bars_is_one_field_and_forges_no_row() -> None:
    jobs = {j.status.job_id: j for j in parse_user_jobs(TEXT, "sftest-ada", observed=0)}
    evil = jobs["72"]
    assert evil.status.name == "evil\n99|RUNNING|None|node1" and "99" not in jobs
    assert evil.status.running and evil.status.nodes == "node[1-2]"


def test_states_reasons_times_and_log_paths() -> None:
    jobs = {j.status.job_id: j for j in parse_user_jobs(TEXT, "sftest-ada", observed=0)}
    pend = jobs["74"].status
    assert pend.pending and pend.reason == "Resources" and pend.start_time == 1796149000
    assert pend.nodes is None and pend.time_limit == 5 * 60
    assert jobs["74"].log_path == "/home/sftest-ada/slurm-74.out"  # Slurm's default
    assert jobs["50"].log_path == "/home/sftest-ada/logs/sandfill-worker-50.out"
    assert jobs["72"].log_path == "/home/sftest-ada/out-evil\n99|RUNNING|None|node1-sftest-ada-0072.txt"
    assert jobs["80_2"].log_path == "/home/sftest-ada/slurm-80_2.out"
    assert jobs["50"].status.name == "sandfill-worker-a1b2" and jobs["50"].batch


def test_output_that_is_not_squeue_json_is_a_clear_error() -> None:
    for bad in ("", "not json", json.dumps({"jobs": 3}), json.dumps([1])):
        with pytest.raises(ValueError, match="squeue --json"):
            parse_user_jobs(bad, "sftest-ada")


def test_an_unreadable_job_is_left_out_and_the_others_kept() -> None:
    doc = json.loads(TEXT)
    doc["jobs"][0]["job_id"] = "12; rm -rf"
    jobs = parse_user_jobs(json.dumps(doc), "sftest-ada", observed=0)
    assert [j.status.job_id for j in jobs] == ["72", "74", "80_2"]
