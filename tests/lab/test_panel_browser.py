"""The Backfill Dask panel as a new user meets it, in a real JupyterLab spawned by the real hub
as a Slurm job (issue 14, "In JupyterLab" and "Found when tried as a new user would").

One lean pass over one cluster: a new cluster suggests the next step; a refused scale reads
in the server's words (no "400:"); after "scale to 4" the table has exactly the rows the
summary counts (no ghost rows without job ids); the SVG timeline has a bar per job; a job's
id opens its log (another user is refused it); the panel's Adapt button and the notebook
widget's Adapt button both set the cluster's target; and the notebook's ``Client`` links the
dashboard through the Jupyter proxy. Saves the panel as panel-timeline.png in the test's
temporary directory, or in $SANDFILL_SCREENSHOT_DIR when that is set."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sandfill.dev.testing import launch_chromium
from sandfill.slurm import SlurmClient
from sandfill.slurm.commands import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slurm]

USER = "sftest-dee"
OTHER = "sftest-ada"
NAME = "tl-demo"
CARD = f".sandfill-cluster[data-cluster-name='{NAME}']"


def screenshot_dir(tmp_path: Path) -> Path:
    chosen = os.environ.get("SANDFILL_SCREENSHOT_DIR")
    return Path(chosen).resolve() if chosen else tmp_path


def server_url(hub: Any, user: str, path: str = "") -> str:
    """A URL on the user's server: on its own origin when the hub gives users subdomains."""
    if hasattr(hub, "user_url"):
        return str(hub.user_url(user, path))
    return f"{hub.url}/user/{user}/{path}"


