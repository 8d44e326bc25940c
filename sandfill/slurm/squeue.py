"""``squeue``: the argv sandfill runs and the parser of what it prints."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable

from sandfill.schema import check_slurm_name
from sandfill.slurm.commands import Result
from sandfill.slurm.hostlist import expand_hostlist
from sandfill.slurm.states import (
    UNKNOWN,
    JobStatus,
    check_job_id,
    check_job_ids,
    check_users,
    none_if_empty,
    state_word,
)
from sandfill.units import parse_slurm_time, parse_timestamp

#: the poller's fields. None of them is set by a user: no job name (``%j``), no comment
#: (``%k``), no working directory. A user can rename a job (``scontrol update JobName=…``,
#: ``sbatch -J``) to anything, a newline and ``|`` included, and with such a field in the
#: format one user could break every row after theirs or forge a row for another job. Without
#: one, one record is one line of controller-made text.
SQUEUE_FIELDS = ("%i", "%T", "%r", "%N", "%S", "%e", "%l", "%P", "%q", "%u", "%V", "%B")


SQUEUE_FORMAT = "|".join(SQUEUE_FIELDS)

log = logging.getLogger("sandfill.slurm.squeue")


class Statuses(dict[str, JobStatus]):
    """Statuses by job id, and the lines that could not be read (:attr:`unreadable`): a
    line whose job id is readable but whose other fields are not gives that job an UNKNOWN
    status; a line without a readable id is only listed here."""

    def __init__(self) -> None:
        super().__init__()
        self.unreadable: list[str] = []


def parse_squeue(stdout: str, observed: float | None = None) -> Statuses:
    """Parse ``squeue -h -o SQUEUE_FORMAT`` output into statuses keyed by job id. Never
    raises on a bad line: see :class:`Statuses`."""
    now = time.time() if observed is None else observed
    out = Statuses()
    for line in stdout.splitlines():
        if not line.strip():
            continue
        parts = line.split("|")
        jid = parts[0].strip()
        st = _status_row(parts, now) if len(parts) == len(SQUEUE_FIELDS) else None
        if st is not None:
            out[jid] = st
            continue
        if _JOB_ROW_ID.fullmatch(jid):
            out[jid] = JobStatus(jid, UNKNOWN, observed=now)
        out.unreadable.append(line[:200])
    if out.unreadable:
        log.warning("%d unreadable squeue line(s), first: %r", len(out.unreadable), out.unreadable[0])
    return out


# a job id as squeue's %i prints it (32-bit numbers): 12, 12_3, or a pending array's 12_[1-5%2]
_JOB_ROW_ID = re.compile(r"\d{1,10}(_(\d{1,10}|\[[0-9,%-]{1,200}\]))?")


def _status_row(parts: list[str], now: float) -> JobStatus | None:
    """One :data:`SQUEUE_FORMAT` row, or None when it is not one."""
    jid, state, reason, nodes, start, end, limit, part, qos, user, submit, host = parts
    jid = jid.strip()
    if not _JOB_ROW_ID.fullmatch(jid):
        return None
    try:
        return JobStatus(
            job_id=jid,
            state=state_word(state),
            reason=_reason(reason),
            nodes=none_if_empty(nodes),
            start_time=parse_timestamp(start),
            end_time=parse_timestamp(end),
            time_limit=parse_slurm_time(limit),
            partition=none_if_empty(part),
            qos=none_if_empty(qos),
            user=none_if_empty(user),
            submit_time=parse_timestamp(submit),
            exec_host=none_if_empty(host),
            observed=now,
        )
    except (ValueError, ArithmeticError):
        return None


def _reason(text: str) -> str | None:
    reason = none_if_empty(text)
    if reason is not None:
        reason = reason.strip("()")
    return None if reason in {None, "", "None"} else reason


def status_argv(job_ids: Iterable[str] | None = None) -> list[str]:
    """``squeue`` in :data:`SQUEUE_FORMAT` for ``job_ids`` in any state (all jobs when None)."""
    argv = ["squeue", "-h", "-o", SQUEUE_FORMAT]
    if job_ids is not None:
        argv += ["-t", "all", "-j", ",".join(check_job_ids(job_ids))]
    return argv


def name_argv(job_id: str) -> list[str]:
    """``job_id``'s name (``%j``) alone, as raw text: its user chose it, so it may hold
    newlines and any bytes; nothing that reads rows asks for it."""
    return ["squeue", "-h", "-t", "all", "-j", check_job_id(job_id), "-o", "%j"]


def forgotten_ids(result: Result) -> bool:
    """True when a failed ``squeue -j`` only means the controller has forgotten every id
    asked about (an answer, not a failure)."""
    return result.returncode != 0 and "Invalid job id specified" in result.stderr


def parse_status(result: Result, observed: float | None = None) -> Statuses:
    """The statuses in a :func:`status_argv` result; SlurmCommandError when the controller
    could not be asked. A job the controller no longer knows is absent."""
    if forgotten_ids(result):
        return Statuses()
    return parse_squeue(result.checked().stdout, observed=time.time() if observed is None else observed)


PENDING_FORMAT = "%i|%P|%Q"


def pending_argv() -> list[str]:
    """Pending jobs with their partitions and priority (:data:`PENDING_FORMAT`)."""
    return ["squeue", "-h", "-t", "PD", "-o", PENDING_FORMAT]


def parse_pending_positions(stdout: str) -> dict[str, tuple[int, int]]:
    """:func:`pending_argv` output → job id → (position, pending in that partition),
    1-based, highest priority first (ties by submission order, i.e. job id). A job pending
    in several partitions gets its position in the partition met first in the output."""
    by_part: dict[str, list[tuple[int, int, str]]] = {}
    for line in stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 3:
            continue
        jid, parts_s, prio = parts
        try:
            p = int(prio)
            n = int(jid.split("_")[0])
        except ValueError:
            continue
        for part in parts_s.split(","):
            by_part.setdefault(part, []).append((-p, n, jid))
    out: dict[str, tuple[int, int]] = {}
    for jobs in by_part.values():
        jobs.sort()
        for pos, (_p, _n, jid) in enumerate(jobs, 1):
            if jid not in out:
                out[jid] = (pos, len(jobs))
    return out


def ids_argv(states: str | None = None, users: Iterable[str] | None = None,
             name: str | None = None) -> list[str]:
    """The ids of all jobs (or ``users``' jobs, or those named ``name``) in ``states``
    (``"all"``, ``"PD"``, ``"R,CG,S"``; default: squeue's, the jobs not yet ended), one per
    line (:func:`parse_ids`); ValueError for a name that is not a plain user or job name."""
    argv = ["squeue", "-h"]
    if users is not None:
        argv += ["-u", ",".join(check_users(users))]
    if name is not None:
        argv += [f"--name={check_slurm_name(name)}"]
    if states:
        argv += ["-t", states]
    return [*argv, "-o", "%A"]


def parse_ids(stdout: str) -> list[str]:
    """:func:`ids_argv` output → job ids."""
    return stdout.split()


#: pending jobs' planned starts (``squeue --start``'s estimate) and planned nodes
PLANNED_FORMAT = "%S|%Y"


def planned_starts_argv() -> list[str]:
    """Every pending job's planned start and nodes (:data:`PLANNED_FORMAT`)."""
    return ["squeue", "-h", "-t", "PD", "-o", PLANNED_FORMAT]


def parse_planned_starts(stdout: str) -> dict[str, float]:
    """:func:`planned_starts_argv` output → node → the earliest planned start of a pending
    job on it (epoch seconds). Jobs with no planned start or no planned nodes are left out."""
    out: dict[str, float] = {}
    for line in stdout.splitlines():
        start_s, _, nodes = line.partition("|")
        start = parse_timestamp(start_s)
        nodes = nodes.strip()
        if start is None or not nodes or nodes == "(null)":
            continue
        try:
            names = expand_hostlist(nodes)
        except ValueError:
            continue  # not a host list: that line only
        for n in names:
            out[n] = min(out.get(n, start), start)
    return out
