"""sandfill.dask.keeper: one keeper round at a time against a scripted cluster (the real
loop runs in test_cluster.py)."""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest
from distributed.core import Status

from sandfill.dask.keeper import JobInfo, Keeper
from sandfill.dask.planner import Plan
from sandfill.slurm import JobStatus

pytestmark = pytest.mark.asyncio


class FakePoller:
    def snapshot(self) -> dict[str, JobStatus]:
        return dict(self.snap)

    def status(self, job_id: str) -> JobStatus | None:
        return self.snap.get(job_id)

    def __init__(self) -> None:
        self.snap: dict[str, JobStatus] = {}
        self.watched: set[str] = set()

    def watch(self, job_id: str) -> None:
        self.watched.add(job_id)

    def unwatch(self, job_id: Any) -> None:
        self.watched.discard(job_id)

    refreshes = 0

    def request_refresh(self) -> None:
        self.refreshes += 1


class FakePlanner:
    ttl = 10.0

    def __init__(self, hold_after: int = 1000) -> None:
        self.picks = 0
        self.hold_after = hold_after

    async def pick(self, **shape: Any) -> Plan:
        self.picks += 1
        if self.picks > self.hold_after:
            return Plan(300, None, False, None, "no gap before a planned start", hold=True)
        return Plan(600, None, True, "node1", "fits on node1")


class FakeSlurm:
    def __init__(self) -> None:
        self.cancelled: list[str] = []
        self.failures = 0  # the next this many scancels fail, as with a busy controller

    async def cancel(self, ids: list[str]) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("scancel: Socket timed out on send/recv operation")
        self.cancelled += ids


class FakeComm:
    def __init__(self) -> None:
        self.retired: list[list[str]] = []

    async def retire_workers(self, names: list[str], **kw: Any) -> None:
        self.retired.append(names)


class FakeCluster:
    def __init__(self, planner: FakePlanner | None = None) -> None:
        self.status = Status.running
        self.worker_spec: dict[str, dict[str, Any]] = {}
        self.workers: dict[str, Any] = {}
        self.scheduler_info: dict[str, Any] = {"workers": {}}
        self._shape: dict[str, Any] = {}
        self.poller = FakePoller()
        self.planner = planner or FakePlanner()
        self.slurm = FakeSlurm()
        self.scheduler_comm = FakeComm()
        self._ids = itertools.count(1)

    def new_worker_spec(self) -> dict[str, dict[str, Any]]:
        return {f"w{next(self._ids)}": {"cls": object, "options": {}}}

    async def _correct_state(self) -> None: ...

    def submit(self, name: str, job_id: str, st: JobStatus) -> None:
        """Slurm accepted worker job ``name`` as ``job_id`` and reports ``st``."""
        self.worker_spec.setdefault(name, {"cls": object, "options": {}})
        self.keeper.info.setdefault(name, JobInfo(time.time())).job_id = job_id
        self.poller.snap[job_id] = st

    def connect(self, name: str) -> None:
        self.scheduler_info["workers"][name] = {"name": name}


def keeper(cluster: FakeCluster, **kw: Any) -> Keeper:
    opts = {"retire_margin": 60.0, "replace_ahead": 90.0, "max_pending_jobs": 8, "interval": 1.0, "lost_worker_grace": 10.0, **kw}
    cluster.keeper = k = Keeper(cluster, **opts)  # type: ignore[arg-type,attr-defined]
    return k


async def test_grows_to_target_within_the_pending_cap_then_holds() -> None:
    c = FakeCluster()
    k = keeper(c, max_pending_jobs=3)
    k.target_jobs = 5
    await k.keep_once()
    assert len(c.worker_spec) == 3 and all(s["options"]["plan"].fits_now for s in c.worker_spec.values())
    c2 = FakeCluster(FakePlanner(hold_after=1))
    k2 = keeper(c2)
    k2.target_jobs = 4
    await k2.keep_once()
    assert len(c2.worker_spec) == 1 and k2.waiting == 3 and "no gap" in (k2.waiting_reason or "")
    assert len([j for j in k2.jobs() if j.reason == "WaitingForGap"]) == 3
    await k2.keep_once()  # holding: no new look at the schedule until hold_until
    assert c2.planner.picks == 2 and k2.waiting == 3


