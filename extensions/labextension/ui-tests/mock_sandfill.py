"""An in-memory stand-in for the sandfill server extension (docs/lab-api.md).

For looking at and browser-testing the panel without Slurm. Not part of the
product. Run, from this folder:

    PYTHONPATH=. jupyter lab --ServerApp.jpserver_extensions=mock_sandfill=True

Every cluster gets one job in each state so all badges show, a job held back (no job id)
with its waiting reason, the next planned start that bounds the gap, and a log per job.
"""

import itertools
import json
import time

import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join

TEMPLATES = [
    {
        "name": "small",
        "description": "1 core, short gaps",
        "cores": 1,
        "memory": "2GiB",
        "min_walltime": "00:10:00",
        "max_walltime": "01:00:00",
        "partition": None,
        "qos": None,
    },
    {
        "name": "wide",
        "description": "4 cores",
        "cores": 4,
        "memory": "8GiB",
        "min_walltime": "00:30:00",
        "max_walltime": "04:00:00",
        "partition": "batch",
        "qos": "backfill",
    },
]

_ids = itertools.count(1)
_job_ids = itertools.count(1000)
CLUSTERS: dict = {}


def _job(state, **kw):
    now = time.time()
    jid = str(next(_job_ids))
    base = {
        "job_id": jid,
        "state": state,
        "slurm_state": None,
        "reason": None,
        "reason_text": None,
        "estimated_start": None,
        "start_time": None,
        "end_time": None,
        "time_left": None,
        "walltime": "00:30:00",
        "node": None,
        "partition": "batch",
        "qos": None,
        "workers": [],
        "ended_why": None,
    }
    if state in ("running", "retiring"):
        base.update(
            slurm_state="RUNNING",
            start_time=now - 300,
            end_time=now + 754,
            time_left=754.0,
            node="node1",
            workers=[f"sandfill-{jid}-0"],
        )
    elif state == "pending":
        base.update(slurm_state="PENDING", reason="Priority", estimated_start=now + 180)
    elif state == "ended":
        base.update(slurm_state="TIMEOUT", ended_why="reached its walltime", node="node2", start_time=now - 2400, ended_at=now - 600)
    base.update(kw)
    return base


def _cluster(template, name, workers):
    cid = f"c{next(_ids)}"
    return {
        "id": cid,
        "name": name or cid,
        "template": template,
        "scheduler_address": "tls://127.0.0.1:8786",
        "dashboard_link": "proxy/8787/status",
        "target": {"mode": "scale", "n": workers, "minimum": None, "maximum": None},
        "workers": 2,
        "jobs": [
            _job("running"),
            _job("running", node="node3"),
            _job("retiring", time_left=62.0),
            _job("pending"),
            _job("ended"),
            _job("unknown"),
            _job("pending", job_id="", reason="WaitingForGap", reason_text="waiting for a gap in the schedule", estimated_start=None),
        ],
        "waiting_reason": "no node has free CPUs until a planned start at least min-walltime away; waiting for a gap",
        "last_error": None,
        "cancels_owed": [],
        "next_planned_start": time.time() + 1500,
        "created": time.time(),
    }


class _Base(APIHandler):
    def fail(self, status, message):
        self.set_status(status)
        self.finish(json.dumps({"error": message}))

    def body(self):
        try:
            return json.loads(self.request.body or b"{}")
        except ValueError:
            return None


class TemplatesHandler(_Base):
    @tornado.web.authenticated
    def get(self):
        self.finish(json.dumps(TEMPLATES))


class ClustersHandler(_Base):
    @tornado.web.authenticated
    def get(self):
        self.finish(json.dumps(list(CLUSTERS.values())))

    @tornado.web.authenticated
    def post(self):
        body = self.body()
        if not isinstance(body, dict):
            return self.fail(400, "body must be a JSON object")
        names = [t["name"] for t in TEMPLATES]
        if body.get("template") not in names:
            return self.fail(400, f"template: unknown template {body.get('template')!r}")
        workers = body.get("workers", 0)
        if not isinstance(workers, int) or workers < 0:
            return self.fail(400, f"workers: must be a non-negative integer, not {workers!r}")
        c = _cluster(body["template"], body.get("name"), workers)
        CLUSTERS[c["id"]] = c
        self.set_status(201)
        self.finish(json.dumps(c))


class ClusterHandler(_Base):
    def _get(self, cid):
        c = CLUSTERS.get(cid)
        if c is None:
            self.fail(404, f"unknown cluster {cid!r}")
        return c

    @tornado.web.authenticated
    def get(self, cid):
        c = self._get(cid)
        if c is not None:
            self.finish(json.dumps(c))

    @tornado.web.authenticated
    def patch(self, cid):
        c = self._get(cid)
        if c is None:
            return
        body = self.body() or {}
        if "scale" in body:
            n = body["scale"]
            if not isinstance(n, int) or n < 0 or n > 100:
                return self.fail(400, f"scale: must be an integer 0-100, not {n!r}")
            c["target"] = {"mode": "scale", "n": n, "minimum": None, "maximum": None}
        elif "adapt" in body:
            a = body["adapt"]
            c["target"] = {"mode": "adapt", "n": None, **a}
        else:
            return self.fail(400, "body must have 'scale' or 'adapt'")
        self.finish(json.dumps(c))

    @tornado.web.authenticated
    def delete(self, cid):
        if self._get(cid) is not None:
            del CLUSTERS[cid]
            self.set_status(204)
            self.finish()


class JobLogHandler(_Base):
    @tornado.web.authenticated
    def get(self, cid, job_id):
        c = CLUSTERS.get(cid)
        if c is None or job_id not in {j["job_id"] for j in c["jobs"] if j["job_id"]}:
            return self.fail(404, f"cluster {cid!r} has no worker job {job_id!r}")
        self.finish(json.dumps({"job_id": job_id, "text": f"==> sandfill-worker-{job_id}.err <==\nworker started\n"}))


def _jupyter_server_extension_points():
    return [{"module": "mock_sandfill"}]


def _load_jupyter_server_extension(serverapp):
    web_app = serverapp.web_app
    base = url_path_join(web_app.settings["base_url"], "sandfill")
    web_app.add_handlers(
        ".*$",
        [
            (url_path_join(base, "templates"), TemplatesHandler),
            (url_path_join(base, "clusters"), ClustersHandler),
            (url_path_join(base, "clusters", "([^/]+)"), ClusterHandler),
            (url_path_join(base, "clusters", "([^/]+)", "jobs", "([0-9_]+)", "log"), JobLogHandler),
        ],
    )
