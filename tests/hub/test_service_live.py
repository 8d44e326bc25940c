"""The sandfill service under a real hub (the shipped jupyterhub_config.py), on the devcluster:
the hub starts it, its metrics are for admins and ``read:metrics`` tokens, users see their own
jobs only, and when it is killed its clients read UNKNOWN (never gone), fall back to their
own squeue, and the hub starts it again."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fixtures_hub import USERS, BrowserSession, _NoRedirect
from jupyterhub.utils import subdomain_hook_idna

from sandfill.dev.devcluster import DevCluster
from sandfill.dev.hubprocess import HubProcess, user_token
from sandfill.dev.testing import TestSlurm, sleep_script
from sandfill.slurm import GONE, UNKNOWN, SlurmClient
from sandfill.slurm.commands import wait_until
from sandfill.slurm.remote import URL_ENV, RemotePoller
from sandfill.slurm.sdiag import parse_sdiag_users

pytestmark = pytest.mark.slurm

ADMIN, ADA, BOB = "sftest-dee", "sftest-ada", "sftest-bob"
METRIC_NAMES = ("sandfill_slurm_rpcs_total", "sandfill_slurm_poll_seconds", "sandfill_slurm_cache_age_seconds",
                "sandfill_slurm_pending_jobs", "sandfill_slurm_queue_wait_seconds")


@dataclass
class ServiceHub:
    proc: HubProcess
    tokens: dict[str, str]
    slurm_conf: str
    passwords: dict[str, str]

    @property
    def host(self) -> str:
        """The service's public origin's host (``sandfill--service.localhost:PORT`` when users
        get subdomains, the hub's otherwise); Python connects to the proxy and sends it."""
        origin = urllib.parse.urlsplit(self.proc.url)
        if not self.proc.site.get("subdomain_host"):
            return origin.netloc
        host = subdomain_hook_idna("sandfill", origin.hostname or "localhost", "service")
        return f"{host}:{origin.port}" if origin.port else host

    @property
    def direct_url(self) -> str:
        """Where the service itself listens (what a client on the hub's host may use)."""
        status, model = self.proc.api("GET", "/services/sandfill", self.tokens[ADMIN])
        assert status == 200 and model["url"], model
        return str(model["url"]).rstrip("/") + "/services/sandfill/"

    def get(self, path: str, user: str) -> tuple[int, str]:
        conn = http.client.HTTPConnection(*self.proc.address, timeout=30)
        try:
            conn.request("GET", "/services/sandfill/" + path,
                         headers={"Authorization": f"token {self.tokens[user]}", "Host": self.host})
            r = conn.getresponse()
            return r.status, r.read().decode(errors="replace")
        finally:
            conn.close()

    def service_pid(self) -> int | None:
        """The PID of this hub's sandfill service (its environment names this hub's API)."""
        api = f"JUPYTERHUB_API_URL=http://127.0.0.1:{self.proc.site['hub_port']}/hub/api".encode()
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                if b"sandfill.hub.service" in (d / "cmdline").read_bytes() and api in (d / "environ").read_bytes().split(b"\0"):
                    return int(d.name)
            except OSError:
                continue
        return None


@pytest.fixture(scope="module")
def service_hub(devcluster: DevCluster, hub_accounts: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceHub]:
    site = {
        "allowed_users": list(USERS),
        "admin_users": [ADMIN],
        "slurm_conf": str(devcluster.slurm_conf),
        "partitions": ["interactive", "burst", "batch"],
        "default_partition": "interactive",
        "server_ip": "127.0.0.1",
        "exec_host": "127.0.0.1",
    }
    proc = HubProcess(tmp_path_factory.mktemp("service-hub"), site)  # the shipped jupyterhub_config.py
    proc.start()
    try:
        tokens = {u: user_token(proc, u) for u in (ADMIN, ADA, BOB)}
        hub = ServiceHub(proc, tokens, str(devcluster.slurm_conf), hub_accounts)
        wait_until("the hub to start the sandfill service", lambda: hub.get("metrics", ADMIN)[0] == 200, timeout=60,
                   interval=0.25, describe=proc.log_tail)
        yield hub
    finally:
        proc.stop()


def test_the_hub_serves_metrics_to_admins_only(service_hub: ServiceHub) -> None:
    status, text = service_hub.get("metrics", ADMIN)
    assert status == 200
    for name in METRIC_NAMES:
        assert f"# TYPE {name}" in text, name
    status, text = service_hub.get("metrics", ADA)
    assert status == 403 and "sandfill_slurm" not in text


@pytest.mark.parametrize(("user", "expected"), [(ADMIN, 200), (ADA, 403)])
def test_an_admins_browser_session_reads_the_metrics(service_hub: ServiceHub, user: str, expected: int) -> None:
    """Logged in at the hub (PAM form), the browser follows the service's OAuth round trip
    (no confirmation page) and comes back with the service's cookie."""
    session = BrowserSession(service_hub.proc.url, user, service_hub.passwords[user])
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(session.jar), _ToProxy(service_hub.proc.address), _NoRedirect()
    )
    url, status, body, hops = f"http://{service_hub.host}/services/sandfill/metrics", 0, "", []
    for _ in range(6):
        req = urllib.request.Request(url, headers={"Accept": "text/html"})
        try:
            with opener.open(req, timeout=30) as r:
                status, body = r.status, r.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read().decode(errors="replace")
            if status in (301, 302, 303) and exc.headers.get("Location"):
                url = urllib.parse.urljoin(url, exc.headers["Location"])
                hops.append(url.split("?")[0])
                continue
        break
    assert status == expected, (status, hops, body[:300])
    assert ("# TYPE sandfill_slurm_rpcs_total counter" in body) == (expected == 200)
    assert any("/hub/api/oauth2/authorize" in h for h in hops) and any(h.endswith("/oauth_callback") for h in hops)


