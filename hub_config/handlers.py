"""The hub's sandfill routes.

- ``POST /hub/api/batchspawner`` — the port report of a starting server. It replaces
  batchspawner's stock handler (which sets *any* attribute the request names on the
  spawner): only ``{"port": <1-65535>}`` is accepted, only with the starting server's own
  token, only while it is starting. Anything else is a 400/403/409.
- ``GET /hub/api/sandfill/users/{name}/server/job`` — the server job (state, reason, time
  left, how the last job ended) as JSON.
- ``GET /hub/api/sandfill/users/{name}/server/log`` — the tail of the job's log as JSON.
- ``GET /hub/sandfill/job[/{name}]`` — the same as a page (linked from the home page).
- ``GET /hub/api/sandfill/users/{name}/jobs`` — "My jobs": every Slurm job of the user
  (:mod:`sandfill.hub.myjobs`); ``…/jobs/{id}/log?offset=N`` follows a job's log;
  ``DELETE …/jobs/{id}`` cancels it. ``GET /hub/sandfill/jobs[/{name}]`` is the page.
- ``GET /hub/api/sandfill/users/{name}/provenance[/{id}]`` — the user's provenance records
  (:mod:`sandfill.hub.provenance`), listed on the "My jobs" page.

The read routes need the ``read:servers`` scope on that user: a user reads their own, an
admin anyone's; another user gets 403. A cancel needs the ``servers`` scope on that user, and
a job id that is not that user's job is a 403 too (nothing is cancelled).
"""

from __future__ import annotations

import functools
import hmac
import json
from collections.abc import Callable, Coroutine
from typing import Any

import batchspawner.api  # noqa: F401  (registers the stock route first; we replace it below)
from jupyterhub import apihandlers
from jupyterhub.apihandlers import APIHandler
from jupyterhub.handlers import BaseHandler
from jupyterhub.scopes import needs_scope
from jupyterhub.utils import url_path_join
from tornado import web

from sandfill.hub.joblog import tail_log
from sandfill.hub.myjobs import MyJobs, NotYourJob
from sandfill.hub.provenance import Provenance
from sandfill.slurm.commands import SlurmCommandError

PORT_ROUTE = r"/api/batchspawner"


class PortReportHandler(APIHandler):
    """A starting server reports the port it listens on — and nothing else."""

    def check_xsrf_cookie(self) -> None:  # token-authenticated API call from the job
        return None

    def post(self) -> None:
        user = self.current_user
        token = self.get_auth_token()
        if user is None or not token:
            raise web.HTTPError(403, "a server token is required")
        spawner = None
        for s in getattr(user, "spawners", {}).values():
            if s.api_token and hmac.compare_digest(str(s.api_token), str(token)):
                spawner = s
                break
        if spawner is None:
            raise web.HTTPError(403, "only a starting server's own token may report its port")
        try:
            body = json.loads(self.request.body or b"null")
        except ValueError:
            raise web.HTTPError(400, "the body must be JSON: {\"port\": <number>}") from None
        if not isinstance(body, dict):
            raise web.HTTPError(400, "the body must be a JSON object: {\"port\": <number>}")
        extra = sorted(str(k) for k in body if k != "port")
        if extra:
            raise web.HTTPError(400, f"only 'port' may be reported; rejected key(s): {', '.join(extra)}")
        port = body.get("port")
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise web.HTTPError(400, f"port: {port!r} is not a TCP port (1-65535)")
        if spawner.pending != "spawn":
            raise web.HTTPError(409, "the server is not starting; its port cannot change now")
        if hasattr(spawner, "report_port"):
            spawner.report_port(port)
        else:  # a stock batchspawner spawner behind this hub
            spawner.port = port
        self.log.info("Server %s reported port %d", spawner._log_name, port)
        self.set_status(201)
        self.finish(json.dumps({"message": "port recorded", "port": port}))


def _spawner_for(handler: BaseHandler, user_name: str) -> Any:
    user = handler.find_user(user_name)
    if user is None:
        raise web.HTTPError(404, f"no such user: {user_name}")
    return user.spawner


def _job(spawner: Any) -> dict[str, Any]:
    if hasattr(spawner, "job_info"):
        return spawner.job_info()  # type: ignore[no-any-return]
    return {"job_id": getattr(spawner, "job_id", None)}


