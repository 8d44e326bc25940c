"""Thin REST handlers over the ClusterManager (docs/lab-api.md). Every route is
authenticated and authorized by the Jupyter server; 400 and 404 are deliberate."""

from __future__ import annotations

import json
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from sandfill.lab.manager import BadRequest, ClusterManager, NotFound

AUTH_RESOURCE = "sandfill"
#: the largest request body read (a create body is a few hundred bytes)
MAX_BODY_BYTES = 16 * 1024


def to_json(obj: Any) -> str:
    """JSON with ``<``, ``>`` and ``&`` escaped (``\\u003c``…), so that no value a user sent
    can be read as HTML or close a script, even by a client that sniffs the type."""
    return json.dumps(obj).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class _Base(APIHandler):
    auth_resource = AUTH_RESOURCE

    @property
    def manager(self) -> ClusterManager:
        return self.settings["sandfill_manager"]

    def body(self) -> Any:
        raw = self.request.body or b"null"
        if len(raw) > MAX_BODY_BYTES:
            raise BadRequest(f"body: {len(raw)} bytes is more than the {MAX_BODY_BYTES} allowed")
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise BadRequest(f"body: not valid JSON ({exc})") from None
        except RecursionError:
            raise BadRequest("body: nested too deeply") from None

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """``{"error": ...}``: our own 4xx words; for anything unexpected, no exception text
        (it is in the server's log), only the status's reason."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        self.set_header("Content-Type", "application/json")
        msg = getattr(exc, "log_message", None) if isinstance(exc, web.HTTPError) else None
        self.finish(to_json({"error": msg or self._reason}))

    async def _do(self, fn: Any, *args: Any, status: int = 200) -> None:
        try:
            result = fn(*args)
            if hasattr(result, "__await__"):
                result = await result
        except BadRequest as exc:
            raise web.HTTPError(400, str(exc)) from None
        except NotFound as exc:
            raise web.HTTPError(404, str(exc)) from None
        self.set_status(status)
        if status == 204:
            self.finish()
        else:
            self.set_header("Content-Type", "application/json")
            self.finish(to_json(result))


class TemplatesHandler(_Base):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        await self._do(self.manager.templates)


class ClustersHandler(_Base):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        await self._do(self.manager.list)

    @web.authenticated
    @authorized
    async def post(self) -> None:
        await self._do(lambda: self.manager.create(self.body()), status=201)


class ClusterHandler(_Base):
    @web.authenticated
    @authorized
    async def get(self, cid: str) -> None:
        await self._do(self.manager.get, cid)

    @web.authenticated
    @authorized
    async def patch(self, cid: str) -> None:
        await self._do(lambda: self.manager.patch(cid, self.body()))

    @web.authenticated
    @authorized
    async def delete(self, cid: str) -> None:
        await self._do(self.manager.delete, cid, status=204)


class JobsHandler(_Base):
    @web.authenticated
    @authorized
    async def get(self, cid: str) -> None:
        await self._do(self.manager.jobs, cid)


class JobLogHandler(_Base):
    @web.authenticated
    @authorized
    async def get(self, cid: str, job_id: str) -> None:
        await self._do(self.manager.job_log, cid, job_id)


ROUTES = [
    (r"sandfill/templates", TemplatesHandler),
    (r"sandfill/clusters", ClustersHandler),
    (r"sandfill/clusters/([A-Za-z0-9_.-]+)", ClusterHandler),
    (r"sandfill/clusters/([A-Za-z0-9_.-]+)/jobs", JobsHandler),
    (r"sandfill/clusters/([A-Za-z0-9_.-]+)/jobs/([0-9_]+)/log", JobLogHandler),
]


def setup_handlers(web_app: Any, manager: ClusterManager) -> None:
    base = web_app.settings["base_url"]
    web_app.settings["sandfill_manager"] = manager
    web_app.add_handlers(".*$", [(url_path_join(base, pattern), handler) for pattern, handler in ROUTES])
