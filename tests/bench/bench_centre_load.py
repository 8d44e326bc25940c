"""Benchmark (run on demand, as root): centre load -- what K clients watching jobs cost slurmctld.

K = 1, 10, 100 simulated clients (what a user's JupyterLab server, lab extension or Dask
cluster runs: sandfill's own poller code, not real JupyterLab processes) each watch a few
real jobs on one devcluster (sleep jobs: 32 run, the rest pend, so every poller polls at its
fast interval, the worst case). Two contenders at each K, measured one after the other in the
same run and printed side by side:

  local     one ``QueuePoller`` per client, each with its own ``squeue`` (sandfill today,
            outside a hub, or a server that cannot reach the service)
  service   one ``RemotePoller`` per client, all asking one sandfill service
            (``sandfill.hub.service``, its own process; identity checked by a stand-in for
            the hub's token check, since only the Slurm side is measured here)

Measured over each window: slurmctld RPCs per minute from ``sdiag`` (queue queries and all),
and the age of what the clients see (now - the job status's ``observed``, sampled every
0.5 s over every client's jobs): median and p95. The ratio local / service is printed.

    .venv/bin/python tests/bench/bench_centre_load.py [--ks 1,10,100] [--window 45] [--jobs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TOKEN = "bench-centre-load-token"


# ---- the service, in its own process ------------------------------------------------------
def serve(port: int, slurm_conf: str) -> None:
    """The sandfill service's app (the hub's ``python -m sandfill.hub.service`` minus the
    hub): one ClusterView, the bench token an admin's."""
    from jupyterhub.services.auth import HubOAuth
    from tornado.ioloop import PeriodicCallback

    from sandfill.hub.service.app import ACCESS_SCOPE, ClusterView, make_app
    from sandfill.slurm.client import SlurmClient
    from sandfill.slurm.poller import COMMAND_TIMEOUT

    class BenchAuth(HubOAuth):
        async def _check_hub_authorization(self, url: str, api_token: str, cache_key: Any = None, use_cache: bool = True) -> Any:
            return {"kind": "user", "name": "bench", "admin": True, "scopes": [ACCESS_SCOPE]} if api_token == TOKEN else None

    async def run() -> None:
        view = ClusterView(SlurmClient(slurm_conf, timeout=COMMAND_TIMEOUT))
        auth = BenchAuth(api_token="unused", api_url="http://127.0.0.1:9/hub/api", oauth_client_id="service-sandfill")
        make_app(view, auth).listen(port, "127.0.0.1")
        PeriodicCallback(view.expire, 30_000).start()
        await asyncio.Event().wait()

    asyncio.run(run())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- one contender at one K ---------------------------------------------------------------
@dataclass
class Result:
    contender: str
    k: int
    queue_per_min: float
    all_per_min: float
    age_median: float
    age_p95: float


def measure(contender: str, k: int, jobs: list[list[str]], slurm_conf: str, window: float) -> Result:
    from sandfill.dev.testing import TestSlurm, queue_rpcs
    from sandfill.slurm.client import SlurmClient
    from sandfill.slurm.commands import wait_until
    from sandfill.slurm.poller import COMMAND_TIMEOUT, QueuePoller
    from sandfill.slurm.remote import RemotePoller

    slurm = TestSlurm(slurm_conf)
    service: subprocess.Popen[bytes] | None = None
    pollers: list[QueuePoller] = []
    try:
        if contender == "service":
            port = free_port()
            service = subprocess.Popen([sys.executable, __file__, "--serve", str(port), slurm_conf])
            url = f"http://127.0.0.1:{port}/services/sandfill/"
            wait_until("the service to listen", lambda: _listens(port), timeout=30, interval=0.2)

            def make() -> QueuePoller:
                return RemotePoller(url, TOKEN, SlurmClient(slurm_conf, timeout=COMMAND_TIMEOUT))
        else:

            def make() -> QueuePoller:
                return QueuePoller(SlurmClient(slurm_conf, timeout=COMMAND_TIMEOUT))

        pollers = [make() for _ in range(k)]
        for p, ids in zip(pollers, jobs, strict=True):
            p.watch(ids)
        wait_until(f"{contender} K={k}: every client to know its jobs", lambda: all(
            all((st := p.status(j)) is not None and st.known for j in ids) for p, ids in zip(pollers, jobs, strict=True)
        ), timeout=120, interval=0.5)
        c0, t0 = slurm.sdiag_rpcs_sync(), time.monotonic()
        ages = _sample_ages(pollers, jobs, window)
        c1, t1 = slurm.sdiag_rpcs_sync(), time.monotonic()
    finally:
        for p in pollers:
            p.close()
        if service is not None:
            service.terminate()
            service.wait(timeout=30)
    minutes = (t1 - t0) / 60
    per_min = lambda f: (f(c1) - f(c0)) / minutes  # noqa: E731
    ages.sort()
    return Result(contender, k, per_min(queue_rpcs), per_min(lambda c: sum(c.values())),
                  statistics.median(ages), ages[int(0.95 * (len(ages) - 1))])


