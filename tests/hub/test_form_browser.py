"""The spawn form in Debian's chromium, as a first-time user meets it: limits checked as they
type, and a refused form that keeps what they typed and names every bad field, with nothing
submitted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sandfill.dev.testing import TestSlurm

pytestmark = [pytest.mark.browser, pytest.mark.slurm]


def test_a_refused_form_keeps_the_values_and_names_every_bad_field(
    logged_in_page: Callable[[str], Any], clean_servers: Any, slurm: TestSlurm
) -> None:
    hub = clean_servers
    user = "sftest-cy"
    with logged_in_page(user) as page:
        page.goto(hub.url + f"/hub/spawn/{user}")
        page.wait_for_selector("#sandfill-availability")
        assert page.get_attribute("#sandfill-partition", "class").startswith("form-select")  # a select that looks like one

        # limits are checked in the browser, against the chosen partition, before sending
        page.select_option("#sandfill-partition", "burst")
        page.fill("#sandfill-walltime", "2h")
        assert page.inner_text("#sandfill-walltime-hint") == "2h → 2 hours: longer than the limit of 01:00:00 on burst"
        page.select_option("#sandfill-partition", "interactive")
        assert page.inner_text("#sandfill-walltime-hint") == "2h → 2 hours"

        page.fill("#sandfill-cpus", "2")
        page.fill("#sandfill-memory", "lots")
        page.fill("#sandfill-walltime", "12:00:00")
        assert "longer than the limit of 08:00:00 on interactive" in page.inner_text("#sandfill-walltime-hint")
        page.click("button[type=submit]")

        page.wait_for_selector("#sandfill-memory-error")
        assert page.is_checked("#profile-custom")
        assert page.input_value("#sandfill-cpus") == "2"
        assert page.input_value("#sandfill-memory") == "lots"
        assert page.input_value("#sandfill-walltime") == "12:00:00"
        assert page.input_value("#sandfill-partition") == "interactive"
        assert "is not an amount of memory (use 512M, 4G or 1T" in page.inner_text("#sandfill-memory-error")
        assert "is longer than the limit of 08:00:00 on interactive" in page.inner_text("#sandfill-walltime-error")
        assert page.locator("#sandfill-cpus-error").count() == 0
        assert "2 fields need a change" in page.inner_text("body")
        # nothing was submitted or started
        assert slurm.user_job_ids_sync([user]) == []
        assert hub.server(user) is None

        # the user fixes the two fields and the same form spawns
        page.fill("#sandfill-memory", "1G")
        page.fill("#sandfill-walltime", "1h")
        page.click("button[type=submit]")
        page.wait_for_url(f"**/user/{user}/**", timeout=90_000)
        job = hub.job(user)[1]
        assert (job["state"], job["request"]["cpus"], job["request"]["walltime"]) == ("RUNNING", 2, "01:00:00"), job

