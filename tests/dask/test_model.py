"""The job-aware model: Slurm's view of a job mapped onto the states the panel shows."""

from __future__ import annotations

from sandfill.dask.model import summary, worker_job
from sandfill.slurm import GONE, UNKNOWN, JobStatus

NOW = 1_800_000_000.0


def test_pending_has_reason_and_estimated_start() -> None:
    j = worker_job("12", JobStatus("12", "PENDING", reason="Resources", start_time=NOW + 300, time_limit=600), workers=[], now=NOW)
    assert (j.state, j.reason, j.estimated_start, j.time_left, j.walltime) == ("pending", "Resources", NOW + 300, None, "00:10:00")


def test_running_has_time_left_node_and_workers() -> None:
    st = JobStatus("13", "RUNNING", nodes="node2", start_time=NOW - 100, end_time=NOW + 500, time_limit=600)
    j = worker_job("13", st, workers=["c-1"], now=NOW)
    assert (j.state, j.time_left, j.node, j.workers, j.reason, j.estimated_start) == ("running", 500, "node2", ["c-1"], None, None)


def test_retiring_and_ended_whys() -> None:
    st = JobStatus("14", "RUNNING", nodes="node1", end_time=NOW + 20)
    assert worker_job("14", st, workers=["w"], now=NOW, retiring=True).state == "retiring"
    for slurm_state, why in [("COMPLETED", "retired"), ("TIMEOUT", "walltime"), ("NODE_FAIL", "node failure"), ("CANCELLED", "cancelled"), (GONE, "gone from the queue")]:
        j = worker_job("15", JobStatus("15", slurm_state), workers=[], now=NOW)
        assert (j.state, j.ended_why, j.time_left) == ("ended", why, None)
    j = worker_job("16", JobStatus("16", "CANCELLED"), workers=[], now=NOW, ended_why="scaled down")
    assert j.ended_why == "scaled down"


def test_unknown_keeps_facts_and_unsubmitted_is_pending() -> None:
    j = worker_job("17", JobStatus("17", UNKNOWN, nodes="node3", end_time=NOW + 60), workers=["w"], now=NOW)
    assert (j.state, j.node, j.end_time) == ("unknown", "node3", NOW + 60)
    w = worker_job(None, None, workers=[], now=NOW, submitting_reason="WaitingForGap")
    assert (w.state, w.reason, w.job_id) == ("pending", "WaitingForGap", "")
    assert summary([j, w]) == {"pending": 1, "running": 0, "retiring": 0, "ended": 0, "unknown": 1}
