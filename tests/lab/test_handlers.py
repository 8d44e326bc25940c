"""sandfill.lab.handlers: the REST API in a real Jupyter server, over the real devcluster."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from sandfill.dask.connect import connect, read_connection
from sandfill.dask.widget import jobs_table_html
from sandfill.lab.handlers import ROUTES
from sandfill.slurm import SlurmClient

pytestmark = pytest.mark.slurm


async def call(jp_fetch: Any, method: str, *path: str, body: Any = None, raw: str | None = None) -> tuple[int, Any]:
    kw: dict[str, Any] = {"method": method}
    if body is not None or raw is not None:
        kw["body"] = raw if raw is not None else json.dumps(body)
    elif method in {"POST", "PATCH"}:
        kw["body"] = ""
    try:
        r = await jp_fetch("sandfill", *path, **kw)
    except HTTPClientError as exc:
        assert exc.response is not None
        return exc.code, json.loads(exc.response.body or b"null")
    return r.code, json.loads(r.body) if r.body else None


async def until(pred: Any, what: str, timeout: float = 60) -> None:
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.3)


async def wait_for(jp_fetch: Any, cid: str, pred: Any, timeout: float = 90) -> dict[str, Any]:
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while True:
        _, model = await call(jp_fetch, "GET", "clusters", cid)
        if pred(model):
            return model
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; last model: {model}")
        await asyncio.sleep(0.5)


async def test_templates_and_empty_list(jp_fetch: Any) -> None:
    code, templates = await call(jp_fetch, "GET", "templates")
    assert code == 200 and {t["name"] for t in templates} >= {"small", "medium"}
    assert all({"cores", "memory", "min_walltime", "max_walltime"} <= set(t) for t in templates)
    assert await call(jp_fetch, "GET", "clusters") == (200, [])


@pytest.mark.parametrize(
    "body,needle",
    [
        ({"template": "huge"}, "template: 'huge' is not one of"),
        ({"template": "small", "name": "a b"}, "name: 'a b' is not a valid name"),
        ({"template": "small", "name": "x\n#SBATCH --uid=0"}, "name:"),
        ({"template": "small", "workers": -1}, "workers: must be from 0 to"),
        ({"template": "small", "workers": "4"}, "workers: must be a whole number"),
        ({"template": "small", "bogus": 1}, "bogus: unknown field"),
        ({"cores": 0, "memory": "1GiB", "min_walltime": "00:05:00", "max_walltime": "00:10:00"}, "cores: must be from 1 to 256, not 0"),
        ({"cores": 1, "memory": "lots", "min_walltime": "00:05:00", "max_walltime": "00:10:00"}, "memory: 'lots' is not an amount of memory"),
        ({"cores": 1, "memory": "2T", "min_walltime": "00:05:00", "max_walltime": "00:10:00"}, "memory: '2T' is more than 1 TiB"),
        ({"cores": 1, "memory": "1GiB", "min_walltime": "00:20:00", "max_walltime": "00:10:00"}, "min_walltime: '00:20:00' is longer than"),
        ({"cores": 1, "memory": "1GiB", "min_walltime": "5; rm -rf /", "max_walltime": "00:10:00"}, "min_walltime: '5; rm -rf /' is not a duration"),
        ({"cores": 1, "memory": "1GiB", "min_walltime": "00:05:00", "max_walltime": "1:2:3:4"}, "max_walltime: '1:2:3:4' is not a duration"),
        ({"cores": 1, "memory": "1GiB", "min_walltime": "1:00", "max_walltime": "00:10:00"}, "min_walltime: '1:00' leaves no time"),
        ({"template": "small", "partition": "nope"}, "partition: 'nope' is not one of"),
        ({"template": "small", "partition": "burst\n#SBATCH -N 100"}, "partition: 'burst\\n#SBATCH -N 100' is not a valid Slurm name"),
        ({"template": "small", "qos": "$(id)"}, "qos: '$(id)' is not a valid Slurm name"),
        ([1, 2], "body: must be a JSON object"),
    ],
)
async def test_create_rejects_bad_bodies_and_submits_nothing(jp_fetch: Any, devcluster: Any, body: Any, needle: str) -> None:
    before = set(SlurmClient(devcluster.slurm_conf).squeue_sync())
    code, err = await call(jp_fetch, "POST", "clusters", body=body)
    assert code == 400 and needle in err["error"], err
    assert (await call(jp_fetch, "GET", "clusters"))[1] == []
    assert set(SlurmClient(devcluster.slurm_conf).squeue_sync()) == before


async def test_not_json_is_400(jp_fetch: Any) -> None:
    code, err = await call(jp_fetch, "POST", "clusters", raw="{nope")
    assert code == 400 and "body: not valid JSON" in err["error"]


async def test_unknown_ids_are_404(jp_fetch: Any) -> None:
    for method, path, body in [
        ("GET", ("clusters", "nope"), None),
        ("PATCH", ("clusters", "nope"), {"scale": 1}),
        ("DELETE", ("clusters", "nope"), None),
        ("GET", ("clusters", "nope", "jobs"), None),
        ("GET", ("clusters", "nope", "jobs", "12", "log"), None),
    ]:
        code, err = await call(jp_fetch, method, *path, body=body)
        assert code == 404 and "no cluster 'nope'" in err["error"], (method, path, err)


async def test_lifecycle_scale_jobs_log_connect_delete(jp_fetch: Any, devcluster: Any) -> None:
    slurm = SlurmClient(devcluster.slurm_conf)
    code, model = await call(jp_fetch, "POST", "clusters", body={"template": "small", "name": "demo", "memory": "1GiB"})
    assert code == 201 and model["name"] == "demo" and model["scheduler_address"].startswith("tls://")
    cid = model["id"]
    assert model["dashboard_link"].startswith("proxy/") and model["dashboard_link"].endswith("/status")
    code, err = await call(jp_fetch, "POST", "clusters", body={"template": "small", "name": "demo"})
    assert code == 400 and "already exists" in err["error"]
    for bad, needle in [({"scale": -1}, "scale: must be from 0"), ({"scale": 2, "adapt": {}}, "body: must be"), ({"adapt": {"minimum": 3, "maximum": 1}}, "must not exceed maximum"), ({"adapt": {"minimum": 1}}, "adapt: must be")]:
        code, err = await call(jp_fetch, "PATCH", "clusters", cid, body=bad)
        assert code == 400 and needle in err["error"], err
    code, model = await call(jp_fetch, "PATCH", "clusters", cid, body={"scale": 2})
    assert code == 200 and model["target"] == {"mode": "scale", "n": 2, "minimum": None, "maximum": None}
    model = await wait_for(jp_fetch, cid, lambda m: m["workers"] == 2)
    running = [j for j in model["jobs"] if j["state"] == "running"]
    assert len(running) == 2 and all(j["time_left"] > 0 and j["node"] and j["workers"] for j in running)
    code, jobs = await call(jp_fetch, "GET", "clusters", cid, "jobs")
    assert code == 200 and {j["job_id"] for j in jobs} >= {j["job_id"] for j in running}
    code, log = await call(jp_fetch, "GET", "clusters", cid, "jobs", running[0]["job_id"], "log")
    assert code == 200 and "sandfill: job" in log["text"]
    code, err = await call(jp_fetch, "GET", "clusters", cid, "jobs", "999999", "log")
    assert code == 404

    # a kernel attaches by name and reads the same model over the (TLS) Dask comm
    info = read_connection("demo")
    assert info["id"] == cid and info["tls"] and read_connection(cid) == info
    client = await connect("demo", asynchronous=True)
    try:
        assert await client.submit(sum, [1, 2, 3]) == 6
        remote = await client.scheduler.sandfill_model()
        assert {j["job_id"] for j in remote["jobs"] if j["state"] == "running"} == {j["job_id"] for j in running}
        html = jobs_table_html(remote)
        assert html.count("class='sandfill-job' data-state='running'") == 2
        with pytest.raises(ValueError, match="n: must be a whole number from 0 to 1000, not -5"):
            await client.scheduler.sandfill_scale(n=-5)
        await client.scheduler.sandfill_adapt(minimum=1, maximum=3)
    finally:
        await client.close()
    _, model = await call(jp_fetch, "GET", "clusters", cid)
    assert model["target"] == {"mode": "adapt", "n": None, "minimum": 1, "maximum": 3}

    ids = {j["job_id"] for j in model["jobs"] if j["job_id"]}
    assert (await call(jp_fetch, "DELETE", "clusters", cid))[0] == 204
    assert (await call(jp_fetch, "GET", "clusters"))[1] == []
    await until(lambda: not {j for j, s in slurm.squeue_sync(ids).items() if not s.ended}, "jobs to leave the queue")
    with pytest.raises(LookupError):
        read_connection("demo")


async def test_no_route_answers_without_authentication(jp_fetch: Any, jp_base_url: str, jp_http_port: int) -> None:
    client = AsyncHTTPClient()
    for pattern, _ in ROUTES:
        path = pattern.replace("([A-Za-z0-9_.-]+)", "x").replace("([0-9_]+)", "1")
        for method in ("GET", "POST", "PATCH", "DELETE"):
            url = f"http://localhost:{jp_http_port}{jp_base_url}{path}"
            try:
                r = await client.fetch(url, method=method, body="{}" if method in {"POST", "PATCH"} else None, raise_error=False)
            except HTTPClientError as exc:  # pragma: no cover
                r = exc.response
            assert r is not None and r.code in {401, 403, 405}, (method, path, r.code)
