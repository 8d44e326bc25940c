"""sandfill.dask.preemption: a ``dask worker`` (nanny + worker process, as a worker job runs
it) that gets SIGTERM retires gracefully -- what it holds moves to another worker and
nothing is computed twice -- where stock ``dask worker`` loses it. No Slurm here: the
signal is sent as Slurm's process tracking sends it (to every process of the job), or to
the nanny alone."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from typing import Any

import pytest
from distributed import Client, Scheduler
from distributed.diagnostics.plugin import SchedulerPlugin

from sandfill.dask.preemption import WORKER_ARGS
from sandfill.slurm.commands import wait_until


class Processed(SchedulerPlugin):
    """How often each key was sent to a worker to compute."""

    def __init__(self) -> None:
        self.count: Counter[str] = Counter()

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        if finish == "processing":
            self.count[str(key)] += 1


def _worker(address: str, name: str, preload: bool) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "distributed.cli.dask_worker", address, "--name", name,
            "--nthreads", "1", "--nanny", "--no-dashboard", "--host", "127.0.0.1"]
    return subprocess.Popen(argv + (WORKER_ARGS if preload else []), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def _until(cond: Any, timeout: float, what: str) -> None:
    await asyncio.to_thread(wait_until, what, cond, timeout, interval=0.2)


async def _terminate_one_of_two(preload: bool, target: str) -> tuple[Client, Any, Any, Processed, Any]:
    """Two workers; a scattered value and a computed result live on worker ``a`` only; then
    ``a`` gets SIGTERM (``target``: every process of it, or its nanny) and exits."""
    s = await Scheduler(host="127.0.0.1", port=0, dashboard_address=None)
    plugin = Processed()
    s.add_plugin(plugin, name="processed")
    procs = {n: _worker(s.address, n, preload) for n in "ab"}
    client = await Client(s.address, asynchronous=True)
    try:
        await client.wait_for_workers(2, timeout=60)
        addr = {ws.name: ws.address for ws in s.workers.values()}

        def square(x: int) -> int:  # defined here: sent by value (workers cannot import tests)
            return x * x

        [data] = await client.scatter([list(range(1000))], workers=[addr["a"]])
        result = client.submit(square, 12, workers=[addr["a"]], allow_other_workers=True, key="square-12")
        await result
        a = procs["a"]
        if target == "group":
            os.killpg(a.pid, signal.SIGTERM)
        else:
            os.kill(a.pid, signal.SIGTERM)
        await _until(lambda: a.poll() is not None, 60, "worker a exits after SIGTERM")
        await _until(lambda: len(s.workers) == 1, 30, "the scheduler forgets worker a")
        return client, data, result, plugin, (s, procs)
    except BaseException:
        await _cleanup(client, (s, procs))
        raise


async def _cleanup(client: Client, rest: Any) -> None:
    s, procs = rest
    await client.close()
    for p in procs.values():
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    await s.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("target", ["group", "nanny"])
async def test_a_worker_given_sigterm_hands_its_data_over_and_nothing_is_recomputed(target: str) -> None:
    client, data, result, plugin, rest = await _terminate_one_of_two(True, target)
    try:
        s = rest[0]
        (b,) = s.workers.values()
        assert b.name == "b"
        # the scattered value had one copy, on a: it can only be here because a moved it
        assert await client.gather(data) == list(range(1000))
        assert await result == 144
        assert plugin.count["square-12"] == 1  # moved, not recomputed
        assert {ts.key for ts in b.has_what} >= {data.key, "square-12"}
    finally:
        await _cleanup(client, rest)


@pytest.mark.asyncio
async def test_stock_dask_worker_loses_what_it_held_on_sigterm() -> None:
    """The control: without the preload the same SIGTERM loses the scattered value (it
    cannot be recomputed) and the result is computed again."""
    client, data, result, plugin, rest = await _terminate_one_of_two(False, "group")
    try:
        assert await result == 144
        assert plugin.count["square-12"] == 2
        assert data.status in {"lost", "cancelled", "error"} or data.key not in rest[0].tasks
    finally:
        await _cleanup(client, rest)


def _slurm_conf(tmp_path: Any, roles: dict[str, str]) -> str:
    from sandfill.slurm.policy_meta import GENERATED, metadata_line

    meta = {"name": "p", "roles": roles, "tiers": {"scav": "scavenger", "burst": "burst", "batch": "batch"}}
    (tmp_path / "policy.conf").write_text(f"{GENERATED} from policy 'p'; do not edit.\n{metadata_line(meta)}\n")
    (tmp_path / "slurm.conf").write_text("ClusterName=x\nInclude policy.conf\n")
    return str(tmp_path / "slurm.conf")


def test_preemptable_workers_go_to_the_policys_preemptable_tier(tmp_path: Any) -> None:
    from sandfill.dask.cluster import _worker_queue

    conf = _slurm_conf(tmp_path, {"dask-workers": "burst", "dask-preemptable": "scav", "default": "batch"})
    assert _worker_queue(conf, None, True) == "scavenger"
    assert _worker_queue(conf, None, False) == "burst"
    assert _worker_queue(conf, "batch", False) == "batch"


@pytest.mark.parametrize(
    ("roles", "queue", "flag", "needle"),
    [
        ({"default": "batch"}, None, True, "names no 'dask-preemptable' role"),  # never the default tier
        ({"dask-preemptable": "scav", "default": "batch"}, "burst", True, "queue='burst' names a partition too"),
        ({"dask-preemptable": "scav", "default": "batch"}, None, "yes", "jobqueue.sandfill.preemptable: must be true or false, not 'yes'"),
    ],
)
def test_preemptable_placement_refuses_what_would_not_give_way(
    tmp_path: Any, roles: dict[str, str], queue: str | None, flag: Any, needle: str
) -> None:
    from sandfill.dask.cluster import _worker_queue

    with pytest.raises(ValueError) as err:
        _worker_queue(_slurm_conf(tmp_path, roles), queue, flag)
    assert needle in str(err.value)


def test_the_packaged_config_places_no_worker_on_a_preemptable_tier_unless_asked() -> None:
    import dask

    import sandfill.dask.config  # noqa: F401 (loads the packaged defaults)

    assert dask.config.get("jobqueue.sandfill.preemptable") is False
