"""The walltime API of the notebook server job: when does my walltime end?

Part of the ``sandfill.lab`` server extension (:func:`setup_walltime`, called when it loads);
the ``sandfill-labextension:walltime`` JupyterLab plugin (``extensions/labextension/src/
walltime.ts``) is its front end.

- ``GET <base_url>/sandfill/walltime`` → ``{job_id, end_time, seconds_left, warn_before,
  warning, message, error}``; the Lab plugin asks it every 30 s and shows a notification with
  a "Save all" action once ``warning`` is true. Authenticated and authorized like the
  cluster API (resource ``sandfill``).
- The job is ``$SLURM_JOB_ID``; the warning starts ``$SANDFILL_WALLTIME_WARNING`` seconds
  (set by the spawner; default 600) before the end.
- The end time is the job's ``end_time`` from ``squeue`` (Slurm 22.05 puts no end time in the
  job's environment, and an admin may change the limit); it is re-read every few minutes,
  and a warning line is written to the server's log when the warning starts. Under a hub it
  is read from the hub's ``sandfill`` service (:func:`sandfill.slurm.remote.poller_for`: one
  Slurm view for every server), from this job's own ``squeue`` when the service does not
  answer or outside a hub.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from sandfill.lab.handlers import AUTH_RESOURCE
from sandfill.slurm import SlurmClient, SlurmCommandError
from sandfill.slurm.remote import RemotePoller, ServiceError, poller_for
from sandfill.slurm.states import JobStatus

REFRESH_S = 300.0
DEFAULT_WARNING_S = 600
WARNING_ENV = "SANDFILL_WALLTIME_WARNING"

log = logging.getLogger("sandfill.lab.walltime")


class WalltimeClock:
    """The job's end time, re-read at most every ``refresh`` seconds: from ``service`` (the
    hub's sandfill service) when given and answering, else from Slurm (``client``)."""

    def __init__(self, job_id: str | None, warn_before: int, client: SlurmClient | None = None, refresh: float = REFRESH_S,
                 service: RemotePoller | None = None) -> None:
        self.job_id = job_id
        self.warn_before = warn_before
        self.client = client or SlurmClient()
        self.service = service
        self.refresh = refresh
        self.end_time: float | None = None
        self.checked: float = 0.0
        self.error: str | None = None
        self.warned_in_log = False

    async def update(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        if not self.job_id or now - self.checked < self.refresh:
            return
        self.checked = now
        try:
            statuses = await self._lookup(self.job_id)
        except SlurmCommandError as exc:
            self.error = str(exc)  # keep the last known end time
            return
        self.error = None
        status = statuses.get(self.job_id)
        if status is not None and status.end_time is not None:
            self.end_time = status.end_time

    async def _lookup(self, job_id: str) -> dict[str, JobStatus]:
        if self.service is not None:
            try:
                return await asyncio.to_thread(self.service.fetch, [job_id])  # one GET, off the loop
            except ServiceError as exc:
                log.info("sandfill: %s; asking Slurm for job %s's end", exc, job_id)
        return await self.client.squeue([job_id])

    def info(self, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        left = None if self.end_time is None else max(0.0, self.end_time - now)
        warning = left is not None and left <= self.warn_before
        message = ""
        if left is not None:
            clock = time.strftime("%H:%M", time.localtime(self.end_time))
            message = (
                f"This server's Slurm job {self.job_id} reaches its walltime at {clock} "
                f"(in {int(left // 60)} min {int(left % 60)} s). Save your work: the server stops then."
            )
        return {
            "job_id": self.job_id,
            "end_time": self.end_time,
            "seconds_left": left,
            "warn_before": self.warn_before,
            "warning": warning,
            "message": message,
            "error": self.error,
        }

    def nap(self) -> float:
        """Seconds until the watcher should look again: at the warning time, or in
        ``refresh`` seconds to re-read the end time."""
        left = self.info()["seconds_left"]
        if left is None or left <= self.warn_before:
            return self.refresh
        return max(1.0, min(self.refresh, left - self.warn_before))


class WalltimeHandler(APIHandler):
    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    async def get(self) -> None:
        clock: WalltimeClock = self.settings["sandfill_walltime"]
        await clock.update()
        self.finish(json.dumps(clock.info()))


def warning_seconds(environ: Mapping[str, str], log: Any) -> int:
    """``$SANDFILL_WALLTIME_WARNING`` (whole seconds); a bad value is logged with its key and
    value and the default is used."""
    raw = environ.get(WARNING_ENV)
    if raw is None:
        return DEFAULT_WARNING_S
    try:
        value = int(raw)
        if value < 0:
            raise ValueError
    except ValueError:
        log.error("sandfill: %s: %r is not a whole number of seconds; warning %d s before the end", WARNING_ENV, raw, DEFAULT_WARNING_S)
        return DEFAULT_WARNING_S
    return value


def setup_walltime(serverapp: Any, client: SlurmClient | None = None) -> WalltimeClock:
    """Serve ``<base_url>/sandfill/walltime`` for the job ``$SLURM_JOB_ID`` and, inside a job,
    watch its end time to write the warning to the server's log."""
    warn = warning_seconds(os.environ, serverapp.log)
    remote = poller_for()
    service = remote if isinstance(remote, RemotePoller) and client is None else None
    clock = WalltimeClock(os.environ.get("SLURM_JOB_ID"), warn, client, service=service)
    web_app = serverapp.web_app
    web_app.settings["sandfill_walltime"] = clock
    route = url_path_join(web_app.settings["base_url"], "sandfill", "walltime")
    web_app.add_handlers(".*$", [(route, WalltimeHandler)])

    async def watch() -> None:
        while True:
            await clock.update()
            info = clock.info()
            if info["warning"] and not clock.warned_in_log:
                clock.warned_in_log = True
                serverapp.log.warning("sandfill: %s", info["message"])
            await asyncio.sleep(clock.nap())  # a timer, not synchronisation

    if clock.job_id:
        serverapp.io_loop.add_callback(lambda: asyncio.ensure_future(watch()))
    serverapp.log.info("sandfill: walltime API for job %s, warning %d s before the end", clock.job_id, warn)
    return clock
