""""My jobs" in Debian's chromium: the page lists the user's notebook server and a batch job
they submitted, follows the batch job's log while it grows, and cancels it from the page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hub.test_myjobs import submit_as  # tests/ is on the path: tests/hub is a namespace package

from sandfill.slurm.commands import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slurm]


def test_my_jobs_lists_server_and_batch_job_follows_the_log_and_cancels(
    logged_in_page: Callable[[str], Any], clean_servers: Any, slurm: Any
) -> None:
    hub = clean_servers
    user = "sftest-cy"
    server = hub.spawn(user)["job_id"]
    batch = submit_as(str(slurm.slurm_conf), user, "cy's <b>batch</b>\njob")
    with logged_in_page(user) as page:
        page.goto(hub.url + "/hub/home")
        page.click("#sandfill-my-jobs-link")
        page.wait_for_url(f"**/hub/sandfill/jobs/{user}")
        page.wait_for_selector(f"#sandfill-jobs tr[data-job-id='{batch}']")
        assert page.inner_text(f"tr[data-job-id='{server}'] .sandfill-job-kind") == "server"
        row = f"#sandfill-jobs tr[data-job-id='{batch}']"
        assert page.inner_text(f"{row} .sandfill-job-kind") == "batch"
        assert page.locator(f"{row} .sandfill-job-name b").count() == 0  # the name is text, not HTML

        page.click(f"{row} .sandfill-log-link")
        page.wait_for_function("() => document.getElementById('sandfill-joblog').textContent.includes('line 2\\n')", timeout=60_000)
        seen = page.inner_text("#sandfill-joblog").count("line ")
        page.wait_for_function(  # the log grows while the page is open, without a reload
            f"() => document.getElementById('sandfill-joblog').textContent.split('line ').length - 1 > {seen}", timeout=30_000
        )

        page.once("dialog", lambda d: d.accept())
        page.click(f"{row} .sandfill-cancel")
        wait_until(f"job {batch} to be cancelled", lambda: (st := slurm.squeue_sync([batch]).get(batch)) is None or st.state == "CANCELLED", timeout=30)
        page.wait_for_selector(f"{row}[data-phase=ended], #sandfill-jobs-none:not([hidden])", timeout=30_000)
        assert hub.job(user)[1]["state"] == "RUNNING"  # the server was not touched
