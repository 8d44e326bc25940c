"""sandfill.dask.placement: tasks that declare a duration start only on workers that live that
long. Fast tests run a real in-process PlacementScheduler with real workers, each given a
fake end (no Slurm); the live test (marked ``slurm``) runs a BackfillSLURMCluster."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dask
import pytest
from distributed import Client, SpecCluster, Worker
from distributed.core import Status
from distributed.diagnostics.plugin import SchedulerPlugin

from sandfill.dask.keeper import JobInfo, Keeper
from sandfill.dask.placement import PlacementScheduler, TimeLeftFeed, parse_duration_annotation
from sandfill.dask.planner import Plan
from sandfill.slurm import JobStatus
from sandfill.slurm.commands import wait_until


class Placements(SchedulerPlugin):
    """Every task's placements, in order: (key, state, worker name or None)."""

    def __init__(self, scheduler: Any) -> None:
        self.scheduler = scheduler
        self.log: list[tuple[Any, str, str | None]] = []

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        if finish in {"processing", "no-worker", "queued"}:
            ts = self.scheduler.tasks.get(key)
            ws = ts.processing_on if ts is not None else None
            self.log.append((key, finish, str(ws.name) if ws is not None else None))

    def workers_of(self, keys: Any) -> set[str | None]:
        keys = set(keys)
        return {w for k, state, w in self.log if k in keys and state == "processing"}


@contextmanager
def cluster(**workers: int) -> Iterator[tuple[SpecCluster, Client, Placements]]:
    """An in-process PlacementScheduler with one single-thread worker per name; each worker
    stops taking work after the seconds given (from now)."""
    spec = {name: {"cls": Worker, "options": {"nthreads": 1}} for name in workers}
    sched = {"cls": PlacementScheduler, "options": {"dashboard_address": ":0", "host": "127.0.0.1", "validate": True}}
    with SpecCluster(workers=spec, scheduler=sched) as c, Client(c) as client:
        client.wait_for_workers(len(workers), timeout=30)
        log = Placements(c.scheduler)

        async def plug() -> None:  # the scheduler runs in this process: the plugin is this object
            c.scheduler.add_plugin(log)

        c.sync(plug)
        set_ends(c, **workers)
        yield c, client, log


def set_ends(c: SpecCluster, **left: float) -> None:
    """Tell the scheduler (on its own loop) each worker's seconds left from now."""
    now = time.time()
    ends = {name: now + s for name, s in left.items()}

    async def feed() -> None:
        c.scheduler.set_worker_ends(ends)

    c.sync(feed)


def add_worker(c: SpecCluster, client: Client, name: str) -> None:
    c.worker_spec[name] = {"cls": Worker, "options": {"nthreads": 1}}
    c.sync(c._correct_state)
    client.wait_for_workers(len(c.worker_spec), timeout=30)


def state_of(c: SpecCluster, key: Any) -> str | None:
    ts = c.scheduler.tasks.get(key)
    return ts.state if ts is not None else None


def test_an_annotated_task_is_never_placed_on_a_worker_whose_life_is_too_short() -> None:
    """40 annotated tasks (root-ish: Dask would queue them) and their reduction, with an idle
    short-lived worker next to a busy long-lived one that stealing would relieve: all run on
    the long one. The same tasks unannotated use both workers."""

    def work(i: int) -> int:
        t = time.monotonic() + 0.05  # a little CPU-bound work
        while time.monotonic() < t:
            pass
        return i

    with cluster(short=120, long=3600) as (c, client, log):
        with dask.annotate(duration="10m"):
            futures = client.map(work, range(40), pure=False)
            total = client.submit(sum, futures, pure=False)
        assert total.result(timeout=60) == sum(range(40))
        assert log.workers_of([f.key for f in [*futures, total]]) == {"long"}
        plain = client.map(work, range(40), pure=False)
        client.gather(plain)
        assert log.workers_of(f.key for f in plain) == {"short", "long"}  # unannotated: as Dask places them


def test_an_annotated_task_waits_when_no_worker_has_the_time_and_runs_when_one_joins() -> None:
    with cluster(short=60) as (c, client, log):
        with dask.annotate(duration="10m"):
            long_task = client.submit(lambda: "done", key="needs-10m")
        wait_until("the task to wait for a worker", lambda: state_of(c, "needs-10m") == "no-worker", timeout=30)
        assert client.submit(lambda: 1, key="plain").result(timeout=30) == 1  # the short worker serves the rest
        assert log.workers_of(["plain"]) == {"short"} and state_of(c, "needs-10m") == "no-worker"
        set_ends(c, short=60, long=3600)  # the keeper knows the next job's end before its worker joins
        add_worker(c, client, "long")
        assert long_task.result(timeout=30) == "done"
        assert log.workers_of(["needs-10m"]) == {"long"}


