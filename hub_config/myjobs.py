""""My jobs": every Slurm job of one user, for the hub's page and API.

One ``squeue --json`` per user (names and log paths are user-chosen text: JSON keeps each in
its field), shared by every open page for :attr:`MyJobs.cache_seconds` and bounded by
:attr:`MyJobs.squeue_timeout`: many open pages do not multiply the controller's load, and a
hung controller gives an answer ("Slurm did not answer …"), never a hung page. Each job is
shown through the one job view (:func:`sandfill.slurm.jobview.job_view`) with its kind
(``server``, ``dask-worker``, ``batch``), and a link to its log.

The log is the job's StdOut as Slurm reports it, read as the hub reads every user file
(:func:`sandfill.files.read_from`: no symlink, no FIFO, a regular file owned by that user,
from an offset and capped) and only inside that user's home. A job is cancelled only after
the queue confirms it is that user's, and ``scancel`` runs as its owner
(:attr:`MyJobs.cancel_prefix`), so Slurm itself refuses anybody else's job.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import time
from dataclasses import dataclass
from typing import Any

from traitlets import Float, Integer, List, Unicode
from traitlets.config import SingletonConfigurable

from sandfill.files import RefusedFile, read_from
from sandfill.hub.joblog import MAX_TAIL_BYTES, off_loop
from sandfill.slurm import scancel, squeue
from sandfill.slurm.commands import Runner, SlurmCommandError
from sandfill.slurm.jobview import job_view
from sandfill.slurm.squeue import UserJob
from sandfill.slurm.states import check_job_id


class NotYourJob(LookupError):
    """The job is not one of that user's (or Slurm no longer lists it)."""


@dataclass
class _Entry:
    at: float
    jobs: list[UserJob] | None = None
    error: str | None = None


