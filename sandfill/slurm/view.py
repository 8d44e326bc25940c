"""What the scheduler offers a user: partitions with live availability (``sinfo``), the
user's associations (``sacctmgr``), and the position of pending jobs in their partition.

Every query is cached for a few seconds and concurrent callers share one command, so the
number of Slurm RPCs does not grow with the number of users looking at the form or
waiting on the pending page.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sandfill.slurm.client import SlurmClient
from sandfill.slurm.commands import SlurmCommandError
from sandfill.slurm.sacctmgr import Association
from sandfill.slurm.sinfo import PartitionInfo, SinfoNode

T = TypeVar("T")


class _Cached:
    """One value per key, refreshed at most every ``ttl`` seconds; concurrent callers await
    the same query."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._values: dict[str, tuple[float, Any]] = {}
        self._inflight: dict[str, asyncio.Future[Any]] = {}
        self.queries = 0

    async def get(self, key: str, fetch: Callable[[], Awaitable[T]]) -> T:
        hit = self._values.get(key)
        if hit is not None and time.monotonic() - hit[0] < self.ttl:
            return hit[1]  # type: ignore[no-any-return]
        fut = self._inflight.get(key)
        if fut is not None:
            return await asyncio.shield(fut)  # type: ignore[no-any-return]
        fut = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        try:
            self.queries += 1
            value = await fetch()
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved: waiters re-raise it
            raise
        finally:
            self._inflight.pop(key, None)
        self._values[key] = (time.monotonic(), value)
        fut.set_result(value)
        return value


class SchedulerView:
    """Cached, read-only questions to one Slurm cluster."""

    def __init__(self, client: SlurmClient, *, ttl: float = 5.0, assoc_ttl: float = 60.0) -> None:
        self.client = client
        self._short = _Cached(ttl)
        self._long = _Cached(assoc_ttl)

    @property
    def queries(self) -> int:
        return self._short.queries + self._long.queries

    async def partitions(self) -> dict[str, PartitionInfo]:
        return await self._short.get("partitions", self.client.partitions)

    async def associations(self, user: str) -> list[Association]:
        return await self._long.get(f"assoc:{user}", lambda: self.client.associations(user))

    async def pending_positions(self) -> dict[str, tuple[int, int]]:
        return await self._short.get("pending", self.client.pending_positions)

    async def nodes(self) -> list[SinfoNode]:
        """Every node with its free CPUs (``sinfo``), cached like the partitions."""
        return await self._short.get("nodes", self.client.nodes)

    async def planned_starts(self) -> dict[str, float]:
        """Node → the earliest planned start of a pending job on it (``squeue --start``)."""
        return await self._short.get("planned", self.client.planned_starts)

    async def safe(self, coro: Awaitable[T], default: T) -> tuple[T, str | None]:
        """Run a query; on a Slurm error return ``default`` and the error text."""
        try:
            return await coro, None
        except SlurmCommandError as exc:
            return default, str(exc)


_views: dict[str | None, SchedulerView] = {}


def shared_view(slurm_conf: str | None) -> SchedulerView:
    """One view per Slurm cluster per process (like ``QueuePoller.shared``)."""
    view = _views.get(slurm_conf)
    if view is None:
        view = _views[slurm_conf] = SchedulerView(SlurmClient(slurm_conf))
    return view
