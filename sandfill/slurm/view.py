"""What the scheduler offers a user: partitions with live availability (``sinfo``), the
user's associations (``sacctmgr``), and the position of pending jobs in their partition.

Every query is cached for a few seconds and concurrent callers share one command, so the
number of Slurm RPCs does not grow with the number of users looking at the form or
waiting on the pending page.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sandfill.slurm.client import SlurmClient
from sandfill.slurm.commands import SlurmCommandError
from sandfill.units import parse_slurm_time

T = TypeVar("T")
_USER = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")


@dataclass(frozen=True)
class PartitionInfo:
    name: str
    up: bool
    max_time_s: int | None  # None: unlimited
    cpus_per_node: int
    nodes: int
    cpus_alloc: int
    cpus_idle: int
    cpus_total: int
    memory_mb: int | None  # per node

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Association:
    account: str
    partition: str | None  # None: any partition
    qos: tuple[str, ...]


def _leading_int(text: str) -> int | None:
    m = re.match(r"\d+", text.strip())
    return int(m.group()) if m else None


def parse_sinfo_partitions(stdout: str) -> dict[str, PartitionInfo]:
    """``sinfo -h -o '%R|%a|%l|%c|%D|%C|%m'``."""
    out: dict[str, PartitionInfo] = {}
    for line in stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 7:
            continue
        name, avail, limit, cpus, nodes, cstate, mem = parts
        try:
            a, i, _o, t = (int(x) for x in cstate.split("/"))
        except ValueError:
            continue
        out[name] = PartitionInfo(
            name=name,
            up=avail.strip().lower() == "up",
            max_time_s=parse_slurm_time(limit),
            cpus_per_node=_leading_int(cpus) or 1,
            nodes=_leading_int(nodes) or 0,
            cpus_alloc=a,
            cpus_idle=i,
            cpus_total=t,
            memory_mb=_leading_int(mem),
        )
    return out


def parse_associations(stdout: str) -> list[Association]:
    """``sacctmgr -n -P show assoc user=U format=Account,Partition,QOS``."""
    out = []
    for line in stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) < 3 or not parts[0]:
            continue
        out.append(Association(parts[0], parts[1] or None, tuple(q for q in parts[2].split(",") if q)))
    return out


def parse_pending(stdout: str) -> dict[str, tuple[int, int]]:
    """``squeue -h -t PD -o '%i|%P|%Q'`` → job id → (position, pending in that partition),
    1-based, highest priority first (ties by submission order, i.e. job id)."""
    by_part: dict[str, list[tuple[int, int, str]]] = {}
    for line in stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 3:
            continue
        jid, parts_s, prio = parts
        try:
            p = int(prio)
            n = int(jid.split("_")[0])
        except ValueError:
            continue
        for part in parts_s.split(","):
            by_part.setdefault(part, []).append((-p, n, jid))
    out: dict[str, tuple[int, int]] = {}
    for jobs in by_part.values():
        jobs.sort()
        for pos, (_p, _n, jid) in enumerate(jobs, 1):
            if jid not in out:
                out[jid] = (pos, len(jobs))
    return out


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
        async def fetch() -> dict[str, PartitionInfo]:
            res = await self.client.command(["sinfo", "-h", "-o", "%R|%a|%l|%c|%D|%C|%m"])
            return parse_sinfo_partitions(res.stdout)

        return await self._short.get("partitions", fetch)

    async def associations(self, user: str) -> list[Association]:
        if not _USER.match(user):
            return []

        async def fetch() -> list[Association]:
            res = await self.client.command(
                ["sacctmgr", "-n", "-P", "show", "assoc", f"user={user}", "format=Account,Partition,QOS"]
            )
            return parse_associations(res.stdout)

        return await self._long.get(f"assoc:{user}", fetch)

    async def pending_positions(self) -> dict[str, tuple[int, int]]:
        async def fetch() -> dict[str, tuple[int, int]]:
            res = await self.client.command(["squeue", "-h", "-t", "PD", "-o", "%i|%P|%Q"])
            return parse_pending(res.stdout)

        return await self._short.get("pending", fetch)

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