def fetch(page: Any, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """``fetch`` in the lab page, relative to the server's base URL, with the browser's login
    cookie and XSRF token (Chromium resolves a user's subdomain; Python and Node do not)."""
    status, text = page.evaluate(
        """async ([method, path, body]) => {
            const cfg = document.querySelector('#jupyter-config-data');
            const base = cfg ? JSON.parse(cfg.textContent).baseUrl : '/';
            const xsrf = (document.cookie.match(/(?:^|; )_xsrf=([^;]*)/) || [])[1] || '';
            const init = {method, headers: {'X-XSRFToken': decodeURIComponent(xsrf), 'Content-Type': 'application/json'}};
            if (body !== null) { init.body = body; }
            const r = await fetch(base + path, init);
            return [r.status, await r.text()];
        }""",
        [method, path, None if body is None else json.dumps(body)],
    )
    return status, json.loads(text) if text else None


def card_text(page: Any, part: str) -> str:
    return str(page.locator(f"{CARD} .sandfill-{part}").inner_text())


def rows(page: Any) -> list[tuple[str, str]]:
    """(job id, state) of every row of the cluster's job table."""
    return [(str(r.get_attribute("data-job-id") or ""), str(r.get_attribute("data-state"))) for r in page.locator(f"{CARD} .sandfill-job").all()]


def jobs_in_summary(summary: str) -> int:
    """The jobs the summary line counts: "4 workers · 3 running · 1 pending" → 4."""
    return sum(int(n) for n, word in re.findall(r"(\d+) (\w+)", summary) if word not in {"worker", "workers"})


def target(page: Any, cid: str) -> dict[str, Any]:
    status, model = fetch(page, "GET", f"sandfill/clusters/{cid}")
    assert status == 200, model
    return dict(model["target"])


def run_first_cell(page: Any) -> bool:
    """Run the notebook's first cell unless it ran or runs; True once it has run. (A run sent
    while the notebook's kernel connection is still starting is dropped: it is sent again.)"""
    prompt = page.locator(".jp-Notebook .jp-Cell").first.locator(".jp-InputPrompt").inner_text().strip()
    if re.fullmatch(r"\[\d+\]:", prompt):
        return True
    if prompt == "[ ]:":
        page.locator(".jp-Notebook .jp-Cell .cm-content").first.click()
        page.keyboard.press("Shift+Enter")
    return False


WIDGET_NOTEBOOK = {
    "type": "notebook",
    "content": {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "cells": [
            {
                "cell_type": "code",
                "id": "widget",
                "metadata": {},
                "execution_count": None,
                "outputs": [],
                "source": f'from sandfill.dask import connect, view\nclient = connect("{NAME}")\nprint("DASHBOARD", client.dashboard_link)\nview("{NAME}")',
            }
        ],
    },
}


def test_panel_rows_timeline_logs_and_both_adapt_buttons(browser_login: Callable[[Any, str], None], clean_servers: Any, slurm: SlurmClient, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    hub = clean_servers
    hub.spawn(USER, {"profile": "small"}, timeout=120)
    job_ids: list[str] = []
    cid = ""
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        page.set_default_timeout(30_000)
        try:
            browser_login(page, USER)
            page.goto(server_url(hub, USER, "lab?reset"))
            page.wait_for_selector(".jp-Launcher", timeout=90_000)
            page.click('[data-id="sandfill-panel"]')
            page.wait_for_selector(".sandfill-panel .sandfill-template option[value='small']", state="attached")
            # one description per template, the facts in its tooltip
            info = page.locator(".sandfill-template-info")
            assert info.inner_text().count("GiB") == 1 and "walltime" in str(info.get_attribute("title"))

            # a new cluster: no workers, and the panel says what to do next
            page.fill(".sandfill-name", NAME)
            page.click(".sandfill-create")
            page.locator(CARD).wait_for(timeout=60_000)
            cid = str(page.locator(CARD).get_attribute("data-cluster-id"))
            assert "press Scale" in card_text(page, "hint")

            # a refusal in the server's words, not "400: …"; nothing changed
            page.locator(f"{CARD} .sandfill-scale-n").fill("999")
            page.locator(f"{CARD} .sandfill-scale").click()
            error = page.locator(".sandfill-action-error")
            error.wait_for()
            assert error.inner_text().startswith("scale: must be a whole number from 0 to 64, not 999"), error.inner_text()
            assert target(page, cid) == {"mode": "scale", "n": 0, "minimum": None, "maximum": None}

            # scale to 4: the rows are exactly the jobs the summary counts, each with its id
            page.locator(f"{CARD} .sandfill-scale-n").fill("4")
            page.locator(f"{CARD} .sandfill-scale").click()
            wait_until("4 running worker jobs in the panel", lambda: card_text(page, "summary") == "4 workers · 4 running", timeout=150,
                       describe=lambda: f"summary={card_text(page, 'summary')!r} rows={rows(page)}")
            page.locator(f"{CARD} .sandfill-hint").wait_for(state="detached")
            wait_until("the next poll", lambda: rows(page) and all(s == "running" for _, s in rows(page)), timeout=10)
            shown = rows(page)
            assert len(shown) == jobs_in_summary(card_text(page, "summary")) == 4, shown
            job_ids = [j for j, _ in shown]
            assert all(job_ids) and len(set(job_ids)) == 4, shown
            assert all(s.running and s.user == USER for s in slurm.squeue_sync(job_ids).values())

            # the timeline: a bar per job, and the line of now
            bars = page.locator(f"{CARD} svg.sandfill-timeline rect.sandfill-tl-bar[data-state='running']")
            assert sorted(str(bars.nth(i).get_attribute("data-job-id")) for i in range(bars.count())) == sorted(job_ids)
            assert page.locator(f"{CARD} .sandfill-tl-now").count() == 1
            page.locator(CARD).screenshot(path=str(screenshot_dir(tmp_path) / "panel-timeline.png"))

            # a job's id opens its log; another user cannot read it
            page.locator(f"{CARD} .sandfill-job[data-job-id='{job_ids[0]}'] .sandfill-job-log-link").click()
            log = page.locator(f"{CARD} .sandfill-log-view[data-job-id='{job_ids[0]}'] .sandfill-log")
            wait_until("the worker job's log", lambda: f"-{job_ids[0]}." in log.inner_text(), timeout=30, describe=log.inner_text)
            status, body = hub.get(f"/user/{USER}/sandfill/clusters/{cid}/jobs/{job_ids[0]}/log", as_user=OTHER)
            assert status in (302, 403), status  # refused (or sent to log in as the owner), never the log
            assert f"-{job_ids[0]}." not in str(body)
            status, body = hub.get(f"/user/{USER}/sandfill/clusters/{cid}/jobs/{job_ids[0]}/log", as_user=USER)
            assert status == 200 and f"-{job_ids[0]}." in str(body), (status, body)  # the same URL works for its owner

            # the panel's Adapt button
            page.locator(f"{CARD} .sandfill-adapt-min").fill("1")
            page.locator(f"{CARD} .sandfill-adapt-max").fill("2")
            page.locator(f"{CARD} .sandfill-adapt").click()
            wait_until("the panel's target to read adapt 1–2", lambda: card_text(page, "target") == "target: adapt 1–2", timeout=30)
            assert target(page, cid) == {"mode": "adapt", "n": None, "minimum": 1, "maximum": 2}

            # the notebook widget's Adapt button, and the notebook's dashboard link
            status, body = fetch(page, "PUT", "api/contents/sandfill-widget.ipynb", WIDGET_NOTEBOOK)
            assert status in (200, 201), body
            page.goto(server_url(hub, USER, "lab/tree/sandfill-widget.ipynb"))
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", state="attached", timeout=120_000)
            wait_until("the widget cell to run", lambda: run_first_cell(page), timeout=120, interval=5)
            widget_max = page.locator(".jp-OutputArea .sandfill-widget-max input")
            widget_max.wait_for(timeout=60_000)
            printed = page.locator(".jp-OutputArea-output.jp-RenderedText", has_text="DASHBOARD").inner_text()
            assert "/proxy/" in printed and "127.0.0.1" not in printed, printed
            page.locator(".jp-OutputArea .sandfill-widget-min input").fill("0")
            page.locator(".jp-OutputArea .sandfill-widget-min input").press("Enter")
            widget_max.fill("3")
            widget_max.press("Enter")
            page.locator(".jp-OutputArea .sandfill-widget-adapt").click()
            wait_until("the widget's adapt to reach the cluster", lambda: target(page, cid) == {"mode": "adapt", "n": None, "minimum": 0, "maximum": 3},
                       timeout=30, describe=lambda: f"target={target(page, cid)} error={page.locator('.sandfill-widget-error').all_inner_texts()}")
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"))
            raise
        finally:
            try:
                if cid:  # the cluster goes with its worker jobs
                    fetch(page, "DELETE", f"sandfill/clusters/{cid}")
            finally:
                browser.close()
    if job_ids:
        wait_until("the worker jobs to leave squeue", lambda: all(s.ended for s in slurm.squeue_sync(job_ids).values()), timeout=60)
