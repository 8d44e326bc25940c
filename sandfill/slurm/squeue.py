"""``squeue``: the argv sandfill runs and the parser of what it prints."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass

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


# ---- one user's jobs, names and log paths included (``squeue --json``) ---------------------
# The job name, the comment and the log path are chosen by the user: any text, newlines and
# ``|`` included. ``--json`` quotes them, so no field can break a row or forge another job.
# Slurm 22.05 ignores ``-u`` (and the other filters) with ``--json``: the parser keeps only
# the jobs of the user asked about, whatever the controller sent.


@dataclass(frozen=True)
class UserJob:
    """One of a user's jobs: its status (name included) and where its output goes."""

    status: JobStatus
    log_path: str | None  # Slurm's StdOut with its %-patterns expanded; None when unknown
    batch: bool  # an sbatch job (not an salloc/srun allocation)


def user_jobs_argv(user: str) -> list[str]:
    """``user``'s jobs as JSON (:func:`parse_user_jobs`); ValueError for a bad user name."""
    return ["squeue", "--json", "-u", *check_users([user])]


def parse_user_jobs(stdout: str, user: str, observed: float | None = None) -> list[UserJob]:
    """:func:`user_jobs_argv` output → ``user``'s jobs (other users' are dropped), by job id.
    ValueError naming the problem when the output is not squeue's JSON; a job whose fields
    cannot be read is left out (logged)."""
    now = time.time() if observed is None else observed
    try:
        doc = json.loads(stdout)
        jobs = doc["jobs"]
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"squeue --json printed no job list: {stdout[:200]!r}") from None
    if not isinstance(jobs, list):
        raise ValueError("squeue --json: 'jobs' is not a list")
    out: list[UserJob] = []
    for raw in jobs:
        if not isinstance(raw, dict) or raw.get("user_name") != user:
            continue
        try:
            out.append(_user_job(raw, now))
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("unreadable job in squeue --json: %s", exc)
    return sorted(out, key=lambda j: _id_key(j.status.job_id))


def _id_key(job_id: str) -> tuple[int, int]:
    head, _, tail = job_id.partition("_")
    return int(head), int(tail) if tail.isdigit() else -1


def _epoch(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) and value > 0 else None


def _text(raw: dict[str, object], key: str) -> str | None:
    value = raw.get(key)
    return none_if_empty(value) if isinstance(value, str) else None


def _json_job_id(raw: dict[str, object]) -> str:
    job_id, array_id, task = raw["job_id"], raw.get("array_job_id"), raw.get("array_task_id")
    if isinstance(array_id, int) and array_id and isinstance(task, int):
        return check_job_id(f"{array_id}_{task}")
    return check_job_id(str(int(job_id)))  # type: ignore[call-overload]


def _user_job(raw: dict[str, object], now: float) -> UserJob:
    limit = raw.get("time_limit")
    st = JobStatus(
        job_id=_json_job_id(raw),
        state=state_word(str(raw.get("job_state") or "")),
        reason=_reason(str(raw.get("state_reason") or "")),
        nodes=_text(raw, "nodes"),
        start_time=_epoch(raw.get("start_time")),
        end_time=_epoch(raw.get("end_time")),
        time_limit=int(limit) * 60 if isinstance(limit, int) and not isinstance(limit, bool) else None,
        partition=_text(raw, "partition"),
        qos=_text(raw, "qos"),
        user=_text(raw, "user_name"),
        submit_time=_epoch(raw.get("submit_time")),
        exec_host=_text(raw, "batch_host"),
        name=raw["name"] if isinstance(raw.get("name"), str) else None,  # type: ignore[arg-type]
        observed=now,
    )
    batch = raw.get("batch_flag") is True
    return UserJob(st, _log_path(raw, st) if batch else None, batch)


_PATTERN = re.compile(r"%(\d*)([AajJuxNnts%])")


def _log_path(raw: dict[str, object], st: JobStatus) -> str | None:
    """Slurm's StdOut for a batch job: the default ``slurm-%j.out`` (``%A_%a`` for an array
    task) in the working directory, or the pattern given, relative to it, expanded as
    sbatch(1) "filename pattern" says (a pattern with a backslash is taken literally)."""
    cwd = _text(raw, "current_working_directory")
    pattern = _text(raw, "standard_output")
    if pattern is None:
        pattern = "slurm-%A_%a.out" if "_" in st.job_id else "slurm-%j.out"
    if "\\" in pattern:
        path = pattern.replace("\\", "")
    else:
        path = _PATTERN.sub(lambda m: _expand(m, raw, st), pattern)
    if not path.startswith("/"):
        if cwd is None:
            return None
        path = f"{cwd.rstrip('/')}/{path}"
    return path


def _expand(m: re.Match[str], raw: dict[str, object], st: JobStatus) -> str:
    width, key = m.group(1), m.group(2)
    head, _, task = st.job_id.partition("_")
    values = {
        "%": "%", "A": head, "a": task or "4294967294", "j": head if not task else str(raw.get("job_id")),
        "J": head if not task else str(raw.get("job_id")), "u": st.user or "", "x": st.name or "",
        "N": st.exec_host or "", "n": "0", "t": "0", "s": "batch",
    }
    value = values[key]
    if width and key in "AajJnts" and value.isdigit():
        value = value.zfill(min(int(width), 10))
    return value
