"""The gap planner's arithmetic against a scripted Slurm (pure logic; the real thing is in
test_cluster.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sandfill.dask.planner import GapPlanner
from sandfill.slurm import SlurmCommandError
from sandfill.slurm.sbatch import TestOnlyAnswer
from sandfill.slurm.scontrol import Reservation, parse_reservations
from sandfill.slurm.sinfo import SinfoNode, parse_sinfo_nodes
from sandfill.slurm.squeue import parse_planned_starts
from sandfill.units import parse_timestamp

pytestmark = pytest.mark.asyncio
DATA = Path(__file__).resolve().parents[1] / "slurm" / "data"


def _ts(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t))


class FakeSlurm:
    """Answers the planner's questions from Slurm's text, read by sandfill.slurm's parsers."""

    def __init__(self, sinfo: str, squeue: str, res: str = "", test_only_start: float | None = None) -> None:
        self.out = {"sinfo": sinfo, "squeue": squeue, "scontrol": res}
        self.calls: list[str] = []
        self.test_only_start = test_only_start

    async def nodes(self, partition: str | None = None) -> list[SinfoNode]:
        self.calls.append("sinfo")
        return parse_sinfo_nodes(self.out["sinfo"])

    async def planned_starts(self) -> dict[str, float]:
        self.calls.append("squeue")
        return parse_planned_starts(self.out["squeue"])

    async def reservations(self) -> list[Reservation]:
        self.calls.append("scontrol")
        if self.out["scontrol"] is None:
            raise SlurmCommandError(["scontrol"], 1, "", "Unable to contact slurm controller")
        return parse_reservations(self.out["scontrol"])

    async def test_only(self, script: str, args: list[str]) -> TestOnlyAnswer:
        self.calls.append("test-only")
        return TestOnlyAnswer(self.test_only_start or time.time(), 1, "node1", "burst")


def _sinfo(free: dict[str, int], limit: str = "1:00:00") -> str:
    return "\n".join(f"{n}|burst|mix|{8 - f}/{f}/0/8|16000|16000|{limit}" for n, f in free.items())


async def test_walltime_ends_before_the_reservation() -> None:
    now = time.time()
    fake = FakeSlurm(_sinfo({"node1": 2, "node2": 2}), f"{_ts(now + 600)}|node[1-2]\n")
    p = GapPlanner(fake, ttl=60, safety=60)  # type: ignore[arg-type]
    plan = await p.pick(cores=1, memory_mb=1000, partition="burst", qos=None, min_walltime=120, max_walltime=3600, now=now)
    assert plan.fits_now and not plan.hold
    assert 120 <= plan.walltime <= 600 - 60 and plan.walltime % 60 == 0
    assert now + plan.walltime <= now + 600  # ends before the planned start


async def test_longest_gap_wins_and_capped_by_max_and_partition() -> None:
    now = time.time()
    fake = FakeSlurm(_sinfo({"node1": 2, "node2": 2}, limit="30:00"), f"{_ts(now + 600)}|node1\n")
    p = GapPlanner(fake, ttl=60)  # type: ignore[arg-type]
    plan = await p.pick(cores=1, memory_mb=1, partition="burst", qos=None, min_walltime=60, max_walltime=3600, now=now)
    assert plan.node == "node2" and plan.walltime == 1800  # partition MaxTime 30 min


async def test_no_gap_before_a_planned_start_holds_the_job() -> None:
    now = time.time()
    fake = FakeSlurm(_sinfo({"node1": 2}), f"{_ts(now + 90)}|node1\n")
    p = GapPlanner(fake, ttl=60)  # type: ignore[arg-type]
    plan = await p.pick(cores=1, memory_mb=1, partition="burst", qos=None, min_walltime=300, max_walltime=3600, now=now)
    assert plan.hold and not plan.fits_now and plan.walltime == 300  # the shortest useful
    assert "waiting for a gap" in plan.why


async def test_full_cluster_without_reservation_queues_shortest_walltime() -> None:
    fake = FakeSlurm(_sinfo({"node1": 0}), "")
    p = GapPlanner(fake, ttl=60)  # type: ignore[arg-type]
    plan = await p.pick(cores=1, memory_mb=1, partition="burst", qos=None, min_walltime=300, max_walltime=3600)
    assert not plan.fits_now and not plan.hold and plan.walltime == 300