class _ToProxy(urllib.request.HTTPHandler):
    """Every http request to the proxy's address, whatever its host (``*.localhost`` does
    not resolve for Python); urllib still sends the URL's host as ``Host``."""

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__()
        self.address = address

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(lambda _host, **kw: http.client.HTTPConnection(*self.address, **kw), req)  # type: ignore[arg-type]


def test_killed_service_clients_read_unknown_then_fall_back_and_the_hub_restarts_it(
    service_hub: ServiceHub, slurm: TestSlurm
) -> None:
    as_ada = TestSlurm(service_hub.slurm_conf, prefix=["sudo", "-E", "-u", ADA])
    job = as_ada.submit_sync(sleep_script(300), ["-p", "batch", "-c", "1", "-t", "5", "-o", "/dev/null", "--chdir=/tmp"])
    # own jobs only, through the proxy, with the hub's identity
    assert service_hub.get(f"api/jobs?ids={job}", ADA)[0] == 200
    status, body = service_hub.get(f"api/jobs?ids={job}", BOB)
    assert status == 403 and ADA not in body
    stay = _client(service_hub, fallback_after=10_000)  # never falls back: shows what the service says
    fall = _client(service_hub, fallback_after=1)
    try:
        for p in (stay, fall):
            p._watched[job] = 1  # rounds run by hand (no poller thread)
            assert p.poll_once([job])[job].user == ADA and not p.using_fallback
        pid = service_hub.service_pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        wait_until("the service to be gone", lambda: service_hub.service_pid() != pid, timeout=30)
        st = stay.poll_once([job])[job]
        assert st.state == UNKNOWN and st.state != GONE and st.user == ADA  # last facts kept
        st = fall.poll_once([job])[job]
        assert fall.using_fallback and fall.local_rounds == 1 and st.known and not st.ended  # its own squeue
        # JupyterHub 6.1 polls its managed services every 30 s (jitter 10 %) and starts them again
        new = wait_until("the hub to restart the service", lambda: (p := service_hub.service_pid()) not in (None, pid) and p,
                         timeout=75, interval=0.5, describe=service_hub.proc.log_tail)
        wait_until("the restarted service to answer", lambda: service_hub.get("metrics", ADMIN)[0] == 200, timeout=30)
        assert service_hub.service_pid() == new
        st = stay.poll_once([job])[job]
        assert st.known and not st.ended and stay.service_failures == 0
    finally:
        stay.close()
        fall.close()


