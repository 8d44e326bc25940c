"""sandfill.lab.walltime: the server job's end time, its warning, and the REST route (in a
real Jupyter server, with a stand-in for Slurm; the live hub test is in tests/hub)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient

from sandfill.lab.walltime import DEFAULT_WARNING_S, WalltimeClock, warning_seconds
from sandfill.slurm import SlurmCommandError
from sandfill.slurm.states import JobStatus

NOW = 1_800_000_000.0


class FakeSlurm:
    """Answers ``squeue`` with ``end`` for the job (None: the job is not known), or fails."""

    def __init__(self, end: float | None, fail: bool = False) -> None:
        self.end = end
        self.fail = fail
        self.asked: list[list[str]] = []

    async def squeue(self, job_ids: Iterable[str] | None = None) -> dict[str, JobStatus]:
        ids = list(job_ids or [])
        self.asked.append(ids)
        if self.fail:
            raise SlurmCommandError(["squeue"], 1, "", "slurm_load_jobs error: Unable to contact slurm controller")
        if self.end is None:
            return {}
        return {j: JobStatus(job_id=j, state="RUNNING", end_time=self.end) for j in ids}


def clock(slurm: FakeSlurm, job_id: str | None = "42", warn: int = 600) -> WalltimeClock:
    return WalltimeClock(job_id, warn, client=slurm, refresh=300)  # type: ignore[arg-type]


async def test_end_time_from_squeue_and_warning_window() -> None:
    slurm = FakeSlurm(end=NOW + 3600)
    c = clock(slurm)
    await c.update(now=NOW)
    assert slurm.asked == [["42"]]
    info = c.info(now=NOW)
    assert info["end_time"] == NOW + 3600 and info["seconds_left"] == 3600 and info["warning"] is False
    assert info["job_id"] == "42" and info["warn_before"] == 600 and info["error"] is None
    later = c.info(now=NOW + 3600 - 599)
    assert later["warning"] is True
    assert later["message"].startswith("This server's Slurm job 42 reaches its walltime at ")
    assert "(in 9 min 59 s). Save your work: the server stops then." in later["message"]
    assert c.info(now=NOW + 4000)["seconds_left"] == 0.0


async def test_squeue_is_asked_at_most_every_refresh_seconds() -> None:
    slurm = FakeSlurm(end=NOW + 3600)
    c = clock(slurm)
    await c.update(now=NOW)
    await c.update(now=NOW + 299)
    assert len(slurm.asked) == 1
    slurm.end = NOW + 7200  # an admin extended the limit
    await c.update(now=NOW + 300)
    assert len(slurm.asked) == 2 and c.end_time == NOW + 7200


async def test_a_failed_squeue_keeps_the_last_end_time_and_says_why() -> None:
    slurm = FakeSlurm(end=NOW + 3600)
    c = clock(slurm)
    await c.update(now=NOW)
    slurm.fail = True
    await c.update(now=NOW + 300)
    info = c.info(now=NOW + 300)
    assert info["end_time"] == NOW + 3600 and "Unable to contact slurm controller" in info["error"]
    slurm.fail, slurm.end = False, None  # answered, but no end time: keep the last one
    await c.update(now=NOW + 600)
    assert c.info(now=NOW + 600)["end_time"] == NOW + 3600 and c.error is None


async def test_outside_a_job_nothing_is_asked() -> None:
    slurm = FakeSlurm(end=NOW)
    c = clock(slurm, job_id=None)
    await c.update(now=NOW)
    assert slurm.asked == []
    assert c.info(now=NOW) == {
        "job_id": None, "end_time": None, "seconds_left": None, "warn_before": 600,
        "warning": False, "message": "", "error": None,
    }


def test_nap_wakes_at_the_warning_time_or_rereads_the_end() -> None:
    c = clock(FakeSlurm(end=None))
    assert c.nap() == 300  # no end known yet
    import time

    c.end_time = time.time() + 600 + 120
    assert 100 < c.nap() <= 120
    c.end_time = time.time() + 10
    assert c.nap() == 300  # warning on: re-read the end (an admin may extend it)


def test_warning_seconds_from_the_environment(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test-walltime")
    assert warning_seconds({}, log) == DEFAULT_WARNING_S
    assert warning_seconds({"SANDFILL_WALLTIME_WARNING": "900"}, log) == 900
    with caplog.at_level(logging.ERROR, logger="test-walltime"):
        assert warning_seconds({"SANDFILL_WALLTIME_WARNING": "10 min"}, log) == DEFAULT_WARNING_S
    assert "SANDFILL_WALLTIME_WARNING: '10 min' is not a whole number of seconds" in caplog.text


# ---- the route, in a real Jupyter server ------------------------------------------------------


@pytest.fixture
def jp_server_config() -> dict[str, object]:
    return {"ServerApp": {"jpserver_extensions": {"sandfill.lab": True}}}


async def test_route_serves_the_clock(jp_fetch: Any, jp_serverapp: Any) -> None:
    c: WalltimeClock = jp_serverapp.web_app.settings["sandfill_walltime"]
    import time

    c.job_id, c.client, c.refresh = "42", FakeSlurm(end=time.time() + 300), 0  # type: ignore[assignment]
    r = await jp_fetch("sandfill", "walltime")
    info = json.loads(r.body)
    assert r.code == 200 and info["job_id"] == "42" and info["warning"] is True
    assert 0 < info["seconds_left"] <= 300 and "Save your work" in info["message"]


async def test_route_needs_authentication(jp_fetch: Any, jp_base_url: str, jp_http_port: int) -> None:
    url = f"http://localhost:{jp_http_port}{jp_base_url}sandfill/walltime"
    r = await AsyncHTTPClient().fetch(url, raise_error=False)
    assert r.code in {401, 403}, r.code


class FakeService:
    """The sandfill service's ``api/jobs`` (:meth:`RemotePoller.fetch`), or its failure."""

    def __init__(self, end: float, fail: bool = False) -> None:
        self.end = end
        self.fail = fail
        self.asked: list[list[str]] = []

    def fetch(self, job_ids: list[str]) -> dict[str, JobStatus]:
        self.asked.append(list(job_ids))
        if self.fail:
            from sandfill.slurm.remote import ServiceError

            raise ServiceError("the sandfill service does not answer: [Errno 111] Connection refused")
        return {j: JobStatus(job_id=j, state="RUNNING", end_time=self.end) for j in job_ids}


