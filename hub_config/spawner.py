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
import os
import pwd
import re
import sys
import time
from collections.abc import AsyncIterator, Callable
from html import escape
from pathlib import Path
from typing import Any

from batchspawner import JobStatus as BatchJobStatus
from batchspawner import SlurmSpawner
from traitlets import Dict, Float, Integer, List, TraitError, Unicode, default, validate

from sandfill.hub.form import (
    Choices,
    FormError,
    ResourceRequest,
    allowed_partitions,
    flatten_form,
    render_form,
    validate_request,
)
from sandfill.hub.joblog import read_log_tail
from sandfill.hub.script import DEFAULT_TEMPLATE, build_context, render_script
from sandfill.hub.site import DEFAULT_PROFILES, Profile, SiteError, _profiles
from sandfill.hub.units import MemoryMB, Walltime, format_walltime
from sandfill.slurm import UNKNOWN, JobStatus, QueuePoller, SlurmClient, SlurmCommandError
from sandfill.slurm.view import SchedulerView, shared_view

_USER = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")
_HOST = re.compile(r"^[A-Za-z0-9_.:-]+$")

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


class SpawnFailed(RuntimeError):
    """The job ended before the server came up; the message says why (Slurm's state and
    reason and the tail of the job's log)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.jupyterhub_message = message


class BackfillSlurmSpawner(SlurmSpawner):
    """A SlurmSpawner with a validated form, live pending information, one shared queue
    poller and 'unknown, not gone' semantics. Configure it through the site file
    (see ``hub_config/site.example.yaml``) rather than by hand."""

    # ---- configuration -----------------------------------------------------------------
    slurm_conf = Unicode(
        help="""Path of the cluster's slurm.conf, passed as SLURM_CONF to every Slurm command
        and to the server job. Empty: the environment's SLURM_CONF, else Slurm's default.""",
    ).tag(config=True)

    @default("slurm_conf")
    def _slurm_conf_default(self) -> str:
        return os.environ.get("SLURM_CONF", "")

    profiles = List(
        help="""Profiles offered on the form, each a dict with name, description, cpus,
        memory (e.g. "4G"), walltime ("HH:MM:SS") and optionally partition (default:
        ``default_partition``). The first one is preselected.""",
    ).tag(config=True)

    @default("profiles")
    def _profiles_default(self) -> list[Profile]:
        return list(DEFAULT_PROFILES)

    @validate("profiles")
    def _check_profiles(self, proposal: dict[str, Any]) -> list[Profile]:
        value = proposal["value"]
        if all(isinstance(p, Profile) for p in value):
            return list(value)
        try:
            return list(_profiles([p if isinstance(p, dict) else p.__dict__ for p in value]))
        except SiteError as exc:
            raise TraitError(str(exc)) from None

    partitions = List(
        Unicode(),
        default_value=["interactive"],
        help="""Partitions users may choose (a whitelist, in display order). Partitions the
        scheduler does not have are hidden; anything else submitted is rejected.""",
    ).tag(config=True)

    default_partition = Unicode(
        "interactive",
        help="Partition used when neither the form nor the profile names one (the interactive tier).",
    ).tag(config=True)

    @validate("partitions")
    def _check_partitions(self, proposal: dict[str, Any]) -> list[str]:
        for p in proposal["value"]:
            if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", p):
                raise TraitError(f"partitions: {p!r} is not a partition name")
        if not proposal["value"]:
            raise TraitError("partitions: at least one partition is needed")
        return list(proposal["value"])

    max_cpus = Integer(8, help="Most CPUs one server may ask for (also capped by the partition's nodes).").tag(config=True)
    max_memory = MemoryMB(32768, help="Most memory one server may ask for, e.g. 32G (also capped by the nodes).").tag(config=True)
    max_walltime = Walltime(8 * 3600, help="Longest walltime one server may ask for, e.g. 08:00:00 (also capped by the partition's MaxTime).").tag(config=True)

    @validate("max_cpus")
    def _check_max_cpus(self, proposal: dict[str, Any]) -> int:
        if proposal["value"] < 1:
            raise TraitError(f"max_cpus: {proposal['value']} must be at least 1")
        return int(proposal["value"])

    exec_host = Unicode(
        "",
        help="""Address at which the hub reaches every server job, whatever node it runs on.
        Set it to 127.0.0.1 for the devcluster, whose node names (node1…) do not resolve.
        Empty: the job's batch host (mapped through ``exec_host_map``).""",
    ).tag(config=True)

    exec_host_map = Dict(
        Unicode(),
        help="Map Slurm node names to addresses the hub can reach, e.g. {'node1': '10.0.0.11'}.",
    ).tag(config=True)

    job_output = Unicode(
        "{home}/sandfill-jupyter-%j.log",
        help="""The job's output file ({home} is the user's home, %j the job id). The user
        reads its tail from the hub page, and it is shown when a job ends.""",
    ).tag(config=True)

    script_template = Unicode(
        DEFAULT_TEMPLATE,
        help="""Jinja2 template of the batch script. It sees only the fields of
        sandfill.hub.script.ScriptContext (typed, validated values), never raw form input.""",
    ).tag(config=True)

    script_prologue = Unicode(
        "",
        help="Shell lines run in the job before the server starts (site-defined, e.g. 'module load python').",
    ).tag(config=True)

    extra_directives = List(
        Unicode(),
        help="Extra '#SBATCH --option=value' lines (site-defined), e.g. ['#SBATCH --qos=interactive'].",
    ).tag(config=True)

    submit_prefix = List(
        Unicode(),
        default_value=["sudo", "-E", "-u", "{username}"],
        help="""argv prefix for sbatch so the job is submitted as the user (no shell is
        involved; {username} is replaced). sudo resets PATH: the script sets PATH itself.""",
    ).tag(config=True)

    singleuser_bin_dir = Unicode(
        help="Directory holding jupyterhub-singleuser and batchspawner-singleuser (default: this Python's bin).",
    ).tag(config=True)

    @default("singleuser_bin_dir")
    def _bin_default(self) -> str:
        return str(Path(sys.executable).parent)

    walltime_warning = Walltime(
        600,
        help="""How long before the walltime ends the server warns the user (a JupyterLab
        notification from sandfill's walltime extension, and a log line).""",
    ).tag(config=True)

    log_tail_bytes = Integer(8192, help="How much of the end of the job's log the hub shows.").tag(config=True)

    pending_refresh = Float(
        2.0,
        help="Seconds between updates of the pending page when nothing changed (estimates, position).",
    ).tag(config=True)

    @validate("pending_refresh")
    def _check_refresh(self, proposal: dict[str, Any]) -> float:
        if not 0.1 <= proposal["value"] <= 60:
            raise TraitError(f"pending_refresh: {proposal['value']} must be between 0.1 and 60 s")
        return float(proposal["value"])

    # ---- state ------------------------------------------------------------------------------
    job_output_path = Unicode()
    last_end = Dict(help="How the last server job ended (state, reason, log tail); kept across stops.")
    request: ResourceRequest | None = None
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

    def _client(self, as_user: bool) -> SlurmClient:
        prefix: list[str] = []
        if as_user:
            prefix = [p.replace("{username}", self._username()) for p in self.submit_prefix]
        return SlurmClient(self.slurm_conf or None, prefix=prefix, env=self._submit_env() if as_user else None)

    def _username(self) -> str:
        name = self.user.name
        if not _USER.match(name):
            raise SpawnFailed(f"user name {name!r} cannot be used as a Slurm user")
        return name

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

    # ---- the form ----------------------------------------------------------------------
    async def choices(self) -> Choices:
        view = self.view
        live, err = await view.safe(view.partitions(), None)
        assocs, err2 = await view.safe(view.associations(self.user.name), [])
        accounts = tuple(sorted({a.account for a in assocs}))
        parts = allowed_partitions(self.partitions, live)
        default_part = self.default_partition if self.default_partition in parts else next(iter(parts), self.default_partition)
        return Choices(
            profiles=tuple(p for p in self.profiles if (p.partition or default_part) in parts),
            partitions=parts,
            default_partition=default_part,
            max_cpus=self.max_cpus,
            max_memory_mb=self.max_memory,
            max_walltime_s=self.max_walltime,
            accounts=accounts,
            default_account=None,
            scheduler_error=err or err2,
        )

    @default("options_form")
    def _options_form_default(self) -> Callable[[BackfillSlurmSpawner], Any]:
        return _render_options_form

    async def render_options_form(self) -> str:
        previous = None
        if self.orm_spawner is not None and self.orm_spawner.user_options:
            try:
                previous = validate_request(self.orm_spawner.user_options, await self.choices())
            except FormError:
                previous = None
        return render_form(await self.choices(), previous)

    async def options_from_form(self, formdata: dict[str, list[str]]) -> dict[str, Any]:  # type: ignore[override]
        request = validate_request(flatten_form(formdata), await self.choices())
        return request.as_options()

    @default("apply_user_options")
    def _apply_default(self) -> Callable[[BackfillSlurmSpawner, dict[str, Any]], Any]:
        return _apply_user_options

    async def apply_request(self, options: dict[str, Any]) -> ResourceRequest:
        """Validate ``user_options`` (from the form or the REST API) into ``self.request``."""
        self.request = validate_request(options or {}, await self.choices())
        return self.request

    # ---- submission ---------------------------------------------------------------------
    def _home(self) -> str:
        try:
            home = pwd.getpwnam(self._username()).pw_dir
        except KeyError:
            raise SpawnFailed(f"user {self.user.name!r} has no account on this machine") from None
        if not re.match(r"^/[A-Za-z0-9_./-]+$", home):
            raise SpawnFailed(f"home directory {home!r} cannot be used in a batch script")
        return home

    def _submit_env(self) -> dict[str, str]:
        env = {k: v for k, v in self.get_env().items() if re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", k)}
        if self.slurm_conf:
            env["SLURM_CONF"] = self.slurm_conf
        env["SANDFILL_WALLTIME_WARNING"] = str(self.walltime_warning)
        return env

    def render_script(self, request: ResourceRequest) -> str:
        home = self._home()
        output = self.job_output.replace("{home}", home)
        bindir = self.singleuser_bin_dir
        command = [
            os.path.join(bindir, "batchspawner-singleuser"),
            os.path.join(bindir, "jupyterhub-singleuser"),
            *self.get_args(),
        ]
        ctx = build_context(
            request,
            username=self._username(),
            home=home,
            output=output,
            env=self._submit_env(),
            path=f"{bindir}:/usr/local/bin:/usr/bin:/bin",
            command=command,
            extra_directives=self.extra_directives,
            prologue=self.script_prologue,
        )
        return render_script(self.script_template, ctx)

    async def submit_batch_script(self) -> str:
        if self.request is None:
            await self.apply_request(self.user_options or {})
        assert self.request is not None
        script = self.render_script(self.request)
        self.log.info("Submitting %s's server job: %s", self.user.name, self.request.describe())
        self.log.debug("Batch script:\n%s", script)
        try:
            self.job_id = await self._client(as_user=True).submit(script)
        except SlurmCommandError as exc:
            raise SpawnFailed(f"Slurm refused the job: {exc.stderr.strip() or exc}") from None
        self.job_output_path = self.job_output.replace("{home}", self._home()).replace("%j", self.job_id)
        self.log.info("Server job %s submitted for %s", self.job_id, self.user.name)
        return self.job_id

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
        st = self.slurm_status
        if self.exec_host:
            return self.exec_host
        host = (st.exec_host if st else None) or ""
        host = self.exec_host_map.get(host, host)
        if not _HOST.match(host):
            raise SpawnFailed(f"job {self.job_id} runs on {host!r}, which is not an address")
        return host

    def _record_end(self, st: JobStatus, *, by_hub: bool = False) -> None:
        tail = ""
        if self.job_output_path:
            tail = read_log_tail(self.job_output_path, self.user.name, self.log_tail_bytes) or ""
        self.last_end = {
            "job_id": st.job_id,
            "state": st.state,
            "reason": st.reason,
            "exit_code": st.exit_code,
            "ended": time.time(),
            "stopped_by_hub": by_hub,
            "log_path": self.job_output_path,
            "log_tail": tail,
        }

    def end_message(self) -> str:
        e = self.last_end
        if not e:
            return "The server job ended."
        words = {
            "TIMEOUT": "reached its walltime",
            "CANCELLED": "was cancelled",
            "NODE_FAIL": "was lost with its node (node failure)",
            "FAILED": "failed",
            "OUT_OF_MEMORY": "ran out of memory",
            "PREEMPTED": "was preempted",
            "COMPLETED": "exited",
            "GONE": "is no longer known to Slurm",
        }
        msg = f"Slurm job {e['job_id']} {words.get(e['state'], 'ended')} ({e['state']}"
        if e.get("reason"):
            msg += f", {e['reason']}"
        if e.get("exit_code"):
            msg += f", exit code {e['exit_code']}"
        msg += ")."
        if e.get("log_tail"):
            lines = e["log_tail"].rstrip().splitlines()[-15:]
            msg += "\nLast lines of the job's log:\n" + "\n".join(lines)
        return msg

    # ---- lifecycle ----------------------------------------------------------------------
    async def start(self) -> tuple[str, int]:  # type: ignore[override]
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
                self._record_end(st)
                self.clear_state()
                raise SpawnFailed(self.end_message())
            st = await self._status(next_round=True)
        self.ip = self.state_gethost()
        self._changed.set()
        while self.port == 0:
            waiter = asyncio.ensure_future(self._port_reported.wait())
            round_ = asyncio.wrap_future(self.poller.request_next_round())
            await asyncio.wait({waiter, round_}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if self.port:
                break
            st = await self._status()
            if st.ended:
                self._record_end(st)
                self.clear_state()
                raise SpawnFailed(self.end_message())
        self.log.info("Server job %s of %s is up at %s:%s", self.job_id, self.user.name, self.ip, self.port)
        self.db.commit()
        return self.ip, self.port

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
            self._record_end(st)
            self.clear_state()
            return 1
        return None  # pending, running, or unknown: never "gone" on a failed query

    async def stop(self, now: bool = False) -> None:
        if not self.job_id:
            return
        job_id = self.job_id
        self.log.info("Cancelling server job %s of %s", job_id, self.user.name)
        try:
            await self._client(as_user=False).cancel([job_id])
        except SlurmCommandError as exc:
            self.log.error("scancel %s failed: %s", job_id, exc)
        if now:
            return
        deadline = time.monotonic() + 20
        st = await self._status()
        while not st.ended and time.monotonic() < deadline:
            st = await self._status(next_round=True)
        if st.ended:
            self._record_end(st, by_hub=True)
        else:
            self.log.warning("Server job %s did not end within 20 s of scancel (last: %s)", job_id, st.state)

    def clear_state(self) -> None:
        self._unwatch()
        super().clear_state()
        self.job_output_path = ""
        self.slurm_status = None

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        if self.job_output_path:
            state["job_output"] = self.job_output_path
        if self.last_end:
            state["last_end"] = self.last_end
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.job_output_path = state.get("job_output", "")
        self.last_end = state.get("last_end", {}) or {}

    # ---- what the user sees -------------------------------------------------------------
    def job_info(self) -> dict[str, Any]:
        """The current job for the hub page and API (cached status, no query)."""
        st = self.slurm_status
        info: dict[str, Any] = {
            "job_id": self.job_id or None,
            "state": st.state if st else None,
            "reason": st.reason if st else None,
            "partition": st.partition if st else None,
            "nodes": st.nodes if st else None,
            "time_left": None,
            "end_time": st.end_time if st else None,
            "request": self.request.as_options() if self.request else (self.user_options or None),
            "last_end": self.last_end or None,
            "walltime_warning": self.walltime_warning,
        }
        if st is not None:
            info["time_left"] = st.time_left()
            if st.pending:
                info["estimated_start"] = st.start_time
        return info

    async def pending_event(self) -> dict[str, Any]:
        """One progress event describing the job now."""
        if not self.job_id:
            return {"progress": 10, "message": "Submitting the server job to Slurm…"}
        st = self.slurm_status or await self._status()
        if st.pending:
            positions, _ = await self.view.safe(self.view.pending_positions(), {})
            pos = positions.get(self.job_id)
            part = st.partition or (self.request.partition if self.request else "?")
            reason = st.reason or "waiting"
            words = [f"Job {self.job_id} is {st.state} ({reason})"]
            html = [
                f'Job <b class="sandfill-job-id">{escape(self.job_id)}</b> is '
                f'<span class="sandfill-state">{escape(st.state)}</span> '
                f'(reason: <span class="sandfill-reason">{escape(reason)}</span>)'
            ]
            if pos is not None:
                words.append(f"position {pos[0]} of {pos[1]} pending in {part}")
                html.append(f'position <span class="sandfill-position">{pos[0]} of {pos[1]}</span> pending in {escape(part)}')
            start = _describe_start(st.start_time)
            words.append(f"estimated start: {start}")
            html.append(f'estimated start: <span class="sandfill-start">{escape(start)}</span>')
            return {"progress": 30, "message": " · ".join(words), "html_message": " · ".join(html)}
        if st.running:
            if self.port:
                return {"progress": 90, "message": f"Job {self.job_id} running on {st.nodes}; JupyterLab is starting at port {self.port}…"}
            return {"progress": 70, "message": f"Job {self.job_id} is RUNNING on {st.nodes}; waiting for JupyterLab to report its port…"}
        if not st.known:
            return {"progress": 30, "message": f"Job {self.job_id}: the scheduler is not answering right now (state unknown); still waiting…"}
        return {"progress": 100, "message": f"Job {self.job_id} ended ({st.state})."}

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


def _describe_start(start: float | None) -> str:
    if start is None:
        return "not yet estimated by Slurm"
    left = start - time.time()
    clock = time.strftime("%H:%M:%S", time.localtime(start))
    if left <= 0:
        return f"{clock} (as soon as resources free up)"
    return f"{clock} (in {format_walltime(int(left))})"


async def _render_options_form(spawner: BackfillSlurmSpawner) -> str:
    return await spawner.render_options_form()


async def _apply_user_options(spawner: BackfillSlurmSpawner, options: dict[str, Any]) -> None:
    await spawner.apply_request(options)
