"""A person's path, in Debian's chromium: log in, pick a profile, watch the pending page
while the devcluster is full, get JupyterLab when it frees up, run a cell, stop the server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sandfill.dev.testing import TestSlurm, launch_chromium
from sandfill.slurm.commands import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slurm]



def test_login_pending_page_lab_cell_and_stop(browser_login: Callable[[Any, str], None], clean_servers: Any, rocks: Callable[[], list[str]], slurm: TestSlurm) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    hub = clean_servers
    user = "sftest-ada"
    rock_ids = rocks()  # the devcluster is full
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page()
            page.set_default_timeout(30_000)
            browser_login(page, user)

            # the form: profiles and live availability; pick the interactive-tier profile
            def form_shows_the_full_cluster() -> bool:  # sinfo: nothing idle (the hub's view
                page.goto(hub.url + f"/hub/spawn/{user}")  # of it may be up to 5 s old)
                page.wait_for_selector("#sandfill-availability")
                return "0 of 32" in page.inner_text("#sandfill-availability")

            wait_until("the form to show the full cluster", form_shows_the_full_cluster, timeout=30, interval=2)
            # the form says how it reads the walltime and memory before anything is sent
            for text, words in [("2:00", "2:00 → 2 minutes"), ("2h", "2h → 2 hours"), ("02:00:00", "02:00:00 → 2 hours")]:
                page.fill("#sandfill-walltime", text)
                assert page.inner_text("#sandfill-walltime-hint") == words
            page.fill("#sandfill-walltime", "forever")
            assert "'forever' is not a duration (use MM, MM:SS" in page.inner_text("#sandfill-walltime-hint")
            page.fill("#sandfill-memory", "4G")
            assert page.inner_text("#sandfill-memory-hint") == "4G → 4 GiB"
            page.check("#profile-small")
            assert page.input_value("#sandfill-walltime") == "02:00:00"
            assert page.inner_text("#sandfill-walltime-hint") == "02:00:00 → 2 hours"
            page.click("button[type=submit]")

            # the pending page: job id, reason, position and estimated start, updated live
            page.wait_for_selector("#progress-message .sandfill-reason", timeout=60_000)
            # Slurm gives the reason and the estimate once the scheduler has looked at the job
            # (just after submission squeue can show a start estimate with reason None)
            page.wait_for_function(
                "() => { const s = document.querySelector('#progress-message .sandfill-start');"
                " const r = document.querySelector('#progress-message .sandfill-reason');"
                " return s && !s.textContent.includes('not yet')"
                " && r && ['Resources', 'Priority'].includes(r.textContent); }",
                timeout=60_000,
            )
            message = page.inner_text("#progress-message")
            reason = page.inner_text("#progress-message .sandfill-reason")
            assert reason in ("Resources", "Priority"), message
            assert "PENDING" in message and "Queue position: 1 of 1 pending in interactive" in message, message  # the status card (2c49e13)
            job_id = page.inner_text("#progress-message .sandfill-job-id")
            assert slurm.squeue_sync([job_id])[job_id].pending

            # resources free up: the spawn completes and the page moves on by itself
            slurm.cancel_sync(rock_ids, check=True)
            page.wait_for_url(f"**/user/{user}/**", timeout=90_000)

            assert page.url.startswith(hub.user_url(user)), page.url  # the server's own origin
            page.goto(hub.user_url(user, "lab?reset"))
            page.wait_for_selector(".jp-Launcher", timeout=90_000)
            # sandfill's walltime plugin is loaded and has asked the server about the job
            page.wait_for_function("() => window.sandfillWalltime && window.sandfillWalltime.job_id", timeout=60_000)
            assert page.evaluate("window.sandfillWalltime.job_id") == job_id

            page.locator('.jp-LauncherCard[data-category="Notebook"]').first.click()
            cell = page.locator(".jp-Notebook .jp-Cell .cm-content").first
            cell.wait_for(timeout=60_000)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
            cell.click()
            page.keyboard.type("print(6 * 7)")
            out = page.locator(".jp-OutputArea-output").first
            # the first execute can be lost while the new kernel connects: run the cell
            # again (in place) until it answers
            for _ in range(9):
                cell.click()
                page.keyboard.press("Control+Enter")
                try:
                    out.wait_for(timeout=10_000)
                    break
                except PlaywrightTimeout:
                    continue
            assert out.inner_text().strip() == "42"

            # stop the server from the hub's home page
            page.goto(hub.url + "/hub/home")
            page.click("#stop")
            wait_until("the server to stop", lambda: hub.server(user) is None, timeout=60, interval=0.5)
        except Exception:
            page.screenshot(path="/tmp/sandfill-browser-failure.png")
            raise
        finally:
            browser.close()
    wait_until("the job to end", lambda: (s := slurm.squeue_sync([job_id]).get(job_id)) is None or s.ended, timeout=30)
