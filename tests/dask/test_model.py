"""The job-aware model: Slurm's view of a job mapped onto the states the panel shows."""

from __future__ import annotations

from sandfill.dask.model import RETIRED, summary, worker_job
from sandfill.slurm import GONE, UNKNOWN, JobStatus
from sandfill.slurm.jobview import ENDED_WHY, reason_words

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
    # the one job view's vocabulary (sandfill.slurm.jobview), as on the hub's pages
    for slurm_state in ["COMPLETED", "TIMEOUT", "NODE_FAIL", "CANCELLED", GONE]:
        j = worker_job("15", JobStatus("15", slurm_state), workers=[], now=NOW)
        assert (j.state, j.ended_why, j.time_left) == ("ended", ENDED_WHY[slurm_state], None)
    assert worker_job("15", JobStatus("15", "TIMEOUT"), workers=[], now=NOW).ended_why == "reached its walltime"
    # what the cluster did on purpose it says itself
    j = worker_job("16", JobStatus("16", "CANCELLED"), workers=[], now=NOW, ended_why="scaled down")
    assert j.ended_why == "scaled down"
    j = worker_job("18", JobStatus("18", "COMPLETED"), workers=[], now=NOW, ended_why=RETIRED)
    assert (j.state, j.ended_why) == ("ended", "retired")
    # ended by the cluster while Slurm still says running: ended, with no time left
    j = worker_job("19", st, workers=[], now=NOW, ended_why="scaled down")
    assert (j.state, j.time_left, j.end_time, j.ended_why) == ("ended", None, None, "scaled down")


def test_pending_reason_in_words() -> None:
    j = worker_job("20", JobStatus("20", "PENDING", reason="Priority"), workers=[], now=NOW)
    assert (j.reason, j.reason_text) == ("Priority", reason_words("Priority"))
    assert worker_job(None, None, workers=[], now=NOW, submitting_reason="WaitingForGap").reason_text == "waiting for a gap in the schedule"


def test_unknown_keeps_facts_and_unsubmitted_is_pending() -> None:
    j = worker_job("17", JobStatus("17", UNKNOWN, nodes="node3", end_time=NOW + 60), workers=["w"], now=NOW)
    assert (j.state, j.node, j.end_time) == ("unknown", "node3", NOW + 60)
    w = worker_job(None, None, workers=[], now=NOW, submitting_reason="WaitingForGap")
    assert (w.state, w.reason, w.job_id) == ("pending", "WaitingForGap", "")
    assert summary([j.state, w.state]) == {"pending": 1, "running": 0, "retiring": 0, "ended": 0, "unknown": 1}


def test_ended_jobs_say_when_they_ended() -> None:
    """The panel's timeline draws an ended job up to its end (``ended_at``); live jobs keep
    ``end_time`` (when Slurm will kill them) and no ``ended_at``."""
    ended = worker_job("20", JobStatus("20", "TIMEOUT", start_time=NOW - 600, end_time=NOW - 60), workers=[], now=NOW)
    assert (ended.state, ended.start_time, ended.end_time, ended.ended_at) == ("ended", NOW - 600, None, NOW - 60)
    live = worker_job("21", JobStatus("21", "RUNNING", start_time=NOW - 60, end_time=NOW + 600), workers=[], now=NOW)
    assert (live.end_time, live.ended_at) == (NOW + 600, None)
    # ended by the cluster while Slurm still plans its end: it ended now, not at that end
    dropped = worker_job("21", JobStatus("21", "RUNNING", start_time=NOW - 60, end_time=NOW + 600), workers=[], now=NOW, ended_why="scaled down")
    assert (dropped.state, dropped.ended_at) == ("ended", NOW)
