"""The sandfill service (sandfill.hub.service): JupyterHub identity, own jobs only, the
anonymous schedule, metrics, and a poller that survives hostile Slurm output -- with a fake
Slurm runner and a fake hub identity (the real hub is in test_service_live.py)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from jupyterhub.services.auth import HubOAuth
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from sandfill.hub.service.app import ACCESS_SCOPE, ClusterView, make_app
from sandfill.hub.service.config import configure_services
from sandfill.hub.site import SiteConfig
from sandfill.slurm.client import SlurmClient
from sandfill.slurm.commands import Result, Runner
from sandfill.slurm.squeue import SQUEUE_FIELDS

ROW = {"%i": "1", "%T": "RUNNING", "%r": "None", "%N": "node1", "%S": "2026-11-21T08:54:22",
       "%e": "2026-11-21T09:04:22", "%l": "10:00", "%P": "batch", "%q": "normal", "%u": "ada",
       "%V": "2026-11-21T08:44:22", "%B": "node1"}
ROWS = {
    "1": ROW,
    "2": {**ROW, "%i": "2", "%T": "PENDING", "%r": "Priority", "%N": "", "%S": "N/A", "%e": "N/A",
          "%P": "interactive", "%u": "bob", "%B": "n/a"},
    "3": {**ROW, "%i": "3", "%N": "node2", "%B": "node2"},
}
SINFO = b"node1|batch*|mix|1/7/0/8|16000|9000|1:00:00\nnode2|batch*|idle|0/8/0/8|16000|16000|1:00:00\n"
PLANNED = b"2026-12-01T09:11:47|node[1-2]\n"
RESERVATIONS = (b"ReservationName=secret-maint StartTime=2026-12-01T11:06:49 EndTime=2026-12-01T12:06:49 Duration=01:00:00 "
                b"Nodes=node[1-2] NodeCnt=2 CoreCnt=16 Features=(null) PartitionName=(null) Flags=MAINT TRES=cpu=16 "
                b"Users=carol Groups=(null) Accounts=physics Licenses=(null) State=INACTIVE BurstBuffer=(null)\n")

MODELS: dict[str, dict[str, Any]] = {
    "ada-token": {"kind": "user", "name": "ada", "admin": False, "scopes": [ACCESS_SCOPE]},
    "bob-token": {"kind": "user", "name": "bob", "admin": False, "scopes": [ACCESS_SCOPE]},
    "boss-token": {"kind": "user", "name": "boss", "admin": True, "scopes": ["access:services", "read:metrics"]},
    "cy-token": {"kind": "user", "name": "cy", "admin": False, "scopes": ["read:users:name!user=cy"]},
    "prom-token": {"kind": "service", "name": "prometheus", "admin": False, "scopes": ["read:metrics"]},
}


class FakeSlurm(Runner):
    """squeue, sinfo and squeue --start as Slurm 22.05 prints them, as bytes decoded the way
    the real runner decodes them; ``garbage`` replaces job 3's row."""

    def __init__(self) -> None:
        super().__init__("/nonexistent/slurm.conf")
        self.garbage: bytes | None = None
        self.calls: list[str] = []

    def execute(self, argv: Sequence[str], input: str | None) -> Result:
        self.calls.append(argv[0])
        if argv[0] == "sinfo":
            out = SINFO
        elif argv[0] == "scontrol":
            out = RESERVATIONS
        elif "PD" in argv:
            out = PLANNED
        else:
            fields = argv[argv.index("-o") + 1].split("|")
            assert tuple(fields) == SQUEUE_FIELDS
            ids = argv[argv.index("-j") + 1].split(",")
            lines = []
            for j in ids:
                if j == "3" and self.garbage is not None:
                    lines.append(self.garbage)
                elif j in ROWS:
                    lines.append("|".join(ROWS[j][f] for f in fields).encode())
            out = b"".join(line + b"\n" for line in lines)
        return Result(list(argv), 0, out.decode(errors="replace"), "")

    async def aexecute(self, argv: Sequence[str], input: str | None) -> Result:
        return self.execute(argv, input)