async def _log(spawner: Any, user_name: str) -> dict[str, Any]:
    """The tail of the job's log, read off the hub's loop and bounded (a symlink, a FIFO or
    another owner's file is refused: ``error`` says why and ``text`` is None)."""
    path = getattr(spawner, "job_output_path", "") or ""
    job_id = getattr(spawner, "job_id", "") or None
    last = getattr(spawner, "last_end", {}) or {}
    if not path and last:
        path, job_id = last.get("log_path") or "", last.get("job_id")
    tail = await tail_log(path, user_name, getattr(spawner, "log_tail_bytes", 8192), getattr(spawner, "lookup_timeout", 5.0))
    return {"job_id": job_id, "path": path or None, "text": tail.text, "error": tail.error}


class JobAPIHandler(APIHandler):
    @needs_scope("read:servers")
    def get(self, user_name: str) -> None:
        self.finish(json.dumps(_job(_spawner_for(self, user_name))))


class JobLogAPIHandler(APIHandler):
    @needs_scope("read:servers")
    async def get(self, user_name: str) -> None:
        self.finish(json.dumps(await _log(_spawner_for(self, user_name), user_name)))


class JobPageHandler(BaseHandler):
    @web.authenticated
    def get(self, user_name: str | None = None) -> Any:
        if not user_name:
            return self.redirect(url_path_join(self.hub.base_url, "sandfill/job", self.current_user.name))
        return self._page(user_name)

    @needs_scope("read:servers")
    async def _page(self, user_name: str) -> None:
        spawner = _spawner_for(self, user_name)
        html = await self.render_template(
            "sandfill_job.html",
            for_user=user_name,
            job=_job(spawner),
            log=await _log(spawner, user_name),
            api_url=url_path_join(self.hub.base_url, "api/sandfill/users", user_name, "server"),
        )
        self.finish(html)


def refused_as_403(scope: str) -> Callable[[Callable[..., Coroutine[Any, Any, Any]]], Callable[..., Any]]:
    """``needs_scope(scope)``, answering 403 (not JupyterHub's 404) when the caller lacks the
    scope on that user: "My jobs" of another user is refused, by name and by job id alike."""
    def decorate(func: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Any]:
        checked = needs_scope(scope)(func)

        @functools.wraps(func)
        async def wrapper(self: BaseHandler, user_name: str, *args: Any) -> Any:
            try:
                pending = checked(self, user_name, *args)  # the scope check runs here, at once
            except web.HTTPError as exc:
                if exc.status_code != 404:
                    raise
                raise web.HTTPError(403, f"not allowed to see or cancel {user_name}'s jobs") from None
            return await pending

        return wrapper

    return decorate


def _myjobs(handler: BaseHandler) -> MyJobs:
    return MyJobs.instance(config=handler.settings.get("config"))


def _slurm_conf(handler: BaseHandler, user_name: str) -> str | None:
    return getattr(_spawner_for(handler, user_name), "slurm_conf", None) or None


async def _job_rows(handler: BaseHandler, user_name: str) -> dict[str, Any]:
    """``{"user", "jobs", "error"}``: ``error`` says why Slurm could not be asked."""
    user = handler.find_user(user_name)
    if user is None:
        raise web.HTTPError(404, f"no such user: {user_name}")
    conf = _slurm_conf(handler, user_name)
    servers = {str(s.job_id) for s in user.spawners.values() if getattr(s, "job_id", None)}
    api = url_path_join(handler.hub.base_url, "api/sandfill/users", user_name, "jobs")
    try:
        jobs = await _myjobs(handler).jobs(user_name, conf)
    except SlurmCommandError as exc:
        return {"user": user_name, "jobs": None, "error": str(exc)}
    except ValueError as exc:
        raise web.HTTPError(400, str(exc)) from None
    return {"user": user_name, "jobs": _myjobs(handler).rows(jobs, servers, api), "error": None}


async def _users_job(handler: BaseHandler, user_name: str, job_id: str) -> Any:
    try:
        return await _myjobs(handler).job(user_name, job_id, _slurm_conf(handler, user_name))
    except ValueError as exc:
        raise web.HTTPError(400, str(exc)) from None
    except NotYourJob as exc:
        raise web.HTTPError(403, str(exc)) from None
    except SlurmCommandError as exc:
        raise web.HTTPError(503, str(exc)) from None


class MyJobsAPIHandler(APIHandler):
    @refused_as_403("read:servers")
    async def get(self, user_name: str) -> None:
        body = await _job_rows(self, user_name)
        if body["error"]:
            raise web.HTTPError(503, body["error"])
        self.finish(json.dumps(body))


