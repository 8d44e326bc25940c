"""A real sandfill hub (PAM, configurable-http-proxy, BackfillSlurmSpawner) on 127.0.0.1 with
free ports, against the session's devcluster, with test accounts made for the session."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import http.cookiejar
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sandfill.dev.accounts import create_accounts, is_ours, remove_accounts
from sandfill.dev.devcluster import DevCluster
from sandfill.dev.hubprocess import HubProcess, user_token
from sandfill.dev.testing import TestSlurm, launch_chromium, sleep_script
from sandfill.slurm import SlurmClient
from sandfill.slurm.commands import wait_until

USERS = ("sftest-ada", "sftest-bob", "sftest-cy", "sftest-dee")
PROFILES = [
    {"name": "small", "description": "1 CPU, 1 GB, 2 h, interactive tier", "cpus": 1, "memory": "1G", "walltime": "02:00:00", "partition": "interactive"},
    {"name": "medium", "description": "4 CPUs, 4 GB, 4 h, interactive tier", "cpus": 4, "memory": "4G", "walltime": "04:00:00", "partition": "interactive"},
    {"name": "large", "description": "8 CPUs, 8 GB, 1 h, burst tier", "cpus": 8, "memory": "8G", "walltime": "01:00:00", "partition": "burst"},
]


@pytest.fixture(scope="session")
def hub_accounts(devcluster: DevCluster) -> Iterator[dict[str, str]]:
    logins = create_accounts(USERS)
    devcluster.add_users(USERS)
    yield logins
    client = TestSlurm(devcluster.slurm_conf)
    if devcluster.is_running():
        for user in USERS:
            client.cancel_user_sync(user)
        wait_until("the test users' jobs to end", lambda: not client.user_job_ids_sync(USERS, check=False), timeout=60)
    wait_until(
        "the test accounts to be removed",
        lambda: (remove_accounts(USERS), not any(is_ours(u) for u in USERS))[1],
        timeout=30,
        interval=1,
    )


class Hub:
    """The hub process plus helpers that speak its REST API as the test users."""

    def __init__(self, proc: HubProcess, tokens: dict[str, str], passwords: dict[str, str], client: SlurmClient) -> None:
        self.proc = proc
        self.tokens = tokens
        self.passwords = passwords
        self.client = client

    @property
    def url(self) -> str:
        """The hub's public URL (``http://localhost:PORT``; users' servers are on subdomains)."""
        return self.proc.url

    def user_url(self, user: str, path: str = "") -> str:
        """A URL on ``user``'s server, on the user's own origin (``http://<user>.localhost:PORT``)."""
        return self.proc.user_url(user) + path.lstrip("/")

    def connect(self, path: str, timeout: float = 30) -> tuple[http.client.HTTPConnection, str]:
        """A connection to the proxy and the ``Host`` that ``path`` is served on: the user's
        subdomain for ``/user/<name>/…``, else the hub's (Python cannot resolve
        ``<user>.localhost``, so it always connects to the proxy's address)."""
        parts = path.split("/")
        url = self.proc.user_url(urllib.parse.unquote(parts[2])) if len(parts) > 3 and parts[1] == "user" else self.url
        return http.client.HTTPConnection(*self.proc.address, timeout=timeout), urllib.parse.urlsplit(url).netloc

    def api(self, method: str, path: str, user: str, body: Any = None) -> tuple[int, Any]:
        return self.proc.api(method, path, self.tokens[user], body)

    def server(self, user: str) -> dict[str, Any] | None:
        status, model = self.api("GET", f"/users/{user}", user)
        assert status == 200, model
        return model["servers"].get("")  # type: ignore[no-any-return]

    def job(self, user: str, as_user: str | None = None) -> tuple[int, Any]:
        return self.api("GET", f"/sandfill/users/{user}/server/job", as_user or user)

    def reach(self, user: str, as_user: str | None = None) -> int:
        """HTTP status of the user's server API through the proxy."""
        return self.get(f"/user/{user}/api/status", as_user or user)[0]

    def get(self, path: str, as_user: str) -> tuple[int, str]:
        """GET ``path`` on the origin that serves it, with ``as_user``'s API token."""
        conn, host = self.connect(path)
        try:
            conn.request("GET", path, headers={"Authorization": f"token {self.tokens[as_user]}", "Host": host})
            r = conn.getresponse()
            return r.status, r.read().decode(errors="replace")
        finally:
            conn.close()

    def browser_session(self, user: str) -> BrowserSession:
        """Logged in through the login form (PAM), with cookies: what a browser does."""
        return BrowserSession(self.url, user, self.passwords[user])

    def spawn(self, user: str, options: dict[str, Any] | None = None, *, wait: bool = True, timeout: float = 90) -> dict[str, Any]:
        status, body = self.api("POST", f"/users/{user}/server", user, options or {"profile": "small"})
        assert status in (201, 202), (status, body)
        if wait:
            self.wait_ready(user, timeout)
        return self.job(user)[1]  # type: ignore[no-any-return]

    def wait_ready(self, user: str, timeout: float = 90) -> dict[str, Any]:
        return wait_until(
            f"{user}'s server to be ready",
            lambda: (s := self.server(user)) is not None and s["ready"] and s["pending"] is None and s,
            timeout=timeout,
            interval=0.5,
        )

    def stop(self, user: str, timeout: float = 60) -> None:
        if self.server(user) is None:
            return
        status, body = self.api("DELETE", f"/users/{user}/server", user)
        assert status in (202, 204), (status, body)
        wait_until(f"{user}'s server to stop", lambda: self.server(user) is None, timeout=timeout, interval=0.5)

    def progress(self, user: str, until: Callable[[dict[str, Any]], bool], timeout: float) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Read the server's progress event stream until an event satisfies ``until``."""
        path = f"/hub/api/users/{user}/server/progress"
        conn, host = self.connect(path, timeout)
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        try:
            conn.request("GET", path, headers={"Authorization": f"token {self.tokens[user]}", "Host": host})
            r = conn.getresponse()
            assert r.status == 200, r.read()
            while time.monotonic() < deadline:
                line = r.fp.readline().decode()
                if not line:
                    break
                if line.startswith("data:"):
                    event = json.loads(line[5:])
                    seen.append(event)
                    if until(event):
                        return event, seen
        finally:
            conn.close()
        raise AssertionError(f"no matching progress event within {timeout:.0f} s; seen: {seen}")


class BrowserSession:
    """Cookie-authenticated requests to the hub's pages (page handlers take no API token)."""

    def __init__(self, url: str, user: str, password: str) -> None:
        self.url = url
        self.jar = http.cookiejar.CookieJar(policy=_BrowserCookiePolicy())
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect())
        self.get("/hub/login")
        status, _ = self.post("/hub/login", {"username": user, "password": password})
        assert status == 302, f"login as {user} failed ({status})"

    def _xsrf(self) -> str:
        return next((c.value for c in self.jar if c.name == "_xsrf"), "")

    def _open(self, req: urllib.request.Request) -> tuple[int, str]:
        try:
            with self.opener.open(req, timeout=30) as r:
                return r.status, r.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")

    def get(self, path: str) -> tuple[int, str]:
        return self._open(urllib.request.Request(self.url + path))

    def post(self, path: str, form: dict[str, str]) -> tuple[int, str]:
        data = urllib.parse.urlencode({**form, "_xsrf": self._xsrf()}).encode()
        return self._open(urllib.request.Request(self.url + path, data=data, method="POST"))

    def post_json(self, path: str, body: Any, *, xsrf: bool = True) -> tuple[int, str]:
        """POST a JSON body with the session's cookies only (and its XSRF token, as the
        hub's own pages send it), no API token."""
        headers = {"Content-Type": "application/json", **({"X-XSRFToken": self._xsrf()} if xsrf else {})}
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), method="POST", headers=headers)
        return self._open(req)