class FakeHubAuth(HubOAuth):
    """The hub's /api/user answered from :data:`MODELS` (None: not a token of the hub)."""

    async def _check_hub_authorization(self, url: str, api_token: str, cache_key: Any = None, use_cache: bool = True) -> Any:
        return MODELS.get(api_token)


@dataclass
class Service:
    url: str
    view: ClusterView
    slurm: FakeSlurm

    async def get(self, path: str, token: str | None = None) -> tuple[int, str]:
        headers = {"Authorization": f"token {token}"} if token else {}
        r = await AsyncHTTPClient().fetch(self.url + path, headers=headers, raise_error=False, follow_redirects=False)
        return r.code, r.body.decode(errors="replace")


@pytest_asyncio.fixture
async def service() -> AsyncIterator[Service]:
    slurm = FakeSlurm()
    client = SlurmClient("/nonexistent/slurm.conf")
    client.runner = slurm
    view = ClusterView(client, fast_interval=0.05, slow_interval=0.05, use_sacct=False)
    auth = FakeHubAuth(api_token="service-token", api_url="http://127.0.0.1:9/hub/api", oauth_client_id="service-sandfill")
    sock, port = bind_unused_port()
    server = HTTPServer(make_app(view, auth))
    server.add_sockets([sock])
    try:
        yield Service(f"http://127.0.0.1:{port}/services/sandfill/", view, slurm)
    finally:
        server.stop()
        view.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["api/jobs?ids=1", "api/schedule", "metrics"])
@pytest.mark.parametrize("token", [None, "not-a-hub-token"])
async def test_no_identity_is_401_and_asks_slurm_nothing(service: Service, path: str, token: str | None) -> None:
    status, body = await service.get(path, token)
    assert status == 401, body
    assert "ada" not in body and "RUNNING" not in body
    assert service.view.poller.watched == [] and service.slurm.calls == []


@pytest.mark.asyncio
async def test_a_user_sees_their_own_job(service: Service) -> None:
    status, body = await service.get("api/jobs?ids=1", "ada-token")
    assert status == 200, body
    job = json.loads(body)["jobs"]["1"]
    assert (job["state"], job["user"], job["nodes"], job["partition"]) == ("RUNNING", "ada", "node1", "batch")


@pytest.mark.asyncio
@pytest.mark.parametrize("ids", ["1", "2,1"])
async def test_another_users_job_is_403_and_nothing_leaks_or_stays(service: Service, ids: str) -> None:
    status, body = await service.get(f"api/jobs?ids={ids}", "bob-token")
    assert status == 403, body
    assert json.loads(body) == {"error": "job 1 is not yours"}
    for fact in ("ada", "node1", "RUNNING", "batch", "2026", "PENDING", "interactive"):
        assert fact not in body
    assert service.view.poller.watched == []  # the refused request left no watch behind
    # and ada's own view of her job is unchanged
    status, body = await service.get("api/jobs?ids=1", "ada-token")
    assert status == 200 and json.loads(body)["jobs"]["1"]["state"] == "RUNNING"


@pytest.mark.asyncio
async def test_without_the_access_scope_is_403(service: Service) -> None:
    for path in ("api/jobs?ids=1", "api/schedule"):
        status, body = await service.get(path, "cy-token")
        assert status == 403 and ACCESS_SCOPE in body, body
    assert service.view.poller.watched == [] and service.slurm.calls == []


@pytest.mark.asyncio
async def test_an_admin_sees_every_job(service: Service) -> None:
    status, body = await service.get("api/jobs?ids=1,2", "boss-token")
    assert status == 200, body
    jobs = json.loads(body)["jobs"]
    assert {j: (s["state"], s["user"]) for j, s in jobs.items()} == {"1": ("RUNNING", "ada"), "2": ("PENDING", "bob")}


@pytest.mark.asyncio
@pytest.mark.parametrize("ids", ["1;rm", "1,,x", "", ",".join(str(i) for i in range(1, 1100))])
async def test_bad_ids_are_400_naming_them_and_change_nothing(service: Service, ids: str) -> None:
    status, body = await service.get(f"api/jobs?ids={ids}", "ada-token")
    assert status == 400, body
    error = json.loads(body)["error"]
    assert ("1;rm" in error) if ids == "1;rm" else ("x" in error if "x" in ids else "job ids" in error)
    assert service.view.poller.watched == [] and service.slurm.calls == []


