"""``BackfillSlurmSpawner``: JupyterLab as a Slurm job, with a validated form, live pending
information and one shared queue poller for every server of the hub.

What it changes compared with batchspawner's ``SlurmSpawner`` (which it subclasses, so its
state format and port-report protocol stay the same):

- the form's values are validated into a typed :class:`~sandfill.hub.form.ResourceRequest`
  (also when ``user_options`` come through the REST API), and the batch script is rendered
  from an explicit :class:`~sandfill.hub.script.ScriptContext`, never from raw options;
- job states come from ``QueuePoller.shared()``: one ``squeue`` per round for all servers,
  so scheduler load does not grow with the number of servers; ``poll()`` reads the cache;
- a failed query is UNKNOWN (the server stays), only a job Slurm reports ended is stopped,
  and its end (state, reason, log tail) is kept for the user;
- ``progress()`` reports the job id, Slurm state and reason, the position among pending
  jobs of the partition and the estimated start.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from batchspawner import JobStatus as BatchJobStatus
from batchspawner import SlurmSpawner
from traitlets import Dict, Unicode, default

from sandfill.hub import progress
from sandfill.hub.formflow import FormFlow
from sandfill.hub.joblog import tail_log
from sandfill.hub.orphans import LOST, OrphanKeeper
from sandfill.hub.settings import SpawnerSettings
from sandfill.hub.submit import SpawnFailed, SubmitAsUser
from sandfill.slurm import UNKNOWN, JobStatus, QueuePoller, SlurmCommandError
from sandfill.slurm.nodeaddr import NodeAddrError, node_addresses
from sandfill.slurm.view import SchedulerView, shared_view

_HOST = re.compile(r"[A-Za-z0-9_.:-]+")
#: where Slurm keeps slurm.conf when SLURM_CONF is not set
DEFAULT_SLURM_CONF = "/etc/slurm/slurm.conf"


def bind_line(bindir: str) -> str:
    """The job-script lines that point the server's listen URL at the node's address toward
    the hub's API (a failure ends the job under ``set -e``, its reason in the log)."""
    python = shlex.quote(f"{bindir.rstrip('/')}/python")
    return (
        f'sandfill_url="$({python} -m sandfill.net url "$JUPYTERHUB_SERVICE_URL" --toward "$JUPYTERHUB_API_URL")"\n'
        'export JUPYTERHUB_SERVICE_URL="$sandfill_url"\n'
        'echo "sandfill: the server listens at $JUPYTERHUB_SERVICE_URL"'
    )

# job id → spawners waiting for news about it (progress pages, start loops)
_listeners: dict[str, set[BackfillSlurmSpawner]] = {}
_listening: set[int] = set()
def _on_poller_change(loop: asyncio.AbstractEventLoop) -> Callable[[dict[str, JobStatus]], None]:
    def changed(statuses: dict[str, JobStatus]) -> None:
        def wake() -> None:
            for job_id in statuses:
                for sp in list(_listeners.get(job_id, ())):
                    sp._changed.set()

        loop.call_soon_threadsafe(wake)

    return changed


