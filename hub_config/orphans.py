"""No server job of the hub is ever left untracked.

JupyterHub forgets a server once ``stop()`` returns, whatever happened to its job. When the
``scancel`` fails (a busy or unreachable controller), or the job does not end, or an
``sbatch`` timed out after the job may have been queued, the job goes into the spawner's
*orphans*: kept in its state (so a hub restart keeps it), cancelled by a bounded background
retry, settled before the user's next start (which is refused while one still runs, so a user
never holds two server jobs), and shown on the job page and API (``orphans``).

An orphan entry is a job id, or ``lost@<epoch>@<partition>`` for an sbatch that timed out
while the queue could not be asked: the user's job in that partition submitted since then.

A server job whose start is in flight (from the moment sbatch returns until ``start()``
returns) is kept in the state too (``starting``), committed at once: JupyterHub saves a
spawner's state only when ``start()`` returns, and a hub restart meanwhile drops the pending
server without calling ``stop()``. A new process that loads a ``starting`` job it is not
starting itself knows the start was dropped: the job becomes an orphan (cancelled as above)
and the user is told (``last_end``).
A mixin of :class:`~sandfill.hub.spawner.BackfillSlurmSpawner`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sandfill.slurm import JobStatus, SlurmCommandError
from sandfill.slurm import squeue as squeue_cmd

# (user, server name) -> entries; shared by every spawner object of that server in this process
_ORPHANS: dict[tuple[str, str], set[str]] = {}
_REAPERS: dict[tuple[str, str], asyncio.Task[None]] = {}
# (user, server name) -> the job whose start() runs in this process
_STARTING: dict[tuple[str, str], str] = {}
LOST = "lost@"


class OrphanKeeper:
    """Track, retry and report the cancelling of server jobs JupyterHub has let go of."""

    user: Any
    log: Any
    orm_spawner: Any
    db: Any

    @property
    def orphans(self) -> set[str]:
        return _ORPHANS.setdefault((self.user.name, self.name), set())  # type: ignore[attr-defined]

    @property
    def starting(self) -> str | None:
        """The job whose ``start()`` runs in this process, if any."""
        return _STARTING.get((self.user.name, self.name))  # type: ignore[attr-defined]

    def mark_starting(self, job_id: str | None) -> None:
        """Record (or, with None, forget) the job of the start in flight, committed now."""
        self.forget_starting()
        if job_id:
            _STARTING[(self.user.name, self.name)] = job_id  # type: ignore[attr-defined]
        self.save_orphans()

    def forget_starting(self) -> None:
        """No start in flight (in memory; the next save of the state drops it)."""
        _STARTING.pop((self.user.name, self.name), None)  # type: ignore[attr-defined]

    def dropped_start(self, state: dict[str, Any]) -> str | None:
        """The job of a start another hub process dropped (``starting`` in the loaded state,
        not started here), now an orphan; None when there is none."""
        job_id = state.get("starting")
        if not job_id or job_id == self.starting:
            return None
        self.log.warning("The hub restarted while %s's server job %s was starting: it is cancelled",
                         self.user.name, job_id)
        self.orphans.add(str(job_id))
        self.start_reaper()
        return str(job_id)

    # ---- queries, each bounded ---------------------------------------------------------
    async def _bounded(self, what: str, coro: Any) -> Any:
        try:
            return await asyncio.wait_for(coro, self.cancel_timeout)  # type: ignore[attr-defined]
        except TimeoutError:
            raise SlurmCommandError([what], -1, "", f"timed out after {self.cancel_timeout:g} s") from None  # type: ignore[attr-defined]

    async def cancel_job(self, job_id: str) -> str | None:
        """scancel ``job_id`` (as root); None when Slurm took it, else why not."""
        try:
            await self._bounded("the cancel", self._client(as_user=False).cancel([job_id]))  # type: ignore[attr-defined]
        except SlurmCommandError as exc:
            return str(exc)
        return None

    async def submitted_since(self, since: float, partition: str) -> list[str]:
        """The user's server jobs (named ``jupyterhub-<user>``) in ``partition`` submitted
        while an sbatch that began at ``since`` could still have queued one (up to
        ``submit_timeout`` later): never a job the user submitted by hand, or later.
        SlurmCommandError when the queue cannot be asked."""
        client = self._client(as_user=False)  # type: ignore[attr-defined]
        argv = squeue_cmd.ids_argv("all", [self.user.name], name=f"jupyterhub-{self.user.name}")
        ids = squeue_cmd.parse_ids(await self._bounded("the queue query", client.runner.acheck(argv)))
        statuses: dict[str, JobStatus] = await self._bounded("the queue query", client.squeue(ids)) if ids else {}
        until = since + self.submit_timeout + 5  # type: ignore[attr-defined]
        return sorted(
            (st.job_id for st in statuses.values()
             if st.user == self.user.name and st.partition == partition
             and since - 2 <= (st.submit_time or 0) <= until),
            key=int,
        )

    # ---- keeping and settling ------------------------------------------------------------
    def keep_orphan(self, entry: str, why: str) -> None:
        """Track ``entry`` (a job id or a lost submission) until it is settled."""
        self.log.error("Server job %s of %s is not cancelled yet (%s); the hub keeps trying", entry, self.user.name, why)
        self.orphans.add(entry)
        self.save_orphans()
        self.start_reaper()

    def orphan_state(self, state: dict[str, Any]) -> dict[str, Any]:
        """``state`` with this server's ``orphans`` and ``starting`` as they are now (the one
        writer of those keys: :meth:`get_state` and :meth:`save_orphans`)."""
        state = {k: v for k, v in state.items() if k not in ("orphans", "starting")}
        state["orphans"] = sorted(self.orphans)
        if self.starting:
            state["starting"] = self.starting
        return state

    def save_orphans(self) -> None:
        """Write the orphans into the saved state now (JupyterHub would only at the next
        start or stop)."""
        orm = self.orm_spawner
        if orm is None:
            return
        orm.state = self.orphan_state(dict(orm.state or {}))
        self.db.commit()

    async def settle(self, entry: str) -> bool:
        """One try: True when ``entry`` is settled (its job ended, or Slurm took the cancel)."""
        try:
            if entry.startswith(LOST):
                _, since, partition = entry.split("@", 2)
                ids = await self.submitted_since(float(since), partition)
            else:
                ids = [entry]
                st = (await self._bounded("the queue query", self._client(as_user=False).squeue(ids))).get(entry)  # type: ignore[attr-defined]
                if st is None or st.ended:
                    return True
        except SlurmCommandError as exc:
            self.log.warning("Cannot settle %s of %s yet: %s", entry, self.user.name, exc)
            return False
        errors = [err for job_id in ids if (err := await self.cancel_job(job_id))]
        if errors:
            self.log.warning("scancel for %s of %s failed again: %s", entry, self.user.name, errors[0])
        return not errors

    async def settle_all(self) -> list[str]:
        """Try each orphan once; the entries still unsettled."""
        for entry in sorted(self.orphans):
            if await self.settle(entry):
                self.orphans.discard(entry)
                self.log.info("Server job %s of %s settled (cancelled or ended)", entry, self.user.name)
                self.save_orphans()
        return sorted(self.orphans)

    def start_reaper(self) -> None:
        key = (self.user.name, self.name)  # type: ignore[attr-defined]
        task = _REAPERS.get(key)
        if task is not None and not task.done():
            return
        try:
            _REAPERS[key] = asyncio.get_running_loop().create_task(self._reap())
        except RuntimeError:  # no loop (loaded outside the hub): the next start settles them
            pass

    async def _reap(self) -> None:
        """Retry with a doubling delay, for at most ``cancel_retry_for`` seconds."""
        delay = self.cancel_retry_interval  # type: ignore[attr-defined]
        deadline = time.monotonic() + self.cancel_retry_for  # type: ignore[attr-defined]
        while self.orphans and time.monotonic() < deadline:
            await asyncio.sleep(delay)  # a retry's back-off, not a synchronisation
            await self.settle_all()
            delay = min(delay * 2, 60.0)
        if self.orphans:
            self.log.error("Server job(s) %s of %s still not cancelled after %g s; tried again at the "
                           "user's next start and after a hub restart", sorted(self.orphans), self.user.name,
                           self.cancel_retry_for)  # type: ignore[attr-defined]

    def orphan_message(self) -> str | None:
        if not self.orphans:
            return None
        jobs = ", ".join(sorted(self.orphans))
        return (f"Your previous server job ({jobs}) could not be cancelled yet; the hub keeps trying. "
                "A new server can start once it has ended.")