async def test_a_worker_joining_from_a_job_last_seen_pending_asks_the_poller_for_a_round() -> None:
    """Without it the model shows connected workers on a "pending" job until the next round."""
    c = FakeCluster()
    k = keeper(c)
    c.submit("w1", "1", JobStatus("1", "PENDING", reason="Resources"))
    c.submit("w2", "2", JobStatus("2", "RUNNING", end_time=time.time() + 600))
    k.worker_joined("w1")
    assert c.poller.refreshes == 1 and "w1" in k.seen_workers
    k.worker_joined("w2")  # the poller already knows it runs: no extra round
    k.worker_joined("stranger")  # not one of ours
    assert c.poller.refreshes == 1 and {"w2", "stranger"} <= k.seen_workers


async def test_expiring_jobs_are_replaced_ahead_of_their_end() -> None:
    c = FakeCluster()
    k = keeper(c)
    now = time.time()
    c.submit("w100", "100", JobStatus("100", "RUNNING", end_time=now + 100, time_limit=3600))
    c.connect("w100")
    k.target_jobs = 1
    assert k.expiring("w100", c.poller.snapshot(), now)  # 100 s left < 60 + 90
    await k.keep_once()
    assert len(c.worker_spec) == 2  # a replacement beside the expiring job
    # a short job is not "expiring" for more than 60 % of its walltime
    assert k.lead(JobStatus("1", "RUNNING", time_limit=120)) == 72
    assert k.lead(JobStatus("1", "RUNNING", time_limit=60)) == 60  # never less than the margin


async def test_workers_retire_a_margin_before_the_end_slurm_gave_their_job() -> None:
    """The keeper, not the worker job, reads the job's end (from the one shared poller): a
    job Slurm started with less than it asked (--time-min) still retires in time."""
    c = FakeCluster()
    k = keeper(c)
    now = time.time()
    c.submit("w100", "100", JobStatus("100", "RUNNING", end_time=now + 300, time_limit=3600))
    c.submit("w101", "101", JobStatus("101", "RUNNING", end_time=now + 59, time_limit=600))
    c.connect("w100")
    c.connect("w101")
    k.target_jobs = 2
    await k.keep_once()
    assert c.scheduler_comm.retired == [["w101"]] and k.info["w101"].retiring
    assert not k.info["w100"].retiring
    await k.keep_once()  # once only
    assert c.scheduler_comm.retired == [["w101"]]
    assert len(c.worker_spec) == 3  # and its replacement is on the way
    c.poller.snap["101"] = JobStatus("101", "COMPLETED")  # its workers left, the job ended
    await k.keep_once()
    assert next(j for j in k.jobs() if j.job_id == "101").ended_why == "retired"


async def test_surplus_goes_pending_newest_first_then_least_time_left() -> None:
    c = FakeCluster()
    k = keeper(c)
    now = time.time()
    c.submit("a", "1", JobStatus("1", "RUNNING", end_time=now + 3000, time_limit=3600))
    c.submit("b", "2", JobStatus("2", "RUNNING", end_time=now + 1000, time_limit=3600))
    c.submit("p1", "3", JobStatus("3", "PENDING"))
    c.submit("p2", "4", JobStatus("4", "PENDING"))
    k.info["p2"].created = k.info["p1"].created + 1
    k.target_jobs = 1
    await k.keep_once()
    assert set(c.worker_spec) == {"a"}  # p2, p1, then b (least time left)
    assert c.scheduler_comm.retired == [["b"]]  # running: retired gracefully
    assert [j.ended_why for j in k.jobs()[-3:]] == ["scaled down"] * 3


