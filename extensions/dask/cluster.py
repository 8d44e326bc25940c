"""BackfillSLURMCluster: Dask workers as short Slurm jobs fitted into the schedule's gaps,
retired before their walltime and replaced so the cluster holds its size."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import re
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dask_jobqueue import SLURMCluster
from distributed.core import Status
from distributed.deploy.adaptive import Adaptive
from distributed.diagnostics.plugin import SchedulerPlugin
from distributed.utils import NoOpAwaitable

from sandfill.dask.config import CONFIG_NAME, seconds, setting
from sandfill.dask.job import BackfillSLURMJob
from sandfill.dask.model import WorkerJob, worker_job
from sandfill.dask.planner import GapPlanner
from sandfill.slurm import JobStatus, QueuePoller, SlurmClient

log = logging.getLogger("sandfill.dask.cluster")


@dataclass
class _JobInfo:
    created: float
    job_id: str | None = None
    ever_connected: bool = False
    last_connected: float = 0.0
    retiring: bool = False
    why: str | None = None


class _SeenWorkers(SchedulerPlugin):
    """Remembers the name of every worker that joined (the scheduler runs in-process)."""

    def __init__(self, seen: set[str]) -> None:
        self.seen = seen

    def add_worker(self, scheduler: Any, worker: str) -> None:
        ws = scheduler.workers.get(worker)
        if ws is not None:
            self.seen.add(str(ws.name))


class BackfillAdaptive(Adaptive):
    """Adaptive that sets the cluster's target instead of calling ``scale`` (which would
    stop adaptivity)."""

    async def scale_up(self, n: int) -> None:
        self.cluster._set_target_workers(n)  # type: ignore[attr-defined]


class BackfillSLURMCluster(SLURMCluster):
    """A Dask cluster whose workers are short Slurm jobs that fill the gaps of the schedule.

    Every setting resolves kwarg → ``dask.config`` ``jobqueue.sandfill.*`` → packaged
    default, so ``BackfillSLURMCluster()`` works as it is. ``scale(n)`` means n workers kept:
    workers retire ``retire_margin`` before their job's real end and are replaced
    ``replace_ahead`` earlier still; ``adapt(minimum, maximum)`` does the same within bounds.
    """

    job_cls = BackfillSLURMJob

    def __init__(
        self,
        *,
        queue: str | None = None,
        qos: str | None = None,
        min_walltime: Any = None,
        max_walltime: Any = None,
        retire_margin: Any = None,
        replace_ahead: Any = None,
        max_pending_jobs: int | None = None,
        probe_cache_ttl: Any = None,
        keeper_interval: Any = None,
        lost_worker_grace: Any = None,
        slurm_conf: str | None = None,
        security: Any = None,
        shared_temp_directory: str | None = None,
        log_directory: str | None = None,
        scheduler_options: dict[str, Any] | None = None,
        config_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        cfg = config_name or CONFIG_NAME
        self.slurm_conf = setting("slurm-conf", slurm_conf, cfg) or os.environ.get("SLURM_CONF")
        self.slurm = SlurmClient(self.slurm_conf)
        self.planner = GapPlanner(self.slurm, ttl=seconds("probe-cache-ttl", probe_cache_ttl, cfg))
        self.poller = QueuePoller.shared(self.slurm_conf)
        self.retire_margin = seconds("retire-margin", retire_margin, cfg)
        self.replace_ahead = seconds("replace-ahead", replace_ahead, cfg)
        self.max_pending_jobs = int(setting("max-pending-jobs", max_pending_jobs, cfg))
        if self.max_pending_jobs < 1:
            raise ValueError(f"max-pending-jobs must be at least 1, got {self.max_pending_jobs}")
        self.keeper_interval = seconds("keeper-interval", keeper_interval, cfg)
        self.lost_worker_grace = seconds("lost-worker-grace", lost_worker_grace, cfg)
        self._target_jobs = 0
        self._mode = "scale"
        self._adapt_bounds: tuple[int, int | None] | None = None
        self._info: dict[str, _JobInfo] = {}
        self._history: deque[WorkerJob] = deque(maxlen=100)
        self._keeper: asyncio.Task[None] | None = None
        self.last_error: str | None = None
        self.created = time.time()
        self._waiting = 0  # jobs held back client-side: no gap before a planned start
        self._hold_until = 0.0  # while holding, the schedule is looked at again after this
        self._seen_workers: set[str] = set()  # names of every worker that ever connected
        self.waiting_reason: str | None = None

        if security is None:
            security = setting("security", None, cfg)
        if security is False:
            security = None
        tmp = Path(os.path.expanduser(setting("shared-temp-directory", shared_temp_directory, cfg)))
        tmp.mkdir(parents=True, exist_ok=True, mode=0o700)
        logs = setting("log-directory", log_directory, cfg)
        logs = os.path.expanduser(logs) if logs else None
        queue = setting("queue", queue, cfg) or _policy_partition()
        opts: dict[str, Any] = {"dashboard_address": ":0"}
        if _single_host(self.slurm_conf):  # every node on loopback (the devcluster)
            opts = {"host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"}
            # workers listen (and advertise themselves) on loopback too
            extra = list(kwargs.pop("worker_extra_args", None) or setting("worker-extra-args", None, cfg) or [])
            if "--host" not in extra:
                extra += ["--host", "127.0.0.1"]
            kwargs["worker_extra_args"] = extra
        opts.update(setting("scheduler-options", None, cfg) or {})
        opts.update(scheduler_options or {})
        super().__init__(
            queue=queue,
            qos=qos,
            client=self.slurm,
            planner=self.planner,
            min_walltime=min_walltime,
            max_walltime=max_walltime,
            retire_margin=retire_margin,
            on_submit=self._on_submit,
            security=security,
            shared_temp_directory=str(tmp),
            log_directory=logs,
            scheduler_options=opts,
            config_name=cfg,
            **kwargs,
        )

    # ---- lifecycle ------------------------------------------------------------------------
    async def _start(self) -> None:
        self._shape = self._dummy_job.shape()
        await super()._start()
        self.scheduler.add_plugin(_SeenWorkers(self._seen_workers), name="sandfill-seen-workers")
        # Any client of this scheduler — a kernel that connected by name too — reads the same
        # job model and can scale, over the scheduler's own (TLS) comm.
        self.scheduler.handlers.update(
            {
                "sandfill_model": self._handle_model,
                "sandfill_scale": self._handle_scale,
                "sandfill_adapt": self._handle_adapt,
            }
        )
        self._keeper = asyncio.ensure_future(self._keeper_loop())

    async def _close(self) -> None:
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._keeper
        self._target_jobs = 0
        ids = [i.job_id for i in self._info.values() if i.job_id]
        self.worker_spec.clear()  # every job is cancelled by _correct_state in super()._close()
        await super()._close()
        if ids:
            self.poller.unwatch(ids)

    # ---- sizing -------------------------------------------------------------------------------
    @property
    def processes(self) -> int:
        return int(self._dummy_job.worker_processes)

    def scale(self, n: int | None = None, jobs: int = 0, memory: str | None = None, cores: int | None = None) -> Any:
        """Hold ``n`` workers (or ``jobs`` worker jobs) until told otherwise."""
        if self._adaptive is not None:
            self._adaptive.stop()
            self._adaptive = None
        self._mode = "scale"
        self._adapt_bounds = None
        if n is not None:
            if n < 0:
                raise ValueError(f"cannot scale to a negative number of workers: {n}")
            jobs = math.ceil(n / self.processes)
        elif memory is not None or cores is not None:
            job = self._dummy_job
            if memory is not None:
                from dask.utils import parse_bytes

                jobs = max(jobs, math.ceil(parse_bytes(memory) / job.worker_memory))
            if cores is not None:
                jobs = max(jobs, math.ceil(cores / job.worker_cores))
        self._target_jobs = int(jobs)
        self._poke()
        return NoOpAwaitable() if self.asynchronous else None

    def adapt(self, minimum: int = 0, maximum: int | float = math.inf, **kwargs: Any) -> Adaptive:  # type: ignore[override]
        """Between ``minimum`` and ``maximum`` workers, by load; expiring workers are still
        replaced ahead of time."""
        if minimum < 0 or maximum < minimum:
            raise ValueError(f"adapt needs 0 <= minimum <= maximum, got minimum={minimum}, maximum={maximum}")
        self._mode = "adapt"
        self._adapt_bounds = (int(minimum), None if maximum == math.inf else int(maximum))
        kwargs.setdefault("interval", "1s")
        kwargs.setdefault("wait_count", 3)
        self._target_jobs = max(self._target_jobs, math.ceil(minimum / self.processes))
        if self._adaptive is not None:
            self._adaptive.stop()
        self._adaptive = BackfillAdaptive(self, minimum=minimum, maximum=maximum, **kwargs)
        self._poke()
        return self._adaptive

    def _set_target_workers(self, n: int) -> None:
        self._target_jobs = math.ceil(n / self.processes)
        self._poke()

    async def scale_down(self, workers: Any) -> None:
        """Adaptive's scale-down: the named workers' jobs go, and the target drops with them."""
        mapping = self._worker_to_job()
        names = {mapping.get(str(w), str(w)) for w in workers}
        names = {n for n in names if n in self.worker_spec}
        for n in names:
            self._drop(n, "scaled down")
        self._target_jobs = max(0, self._target_jobs - len(names))
        await self._correct_state()

    @property
    def target(self) -> dict[str, int | str | None]:
        if self._mode == "adapt" and self._adapt_bounds:
            lo, hi = self._adapt_bounds
            return {"mode": "adapt", "n": None, "minimum": lo, "maximum": hi}
        return {"mode": "scale", "n": self._target_jobs * self.processes, "minimum": None, "maximum": None}

    @property
    def plan(self) -> set[str]:
        now = time.time()
        snap = self.poller.snapshot()
        return {w for name in self.worker_spec if not self._expiring(name, snap, now) for w in self._worker_names(name)}

    @property
    def requested(self) -> set[str]:
        return {w for w in self.plan if self._job_of(w) in self.workers}

    # ---- the job-aware model --------------------------------------------------------------
    @property
    def jobs(self) -> list[WorkerJob]:
        """Every worker job: live ones first (in submission order), then recently ended."""
        now = time.time()
        snap = self.poller.snapshot()
        conn = self._connected_by_job()
        out: list[WorkerJob] = []
        for name in sorted(self.worker_spec, key=lambda n: self._info.get(n, _JobInfo(0)).created):
            info = self._info.get(name) or _JobInfo(now)
            st = snap.get(info.job_id) if info.job_id else None
            if info.job_id and st is None:
                st = JobStatus(info.job_id, "PENDING", reason="Submitted", observed=now)
            out.append(
                worker_job(
                    info.job_id,
                    st,
                    workers=sorted(conn.get(name, set())),
                    now=now,
                    retiring=info.retiring or self._expiring(name, snap, now),
                )
            )
        for _ in range(self._waiting):
            out.append(worker_job(None, None, workers=[], now=now, submitting_reason="WaitingForGap"))
        return out + list(reversed(self._history))

    def model(self) -> dict[str, Any]:
        """The cluster as the lab API and the widget show it (docs/lab-api.md)."""
        return {
            "name": self._name,
            "scheduler_address": self.scheduler_address,
            "dashboard_link": self.dashboard_link,
            "target": self.target,
            "workers": self.worker_count,
            "jobs": [j.to_dict() for j in self.jobs[:60]],
            "waiting_reason": self.waiting_reason if self._waiting else None,
            "last_error": self.last_error,
            "created": self.created,
            "now": time.time(),
        }

    async def _handle_model(self, comm: Any = None) -> dict[str, Any]:
        return self.model()

    async def _handle_scale(self, comm: Any = None, n: int = 0) -> dict[str, Any]:
        self.scale(_bounded("n", n))
        return self.model()

    async def _handle_adapt(self, comm: Any = None, minimum: int = 0, maximum: int | None = None) -> dict[str, Any]:
        lo = _bounded("minimum", minimum)
        self.adapt(minimum=lo, maximum=math.inf if maximum is None else _bounded("maximum", maximum))
        return self.model()

    def _repr_html_(self, cluster_status: Any = None) -> str:
        from sandfill.dask.widget import jobs_table_html

        return jobs_table_html(self.model())

    def _widget(self) -> Any:
        from sandfill.dask.widget import ClusterWidget

        if getattr(self, "_cached_widget", None) is None:
            self._cached_widget = ClusterWidget(LocalSource(self))
        return self._cached_widget

    @property
    def worker_count(self) -> int:
        return len(self.scheduler_info.get("workers", {}))

    # ---- the keeper -----------------------------------------------------------------------
    def _poke(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.loop.add_callback(self._keep_once)

    async def _keeper_loop(self) -> None:
        while self.status in (Status.created, Status.starting, Status.running):
            try:
                await self._keep_once()
                self.last_error = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.last_error = str(exc)
                log.exception("backfill keeper round failed")
            await asyncio.sleep(self.keeper_interval)

    async def _keep_once(self) -> None:
        if self.status not in (Status.created, Status.starting, Status.running):
            return
        now = time.time()
        snap = self.poller.snapshot()
        conn = self._connected_by_job()
        changed = False
        for name in list(self.worker_spec):
            info = self._info.setdefault(name, _JobInfo(now))
            ws = conn.get(name, set())
            if ws:
                info.ever_connected = True
                info.last_connected = now
            st = snap.get(info.job_id) if info.job_id else None
            if st is None:
                continue
            if st.ended:
                self._finish(name, st, info.why)
                changed = True
            elif (
                st.running
                and (info.ever_connected or self._connected_once(name))
                and not ws
                and not info.retiring
                and not self._expiring(name, snap, now)
                and now - info.last_connected > self.lost_worker_grace
            ):
                log.warning("job %s lost all its workers: cancelling and replacing it", info.job_id)
                with contextlib.suppress(Exception):
                    await self.slurm.cancel([info.job_id])  # type: ignore[list-item]
                self._finish(name, st, "lost: workers disconnected")
                changed = True

        effective = [n for n in self.worker_spec if not self._expiring(n, snap, now)]
        pending = [n for n in effective if self._pending(n, snap)]
        deficit = self._target_jobs - len(effective)
        self._waiting = 0
        if deficit > 0 and now < self._hold_until:
            self._waiting = deficit  # holding for a gap: look again later, not every round
        elif deficit > 0:
            room = self.max_pending_jobs - len(pending)
            for i in range(max(0, min(deficit, room))):
                plan = await self.planner.pick(**self._shape)
                if plan.hold:
                    self._waiting = deficit - i
                    self.waiting_reason = plan.why
                    self._hold_until = now + max(30.0, self.planner.ttl)
                    break
                for n, spec in self.new_worker_spec().items():
                    self.worker_spec[n] = {**spec, "options": {**spec["options"], "plan": plan}}
                    self._info[n] = _JobInfo(time.time())
                changed = True
        elif deficit < 0:
            running = [n for n in effective if n not in pending]
            order = sorted(pending, key=lambda n: -self._info[n].created) + sorted(
                running, key=lambda n: self._time_left(n, snap, now)
            )
            for n in order[: -deficit]:
                await self._retire(n, snap)
                changed = True
        if changed:
            await self._correct_state()

    async def _retire(self, name: str, snap: dict[str, JobStatus]) -> None:
        """Scale-down: pending jobs are cancelled; running ones retire gracefully first."""
        info = self._info[name]
        st = snap.get(info.job_id) if info.job_id else None
        if st is not None and st.running:
            info.retiring = True
            workers = self._worker_names(name)
            with contextlib.suppress(Exception):
                await self.scheduler_comm.retire_workers(names=workers, remove=True, close_workers=True)
        self._drop(name, "scaled down")

    def _drop(self, name: str, why: str) -> None:
        info = self._info.get(name)
        self.worker_spec.pop(name, None)
        if info is not None:
            snap_st = self.poller.status(info.job_id) if info.job_id else None
            now = time.time()
            if info.job_id:
                self._history.append(
                    worker_job(info.job_id, snap_st or JobStatus(info.job_id, "CANCELLED"), workers=[], now=now, ended_why=why)
                )
            info.why = why

    def _finish(self, name: str, st: JobStatus, why: str | None) -> None:
        info = self._info.pop(name, None)
        self.worker_spec.pop(name, None)
        job = self.workers.pop(name, None)
        if job is not None:
            job.status = Status.closed  # ended in Slurm: nothing left to close
        self._history.append(worker_job(st.job_id, st, workers=[], now=time.time(), ended_why=why))
        if info and info.job_id:
            self.poller.unwatch(info.job_id)

    def _connected_once(self, name: str) -> bool:
        """Did any worker of this job ever reach the scheduler (even between two keeper
        rounds)? Recorded by the _SeenWorkers scheduler plugin."""
        return any(w in self._seen_workers for w in self._worker_names(name))

    def _on_submit(self, job: BackfillSLURMJob) -> None:
        info = self._info.setdefault(str(job.name), _JobInfo(time.time()))
        info.job_id = job.job_id
        self.poller.watch(job.job_id)

    # ---- helpers ------------------------------------------------------------------------------
    def _worker_names(self, name: str) -> list[str]:
        spec = self.worker_spec.get(name) or {}
        if "group" in spec:
            return [f"{name}{suffix}" for suffix in spec["group"]]
        return [str(name)]

    def _worker_to_job(self) -> dict[str, str]:
        return {w: name for name in self.worker_spec for w in self._worker_names(name)}

    def _job_of(self, worker: str) -> str | None:
        return self._worker_to_job().get(worker)

    def _connected_by_job(self) -> dict[str, set[str]]:
        mapping = self._worker_to_job()
        out: dict[str, set[str]] = {}
        for w in self.scheduler_info.get("workers", {}).values():
            wname = str(w.get("name"))
            job = mapping.get(wname)
            if job is not None:
                out.setdefault(job, set()).add(wname)
        return out

    def _status_of(self, name: str, snap: dict[str, JobStatus]) -> JobStatus | None:
        info = self._info.get(name)
        return snap.get(info.job_id) if info and info.job_id else None

    def _pending(self, name: str, snap: dict[str, JobStatus]) -> bool:
        st = self._status_of(name, snap)
        return st is None or st.pending

    def _expiring(self, name: str, snap: dict[str, JobStatus], now: float) -> bool:
        info = self._info.get(name)
        if info is not None and info.retiring:
            return True
        st = self._status_of(name, snap)
        if st is None or not st.running or st.end_time is None:
            return False
        return st.end_time - now <= self._lead(st)

    def _lead(self, st: JobStatus) -> float:
        """How long before its end a job counts as expiring (and is replaced): margin +
        replace-ahead, but never more than 60 % of the job's own walltime."""
        lead = self.retire_margin + self.replace_ahead
        if st.time_limit:
            lead = min(lead, 0.6 * st.time_limit)
        return max(lead, self.retire_margin)

    def _time_left(self, name: str, snap: dict[str, JobStatus], now: float) -> float:
        st = self._status_of(name, snap)
        left = st.time_left(now) if st else None
        return left if left is not None else math.inf


