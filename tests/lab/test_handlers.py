"""sandfill.lab.handlers: the REST API in a real Jupyter server; the tests marked ``slurm``
run over the real devcluster, the others need no Slurm (they must create nothing)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from sandfill.dask.connect import connect, read_connection
from sandfill.dask.widget import jobs_table_html
from sandfill.lab.handlers import ROUTES
from sandfill.slurm import SlurmClient


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
        ({"template": "small", "workers": -1}, "workers: must be a whole number from 0 to 64, not -1"),
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
        ({"template": "small", "partition": "burst\n#SBATCH -N 100"}, "partition: 'burst\\n#SBATCH -N 100' is not a Slurm name"),
        ({"template": "small", "qos": "$(id)"}, "qos: '$(id)' is not a Slurm name"),
        ([1, 2], "body: must be a JSON object"),
    ],
)
@pytest.mark.slurm
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


@pytest.mark.slurm
async def test_lifecycle_scale_jobs_log_connect_delete(jp_fetch: Any, devcluster: Any) -> None:
    slurm = SlurmClient(devcluster.slurm_conf)
    code, model = await call(jp_fetch, "POST", "clusters", body={"template": "small", "name": "demo", "memory": "1GiB"})
    assert code == 201 and model["name"] == "demo" and model["scheduler_address"].startswith("tls://")
    cid = model["id"]
    assert model["dashboard_link"].startswith("proxy/") and model["dashboard_link"].endswith("/status")
    code, err = await call(jp_fetch, "POST", "clusters", body={"template": "small", "name": "demo"})
    assert code == 400 and "already exists" in err["error"]
    for bad, needle in [({"scale": -1}, "scale: must be a whole number from 0 to 64, not -1"), ({"scale": 2, "adapt": {}}, "body: must be"), ({"adapt": {"minimum": 3, "maximum": 1}}, "must not exceed maximum"), ({"adapt": {"minimum": 1}}, "adapt: must be")]:
        code, err = await call(jp_fetch, "PATCH", "clusters", cid, body=bad)
        assert code == 400 and needle in err["error"], err
    code, model = await call(jp_fetch, "PATCH", "clusters", cid, body={"scale": 2})
    assert code == 200 and model["target"] == {"mode": "scale", "n": 2, "minimum": None, "maximum": None}
    def both_running(m: dict[str, Any]) -> bool:
        return m["workers"] == 2 and sum(j["state"] == "running" for j in m["jobs"]) == 2

    model = await wait_for(jp_fetch, cid, both_running)  # the poller may see the start a round after the workers join
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
        with pytest.raises(ValueError, match="n: must be a whole number from 0 to 64, not -5"):
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


# ---- hostile input (#11): refused with a 400 naming the field, nothing created, no HTML back --

SMALL = {"template": "small"}
HOSTILE = [
    ({**SMALL, "name": "x" * (1 << 20)}, "body: 1048609 bytes is more than the 16384 allowed"),  # a 1 MB body
    ("small", "body: must be a JSON object, not str"),
    (None, "body: must be a JSON object, not NoneType"),
    ([SMALL], "body: must be a JSON object, not list"),
    ({"template": {"name": "small"}}, "template: {'name': 'small'} is not one of"),
    ({"template": ["small"]}, "template: ['small'] is not one of"),
    ({"template": "small\n"}, "template: 'small\\n' is not one of"),
    ({**SMALL, "name": "demo\n"}, "name: 'demo\\n' is not a valid name"),
    ({**SMALL, "name": "de\x00mo"}, "name: 'de\\x00mo' is not a valid name"),
    ({**SMALL, "name": "demo٣"}, "name: 'demo٣' is not a valid name"),
    ({**SMALL, "name": {"a": 1}}, "name: {'a': 1} is not a valid name"),
    ({**SMALL, "name": "<img src=x onerror=alert(1)>"}, "name: '<img src=x onerror=alert(1)>' is not a valid name"),
    ({**SMALL, "workers": 65}, "workers: must be a whole number from 0 to 64, not 65"),
    ({**SMALL, "workers": 2.0}, "workers: must be a whole number from 0 to 64, not 2.0"),
    ({**SMALL, "workers": "٤"}, "workers: must be a whole number from 0 to 64, not '٤'"),
    ({**SMALL, "workers": "4\n"}, "workers: must be a whole number from 0 to 64, not '4\\n'"),
    ({**SMALL, "workers": True}, "workers: must be a whole number from 0 to 64, not True"),
    ({**SMALL, "workers": [4]}, "workers: must be a whole number from 0 to 64, not [4]"),
    ({**SMALL, "workers": {"n": 4}}, "workers: must be a whole number from 0 to 64, not {'n': 4}"),
    ({**SMALL, "cores": 2.0}, "cores: must be a whole number from 1 to 256, not 2.0"),
    ({**SMALL, "cores": "٢"}, "cores: must be a whole number from 1 to 256, not '٢'"),
    ({**SMALL, "cores": {"n": 2}}, "cores: must be a whole number from 1 to 256, not {'n': 2}"),
    ({**SMALL, "memory": "٤G"}, "memory: '٤G' is not an amount of memory"),
    ({**SMALL, "memory": "4G\n"}, "memory: '4G\\n' is not an amount of memory"),
    ({**SMALL, "memory": "4G\x00"}, "memory: '4G\\x00' is not an amount of memory"),
    ({**SMALL, "memory": 1.5}, "memory: 1.5 is not an amount of memory"),
    ({**SMALL, "memory": {"G": 4}}, "memory: {'G': 4} is not an amount of memory"),
    ({**SMALL, "min_walltime": "１0:00"}, "min_walltime: '１0:00' is not a duration"),
    ({**SMALL, "min_walltime": "10:00\n"}, "min_walltime: '10:00\\n' is not a duration"),
    ({**SMALL, "max_walltime": 30.5}, "max_walltime: 30.5 is not a duration"),
    ({**SMALL, "max_walltime": ["1:00:00"]}, "max_walltime: ['1:00:00'] is not a duration"),
    ({**SMALL, "partition": {"name": "burst"}}, "partition: {'name': 'burst'} is not a Slurm name"),
    ({**SMALL, "qos": "<b>normal</b>"}, "qos: '<b>normal</b>' is not a Slurm name"),
    ({**SMALL, "qos": "normal\n"}, "qos: 'normal\\n' is not a Slurm name"),
]
RAW_HOSTILE = [
    ("[" * 20_000 + "]" * 20_000, "body: 40000 bytes is more than the 16384 allowed"),
    ("[" * 8_000 + "]" * 8_000, "body: nested too deeply"),
    ('{"template": "small", "workers": NaN}', "workers: must be a whole number from 0 to 64, not nan"),
    (b"\xff\xfe{}", "body: not valid JSON"),
]


@pytest.fixture
def no_submit(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every sbatch the server would run (there is no Slurm: there must be none)."""
    submitted: list[str] = []

    async def submit(self: object, script: str, **kw: object) -> str:
        submitted.append(script)
        raise AssertionError("nothing may be submitted")

    monkeypatch.setattr(SlurmClient, "submit", submit)
    return submitted