async def test_under_a_hub_the_end_comes_from_the_service_and_slurm_only_when_it_does_not_answer() -> None:
    slurm, service = FakeSlurm(end=NOW + 100), FakeService(end=NOW + 3600)
    c = WalltimeClock("42", 600, client=slurm, refresh=300, service=service)  # type: ignore[arg-type]
    await c.update(now=NOW)
    assert service.asked == [["42"]] and slurm.asked == [] and c.info(now=NOW)["end_time"] == NOW + 3600
    service.fail = True
    await c.update(now=NOW + 300)
    assert slurm.asked == [["42"]] and c.info(now=NOW)["end_time"] == NOW + 100 and c.error is None


def test_the_server_extension_asks_the_service_when_the_hub_gives_its_url(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from sandfill.lab.walltime import setup_walltime
    from sandfill.slurm.remote import RemotePoller

    app = SimpleNamespace(web_app=SimpleNamespace(settings={"base_url": "/"}, add_handlers=lambda *a: None),
                          log=logging.getLogger("test"), io_loop=SimpleNamespace(add_callback=lambda f: None))
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.delenv("SANDFILL_SERVICE_URL", raising=False)
    assert setup_walltime(app).service is None
    monkeypatch.setenv("SANDFILL_SERVICE_URL", "http://127.0.0.1:9/services/sandfill/")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "server-token")
    service = setup_walltime(app).service
    assert isinstance(service, RemotePoller) and service.url == "http://127.0.0.1:9/services/sandfill/"
    service.close()
