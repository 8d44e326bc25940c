"""The one job view: what a person is told about one Slurm job.

Computed once from a :class:`~sandfill.slurm.states.JobStatus` and used by the hub's pending
page and API, the lab panel's worker rows, the notebook widget and the cluster's HTML repr:
the phase, Slurm's reason in plain words, the queue position, the estimated start, the time
left, the node and -- once it is over -- why it ended, in one vocabulary.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from sandfill.slurm.states import GONE, UNKNOWN, JobStatus
from sandfill.units import format_duration

# Why a job ended, in one vocabulary (Slurm's final state → words).
ENDED_WHY: dict[str, str] = {
    "COMPLETED": "completed",
    "TIMEOUT": "reached its walltime",
    "CANCELLED": "cancelled",
    "NODE_FAIL": "node failure",
    "BOOT_FAIL": "node failure",
    "PREEMPTED": "preempted",
    "FAILED": "failed",
    "OUT_OF_MEMORY": "out of memory",
    "DEADLINE": "reached its deadline",
    "REVOKED": "revoked",
    "SPECIAL_EXIT": "failed",
    GONE: "no longer known to Slurm",
}

# Slurm's pending reasons in plain words (squeue's %r).
REASON_WORDS: dict[str, str] = {
    "Resources": "waiting for free resources",
    "Priority": "other jobs are ahead in the queue",
    "Dependency": "waiting for another job to finish",
    "BeginTime": "waiting for its requested start time",
    "ReqNodeNotAvail": "a requested node is unavailable",
    "PartitionTimeLimit": "longer than the partition allows",
    "PartitionNodeLimit": "more nodes than the partition allows",
    "PartitionDown": "the partition is down",
    "PartitionInactive": "the partition is inactive",
    "Reservation": "waiting for a reservation",
    "JobHeldUser": "held by the user",
    "JobHeldAdmin": "held by an administrator",
    "QOSMaxCpuPerUserLimit": "the QOS's per-user CPU limit is reached",
    "QOSMaxJobsPerUserLimit": "the QOS's per-user job limit is reached",
    "AssocMaxJobsLimit": "the account's job limit is reached",
    "AssocGrpCpuLimit": "the account's CPU limit is reached",
    "Prolog": "running the job's prolog",
    "NodeDown": "a node it needs is down",
    "BadConstraints": "no node has the requested features",
    "WaitingForGap": "waiting for a gap in the schedule",
}


def reason_words(reason: str | None) -> str | None:
    """Slurm's reason code → plain words (the code itself when there are none)."""
    if not reason:
        return None
    return REASON_WORDS.get(reason, reason)


def ended_why(slurm_state: str) -> str:
    """Slurm's final state → why the job ended, in words."""
    return ENDED_WHY.get(slurm_state, slurm_state.lower())


@dataclass(frozen=True)
class JobView:
    job_id: str
    phase: str  # pending | running | ended | unknown
    slurm_state: str
    reason: str | None  # Slurm's code (pending or ended), e.g. "Resources"
    reason_text: str | None  # the same in plain words
    position: tuple[int, int] | None  # (n, of) pending in its partition
    estimated_start: float | None  # pending: Slurm's estimate
    start_time: float | None  # running or ended: when it started
    end_time: float | None  # running: when Slurm will kill it; ended: when it ended
    time_left: float | None  # running only
    walltime: str | None  # the time limit, [D-]HH:MM:SS
    node: str | None
    partition: str | None
    qos: str | None
    ended_why: str | None  # ended only, from ENDED_WHY
    exit_code: str | None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def job_view(
    status: JobStatus,
    *,
    now: float | None = None,
    position: tuple[int, int] | None = None,
) -> JobView:
    """The view of ``status`` at ``now``: facts only where they hold (no time left for a
    pending job, no stale pending reason after the end)."""
    st = status
    t = time.time() if now is None else now
    if st.state == UNKNOWN:
        phase = "unknown"
    elif st.ended:
        phase = "ended"
    elif st.pending:
        phase = "pending"
    else:
        phase = "running"
    reason = st.reason if phase in {"pending", "ended"} else None
    if phase == "ended" and st.reason in {"Resources", "Priority", "None"}:
        reason = None  # a pending reason left over from before the end
    return JobView(
        job_id=st.job_id,
        phase=phase,
        slurm_state=st.state,
        reason=reason,
        reason_text=reason_words(reason),
        position=position if phase == "pending" else None,
        estimated_start=st.start_time if phase == "pending" else None,
        start_time=st.start_time if phase in {"running", "ended", "unknown"} else None,
        end_time=st.end_time if phase != "pending" else None,
        time_left=st.time_left(t) if phase == "running" else None,
        walltime=format_duration(st.time_limit) if st.time_limit else None,
        node=st.nodes,
        partition=st.partition,
        qos=st.qos,
        ended_why=ended_why(st.state) if phase == "ended" else None,
        exit_code=st.exit_code if phase == "ended" else None,
    )