class MyJobs(SingletonConfigurable):
    """The lookups behind "My jobs" (one per hub process: :meth:`instance`)."""

    cache_seconds = Float(
        3.0, min=0.0, max=60.0,
        help="""Seconds (0 to 60) one user's job list is reused: every page and API call for
        that user within this time shares one squeue (a failed one too).""",
    ).tag(config=True)

    squeue_timeout = Float(
        10.0, min=1.0, max=120.0,
        help="""Seconds (1 to 120) the squeue behind "My jobs" may take; after that the page
        says Slurm did not answer, and the hub goes on.""",
    ).tag(config=True)

    log_chunk_bytes = Integer(
        65536, min=1024, max=MAX_TAIL_BYTES,
        help="""The most bytes of a job's log sent in one answer (1 KiB to 1 MiB): the page
        follows a log in chunks of at most this size.""",
    ).tag(config=True)

    log_timeout = Float(
        5.0, min=0.5, max=60.0,
        help="Seconds (0.5 to 60) reading a job's log may take (a home on a hung filesystem).",
    ).tag(config=True)

    cancel_prefix = List(
        Unicode(), default_value=["sudo", "-E", "-u", "{username}"],
        help="""argv prefix of scancel, so a job is cancelled as its owner ({username} is
        replaced; no shell): Slurm itself refuses another user's job. The command gets only
        PATH, SLURM_CONF and the locale (``-E`` keeps exactly those), never the hub's
        environment with its secrets.""",
    ).tag(config=True)

    worker_name_prefix = Unicode(
        "sandfill-worker",
        help="""Job names starting with this are shown as Dask worker jobs (the name
        BackfillSLURMCluster gives them: jobqueue.sandfill.name).""",
    ).tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._cache: dict[tuple[str | None, str], _Entry] = {}
        self._inflight: dict[tuple[str | None, str], asyncio.Future[_Entry]] = {}
        self.queries = 0  # squeue runs so far (tests and metrics read it)

    # ---- the job list ---------------------------------------------------------------------
    async def jobs(self, user: str, slurm_conf: str | None) -> list[UserJob]:
        """``user``'s jobs, from the cache when fresh; :class:`SlurmCommandError` when Slurm
        could not be asked (the message says why)."""
        key = (slurm_conf, user)
        entry = self._cache.get(key)
        if entry is None or time.monotonic() - entry.at > self.cache_seconds:
            fut = self._inflight.get(key)
            if fut is None:  # the first asker queries; the others wait for its answer
                fut = self._inflight[key] = asyncio.ensure_future(self._query(user, slurm_conf))
                fut.add_done_callback(lambda _f: self._inflight.pop(key, None))
            entry = await asyncio.shield(fut)
            self._cache[key] = entry
        if entry.error is not None:
            raise SlurmCommandError(squeue.user_jobs_argv(user), 1, "", entry.error)
        return list(entry.jobs or [])

    async def _query(self, user: str, slurm_conf: str | None) -> _Entry:
        self.queries += 1
        runner = Runner(slurm_conf, timeout=self.squeue_timeout)
        res = await runner.arun(squeue.user_jobs_argv(user))
        if res.returncode == -1:
            return _Entry(time.monotonic(), error=f"Slurm did not answer within {self.squeue_timeout:g} s")
        if res.returncode != 0:
            return _Entry(time.monotonic(), error=f"squeue failed: {res.output[:300] or res.returncode}")
        try:
            return _Entry(time.monotonic(), jobs=squeue.parse_user_jobs(res.stdout, user))
        except ValueError as exc:
            return _Entry(time.monotonic(), error=str(exc))

    def forget(self, user: str, slurm_conf: str | None) -> None:
        """Drop ``user``'s cached list (after a cancel, the next look asks Slurm)."""
        self._cache.pop((slurm_conf, user), None)

    async def job(self, user: str, job_id: str, slurm_conf: str | None, *, fresh: bool = False) -> UserJob:
        """``user``'s job ``job_id``; :class:`NotYourJob` when the queue does not list it as
        theirs, ValueError for an id that is not a Slurm job id."""
        check_job_id(job_id)
        if fresh:
            self.forget(user, slurm_conf)
        for j in await self.jobs(user, slurm_conf):
            if j.status.job_id == job_id:
                return j
        raise NotYourJob(f"job {job_id} is not one of {user}'s jobs in the queue")

    # ---- what the page shows ------------------------------------------------------------
    def kind(self, job: UserJob, server_ids: set[str]) -> str:
        if job.status.job_id in server_ids:
            return "server"
        if (job.status.name or "").startswith(self.worker_name_prefix):
            return "dask-worker"
        return "batch" if job.batch else "allocation"

    def rows(self, jobs: list[UserJob], server_ids: set[str], api_url: str, now: float | None = None) -> list[dict[str, Any]]:
        """One JSON-ready row per job: its kind, name and the one job view's facts."""
        t = time.time() if now is None else now
        out = []
        for j in jobs:
            view = job_view(j.status, now=t).as_dict()
            url = f"{api_url}/{j.status.job_id}"
            out.append({
                **view,
                "kind": self.kind(j, server_ids),
                "name": j.status.name,
                "log_url": f"{url}/log" if j.log_path else None,
                "log_path": j.log_path,
                "cancel_url": url if view["phase"] in {"pending", "running"} else None,
            })
        return out

    # ---- the log --------------------------------------------------------------------------
    async def log_chunk(self, user: str, job: UserJob, offset: int) -> dict[str, Any]:
        """The job's log from ``offset`` (negative: its last chunk), at most
        :attr:`log_chunk_bytes`: ``{"text", "start", "offset", "size", "error"}``: ``text`` begins
        at byte ``start``, and ``offset`` is where the next call starts."""
        path = job.log_path
        base: dict[str, Any] = {"job_id": job.status.job_id, "path": path, "text": "", "offset": max(offset, 0), "size": None, "error": None}
        if not path:
            return {**base, "error": "Slurm gives no log file for this job"}
        try:
            got = await off_loop(f"reading {path}", _read_chunk, path, user, offset, self.log_chunk_bytes, timeout=self.log_timeout)
        except (RefusedFile, TimeoutError, ValueError) as exc:
            return {**base, "error": str(exc)}
        if got is None:
            return {**base, "error": "no log yet"}
        data, start, size = got
        return {**base, "text": data.decode("utf-8", errors="replace"), "start": start, "offset": start + len(data), "size": size}

    # ---- cancel ---------------------------------------------------------------------------
    async def cancel(self, user: str, job_id: str, slurm_conf: str | None) -> UserJob:
        """Cancel ``user``'s job ``job_id`` as ``user``: :class:`NotYourJob` (nothing is
        cancelled) unless a fresh squeue lists it as theirs; :class:`SlurmCommandError`
        when scancel fails."""
        job = await self.job(user, job_id, slurm_conf, fresh=True)
        prefix = [p.replace("{username}", user) for p in self.cancel_prefix]
        runner = Runner(slurm_conf, prefix=prefix, timeout=self.squeue_timeout)
        runner.env = _bare_env(runner.slurm_conf)  # the owner can read their scancel's environment
        (await runner.arun(scancel.cancel_argv([job_id]))).checked()
        self.forget(user, slurm_conf)
        return job


def _bare_env(slurm_conf: str | None) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in {"PATH", "LANG", "LC_ALL"}}
    return {**keep, **({"SLURM_CONF": slurm_conf} if slurm_conf else {})}


def _read_chunk(path: str, user: str, offset: int, max_bytes: int) -> tuple[bytes, int, int] | None:
    """:func:`read_from` for ``user``'s file ``path``, which must lie in ``user``'s home
    (ValueError naming the path otherwise; RefusedFile for a symlink, FIFO, other owner)."""
    try:
        account = pwd.getpwnam(user)
    except KeyError:
        raise ValueError(f"user {user!r} has no account on this machine") from None
    home = os.path.realpath(account.pw_dir)
    parent = os.path.realpath(os.path.dirname(path))
    if not os.path.isabs(path) or not (parent == home or parent.startswith(home + os.sep)):
        raise ValueError(f"{path} is not in {user}'s home ({home}); the hub does not read it")
    return read_from(path, offset, max_bytes, uid=account.pw_uid, owner=user)
