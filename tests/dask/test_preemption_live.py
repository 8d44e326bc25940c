"""Preemption on the real devcluster: a cluster on the scavenger tier (the test policy gives
it ``GraceTime=20``) computes while batch jobs take its nodes back. The preempted workers
retire within the grace time (their results move, their tasks are rescheduled), the batch
job starts within the grace time plus a scheduler pass, the keeper replaces the workers, and
the computation finishes with every result and nothing computed twice; when every worker is
preempted at once, the computation waits and resumes once workers return.

Slurm 22.05 signals a preempted batch job only when its grace time is up (it moves the job's
end up at once), so the keeper, which sees that end in its shared poller, retires the workers
at once; a job that so ends on its own is COMPLETED in Slurm's words, "preempted" in the
model's."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import dask
import pytest
from distributed import Client
from distributed.diagnostics.plugin import SchedulerPlugin

from sandfill.dask import BackfillSLURMCluster
from sandfill.dev.testing import TestSlurm, sleep_script
from sandfill.slurm.commands import wait_until

GRACE = 20  # tests/data/devcluster-policy.yaml: tiers.scavenger.grace_time
PASS = 10  # one scheduler pass, and the queue poller's look at it (bf_interval is 5 s)


class Recomputed(SchedulerPlugin):
    """Keys sent to a worker again after they had been in memory (results lost and computed
    again), and how often each key was sent to compute."""

    def __init__(self) -> None:
        self.done: set[str] = set()
        self.recomputed: Counter[str] = Counter()
        self.processed: Counter[str] = Counter()

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        k = str(key)
        if finish == "memory":
            self.done.add(k)
        elif finish == "processing":
            self.processed[k] += 1
            if k in self.done:
                self.recomputed[k] += 1


def _preempt(slurm: TestSlurm, args: list[str], seconds: int) -> tuple[str, float]:
    """Submit a batch ("rock") job that needs the workers' nodes; its id and when it came."""
    return slurm.submit_sync(sleep_script(seconds), ["-p", "batch", "--exclusive", "-t", "2", "-J", "rock", *args]), time.time()


def _start_delay(slurm: TestSlurm, job: str, submitted: float) -> float:
    st = wait_until(f"batch job {job} to start", lambda: (s := slurm.squeue_sync([job])[job]).start_time and not s.pending and s,
                    timeout=GRACE + 60)
    return st.start_time - submitted


def _compute(client: Client, n: int, tag: str) -> list[Any]:
    def slow_square(i: int) -> int:  # defined here: sent by value (workers cannot import tests)
        import time as t

        t.sleep(0.25)
        return i * i

    return client.map(slow_square, range(n), key=[f"{tag}-{i}" for i in range(n)])


@pytest.mark.slurm
def test_preempted_workers_give_way_and_no_task_is_lost(dask_cfg: dict[str, object], slurm: TestSlurm) -> None:
    plugin = Recomputed()
    with dask.config.set({"jobqueue.sandfill.queue": None}), BackfillSLURMCluster(
        preemptable=True, cores=8, processes=1, memory="2GiB", min_walltime="00:05:00", max_walltime="00:10:00",
        retire_margin="30s", lost_worker_grace="30s",
    ) as cluster, Client(cluster) as client:
        assert cluster._dummy_job.partition == "scavenger"
        cluster.scheduler.add_plugin(plugin, name="recomputed")
        cluster.scale(2)
        client.wait_for_workers(2, timeout=90)
        jobs = {j.job_id: j.node for j in cluster.jobs if j.state == "running"}
        assert len(jobs) == 2 and len(set(jobs.values())) == 2, jobs  # a whole node each
        # -- one worker preempted: its results move to the other, nothing is computed twice
        futures = _compute(client, 600, "one")
        wait_until("a third of the tasks done", lambda: sum(f.done() for f in futures) >= 200, timeout=60)
        victim, node = next(iter(jobs.items()))
        rock, came = _preempt(slurm, ["-w", node], 8)
        delay = _start_delay(slurm, rock, came)
        assert sum(f.result(timeout=120) for f in futures) == sum(i * i for i in range(600))
        # it gave way before Slurm's kill at the grace time's end, so Slurm says COMPLETED
        assert slurm.squeue_sync([victim])[victim].state in {"COMPLETED", "PREEMPTED"}
        assert delay <= GRACE + PASS, f"the batch job waited {delay:.1f} s"
        assert sum(plugin.recomputed.values()) == 0, plugin.recomputed
        assert len(plugin.done) >= 600
        wait_until("the model says why", lambda: {j.job_id: j.ended_why for j in cluster.jobs}.get(victim) == "preempted",
                   timeout=30, describe=lambda: str([(j.job_id, j.state, j.ended_why) for j in cluster.jobs]))
        client.wait_for_workers(2, timeout=90)  # replaced through the gap planner
        # -- every worker preempted at once: the computation waits, and resumes on new workers
        before = {j.job_id for j in cluster.jobs if j.state == "running"}
        futures = _compute(client, 200, "all")
        wait_until("some tasks done", lambda: sum(f.done() for f in futures) >= 20, timeout=60)
        rock, came = _preempt(slurm, ["-N", "4"], 8)
        all_delay = _start_delay(slurm, rock, came)
        assert sum(f.result(timeout=150) for f in futures) == sum(i * i for i in range(200))
        states = slurm.squeue_sync(before)
        assert {s.state for s in states.values()} <= {"COMPLETED", "CANCELLED", "PREEMPTED"}, states
        assert all_delay <= GRACE + PASS, f"the batch job waited {all_delay:.1f} s"
        ended = {j.job_id: j.ended_why for j in cluster.jobs if j.state == "ended"}
        assert all(ended.get(j) == "preempted" for j in before | {victim}), ended
    print(f"preempted one worker: the batch job started {delay:.1f} s after it came (GraceTime {GRACE} s); "
          f"all at once: {all_delay:.1f} s; recomputed after the second: {sum(plugin.recomputed.values())} "
          f"(results lost with every worker: expected), tasks sent twice: {sum(c > 1 for c in plugin.processed.values())}")