def test_a_waiting_task_runs_once_the_keeper_learns_a_connected_workers_end() -> None:
    """A worker whose job's end the keeper does not know yet has no time to give; when the
    end arrives the waiting task goes to it (no worker needs to join)."""
    with cluster(short=60) as (c, client, log):
        add_worker(c, client, "unknown")
        with dask.annotate(duration=600):
            f = client.submit(lambda: 2, key="needs-600s")
        wait_until("the task to wait for a worker", lambda: state_of(c, "needs-600s") == "no-worker", timeout=30)
        set_ends(c, short=60, unknown=7200)
        assert f.result(timeout=30) == 2
        assert log.workers_of(["needs-600s"]) == {"unknown"}


def test_the_declared_duration_holds_over_allow_other_workers() -> None:
    with cluster(short=60, long=3600) as (c, client, log):
        with dask.annotate(duration="10m"):
            f = client.submit(lambda: 3, key="loose", workers=["short"], allow_other_workers=True)
        assert f.result(timeout=30) == 3
        assert log.workers_of(["loose"]) == {"long"}


@pytest.mark.parametrize("bad", ["ten minutes", "soon", "-5m", True, [600], float("inf"), -1])
def test_a_duration_that_is_not_a_duration_fails_the_submission_naming_it(bad: Any) -> None:
    with cluster(long=3600) as (c, client, log):
        with dask.annotate(duration=bad):
            f = client.submit(lambda: 1, key="bad-duration")
        with pytest.raises(ValueError, match=f"'duration' annotation.* is {re.escape(repr(bad))}, which is not a duration"):
            f.result(timeout=30)
        assert "bad-duration" not in log.workers_of(["bad-duration"]) and not log.log  # nothing ran
        # a collection: every key of the graph fails, none is created
        with dask.annotate(duration=bad):
            d = dask.delayed(lambda x: x + 1)(1, dask_key_name="bad-delayed")
        with pytest.raises(ValueError, match="not a duration"):
            client.compute(d).result(timeout=30)
        assert state_of(c, "bad-delayed") in {None, "forgotten"} and not log.log
        assert client.submit(lambda: 4).result(timeout=30) == 4  # the scheduler lives on


def test_durations_parse_as_dask_reads_them() -> None:
    assert parse_duration_annotation("10m") == 600
    assert parse_duration_annotation(90) == 90 and parse_duration_annotation("2h") == 7200
    assert parse_duration_annotation(0) == 0
    with pytest.raises(ValueError, match="of task 'k' is 'x'"):
        parse_duration_annotation("x", "k")


class FakeScheduler:
    def __init__(self, longest: float) -> None:
        self.longest = longest
        self.ends: list[dict[str, float]] = []

    def longest_waiting(self) -> float:
        return self.longest

    def set_worker_ends(self, ends: dict[str, float]) -> None:
        self.ends.append(dict(ends))


def test_a_new_job_is_sized_for_the_longest_declared_duration_waiting() -> None:
    shape = {"cores": 1, "memory_mb": 1000, "partition": "burst", "qos": None, "min_walltime": 300.0, "max_walltime": 1800.0}
    feed = TimeLeftFeed(FakeScheduler(0), retire_margin=60, slack=60)  # type: ignore[arg-type]
    assert feed.sized(shape) is shape  # nothing waits: as configured
    feed = TimeLeftFeed(FakeScheduler(600), retire_margin=60, slack=60)  # type: ignore[arg-type]
    assert feed.sized(shape) == {**shape, "min_walltime": 720.0}  # 10 min + margin + slack
    feed = TimeLeftFeed(FakeScheduler(2 * 3600 + 1), retire_margin=60, slack=60)  # type: ignore[arg-type]
    big = feed.sized(shape)  # beyond max-walltime: the planner caps it at the partition's MaxTime
    assert big["min_walltime"] == big["max_walltime"] == 2 * 3600 + 180


class _Poller:
    def __init__(self, snap: dict[str, JobStatus]) -> None:
        self.snap = snap

    def snapshot(self) -> dict[str, JobStatus]:
        return dict(self.snap)

    def watch(self, job_id: str) -> None: ...