def _listens(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _sample_ages(pollers: Sequence[Any], jobs: list[list[str]], window: float) -> list[float]:
    """now - observed of every client's every job, every 0.5 s for ``window`` seconds (a
    timer: the benchmark's clock, not synchronisation)."""
    ages: list[float] = []
    end = time.monotonic() + window
    while time.monotonic() < end:
        now = time.time()
        for p, ids in zip(pollers, jobs, strict=True):
            for j in ids:
                st = p.status(j)
                if st is not None:
                    ages.append(max(0.0, now - st.observed))
        time.sleep(0.5)
    return ages


# ---- the run ------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="Centre load on a real devcluster: K clients' pollers, local vs one service")
    ap.add_argument("--ks", default="1,10,100", help="numbers of clients, comma-separated (default 1,10,100)")
    ap.add_argument("--window", type=float, default=45.0, help="seconds measured per contender and K (default 45)")
    ap.add_argument("--jobs", type=int, default=3, help="jobs each client watches (default 3)")
    ap.add_argument("--state-dir", type=Path, default=None, help="reuse the devcluster in this state directory")
    ap.add_argument("--serve", nargs=2, metavar=("PORT", "SLURM_CONF"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.k_list = [int(k) for k in args.ks.split(",")]
    if not all(1 <= k <= 200 for k in args.k_list) or not 1 <= args.jobs <= 10 or not 5 <= args.window <= 600:
        ap.error(f"--ks must be 1..200 each ({args.ks!r}), --jobs 1..10 ({args.jobs}), --window 5..600 s ({args.window})")
    return args


def main() -> int:
    args = parse_args()
    if args.serve:
        serve(int(args.serve[0]), args.serve[1])
        return 0
    if os.geteuid() != 0:
        print("bench_centre_load: run as root (it boots a devcluster)")
        return 2
    from sandfill.dev.devcluster import DevCluster
    from sandfill.dev.testing import TestSlurm, exit_on_sigterm, sleep_script

    root = Path(tempfile.mkdtemp(prefix="sandfill-bench-centre-", dir="/tmp"))
    root.chmod(0o755)
    cluster = DevCluster(args.state_dir or root / "dc")
    own = not cluster.is_running()
    slurm = TestSlurm(cluster.slurm_conf)
    step: Callable[[str], None] = lambda s: print(f"  … {s}", file=sys.stderr, flush=True)  # noqa: E731
    exit_on_sigterm()
    results: list[Result] = []
    pool: list[str] = []
    try:
        if own:
            step("booting a devcluster")
            cluster.up(log=lambda *_: None)
        n = max(args.k_list) * args.jobs
        step(f"submitting {n} sleep jobs")
        pool = [slurm.submit_sync(sleep_script(1800), ["-p", "batch", "-c", "1", "-t", "30", "-J", "centre", "-o", "/dev/null"])
                for _ in range(n)]
        for k in args.k_list:
            jobs = [pool[i * args.jobs:(i + 1) * args.jobs] for i in range(k)]
            for contender in ("local", "service"):
                step(f"K={k}: {contender}")
                results.append(measure(contender, k, jobs, str(cluster.slurm_conf), args.window))
    finally:
        if pool and cluster.is_running():
            slurm.cancel_sync(pool)
        if own:
            cluster.down(log=lambda *_: None)
    report(results, args)
    return 0


def report(results: list[Result], args: argparse.Namespace) -> None:
    by = {(r.contender, r.k): r for r in results}
    print(f"\n## Centre load (2-core machine, devcluster 4 nodes x 8 CPUs; {args.jobs} jobs per client, "
          f"{args.window:.0f} s per window)\n")
    print("| K | queue RPC/min local | queue RPC/min service | ratio | all RPC/min local | all RPC/min service "
          "| data age local (median / p95) | data age service (median / p95) |")
    print("|---|---|---|---|---|---|---|---|")
    for k in args.k_list:
        lo, sv = by[("local", k)], by[("service", k)]
        ratio = f"{lo.queue_per_min / sv.queue_per_min:.1f}x" if sv.queue_per_min > 0 else "inf"
        print(f"| {k} | {lo.queue_per_min:.0f} | {sv.queue_per_min:.0f} | {ratio} | {lo.all_per_min:.0f} | {sv.all_per_min:.0f} "
              f"| {lo.age_median:.1f} / {lo.age_p95:.1f} s | {sv.age_median:.1f} / {sv.age_p95:.1f} s |")


if __name__ == "__main__":
    sys.exit(main())
