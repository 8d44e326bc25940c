"""``SchedulerView``: cached questions; concurrent callers share one command."""

from __future__ import annotations

import asyncio

import pytest

from sandfill.slurm import SlurmClient
from sandfill.slurm.commands import SlurmCommandError
from sandfill.slurm.sinfo import PartitionInfo
from sandfill.slurm.view import SchedulerView


class _Client(SlurmClient):
    def __init__(self) -> None:
        super().__init__("/nonexistent/slurm.conf")
        self.calls = 0
        self.fail = False

    async def partitions(self) -> dict[str, PartitionInfo]:
        self.calls += 1
        await asyncio.sleep(0)  # let the other callers arrive while this one is in flight
        if self.fail:
            raise SlurmCommandError(["sinfo"], 1, "", "Unable to contact slurm controller")
        return {"batch": PartitionInfo("batch", True, 3600, 8, 4, 0, 32, 32, 16000)}


@pytest.mark.asyncio
async def test_concurrent_callers_share_one_query_and_the_cache() -> None:
    client = _Client()
    view = SchedulerView(client, ttl=60)
    results = await asyncio.gather(*(view.partitions() for _ in range(10)))
    assert all(r == results[0] for r in results) and client.calls == 1
    await view.partitions()
    assert client.calls == 1 and view.queries == 1


@pytest.mark.asyncio
async def test_safe_returns_the_default_and_the_error() -> None:
    client = _Client()
    client.fail = True
    view = SchedulerView(client, ttl=0)
    value, err = await view.safe(view.partitions(), {})
    assert value == {} and err is not None and "Unable to contact" in err


class _Service:
    """The sandfill service's ``api/schedule`` (``RemotePoller.schedule``), or its failure."""

    def __init__(self, picture: dict[str, object]) -> None:
        self.picture = picture
        self.asked = 0
        self.down = False

    def schedule(self) -> dict[str, object]:
        from sandfill.slurm.remote import ServiceError

        self.asked += 1
        if self.down:
            raise ServiceError("the sandfill service does not answer: [Errno 111] Connection refused")
        return self.picture


class _Slurm(SlurmClient):
    def __init__(self) -> None:
        super().__init__("/nonexistent/slurm.conf")
        self.calls: list[str] = []

    async def nodes(self, partition: str | None = None) -> list:  # type: ignore[override,type-arg]
        self.calls.append(f"sinfo {partition}")
        return []

    async def planned_starts(self) -> dict[str, float]:
        self.calls.append("squeue --start")
        return {"node9": 1.0}

    async def reservations(self) -> list:  # type: ignore[override,type-arg]
        self.calls.append("scontrol")
        return []


def _row(node: str, partition: str, idle: int) -> dict[str, object]:
    return {"node": node, "partition": partition, "state": "mix", "alloc": 8 - idle, "idle": idle, "other": 0, "total": 8,
            "memory": 16000, "free_memory": 9000, "time_limit": 3600}


PICTURE = {
    "observed": 1.0,
    "nodes": [_row("node1", "batch", 7), _row("node1", "burst", 7), _row("node2", "burst", 0)],
    "planned_starts": {"node2": 1_800_000_000},
    "reservations": [{"nodes": ["node1"], "start": 1_800_000_100, "end": 1_800_003_700}],
    "errors": [],
}


@pytest.mark.asyncio
async def test_the_planners_three_questions_cost_one_service_call_and_no_slurm_call() -> None:
    from sandfill.slurm.view import ServiceSchedule

    service, slurm = _Service(PICTURE), _Slurm()
    sched = ServiceSchedule(service, slurm, ttl=60)  # type: ignore[arg-type]
    nodes, planned, res = await asyncio.gather(sched.nodes("burst"), sched.planned_starts(), sched.reservations())
    assert [(n["node"], n["idle"]) for n in nodes] == [("node1", 7), ("node2", 0)]
    assert planned == {"node2": 1_800_000_000.0}
    assert [(r.nodes, r.start, r.end) for r in res] == [(("node1",), 1_800_000_100.0, 1_800_003_700.0)]
    assert len(await sched.nodes()) == 3 and service.asked == 1 and slurm.calls == []


@pytest.mark.asyncio
@pytest.mark.parametrize("fault", ["down", "its own Slurm failed", "unreadable"])
async def test_what_the_service_cannot_say_is_asked_of_slurm(fault: str) -> None:
    from sandfill.slurm.view import ServiceSchedule

    service, slurm = _Service(dict(PICTURE)), _Slurm()
    if fault == "down":
        service.down = True
    elif fault == "unreadable":
        service.picture["planned_starts"] = {"node2": "soon"}
    else:
        service.picture["errors"] = ["squeue: error: Unable to contact slurm controller"]
    sched = ServiceSchedule(service, slurm, ttl=0)  # type: ignore[arg-type]
    assert await sched.planned_starts() == {"node9": 1.0}
    assert slurm.calls == ["squeue --start"] and sched.fallbacks == 1


def test_a_process_under_a_hub_plans_from_the_service_else_from_slurm() -> None:
    from sandfill.slurm.poller import QueuePoller
    from sandfill.slurm.remote import RemotePoller
    from sandfill.slurm.view import ServiceSchedule, schedule_for

    slurm = _Slurm()
    remote = RemotePoller("http://127.0.0.1:9/services/sandfill/", "server-token", slurm)
    sched = schedule_for(remote, slurm)
    assert isinstance(sched, ServiceSchedule) and sched.service is remote and sched.client is slurm
    assert schedule_for(QueuePoller(slurm), slurm) is slurm