def _client(hub: ServiceHub, **kw: float) -> RemotePoller:
    return RemotePoller(hub.direct_url, hub.tokens[ADA], SlurmClient(hub.slurm_conf), use_sacct=False, **kw)  # type: ignore[arg-type]


def _process_env(pid: int) -> dict[str, str]:
    raw = (Path("/proc") / str(pid) / "environ").read_bytes()
    return {k.decode(): v.decode(errors="replace") for k, _, v in (kv.partition(b"=") for kv in raw.split(b"\0")) if v}


def _server_pid(user: str) -> int | None:
    import pwd

    uid = pwd.getpwnam(user).pw_uid
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and d.stat().st_uid == uid and b"jupyterhub-singleuser" in (d / "cmdline").read_bytes():
                return int(d.name)
        except OSError:
            continue
    return None


def _lab_api(hub: ServiceHub, user: str, method: str, path: str, body: object = None) -> tuple[int, object]:
    """The user's server's sandfill REST API (``<base_url>sandfill/…``) through the proxy, with
    the user's hub token."""
    conn = http.client.HTTPConnection(*hub.proc.address, timeout=60)
    host = urllib.parse.urlsplit(hub.proc.user_url(user)).netloc
    try:
        conn.request(method, f"/user/{user}/{path}", body=None if body is None else json.dumps(body),
                     headers={"Authorization": f"token {hub.tokens[user]}", "Host": host, "Content-Type": "application/json"})
        r = conn.getresponse()
        text = r.read().decode(errors="replace")
        return r.status, json.loads(text) if text.startswith(("{", "[")) else text
    finally:
        conn.close()


def _asked_about(log: Path, job_ids: list[str]) -> int:
    """Requests the service logged for ``api/jobs`` naming every one of ``job_ids``."""
    lines = re.findall(r"GET /services/sandfill/api/jobs\?ids=([0-9,%C]+)", log.read_text(errors="replace"))
    return sum(1 for ids in lines if set(job_ids) <= set(ids.replace("%2C", ",").split(",")))


def _rpcs_by(slurm: TestSlurm, user: str) -> int:
    from sandfill.slurm import sdiag

    return parse_sdiag_users(slurm.runner.check(sdiag.rpcs_argv())).get(user, 0)


def test_a_servers_dask_cluster_reads_its_workers_states_through_the_service(service_hub: ServiceHub, slurm: TestSlurm) -> None:
    """A server the hub spawned gets the service's URL (and no token but its own); the Dask
    cluster it starts learns its worker jobs' states from the service, and the server's
    user sends slurmctld no RPC while the cluster lives."""
    hub = service_hub
    status, body = hub.proc.api("POST", f"/users/{ADA}/server", hub.tokens[ADA], {"profile": "small"})
    assert status in (201, 202), body
    cid = None
    try:
        wait_until("ada's server to be ready", lambda: (m := hub.proc.api("GET", f"/users/{ADA}", hub.tokens[ADA])[1])
                   and (s := m["servers"].get("")) and s["ready"] and s["pending"] is None, timeout=120, interval=0.5,
                   describe=hub.proc.log_tail)
        env = _process_env(wait_until("the server's process", lambda: _server_pid(ADA), timeout=30))
        assert env[URL_ENV] == hub.direct_url
        service_token = _process_env(hub.service_pid() or 0)["JUPYTERHUB_API_TOKEN"]
        assert env["JUPYTERHUB_API_TOKEN"] != service_token and service_token not in "\0".join(env.values())
        status, model = _lab_api(hub, ADA, "POST", "sandfill/clusters", {"template": "small", "workers": 2})
        assert status == 201, model
        cid = model["id"]  # type: ignore[index]

        def running() -> list[str] | None:
            jobs = _lab_api(hub, ADA, "GET", f"sandfill/clusters/{cid}/jobs")[1]
            ids = [j["job_id"] for j in jobs if j["state"] == "running"]  # type: ignore[union-attr]
            return ids if len(ids) == 2 else None

        job_ids = wait_until("two running worker jobs", running, timeout=150, interval=1)
        # the server's poller asked the service about them (the service logs every request)
        wait_until("the service to be asked about the workers", lambda: _asked_about(hub.proc.log_file, job_ids),
                   timeout=30, interval=0.5)
        before, asked = _rpcs_by(slurm, ADA), _asked_about(hub.proc.log_file, job_ids)
        wait_until("two more rounds through the service", lambda: _asked_about(hub.proc.log_file, job_ids) >= asked + 2,
                   timeout=60, interval=0.5)
        assert _rpcs_by(slurm, ADA) == before  # no squeue, sinfo or anything else from ada's processes
    finally:
        if cid:
            _lab_api(hub, ADA, "DELETE", f"sandfill/clusters/{cid}")
        hub.proc.api("DELETE", f"/users/{ADA}/server", hub.tokens[ADA])
        wait_until("ada's server to stop", lambda: not hub.proc.api("GET", f"/users/{ADA}", hub.tokens[ADA])[1]["servers"],
                   timeout=60, interval=0.5)