class _BrowserCookiePolicy(http.cookiejar.DefaultCookiePolicy):
    """Cookies as a browser keeps them for ``localhost``. Python's jar files a dotless host
    under "<host>.local", so it never sends the hub's domain cookies (``.localhost``, set
    for the users' subdomains) back to ``localhost`` itself, and the hub then sees a login
    without its session id (its XSRF token no longer matches)."""

    def domain_return_ok(self, domain: str, request: Any) -> bool:
        return domain == ".localhost" or super().domain_return_ok(domain, request)

    def return_ok_domain(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return cookie.domain == ".localhost" or super().return_ok_domain(cookie, request)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


#: fake secrets in the hub's environment: none may reach anything run as a user
HUB_SECRETS = {
    "CONFIGPROXY_AUTH_TOKEN": secrets.token_hex(32),
    "JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32),
    "JPY_COOKIE_SECRET": secrets.token_hex(32),
    "SANDFILL_TEST_HUB_SECRET": secrets.token_hex(16),
}

_SBATCH_RECORDER = """#!/bin/sh
# test wrapper (run as the user by sudo): records sbatch's environment, then runs sbatch;
# while {faults}/sbatch-hang-USER exists it queues the job but never answers in time
# (its arguments are the command: "sbatch" and sbatch's options)
d={faults}
u=$(id -un)
shift
cat /proc/$$/environ > "$d/env/$u.$$" 2>/dev/null || true
if [ -e "$d/sbatch-hang-$u" ]; then
  sbatch "$@" >/dev/null
  i=0
  while [ -e "$d/sbatch-hang-$u" ] && [ $i -lt 240 ]; do sleep 0.5; i=$((i+1)); done
  exit 1
fi
exec sbatch "$@"
"""

_SCANCEL = """#!/bin/sh
# test wrapper (the hub's scancel): fails while {faults}/scancel-fail exists
if [ -e {faults}/scancel-fail ]; then echo "scancel: error: injected fault (sandfill test)" >&2; exit 1; fi
exec {real} "$@"
"""

_CONFIG = """from sandfill.hub.config import apply_site
from sandfill.hub.site import load_site

c = get_config()  # noqa: F821
apply_site(c, load_site())
# the tests' fault hooks: sbatch through a recorder, short timeouts and retries
c.BackfillSlurmSpawner.submit_prefix = ["sudo", "-E", "-u", "{{username}}", {recorder!r}]
c.BackfillSlurmSpawner.submit_timeout = 8
c.BackfillSlurmSpawner.cancel_retry_interval = 1
"""


class Faults:
    """Fault switches and records shared by the hub fixture and the tests (a directory the
    test users can reach: /tmp, not pytest's private temporary tree)."""

    secrets = HUB_SECRETS

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="sandfill-hubfaults-"))
        self.dir.chmod(0o755)
        (self.dir / "bin").mkdir(mode=0o755)
        (self.dir / "env").mkdir()
        (self.dir / "env").chmod(0o1777)
        real = shutil.which("scancel") or "/usr/bin/scancel"
        self.recorder = self._script("sbatch-recorder", _SBATCH_RECORDER.format(faults=self.dir))
        self._script("scancel", _SCANCEL.format(faults=self.dir, real=real))

    def _script(self, name: str, text: str) -> Path:
        path = self.dir / "bin" / name
        path.write_text(text)
        path.chmod(0o755)
        return path

    def config(self, state: Path) -> Path:
        path = state / "jupyterhub_config.py"
        path.write_text(_CONFIG.format(recorder=str(self.recorder)))
        return path

    def switch(self, name: str, on: bool) -> None:
        flag = self.dir / name
        if on:
            flag.touch()
        else:
            flag.unlink(missing_ok=True)

    def sbatch_envs(self, user: str) -> list[dict[str, str]]:
        """The environments of the user's sbatch runs, oldest first."""
        files = sorted((self.dir / "env").glob(f"{user}.*"), key=lambda p: p.stat().st_mtime)
        return [dict(kv.split("=", 1) for kv in f.read_text(errors="replace").split("\0") if "=" in kv) for f in files]

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def hub_faults() -> Iterator[Faults]:
    f = Faults()
    yield f
    f.remove()


