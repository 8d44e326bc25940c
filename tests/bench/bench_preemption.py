"""Benchmark (run on demand): a high-priority job arrives while preemptable workers compute.

One devcluster (4 nodes x 8 CPUs) booted with the shipped policy (scavenger: preempt_mode
cancel, GraceTime 60 s). Each contender runs 2 worker jobs of 8 CPUs on the scavenger tier
and a computation of ``--tasks`` 0.25 s tasks plus one scattered value on the worker that
will be preempted; once a third of the tasks are done, a batch job asks for that worker's
node (``--exclusive``):

  sandfill   BackfillSLURMCluster(preemptable=True): workers retire on SIGTERM, replaced
  plain      dask-jobqueue SLURMCluster on the same partition (stock ``dask worker``)

Printed per contender: the batch job's start delay against GraceTime, whether the
computation's result is correct, lost results (the scattered value: it cannot be
recomputed), recomputed tasks (results lost and computed again), and the wall time.

    .venv/bin/python tests/bench/bench_preemption.py [--tasks 600]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from distributed.diagnostics.plugin import SchedulerPlugin

GRACE = 60  # policies/default.yaml: tiers.scavenger.grace_time


class Recomputed(SchedulerPlugin):
    """Keys sent to compute again after they had been in memory."""

    def __init__(self) -> None:
        self.done: set[str] = set()
        self.recomputed: Counter[str] = Counter()

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        if finish == "memory":
            self.done.add(str(key))
        elif finish == "processing" and str(key) in self.done:
            self.recomputed[str(key)] += 1


def _cluster(name: str, root: Path) -> Any:
    if name == "sandfill":
        from sandfill.dask import BackfillSLURMCluster

        return BackfillSLURMCluster(preemptable=True, cores=8, memory="2GiB", min_walltime="00:05:00",
                                    max_walltime="00:20:00", lost_worker_grace="90s")
    from dask_jobqueue import SLURMCluster

    (root / "tls").mkdir(mode=0o700, exist_ok=True)
    return SLURMCluster(queue="scavenger", cores=8, processes=1, memory="2GiB", walltime="00:20:00", security=True,
                        shared_temp_directory=str(root / "tls"), log_directory=str(root / "logs"),
                        scheduler_options={"host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"})


def _run(name: str, slurm: Any, root: Path, tasks: int) -> dict[str, Any]:
    from distributed import Client

    from sandfill.dev.testing import sleep_script
    from sandfill.slurm.commands import wait_until

    def slow_square(i: int) -> int:
        import time as t

        t.sleep(0.25)
        return i * i

    plugin = Recomputed()
    t0 = time.monotonic()
    with _cluster(name, root) as cluster, Client(cluster) as client:
        cluster.scheduler.add_plugin(plugin, name="recomputed")
        cluster.scale(2)
        client.wait_for_workers(2, timeout=180)
        info = client.scheduler_info(n_workers=-1)["workers"]
        victim_addr = sorted(info)[0]
        victim_host = _job_node(cluster, slurm, str(info[victim_addr]["name"]))
        [kept] = client.scatter([list(range(1000))], workers=[victim_addr])
        futures = client.map(slow_square, range(tasks), key=[f"t-{i}" for i in range(tasks)])
        wait_until("a third done", lambda: sum(f.done() for f in futures) >= tasks // 3, timeout=120)
        rock = slurm.submit_sync(sleep_script(5), ["-p", "batch", "-w", victim_host, "--exclusive", "-t", "2"])
        came = time.time()
        st = wait_until("the batch job starts", lambda: (s := slurm.squeue_sync([rock])[rock]).start_time and not s.pending and s,
                        timeout=GRACE + 120)
        correct = sum(f.result(timeout=300) for f in futures) == sum(i * i for i in range(tasks))
        try:
            lost = 0 if kept.result(timeout=30) == list(range(1000)) else 1
        except Exception:
            lost = 1
        return {"name": name, "start_delay_s": round(st.start_time - came, 1), "grace_s": GRACE,
                "correct": correct, "lost_results": lost, "recomputed_tasks": sum(plugin.recomputed.values()),
                "wall_s": round(time.monotonic() - t0, 1)}


def _job_node(cluster: Any, slurm: Any, worker_name: str) -> str:
    """The node of the worker job that runs the Dask worker ``worker_name`` (one process
    per job: the worker is named after its job's spec)."""
    spec = next(n for n in cluster.workers if worker_name == n or worker_name.startswith(f"{n}-"))
    job_id = cluster.workers[spec].job_id
    return slurm.squeue_sync([job_id])[job_id].nodes


def main(argv: list[str] | None = None) -> int:
    import dask

    from sandfill.dev.testing import TestSlurm, booted_devcluster, loopback_dask_config
    from sandfill.slurm.commands import wait_until

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", type=int, default=600)
    args = p.parse_args(argv)
    rows = []
    with booted_devcluster("sandfill-bench-preempt-") as dc:
        slurm = TestSlurm(dc.slurm_conf)
        root = Path(tempfile.mkdtemp(prefix="sandfill-bench-preempt-", dir="/tmp"))
        root.chmod(0o755)
        os.environ["SLURM_CONF"] = str(dc.slurm_conf)
        with dask.config.set({**loopback_dask_config(str(dc.slurm_conf), str(root)), "jobqueue.sandfill.queue": None}):
            for name in ("sandfill", "plain"):
                rows.append(_run(name, slurm, root, args.tasks))
                print(json.dumps(rows[-1]), flush=True)
                wait_until("the last rock and worker jobs leave", lambda: not slurm.squeue_sync(), timeout=120)
    print(f"{'contender':10} {'start delay':>12} {'GraceTime':>10} {'correct':>8} {'lost':>5} {'recomputed':>11} {'wall':>7}")
    for r in rows:
        print(f"{r['name']:10} {r['start_delay_s']:>10} s {r['grace_s']:>8} s {r['correct']!s:>8} {r['lost_results']:>5} "
              f"{r['recomputed_tasks']:>11} {r['wall_s']:>5} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
