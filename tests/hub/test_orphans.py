"""No server job is ever untracked (no Slurm: the root client is a fake that fails on
demand, as the Runner's fault hooks do)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from sandfill.hub import orphans, progress
from sandfill.hub.spawner import SpawnFailed
from sandfill.slurm import JobStatus, SlurmCommandError

from .test_spawner import spawner


class FakeRunner:
    def __init__(self, client: FakeRoot) -> None:
        self.client = client

    async def acheck(self, argv: list[str], *, input: str | None = None) -> str:
        """squeue's ids query: honours ``--name=`` (job names default to the server's)."""
        self.client._check()
        name = next((a.split("=", 1)[1] for a in argv if a.startswith("--name=")), None)
        return "\n".join(j for j, st in self.client.jobs.items()
                         if not st.ended and name in (None, self.client.names.get(j, "jupyterhub-root")))


class FakeRoot:
    """scancel and squeue as root: ``fail`` makes every command fail."""

    def __init__(self) -> None:
        self.fail = False
        self.jobs: dict[str, JobStatus] = {}
        self.names: dict[str, str] = {}  # job names other than the server's
        self.cancels: list[str] = []
        self.runner = FakeRunner(self)

    def _check(self) -> None:
        if self.fail:
            raise SlurmCommandError(["scancel"], 1, "", "scancel: error: Unable to contact slurm controller")

    async def cancel(self, job_ids: list[str]) -> None:
        self._check()
        for j in job_ids:
            self.cancels.append(j)
            self.jobs[j] = JobStatus(j, "CANCELLED", user="root", partition="interactive")

    async def squeue(self, job_ids: list[str] | None = None) -> dict[str, JobStatus]:
        self._check()
        return {j: st for j, st in self.jobs.items() if job_ids is None or j in job_ids}


@pytest.fixture(autouse=True)
def _fresh() -> Any:
    orphans._ORPHANS.clear()
    orphans._REAPERS.clear()
    orphans._STARTING.clear()
    yield
    orphans._ORPHANS.clear()
    orphans._STARTING.clear()


def setup(**kwargs: Any) -> tuple[Any, FakeRoot]:
    sp = spawner(cancel_retry_interval=0.1, cancel_timeout=2, **kwargs)
    root = FakeRoot()
    sp._client = lambda as_user: root  # type: ignore[method-assign]
    return sp, root


async def until(what: str, check: Any, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def test_a_failed_scancel_keeps_the_job_in_the_state_retries_and_blocks_a_second_server() -> None:
    async def main() -> None:
        sp, root = setup()
        sp.job_id = "41"
        root.jobs["41"] = JobStatus("41", "RUNNING", user="root", partition="interactive")
        root.fail = True
        await sp.stop()  # JupyterHub forgets the server now
        sp.clear_state()
        assert sp.get_state()["orphans"] == ["41"] and sp.orm_spawner.state["orphans"] == ["41"]
        assert "could not be cancelled yet" in (sp.job_info()["orphan_message"] or "")
        with pytest.raises(SpawnFailed, match=r"previous server job \(41\)"):
            await sp.start()  # never two server jobs of one user
        # a new process (a hub restart) loads the state and still knows it
        for task in orphans._REAPERS.values():
            task.cancel()
        orphans._REAPERS.clear()
        orphans._ORPHANS.clear()
        again, root2 = setup()
        root2.jobs, root2.fail = root.jobs, False
        again.load_state({"job_id": "", "orphans": ["41"]})
        await until("the background retry to cancel 41", lambda: not again.orphans)
        assert root2.cancels == ["41"] and again.orm_spawner.state["orphans"] == []

    asyncio.run(main())


def test_an_orphan_that_ended_on_its_own_is_settled_without_scancel() -> None:
    async def main() -> None:
        sp, root = setup()
        root.jobs["7"] = JobStatus("7", "COMPLETED")
        sp.orphans.add("7")
        assert await sp.settle_all() == [] and root.cancels == []

    asyncio.run(main())


def test_a_timed_out_sbatch_adopts_the_one_job_it_queued() -> None:
    async def main() -> None:
        sp, root = setup()
        since = time.time()
        root.jobs["90"] = JobStatus("90", "PENDING", user="root", partition="interactive", submit_time=since + 1)
        root.jobs["80"] = JobStatus("80", "RUNNING", user="root", partition="batch", submit_time=since + 1)
        assert await sp._adopt_after_timeout(since, "interactive", "timed out after 8 s") == "90"
        assert not sp.orphans

    asyncio.run(main())


def test_a_timed_out_sbatch_never_takes_a_job_the_user_submitted_by_hand_or_later() -> None:
    async def main() -> None:
        sp, root = setup()
        since = time.time()
        root.jobs["91"] = JobStatus("91", "PENDING", user="root", partition="interactive", submit_time=since + 1)
        root.names["91"] = "my-analysis"  # the user's own job, in the same partition and second
        root.jobs["99"] = JobStatus("99", "PENDING", user="root", partition="interactive",
                                    submit_time=since + sp.submit_timeout + 60)  # a later spawn's
        assert await sp.submitted_since(since, "interactive") == []
        root.jobs["92"] = JobStatus("92", "PENDING", user="root", partition="interactive", submit_time=since + 2)
        assert await sp._adopt_after_timeout(since, "interactive", "timed out after 8 s") == "92"
        assert root.cancels == []

    asyncio.run(main())


def test_a_timed_out_sbatch_with_the_queue_down_is_tracked_then_cancelled() -> None:
    async def main() -> None:
        sp, root = setup()
        since = time.time()
        root.fail = True
        with pytest.raises(SpawnFailed, match="the hub cancels it"):
            await sp._adopt_after_timeout(since, "interactive", "timed out after 8 s")
        assert sp.orphans == {f"lost@{since:.0f}@interactive"}
        root.jobs["95"] = JobStatus("95", "PENDING", user="root", partition="interactive", submit_time=since + 1)
        root.fail = False
        await until("the lost job to be found and cancelled", lambda: not sp.orphans)
        assert root.cancels == ["95"]

    asyncio.run(main())


def _new_process() -> None:
    """What a hub restart forgets: everything the process held in memory."""
    for task in orphans._REAPERS.values():
        task.cancel()
    orphans._REAPERS.clear()
    orphans._ORPHANS.clear()
    orphans._STARTING.clear()


def test_a_start_dropped_by_a_hub_restart_is_cancelled_and_the_user_is_told() -> None:
    async def main() -> None:
        sp, _ = setup()
        sp.job_id = "51"
        sp.mark_starting("51")  # sbatch returned: committed at once, JupyterHub saves nothing yet
        assert sp.orm_spawner.state["starting"] == "51" and sp.db.commits == 1
        _new_process()
        again, root = setup()
        root.jobs["51"] = JobStatus("51", "PENDING", user="root", partition="interactive")
        again.load_state({**sp.orm_spawner.state, "job_id": "51"})
        # the server is gone at once (JupyterHub's start-up check removes it without waiting
        # for it to answer), its job is tracked and the user is told why
        assert again.job_id == "" and await again.poll() == 1
        info = again.job_info()
        assert info["orphans"] == ["51"] and info["last_end"]["job_id"] == "51"
        assert info["last_end"]["why"] == progress.DROPPED_WHY and "hub restarted" in again.end_message()
        assert again.get_state()["orphans"] == ["51"] and "starting" not in again.get_state()
        await until("the dropped job to be cancelled", lambda: not again.orphans)
        assert root.cancels == ["51"]
        assert again.orm_spawner.state["orphans"] == [] and "starting" not in again.orm_spawner.state

    asyncio.run(main())


def test_a_start_in_flight_in_this_process_is_not_taken_for_a_dropped_one() -> None:
    async def main() -> None:
        sp, root = setup()
        sp.job_id = "52"
        sp.mark_starting("52")
        other, _ = setup()  # another spawner object of the same server, same process
        other.load_state({"job_id": "52", "starting": "52"})
        assert other.job_id == "52" and not other.orphans and not other.last_end
        assert sp.get_state()["starting"] == "52"
        sp.clear_state()  # the start ended (JupyterHub stops a failed one): nothing in flight
        assert "starting" not in sp.get_state() and root.cancels == []

    asyncio.run(main())
