"""``sacct``: the final state of ended jobs, job history (for the simulator), start flags."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sandfill.slurm.states import (
    JobStatus,
    check_job_ids,
    check_users,
    none_if_empty,
    state_word,
)
from sandfill.units import parse_slurm_time, parse_timestamp

SACCT_FIELDS = ("JobID", "State", "ExitCode", "Start", "End", "NodeList", "Partition", "QOS", "User", "Reason")


def parse_sacct_final(stdout: str, observed: float | None = None) -> dict[str, JobStatus]:
    """Parse ``sacct -X -n -P -o <SACCT_FIELDS>`` into final statuses (allocations only).
    A line that is not one such row (no job id, another number of fields) is skipped: the
    job is then not in the answer, never wrongly "ended"."""
    now = time.time() if observed is None else observed
    out: dict[str, JobStatus] = {}
    for line in stdout.splitlines():
        parts = line.split("|")
        if len(parts) != len(SACCT_FIELDS) or not _JOB_ROW_ID.fullmatch(parts[0]):
            continue
        jid, state, exit_code, start, end, nodes, part, qos, user, reason = parts
        out[jid] = JobStatus(
            job_id=jid,
            state=state_word(state),  # "CANCELLED by 0"
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


# an allocation's id as sacct prints it: 12, 12_3, 12_[1-5], 12+0 (a heterogeneous job)
_JOB_ROW_ID = re.compile(r"\d{1,10}([_+](\d{1,10}|\[[0-9,%-]{1,200}\]))?")


def final_argv(job_ids: Iterable[str]) -> list[str]:
    """``sacct`` for the allocations of ``job_ids`` in :data:`SACCT_FIELDS`."""
    return ["sacct", "-X", "-n", "-P", "-j", ",".join(check_job_ids(job_ids)), "-o", ",".join(SACCT_FIELDS)]


def user_ids_argv(user: str, since: str = "now-1days") -> list[str]:
    """The ids of ``user``'s jobs (allocations only) that were in the system since ``since``
    (``--starttime``: ``now-1days``, ``2026-11-21T09:00``), one per line (:func:`parse_ids`);
    ValueError when ``user`` is not a plain user name."""
    return ["sacct", "-X", "-n", "-P", "-u", *check_users([user]), "-S", since, "-o", "JobID"]


def parse_ids(stdout: str) -> list[str]:
    """:func:`user_ids_argv` output → job ids, in sacct's order."""
    return stdout.split()


# ---- job history (the simulator's workload from a site's own sacct) -------------------------

HISTORY_FORMAT = "JobID,User,Partition,Submit,Start,End,ElapsedRaw,TimelimitRaw,NCPUS,NNodes,State"


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One allocation of ``sacct`` history; times in epoch seconds, durations in seconds."""

    job_id: int
    user: str
    partition: str | None
    submit: int
    run: int  # elapsed seconds
    time_limit: int | None  # seconds (None: none given)
    cpus: int
    nodes: int | None
    ran: bool  # started, ran a while, on some CPUs


def history_argv(start: str | None = None, end: str | None = None) -> list[str]:
    """``sacct`` for every user's jobs (allocations only) in ``--starttime``..``--endtime``
    (default: the last 7 days), ``|``-separated with a header in :data:`HISTORY_FORMAT`."""
    argv = ["sacct", "-a", "-X", "-P", f"--format={HISTORY_FORMAT}"]
    argv += ["--starttime", start or "now-7days"]
    if end:
        argv += ["--endtime", end]
    return argv


def parse_history(text: str) -> list[HistoryRow]:
    """``sacct -P`` (with a header line; ``TimelimitRaw`` in minutes and ``ElapsedRaw`` in
    seconds are used when present) or ``sacct --json`` (Slurm 22.05, OpenAPI v0.0.38 data),
    told apart by content. Job steps (``123.batch``) and jobs without a submit time are
    dropped."""
    return parse_history_json(text) if text.lstrip().startswith("{") else parse_history_parsable(text)


def parse_history_parsable(text: str) -> list[HistoryRow]:
    """``sacct -P`` with a header line; a row with another number of fields than the
    header (a ``|`` or newline in a job name, if the file has one) or a value that is not a
    number where one is due is skipped."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return []
    head = [h.strip().lower() for h in lines[0].rstrip("|").split("|")]
    out = []
    for ln in lines[1:]:
        values = ln.rstrip("|").split("|")
        row = _history_row(dict(zip(head, values, strict=True))) if len(values) == len(head) else None
        if row is not None:
            out.append(row)
    return out


