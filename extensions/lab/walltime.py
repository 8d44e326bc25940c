"""A Jupyter server extension for the notebook server job: when does my walltime end?

Enabled in the server job by sandfill's spawner (``JUPYTER_CONFIG_PATH``/``JUPYTER_PATH``
point at ``hub_config/jupyter``), together with the ``sandfill-walltime`` JupyterLab plugin.

- ``GET <base_url>/sandfill/walltime`` → ``{job_id, end_time, seconds_left, warn_before,
  warning, message}``; the Lab plugin asks it every 30 s and shows a notification with a
  "Save all" action once ``warning`` is true.
- The end time comes from ``squeue -h -j $SLURM_JOB_ID -o %e`` (Slurm 22.05 puts no end time
  in the job's environment, and an admin may change the limit); it is re-read every few
  minutes, and a warning line is written to the server's log when the warning starts.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from sandfill.slurm import SlurmClient, SlurmCommandError
from sandfill.units import parse_timestamp

REFRESH_S = 300.0


class WalltimeClock:
    """The job's end time, re-read from Slurm at most every ``refresh`` seconds."""

    def __init__(self, job_id: str | None, warn_before: int, client: SlurmClient | None = None, refresh: float = REFRESH_S) -> None:
        self.job_id = job_id
        self.warn_before = warn_before
        self.client = client or SlurmClient()
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
            res = await self.client.command(["squeue", "-h", "-j", self.job_id, "-o", "%e"])
        except SlurmCommandError as exc:
            self.error = str(exc)  # keep the last known end time
            return
        self.error = None
        end = parse_timestamp(res.stdout.strip().splitlines()[0] if res.stdout.strip() else "")
        if end is not None:
            self.end_time = end

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


class WalltimeHandler(APIHandler):
    @web.authenticated
    async def get(self) -> None:
        clock: WalltimeClock = self.settings["sandfill_walltime"]
        await clock.update()
        self.finish(json.dumps(clock.info()))


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "sandfill.lab.walltime"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    try:
        warn = int(os.environ.get("SANDFILL_WALLTIME_WARNING", "600"))
    except ValueError:
        warn = 600
    clock = WalltimeClock(os.environ.get("SLURM_JOB_ID"), warn)
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
            left = info["seconds_left"]
            # wake at the warning time, or re-read the end time every few minutes
            nap = REFRESH_S if left is None else max(1.0, min(REFRESH_S, left - warn if left > warn else REFRESH_S))
            await asyncio.sleep(nap)

    if clock.job_id:
        serverapp.io_loop.add_callback(lambda: asyncio.ensure_future(watch()))
    serverapp.log.info("sandfill walltime extension: job %s, warning %d s before the end", clock.job_id, warn)
