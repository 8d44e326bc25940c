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
