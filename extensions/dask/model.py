"""The job-aware view of a backfill cluster: one record per worker job.

The lab extension's REST API, the TypeScript panel and the notebook widget all read this
(docs/lab-api.md mirrors it field for field)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sandfill.slurm.states import GONE, UNKNOWN, JobStatus
from sandfill.units import format_duration

ENDED_WHY = {
    "COMPLETED": "retired",
    "TIMEOUT": "walltime",
    "CANCELLED": "cancelled",
    "NODE_FAIL": "node failure",
    "PREEMPTED": "preempted",
    "FAILED": "failed",
    "OUT_OF_MEMORY": "out of memory",
    "BOOT_FAIL": "node failure",
    "DEADLINE": "deadline",
    GONE: "gone from the queue",
}


@dataclass(frozen=True)
class WorkerJob:
    job_id: str
    state: str  # pending | running | retiring | ended | unknown
    slurm_state: str | None
    reason: str | None
    estimated_start: float | None
    start_time: float | None
    end_time: float | None
    time_left: float | None
    walltime: str | None
    node: str | None
    partition: str | None
    qos: str | None
    workers: list[str]
    ended_why: str | None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def worker_job(
    job_id: str | None,
    status: JobStatus | None,
    *,
    workers: list[str],
    now: float,
    retiring: bool = False,
    ended_why: str | None = None,
    submitting_reason: str = "Submitting",
) -> WorkerJob:
    """Map Slurm's view of one job (and what the cluster knows) onto the model."""
    if job_id is None or status is None:
        return WorkerJob(
            job_id or "", "pending", None, submitting_reason if job_id is None else "Queued",
            None, None, None, None, None, None, None, None, sorted(workers), None,
        )
    st = status
    limit = format_duration(st.time_limit) if st.time_limit else None
    if st.state == UNKNOWN:
        state = "unknown"
    elif st.ended or ended_why:
        state = "ended"
        ended_why = ended_why or ENDED_WHY.get(st.state, st.state.lower())
    elif st.pending:
        state = "pending"
    elif retiring:
        state = "retiring"
    else:
        state = "running"
    return WorkerJob(
        job_id=job_id,
        state=state,
        slurm_state=st.state,
        reason=st.reason if state == "pending" else None,
        estimated_start=st.start_time if state == "pending" else None,
        start_time=st.start_time if state != "pending" else None,
        end_time=st.end_time if state in {"running", "retiring", "unknown"} else None,
        time_left=st.time_left(now) if state in {"running", "retiring"} else None,
        walltime=limit,
        node=st.nodes,
        partition=st.partition,
        qos=st.qos,
        workers=sorted(workers),
        ended_why=ended_why if state == "ended" else None,
    )


def summary(jobs: list[WorkerJob]) -> dict[str, int]:
    out = {"pending": 0, "running": 0, "retiring": 0, "ended": 0, "unknown": 0}
    for j in jobs:
        out[j.state] = out.get(j.state, 0) + 1
    return out
