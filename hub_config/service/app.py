"""The ``sandfill`` service: the one Slurm view of the whole cluster, served over HTTP.

The hub runs it (a JupyterHub-managed service, as the hub's user, with the cluster's
``SLURM_CONF``) and restarts it when it exits. It holds the cluster's single
:class:`~sandfill.slurm.poller.QueuePoller` and single
:class:`~sandfill.slurm.view.SchedulerView`; clients (:mod:`sandfill.slurm.remote`) ask it
instead of Slurm. Under ``/services/sandfill/``:

- ``GET api/jobs?ids=1,2``: the jobs' statuses (the poller's cache; a job asked about for
  the first time is watched and answered after the next round). Only the caller's own
  jobs: a job of another user is a 403 that says nothing about it; admins see all.
  Watching stops for ids nobody asked about for :attr:`ClusterView.lease` seconds.
- ``GET api/schedule``: the anonymous picture for gap planning: free CPUs per node, the
  planned starts per node and the reservations' nodes and times, without users, job ids or
  names (cached a few seconds: one sinfo, squeue --start and scontrol for every client).
- ``GET metrics``: Prometheus text (:mod:`.metrics`), for tokens with ``read:metrics`` and
  admins (also their browser sessions: the service is an OAuth client of the hub).

Identity is JupyterHub's (:class:`~jupyterhub.services.auth.HubOAuth`: API tokens in the
``Authorization`` header, or the OAuth cookie). No identity: 401 (a browser is sent to the
hub's login instead); ``api/*`` also needs ``access:services!service=sandfill``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any

from jupyterhub.services.auth import (
    HubOAuth,
    HubOAuthCallbackHandler,
    HubOAuthenticated,
    check_scopes,
)
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from tornado import web

from sandfill.hub.service.metrics import Metrics
from sandfill.slurm.client import SlurmClient
from sandfill.slurm.commands import Result, Runner
from sandfill.slurm.poller import QueuePoller
from sandfill.slurm.remote import status_to_json
from sandfill.slurm.states import GONE, UNKNOWN, JobStatus, check_job_ids
from sandfill.slurm.view import SchedulerView

log = logging.getLogger("sandfill.hub.service")

SERVICE_NAME = "sandfill"
ACCESS_SCOPE = f"access:services!service={SERVICE_NAME}"
METRICS_SCOPE = "read:metrics"
MAX_IDS = 1000  # job ids in one request


class Refused(Exception):
    """A job the caller may not see (its id is the message: nothing else is said)."""


class CountingRunner(Runner):
    """``inner`` (the runner that really executes), each command counted by ``count``."""

    def __init__(self, inner: Runner, count: Callable[[str], None]) -> None:
        super().__init__(inner.slurm_conf, prefix=inner.prefix, timeout=inner.timeout)
        self.inner = inner
        self.count = count

    def execute(self, argv: Sequence[str], input: str | None) -> Result:
        self.count(argv[0] if argv else "")
        return self.inner.execute(argv, input)

    async def aexecute(self, argv: Sequence[str], input: str | None) -> Result:
        self.count(argv[0] if argv else "")
        return await self.inner.aexecute(argv, input)


class TimedPoller(QueuePoller):
    """The queue poller, each round timed into the metrics; :attr:`last_good` is when a
    round last had an answer from Slurm."""

    def __init__(self, client: SlurmClient, metrics: Metrics, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        self.metrics = metrics
        self.last_good: float | None = None

    def poll_once(self, job_ids: list[str]) -> dict[str, JobStatus]:
        with self.metrics.poll_seconds.time():
            found = super().poll_once(job_ids)
        if self.stats.last_error is None:
            self.last_good = time.time()
        return found


class ClusterView:
    """The service's state: the poller, the scheduler view, the metrics and the leases."""

    def __init__(self, client: SlurmClient, *, lease: float = 300.0, clock: Callable[[], float] = time.monotonic,
                 **poller_kwargs: Any) -> None:
        self.metrics = Metrics()
        client.runner = CountingRunner(client.runner, self.metrics.count_command)
        self.client = client
        self.poller = TimedPoller(client, self.metrics, **poller_kwargs)
        self.poller.add_listener(self.metrics.observe_changes)
        self.metrics.watch_cache(self.poller.snapshot, lambda: self.poller.last_good)
        self.schedule = SchedulerView(client)
        self.lease = lease
        self.clock = clock
        self._leases: dict[str, float] = {}  # job id → when last asked about (clock)

    async def jobs_for(self, who: dict[str, Any], job_ids: list[str]) -> dict[str, JobStatus]:
        """What ``who`` may see of ``job_ids`` (see :func:`visible`), watched from now on
        and answered from the cache (after one round when one of them has no status yet).
        :class:`Refused` for a job that is not theirs: then nothing is left watched that
        this request added."""
        new = [j for j in dict.fromkeys(job_ids) if j not in self._leases]
        now = self.clock()
        for j in job_ids:
            self._leases[j] = now
        if new:
            self.poller.watch(new)
        if any(self.poller.status(j) is None for j in job_ids):
            await self.poller.refresh()
        shown = {j: visible(self.poller.status(j) or JobStatus(j, UNKNOWN), who) for j in job_ids}
        refused = [j for j, st in shown.items() if st is None]
        if refused:
            self._forget(new)
            raise Refused(refused[0])
        return shown  # type: ignore[return-value]

    def _forget(self, job_ids: list[str]) -> None:
        for j in job_ids:
            self._leases.pop(j, None)
        if job_ids:
            self.poller.unwatch(job_ids)

    def expire(self) -> list[str]:
        """Stop watching the jobs nobody asked about for :attr:`lease` seconds."""
        now = self.clock()
        old = [j for j, t in self._leases.items() if now - t >= self.lease]
        self._forget(old)
        return old

    async def schedule_picture(self) -> dict[str, Any]:
        """Free CPUs per node, planned starts per node and the reservations' nodes and times:
        what the gap planner asks (:class:`~sandfill.slurm.view.ServiceSchedule`); no user,
        account, job id, job or reservation name."""
        s = self.schedule
        (nodes, err1), (planned, err2), (res, err3) = await asyncio.gather(
            s.safe(s.nodes(), []), s.safe(s.planned_starts(), {}), s.safe(s.reservations(), [])
        )
        return {
            "observed": time.time(),
            "nodes": [dict(n) for n in nodes],  # sinfo's per-node counts: nothing about users
            "planned_starts": planned,
            "reservations": [{"nodes": list(r.nodes), "start": r.start, "end": r.end} for r in res],
            "errors": [e for e in (err1, err2, err3) if e],
        }

    def close(self) -> None:
        self.poller.close()


