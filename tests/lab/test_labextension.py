"""The lab extension in a real JupyterLab, spawned by the real hub as a Slurm job.

The walltime warning: a server whose walltime ends within the warning time gets a
JupyterLab notification with a "Save all" action.

The Backfill Dask panel: create a cluster, scale to 4, see 4 running worker jobs with time
left, open the dashboard, restart the kernel and find the cluster still there, shut it down
and see its jobs leave the queue. Saves a screenshot of the panel as panel.png in the test's temporary directory,
or in $SANDFILL_SCREENSHOT_DIR when that is set (`make screenshots` points it at docs/)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest

from sandfill.dev.testing import launch_chromium
from sandfill.slurm import SlurmClient
from sandfill.slurm.commands import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slurm]



def screenshot_dir(tmp_path: Path) -> Path:
    """Where screenshots go: the test's own temporary directory, unless
    ``SANDFILL_SCREENSHOT_DIR`` names another (``make screenshots``: the README's pictures)."""
    chosen = os.environ.get("SANDFILL_SCREENSHOT_DIR")
    return Path(chosen).resolve() if chosen else tmp_path


def test_walltime_warning_is_a_notification_with_save_all(browser_login: Callable[[Any, str], None], clean_servers: Any, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    hub = clean_servers
    user = "sftest-cy"
    # 5 minutes of walltime, the hub warns 10 minutes before the end: the warning is on at once
    job = hub.spawn(user, {"profile": "custom", "cpus": "1", "memory": "1G", "walltime": "00:05:00"})
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page()
        page.set_default_timeout(30_000)
        try:
            browser_login(page, user)
            page.goto(hub.user_url(user, "lab?reset"))
            toast = page.locator(".jp-Notification-Toast-warning", has_text="Save your work")
            toast.wait_for(timeout=90_000)
            text = toast.inner_text()
            assert f"This server's Slurm job {job['job_id']} reaches its walltime at " in text, text
            assert toast.get_by_role("button", name="Save all").count() == 1, text
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"))
            raise
        finally:
            browser.close()


def test_panel_create_scale_dashboard_restart_shutdown(browser_login: Callable[[Any, str], None], clean_servers: Any, slurm: SlurmClient, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    hub = clean_servers
    user = "sftest-bob"
    hub.spawn(user, {"profile": "medium"}, timeout=120)
    with sync_playwright() as p:
        browser = launch_chromium(p)
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.set_default_timeout(30_000)
        try:
            browser_login(page, user)
            page.goto(hub.user_url(user, "lab?reset"))
            page.wait_for_selector(".jp-Launcher", timeout=90_000)

            page.click('[data-id="sandfill-panel"]')
            page.wait_for_selector(".sandfill-panel .sandfill-template option[value='small']", state="attached")
            page.select_option(".sandfill-template", "small")
            page.fill(".sandfill-name", "panel-demo")
            page.click(".sandfill-create")
            cluster = page.locator(".sandfill-cluster[data-cluster-name='panel-demo']")
            cluster.wait_for(timeout=60_000)

            cluster.locator(".sandfill-scale-n").fill("4")
            cluster.locator(".sandfill-scale").click()
            running = cluster.locator(".sandfill-job[data-state='running']")
            page.wait_for_function(
                "() => document.querySelectorAll(\".sandfill-cluster[data-cluster-name='panel-demo'] .sandfill-job[data-state='running']\").length >= 4",
                timeout=120_000,
            )
            assert running.count() == 4
            lefts = [running.nth(i).locator(".sandfill-job-left").inner_text() for i in range(4)]
            assert all(":" in t for t in lefts), lefts  # time left shown as a clock
            job_ids = [running.nth(i).get_attribute("data-job-id") for i in range(4)]
            states = slurm.squeue_sync(job_ids)
            assert all(states[j].running and states[j].user == user for j in job_ids)
            page.wait_for_function(
                "() => (document.querySelector(\".sandfill-cluster[data-cluster-name='panel-demo'] .sandfill-summary\") || {}).textContent?.startsWith('4 workers')",
                timeout=60_000,
            )
            cluster.screenshot(path=str(screenshot_dir(tmp_path) / "panel.png"))

            # the dashboard, through jupyter-server-proxy
            href = cluster.locator(".sandfill-dashboard-link").get_attribute("href")
            assert href and "/proxy/" in href
            dash = context.new_page()
            resp = dash.goto(urljoin(page.url, href))  # on the user's own origin
            assert resp is not None and resp.status == 200
            dash.wait_for_load_state()
            assert "Dask" in dash.title() or "Dask" in dash.content(), dash.content()[:500]
            dash.close()

            # a notebook: insert the connect snippet, run it, restart the kernel
            page.locator('.jp-LauncherCard[data-category="Notebook"]').first.click()
            page.locator(".jp-Notebook .jp-Cell .cm-content").first.wait_for(timeout=120_000)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", state="attached", timeout=120_000)
            cluster.locator(".sandfill-insert-snippet").click()
            code = page.locator(".jp-Notebook .jp-Cell .cm-content")
            wait_until("the snippet in a cell", lambda: any("connect(" in code.nth(i).inner_text() for i in range(code.count())), timeout=30)
            # restart the kernel as the Kernel menu does, through the server's API with the
            # browser's session (what is ours is the cluster outliving it; the menu click raced
            # the notebook's start-up on a loaded machine). The server's own record of the
            # kernel says when it is back: the toolbar indicator can lag far behind.
            before = wait_until("the notebook's kernel to be listed", lambda: kernels(page), timeout=60)
            assert len(before) == 1, before
            kernel_id, started = before[0]["id"], before[0]["last_activity"]
            restart_kernel(page, kernel_id)
            wait_until(
                "the kernel to come back idle after its restart",
                lambda: any(k["id"] == kernel_id and k["execution_state"] == "idle" and k["last_activity"] > started for k in kernels(page)),
                timeout=180,
                describe=lambda: f"kernels={kernels(page)} indicator={page.get_attribute('.jp-Notebook-ExecutionIndicator', 'data-status')} dialogs={page.locator('.jp-Dialog').all_inner_texts()}",
            )
            page.reload()
            page.wait_for_selector('[data-id="sandfill-panel"]')
            page.locator(".sandfill-panel").wait_for(state="attached", timeout=60_000)
            if not page.locator(".sandfill-panel").is_visible():  # the restored layout may have it open
                page.click('[data-id="sandfill-panel"]')
            page.locator(".sandfill-cluster[data-cluster-name='panel-demo']").wait_for(timeout=60_000)
            assert page.locator(".sandfill-cluster[data-cluster-name='panel-demo'] .sandfill-job[data-state='running']").count() >= 4

            # shut down: confirm, the cluster goes, and its jobs leave the queue
            page.locator(".sandfill-cluster[data-cluster-name='panel-demo'] .sandfill-shutdown").click()
            page.click(".jp-Dialog .jp-mod-warn")
            page.locator(".sandfill-cluster[data-cluster-name='panel-demo']").wait_for(state="detached", timeout=60_000)
            wait_until(
                "the worker jobs to leave squeue",
                lambda: not [j for j, s in slurm.squeue_sync(job_ids).items() if not s.ended],
                timeout=60,
            )
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"))
            raise
        finally:
            browser.close()


def kernels(page: Any) -> list[dict[str, Any]]:
    """The single-user server's kernels, read from the lab page itself (the server's own
    origin, with the browser's login cookie)."""
    status, text = _fetch(page, "GET", "api/kernels")
    assert status == 200, (status, text[:300])
    return list(json.loads(text))


def restart_kernel(page: Any, kernel_id: str) -> None:
    """Restart a kernel from the lab page, with the browser's login cookie and XSRF token."""
    status, text = _fetch(page, "POST", f"api/kernels/{kernel_id}/restart")
    assert status == 200, (status, text[:300])


def _fetch(page: Any, method: str, path: str) -> tuple[int, str]:
    """``fetch`` in the page, relative to the server's base URL. In the page, not through
    playwright's request API: Node's resolver, like Python's, does not know
    ``<user>.localhost`` (Chromium does)."""
    return tuple(page.evaluate(
        """async ([method, path]) => {
            const base = document.querySelector('#jupyter-config-data')
                ? JSON.parse(document.querySelector('#jupyter-config-data').textContent).baseUrl : '/';
            const xsrf = (document.cookie.match(/(?:^|; )_xsrf=([^;]*)/) || [])[1] || '';
            const r = await fetch(base + path, {method, cache: 'no-store', headers: {'X-XSRFToken': decodeURIComponent(xsrf)}});
            return [r.status, await r.text()];
        }""",
        [method, path],
    ))  # type: ignore[return-value]