async def test_one_look_serves_many_jobs_and_books_cpus() -> None:
    fake = FakeSlurm(_sinfo({"node1": 3, "node2": 2}), "")
    p = GapPlanner(fake, ttl=3600)  # type: ignore[arg-type]
    plans = [await p.pick(cores=1, memory_mb=1, partition="burst", qos=None, min_walltime=60, max_walltime=600) for _ in range(7)]
    assert [pl.fits_now for pl in plans] == [True] * 5 + [False] * 2  # only 5 free CPUs
    assert sorted(pl.node for pl in plans[:5]) == ["node1"] * 3 + ["node2"] * 2
    assert fake.calls.count("sinfo") == 1 and fake.calls.count("test-only") == 1
    assert p.probes == 4


async def test_slurm_refusing_the_shape_means_no_gap() -> None:
    fake = FakeSlurm(_sinfo({"node1": 4}), "", test_only_start=time.time() + 3600)
    p = GapPlanner(fake, ttl=60)  # type: ignore[arg-type]
    plan = await p.pick(cores=1, memory_mb=1, partition="burst", qos="capped", min_walltime=60, max_walltime=600)
    assert not plan.fits_now and "would not start now" in plan.why


async def test_the_picture_from_recorded_slurm_output() -> None:
    """Slurm 22.05's own output: 6 of 8 CPUs taken on node1-3, a 4-node job planned on
    node[1-4] and a maintenance reservation on node[3-4]."""
    fake = FakeSlurm(
        (DATA / "sinfo_nodes_burst.txt").read_text(),
        (DATA / "squeue_planned_starts.txt").read_text(),
        (DATA / "scontrol_show_res.txt").read_text(),
    )
    view = await GapPlanner(fake)._look("burst")  # type: ignore[arg-type]
    assert view.free_cpus == {"node1": 2, "node2": 2, "node3": 2, "node4": 8}
    assert view.free_mem_mb["node1"] == 22525 and view.partition_max == 3600
    planned = parse_timestamp("2026-12-01T09:11:47")
    assert view.blocked_from == {n: planned for n in ("node1", "node2", "node3", "node4")}  # the job is first
    fake.out["squeue"] = ""
    view = await GapPlanner(fake)._look("burst")  # type: ignore[arg-type]
    assert view.blocked_from == {n: parse_timestamp("2026-12-01T11:06:49") for n in ("node3", "node4")}
    fake.out["scontrol"] = None  # type: ignore[assignment]  # the controller will not say: no reservations
    assert (await GapPlanner(fake)._look("burst")).blocked_from == {}  # type: ignore[arg-type]


async def test_next_planned_start_is_the_gaps_end_from_the_last_look() -> None:
    """What the lab panel's timeline marks as the bound of the gap: the first planned start on
    the partition's usable nodes, from the cached picture (no Slurm call of its own)."""
    now = time.time()
    fake = FakeSlurm(_sinfo({"node1": 2, "node2": 2}), f"{_ts(now + 900)}|node2\n{_ts(now + 600)}|node9\n")
    p = GapPlanner(fake, ttl=60)  # type: ignore[arg-type]
    assert p.next_planned_start("burst") is None  # no look yet
    await p.pick(cores=1, memory_mb=1, partition="burst", qos=None, min_walltime=60, max_walltime=3600, now=now)
    calls = len(fake.calls)
    assert p.next_planned_start("burst") == parse_timestamp(_ts(now + 900))  # node9 is not the partition's
    assert len(fake.calls) == calls and p.next_planned_start("other") is None


async def test_under_a_hub_the_picture_comes_from_the_service_and_only_test_only_asks_slurm() -> None:
    now = time.time()
    slurm = FakeSlurm("", "")  # the user's own Slurm client: nothing of the picture comes from it
    service = FakeSlurm(_sinfo({"node1": 2, "node2": 2}), f"{_ts(now + 600)}|node[1-2]\n")  # the service's view
    p = GapPlanner(slurm, ttl=60, safety=60, schedule=service)  # type: ignore[arg-type]
    plan = await p.pick(cores=1, memory_mb=1000, partition="burst", qos=None, min_walltime=120, max_walltime=3600, now=now)
    assert plan.fits_now and 120 <= plan.walltime <= 600 - 60
    assert sorted(service.calls) == ["scontrol", "sinfo", "squeue"] and slurm.calls == ["test-only"]
