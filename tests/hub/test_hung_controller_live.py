"""A slurmctld hung for 90 s (``SIGSTOP``, not stopped: every RPC to it blocks) while one
user's server runs, another's pends, and a Dask computation is mid-flight. Nothing may be
lost or forgotten, the hub keeps answering everyone, and all of it recovers on ``SIGCONT``."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from distributed import Client

from sandfill.dask import BackfillSLURMCluster
from sandfill.dev.devcluster import DevCluster
from sandfill.dev.testing import TestSlurm, sleep_script
from sandfill.slurm.commands import wait_until

Hub = Any  # the conftest's Hub helper (importlib mode: not importable by name)
HANG_S = 90
RUNNING_USER, PENDING_USER = "sftest-ada", "sftest-bob"
WHOLE_NODE = {"profile": "custom", "cpus": "8", "memory": "1G", "walltime": "01:00:00", "partition": "interactive"}


def fill_every_free_cpu(slurm: TestSlurm) -> list[str]:
    """'Rock' jobs on every idle CPU until none is left and every rock runs (CPUs a job
    just gave back may free a moment later): the next job pends."""
    ids: list[str] = []

    def full() -> bool:
        if not all(s.running for s in slurm.squeue_sync(ids).values()):
            return False  # the last rocks are not placed yet
        idle = {node: n for node, n in slurm.idle_cpus_sync().items() if n > 0}
        ids.extend(
            slurm.submit_sync(sleep_script(600), ["-p", "batch", "-w", node, "-c", str(n), "-t", "10", "-J", "rock", "-o", "/dev/null"])
            for node, n in idle.items()
        )
        return not idle

    wait_until("rocks on every CPU", full, timeout=90, interval=2)
    return ids


@contextmanager
def hung(devcluster: DevCluster) -> Iterator[int]:
    ctld = next(d for d in devcluster.daemons() if d.name == "slurmctld")
    os.kill(ctld.pid, signal.SIGSTOP)
    try:
        yield ctld.pid
    finally:
        os.kill(ctld.pid, signal.SIGCONT)


@pytest.mark.slurm
def test_a_controller_hung_for_90_s_loses_nothing(
    clean_servers: Hub, dask_cfg: dict[str, object], devcluster: DevCluster, slurm: TestSlurm
) -> None:
    def slow_square(x: int) -> int:  # defined here, so the workers get it by value (they
        time.sleep(1.5)  # cannot import a test module); a task's work, not synchronisation
        return x * x

    hub = clean_servers
    server_job = hub.spawn(RUNNING_USER)["job_id"]
    rocks: list[str] = []
    pending_job = None
    with BackfillSLURMCluster(min_walltime="00:05:00", max_walltime="00:15:00") as cluster, Client(cluster) as client:
        cluster.scale(2)
        client.wait_for_workers(2, timeout=120)
        workers = {j.job_id for j in cluster.jobs if j.state == "running"}
        try:
            rocks = fill_every_free_cpu(slurm)
            # a whole node's worth: CPUs a just-ended job gives back later cannot start it
            hub.spawn(PENDING_USER, WHOLE_NODE, wait=False)
            pending_job = wait_until("the second server to pend", lambda: (j := hub.job(PENDING_USER)[1])["state"] == "PENDING" and j["job_id"], timeout=60)
            futures = client.map(slow_square, range(60))  # ~45 s of work on 2 workers
            wait_until("the computation to be mid-flight", lambda: any(f.done() for f in futures), timeout=60)
            assert not all(f.done() for f in futures)

            with hung(devcluster):
                t_end = time.monotonic() + HANG_S

                def everyone_served_and_hang_over() -> bool:
                    # every call has its own socket timeout: a hub blocked on slurmctld fails here
                    run, pend = hub.server(RUNNING_USER), hub.server(PENDING_USER)
                    assert run is not None and run["ready"], "the running server was dropped"
                    assert pend is not None and pend["pending"] == "spawn", "the pending spawn was dropped"
                    assert hub.reach(RUNNING_USER) == 200
                    assert hub.job(RUNNING_USER)[1]["job_id"] == server_job
                    kept = {j.job_id: j.state for j in cluster.jobs}
                    assert set(kept) == workers, f"a worker job was replaced or added: {kept}"
                    assert all(s in ("running", "unknown") for s in kept.values()), f"a worker was given up: {kept}"
                    return time.monotonic() >= t_end

                wait_until(f"{HANG_S} s of a hung slurmctld", everyone_served_and_hang_over, timeout=HANG_S + 60, interval=3)
                # the computation went on without Slurm: the workers never needed it
                assert client.gather(futures) == [x * x for x in range(60)]

            # the controller answers again: every job is known, nothing was replaced or lost
            wait_until("the running server's job to read RUNNING", lambda: hub.job(RUNNING_USER)[1]["state"] == "RUNNING", timeout=60)
            assert hub.job(PENDING_USER)[1]["job_id"] == pending_job
            states = slurm.squeue_sync([server_job, pending_job, *workers])
            assert states[server_job].running and states[pending_job].state == "PENDING"
            assert all(states[w].running for w in workers)
            wait_until("the workers to read running again", lambda: {j.job_id for j in cluster.jobs if j.state == "running"} == workers, timeout=60)
            slurm.cancel_sync(rocks)
            rocks = []
            hub.wait_ready(PENDING_USER, timeout=120)  # the pending spawn completes after all
            assert hub.job(PENDING_USER)[1]["job_id"] == pending_job and hub.reach(PENDING_USER) == 200
        finally:
            slurm.cancel_sync(rocks)
    ours = set(slurm.user_job_ids_sync([RUNNING_USER, PENDING_USER]))
    assert ours == {server_job, pending_job}, "a job of sandfill's is untracked"
