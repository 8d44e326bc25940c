"""The one job view: facts only where they hold, one vocabulary for why a job ended."""

from __future__ import annotations

import pytest

from sandfill.slurm.jobview import ENDED_WHY, job_view, reason_words
from sandfill.slurm.states import GONE, UNKNOWN, JobStatus

NOW = 1_000_000.0


def test_pending_job_has_a_reason_position_and_estimate_but_no_time_left() -> None:
    st = JobStatus("7", "PENDING", reason="Resources", start_time=NOW + 600, end_time=NOW + 4200, time_limit=3600)
    v = job_view(st, now=NOW, position=(2, 5))
    assert (v.phase, v.reason, v.position, v.estimated_start) == ("pending", "Resources", (2, 5), NOW + 600)
    assert v.reason_text == "waiting for free resources"
    assert v.time_left is None and v.start_time is None and v.end_time is None
    assert v.walltime == "01:00:00"


def test_running_job_has_time_left_and_no_reason() -> None:
    st = JobStatus("8", "RUNNING", reason="None", nodes="node2", start_time=NOW - 60, end_time=NOW + 540)
    v = job_view(st, now=NOW, position=(1, 1))
    assert (v.phase, v.node, v.time_left, v.reason, v.position) == ("running", "node2", 540, None, None)


@pytest.mark.parametrize("state", sorted(ENDED_WHY))
def test_every_final_state_has_words(state: str) -> None:
    v = job_view(JobStatus("9", state, reason="Resources", exit_code="0:0"), now=NOW)
    assert v.phase == "ended" and v.ended_why == ENDED_WHY[state]
    assert v.reason is None, "a stale pending reason is dropped after the end"
    assert v.time_left is None


def test_unknown_is_not_ended_and_gone_is() -> None:
    assert job_view(JobStatus("1", UNKNOWN), now=NOW).phase == "unknown"
    assert job_view(JobStatus("1", GONE), now=NOW).ended_why == "no longer known to Slurm"


def test_reason_words_keeps_unknown_codes() -> None:
    assert reason_words("SomethingNew") == "SomethingNew"
    assert reason_words(None) is None
