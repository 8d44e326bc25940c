"""Convert a site's own history (``sacct``) into the simulator's jobs.

Two inputs are understood:

* parsable text: ``sacct -a -X -P --format=JobID,User,Partition,Submit,Start,End,Elapsed,
  Timelimit,NCPUS,NNodes,State`` (``|``-separated with a header line; ``TimelimitRaw`` in
  minutes and ``ElapsedRaw`` in seconds are used when present);
* JSON: ``sacct --json`` (Slurm 22.05, OpenAPI v0.0.38 data: ``jobs[].time.submission``,
  ``time.elapsed``, ``time.limit`` in minutes, ``required.CPUs``, ``allocation_nodes``).

Job steps (``123.batch``, ``123.0``) are dropped; jobs that never ran are skipped.
"""

from __future__ import annotations

import json
import os
from datetime import datetime

from sandfill.policies.sim.workload import Job, Workload
from sandfill.units import Duration


def read_sacct(path: str | os.PathLike[str]) -> Workload:
    """Read a file written by ``sacct -P`` or ``sacct --json`` (detected by content)."""
    path = os.fspath(path)
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    return workload_from_sacct_text(text, os.path.basename(path))


SACCT_FORMAT = "JobID,User,Partition,Submit,Start,End,ElapsedRaw,TimelimitRaw,NCPUS,NNodes,State"


def sacct_argv(start: str | None = None, end: str | None = None) -> list[str]:
    """``sacct`` for every user's jobs (allocations only) in ``--start``..``--end``."""
    argv = ["sacct", "-a", "-X", "-P", f"--format={SACCT_FORMAT}"]
    argv += ["--starttime", start or "now-7days"]
    if end:
        argv += ["--endtime", end]
    return argv


def workload_from_sacct_text(text: str, source: str = "sacct") -> Workload:
    """A workload from ``sacct -P`` or ``sacct --json`` output given as text."""
    jobs = parse_sacct_json(text) if text.lstrip().startswith("{") else parse_sacct_parsable(text)
    return _workload(jobs, source)


def parse_sacct_parsable(text: str) -> list[tuple[Job, bool]]:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return []
    head = [h.strip().lower() for h in lines[0].rstrip("|").split("|")]
    out = []
    for ln in lines[1:]:
        row = dict(zip(head, ln.rstrip("|").split("|"), strict=False))
        jid = row.get("jobid", "")
        if "." in jid or not jid:
            continue
        submit = _ts(row.get("submit"))
        if submit is None:
            continue
        if row.get("elapsedraw", "").isdigit():
            run = int(row["elapsedraw"])
        else:
            run = _dur(row.get("elapsed"))
        if row.get("timelimitraw", "").isdigit():
            limit: int | None = int(row["timelimitraw"]) * 60
        else:
            limit = _dur(row.get("timelimit")) or None
        cpus = int(row.get("ncpus") or row.get("alloccpus") or row.get("reqcpus") or 0)
        nodes = int(row["nnodes"]) if row.get("nnodes", "").isdigit() else None
        ran = _ts(row.get("start")) is not None and run > 0
        job_id = int(jid.split("_")[0].split("+")[0])
        out.append(
            (
                Job(job_id, submit, run, max(cpus, 1), row.get("user", "?"), limit, None, nodes,
                    row.get("partition") or None),
                ran and cpus > 0,
            )
        )
    return out


def parse_sacct_json(text: str) -> list[tuple[Job, bool]]:
    data = json.loads(text)
    out = []
    for j in data.get("jobs", []):
        t = j.get("time", {})
        submit = t.get("submission")
        if not submit:
            continue
        run = int(t.get("elapsed") or 0)
        limit = t.get("limit")
        if isinstance(limit, dict):  # newer data: {"set": true, "number": N}
            limit = limit.get("number") if limit.get("set", True) else None
        req = j.get("required", {})
        cpus = int(req.get("CPUs") or req.get("cpus") or 0)
        nodes = j.get("allocation_nodes") or None
        start = t.get("start")
        out.append(
            (
                Job(int(j["job_id"]), int(submit), run, max(cpus, 1), str(j.get("user", "?")),
                    int(limit) * 60 if limit else None, None, int(nodes) if nodes else None,
                    j.get("partition") or None),
                bool(start) and run > 0 and cpus > 0,
            )
        )
    return out


def _workload(rows: list[tuple[Job, bool]], source: str) -> Workload:
    ran = [j for j, ok in rows if ok]
    skipped = len(rows) - len(ran)
    if ran:
        t0 = min(j.submit for j in ran)
        ran = [
            Job(j.id, j.submit - t0, j.run_time, j.cpus, j.user, j.time_limit, j.time_min,
                j.nodes, j.partition)
            for j in ran
        ]
    ran.sort(key=lambda j: (j.submit, j.id))
    return Workload(tuple(ran), source=source, skipped=skipped)


def _ts(text: str | None) -> int | None:
    if not text or text in {"Unknown", "None", "N/A"}:
        return None
    try:
        return int(datetime.fromisoformat(text).timestamp())
    except ValueError:
        return None


def _dur(text: str | None) -> int:
    if not text or text in {"UNLIMITED", "Partition_Limit", "INVALID"}:
        return 0
    try:
        return Duration.parse(text).seconds
    except ValueError:
        return 0