class BackfillSlurmSpawner(OrphanKeeper, FormFlow, SubmitAsUser, SpawnerSettings, SlurmSpawner):
    """A SlurmSpawner with a validated form, live pending information, one shared queue
    poller and 'unknown, not gone' semantics. Configure it through the site file
    (see ``hub_config/site.example.yaml``) rather than by hand; its settings are those of
    :class:`~sandfill.hub.settings.SpawnerSettings`."""

    # ---- state ------------------------------------------------------------------------------
    job_output_path = Unicode()
    last_end = Dict(help="How the last server job ended (state, reason, log tail); kept across stops.")
    slurm_status: JobStatus | None = None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._changed = asyncio.Event()
        self._port_reported = asyncio.Event()
        self._watching: str | None = None
        self._bind_ip = self.ip  # the configured listen address (self.ip becomes the exec host)

    # ---- shared machinery ---------------------------------------------------------------
    @property
    def poller(self) -> QueuePoller:
        return QueuePoller.shared(self.slurm_conf or None)

    @property
    def view(self) -> SchedulerView:
        return shared_view(self.slurm_conf or None)

    def _watch(self) -> None:
        if self._watching == self.job_id or not self.job_id:
            return
        self._unwatch()
        loop = asyncio.get_running_loop()
        if id(loop) not in _listening:
            _listening.add(id(loop))
            self.poller.add_listener(_on_poller_change(loop))
        self.poller.watch(self.job_id)
        _listeners.setdefault(self.job_id, set()).add(self)
        self._watching = self.job_id

    def _unwatch(self) -> None:
        if self._watching:
            self.poller.unwatch(self._watching)
            _listeners.get(self._watching, set()).discard(self)
            if not _listeners.get(self._watching):
                _listeners.pop(self._watching, None)
            self._watching = None

    # ---- the form (the flow is FormFlow's) ---------------------------------------------
    @default("options_form")
    def _options_form_default(self) -> Callable[[BackfillSlurmSpawner], Any]:
        return _render_options_form

    @default("apply_user_options")
    def _apply_default(self) -> Callable[[BackfillSlurmSpawner, dict[str, Any]], Any]:
        return _apply_user_options

    # ---- submission ---------------------------------------------------------------------
    async def submit_batch_script(self) -> str:
        if self.request is None:
            await self.apply_request(self.user_options or {})
        assert self.request is not None
        home = await self._home()
        script = self.render_script(self.request, home)
        self.log.info("Submitting %s's server job: %s", self.user.name, self.request.describe())
        self.log.debug("Batch script:\n%s", script)
        since = time.time()
        try:
            self.job_id = await self._client(as_user=True).submit(script)
        except SlurmCommandError as exc:
            if exc.returncode != -1:  # -1: timed out (sudo killed), the job may be queued
                raise SpawnFailed(f"Slurm refused the job: {exc.stderr.strip() or exc}") from None
            self.job_id = await self._adopt_after_timeout(since, self.request.partition, str(exc))
        self.job_output_path = self.job_output.replace("{home}", home).replace("%j", self.job_id)
        self.mark_starting(self.job_id)  # committed now: JupyterHub saves the state only when start() returns
        self.log.info("Server job %s submitted for %s", self.job_id, self.user.name)
        return self.job_id

    async def _adopt_after_timeout(self, since: float, partition: str, why: str) -> str:
        """sbatch timed out: the job it queued (if any) is this server's. Adopted when it is
        the one new job, else tracked as an orphan (cancelled later) and the spawn fails."""
        try:
            found = await self.submitted_since(since, partition)
        except SlurmCommandError as exc:
            self.keep_orphan(f"{LOST}{since:.0f}@{partition}", f"sbatch {why}; the queue cannot be asked: {exc}")
            raise SpawnFailed(f"sbatch {why}, and the queue cannot be asked whether the job was queued; "
                              "if it was, the hub cancels it. Try again in a minute.") from None
        if len(found) == 1:
            self.log.warning("sbatch for %s %s, but job %s was queued: adopted", self.user.name, why, found[0])
            return found[0]
        for job_id in found:
            self.keep_orphan(job_id, f"sbatch {why}; one of several new jobs")
        raise SpawnFailed(f"sbatch {why}; " + (f"jobs {', '.join(found)} are being cancelled. " if found else "no job was queued. ")
                          + "Try again in a minute.")

    # ---- status through the shared poller --------------------------------------------------
    async def _status(self, *, next_round: bool = False) -> JobStatus:
        """The job's status from the shared poller: cached (no query), or after the poller's
        next round. Only the first look at a job hurries a round (shared by all callers)."""
        if not self.job_id:
            return JobStatus("", "GONE")
        self._watch()
        p = self.poller
        st = p.status(self.job_id)
        if st is None:
            await asyncio.wrap_future(p.request_refresh())
        elif next_round or time.time() - st.observed > 3 * p.slow_interval:
            await asyncio.wrap_future(p.request_next_round())
        st = p.status(self.job_id) or JobStatus(self.job_id, UNKNOWN)
        self.slurm_status = st
        self.job_status = f"{st.state} {st.exec_host or ''}".strip()
        return st

    async def query_job_status(self) -> BatchJobStatus:
        st = await self._status()
        if st.pending:
            return BatchJobStatus.PENDING
        if st.running:
            return BatchJobStatus.RUNNING
        if not st.known:
            return BatchJobStatus.UNKNOWN
        return BatchJobStatus.NOTFOUND

    def state_ispending(self) -> bool:
        return bool(self.slurm_status and self.slurm_status.pending)

    def state_isrunning(self) -> bool:
        return bool(self.slurm_status and self.slurm_status.running)

    def state_isunknown(self) -> bool:
        return bool(self.slurm_status and not self.slurm_status.known)

    def state_gethost(self) -> str:
        """Where the hub reaches the server: ``exec_host``, else the job's node through
        ``exec_host_map``, else (``exec_host_from_slurm``) the node's ``NodeAddr``."""
        st = self.slurm_status
        if self.exec_host:
            return self.exec_host
        node = (st.exec_host if st else None) or ""
        host = self.exec_host_map.get(node, "")
        if not host and self.exec_host_from_slurm and node:
            try:
                host = node_addresses(self.slurm_conf or DEFAULT_SLURM_CONF).get(node, "")
            except NodeAddrError as exc:
                raise SpawnFailed(f"job {self.job_id} runs on {node!r}, whose address is not known: {exc}") from None
        host = host or node
        if not _HOST.fullmatch(host):
            raise SpawnFailed(f"job {self.job_id} runs on {host!r}, which is not an address")
        return host

    def render_script(self, request: Any, home: str) -> str:
        """The batch script; with ``bind_node_address`` the server's listen address is its
        node's address toward the hub, set just before the server starts."""
        script = str(super().render_script(request, home))
        if not self.bind_node_address:
            return script
        head, sep, tail = script.rpartition("\nexec ")
        if not sep:
            raise SpawnFailed("script_template has no 'exec' line to start the server: cannot set its listen address")
        return f"{head}\n{bind_line(self.singleuser_bin_dir)}{sep}{tail}"

    async def _record_end(self, st: JobStatus, *, by_hub: bool = False, before_start: bool = False) -> None:
        log = await tail_log(self.job_output_path, self.user.name, self.log_tail_bytes, self.lookup_timeout)
        tail = log.text or (f"(log not shown: {log.error})" if log.error else "")
        self.last_end = progress.end_record(st, by_hub=by_hub, log_path=self.job_output_path, log_tail=tail, before_start=before_start)

    def end_message(self) -> str:
        return progress.end_message(self.last_end)

    async def _ended(self, st: JobStatus) -> SpawnFailed:
        """The job ended before the server came up: record it, forget it, say why."""
        await self._record_end(st)
        self.clear_state()
        return SpawnFailed(self.end_message())

    # ---- lifecycle ----------------------------------------------------------------------
    async def start(self) -> tuple[str, int]:  # type: ignore[override]
        if self.orphans and await self.settle_all():
            raise SpawnFailed(self.orphan_message() or "")
        self.port = 0
        self.ip = self._bind_ip
        self._port_reported.clear()
        if self.server:
            self.server.port = 0  # so that JupyterHub's assignment of the real port is a change
        await self.submit_batch_script()
        self._changed.set()
        st = await self._status()
        while not st.running:
            if st.ended:
                raise await self._ended(st)
            st = await self._status(next_round=True)
        self.ip = self.state_gethost()
        self._changed.set()
        await self._wait_for_port()
        self.log.info("Server job %s of %s is up at %s:%s", self.job_id, self.user.name, self.ip, self.port)
        self.mark_starting(None)
        self.db.commit()
        return self.ip, self.port

    async def _wait_for_port(self) -> None:
        """Until the server reports its port (or its job ends), looking at the job once per
        round of the shared poller."""
        while self.port == 0:
            waiter = asyncio.ensure_future(self._port_reported.wait())
            round_ = asyncio.wrap_future(self.poller.request_next_round())
            await asyncio.wait({waiter, round_}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if self.port:
                break
            st = await self._status()
            if st.ended:
                raise await self._ended(st)

    def report_port(self, port: int) -> None:
        """Called by the port-report handler with a validated port. Only the spawner's
        ``port`` changes: JupyterHub copies it into its server record (and commits) when
        ``start()`` returns. (Writing the record here would be rolled back with the
        request's session, and JupyterHub would then see no change to save.)"""
        self.port = port
        self._port_reported.set()
        self._changed.set()

    async def poll(self) -> int | None:
        if not self.job_id:
            return 1
        st = await self._status()
        if st.ended:
            self.log.warning("Server job %s of %s ended: %s %s", self.job_id, self.user.name, st.state, st.reason or "")
            await self._record_end(st)
            self.clear_state()
            return 1
        return None  # pending, running, or unknown: never "gone" on a failed query

    async def stop(self, now: bool = False) -> None:
        if not self.job_id:
            return
        job_id = self.job_id
        before_start = bool(self.slurm_status and self.slurm_status.pending)  # a request cancelled while it waited
        self.log.info("Cancelling server job %s of %s", job_id, self.user.name)
        error = await self.cancel_job(job_id)
        if error:  # JupyterHub forgets the server when stop() returns: the job stays tracked
            self.keep_orphan(job_id, f"scancel failed: {error}")
            return
        if now:
            return
        deadline = time.monotonic() + 20
        st = await self._status()
        while not st.ended and time.monotonic() < deadline:
            st = await asyncio.wait_for(self._status(next_round=True), self.cancel_timeout)
        if st.ended:
            await self._record_end(st, by_hub=True, before_start=before_start)
        else:
            self.keep_orphan(job_id, f"it did not end within 20 s of scancel (last: {st.state})")

    def clear_state(self) -> None:
        self._unwatch()
        self.forget_starting()
        super().clear_state()
        self.job_output_path = ""
        self.slurm_status = None

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        if self.job_output_path:
            state["job_output"] = self.job_output_path
        if self.last_end:
            state["last_end"] = self.last_end
        return self.orphan_state(state)

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.job_output_path = state.get("job_output", "")
        self.last_end = state.get("last_end", {}) or {}
        orphans = [str(e) for e in state.get("orphans", []) or []]
        if orphans:
            self.orphans.update(orphans)
            self.start_reaper()
        dropped = self.dropped_start(state)
        if dropped:  # the server is gone (poll says so, no wait for it), its job is an orphan
            self.job_id = self.job_status = ""
            self.last_end = progress.dropped_record(dropped)

    # ---- what the user sees -------------------------------------------------------------
    def job_info(self) -> dict[str, Any]:
        """The current job for the hub page and API (cached status, no query), and the jobs
        the hub is still cancelling (``orphans``, ``orphan_message``)."""
        info = progress.job_info(
            self.job_id,
            self.slurm_status,
            request=self.request.as_options() if self.request else (self.user_options or None),
            last_end=self.last_end,
            walltime_warning=self.walltime_warning.seconds,
        )
        return {**info, "orphans": sorted(self.orphans), "orphan_message": self.orphan_message()}

    async def pending_event(self) -> dict[str, Any]:
        """One progress event describing the job now."""
        if not self.job_id:
            return progress.pending_event(None, None)
        st = self.slurm_status or await self._status()
        position = None
        if st.pending:
            positions, _ = await self.view.safe(self.view.pending_positions(), {})
            position = positions.get(self.job_id)
        partition = self.request.partition if self.request else None
        asked = self.request.describe() if self.request else None
        return progress.pending_event(self.job_id, st, position=position, partition=partition, port=self.port, asked=asked)

    async def progress(self) -> AsyncIterator[dict[str, Any]]:  # type: ignore[override]
        last: str | None = None
        while True:
            event = await self.pending_event()
            key = event.get("html_message") or event["message"]
            if key != last:
                last = key
                yield event
            if event["progress"] >= 90 or (self.slurm_status and self.slurm_status.ended):
                return
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), self.pending_refresh)
            except TimeoutError:
                pass


async def _render_options_form(spawner: BackfillSlurmSpawner) -> str:
    return await spawner.render_options_form()


async def _apply_user_options(spawner: BackfillSlurmSpawner, options: dict[str, Any]) -> None:
    await spawner.apply_request(options)
