"""The remote poller (sandfill.slurm.remote): the local poller's API and semantics, its
rounds answered by the sandfill service; UNKNOWN (never GONE) while the service does not
answer, backoff with jitter, then the local fallback, and back to the service."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from sandfill.slurm import GONE, UNKNOWN, JobStatus, QueuePoller, SlurmClient
from sandfill.slurm.commands import Result, Runner
from sandfill.slurm.remote import RemotePoller, poller_for, status_from_json, status_to_json
from sandfill.slurm.squeue import SQUEUE_FIELDS

RUNNING = JobStatus("7", "RUNNING", nodes="node1", start_time=1_800_000_000.0, end_time=1_800_000_600.0,
                    time_limit=600, partition="burst", user="ada", exec_host="node1")


class FakeService(ThreadingHTTPServer):
    """``/services/sandfill/api/jobs`` with :attr:`jobs`; :attr:`mode`: "ok", "500",
    "garbage" or "drop" (the connection closed without an answer)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.jobs: dict[str, JobStatus] = {"7": RUNNING}
        self.mode = "ok"
        self.requests: list[tuple[str, str]] = []  # (path, Authorization)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/services/sandfill/"


class _Handler(BaseHTTPRequestHandler):
    server: FakeService

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        s = self.server
        s.requests.append((self.path, self.headers.get("Authorization", "")))
        if s.mode == "drop":
            self.close_connection = True
            return
        if s.mode == "500":
            self.send_error(500)
            return
        ids = self.path.split("ids=", 1)[1].split("%2C")
        body = b"{not json" if s.mode == "garbage" else json.dumps(
            {"jobs": {j: status_to_json(s.jobs.get(j, JobStatus(j, GONE))) for j in ids}}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class LocalSqueue(Runner):
    """The fallback's squeue: job 7 PENDING (so its answers are told from the service's)."""

    def __init__(self) -> None:
        super().__init__("/nonexistent/slurm.conf")
        self.calls = 0

    def execute(self, argv: Sequence[str], input: str | None) -> Result:
        self.calls += 1
        row = {"%i": "7", "%T": "PENDING", "%r": "Priority", "%N": "", "%S": "N/A", "%e": "N/A", "%l": "10:00",
               "%P": "burst", "%q": "normal", "%u": "ada", "%V": "N/A", "%B": "n/a"}
        return Result(list(argv), 0, "|".join(row[f] for f in SQUEUE_FIELDS) + "\n", "")


@pytest.fixture
def service() -> Iterator[FakeService]:
    s = FakeService()
    t = threading.Thread(target=s.serve_forever, args=(0.05,), daemon=True)
    t.start()
    yield s
    s.shutdown()
    s.server_close()


def _remote(url: str, local: LocalSqueue | None = None, **kw: Any) -> RemotePoller:
    client = SlurmClient("/nonexistent/slurm.conf")
    client.runner = local or LocalSqueue()
    kw = {"fast_interval": 0.02, "slow_interval": 0.02, "use_sacct": False, "http_timeout": 2.0, **kw}
    return RemotePoller(url, "the-token", client, **kw)


@pytest.mark.asyncio
async def test_the_service_answers_a_round_with_the_token_and_no_squeue(service: FakeService) -> None:
    local = LocalSqueue()
    p = _remote(service.url, local)
    try:
        p.watch("7")
        snap = await p.refresh()
        assert snap["7"] == RUNNING.__class__(**{**status_to_json(RUNNING), "observed": snap["7"].observed})
        assert local.calls == 0
        path, auth = service.requests[-1]
        assert path == "/services/sandfill/api/jobs?ids=7" and auth == "token the-token"
    finally:
        p.close()


@pytest.mark.parametrize("mode", ["drop", "500", "garbage"])
def test_no_answer_is_unknown_with_the_last_facts_never_gone(service: FakeService, mode: str) -> None:
    local = LocalSqueue()
    p = _remote(service.url, local, fallback_after=1000)
    try:
        p._watched["7"] = 1  # rounds run by hand (no poller thread)
        p.poll_once(["7"])
        service.mode = mode
        p.poll_once(["7"])
        st = p.status("7")
        assert st is not None and st.state == UNKNOWN and st.state != GONE
        assert (st.nodes, st.user, st.end_time) == ("node1", "ada", RUNNING.end_time)  # last facts kept
        assert local.calls == 0 and p.service_failures == 1
    finally:
        p.close()


@pytest.mark.asyncio
async def test_gone_comes_only_from_the_service(service: FakeService) -> None:
    p = _remote(service.url)
    try:
        p.watch("8")
        snap = await p.refresh()
        assert snap["8"].state == GONE  # the service says the controller answered without it
    finally:
        p.close()


def test_backoff_grows_with_jitter_up_to_a_cap(service: FakeService) -> None:
    p = _remote(service.url, fast_interval=1.0, max_backoff=8.0, fallback_after=1000)
    try:
        for failures, cap in [(1, 2.0), (2, 4.0), (3, 8.0), (6, 8.0)]:
            p.service_failures = failures
            seen = {round(p._next_interval(), 6) for _ in range(50)}
            assert all(cap * 0.5 <= s <= cap for s in seen), (failures, seen)
            assert len(seen) > 1  # jittered: clients do not come back in step
    finally:
        p.close()


def test_the_service_answering_again_ends_the_backoff(service: FakeService) -> None:
    p = _remote(service.url, fast_interval=1.0, fallback_after=1000)
    try:
        p._watched["7"] = 1
        service.mode = "drop"
        p.poll_once(["7"])
        assert p._next_interval() >= 1.0  # backing off (2 s * jitter)
        service.mode = "ok"
        p.poll_once(["7"])
        assert p.service_failures == p.failed_rounds == 0 and p._next_interval() <= max(p.fast_interval, p.slow_interval) * 1.1
    finally:
        p.close()


def test_after_failures_the_local_poller_answers_then_the_service_again(service: FakeService) -> None:
    local = LocalSqueue()
    p = _remote(service.url, local, fallback_after=2, retry_every=3600.0)
    try:
        p._watched["7"] = 1  # rounds run by hand (no poller thread)
        service.mode = "drop"
        p.poll_once(["7"])
        assert p.status("7").state == UNKNOWN and local.calls == 0  # type: ignore[union-attr]
        p.poll_once(["7"])  # the second failure: this round asks Slurm itself
        assert p.using_fallback and local.calls == 1 and p.status("7").state == "PENDING"  # type: ignore[union-attr]
        asked = len(service.requests)
        p.poll_once(["7"])  # within retry_every: the service is not asked
        assert len(service.requests) == asked and local.calls == 2
        service.mode = "ok"
        p.retry_every = 0.0
        p.poll_once(["7"])
        assert not p.using_fallback and local.calls == 2 and p.status("7").state == "RUNNING"  # type: ignore[union-attr]
        assert p.failed_rounds == 0 and p._next_interval() <= max(p.fast_interval, p.slow_interval) * 1.1  # no backoff left over
    finally:
        p.close()


@pytest.mark.asyncio
async def test_wait_for_sees_a_change_the_service_reports(service: FakeService) -> None:
    service.jobs["7"] = JobStatus("7", "PENDING", partition="burst", user="ada")
    p = _remote(service.url)
    try:
        loop = asyncio.get_running_loop()
        loop.call_later(0.2, lambda: service.jobs.__setitem__("7", RUNNING))
        st = await p.wait_for("7", lambda s: s.running, timeout=10)
        assert st.state == "RUNNING" and st.nodes == "node1"
    finally:
        p.close()


def test_poller_for_picks_the_service_only_under_a_hub(service: FakeService) -> None:
    local = poller_for("/nonexistent/slurm.conf", env={})
    assert type(local) is QueuePoller and local is QueuePoller.shared("/nonexistent/slurm.conf")
    env = {"SANDFILL_SERVICE_URL": service.url, "JUPYTERHUB_API_TOKEN": "t0ken"}
    remote = poller_for("/nonexistent/slurm.conf", env=env)
    try:
        assert isinstance(remote, RemotePoller) and remote is poller_for(None, env=env)
    finally:
        remote.close()
        local.close()


@pytest.mark.parametrize(("url", "token"), [("ftp://hub/x", "t"), ("/services/sandfill", "t"), ("http://hub/", ""), ("http://hub/", "a b")])
def test_a_bad_url_or_token_is_refused_naming_it(url: str, token: str) -> None:
    with pytest.raises(ValueError) as exc:
        RemotePoller(url, token, SlurmClient("/nonexistent/slurm.conf"))
    assert (url in str(exc.value)) if token == "t" else ("token" in str(exc.value))


@pytest.mark.parametrize(
    "data",
    [None, [], {"job_id": "8", "state": "RUNNING"}, {"job_id": "7"}, {"job_id": "7", "state": "RUNNING", "time_limit": "1h"},
     {"job_id": "7", "state": "RUNNING", "start_time": True}, {"job_id": "7", "state": "RUNNING", "user": 3}],
)
def test_a_bad_status_from_the_service_is_a_clear_error(data: Any) -> None:
    with pytest.raises(ValueError, match="job 7"):
        status_from_json("7", data)
