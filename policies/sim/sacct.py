"""Convert a site's own history (``sacct``) into the simulator's jobs.

Two inputs are understood (read by :func:`sandfill.slurm.sacct.parse_history`):

* parsable text: ``sacct -a -X -P --format=JobID,User,Partition,Submit,Start,End,Elapsed,
  Timelimit,NCPUS,NNodes,State`` (``|``-separated with a header line; ``TimelimitRaw`` in
  minutes and ``ElapsedRaw`` in seconds are used when present);
* JSON: ``sacct --json`` (Slurm 22.05, OpenAPI v0.0.38 data: ``jobs[].time.submission``,
  ``time.elapsed``, ``time.limit`` in minutes, ``required.CPUs``, ``allocation_nodes``).

Job steps (``123.batch``, ``123.0``) are dropped; jobs that never ran are skipped.
"""

from __future__ import annotations

import os

from sandfill.policies.sim.workload import Job, Workload
from sandfill.slurm.sacct import HistoryRow, parse_history


def read_sacct(path: str | os.PathLike[str]) -> Workload:
    """Read a file written by ``sacct -P`` or ``sacct --json`` (detected by content)."""
    path = os.fspath(path)
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    return workload_from_sacct_text(text, os.path.basename(path))


def workload_from_sacct_text(text: str, source: str = "sacct output") -> Workload:
    """A workload from ``sacct -P`` or ``sacct --json`` output given as text: the jobs that
    ran, submit times relative to the first of them."""
    rows = parse_history(text)
    ran = [r for r in rows if r.ran]
    t0 = min((r.submit for r in ran), default=0)
    jobs = sorted((_job(r, t0) for r in ran), key=lambda j: (j.submit, j.id))
    return Workload(tuple(jobs), source=source, skipped=len(rows) - len(ran))


def _job(r: HistoryRow, t0: int) -> Job:
    return Job(r.job_id, r.submit - t0, r.run, max(r.cpus, 1), r.user, r.time_limit, None,
               r.nodes, r.partition)