async def raw_call(jp_fetch: Any, method: str, *path: str, body: str | bytes | None = None) -> tuple[int, str, str]:
    """Status, Content-Type and the raw response text."""
    try:
        r = await jp_fetch("sandfill", *path, method=method, body=body)
    except HTTPClientError as exc:
        assert exc.response is not None
        r = exc.response
    return r.code, r.headers.get("Content-Type", ""), r.body.decode()


async def assert_nothing_created(jp_fetch: Any, lab_cfg: dict[str, Any], submitted: list[str]) -> None:
    assert (await call(jp_fetch, "GET", "clusters")) == (200, [])
    connections = Path(lab_cfg["sandfill.lab.connection-dir"])
    assert not connections.exists() or not any(connections.iterdir())
    assert submitted == []


def _short(v: Any) -> str:
    return repr(v)[:40]


@pytest.mark.parametrize(
    "raw,needle",
    [(json.dumps(b), n) for b, n in HOSTILE] + RAW_HOSTILE,
    ids=[_short(b) for b, _ in HOSTILE] + [_short(r) for r, _ in RAW_HOSTILE],
)
async def test_hostile_bodies_are_400_naming_the_field_and_create_nothing(
    jp_fetch: Any, lab_cfg: dict[str, Any], no_submit: list[str], raw: str | bytes, needle: str
) -> None:
    code, ctype, text = await raw_call(jp_fetch, "POST", "clusters", body=raw)
    assert code == 400, text
    assert ctype.startswith("application/json")
    assert not {"<", ">"} & set(text)  # HTML comes back escaped inside the JSON
    assert needle in json.loads(text)["error"], text
    await assert_nothing_created(jp_fetch, lab_cfg, no_submit)


@pytest.mark.parametrize(
    "path",
    [
        ("clusters", ".."),
        ("clusters", "..", "jobs"),
        ("clusters", "%2e%2e%2f%2e%2e%2fetc"),
        ("clusters", "x", "jobs", "..%2f..%2fetc%2fshadow", "log"),
        ("clusters", "x", "jobs", "1", "log%2f..%2f..%2f"),
        ("clusters", "<script>", "jobs"),
    ],
)
async def test_traversal_and_foreign_ids_are_404_and_leak_nothing(jp_fetch: Any, lab_cfg: dict[str, Any], no_submit: list[str], path: tuple[str, ...]) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        code, _, text = await raw_call(jp_fetch, method, *path, body='{"scale": 1}' if method == "PATCH" else None)
        assert code in {404, 405}, (method, path, text)  # 405: no such method on that route
        assert "root:" not in text and "<script>" not in text
    await assert_nothing_created(jp_fetch, lab_cfg, no_submit)


async def test_a_patch_with_a_hostile_body_changes_nothing(jp_fetch: Any, lab_cfg: dict[str, Any], no_submit: list[str]) -> None:
    code, _, text = await raw_call(jp_fetch, "PATCH", "clusters", "nope", body="x" * (1 << 20))
    assert code == 400 and "body: 1048576 bytes is more than the 16384 allowed" in text
    await assert_nothing_created(jp_fetch, lab_cfg, no_submit)
