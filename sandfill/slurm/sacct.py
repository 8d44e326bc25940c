"""``sacct``: the final state of ended jobs."""

from __future__ import annotations

import time

from sandfill.slurm.states import UNKNOWN, JobStatus, none_if_empty
from sandfill.units import parse_timestamp

SACCT_FIELDS = ("JobID", "State", "ExitCode", "Start", "End", "NodeList", "Partition", "QOS", "User", "Reason")


def parse_sacct_final(stdout: str, observed: float | None = None) -> dict[str, JobStatus]:
    """Parse ``sacct -X -n -P -o <SACCT_FIELDS>`` into final statuses (allocations only)."""
    now = time.time() if observed is None else observed
    out: dict[str, JobStatus] = {}
    for line in stdout.splitlines():
        parts = line.split("|")
        if len(parts) < len(SACCT_FIELDS):
            continue
        jid, state, exit_code, start, end, nodes, part, qos, user, reason = parts[: len(SACCT_FIELDS)]
        state = state.split()[0] if state else UNKNOWN  # "CANCELLED by 0"
        out[jid] = JobStatus(
            job_id=jid,
            state=state,
            reason=none_if_empty(reason),
            nodes=none_if_empty(nodes if nodes != "None assigned" else ""),
            start_time=parse_timestamp(start),
            end_time=parse_timestamp(end),
            partition=none_if_empty(part),
            qos=none_if_empty(qos),
            user=none_if_empty(user),
            exit_code=exit_code or None,
            observed=now,
        )
    return out