def _history_row(row: dict[str, str]) -> HistoryRow | None:
    jid = row.get("jobid", "")
    submit = _epoch(row.get("submit"))
    if "." in jid or not jid or submit is None:
        return None
    try:
        if row.get("elapsedraw", "").isdigit():
            run = int(row["elapsedraw"])
        else:
            run = parse_slurm_time(row.get("elapsed") or "") or 0
        if row.get("timelimitraw", "").isdigit():
            limit: int | None = int(row["timelimitraw"]) * 60
        else:
            limit = parse_slurm_time(row.get("timelimit") or "") or None
        cpus = int(row.get("ncpus") or row.get("alloccpus") or row.get("reqcpus") or 0)
        nodes = int(row["nnodes"]) if row.get("nnodes", "").isdigit() else None
        job_id = int(jid.split("_")[0].split("+")[0])
    except ValueError:
        return None
    ran = _epoch(row.get("start")) is not None and run > 0 and cpus > 0
    return HistoryRow(job_id, row.get("user", "?"), row.get("partition") or None, submit, run, limit, cpus, nodes, ran)


def parse_history_json(text: str) -> list[HistoryRow]:
    """``sacct --json`` (OpenAPI v0.0.38 data); a job whose fields are missing or not
    numbers is skipped."""
    data = json.loads(text)
    jobs = [_history_job(j) for j in data.get("jobs", [])]
    return [j for j in jobs if j is not None]


def _history_job(j: Any) -> HistoryRow | None:
    try:
        t = j.get("time", {})
        submit = t.get("submission")
        if not submit:
            return None
        run = int(t.get("elapsed") or 0)
        limit = t.get("limit")
        if isinstance(limit, dict):  # newer data: {"set": true, "number": N}
            limit = limit.get("number") if limit.get("set", True) else None
        req = j.get("required", {})
        cpus = int(req.get("CPUs") or req.get("cpus") or 0)
        nodes = j.get("allocation_nodes") or None
        return HistoryRow(int(j["job_id"]), str(j.get("user", "?")), j.get("partition") or None,
                          int(submit), run, int(limit) * 60 if limit else None, cpus,
                          int(nodes) if nodes else None,
                          bool(t.get("start")) and run > 0 and cpus > 0)
    except (AttributeError, KeyError, TypeError, ValueError):
        return None


def _epoch(text: str | None) -> int | None:
    ts = parse_timestamp(text or "")
    return None if ts is None else int(ts)


# ---- who started a job, and when ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobRun:
    """When an allocation was submitted, started and ended (epoch seconds; ``end`` None while
    it runs) and which scheduler started it: ``"backfill"`` (SchedBackfill), ``"main"``
    (SchedMain or SchedSubmit) or ``""``."""

    submit: int
    start: int
    end: int | None
    how: str


def runs_argv(job_ids: Iterable[str]) -> list[str]:
    """Submit, start and end times and scheduling flags of the allocations of ``job_ids``."""
    return ["sacct", "-X", "-n", "-P", "-j", ",".join(check_job_ids(job_ids)),
            "-o", "JobID,Submit,Start,End,Flags"]


def started_by(flags: str) -> str:
    """sacct's ``Flags`` → ``"backfill"`` (SchedBackfill), ``"main"`` (SchedMain or
    SchedSubmit) or ``""`` (not started, or no flag recorded)."""
    if "SchedBackfill" in flags:
        return "backfill"
    return "main" if "SchedMain" in flags or "SchedSubmit" in flags else ""


def parse_runs(stdout: str) -> dict[str, JobRun]:
    """:func:`runs_argv` output → job id → :class:`JobRun`. Jobs that have not started, and
    lines that do not parse, are left out."""
    out: dict[str, JobRun] = {}
    for line in stdout.splitlines():
        jid, submit, start, end, flags = (line.split("|") + [""] * 4)[:5]
        t_submit, t_start = _epoch(submit), _epoch(start)
        if t_submit is None or t_start is None:
            continue
        out[jid] = JobRun(t_submit, t_start, _epoch(end), started_by(flags))
    return out


# ---- accounting for live health: history plus job names, starts and start flags --------------

ACCOUNTING_FORMAT = HISTORY_FORMAT + ",Flags,JobName"


@dataclass(frozen=True, slots=True)
class AccountedJob:
    """One allocation of :func:`accounting_argv` output: its :class:`HistoryRow`, name, start
    (epoch seconds, None: not started) and which scheduler started it (``JobRun.how``)."""

    row: HistoryRow
    name: str
    start: int | None
    how: str


def accounting_argv(start: str | None = None, end: str | None = None) -> list[str]:
    """As :func:`history_argv`, in :data:`ACCOUNTING_FORMAT` (a header line first)."""
    return [a.replace(HISTORY_FORMAT, ACCOUNTING_FORMAT) for a in history_argv(start, end)]


def parse_accounting(text: str) -> list[AccountedJob]:
    """:func:`accounting_argv` output → allocations; a row with another number of fields
    than the header (a ``|`` in a job name) or a bad number is skipped, as in
    :func:`parse_history_parsable`."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return []
    head = [h.strip().lower() for h in lines[0].split("|")]
    out = []
    for ln in lines[1:]:
        values = ln.split("|")
        if len(values) != len(head):
            continue
        fields = dict(zip(head, values, strict=True))
        row = _history_row(fields)
        if row is not None:
            out.append(AccountedJob(row, fields.get("jobname", ""), _epoch(fields.get("start")),
                                    started_by(fields.get("flags", ""))))
    return out
