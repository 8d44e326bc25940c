"""What the hub tells a person about their server job, in Debian's chromium: the pending
page's status card and its "Cancel request", the confirmation afterwards, the session card on
the home page, and the job page, pending and then running."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sandfill.dev.testing import TestSlurm
from sandfill.slurm.commands import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slurm]


def test_the_pending_card_cancel_request_and_its_confirmation(
    logged_in_page: Callable[[str], Any], clean_servers: Any, rocks: Callable[[], list[str]], slurm: TestSlurm
) -> None:
    hub = clean_servers
    user = "sftest-bob"
    rocks()  # the devcluster is full: the request waits
    with logged_in_page(user) as page:
        page.goto(hub.url + f"/hub/spawn/{user}")
        page.check("#profile-small")
        page.click("button[type=submit]")
        page.wait_for_selector("#progress-message .sandfill-status .sandfill-reason", timeout=60_000)
        assert page.inner_text("#stop-server-btn") == "Cancel request"
        job_id = page.inner_text("#progress-message .sandfill-job-id")
        assert page.inner_text("#progress-message .sandfill-asked").startswith("1 CPU, 1G, 02:00:00 on interactive")
        assert page.inner_text("#progress-message .sandfill-waited") in ("under a minute", "1 minute")
        lines = page.locator("#progress-message .sandfill-status > div").all_inner_texts()
        assert lines[0] == f"Job {job_id} is PENDING" and lines[1].startswith("Waiting because: "), lines

        page.click("#stop-server-btn")
        page.wait_for_selector("#sandfill-session[data-phase=none]", timeout=60_000)
        assert page.inner_text("#sandfill-session-text") == f"Job {job_id} ended: cancelled before it started."
        st = slurm.squeue_sync([job_id]).get(job_id)
        assert st is None or st.state == "CANCELLED"


def test_the_home_page_card_and_the_job_page_tell_pending_from_running(
    logged_in_page: Callable[[str], Any], clean_servers: Any, rocks: Callable[[], list[str]], slurm: TestSlurm
) -> None:
    hub = clean_servers
    user = "sftest-dee"
    rock_ids = rocks()  # the devcluster is full: the server job pends
    hub.spawn(user, wait=False)
    job_id = wait_until("the server job to pend", lambda: (j := hub.job(user)[1])["state"] == "PENDING" and j["job_id"], timeout=60)
    with logged_in_page(user) as page:
        page.goto(hub.url + "/hub/home")
        page.wait_for_selector("#sandfill-session[data-phase=pending]")
        assert page.inner_text("#sandfill-session-badge") == "Pending"
        card = page.inner_text("#sandfill-session-text")
        assert card.startswith(f"Job {job_id} PENDING · waiting: ") and "1 CPU, 1G, 02:00:00 on interactive" in card, card

        page.goto(hub.url + f"/hub/sandfill/job/{user}")
        assert page.locator("#sandfill-time-left").count() == 0  # no "time left" for a job not started
        assert page.inner_text("#sandfill-walltime-asked") == "02:00:00"

        slurm.cancel_sync(rock_ids, check=True)
        hub.wait_ready(user)
        page.goto(hub.url + "/hub/home")
        page.wait_for_selector("#sandfill-session[data-phase=running]")
        card = page.inner_text("#sandfill-session-text")
        assert card.startswith(f"Job {job_id} RUNNING · on node") and " left · " in card, card
        assert "waiting" not in card
        page.goto(hub.url + f"/hub/sandfill/job/{user}")
        assert "h" in page.inner_text("#sandfill-time-left")
        assert "(" not in page.inner_text("#sandfill-job-state")  # no stale pending reason
