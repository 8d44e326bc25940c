"""The queue poller's API, served by the hub's ``sandfill`` service over HTTP.

:class:`RemotePoller` is a :class:`~sandfill.slurm.poller.QueuePoller` whose rounds ask the
service (``GET <service>/api/jobs?ids=…`` with a JupyterHub token) instead of running
``squeue``: one Slurm view for the whole cluster, whatever the number of clients. Everything
else -- the thread, the watchdog, listeners, ``refresh()``, ``wait_for()`` -- is the local
poller's, so the semantics are the same:

- a round the service does not answer (down, restarting, refusing, unreadable) marks the
  watched jobs UNKNOWN with their last facts, never GONE; GONE comes only from the service,
  which says it only when the controller answered without the job;
- while the service does not answer, rounds back off exponentially with jitter up to
  :attr:`RemotePoller.max_backoff`, so that many clients do not come back in step;
- after :attr:`RemotePoller.fallback_after` failed rounds in a row the rounds run the local
  poller's ``squeue`` (this process's own view of the cluster, as outside a hub); the
  service is asked again every :attr:`RemotePoller.retry_every` seconds and used as soon
  as it answers.

:func:`poller_for` picks the remote poller when ``SANDFILL_SERVICE_URL`` and
``JUPYTERHUB_API_TOKEN`` are set, and the process's shared local poller otherwise.

The JSON form of a :class:`~sandfill.slurm.states.JobStatus` (:func:`status_to_json`,
:func:`status_from_json`) is defined here, for the service and its clients.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from sandfill.slurm.client import SlurmClient
from sandfill.slurm.poller import COMMAND_TIMEOUT, QueuePoller
from sandfill.slurm.states import GONE, UNKNOWN, JobStatus, check_job_id

log = logging.getLogger("sandfill.slurm.remote")

#: the environment variables a server job gets from the spawner
URL_ENV = "SANDFILL_SERVICE_URL"
TOKEN_ENV = "JUPYTERHUB_API_TOKEN"

_FIELDS = {f.name: f.type for f in dataclasses.fields(JobStatus)}
_NUMBERS = {"start_time", "end_time", "submit_time", "observed"}


class ServiceError(RuntimeError):
    """The service did not answer, refused, or answered something unreadable."""


def status_to_json(st: JobStatus) -> dict[str, Any]:
    return dataclasses.asdict(st)


def status_from_json(job_id: str, data: Any) -> JobStatus:
    """A status read back; ValueError (naming the job) when it is not one."""
    if not isinstance(data, Mapping) or data.get("job_id") != job_id or not isinstance(data.get("state"), str):
        raise ValueError(f"job {job_id}: not a job status: {str(data)[:200]!r}")
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in _FIELDS or value is None:
            continue
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) if key in _NUMBERS else None
        if key == "time_limit":
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif ok is None:
            ok = isinstance(value, str)
        if not ok:
            raise ValueError(f"job {job_id}: bad {key} {value!r}")
        kwargs[key] = value
    return JobStatus(**kwargs)


def parse_jobs_answer(body: bytes, job_ids: list[str]) -> dict[str, JobStatus]:
    """The service's ``/api/jobs`` answer for ``job_ids``; ServiceError when unreadable or
    when it leaves out a job asked about."""
    try:
        jobs = json.loads(body.decode())["jobs"]
        return {j: status_from_json(j, jobs[j]) for j in job_ids}
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise ServiceError(f"unreadable answer from the sandfill service: {exc}") from None


class RemotePoller(QueuePoller):
    """The queue poller, its rounds answered by the sandfill service at ``url`` (the
    service's public prefix, e.g. ``https://hub/services/sandfill/``) with ``token``."""

    def __init__(
        self,
        url: str,
        token: str,
        client: SlurmClient | None = None,
        *,
        http_timeout: float = 10.0,
        fallback_after: int = 3,
        retry_every: float = 30.0,
        max_backoff: float = 60.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(client, **kwargs)
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"the sandfill service URL must be http(s)://host/…, not {url!r}")
        if not token or any(c.isspace() for c in token):
            raise ValueError("the sandfill service token is empty or has white space")
        self.url = url.rstrip("/") + "/"
        self._token = token
        self.http_timeout = http_timeout
        self.fallback_after = fallback_after
        self.retry_every = retry_every
        self.max_backoff = max_backoff
        self.service_failures = 0  # failed service rounds in a row
        self.local_rounds = 0  # rounds answered by the local fallback
        self._last_try = float("-inf")  # monotonic: when the service was last asked

    @property
    def using_fallback(self) -> bool:
        return self.service_failures >= self.fallback_after

    def get(self, path: str) -> bytes:
        """The body of ``GET <service>/<path>`` with the token; ServiceError when it does not answer."""
        req = urllib.request.Request(
            f"{self.url}{path}", headers={"Authorization": f"token {self._token}", "Accept": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=self.http_timeout) as r:  # noqa: S310 (http(s) checked)
                return bytes(r.read())
        except urllib.error.HTTPError as exc:
            raise ServiceError(f"the sandfill service answered {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise ServiceError(f"the sandfill service does not answer: {exc}") from None

    def fetch(self, job_ids: list[str]) -> dict[str, JobStatus]:
        """One ``GET api/jobs`` for ``job_ids``; ServiceError when it does not answer."""
        query = urllib.parse.urlencode({"ids": ",".join(check_job_id(j) for j in job_ids)})
        return parse_jobs_answer(self.get(f"api/jobs?{query}"), job_ids)

    def schedule(self) -> dict[str, Any]:
        """The service's anonymous ``api/schedule`` picture (see
        :class:`sandfill.slurm.view.ServiceSchedule`); ServiceError when it does not answer."""
        try:
            picture = json.loads(self.get("api/schedule").decode())
        except (ValueError, UnicodeDecodeError) as exc:
            raise ServiceError(f"unreadable schedule from the sandfill service: {exc}") from None
        if not isinstance(picture, dict):
            raise ServiceError(f"unreadable schedule from the sandfill service: {str(picture)[:200]!r}")
        return picture

    def poll_once(self, job_ids: list[str]) -> dict[str, JobStatus]:
        if self.using_fallback and time.monotonic() - self._last_try < self.retry_every:
            return self._local_round(job_ids)
        self._last_try = time.monotonic()
        self.stats.polls += 1
        self.stats.last_poll = time.time()
        try:
            found = self.fetch(job_ids)
        except Exception as exc:  # any failure: unknown (then the fallback), never gone
            self.service_failures += 1
            if self.using_fallback:
                log.warning("sandfill service: %s; asking Slurm from this process", exc)
                return self._local_round(job_ids)
            return self._failed(job_ids, exc)
        if self.service_failures:
            log.info("the sandfill service answers again")
        self.service_failures = self.failed_rounds = 0
        self.stats.last_error = None
        self._publish(found)
        return found

    def _local_round(self, job_ids: list[str]) -> dict[str, JobStatus]:
        self.local_rounds += 1
        return super().poll_once(job_ids)

    def _next_interval(self) -> float:
        base = super()._next_interval()
        if not self.service_failures or self.using_fallback:
            return base
        backoff = min(self.max_backoff, self.fast_interval * 2**self.service_failures)
        return backoff * random.uniform(0.5, 1.0)  # full-ish jitter: no thundering herd


def poller_for(slurm_conf: str | None = None, env: Mapping[str, str] | None = None) -> QueuePoller:
    """The service's view when this process runs under a hub (``SANDFILL_SERVICE_URL`` and
    ``JUPYTERHUB_API_TOKEN`` set), else the process's shared local poller. One per process."""
    env = os.environ if env is None else env
    url, token = env.get(URL_ENV), env.get(TOKEN_ENV)
    if not url or not token:
        return QueuePoller.shared(slurm_conf)
    key = f"remote:{url}"
    with QueuePoller._shared_lock:
        p = QueuePoller._shared.get(key)
        if p is None:
            conf = slurm_conf or env.get("SLURM_CONF")
            p = RemotePoller(url, token, SlurmClient(conf, timeout=COMMAND_TIMEOUT))
            QueuePoller._shared[key] = p
        return p


__all__ = [
    "GONE",
    "UNKNOWN",
    "RemotePoller",
    "ServiceError",
    "parse_jobs_answer",
    "poller_for",
    "status_from_json",
    "status_to_json",
]