async def test_ended_jobs_say_why_and_lost_workers_are_replaced() -> None:
    c = FakeCluster()
    k = keeper(c, lost_worker_grace=0.0)
    now = time.time()
    c.submit("done", "1", JobStatus("1", "COMPLETED"))
    c.submit("late", "2", JobStatus("2", "TIMEOUT"))
    c.submit("lost", "3", JobStatus("3", "RUNNING", end_time=now + 3000, time_limit=3600))
    k.info["lost"].ever_connected = True  # its workers were there once, and are gone
    k.target_jobs = 0
    await k.keep_once()
    why = {j.job_id: j.ended_why for j in k.jobs()}
    assert why == {"1": "retired", "2": "reached its walltime", "3": "lost: workers disconnected"}
    assert c.slurm.cancelled == ["3"] and c.worker_spec == {}


async def test_a_job_that_ended_between_rounds_already_says_retired() -> None:
    c = FakeCluster()
    k = keeper(c)
    c.submit("done", "1", JobStatus("1", "COMPLETED"))
    (j,) = k.jobs()
    assert (j.state, j.ended_why) == ("ended", "retired")


async def test_pending_cap_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max-pending-jobs must be at least 1, got 0"):
        keeper(FakeCluster(), max_pending_jobs=0)


async def test_a_job_stuck_completing_on_a_failed_node_is_lost_not_retiring() -> None:
    """Workers killed with their node: Slurm calls the job COMPLETING, with its end time
    now. Not due to retire, so it is lost (after the grace) and only then replaced; a job
    that was due and then completes is retiring, not lost."""
    c = FakeCluster()
    k = keeper(c, lost_worker_grace=0.0)
    now = time.time()
    c.submit("dead", "1", JobStatus("1", "COMPLETING", nodes="node1", end_time=now - 1, time_limit=600))
    c.submit("old", "2", JobStatus("2", "RUNNING", nodes="node2", end_time=now + 30, time_limit=600))
    k.info["dead"].ever_connected = k.info["old"].ever_connected = True
    c.connect("old")
    k.target_jobs = 2
    await k.keep_once()
    assert k.info["old"].due and not k.expiring("dead", c.poller.snapshot(), now)
    assert "dead" not in c.worker_spec and c.slurm.cancelled == ["1"]
    assert [j.ended_why for j in k.jobs() if j.job_id == "1"] == ["lost: workers disconnected"]
    del c.scheduler_info["workers"]["old"]  # its workers retired at their lifetime
    c.poller.snap["2"] = JobStatus("2", "COMPLETING", nodes="node2", end_time=now, time_limit=600)
    await k.keep_once()
    assert "old" in c.worker_spec and c.slurm.cancelled == ["1"]  # retiring: not lost
    assert len(c.worker_spec) == 3  # two replacements: for the lost job and the retiring one


async def test_a_failed_scancel_keeps_the_job_watched_and_retried_until_it_ends() -> None:
    """A lost job whose scancel fails (a busy controller) is neither forgotten nor left
    running: it stays watched and owed, is tried again when due, and is forgotten only once
    Slurm says it ended."""
    c = FakeCluster()
    k = keeper(c, lost_worker_grace=0.0)
    now = time.time()
    c.submit("lost", "3", JobStatus("3", "RUNNING", end_time=now + 3000, time_limit=3600))
    k.info["lost"].ever_connected = True
    c.slurm.failures = 2
    await k.keep_once()
    assert c.slurm.cancelled == [] and "3" in k.cancels_owed and "3" in c.poller.watched
    assert k.cancels_owed["3"].tries == 1 and "timed out" in k.cancels_owed["3"].error
    await k.keep_once()  # not due yet: no new try
    assert k.cancels_owed["3"].tries == 1
    k.cancels_owed["3"].next_try = 0
    await k.keep_once()  # due: fails again, the delay doubles
    assert k.cancels_owed["3"].tries == 2 and k.cancels_owed["3"].next_try > time.time() + 3
    k.cancels_owed["3"].next_try = 0
    await k.keep_once()  # due: goes through
    assert c.slurm.cancelled == ["3"] and k.cancels_owed == {}