class _Planner:
    ttl = 10.0

    def __init__(self) -> None:
        self.shapes: list[dict[str, Any]] = []

    async def pick(self, **shape: Any) -> Plan:
        self.shapes.append(shape)
        return Plan(int(shape["min_walltime"]), None, True, "node1", "fits on node1")


class _Cluster:
    """What one keeper round reads of its cluster: two running worker jobs."""

    def __init__(self, snap: dict[str, JobStatus]) -> None:
        self.status = Status.running
        self.worker_spec: dict[str, dict[str, Any]] = {"w1": {"options": {}}, "w2": {"options": {}, "group": ["-0", "-1"]}}
        self.workers: dict[str, Any] = {}
        self.scheduler_info: dict[str, Any] = {"workers": {}}
        self._shape = {"cores": 1, "memory_mb": 1000, "partition": "burst", "qos": None, "min_walltime": 300.0, "max_walltime": 600.0}
        self.poller = _Poller(snap)
        self.planner = _Planner()

    def new_worker_spec(self) -> dict[str, dict[str, Any]]:
        return {f"w{len(self.worker_spec) + 1}": {"options": {}}}

    async def _correct_state(self) -> None: ...


@pytest.mark.asyncio
async def test_the_keeper_feeds_worker_ends_and_sizes_new_jobs_for_what_waits() -> None:
    now = time.time()
    snap = {"1": JobStatus("1", "RUNNING", end_time=now + 900), "2": JobStatus("2", "RUNNING", end_time=now + 400)}
    c = _Cluster(snap)
    k = Keeper(c, retire_margin=60, replace_ahead=30, max_pending_jobs=8, interval=1, lost_worker_grace=10)  # type: ignore[arg-type]
    for name, job_id in (("w1", "1"), ("w2", "2")):
        k.info[name] = JobInfo(now, job_id=job_id)
    sched = FakeScheduler(1200)  # a task declared 20 min and waits
    k.placement = TimeLeftFeed(sched, retire_margin=60, slack=60)  # type: ignore[arg-type]
    k.target_jobs = 3
    await k.keep_once()
    assert sched.ends[-1] == {"w1": now + 840, "w2-0": now + 340, "w2-1": now + 340}
    assert c.planner.shapes[-1]["min_walltime"] == 1320 == c.planner.shapes[-1]["max_walltime"]
    k.info["w2"].retiring = True  # retiring workers take no task that declares a duration
    await k.keep_once()
    assert sched.ends[-1]["w2-0"] == 0.0


@pytest.mark.slurm
def test_a_long_annotated_task_lands_on_the_long_lived_worker_job(dask_cfg: dict[str, object]) -> None:
    """Live: a 3-minute worker job cannot give a task that declares 4 minutes the time, so
    the task waits; the next worker job is sized for it (4 min + retire-margin + slack, in
    whole minutes) and the task runs there, and only there (recorded placement)."""
    from sandfill.dask import BackfillSLURMCluster

    def whoami() -> str:
        from distributed import get_worker

        return str(get_worker().name)

    with dask.config.set({"jobqueue.sandfill.duration-slack": "30s"}), BackfillSLURMCluster(
        min_walltime="00:03:00", max_walltime="00:03:00", retire_margin="30s", replace_ahead="10s"
    ) as cluster, Client(cluster) as client:
        log = Placements(cluster.scheduler)
        cluster.sync(_plug, cluster, log)
        cluster.scale(1)
        client.wait_for_workers(1, timeout=90)
        (short,) = client.scheduler_info()["workers"].values()
        wait_until("the keeper to know the first job's end", lambda: short["name"] in cluster.scheduler.worker_ends, timeout=30)
        with dask.annotate(duration="4m"):
            task = client.submit(whoami, key="needs-4m", pure=False)
        assert client.submit(whoami, key="plain", pure=False).result(timeout=60) == short["name"]
        wait_until("the task to wait for a worker", lambda: state_of(cluster, "needs-4m") == "no-worker", timeout=30)
        cluster.scale(2)
        long_name = task.result(timeout=120)
        assert long_name != short["name"] and log.workers_of(["needs-4m"]) == {long_name}
        walltimes = {j.workers[0] if j.workers else j.job_id: j.walltime for j in cluster.jobs if j.state in {"running", "retiring"}}
        print("worker job walltimes:", walltimes)
        assert walltimes[short["name"]] == "00:03:00" and walltimes[long_name] == "00:05:00"


async def _plug(cluster: Any, log: Placements) -> None:
    cluster.scheduler.add_plugin(log)
