"""Benchmark (run on demand): devcluster boot time, and the scheduler load of watching 50
jobs with the shared QueuePoller vs the naive one-squeue-per-job loop, side by side in one run,
counted by slurmctld itself (sdiag).

    .venv/bin/python tests/bench/bench_foundation.py [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from sandfill.dev.devcluster import DevCluster
from sandfill.dev.testing import TestSlurm, queue_rpcs, sleep_script
from sandfill.slurm import QueuePoller
from sandfill.slurm.commands import wait_until


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0, help="length of each watching phase")
    ap.add_argument("--jobs", type=int, default=50)
    args = ap.parse_args()

    root = Path(tempfile.mkdtemp(prefix="sandfill-bench-", dir="/tmp"))
    root.chmod(0o755)
    cluster = DevCluster(root)
    t0 = time.monotonic()
    cluster.up(log=lambda *_: None)
    boot = time.monotonic() - t0
    try:
        client = TestSlurm(cluster.slurm_conf)
        ids = [client.submit_sync(sleep_script(3600), ["-p", "batch", "-c", "1", "-t", "60"]) for _ in range(args.jobs)]
        wait_until("jobs known", lambda: len(client.squeue_sync(ids)) == len(ids))
        pending = sum(1 for s in client.squeue_sync(ids).values() if s.pending)

        # the shared poller: one squeue per round for all 50
        poller = QueuePoller(client)  # default intervals: 1 s while anything pends, 10 s steady
        before = queue_rpcs(client.sdiag_rpcs_sync())
        poller.watch(ids)
        end = time.monotonic() + args.seconds
        fresh = 0
        while time.monotonic() < end:  # a consumer asking for every job's state each second
            asyncio.run(asyncio.sleep(1))
            fresh += sum(1 for j in ids if poller.status(j) is not None)
        poller_rpcs = queue_rpcs(client.sdiag_rpcs_sync()) - before
        poller.close()

        # the naive loop: every watcher asks squeue about its own job once a second
        before = queue_rpcs(client.sdiag_rpcs_sync())
        end = time.monotonic() + args.seconds
        rounds = 0
        while time.monotonic() < end:
            t = time.monotonic()
            for j in ids:
                client.squeue_sync([j])
            rounds += 1
            time.sleep(max(0.0, 1 - (time.monotonic() - t)))
        naive_rpcs = queue_rpcs(client.sdiag_rpcs_sync()) - before
    finally:
        cluster.down(log=lambda *_: None)

    per_min = 60.0 / args.seconds
    print(f"devcluster boot (munge, MariaDB, slurmdbd, slurmctld, 4 slurmd): {boot:.1f} s")
    print(f"watching {args.jobs} jobs ({pending} pending) for {args.seconds:.0f} s each, squeue RPCs counted by sdiag:")
    print(f"  naive one-squeue-per-job loop : {naive_rpcs * per_min:7.1f} RPC/min ({rounds} rounds of {args.jobs})")
    print(f"  sandfill shared QueuePoller   : {poller_rpcs * per_min:7.1f} RPC/min")
    print(f"  ratio (naive / poller)        : {naive_rpcs / max(poller_rpcs, 1):7.1f}x fewer scheduler queries")


if __name__ == "__main__":
    main()
