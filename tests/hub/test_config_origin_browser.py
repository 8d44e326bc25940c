"""Per-user origins (``JupyterHub.subdomain_host``, set by :mod:`sandfill.hub.config`), in
Debian's chromium: a page that user A serves cannot read another user's server or the hub's
API with a visitor's cookies, nor change anything with them.

A controls everything their server job answers under their prefix ``/user/A/``: their job
runs their code, which may serve any HTML (a proxied web app, an extension in their own
``~/.jupyter``, a process of theirs on the server's port). The test stands for that with a
small web server run *as A*, put on the proxy where A's server is served. With subdomains
that is A's own origin, ``http://A.localhost:PORT``; without them it is ``/user/A/`` on the
hub's origin, which the control case sets up: there the same script, opened by the victim
B, reads B's hub identity (and could take B's XSRF token and act as B). With subdomains every
attempt is refused and afterwards nothing has changed: no server started, no token made,
no file written."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from sandfill.dev.devcluster.config import free_ports
from sandfill.dev.testing import launch_chromium
from sandfill.slurm.commands import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slurm]

ATTACKER, VICTIM = "sftest-ada", "sftest-dee"

#: the attacker's page: every read and write it can think of, as the visitor, results in
#: ``window.results`` (``?write=1`` adds the writes; the control case only reads)
EVIL = """<!doctype html><title>A's page</title><script>
const q = new URLSearchParams(location.search), hub = q.get('hub'), victimServer = q.get('server');
const victim = q.get('victim'), results = (window.results = {});
async function attempt(name, fn) {
  try { results[name] = await fn(); } catch (e) { results[name] = 'refused: ' + e.name; }
}
async function read(url, opts) {
  const r = await fetch(url, {credentials: 'include', ...(opts || {})});
  return {status: r.status, type: r.type, body: (await r.text()).slice(0, 20000)};
}
async function hubXsrf() {  // the hub's XSRF token, from a hub page (readable on the same origin only)
  const page = await (await fetch(hub + '/hub/home', {credentials: 'include'})).text();
  const m = page.match(/xsrf_token: "([^"]+)"/);
  if (!m) throw new Error('NotFoundError');
  return m[1];
}
(async () => {
  await attempt('hub_user', () => read(hub + '/hub/api/user'));
  await attempt('hub_users', () => read(hub + '/hub/api/users'));
  await attempt('victim_server_contents', () => read(victimServer + 'api/contents'));
  let xsrf = null;
  await attempt('hub_xsrf', async () => (xsrf = await hubXsrf()));
  const h = xsrf ? {'X-XSRFToken': xsrf} : {};
  await attempt('hub_user_with_xsrf', () => read(hub + '/hub/api/user', {headers: h}));
  if (q.get('write')) {
    const json = {...h, 'Content-Type': 'application/json'};
    const user = hub + '/hub/api/users/' + victim;
    await attempt('new_token', () => read(user + '/tokens', {method: 'POST', headers: json, body: '{}'}));
    await attempt('start_server', () => read(user + '/server', {method: 'POST', headers: json, body: '{}'}));
    // blind (no-cors) writes: the answer is opaque, the request is still sent
    for (const [name, url, method] of [['blind_token', user + '/tokens', 'POST'],
        ['blind_start', user + '/server', 'POST'], ['blind_stop', user + '/server', 'DELETE'],
        ['blind_file', victimServer + 'api/contents/pwned.txt', 'PUT']])
      await attempt(name, () => read(url, {method, mode: 'no-cors', body: '{"type": "file", "format": "text", "content": "x"}'}));
  }
  window.done = true;
})();
</script>"""


class Route:
    """A route on the hub's proxy (configurable-http-proxy's REST API, with the proxy's token
    from the hub's environment) to a web server of A's; removed afterwards."""

    def __init__(self, hub: Any, token: str) -> None:
        self.api = f"http://127.0.0.1:{hub.proc.site['proxy_api_port']}/api/routes"
        self.token = token
        self.specs: list[str] = []

    def call(self, method: str, spec: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.api + spec, data=data, method=method, headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
        return json.loads(raw) if raw else None

    def add(self, spec: str, target: str) -> None:
        self.call("POST", spec, {"target": target})
        self.specs.append(spec)

    def remove_all(self) -> None:
        for spec in self.specs:
            self.call("DELETE", spec)
        self.specs.clear()


@pytest.fixture
def attacker_site(clean_servers: Any, hub_faults: Any) -> Iterator[tuple[Route, str]]:
    """A's web server (``python3 -m http.server`` as A, on loopback) serving the page at
    ``/user/A/evil.html``, and a :class:`Route` for putting it on the proxy."""
    root = Path(tempfile.mkdtemp(prefix="sandfill-evil-", dir="/tmp"))
    page = root / "user" / ATTACKER / "evil.html"
    page.parent.mkdir(parents=True)
    page.write_text(EVIL)
    for p in (root, *root.rglob("*")):
        p.chmod(0o755 if p.is_dir() else 0o644)
    (port,) = free_ports(1)
    server = subprocess.Popen(
        ["sudo", "-u", ATTACKER, "/usr/bin/python3", "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(root)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    route = Route(clean_servers, hub_faults.secrets["CONFIGPROXY_AUTH_TOKEN"])
    try:
        wait_until("A's web server to answer", lambda: _answers(f"http://127.0.0.1:{port}/user/{ATTACKER}/evil.html"), timeout=20, interval=0.2)
        yield route, f"http://127.0.0.1:{port}"
    finally:
        route.remove_all()
        server.terminate()  # sudo passes it on to A's server
        server.wait(10)
        shutil.rmtree(root, ignore_errors=True)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def _visit(page: Any, url: str) -> dict[str, Any]:
    page.goto(url)
    page.wait_for_function("() => window.done === true", timeout=60_000)
    return page.evaluate("window.results")  # type: ignore[no-any-return]


def _world(hub: Any) -> dict[str, Any]:
    """What the attack could change, read with each user's own API token."""
    out: dict[str, Any] = {}
    for user in (ATTACKER, VICTIM):
        status, tokens = hub.api("GET", f"/users/{user}/tokens", user)
        assert status == 200, tokens
        server = hub.server(user)
        out[user] = {
            "tokens": sorted(t["id"] for t in tokens["api_tokens"]),
            "server": server and (server["url"], server["started"]),
        }
    out["pwned"] = hub.get(f"/user/{VICTIM}/api/contents/pwned.txt", VICTIM)[0]
    return out