@pytest.fixture(scope="session")
def hub(devcluster: DevCluster, hub_accounts: dict[str, str], hub_faults: Faults, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    state = tmp_path_factory.mktemp("hub")
    site = {
        "allowed_users": list(USERS),
        "slurm_conf": str(devcluster.slurm_conf),
        "partitions": ["interactive", "burst", "batch"],
        "default_partition": "interactive",
        "node_addresses": "slurm",  # as a site whose node names do not resolve (node1…)
        "max_cpus": 8,
        "max_memory": "8G",
        "max_walltime": "08:00:00",
        "poll_interval": "2s",  # cheap: poll() reads the shared poller's cache (a bare number is minutes)
        "walltime_warning": "00:10:00",
        "start_timeout": "5m",
        "profiles": PROFILES,
    }
    path = os.pathsep.join([str(hub_faults.dir / "bin"), str(Path(sys.executable).parent), os.environ.get("PATH", "/usr/bin:/bin")])
    proc = HubProcess(state, site, config_file=hub_faults.config(state), env={"PATH": path, **HUB_SECRETS})
    proc.start()
    try:
        tokens = {u: user_token(proc, u) for u in USERS}
        yield Hub(proc, tokens, hub_accounts, SlurmClient(devcluster.slurm_conf))
    finally:
        proc.stop()


@pytest.fixture
def clean_servers(hub: Hub, hub_faults: Faults) -> Iterator[Hub]:
    """The hub, with every test user's server stopped (and every fault off) after the test."""
    yield hub
    for flag in hub_faults.dir.glob("*-*"):
        if flag.is_file():
            flag.unlink()
    if hub.proc.proc is None or hub.proc.proc.poll() is not None:
        hub.proc.start()
    for user in USERS:
        hub.stop(user)


@pytest.fixture
def rocks(slurm: SlurmClient, devcluster: DevCluster) -> Iterator[Callable[[], list[str]]]:
    """Fill the devcluster with long 'rock' jobs (batch partition, 10 min limit); returns a
    function that submits them and waits until they all run. The slurm fixture cancels them."""

    def fill() -> list[str]:
        info = devcluster.info()
        assert info is not None
        ids = [
            slurm.submit_sync(sleep_script(600), ["-p", "batch", "-c", str(info.cpus), "-t", "10", "-J", "rock", "-o", "/dev/null"])
            for _ in range(info.nodes)
        ]
        wait_until("the rocks to fill the cluster", lambda: all(s.running for s in slurm.squeue_sync(ids).values()), timeout=60)
        return ids

    yield fill


def server_token(user: str) -> str:
    """The API token of ``user``'s running server, read (as root) from its process."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes()
            if b"jupyterhub-singleuser" not in cmd or proc.stat().st_uid != _uid(user):
                continue
            env = dict(kv.split(b"=", 1) for kv in (proc / "environ").read_bytes().split(b"\0") if b"=" in kv)
        except OSError:
            continue
        token = env.get(b"JUPYTERHUB_API_TOKEN")
        if token:
            return token.decode()
    raise AssertionError(f"no running server process for {user}")


def _uid(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_uid


@pytest.fixture
def server_token_of() -> Callable[[str], str]:
    return server_token


@pytest.fixture
def browser_login(hub: Hub) -> Callable[[Any, str], None]:
    """``browser_login(page, user)``: log in through the hub's login form (PAM) in a
    playwright page."""
    return lambda page, user: _browser_login(page, hub, user)


@pytest.fixture
def logged_in_page(hub: Hub) -> Callable[[str], Any]:
    """``with logged_in_page(user) as page:`` a headless chromium page, logged in as
    ``user`` through the hub's login form, closed afterwards."""

    @contextlib.contextmanager
    def open_page(user: str) -> Iterator[Any]:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = launch_chromium(p)
            try:
                page = browser.new_page()
                page.set_default_timeout(30_000)
                _browser_login(page, hub, user)
                yield page
            finally:
                browser.close()

    return open_page


def _browser_login(page: Any, hub: Hub, user: str) -> None:
    page.goto(hub.url + "/hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", hub.passwords[user])
    page.click("#login_submit")
    page.wait_for_function("() => !location.pathname.endsWith('/hub/login')")


# ---- the hub on the site-shaped devcluster (``up --hosts``) --------------------------------

#: the one account of the --hosts hub (an admin, so it may read the hub's proxy routes)
HOSTS_USER = "sftest-hx"


@pytest.fixture(scope="session")
def hosts_hub(devcluster_hosts: DevCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """A hub on the --hosts devcluster's head, configured only through a site file and the
    cluster's slurm.conf, as a site would: its API on the head's cluster address (the nodes
    call back there, and the sandfill service beside it), servers reached at their nodes' NodeAddr (``node_addresses: slurm``),
    each listening on its node's own address (no ``server_ip``, no ``exec_host``)."""
    info = devcluster_hosts.info()
    assert info is not None and info.shape == "hosts"
    logins = create_accounts([HOSTS_USER])
    devcluster_hosts.add_users([HOSTS_USER])
    site = {
        "hub_ip": info.head_addr,
        "hub_connect_ip": info.head_addr,
        "service_ip": info.head_addr,  # the sandfill service, which server jobs ask
        "admin_users": [HOSTS_USER],
        "allowed_users": [HOSTS_USER],
        "slurm_conf": str(devcluster_hosts.slurm_conf),
        "partitions": ["interactive", "burst", "batch"],
        "default_partition": "interactive",
        "node_addresses": "slurm",
        "max_memory": "8G",
        "poll_interval": "2s",
        "start_timeout": "5m",
        "profiles": PROFILES,
    }
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "/usr/bin:/bin")])
    proc = HubProcess(tmp_path_factory.mktemp("hosts-hub"), site, env={"PATH": path, **HUB_SECRETS})
    proc.start()
    client = TestSlurm(devcluster_hosts.slurm_conf)
    try:
        yield Hub(proc, {HOSTS_USER: user_token(proc, HOSTS_USER)}, logins, client)
    finally:
        proc.stop()
        client.cancel_user_sync(HOSTS_USER)
        wait_until("the --hosts user's jobs to end", lambda: not client.user_job_ids_sync([HOSTS_USER], check=False), timeout=60)
        wait_until("the --hosts account to be removed", lambda: (remove_accounts([HOSTS_USER]), not is_ours(HOSTS_USER))[1], timeout=30, interval=1)