@pytest.mark.asyncio
async def test_the_schedule_is_anonymous(service: Service) -> None:
    await service.get("api/jobs?ids=1,2", "boss-token")  # the poller knows jobs and users
    status, body = await service.get("api/schedule", "bob-token")
    assert status == 200, body
    picture = json.loads(body)
    assert {n["node"]: n["idle"] for n in picture["nodes"]} == {"node1": 7, "node2": 8}
    assert set(picture["planned_starts"]) == {"node1", "node2"} and picture["errors"] == []
    assert [(r["nodes"], r["end"] - r["start"]) for r in picture["reservations"]] == [(["node1", "node2"], 3600)]
    for private in ("ada", "bob", '"1"', "RUNNING", "PENDING", "Priority", "carol", "physics", "secret-maint"):
        assert private not in body


@pytest.mark.asyncio
async def test_metrics_for_admins_and_read_metrics_tokens_only(service: Service) -> None:
    await service.get("api/jobs?ids=1,2", "boss-token")
    for token in ("boss-token", "prom-token"):
        status, text = await service.get("metrics", token)
        assert status == 200, text
        for name in (
            'sandfill_slurm_rpcs_total{command="squeue"}',
            "sandfill_slurm_poll_seconds_count",
            "sandfill_slurm_cache_age_seconds",
            'sandfill_slurm_pending_jobs{tier="interactive"} 1.0',
            'sandfill_slurm_queue_wait_seconds_bucket{le="86400.0",tier="batch"} 1.0',
            'sandfill_slurm_queue_wait_seconds_sum{tier="batch"} 600.0',  # 08:44:22 → 08:54:22
        ):
            assert name in text, name
    for token in ("ada-token", "cy-token"):
        status, text = await service.get("metrics", token)
        assert status == 403 and "sandfill_slurm" not in text, text


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("garbage", "third"),
    [
        (b"3|RUNN\xff\xfeING|None|node2|2026-11-21T08:54:22|N/A|10:00|batch|normal|ada|N/A|node2", "UNKNOWN"),
        (b"3|RUNNING|None|node2|\xc3\x28|N/A|10:00|batch|normal|ada|N/A|node2", "RUNNING"),  # start: not a time
        (b"3|RUNNING|x\xff|y", "UNKNOWN"),  # a cut row
        (b"3|\xff" * 5000, "UNKNOWN"),
    ],
    ids=["state", "time", "cut", "long"],
)
async def test_unreadable_output_makes_that_job_unknown_and_serves_the_rest(service: Service, garbage: bytes, third: str) -> None:
    service.slurm.garbage = garbage
    status, body = await service.get("api/jobs?ids=1,3", "ada-token")
    assert status == 200, body
    jobs = json.loads(body)["jobs"]
    assert (jobs["1"]["state"], jobs["3"]["state"]) == ("RUNNING", third)
    if third == "RUNNING":
        assert jobs["3"]["start_time"] is None and jobs["3"]["nodes"] == "node2"
    thread = service.view.poller._thread
    assert thread is not None and thread.is_alive()
    service.slurm.garbage = None  # the user renames the job back: the next rounds read it
    await service.view.poller.refresh()
    await service.view.poller.refresh()
    status, body = await service.get("api/jobs?ids=1,3", "ada-token")
    jobs = json.loads(body)["jobs"]
    assert (jobs["1"]["state"], jobs["3"]["state"]) == ("RUNNING", "RUNNING")
    assert thread.is_alive() and threading.active_count() > 1


@pytest.mark.asyncio
async def test_a_job_nobody_asks_about_is_no_longer_watched(service: Service) -> None:
    t = [0.0]
    service.view.clock = lambda: t[0]
    await service.get("api/jobs?ids=1", "ada-token")
    assert service.view.expire() == [] and service.view.poller.watched == ["1"]
    t[0] = service.view.lease
    assert service.view.expire() == ["1"] and service.view.poller.watched == []


