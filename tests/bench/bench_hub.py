"""Hub benchmark (run on demand as root: `.venv/bin/python tests/bench/bench_hub.py`).

Prints, side by side in one run, on a real devcluster:
1. spawn → ready on an idle devcluster: sandfill vs a stock batchspawner SlurmSpawner hub;
2. spawn → ready on a busy devcluster (every node 7/8 full of long jobs, a 32-CPU job holding
   a reservation), through the interactive tier vs the default (batch) partition;
3. squeue RPCs per minute (sdiag REQUEST_JOB_INFO*) with 10 servers pending and with 10
   running, sandfill vs stock.

    .venv/bin/python tests/bench/bench_hub.py [--state-dir DIR] [--quick]

--state-dir (or SANDFILL_BENCH_STATE_DIR) reuses a devcluster; --quick (or
SANDFILL_BENCH_QUICK=1) shortens it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandfill.dev.accounts import create_accounts, remove_accounts
from sandfill.dev.devcluster import DevCluster
from sandfill.dev.hubprocess import HubProcess, user_token
from sandfill.dev.testing import TestSlurm, exit_on_sigterm, queue_rpcs, sleep_script
from sandfill.slurm.commands import WaitTimeout, wait_until

USERS = [f"sfbench-{i:02d}" for i in range(1, 11)]
QUICK = os.environ.get("SANDFILL_BENCH_QUICK") == "1"
IDLE_RUNS, WINDOW = 5, 30.0
QUICK_RUNS, QUICK_WINDOW = 3, 20.0
BIN = Path(sys.executable).parent

STOCK_CONFIG = """\
# A stock batchspawner configuration, as a site would write it for this devcluster.
import batchspawner  # noqa: F401  (registers its port route)
c = get_config()  # noqa: F821
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.JupyterHub.hub_connect_ip = "127.0.0.1"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.command = ["{bin}/configurable-http-proxy"]
c.JupyterHub.db_url = "sqlite:///{state}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{state}/jupyterhub_cookie_secret"
c.JupyterHub.cleanup_servers = False
c.JupyterHub.authenticator_class = "pam"
c.Authenticator.allowed_users = {users!r}
c.JupyterHub.spawner_class = "batchspawner.MultiSlurmSpawner"
c.MultiSlurmSpawner.daemon_resolver = {resolver!r}   # node1… do not resolve on one host
c.Spawner.env_keep = ["PATH", "LANG", "SLURM_CONF", "VIRTUAL_ENV"]
c.Spawner.default_url = "/lab"
c.SlurmSpawner.ip = "127.0.0.1"
c.SlurmSpawner.req_partition = "{partition}"
c.SlurmSpawner.req_runtime = "02:00:00"
c.SlurmSpawner.req_memory = "1G"
c.SlurmSpawner.req_nprocs = "1"
c.SlurmSpawner.req_srun = ""
c.SlurmSpawner.req_prologue = "export PATH={bin}:$PATH"   # sudo resets PATH
c.SlurmSpawner.start_timeout = 600
"""


def ms(seconds: float) -> str:
    return f"{seconds:.1f} s"


class Bench:
    def __init__(self, cluster: DevCluster, root: Path, logins: dict[str, str]) -> None:
        self.cluster = cluster
        self.root = root
        self.slurm = TestSlurm(cluster.slurm_conf)
        self.logins = logins
        self.idle_runs, self.window = IDLE_RUNS, WINDOW

    # ---- hubs ---------------------------------------------------------------------------
    def sandfill_hub(self, name: str) -> HubProcess:
        site = {
            "allowed_users": USERS,
            "slurm_conf": str(self.cluster.slurm_conf),
            "partitions": ["interactive", "burst", "batch"],
            "default_partition": "interactive",
            "server_ip": "127.0.0.1",
            "exec_host": "127.0.0.1",
            "max_memory": "8G",
            "profiles": [
                {"name": "small", "description": "1 CPU, 1 GB, 2 h, interactive tier", "cpus": 1, "memory": "1G", "walltime": "02:00:00", "partition": "interactive"},
                {"name": "small-batch", "description": "1 CPU, 1 GB, 2 h, batch", "cpus": 1, "memory": "1G", "walltime": "02:00:00", "partition": "batch"},
            ],
        }
        return HubProcess(self.root / name, site)

    def stock_hub(self, name: str, partition: str = "batch") -> HubProcess:
        state = self.root / name
        hub = HubProcess(state, {"slurm_conf": str(self.cluster.slurm_conf)}, config_file=state / "stock_config.py")
        state.mkdir(parents=True, exist_ok=True)
        info = self.cluster.info()
        assert info is not None
        (state / "hub").mkdir(exist_ok=True)
        (state / "stock_config.py").write_text(
            STOCK_CONFIG.format(
                port=hub.site["port"],
                hub_port=hub.site["hub_port"],
                proxy_api_port=hub.site["proxy_api_port"],
                bin=BIN,
                state=state / "hub",
                users=USERS,
                resolver={f"node{i}": "127.0.0.1" for i in range(1, info.nodes + 1)},
                partition=partition,
            )
        )
        return hub

    # ---- helpers --------------------------------------------------------------------------
    def server(self, hub: HubProcess, tok: str, user: str) -> dict[str, Any] | None:
        status, model = hub.api("GET", f"/users/{user}", tok)
        assert status == 200, model
        return model["servers"].get("")  # type: ignore[no-any-return]

    def spawn_time(self, hub: HubProcess, tok: str, user: str, options: dict[str, Any] | None, timeout: float) -> float | None:
        t0 = time.monotonic()
        status, body = hub.api("POST", f"/users/{user}/server", tok, options or {})
        assert status in (201, 202), (status, body)

        def ready_after() -> float | None:
            s = self.server(hub, tok, user)
            return time.monotonic() - t0 if s and s["ready"] else None

        try:
            return wait_until(f"{user}'s server to be ready", ready_after, timeout=timeout, interval=0.1)
        except WaitTimeout:
            return None

    def stop(self, hub: HubProcess, tokens: dict[str, str], users: list[str]) -> None:
        for u in users:
            if self.server(hub, tokens[u], u) is not None:
                hub.api("DELETE", f"/users/{u}/server", tokens[u])
        for u in users:
            wait_until(f"{u}'s server to stop", lambda u=u: self.server(hub, tokens[u], u) is None, timeout=120, interval=0.5)  # type: ignore[misc]

    def rocks(self, cpus: int, minutes: int = 30) -> list[str]:
        info = self.cluster.info()
        assert info is not None
        ids = [
            self.slurm.submit_sync(sleep_script(minutes * 60), ["-p", "batch", "-c", str(cpus), "-t", str(minutes), "-J", "rock", "-o", "/dev/null"])
            for _ in range(info.nodes)
        ]
        wait_until("rocks running", lambda: all(s.running for s in self.slurm.squeue_sync(ids).values()), timeout=60)
        return ids

    def cancel(self, ids: list[str]) -> None:
        if ids:
            self.slurm.cancel_sync(ids)
            wait_until("jobs gone", lambda: not any(s.running or s.pending for s in self.slurm.squeue_sync(ids).values()), timeout=60)

    def rpcs_per_minute(self) -> float:
        window = self.window
        before = queue_rpcs(self.slurm.sdiag_rpcs_sync())
        time.sleep(window)  # measurement window
        return (queue_rpcs(self.slurm.sdiag_rpcs_sync()) - before) * 60.0 / window

    # ---- scenarios ------------------------------------------------------------------------
    def idle(self, hub: HubProcess, options: dict[str, Any] | None) -> list[float]:
        hub.start()
        try:
            tok = user_token(hub, USERS[0])
            times = []
            for _ in range(self.idle_runs):
                t = self.spawn_time(hub, tok, USERS[0], options, 120)
                assert t is not None, "spawn did not complete"
                times.append(t)
                self.stop(hub, {USERS[0]: tok}, [USERS[0]])
            return times
        finally:
            hub.stop()

    def busy(self, hub: HubProcess) -> tuple[float | None, float | None, str]:
        """7/8 of every node held by long rocks, a 32-CPU job holding the reservation."""
        info = self.cluster.info()
        assert info is not None
        rocks = self.rocks(info.cpus - 1, minutes=30)
        big = self.slurm.submit_sync(sleep_script(600), ["-p", "batch", "-N", str(info.nodes), "-c", str(info.cpus), "-t", "20", "-J", "big", "-o", "/dev/null"])
        hub.start()
        try:
            wait_until("the big job to hold a reservation", lambda: (s := self.slurm.squeue_sync([big])[big]).pending and s.start_time is not None, timeout=60)
            tok = user_token(hub, USERS[0])
            t_tier = self.spawn_time(hub, tok, USERS[0], {"profile": "small"}, 120)
            self.stop(hub, {USERS[0]: tok}, [USERS[0]])
            tok2 = user_token(hub, USERS[1])
            t_batch = self.spawn_time(hub, tok2, USERS[1], {"profile": "small-batch"}, 60)
            _, job = hub.api("GET", f"/sandfill/users/{USERS[1]}/server/job", tok2)
            why = f"{job.get('state')} ({job.get('reason')})"
            self.stop(hub, {USERS[1]: tok2}, [USERS[1]])
            return t_tier, t_batch, why
        finally:
            hub.stop()
            self.cancel([*rocks, big])

    def load(self, hub: HubProcess, options: dict[str, Any] | None) -> tuple[float, float, float]:
        """(RPC/min with no server, with 10 pending, with 10 running)."""
        info = self.cluster.info()
        assert info is not None
        hub.start()
        try:
            tokens = {u: user_token(hub, u) for u in USERS}
            base = self.rpcs_per_minute()
            rocks = self.rocks(info.cpus, minutes=30)
            for u in USERS:
                status, body = hub.api("POST", f"/users/{u}/server", tokens[u], options or {})
                assert status in (201, 202), (status, body)
            wait_until("10 jobs pending", lambda: len(self._pending_jobs()) >= len(USERS), timeout=60)
            pending = self.rpcs_per_minute()
            self.cancel(rocks)
            wait_until("10 servers ready", lambda: all((s := self.server(hub, tokens[u], u)) and s["ready"] for u in USERS), timeout=300, interval=1)
            running = self.rpcs_per_minute()
            self.stop(hub, tokens, USERS)
            return base, pending, running
        finally:
            hub.stop()

    def _pending_jobs(self) -> list[str]:
        return self.slurm.user_job_ids_sync(USERS, "PD", check=False)


def _summary(times: list[float]) -> str:
    return f"median {ms(statistics.median(times))} (min {ms(min(times))}, max {ms(max(times))}, n={len(times)})"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="Hub benchmark on a real devcluster: spawn -> ready (idle and busy) and squeue "
        "load, sandfill vs a stock batchspawner hub, side by side in one run (as root).",
    )
    ap.add_argument(
        "--state-dir", default=os.environ.get("SANDFILL_BENCH_STATE_DIR"),
        help="reuse the devcluster in this state directory (default: boot one of its own)",
    )
    ap.add_argument("--quick", action="store_true", default=QUICK, help="fewer runs and a shorter window")
    return ap.parse_args(argv)


def main() -> int:
    args = parse_args()
    if os.geteuid() != 0:
        print("bench_hub: run as root (it boots a devcluster and creates accounts)")
        return 2
    state = args.state_dir
    root = Path(tempfile.mkdtemp(prefix="sandfill-bench-hub-", dir="/tmp"))
    root.chmod(0o755)
    cluster = DevCluster(state or root / "dc")
    own = not cluster.is_running()
    slurm = TestSlurm(cluster.slurm_conf)
    step: Callable[[str], None] = lambda s: print(f"  … {s}", file=sys.stderr, flush=True)  # noqa: E731
    exit_on_sigterm()  # a SIGTERM runs the clean-up below, as Ctrl-C does
    try:
        if own:
            cluster.up(log=lambda *_: None)
        logins = create_accounts(USERS)
        cluster.add_users(USERS)
        bench = Bench(cluster, root, logins)
        if args.quick:
            bench.idle_runs, bench.window = QUICK_RUNS, QUICK_WINDOW
        step("idle spawns (sandfill)")
        idle_s = bench.idle(bench.sandfill_hub("idle-sandfill"), {"profile": "small"})
        step("idle spawns (stock batchspawner)")
        idle_b = bench.idle(bench.stock_hub("idle-stock", partition="interactive"), None)
        step("busy cluster")
        t_tier, t_batch, why = bench.busy(bench.sandfill_hub("busy-sandfill"))
        step("queue load (sandfill)")
        load_s = bench.load(bench.sandfill_hub("load-sandfill"), {"profile": "small"})
        step("queue load (stock batchspawner)")
        load_b = bench.load(bench.stock_hub("load-stock", partition="interactive"), None)
    finally:
        if cluster.is_running():
            for u in USERS:
                slurm.cancel_user_sync(u)
        if own:
            cluster.down(log=lambda *_: None)
        wait_until("bench accounts removed", lambda: (remove_accounts(USERS), True)[1], timeout=30)

    print("\n## Hub benchmark (2-core machine, devcluster 4 nodes x 8 CPUs)\n")
    print("| measure | sandfill | stock batchspawner |")
    print("|---|---|---|")
    print(f"| spawn → ready, idle cluster | {_summary(idle_s)} | {_summary(idle_b)} |")
    tier = ms(t_tier) if t_tier is not None else "did not start in 120 s"
    batch = ms(t_batch) if t_batch is not None else f"did not start in 60 s ({why})"
    print(f"| spawn → ready, busy cluster + reservation | interactive tier: {tier} | default batch partition: {batch} |")
    print(f"| squeue RPC/min, no servers (background) | {load_s[0]:.0f} | {load_b[0]:.0f} |")
    print(f"| squeue RPC/min, 10 servers pending | {load_s[1]:.0f} | {load_b[1]:.0f} |")
    print(f"| squeue RPC/min, 10 servers running | {load_s[2]:.0f} | {load_b[2]:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
