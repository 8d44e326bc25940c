"""The job-aware view of a backfill cluster: one record per worker job.

Built on the one job view (:func:`sandfill.slurm.jobview.job_view`), so a worker row says
the same as the hub's pending page about the same Slurm job, plus what only the cluster
knows: its Dask workers, and that it is retiring. The lab extension's REST API, the
TypeScript panel, the notebook widget and the cluster's HTML repr all read this
(docs/lab-api.md mirrors it field for field)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

from sandfill.slurm.jobview import job_view, reason_words
from sandfill.slurm.states import JobStatus

#: the states a worker job is shown in, in the order a summary lists them
STATES = ("pending", "running", "retiring", "ended", "unknown")

#: why a worker job ended when the cluster retired its workers (gracefully, on purpose)
RETIRED = "retired"


@dataclass(frozen=True)
class WorkerJob:
    job_id: str
    state: str  # pending | running | retiring | ended | unknown
    slurm_state: str | None
    reason: str | None  # Slurm's code while pending, e.g. "Resources"
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
    reason_text: str | None = None  # ``reason`` in plain words (the one job view's)
    ended_at: float | None = None  # ended: when it ended, as Slurm says (the panel's timeline)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _unsubmitted(job_id: str | None, workers: list[str], reason: str) -> WorkerJob:
    """A job the cluster wants but Slurm does not know yet (held back, or being submitted)."""
    return WorkerJob(
        job_id or "", "pending", None, reason, None, None, None, None, None, None, None, None, sorted(workers), None,
        reason_text=reason_words(reason),
    )


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
    """Slurm's view of one job (the one job view), with what the cluster knows: its workers,
    that it is ``retiring``, and ``ended_why`` when the cluster itself ended it (which also
    makes it ended, whatever Slurm still says)."""
    if job_id is None or status is None:
        return _unsubmitted(job_id, workers, submitting_reason if job_id is None else "Queued")
    v = job_view(status, now=now)
    state = v.phase
    if state != "unknown" and ended_why:
        state = "ended"
    elif state == "running" and retiring:
        state = "retiring"
    pending, live = state == "pending", state in {"running", "retiring"}
    return WorkerJob(
        job_id=job_id,
        state=state,
        slurm_state=v.slurm_state,
        reason=v.reason if pending else None,
        reason_text=v.reason_text if pending else None,
        estimated_start=v.estimated_start if pending else None,
        start_time=v.start_time if not pending else None,
        end_time=v.end_time if live or state == "unknown" else None,
        time_left=v.time_left if live else None,
        walltime=v.walltime,
        node=v.node,
        partition=v.partition,
        qos=v.qos,
        workers=sorted(workers),
        ended_why=(ended_why or v.ended_why) if state == "ended" else None,
        ended_at=(v.end_time if v.phase == "ended" else now) if state == "ended" else None,  # ended by the cluster: now
    )


def summary(states: Iterable[str]) -> dict[str, int]:
    """How many worker jobs are in each state (every state listed, zeros included)."""
    out = dict.fromkeys(STATES, 0)
    for s in states:
        out[s] = out.get(s, 0) + 1
    return out