def _refused(result: Any) -> bool:
    """A cross-origin read the page could not see into: an error, or an opaque answer."""
    return isinstance(result, str) and result.startswith("refused") or (isinstance(result, dict) and result["type"] == "opaque")


def test_a_users_page_cannot_read_or_act_as_its_visitor_on_another_origin(
    clean_servers: Any, attacker_site: tuple[Route, str], browser_login: Callable[[Any, str], None]
) -> None:
    hub = clean_servers
    route, target = attacker_site
    hub.spawn(VICTIM)
    attacker = urlsplit(hub.user_url(ATTACKER))
    attacker_origin = f"{attacker.scheme}://{attacker.netloc}"
    route.add(f"/{attacker.hostname}{attacker.path}", target)  # where A's server is served: A's origin
    query = f"?hub={hub.url}&server={hub.user_url(VICTIM)}&victim={VICTIM}&write=1"
    with _playwright() as p:
        browser = launch_chromium(p)
        try:
            for visitor in (VICTIM, ATTACKER):
                context = browser.new_context()
                page = context.new_page()
                page.set_default_timeout(30_000)
                browser_login(page, visitor)
                if visitor == VICTIM:  # B has used their server: B's browser holds its cookie
                    page.goto(hub.user_url(VICTIM, "api/status"))
                    assert '"started"' in page.content()
                # the hub's login cookie is host-only: never sent to a user's subdomain
                hub_cookies = {c["name"] for c in context.cookies(hub.url + "/hub/")}
                assert "jupyterhub-hub-login" in hub_cookies
                assert "jupyterhub-hub-login" not in {c["name"] for c in context.cookies(hub.user_url(ATTACKER))}
                before = _world(hub)
                results = _visit(page, hub.user_url(ATTACKER, "evil.html") + query)
                assert page.url.startswith(attacker_origin), page.url  # the page ran on A's own origin
                wrong = {k: v for k, v in results.items() if not _refused(v)}
                assert not wrong, f"as {visitor}, A's page got: {wrong}"
                assert len(results) == 11, results
                # nothing changed: no token made, no server started or stopped, no file written
                # (every request, blind ones too, was answered before the page set done)
                assert _world(hub) == before and before["pwned"] == 404
                assert hub.server(VICTIM) is not None and hub.reach(VICTIM) == 200
                context.close()
        finally:
            browser.close()


def test_control_the_same_page_on_the_hubs_origin_reads_the_visitors_identity(
    clean_servers: Any, attacker_site: tuple[Route, str], browser_login: Callable[[Any, str], None]
) -> None:
    """Without subdomains A's server is served at ``/user/A/`` on the hub's origin: the same
    page, opened by B, reads B's hub model with B's cookies and takes B's XSRF token (with it
    it could make tokens for B or start and stop B's servers). Reads only."""
    hub = clean_servers
    route, target = attacker_site
    route.add(f"/{urlsplit(hub.url).hostname}/user/{ATTACKER}/", target)  # one origin for all
    with _playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page()
            page.set_default_timeout(30_000)
            browser_login(page, VICTIM)
            results = _visit(page, f"{hub.url}/user/{ATTACKER}/evil.html?hub={hub.url}&server={hub.user_url(VICTIM)}&victim={VICTIM}")
        finally:
            browser.close()
    assert isinstance(results["hub_xsrf"], str) and not results["hub_xsrf"].startswith("refused"), results
    me = results["hub_user_with_xsrf"]
    assert me["status"] == 200 and json.loads(me["body"])["name"] == VICTIM, results


def _playwright() -> Any:
    from playwright.sync_api import sync_playwright

    return sync_playwright()