def test_the_hub_config_adds_the_service_and_its_roles() -> None:
    from traitlets.config import Config

    c = Config()
    c.JupyterHub.services = [{"name": "idle-culler", "command": ["x"]}]
    c.JupyterHub.load_roles = [{"name": "idle-culler", "scopes": ["list:users"], "services": ["idle-culler"]}]
    configure_services(c, SiteConfig(slurm_conf="/etc/site/slurm.conf"))
    names = [s["name"] for s in c.JupyterHub.services]
    assert names == ["idle-culler", "sandfill"]
    svc = c.JupyterHub.services[1]
    assert svc["command"][1:] == ["-m", "sandfill.hub.service"] and svc["environment"] == {"SLURM_CONF": "/etc/site/slurm.conf"}
    assert svc["url"].startswith("http://127.0.0.1:") and "read:metrics" in svc["oauth_client_allowed_scopes"]
    roles = {r["name"]: r["scopes"] for r in c.JupyterHub.load_roles}
    assert ACCESS_SCOPE in roles["user"] and "self" in roles["user"]
    assert ACCESS_SCOPE in roles["server"] and "access:servers!server" in roles["server"]
    assert roles["idle-culler"] == ["list:users"]


@pytest.mark.asyncio
async def test_a_browser_without_a_session_is_sent_to_the_hubs_oauth_login(service: Service) -> None:
    r = await AsyncHTTPClient().fetch(service.url + "metrics", headers={"Accept": "text/html"}, raise_error=False,
                                      follow_redirects=False)
    assert r.code == 302, r.body
    location = r.headers["Location"]
    assert "/hub/api/oauth2/authorize" in location and "client_id=service-sandfill" in location and "state=" in location
    assert b"sandfill_slurm" not in r.body and service.slurm.calls == []


def test_server_jobs_get_the_services_url_and_no_token_but_their_own() -> None:
    from traitlets.config import Config

    from sandfill.hub.service.config import client_url
    from sandfill.slurm.remote import URL_ENV

    from .test_spawner import spawner

    c = Config()
    configure_services(c, SiteConfig(service_ip="0.0.0.0", service_port=8090, service_connect_ip="login1"))
    svc = c.JupyterHub.services[0]
    assert svc["url"] == "http://0.0.0.0:8090" and "api_token" not in svc  # the hub makes its token
    sp = spawner(config=c)
    env = sp._sbatch_env()
    assert env[URL_ENV] == "http://login1:8090/services/sandfill/"
    assert env["JUPYTERHUB_API_TOKEN"] == "server-token"  # the server's own, whose role may access the service
    # a site's own environment for the jobs is kept; on one host the URL is loopback
    c = Config()
    c.BackfillSlurmSpawner.environment = {"SITE_VAR": "1"}
    configure_services(c, SiteConfig())
    env = spawner(config=c)._sbatch_env()
    port = int(c.JupyterHub.services[0]["url"].rsplit(":", 1)[1])
    assert env["SITE_VAR"] == "1" and env[URL_ENV] == client_url(SiteConfig(), port) == f"http://127.0.0.1:{port}/services/sandfill/"
    assert client_url(SiteConfig(service_ip="::1"), 9) == "http://[::1]:9/services/sandfill/"


@pytest.mark.asyncio
async def test_a_clients_gap_planner_reads_the_schedule_from_the_service_not_from_slurm(service: Service) -> None:
    from sandfill.slurm.remote import RemotePoller
    from sandfill.slurm.view import ServiceSchedule

    class NoSlurm(SlurmClient):
        async def nodes(self, partition: str | None = None) -> Any:
            raise AssertionError("the client asked Slurm")

        planned_starts = reservations = nodes  # type: ignore[assignment]

    remote = RemotePoller(service.url, "bob-token", SlurmClient("/nonexistent/slurm.conf"))
    try:
        sched = ServiceSchedule(remote, NoSlurm("/nonexistent/slurm.conf"))
        nodes, planned, res = await asyncio.gather(sched.nodes("batch"), sched.planned_starts(), sched.reservations())
        assert [(n["node"], n["idle"], n["free_memory"]) for n in nodes] == [("node1", 7, 9000), ("node2", 8, 16000)]
        assert set(planned) == {"node1", "node2"} and [r.nodes for r in res] == [("node1", "node2")]
        assert sorted(service.slurm.calls) == ["scontrol", "sinfo", "squeue"] and sched.fallbacks == 0  # one of each, by the service
    finally:
        remote.close()
