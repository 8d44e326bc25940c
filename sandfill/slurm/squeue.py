"""``squeue``: the argv sandfill runs and the parser of what it prints."""

from __future__ import annotations

import time

from sandfill.slurm.states import UNKNOWN, JobStatus, none_if_empty
from sandfill.units import parse_slurm_time, parse_timestamp

SQUEUE_FIELDS = ("%i", "%T", "%r", "%N", "%S", "%e", "%l", "%P", "%q", "%u", "%V", "%B", "%j")


SQUEUE_FORMAT = "|".join(SQUEUE_FIELDS)


def parse_squeue(stdout: str, observed: float | None = None) -> dict[str, JobStatus]:
    """Parse ``squeue -h -o SQUEUE_FORMAT`` output into statuses keyed by job id."""
    now = time.time() if observed is None else observed
    out: dict[str, JobStatus] = {}
    n = len(SQUEUE_FIELDS)
    for line in stdout.splitlines():
        if not line.strip():
            continue
        parts = line.split("|", n - 1)
        if len(parts) != n:
            raise ValueError(f"unexpected squeue line ({len(parts)} fields, want {n}): {line!r}")
        jid, state, reason, nodes, start, end, limit, part, qos, user, submit, host, name = parts
        state = state.strip().split()[0].rstrip("+") if state.strip() else UNKNOWN
        reason_s = none_if_empty(reason)
        if reason_s is not None:
            reason_s = reason_s.strip("()")
            if reason_s == "None":
                reason_s = None
        out[jid.strip()] = JobStatus(
            job_id=jid.strip(),
            state=state,
            reason=reason_s,
            nodes=none_if_empty(nodes),
            start_time=parse_timestamp(start),
            end_time=parse_timestamp(end),
            time_limit=parse_slurm_time(limit),
            partition=none_if_empty(part),
            qos=none_if_empty(qos),
            user=none_if_empty(user),
            submit_time=parse_timestamp(submit),
            exec_host=none_if_empty(host),
            name=name,
            observed=now,
        )
    return out