async def test_an_owed_cancel_of_a_job_that_ended_meanwhile_is_settled() -> None:
    c = FakeCluster()
    k = keeper(c)
    c.slurm.failures = 1
    assert not await k.cancel("7")
    c.poller.snap["7"] = JobStatus("7", "CANCELLED")
    await k.keep_once()
    assert k.cancels_owed == {} and "7" not in c.poller.watched and c.slurm.cancelled == []


async def test_a_preempted_job_gives_way_at_once_is_replaced_and_says_preempted() -> None:
    """Slurm preempts a scavenger job: the poller then reports its end moved up to the
    preemption plus GraceTime (here 300 s, longer than retire-margin; Slurm 22.05 signals the
    batch step only at that end). The keeper retires its workers at once and submits the
    replacement; while they leave, the job is not taken for one that lost its workers; the job
    then ends on its own -- Slurm records COMPLETED -- and the model, the widget and the panel
    say "preempted"."""
    from sandfill.dask.widget import jobs_table_html

    c = FakeCluster()
    k = keeper(c, lost_worker_grace=0.0)
    now = time.time()
    c.submit("scav", "1", JobStatus("1", "RUNNING", start_time=now - 60, end_time=now + 3540, time_limit=3600, partition="scavenger"))
    c.connect("scav")
    k.target_jobs = 1
    await k.keep_once()
    assert len(c.worker_spec) == 1 and not c.scheduler_comm.retired
    c.poller.snap["1"] = JobStatus("1", "RUNNING", start_time=now - 60, end_time=now + 300, time_limit=3600, partition="scavenger")
    await k.keep_once()
    assert c.scheduler_comm.retired == [["scav"]] and len(c.worker_spec) == 2  # its replacement
    c.scheduler_info["workers"].clear()  # its worker retired; the job is still ending
    await k.keep_once()
    assert not c.slurm.cancelled and "scav" in c.worker_spec and c.scheduler_comm.retired == [["scav"]]
    c.poller.snap["1"] = JobStatus("1", "COMPLETED", start_time=now - 60, end_time=now + 5, partition="scavenger")
    await k.keep_once()
    assert "scav" not in c.worker_spec and len(c.worker_spec) == 1
    (ended,) = [j for j in k.jobs() if j.state == "ended"]
    assert (ended.job_id, ended.ended_why) == ("1", "preempted")
    assert "preempted" in jobs_table_html({"jobs": [ended.to_dict()], "now": now})


async def test_a_preempted_job_whose_workers_cannot_hand_over_is_cancelled_now() -> None:
    """Every worker preempted at once: retirement finds no worker to take the data, so the
    job is cancelled at once (its results would be lost at the grace time's end anyway) and
    the preemptor need not wait out the grace time; a job Slurm started with less than it
    asked for (--time-min: its end is its start plus its limit) is not taken for preempted."""

    class NoRecipients(FakeComm):
        async def retire_workers(self, names: list[str], **kw: Any) -> dict[str, Any]:
            self.retired.append(names)
            return {}  # "Could not retire worker ...: unique data could not be moved"

    c = FakeCluster()
    c.scheduler_comm = NoRecipients()
    k = keeper(c)
    now = time.time()
    c.submit("a", "1", JobStatus("1", "RUNNING", start_time=now - 60, end_time=now + 20, time_limit=3600))
    c.submit("b", "2", JobStatus("2", "RUNNING", start_time=now - 60, end_time=now + 540, time_limit=600))
    c.connect("a")
    c.connect("b")
    k.target_jobs = 2
    await k.keep_once()
    assert c.scheduler_comm.retired == [["a"]] and c.slurm.cancelled == ["1"]
    assert k.info["a"].why == "preempted" and not k.info["b"].retiring
