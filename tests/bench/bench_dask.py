"""Benchmark (run on demand): the busy-cluster scenario, side by side in one run.

Each contender gets its own identical devcluster (4 nodes x 8 CPUs, the shipped policy), all
three run at the same time: rocks hold 6 of 8 CPUs on every node for 12 minutes, and a 4-node
job is planned right after them. Asked for N 1-CPU workers over a window (default 10 min):

  sandfill          BackfillSLURMCluster (walltimes fitted to the gap, replaced ahead)
  plain-1h@burst    dask-jobqueue SLURMCluster, walltime 1 h, the same partition
  plain-1h@batch    dask-jobqueue SLURMCluster, walltime 1 h, the batch partition

Printed per contender: time until N workers were connected, the fraction of requested
worker-seconds delivered in the window, how far the planned 4-node job was pushed back,
and slurmctld RPCs (sdiag) during the window.

    .venv/bin/python tests/bench/bench_dask.py [--window 600] [--workers 8]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

CONTENDERS = ["sandfill", "plain-1h@burst", "plain-1h@batch"]
BOOT_AND_SETUP_S = 600.0  # a contender's boot, rocks and clean-up, on top of the window


def run_one(name: str, window: float, n: int) -> dict[str, object]:
    import dask
    from distributed import Client

    from sandfill.dev.devcluster import DevCluster
    from sandfill.dev.testing import TestSlurm, loopback_dask_config, sleep_script
    from sandfill.slurm.commands import wait_until

    root = Path(tempfile.mkdtemp(prefix=f"sandfill-bench-{name.replace('@', '-')}-", dir="/tmp"))
    root.chmod(0o755)
    dc = DevCluster(root / "dc")
    slurm = TestSlurm(dc.slurm_conf)
    out: dict[str, object] = {"name": name}
    try:
        dc.up(log=lambda *_: None)  # a boot that fails half-way stops what it started
        rocks = [slurm.submit_sync(sleep_script(720), ["-p", "batch", "-c", "6", "-t", "12"]) for _ in range(4)]
        wait_until("rocks", lambda: all(s.running for s in slurm.squeue_sync(rocks).values()), timeout=60)
        big = slurm.submit_sync(sleep_script(60), ["-p", "batch", "-N", "4", "--exclusive", "-t", "10"])
        planned = wait_until("planned start", lambda: slurm.squeue_sync([big])[big].start_time, timeout=120)
        cfg = loopback_dask_config(str(dc.slurm_conf), str(root))
        with dask.config.set(cfg):
            import os

            os.environ["SLURM_CONF"] = str(dc.slurm_conf)
            rpc0 = sum(slurm.sdiag_rpcs_sync().values())
            if name == "sandfill":
                from sandfill.dask import BackfillSLURMCluster

                cluster = BackfillSLURMCluster(queue="burst", min_walltime="00:05:00", max_walltime="01:00:00")
            else:
                from dask_jobqueue import SLURMCluster

                (root / "tls").mkdir(mode=0o700, exist_ok=True)

                cluster = SLURMCluster(
                    queue=name.split("@")[1], cores=1, memory="1GiB", walltime="01:00:00", security=True,
                    shared_temp_directory=str(root / "tls"), log_directory=str(root / "logs"),
                    scheduler_options={"host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"},
                )
            client = Client(cluster)
            t0 = time.monotonic()
            cluster.scale(n)
            first_full = None
            worker_seconds = 0.0
            last = t0
            while (now := time.monotonic()) - t0 < window:
                k = len(client.scheduler_info(n_workers=-1)["workers"])
                worker_seconds += min(k, n) * (now - last)
                last = now
                if first_full is None and k >= n:
                    first_full = now - t0
                time.sleep(1.0)
            rpcs = sum(slurm.sdiag_rpcs_sync().values()) - rpc0
            st = slurm.squeue_sync([big])[big]
            pushed = (st.start_time - planned) if st.pending and st.start_time else (st.start_time - planned if st.start_time else None)
            client.close()
            cluster.close()
        out.update(
            time_to_n=first_full, delivered=worker_seconds / (n * window), rpcs=rpcs, rpcs_per_min=rpcs * 60 / window,
            big_job_pushed_s=pushed, big_state=st.state,
        )
    finally:
        dc.down(log=lambda *_: None)
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="The busy-cluster scenario: sandfill's BackfillSLURMCluster vs plain "
        "dask-jobqueue, each on its own devcluster, all at the same time (as root).",
    )
    ap.add_argument("--window", type=float, default=600.0, help="seconds each contender is watched (default 600)")
    ap.add_argument("--workers", type=int, default=8, help="1-CPU workers asked for (default 8)")
    ap.add_argument("--one", choices=CONTENDERS, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if not args.window > 0 or args.workers < 1:
        ap.error(f"--window must be above 0 and --workers at least 1, got {args.window} and {args.workers}")
    return args


@dataclass
class Contender:
    """One contender's process (``--one NAME``), its output in files (no pipe can fill up)."""

    name: str
    proc: subprocess.Popen[bytes]
    out: IO[bytes]
    err: IO[bytes]

    def failure(self) -> str | None:
        """Why it failed (its exit status and the end of its stderr), or None."""
        code = self.proc.poll()
        if code is None or (code == 0 and self.result() is not None):
            return None
        self.err.seek(0)
        tail = self.err.read().decode(errors="replace").strip().splitlines()[-15:]
        why = "printed no result" if code == 0 else f"exit status {code}"
        return f"contender {self.name} failed ({why}):\n    " + "\n    ".join(tail or ["(no output)"])

    def result(self) -> dict[str, object] | None:
        self.out.seek(0)
        lines = self.out.read().decode(errors="replace").strip().splitlines()
        try:
            return json.loads(lines[-1]) if lines else None
        except ValueError:
            return None

    def stop(self, timeout: float = 180.0) -> None:
        """SIGTERM it by PID (its finally stops its devcluster), SIGKILL if it will not go."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)


def start(name: str, args: argparse.Namespace) -> Contender:
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    argv = [sys.executable, __file__, "--one", name, "--window", str(args.window), "--workers", str(args.workers)]
    return Contender(name, subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL), out, err)


def run_all(args: argparse.Namespace) -> dict[str, dict[str, object]]:
    """Run every contender at once; the first that fails is named with why, and the others
    are stopped (:class:`RuntimeError`). Ctrl-C or SIGTERM stops them all too."""
    from sandfill.slurm.commands import WaitTimeout, wait_until

    contenders: list[Contender] = []
    try:
        contenders = [start(c, args) for c in CONTENDERS]
        failed = lambda: next((f for c in contenders if (f := c.failure())), None)  # noqa: E731
        try:
            wait_until(
                "every contender to finish",
                lambda: all(c.proc.poll() is not None for c in contenders),
                args.window + BOOT_AND_SETUP_S,
                interval=1.0,
                abort=failed,
            )
        except WaitTimeout as exc:
            raise RuntimeError(str(exc)) from None
        if why := failed():
            raise RuntimeError(why)
        return {c.name: c.result() or {} for c in contenders}
    finally:
        for c in contenders:
            c.stop()


def report(results: dict[str, dict[str, object]], args: argparse.Namespace) -> None:
    print(f"busy devcluster, {args.workers} x 1-CPU workers asked for, {args.window / 60:.0f}-minute window (all three at once, own clusters)")
    print(f"{'contender':<16} {'time to N':>10} {'delivered':>10} {'4-node job pushed back':>24} {'slurmctld RPC/min':>18}")
    for c in CONTENDERS:
        r = results[c]
        ttn = f"{r['time_to_n']:.0f} s" if r["time_to_n"] is not None else "never"
        pushed = r["big_job_pushed_s"]
        pushed_s = "n/a" if pushed is None else f"{max(pushed, 0) / 60:.0f} min"  # type: ignore[call-overload]
        print(f"{c:<16} {ttn:>10} {r['delivered']:>9.0%} {pushed_s:>24} {r['rpcs_per_min']:>18.1f}")
    s, b = results["sandfill"], results["plain-1h@batch"]
    print(f"delivered worker-seconds, sandfill vs plain-1h@batch: {s['delivered'] / max(b['delivered'], 1e-9):.1f}x"  # type: ignore[operator]
          if b["delivered"] else "delivered worker-seconds, sandfill vs plain-1h@batch: plain delivered nothing")


def main() -> int:
    args = parse_args()
    from sandfill.dev.testing import exit_on_sigterm

    exit_on_sigterm()  # the finally blocks below stop what was started
    if args.one:
        print(json.dumps(run_one(args.one, args.window, args.workers)))
        return 0
    try:
        results = run_all(args)
    except RuntimeError as exc:
        print(f"bench_dask: {exc}\nthe other contenders were stopped", file=sys.stderr)
        return 1
    report(results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