def server_request(hub: Hub, user: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """``method`` on ``/user/<user>/<path>`` of the user's server, through the hub's proxy,
    with the user's API token; the JSON answer (or the text)."""
    conn, host = hub.connect(f"/user/{user}/{path}")
    try:
        data = None if body is None else json.dumps(body)
        conn.request(method, f"/user/{user}/{path}", body=data, headers={"Authorization": f"token {hub.tokens[user]}", "Host": host})
        r = conn.getresponse()
        text = r.read().decode(errors="replace")
        with contextlib.suppress(ValueError):
            return r.status, json.loads(text) if text else None
        return r.status, text
    finally:
        conn.close()


def run_in_kernel(hub: Hub, user: str, code: str, timeout: float = 300) -> str:
    """Run ``code`` in a new kernel of ``user``'s server, as a notebook cell (Jupyter's kernel
    websocket through the hub's proxy); its stdout. AssertionError with the traceback if the
    cell raised."""
    status, kernel = server_request(hub, user, "POST", "api/kernels", {"name": "python3"})
    assert status == 201, (status, kernel)
    try:
        return asyncio.run(_execute(hub, user, kernel["id"], code, timeout))
    finally:
        server_request(hub, user, "DELETE", f"api/kernels/{kernel['id']}")


async def _execute(hub: Hub, user: str, kernel_id: str, code: str, timeout: float) -> str:
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    ip, port = hub.proc.address
    host = urllib.parse.urlsplit(hub.proc.user_url(user)).netloc
    req = HTTPRequest(f"ws://{ip}:{port}/user/{user}/api/kernels/{kernel_id}/channels",
                      headers={"Authorization": f"token {hub.tokens[user]}", "Host": host}, request_timeout=timeout)
    ws = await websocket_connect(req)
    msg_id = secrets.token_hex(8)
    header = {"msg_id": msg_id, "username": user, "session": secrets.token_hex(8), "msg_type": "execute_request", "version": "5.3"}
    content = {"code": code, "silent": False, "store_history": False, "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}
    ws.write_message(json.dumps({"header": header, "parent_header": {}, "metadata": {}, "content": content, "channel": "shell", "buffers": []}))
    out: list[str] = []
    replied = idle = False
    deadline = time.monotonic() + timeout
    try:
        while not (replied and idle):
            raw = await asyncio.wait_for(ws.read_message(), max(1.0, deadline - time.monotonic()))
            assert raw is not None, f"the kernel's websocket closed; output so far: {''.join(out)}"
            msg = json.loads(raw)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, body = msg["header"]["msg_type"], msg["content"]
            if kind == "stream":
                out.append(body["text"])
            elif kind == "error":
                raise AssertionError("the cell raised:\n" + "\n".join(body["traceback"]) + "\noutput:\n" + "".join(out))
            replied = replied or kind == "execute_reply"
            idle = idle or (kind == "status" and body["execution_state"] == "idle")
    finally:
        ws.close()
    return "".join(out)
