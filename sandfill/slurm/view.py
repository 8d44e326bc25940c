"""What the scheduler offers a user: partitions with live availability (``sinfo``), the
user's associations (``sacctmgr``), and the position of pending jobs in their partition.

Every query is cached for a few seconds and concurrent callers share one command, so the
number of Slurm RPCs does not grow with the number of users looking at the form or
waiting on the pending page.

:class:`ServiceSchedule` asks the gap planner's questions (nodes, planned starts,
reservations) of the hub's ``sandfill`` service instead (its one anonymous
``api/schedule`` for the whole cluster), and of Slurm only when the service cannot say.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sandfill.slurm.client import SlurmClient
from sandfill.slurm.commands import SlurmCommandError
from sandfill.slurm.poller import QueuePoller
from sandfill.slurm.remote import RemotePoller, ServiceError
from sandfill.slurm.sacctmgr import Association
from sandfill.slurm.scontrol import Reservation
from sandfill.slurm.sinfo import PartitionInfo, SinfoNode

T = TypeVar("T")

log = logging.getLogger("sandfill.slurm.view")


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

    async def reservations(self) -> list[Reservation]:
        """Every advance reservation (``scontrol show reservation``), cached like the nodes."""
        return await self._short.get("reservations", self.client.reservations)

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


class ServiceSchedule:
    """The gap planner's schedule questions (those of :class:`SlurmClient`: ``nodes``,
    ``planned_starts``, ``reservations``), answered from the sandfill service's one anonymous
    ``api/schedule`` picture, fetched at most every ``ttl`` seconds and shared by concurrent
    callers. A question the service cannot answer (it is down, or its own Slurm query
    failed) goes to ``client``, as outside a hub."""

    def __init__(self, service: RemotePoller, client: SlurmClient, *, ttl: float = 5.0) -> None:
        self.service = service
        self.client = client
        self._cached = _Cached(ttl)
        self.fallbacks = 0  # questions Slurm answered instead

    async def _picture(self) -> dict[str, Any] | None:
        try:
            return await self._cached.get("schedule", lambda: asyncio.to_thread(self.service.schedule))
        except ServiceError as exc:
            log.info("%s; asking Slurm for the schedule", exc)
            return None

    async def _part(self, key: str, check: Callable[[Any], T]) -> T | None:
        pic = await self._picture()
        if pic is None or pic.get("errors") or key not in pic:
            self.fallbacks += 1
            return None
        try:
            return check(pic[key])
        except (TypeError, ValueError, KeyError) as exc:
            log.info("the sandfill service's schedule has an unreadable %s (%s); asking Slurm", key, exc)
            self.fallbacks += 1
            return None

    async def nodes(self, partition: str | None = None) -> list[SinfoNode]:
        rows = await self._part("nodes", _nodes)
        if rows is None:
            return await self.client.nodes(partition)
        return [r for r in rows if partition is None or r["partition"] == partition]

    async def planned_starts(self) -> dict[str, float]:
        planned = await self._part("planned_starts", lambda d: {str(n): float(t) for n, t in d.items()})
        return planned if planned is not None else await self.client.planned_starts()

    async def reservations(self) -> list[Reservation]:
        res = await self._part("reservations", _reservations)
        return res if res is not None else await self.client.reservations()


def _nodes(rows: list[dict[str, Any]]) -> list[SinfoNode]:
    keys = SinfoNode.__annotations__
    return [SinfoNode(**{k: row[k] for k in keys}) for row in rows]  # type: ignore[typeddict-item]


def _reservations(rows: list[dict[str, Any]]) -> list[Reservation]:
    def when(v: Any) -> float | None:
        return None if v is None else float(v)

    return [Reservation("", when(r["start"]), when(r["end"]), tuple(str(n) for n in r["nodes"])) for r in rows]


def schedule_for(poller: QueuePoller, client: SlurmClient) -> ServiceSchedule | SlurmClient:
    """Where a process's gap planner reads the schedule: the service when ``poller`` is the
    service's (:func:`sandfill.slurm.remote.poller_for` under a hub), else Slurm."""
    return ServiceSchedule(poller, client) if isinstance(poller, RemotePoller) else client