class MyJobAPIHandler(APIHandler):
    @refused_as_403("servers")
    async def delete(self, user_name: str, job_id: str) -> None:
        try:
            await _myjobs(self).cancel(user_name, job_id, _slurm_conf(self, user_name))
        except ValueError as exc:
            raise web.HTTPError(400, str(exc)) from None
        except NotYourJob as exc:
            raise web.HTTPError(403, f"{exc}; nothing was cancelled") from None
        except SlurmCommandError as exc:
            raise web.HTTPError(503, f"job {job_id} was not cancelled: {exc}") from None
        self.log.info("%s cancelled %s's job %s", self.current_user.name, user_name, job_id)
        self.finish(json.dumps({"job_id": job_id, "message": f"job {job_id} cancelled"}))


class MyJobLogAPIHandler(APIHandler):
    @refused_as_403("read:servers")
    async def get(self, user_name: str, job_id: str) -> None:
        raw = self.get_argument("offset", "-1")
        try:
            offset = int(raw)
        except ValueError:
            raise web.HTTPError(400, f"offset: {raw!r} is not a whole number of bytes") from None
        job = await _users_job(self, user_name, job_id)
        self.finish(json.dumps(await _myjobs(self).log_chunk(user_name, job, offset)))


def _records(handler: BaseHandler, user_name: str) -> dict[str, Any]:
    """``{"records", "error"}``: each record or why it cannot be read; ``error`` when the
    records are off."""
    try:
        return {"records": Provenance.instance(config=handler.settings.get("config")).records(user_name), "error": None}
    except LookupError as exc:
        return {"records": [], "error": str(exc)}
    except ValueError as exc:
        raise web.HTTPError(400, str(exc)) from None


class ProvenanceAPIHandler(APIHandler):
    @refused_as_403("read:servers")
    async def get(self, user_name: str, job_id: str | None = None) -> None:
        if job_id is None:
            return self.finish(json.dumps(_records(self, user_name)))
        prov = Provenance.instance(config=self.settings.get("config"))
        try:
            rec = prov.read(user_name, job_id)
        except LookupError as exc:
            raise web.HTTPError(404, str(exc)) from None
        except ValueError as exc:  # a bad id, or a corrupt record: said, not hidden
            raise web.HTTPError(400 if "corrupt" not in str(exc) else 500, str(exc)) from None
        return self.finish(rec.model_dump_json())


class MyJobsPageHandler(BaseHandler):
    @web.authenticated
    def get(self, user_name: str | None = None) -> Any:
        if not user_name:
            return self.redirect(url_path_join(self.hub.base_url, "sandfill/jobs", self.current_user.name))
        return self._page(user_name)

    @refused_as_403("read:servers")
    async def _page(self, user_name: str) -> None:
        body = await _job_rows(self, user_name)
        html = await self.render_template(
            "sandfill_jobs.html",
            for_user=user_name,
            jobs=body["jobs"] or [],
            error=body["error"],
            api_url=url_path_join(self.hub.base_url, "api/sandfill/users", user_name, "jobs"),
            refresh_seconds=max(2.0, _myjobs(self).cache_seconds),
            provenance=_records(self, user_name),
            provenance_url=url_path_join(self.hub.base_url, "api/sandfill/users", user_name, "provenance"),
        )
        self.finish(html)


def install_port_handler() -> None:
    """Replace batchspawner's port route in JupyterHub's default API handlers (in place,
    before the app builds its routes — i.e. at config load)."""
    handlers = apihandlers.default_handlers
    handlers[:] = [h for h in handlers if h[0] != PORT_ROUTE]
    handlers.append((PORT_ROUTE, PortReportHandler))


#: for ``c.JupyterHub.extra_handlers``
extra_handlers: list[tuple[str, type]] = [
    (r"/api/sandfill/users/([^/]+)/server/job", JobAPIHandler),
    (r"/api/sandfill/users/([^/]+)/server/log", JobLogAPIHandler),
    (r"/sandfill/job/?", JobPageHandler),
    (r"/sandfill/job/([^/]+)", JobPageHandler),
    (r"/api/sandfill/users/([^/]+)/jobs", MyJobsAPIHandler),
    (r"/api/sandfill/users/([^/]+)/jobs/([^/]+)", MyJobAPIHandler),
    (r"/api/sandfill/users/([^/]+)/jobs/([^/]+)/log", MyJobLogAPIHandler),
    (r"/api/sandfill/users/([^/]+)/provenance", ProvenanceAPIHandler),
    (r"/api/sandfill/users/([^/]+)/provenance/([^/]+)", ProvenanceAPIHandler),
    (r"/sandfill/jobs/?", MyJobsPageHandler),
    (r"/sandfill/jobs/([^/]+)", MyJobsPageHandler),
]