MAX_REMOTE_WORKERS = 1000


def _bounded(name: str, value: Any) -> int:
    """A worker count sent by a remote client: a whole number from 0 to MAX_REMOTE_WORKERS."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_REMOTE_WORKERS:
        raise ValueError(f"{name}: must be a whole number from 0 to {MAX_REMOTE_WORKERS}, not {value!r}")
    return value


class LocalSource:
    """The widget's view of a cluster object in this process."""

    def __init__(self, cluster: BackfillSLURMCluster) -> None:
        self.cluster = cluster

    def model(self) -> dict[str, Any]:
        return self.cluster.model()

    def scale(self, n: int) -> None:
        self.cluster.scale(n)

    def adapt(self, minimum: int, maximum: int) -> None:
        self.cluster.adapt(minimum=minimum, maximum=maximum)


def _single_host(slurm_conf: str | None) -> bool:
    """True when every node the Slurm config names lives on a loopback address."""
    try:
        text = Path(slurm_conf or "/etc/slurm/slurm.conf").read_text()
    except OSError:
        return False
    addrs = re.findall(r"^\s*NodeName=\S+.*?\bNodeAddr=(\S+)", text, flags=re.M | re.I)
    return bool(addrs) and all(a.startswith("127.") or a in {"localhost", "::1"} for a in addrs)


def _policy_partition() -> str | None:
    """The partition the admin policy names for Dask workers, if the policy says."""
    try:
        from sandfill.policies.document.load import load_policy

        return load_policy().role("dask-workers").partition
    except Exception:
        return None