def visible(st: JobStatus, who: dict[str, Any]) -> JobStatus | None:
    """What ``who`` (a hub identity) may see of ``st``: all of it for their own job or an
    admin; the bare state for a job nobody is known to own (UNKNOWN, GONE); else None."""
    if who.get("admin") is True or (who.get("kind") == "user" and st.user is not None and st.user == who.get("name")):
        return st
    if st.user is None:
        return JobStatus(st.job_id, st.state if st.state in (UNKNOWN, GONE) else UNKNOWN, observed=st.observed)
    return None


class _Handler(HubOAuthenticated, web.RequestHandler):
    """Identity first (401 without one); JSON errors."""

    def initialize(self, view: ClusterView, hub_auth: HubOAuth) -> None:
        self.view = view
        self.hub_auth = hub_auth

    async def prepare(self) -> None:
        who = await self.hub_auth.get_user(self, sync=False)
        self._hub_auth_user_cache = who  # our own checks below, not HubAuthenticated's
        self.current_user = who
        if who is None:
            if "text/html" in self.request.headers.get("Accept", "") and self.hub_auth.login_url:
                self.redirect(self.get_login_url())
                return
            raise web.HTTPError(401, "a JupyterHub API token or login is needed")

    def require(self, scope: str, *, or_admin: bool = False) -> dict[str, Any]:
        who: dict[str, Any] = self.current_user  # type: ignore[assignment]
        if or_admin and who.get("admin") is True:
            return who
        if not check_scopes({scope}, set(who.get("scopes", ()))):
            raise web.HTTPError(403, f"this needs the scope {scope}")
        return who

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = exc.log_message if isinstance(exc, web.HTTPError) and exc.log_message else self._reason
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": message}))


class JobsHandler(_Handler):
    async def get(self) -> None:
        who = self.require(ACCESS_SCOPE)
        raw = [j for j in self.get_argument("ids", "").split(",") if j]
        if not raw or len(raw) > MAX_IDS:
            raise web.HTTPError(400, f"ids must list 1 to {MAX_IDS} job ids, not {len(raw)}")
        try:
            ids = check_job_ids(raw)
        except ValueError as exc:
            raise web.HTTPError(400, str(exc)) from None
        try:
            shown = await self.view.jobs_for(who, ids)
        except Refused as exc:
            raise web.HTTPError(403, f"job {exc} is not yours") from None
        self.write({"jobs": {j: status_to_json(st) for j, st in shown.items()}})


class ScheduleHandler(_Handler):
    async def get(self) -> None:
        self.require(ACCESS_SCOPE)
        self.write(await self.view.schedule_picture())


class MetricsHandler(_Handler):
    def get(self) -> None:
        self.require(METRICS_SCOPE, or_admin=True)
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.write(generate_latest(self.view.metrics.registry))


class _OAuthCallback(HubOAuthCallbackHandler):
    def initialize(self, hub_auth: HubOAuth) -> None:
        self.hub_auth = hub_auth


def make_app(view: ClusterView, hub_auth: HubOAuth, prefix: str = f"/services/{SERVICE_NAME}/") -> web.Application:
    prefix = "/" + prefix.strip("/") + "/"
    kw = {"view": view, "hub_auth": hub_auth}
    return web.Application(
        [
            (prefix + "api/jobs", JobsHandler, kw),
            (prefix + "api/schedule", ScheduleHandler, kw),
            (prefix + "metrics", MetricsHandler, kw),
            (prefix + "oauth_callback", _OAuthCallback, {"hub_auth": hub_auth}),
        ],
        cookie_secret=secrets.token_bytes(32),  # the OAuth cookie: a restarted service asks again
    )