def _service_squeues(hub: ServiceHub) -> int:
    status, text = hub.get("metrics", ADMIN)
    assert status == 200, text
    m = re.search(r'^sandfill_slurm_rpcs_total\{command="squeue"\} ([0-9.e+]+)$', text, re.M)
    return int(float(m.group(1))) if m else 0


def test_a_hung_controller_the_clients_read_unknown_from_the_service_none_asks_slurm_and_all_recover(
    service_hub: ServiceHub, slurm: TestSlurm, devcluster: DevCluster
) -> None:
    """slurmctld stopped (SIGSTOP: every RPC blocks) under five of a user's clients: the
    service keeps answering (UNKNOWN, last facts kept, never gone), it alone asks the
    controller (its command timeout and backoff bound that to a few squeues), no client
    falls back to a squeue of its own (no herd), and all read the job again on SIGCONT."""
    as_ada = TestSlurm(service_hub.slurm_conf, prefix=["sudo", "-E", "-u", ADA])
    job = as_ada.submit_sync(sleep_script(300), ["-p", "batch", "-c", "1", "-t", "5", "-o", "/dev/null", "--chdir=/tmp"])
    clients = [_client(service_hub, fast_interval=0.5, slow_interval=1.0) for _ in range(5)]
    ctld = next(d for d in devcluster.daemons() if d.name == "slurmctld")
    try:
        for c in clients:
            c.watch(job)
        wait_until("every client to read the job running", lambda: all((s := c.status(job)) and s.running for c in clients),
                   timeout=60, interval=0.5)
        node = clients[0].status(job).nodes  # type: ignore[union-attr]
        os.kill(ctld.pid, signal.SIGSTOP)
        try:
            before, t0 = _service_squeues(service_hub), time.monotonic()
            wait_until("every client to read UNKNOWN", lambda: all((s := c.status(job)) and not s.known for c in clients),
                       timeout=45, interval=0.5)
            for c in clients:
                st = c.status(job)
                assert st is not None and st.state == UNKNOWN and st.nodes == node and not st.ended
                assert c.local_rounds == 0 and c.service_failures == 0  # the service answered; nobody asked Slurm
            hung_for = time.monotonic() - t0
            # one squeue at a time, each bounded by the command timeout (15 s), then backing off
            assert _service_squeues(service_hub) - before <= 2 + hung_for / 15, hung_for
        finally:
            os.kill(ctld.pid, signal.SIGCONT)
        wait_until("every client to read the job again", lambda: all((s := c.status(job)) and s.running for c in clients),
                   timeout=60, interval=0.5)
        assert all(c.local_rounds == 0 for c in clients)
    finally:
        for c in clients:
            c.close()
        slurm.cancel_sync([job])
