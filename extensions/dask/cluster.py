"""BackfillSLURMCluster: Dask workers as short Slurm jobs fitted into the schedule's gaps,
retired before their walltime and replaced so the cluster holds its size (the loop that does
so is :mod:`sandfill.dask.keeper`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import shlex
import sys
import time
from typing import Any

from dask_jobqueue import SLURMCluster
from distributed.deploy.adaptive import Adaptive
from distributed.security import Security
from distributed.utils import NoOpAwaitable, clean_dashboard_address, format_dashboard_link

from sandfill.dask.config import CONFIG_NAME, refuse_insecure, seconds, setting, worker_count
from sandfill.dask.job import BackfillSLURMJob
from sandfill.dask.keeper import Keeper, SeenWorkers
from sandfill.dask.model import WorkerJob
from sandfill.dask.placement import PlacementScheduler, TimeLeftFeed
from sandfill.dask.planner import GapPlanner
from sandfill.dask.preemption import preemptable_flag, preemptable_partition
from sandfill.dask.widget import ClusterWidget, LocalSource, jobs_table_html
from sandfill.files import private_dir
from sandfill.net import AddressError, local_address_toward
from sandfill.slurm import SlurmClient
from sandfill.slurm.nodeaddr import NodeAddrError, node_addresses
from sandfill.slurm.policy_meta import role_partition
from sandfill.slurm.remote import poller_for
from sandfill.slurm.view import schedule_for
from sandfill.units import parse_memory

log = logging.getLogger("sandfill.dask.cluster")

#: the policy role whose partition takes Dask workers when ``jobqueue.sandfill.queue`` is unset
WORKER_ROLE = "dask-workers"
#: where every dashboard (the scheduler's and each worker's) listens: they have no
#: authentication of their own, and the scheduler's is reached through the Jupyter server's
#: authenticated proxy (jupyter-server-proxy: ``<prefix>proxy/<port>/status``)
LOOPBACK = "127.0.0.1"


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
    Workers go to ``queue``, else the partition the live cluster's policy names for Dask
    workers (``# sandfill-policy:`` metadata), else Slurm's default partition; with
    ``preemptable=True``, to the policy's preemptable tier (role ``dask-preemptable``), where
    higher tiers may preempt them: each retires within the grace time and is replaced.
    """

    job_cls = BackfillSLURMJob

    def __init__(
        self,
        *,
        queue: str | None = None,
        preemptable: bool | None = None,
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
        config_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        cfg = config_name or CONFIG_NAME
        self.slurm_conf = setting("slurm-conf", slurm_conf, cfg) or os.environ.get("SLURM_CONF")
        self.slurm = SlurmClient(self.slurm_conf)
        self.poller = poller_for(self.slurm_conf)  # the hub's sandfill service under a hub, else this process's
        self.planner = GapPlanner(self.slurm, ttl=seconds("probe-cache-ttl", probe_cache_ttl, cfg),
                                  schedule=schedule_for(self.poller, self.slurm))
        self.keeper = Keeper(
            self,
            retire_margin=seconds("retire-margin", retire_margin, cfg),
            replace_ahead=seconds("replace-ahead", replace_ahead, cfg),
            max_pending_jobs=int(setting("max-pending-jobs", max_pending_jobs, cfg)),
            interval=seconds("keeper-interval", keeper_interval, cfg),
            lost_worker_grace=seconds("lost-worker-grace", lost_worker_grace, cfg),
        )
        #: a worker job sized for a task's declared duration gets this much more (start-up)
        self.duration_slack = seconds("duration-slack", None, cfg)
        kwargs.setdefault("scheduler_cls", PlacementScheduler)  # placement by time left
        self._mode = "scale"
        self._adapt_bounds: tuple[int, int | None] | None = None
        self._keeper_task: asyncio.Task[None] | None = None
        self.created = time.time()
        #: the Jupyter server's base URL, under which ``proxy/<port>/status`` reaches the
        #: dashboard (the lab extension sets its own; a kernel under JupyterHub reads it here)
        self.proxy_prefix: str | None = os.environ.get("JUPYTERHUB_SERVICE_PREFIX")
        super().__init__(
            queue=_worker_queue(self.slurm_conf or DEFAULT_SLURM_CONF, setting("queue", queue, cfg),
                                setting("preemptable", preemptable, cfg)),
            qos=qos,
            client=self.slurm,
            planner=self.planner,
            min_walltime=min_walltime,
            max_walltime=max_walltime,
            retire_margin=retire_margin,
            on_submit=self.keeper.on_submit,
            canceller=self.keeper.cancel,
            config_name=cfg,
            **_deploy_options(self.slurm_conf, cfg, kwargs),
        )

    # ---- lifecycle ------------------------------------------------------------------------
    async def _start(self) -> None:
        self._shape = self._dummy_job.shape()
        await super()._start()
        self.scheduler.add_plugin(SeenWorkers(self.keeper), name="sandfill-seen-workers")
        if isinstance(self.scheduler, PlacementScheduler):  # the keeper feeds it worker ends
            self.keeper.placement = TimeLeftFeed(self.scheduler, retire_margin=self.keeper.retire_margin, slack=self.duration_slack)
        # Any client of this scheduler — a kernel that connected by name too — reads the same
        # job model and can scale, over the scheduler's own (TLS) comm.
        self.scheduler.handlers.update(
            {
                "sandfill_model": self._handle_model,
                "sandfill_scale": self._handle_scale,
                "sandfill_adapt": self._handle_adapt,
            }
        )
        self._keeper_task = asyncio.ensure_future(self.keeper.loop())

    async def _close(self) -> None:
        if self._keeper_task is not None:
            self._keeper_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._keeper_task
        self.keeper.target_jobs = 0
        ids = [i.job_id for i in self.keeper.info.values() if i.job_id]
        self.worker_spec.clear()  # every job is cancelled by _correct_state in super()._close()
        await super()._close()
        await self._last_cancels()
        if ids:
            self.poller.unwatch(ids)

    async def _last_cancels(self) -> None:
        """One more try of every scancel that failed; what is still owed is named in the log
        (those jobs end at their walltime, at the latest)."""
        for job_id in list(self.keeper.cancels_owed):
            await self.keeper.cancel(job_id)
        if self.keeper.cancels_owed:
            left = sorted(self.keeper.cancels_owed)
            log.error("cluster %s closed, but worker job(s) %s could not be cancelled (%s): they end "
                      "at their walltime; `scancel %s` ends them now", self._name, ", ".join(left),
                      self.keeper.cancels_owed[left[0]].error, " ".join(left))

    # ---- sizing -------------------------------------------------------------------------------
    @property
    def processes(self) -> int:
        return int(self._dummy_job.worker_processes)

    def scale(self, n: int | None = None, jobs: int = 0, memory: str | None = None, cores: int | None = None) -> Any:
        """Hold ``n`` workers (or ``jobs`` worker jobs, or enough jobs for ``memory`` or
        ``cores`` in all) until told otherwise."""
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
                jobs = max(jobs, math.ceil(parse_memory(memory, key="memory") / job.memory_mib))
            if cores is not None:
                jobs = max(jobs, math.ceil(cores / job.worker_cores))
        self.keeper.target_jobs = int(jobs)
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
        self.keeper.target_jobs = max(self.keeper.target_jobs, math.ceil(minimum / self.processes))
        if self._adaptive is not None:
            self._adaptive.stop()
        self._adaptive = BackfillAdaptive(self, minimum=minimum, maximum=maximum, **kwargs)
        self._poke()
        return self._adaptive

    def _set_target_workers(self, n: int) -> None:
        self.keeper.target_jobs = math.ceil(n / self.processes)
        self._poke()

    async def scale_down(self, workers: Any) -> None:
        """Adaptive's scale-down: the named workers' jobs go, and the target drops with them."""
        mapping = self.keeper.worker_to_job()
        names = {mapping.get(str(w), str(w)) for w in workers}
        names = {n for n in names if n in self.worker_spec}
        for n in names:
            self.keeper.drop(n, "scaled down")
        self.keeper.target_jobs = max(0, self.keeper.target_jobs - len(names))
        await self._correct_state()

    @property
    def target(self) -> dict[str, int | str | None]:
        if self._mode == "adapt" and self._adapt_bounds:
            lo, hi = self._adapt_bounds
            return {"mode": "adapt", "n": None, "minimum": lo, "maximum": hi}
        return {"mode": "scale", "n": self.keeper.target_jobs * self.processes, "minimum": None, "maximum": None}

    @property
    def plan(self) -> set[str]:
        now = time.time()
        snap = self.poller.snapshot()
        k = self.keeper
        return {w for name in self.worker_spec if not k.expiring(name, snap, now) for w in k.worker_names(name)}

    @property
    def requested(self) -> set[str]:
        mapping = self.keeper.worker_to_job()
        return {w for w in self.plan if mapping.get(w) in self.workers}

    def _poke(self) -> None:
        """Run a keeper round soon (after a scale or adapt), not only at the next tick."""
        with contextlib.suppress(RuntimeError):
            self.loop.add_callback(self.keeper.keep_once)

    # ---- the job-aware model --------------------------------------------------------------
    @property
    def jobs(self) -> list[WorkerJob]:
        """Every worker job: live ones first (in submission order), then recently ended."""
        return self.keeper.jobs()

    def model(self) -> dict[str, Any]:
        """The cluster as the lab API and the widget show it (docs/lab-api.md)."""
        return {
            "name": self._name,
            "scheduler_address": self.scheduler_address,
            "dashboard_link": self.dashboard_link,
            "target": self.target,
            "workers": self.worker_count,
            "jobs": [j.to_dict() for j in self.jobs[:60]],
            "waiting_reason": self.keeper.waiting_reason if self.keeper.waiting else None,
            "last_error": self.keeper.last_error,
            "cancels_owed": [
                {"job_id": j, "error": o.error, "tries": o.tries}
                for j, o in sorted(self.keeper.cancels_owed.items())
            ],
            "next_planned_start": self.planner.next_planned_start(getattr(self, "_shape", {}).get("partition")),
            "created": self.created,
            "now": time.time(),
        }

    @property
    def dashboard_path(self) -> str:
        """The dashboard through the Jupyter server's proxy, relative to the server's base URL
        (``proxy/<port>/status``; empty without a dashboard)."""
        port = (self.scheduler_info.get("services") or {}).get("dashboard")
        return f"proxy/{port}/status" if port else ""

    @property
    def dashboard_link(self) -> str:
        """``<proxy_prefix>proxy/<port>/status`` (the dashboard binds loopback only); without a
        known prefix, distributed's ``distributed.dashboard.link`` for 127.0.0.1."""
        path = self.dashboard_path
        if not path:
            return ""
        if self.proxy_prefix:
            return self.proxy_prefix.rstrip("/") + "/" + path
        return format_dashboard_link(LOOPBACK, self.scheduler_info["services"]["dashboard"])

    @property
    def worker_count(self) -> int:
        return len(self.scheduler_info.get("workers", {}))

    async def _handle_model(self, comm: Any = None) -> dict[str, Any]:
        return self.model()

    async def _handle_scale(self, comm: Any = None, n: int = 0) -> dict[str, Any]:
        self.scale(worker_count("n", n))
        return self.model()

    async def _handle_adapt(self, comm: Any = None, minimum: int = 0, maximum: int | None = None) -> dict[str, Any]:
        lo = worker_count("minimum", minimum)
        self.adapt(minimum=lo, maximum=math.inf if maximum is None else worker_count("maximum", maximum))
        return self.model()

    def _repr_html_(self, cluster_status: Any = None) -> str:
        return jobs_table_html(self.model())

    def _widget(self) -> Any:
        if getattr(self, "_cached_widget", None) is None:
            self._cached_widget = ClusterWidget(LocalSource(self))
        return self._cached_widget


DEFAULT_SLURM_CONF = "/etc/slurm/slurm.conf"


def _worker_queue(slurm_conf: str, queue: str | None, preemptable: Any) -> str | None:
    """Where workers go: the preemptable tier when asked for (sandfill.dask.preemption), else
    ``queue``, else the policy's tier for Dask workers."""
    if preemptable_flag(preemptable):
        return preemptable_partition(slurm_conf, queue)
    return queue or role_partition(slurm_conf, WORKER_ROLE)


def _deploy_options(slurm_conf: str | None, cfg: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with the cluster's security, TLS staging and log directories resolved, and
    where the scheduler and the workers listen (:func:`_listen_hosts`). A cluster without
    TLS is refused (unless the admin allows it), and so is a dashboard beyond loopback, before
    anything is made or submitted."""
    security = setting("security", kwargs.pop("security", None), cfg)
    opts: dict[str, Any] = dict(setting("scheduler-options", None, cfg) or {})
    opts.update(kwargs.pop("scheduler_options", None) or {})
    _refuse_insecure(security, kwargs.get("protocol"), opts)
    opts["dashboard_address"] = _loopback_address("scheduler-options.dashboard_address", opts.get("dashboard_address"))
    extra = _worker_args(list(kwargs.pop("worker_extra_args", None) or setting("worker-extra-args", None, cfg) or []))
    kwargs["worker_extra_args"] = _listen_hosts(slurm_conf, cfg, kwargs, opts, extra)
    # the workers' TLS key is staged here: owner-only, tightened if it already exists
    tmp = private_dir(os.path.expanduser(setting("shared-temp-directory", kwargs.pop("shared_temp_directory", None), cfg)))
    logs = setting("log-directory", kwargs.pop("log_directory", None), cfg)
    return {
        **kwargs,
        "security": None if security is False else security,
        "shared_temp_directory": str(tmp),
        "log_directory": os.path.expanduser(logs) if logs else None,
        "scheduler_options": opts,
    }


def _is_tls(security: Any) -> bool:
    return security is True or (isinstance(security, Security) and bool(security.require_encryption))


def _refuse_insecure(security: Any, protocol: Any, opts: dict[str, Any]) -> None:
    """Raise ValueError when the scheduler would run without TLS (anyone who reaches it runs
    code as this user) and the admin's system dask config does not allow it."""
    bad = None
    if not _is_tls(security):
        bad = f"jobqueue.sandfill.security: {security!r}"
    elif "security" in opts and not _is_tls(opts["security"]):
        bad = f"scheduler-options.security: {opts['security']!r}"
    else:
        for where, proto in (("protocol", protocol), ("scheduler-options.protocol", opts.get("protocol"))):
            if proto is not None and not str(proto).startswith("tls"):
                bad = f"{where}: {proto!r}"
    if bad is not None:
        refuse_insecure(bad)


def _loopback_address(name: str, value: Any) -> str:
    """A dashboard address on 127.0.0.1 (the port of ``value`` kept: ``":8787"`` → ``"127.0.0.1:8787"``);
    raises ValueError naming ``name`` for any other host."""
    if value is None:
        return f"{LOOPBACK}:0"
    try:
        (addr,) = clean_dashboard_address(value)
    except (ValueError, TypeError):
        raise ValueError(f"{name}: {value!r} is not one host:port address") from None
    if addr["address"] not in {"", None, LOOPBACK, "localhost"}:
        raise ValueError(
            f"{name}: {value!r} would listen beyond loopback; dashboards have no authentication "
            f"of their own and bind {LOOPBACK} only (reach the scheduler's through the Jupyter "
            "server's proxy/<port>/status)"
        )
    return f"{LOOPBACK}:{addr['port'] or 0}"


def _worker_args(extra: list[str]) -> list[str]:
    """The workers' extra arguments with their dashboards on loopback."""
    flag = "--dashboard-address"
    if flag in extra:
        i = extra.index(flag)
        extra[i + 1 : i + 2] = [_loopback_address(f"worker-extra-args {flag}", extra[i + 1] if i + 1 < len(extra) else "")]
    else:
        extra += [flag, f"{LOOPBACK}:0"]
    return extra


def _listen_hosts(slurm_conf: str | None, cfg: str, kwargs: dict[str, Any], opts: dict[str, Any], extra: list[str]) -> list[str]:
    """Where the scheduler and the workers listen, as on any site: the scheduler on the local
    address of this host's route toward the worker nodes (their ``NodeAddr`` in slurm.conf),
    each worker on its own node's address toward the scheduler (worked out in the job, by
    ``python -m sandfill.net toward``). A host or interface the user set is kept. On a Slurm
    whose nodes are all on one host's loopback both answers are 127.0.0.1. Returns the
    workers' arguments; sets ``opts["host"]``; ValueError when no address can be found."""
    if kwargs.get("interface") or setting("interface", None, cfg) or opts.get("interface"):
        return extra  # dask-jobqueue passes the interface to scheduler and workers alike
    if not opts.get("host"):
        opts["host"] = _scheduler_host(slurm_conf)
    if "--host" not in extra and "--interface" not in extra:
        python = kwargs.get("python") or setting("python", None, cfg) or sys.executable
        toward = shlex.quote(str(opts["host"]))
        extra += ["--host", f"$({shlex.quote(str(python))} -m sandfill.net toward {toward})"]
    return extra


def _scheduler_host(slurm_conf: str | None) -> str:
    """The local address toward the first node slurm.conf declares."""
    conf = slurm_conf or DEFAULT_SLURM_CONF
    try:
        peer = next(iter(node_addresses(conf).values()))
        return local_address_toward(peer)
    except (NodeAddrError, AddressError) as exc:
        raise ValueError(
            f"cannot tell where the scheduler should listen ({exc}); set "
            "jobqueue.sandfill.scheduler-options.host to this host's address on the cluster network"
        ) from None
