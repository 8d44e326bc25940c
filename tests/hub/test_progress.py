"""What the hub tells a person about their job (sandfill.hub.progress), rendered from the shared
job view: the pending page's events, the job API's dict and why the last job ended."""

from __future__ import annotations

import time

import pytest

from sandfill.hub import progress
from sandfill.slurm.jobview import ENDED_WHY
from sandfill.slurm.states import JobStatus


def test_estimated_start_text() -> None:
    assert "not yet estimated" in progress.describe_start(None)
    assert "(in 00:0" in progress.describe_start(time.time() + 300)
    assert "as soon as" in progress.describe_start(time.time() - 5)


def test_pending_event_has_reason_position_and_estimate() -> None:
    st = JobStatus("12", "PENDING", reason="Resources", partition="interactive", start_time=time.time() + 600)
    event = progress.pending_event("12", st, position=(1, 3))
    assert event["progress"] == 30
    assert "Job 12 is PENDING (Resources) – waiting for free resources" in event["message"]
    assert "position 1 of 3 pending in interactive" in event["message"]
    assert "estimated start:" in event["message"] and "not yet" not in event["message"]
    html = event["html_message"]
    assert '<span class="sandfill-reason" title="Resources: waiting for free resources">Resources</span>' in html
    assert 'class="sandfill-start"' in html and '<b class="sandfill-job-id">12</b>' in html


def test_pending_event_escapes_and_falls_back() -> None:
    st = JobStatus("7", "PENDING", reason="<b>odd</b>")
    event = progress.pending_event("7", st, partition="burst")
    assert "<b>odd</b>" not in event["html_message"] and "&lt;b&gt;odd&lt;/b&gt;" in event["html_message"]
    assert "not yet estimated by Slurm" in event["message"] and "position" not in event["message"]


def test_the_pending_card_says_what_was_asked_how_long_it_waited_and_invents_no_reason() -> None:
    now = time.time()
    st = JobStatus("9", "PENDING", reason=None, partition="interactive", submit_time=now - 185)
    event = progress.pending_event("9", st, asked="1 CPU, 1G, 02:00:00 on interactive", now=now)
    assert event["message"].startswith("Job 9 is PENDING (Slurm has not given a reason yet)")
    assert "waiting" not in event["message"] and "sandfill-reason\"" not in event["html_message"]
    html = event["html_message"]
    assert '<span class="sandfill-asked">1 CPU, 1G, 02:00:00 on interactive</span>' in html
    assert '<span class="sandfill-waited">3 minutes</span>' in html
    assert html.count('<div class="sandfill-status-') == 5  # one line each: job, why, start, asked, waited
    fresh = progress.pending_event("9", JobStatus("9", "PENDING", submit_time=now - 20), now=now)
    assert "under a minute" in fresh["html_message"]


@pytest.mark.parametrize(
    ("status", "port", "progress_", "words"),
    [
        (None, 0, 10, "Submitting the server job"),
        (JobStatus("5", "RUNNING", nodes="node1"), 0, 70, "Job 5 is RUNNING on node1; waiting for JupyterLab"),
        (JobStatus("5", "RUNNING", nodes="node1"), 8888, 90, "JupyterLab is starting at port 8888"),
        (JobStatus("5", "UNKNOWN"), 0, 30, "not answering right now"),
        (JobStatus("5", "TIMEOUT"), 0, 100, "Job 5 ended: reached its walltime (TIMEOUT)."),
    ],
)
def test_other_phases(status: JobStatus | None, port: int, progress_: int, words: str) -> None:
    event = progress.pending_event("5" if status else None, status, port=port)
    assert event["progress"] == progress_ and words in event["message"]


@pytest.mark.parametrize("state", ["TIMEOUT", "CANCELLED", "NODE_FAIL", "OUT_OF_MEMORY", "COMPLETED", "GONE"])
def test_end_message_uses_the_shared_vocabulary(state: str) -> None:
    record = progress.end_record(JobStatus("9", state, reason="NodeDown" if state == "NODE_FAIL" else None, exit_code="0:9"),
                                 by_hub=False, log_path="/h/log", log_tail="a\nb\n")
    assert record["why"] == ENDED_WHY[state]
    msg = progress.end_message(record)
    assert msg.startswith(f"Slurm job 9 ended: {ENDED_WHY[state]} ({state}")
    assert "exit code 0:9" in msg and msg.endswith("Last lines of the job's log:\na\nb")
    assert progress.end_message({}) == "The server job ended."


def test_end_message_of_a_record_saved_before_the_why_field() -> None:
    assert progress.end_message({"job_id": "3", "state": "TIMEOUT"}) == "Slurm job 3 ended: reached its walltime (TIMEOUT)."


def test_job_info_keeps_the_api_keys_and_adds_the_view() -> None:
    now = time.time()
    st = JobStatus("4", "RUNNING", nodes="node2", partition="interactive", end_time=now + 3600, time_limit=7200)
    info = progress.job_info("4", st, request={"cpus": 1}, last_end=None, walltime_warning=600)
    assert info["job_id"] == "4" and info["state"] == "RUNNING" and info["phase"] == "running"
    assert info["partition"] == "interactive" and info["nodes"] == "node2"
    assert 3500 < info["time_left"] <= 3600 and info["end_time"] == now + 3600
    assert info["walltime_warning"] == 600 and info["request"] == {"cpus": 1} and info["last_end"] is None
    assert info["view"]["walltime"] == "02:00:00" and "estimated_start" not in info
    pending = progress.job_info("4", JobStatus("4", "PENDING", reason="Priority", start_time=now + 60), request=None, last_end=None, walltime_warning=600)
    assert pending["estimated_start"] == now + 60 and pending["time_left"] is None
    assert pending["reason_text"] == "other jobs are ahead in the queue"
    empty = progress.job_info(None, None, request=None, last_end={"job_id": "3"}, walltime_warning=600)
    assert empty["job_id"] is None and empty["state"] is None and empty["last_end"] == {"job_id": "3"}
