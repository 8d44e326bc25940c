"""sandfill.dask.cluster: BackfillSLURMCluster, mostly against the real devcluster (marked
``slurm``)."""

from __future__ import annotations

import contextlib
import shlex
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dask
import numpy as np
import pytest
from distributed import Client
from distributed.comm.utils import get_tcp_server_addresses
from distributed.security import Security

from sandfill.dask import BackfillSLURMCluster, config
from sandfill.dev.devcluster import DevCluster
from sandfill.dev.testing import TestSlurm, queue_rpcs, sleep_script
from sandfill.slurm import SlurmClient
from sandfill.slurm.commands import wait_until


@contextmanager
def sampler(client: Client, interval: float = 0.5) -> Iterator[list[tuple[float, int]]]:
    """Record (time, connected workers) in the background while the block runs."""
    samples: list[tuple[float, int]] = []
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            samples.append((time.monotonic(), len(client.scheduler_info(n_workers=-1)["workers"])))
            stop.wait(interval)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        yield samples
    finally:
        stop.set()
        t.join()


def longest_below(samples: list[tuple[float, int]], threshold: int) -> float:
    longest, start = 0.0, None
    for t, n in samples:
        if n < threshold:
            start = t if start is None else start
            longest = max(longest, t - start)
        else:
            start = None
    return longest


@pytest.mark.slurm
def test_job_script_is_typed_and_fitted(dask_cfg: dict[str, object]) -> None:
    with BackfillSLURMCluster(qos="burst", min_walltime="00:02:00", max_walltime="00:10:00", retire_margin="45s") as c:
        script = c.job_script()
    assert "#SBATCH -p burst" in script and "#SBATCH --qos=burst" in script and "#SBATCH --no-requeue" in script
    assert "#SBATCH --cpus-per-task=1" in script and "#SBATCH --mem=1G" in script
    assert "squeue" not in script  # the keeper reads the job's end from the shared poller
    assert "export SANDFILL_LIFETIME=75\n" in script and "--lifetime ${SANDFILL_LIFETIME}s" in script
    assert "tls://127.0.0.1:" in script and "--tls-ca-file" in script and "--tls-key" in script
    # each worker listens on its node's address toward the scheduler (127.0.0.1 on one host)
    assert "-m sandfill.net toward 127.0.0.1)" in script and "--host $(" in script


@pytest.mark.slurm
def test_bad_settings_are_named(dask_cfg: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="min-walltime <= max-walltime"):
        BackfillSLURMCluster(min_walltime="00:10:00", max_walltime="00:05:00")
    with pytest.raises(ValueError, match="max-pending-jobs must be at least 1, got 0"):
        BackfillSLURMCluster(max_pending_jobs=0)


@pytest.mark.slurm
def test_holds_size_through_generations_and_keeps_data(dask_cfg: dict[str, object]) -> None:
    """N workers held through >= 3 generations of walltime expiry; scattered data (which
    cannot be recomputed) survives every worker being retired and replaced."""
    n = 2
    with BackfillSLURMCluster(
        min_walltime="00:01:00", max_walltime="00:01:00", retire_margin="25s", replace_ahead="20s", lost_worker_grace="30s"
    ) as cluster, Client(cluster) as client:
        cluster.scale(n)
        client.wait_for_workers(n, timeout=90)
        first_jobs = {j.job_id for j in cluster.jobs if j.state == "running"}
        assert len(first_jobs) == n
        rng = np.random.default_rng(42)
        chunks = [rng.random(1000) for _ in range(400)]
        futures = client.scatter(chunks)
        expected = float(sum(c.sum() for c in chunks))
        with sampler(client) as samples:
            wait_until(
                "every first-generation job to retire",
                lambda: {j.job_id for j in cluster.jobs if j.state == "ended"} >= first_jobs,
                timeout=150,
            )
            # a tree reduction over the scattered chunks (thousands of tasks in all), run
            # while the second generation retires
            sums = client.map(np.sum, futures, pure=False)
            while len(sums) > 1:
                sums = [client.submit(lambda *xs: float(sum(xs)), *sums[i : i + 4], pure=False) for i in range(0, len(sums), 4)]
            result = sums[0].result(timeout=150)
            wait_until(
                "three generations of retirement",
                lambda: sum(1 for j in cluster.jobs if j.state == "ended" and j.ended_why == "retired") >= 3 * n,
                timeout=240,
            )
        ended = [j for j in cluster.jobs if j.state == "ended"]
        assert all(j.ended_why == "retired" for j in ended), [(j.job_id, j.ended_why) for j in ended]
        assert result == pytest.approx(expected)
        # the scattered data itself is still there, on workers that did not exist at first
        assert client.submit(lambda xs: float(sum(x.sum() for x in xs)), futures).result(timeout=60) == pytest.approx(expected)
        assert not first_jobs & {j.job_id for j in cluster.jobs if j.state in {"running", "retiring"}}
    warm = [(t, k) for t, k in samples]
    print("worker count samples:", [(round(t - warm[0][0], 1), k) for t, k in warm])
    assert longest_below(warm, n - 1) <= 5.0, f"dipped below {n - 1} workers for too long"
    assert sum(1 for _, k in warm if k >= n) / len(warm) >= 0.9  # at full size nearly always


@pytest.mark.slurm
def test_pending_cap_and_scale_down_cancels_pending_first(dask_cfg: dict[str, object], devcluster: DevCluster, slurm: TestSlurm) -> None:
    # fill the burst partition's CPUs so worker jobs stay pending (no reservation → queued)
    rocks = [slurm.submit_sync(sleep_script(600), ["-p", "batch", "-c", "8", "-t", "15"]) for _ in range(4)]
    wait_until("rocks running", lambda: all(s.running for s in slurm.squeue_sync(rocks).values()))
    with BackfillSLURMCluster(cores=4, min_walltime="00:02:00", max_walltime="00:05:00", max_pending_jobs=3) as cluster:
        cluster.scale(6)
        wait_until("3 pending jobs", lambda: sum(1 for j in cluster.jobs if j.state == "pending" and j.job_id) == 3, timeout=60)
        # the cap holds: no more jobs are submitted while they wait
        queued = [s for s in slurm.squeue_sync().values() if s.partition == "burst" and s.pending]
        assert len(queued) == 3
        # free one node (8 CPUs): two 4-CPU workers start, and two more are queued to keep 3 pending
        slurm.cancel_sync([rocks[0]], check=True)
        wait_until("two workers running", lambda: sum(1 for j in cluster.jobs if j.state == "running") == 2, timeout=90)
        wait_until("3 pending again", lambda: sum(1 for j in cluster.jobs if j.state == "pending" and j.job_id) == 3, timeout=60)
        running = {j.job_id for j in cluster.jobs if j.state == "running"}
        pending = {j.job_id for j in cluster.jobs if j.state == "pending"}
        cluster.scale(1)  # surplus 4: the 3 pending go first, then 1 of the 2 running
        wait_until(
            "pending jobs cancelled",
            lambda: not any(s.pending for s in slurm.squeue_sync().values() if s.partition == "burst"),
            timeout=60,
        )
        live = {j.job_id for j in cluster.jobs if j.state in {"running", "retiring"}}
        assert len(live) == 1 and live <= running
        scaled = {j.job_id for j in cluster.jobs if j.ended_why == "scaled down"}
        assert pending <= scaled and len(scaled & running) == 1


@pytest.mark.slurm
def test_killed_node_workers_are_replaced(dask_cfg: dict[str, object], devcluster: DevCluster) -> None:
    with BackfillSLURMCluster(min_walltime="00:05:00", max_walltime="00:10:00", lost_worker_grace="3s") as cluster, Client(cluster) as client:
        cluster.scale(3)
        client.wait_for_workers(3, timeout=90)
        victim = next(j.node for j in cluster.jobs if j.state == "running")
        lost = {j.job_id for j in cluster.jobs if j.node == victim}
        try:
            assert devcluster.kill_node(victim) >= 1
            wait_until(
                "3 workers again, none on the failed node",
                lambda: len([j for j in cluster.jobs if j.state == "running" and j.node != victim and j.workers]) >= 3,
                timeout=150,
            )
            ended = {j.job_id: j.ended_why for j in cluster.jobs if j.state == "ended"}
            assert lost <= set(ended), (lost, ended, [(j.job_id, j.state, j.node, j.workers) for j in cluster.jobs])
            assert all(ended[j] in {"lost: workers disconnected", "node failure"} for j in lost)
        finally:
            devcluster.start_daemon(f"slurmd-{victim}")
            slurm = TestSlurm(devcluster.slurm_conf)
            slurm.resume_node_sync(victim)

            def node_state() -> str:
                out = slurm.node_state_sync(victim)
                if out.startswith(("down", "drain", "fail")):  # resume once slurmd answers again
                    slurm.resume_node_sync(victim)
                return out

            wait_until(f"{victim} back", lambda: node_state() in {"idle", "mix", "alloc"}, timeout=120)


@pytest.mark.slurm
def test_busy_cluster_workers_fit_the_gap_and_the_reservation_holds(dask_cfg: dict[str, object], slurm: TestSlurm) -> None:
    """Rocks fill 6 of 8 CPUs per node for 3 minutes; a 4-node job is planned right after
    them. Workers start at once in the 2-CPU gaps with walltimes that end before that
    planned start, and the big job starts on time."""
    rocks = [slurm.submit_sync(sleep_script(150), ["-p", "batch", "-c", "6", "-t", "3", "-J", "rock"]) for _ in range(4)]
    wait_until("rocks running", lambda: all(s.running for s in slurm.squeue_sync(rocks).values()), timeout=60)
    big = slurm.submit_sync(sleep_script(20), ["-p", "batch", "-N", "4", "--exclusive", "-t", "5", "-J", "big"])
    planned = wait_until(
        "the big job's planned start",
        lambda: (s := slurm.squeue_sync([big])[big]).pending and s.start_time,
        timeout=60,
    )
    with BackfillSLURMCluster(min_walltime="00:01:00", max_walltime="01:00:00", retire_margin="20s") as cluster, Client(cluster) as client:
        t0 = time.monotonic()
        cluster.scale(4)
        client.wait_for_workers(4, timeout=60)
        took = time.monotonic() - t0
        jobs = [j for j in cluster.jobs if j.state == "running"]
        assert len(jobs) == 4
        for j in jobs:
            st = slurm.squeue_sync([j.job_id])[j.job_id]
            assert st.time_limit is not None and st.time_limit < 3600  # not the 1 h maximum
            assert st.start_time + st.time_limit <= planned, (j.job_id, st.start_time + st.time_limit - planned)
        started = wait_until(
            "the big job to start",
            lambda: (s := slurm.squeue_sync([big])[big]).running or s.ended and s,
            timeout=240,
        )
        big_st = slurm.squeue_sync([big])[big]
        assert started and big_st.start_time is not None
        assert big_st.start_time <= planned + 5, f"big job started {big_st.start_time - planned:.0f} s late"
    print(f"4 workers in the gap after {took:.1f} s; big job started {planned - big_st.start_time:.0f} s before its planned start")


@pytest.mark.slurm
def test_adapt_holds_minimum_and_multi_process_jobs_retire_gracefully(dask_cfg: dict[str, object]) -> None:
    """adapt(2, 4) with no load keeps 2 workers through walltime expiry, and a job running
    two worker processes retires both (job COMPLETED, not killed) and is replaced."""
    with BackfillSLURMCluster(
        cores=2, processes=2, min_walltime="00:01:00", max_walltime="00:01:00", retire_margin="25s", replace_ahead="20s"
    ) as cluster, Client(cluster) as client:
        cluster.adapt(minimum=2, maximum=4)
        client.wait_for_workers(2, timeout=90)
        # the workers can connect before the cluster's next look at the queue says RUNNING
        first = wait_until(
            "the worker job to be seen running",
            lambda: {j.job_id for j in cluster.jobs if j.state == "running"},
            timeout=30,
        )
        assert len(first) == 1  # one job hosts both worker processes
        names = next(j.workers for j in cluster.jobs if j.state == "running")
        assert len(names) == 2 and all(n.endswith(("-0", "-1")) for n in names)
        with sampler(client) as samples:
            wait_until(
                "the first job to retire and a replacement to run",
                lambda: any(j.job_id in first and j.state == "ended" for j in cluster.jobs)
                and any(j.state == "running" and j.job_id not in first for j in cluster.jobs),
                timeout=150,
            )
            client.wait_for_workers(2, timeout=60)
        ended = {j.job_id: j.ended_why for j in cluster.jobs if j.state == "ended"}
        assert all(ended[j] == "retired" for j in first if j in ended), ended
        assert cluster.target == {"mode": "adapt", "n": None, "minimum": 2, "maximum": 4}
    assert longest_below(samples, 1) <= 5.0


def test_workers_go_where_the_live_policy_says(tmp_path: Path) -> None:
    """No ``jobqueue.sandfill.queue``: the partition the cluster's policy names for Dask
    workers (its fragment's ``# sandfill-policy:`` line, found through slurm.conf's
    Include); a queue that is set wins. No Slurm is asked (none runs here)."""
    conf = tmp_path / "slurm.conf"
    conf.write_text("ClusterName=t\nNodeName=node[1-2] NodeAddr=127.0.0.1 CPUs=8\nInclude policy.conf\n")
    (tmp_path / "policy.conf").write_text(
        "# Generated by `sandfill policy render`\n"
        '# sandfill-policy: {"name": "t", "roles": {"dask-workers": "sand"}, "tiers": {"sand": "burst"}}\n'
        "PartitionName=burst Nodes=ALL\n"
    )
    cfg = {"jobqueue.sandfill.shared-temp-directory": str(tmp_path / "tls"), "jobqueue.sandfill.log-directory": str(tmp_path / "logs")}
    with dask.config.set(cfg):
        with BackfillSLURMCluster(slurm_conf=str(conf), memory="4G") as c:
            script = c.job_script()
            assert "#SBATCH -p burst" in script and "#SBATCH --mem=4G" in script and "--memory-limit 4.00GiB" in script
            assert "sandfill-cluster-view" in c._repr_html_()  # the repr reads the widget's model
        with BackfillSLURMCluster(slurm_conf=str(conf), queue="batch") as c:
            assert "#SBATCH -p batch" in c.job_script()
        (tmp_path / "policy.conf").write_text("PartitionName=burst Nodes=ALL\n")  # no metadata
        with BackfillSLURMCluster(slurm_conf=str(conf)) as c:
            assert "#SBATCH -p" not in c.job_script()  # Slurm's default partition


# ---- hardening (#11): no plain-TCP scheduler unless the admin says so; dashboards on loopback --


@pytest.fixture
def offsite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, object]]:
    """A Slurm whose nodes are NOT on loopback (so not the devcluster's single-host branch), an
    empty system dask config under tmp_path, and a record of every sbatch (there must be none:
    no Slurm runs here)."""
    conf = tmp_path / "slurm.conf"
    conf.write_text("ClusterName=t\nNodeName=node[1-2] NodeAddr=192.0.2.50 CPUs=8\nPartitionName=burst Nodes=ALL\n")
    system = tmp_path / "etc-dask"
    system.mkdir()
    monkeypatch.setattr(config, "system_config_paths", lambda: [str(system)], raising=False)
    monkeypatch.delenv("JUPYTERHUB_SERVICE_PREFIX", raising=False)
    submitted: list[str] = []

    async def submit(self: object, script: str, **kw: object) -> str:
        submitted.append(script)
        raise AssertionError("nothing may be submitted")

    monkeypatch.setattr(SlurmClient, "submit", submit)
    cfg = {
        "jobqueue.sandfill.slurm-conf": str(conf),
        "jobqueue.sandfill.queue": "burst",
        "jobqueue.sandfill.shared-temp-directory": str(tmp_path / "tls"),
        "jobqueue.sandfill.log-directory": str(tmp_path / "logs"),
        "jobqueue.sandfill.scheduler-options": {},
    }
    with dask.config.set(cfg):
        yield {"system": system, "submitted": submitted, "tls": tmp_path / "tls"}


INSECURE = [
    ({"security": False}, "jobqueue.sandfill.security: False"),
    ({"security": Security()}, "jobqueue.sandfill.security: Security("),
    ({"protocol": "tcp://"}, "protocol: 'tcp://'"),
    ({"scheduler_options": {"protocol": "tcp://"}}, "scheduler-options.protocol: 'tcp://'"),
    ({"scheduler_options": {"security": None}}, "scheduler-options.security: None"),
]


@pytest.mark.parametrize("kwargs,needle", INSECURE)
def test_a_cluster_without_tls_is_refused_before_anything_is_made(offsite: dict[str, object], kwargs: dict[str, object], needle: str) -> None:
    """The user's own settings cannot allow it: dask config, a DASK_* variable, ~/.config."""
    with dask.config.set({"jobqueue.sandfill.allow-insecure": True}):
        with pytest.raises(ValueError) as err:
            BackfillSLURMCluster(**kwargs)
    assert needle in str(err.value) and "without TLS" in str(err.value)
    assert "jobqueue.sandfill.allow-insecure: true in the system dask config" in str(err.value)
    assert offsite["submitted"] == [] and not Path(str(offsite["tls"])).exists()  # nothing made


def test_the_user_config_setting_security_false_is_refused(offsite: dict[str, object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = tmp_path / "user-dask"
    user.mkdir()
    (user / "mine.yaml").write_text("jobqueue:\n  sandfill:\n    allow-insecure: true\n")
    monkeypatch.setenv("DASK_JOBQUEUE__SANDFILL__ALLOW_INSECURE", "true")
    assert dask.config.get("jobqueue.sandfill.allow-insecure", config=dask.config.collect([str(user)])) is True
    assert config.admin_allows_insecure() is False  # neither the file nor the variable is read
    with dask.config.set({"jobqueue.sandfill.security": False}):
        with pytest.raises(ValueError, match="jobqueue.sandfill.security: False would start a scheduler without TLS"):
            BackfillSLURMCluster()
    assert offsite["submitted"] == []


def test_the_admin_can_allow_a_cluster_without_tls(offsite: dict[str, object]) -> None:
    (Path(str(offsite["system"])) / "site.yaml").write_text("jobqueue:\n  sandfill:\n    allow-insecure: true\n")
    assert config.admin_allows_insecure() is True
    with BackfillSLURMCluster(security=False) as c:
        assert c.scheduler_address.startswith("tcp://")
        assert _bound_hosts(c.scheduler.http_server) == {"127.0.0.1"}
    assert offsite["submitted"] == []


def _bound_hosts(server: object) -> set[str]:
    return {str(a[0]) for a in get_tcp_server_addresses(server)}


def _non_loopback_ip() -> str | None:
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing address
        ip = s.getsockname()[0]
        return None if ip.startswith("127.") else ip
    return None


@pytest.mark.parametrize("address", [None, ":0", 0, "localhost:0"])
def test_the_dashboard_binds_loopback_off_the_devcluster(offsite: dict[str, object], monkeypatch: pytest.MonkeyPatch, address: object) -> None:
    options = {} if address is None else {"dashboard_address": address}
    with BackfillSLURMCluster(scheduler_options=options) as c:
        assert not c.scheduler_address.startswith("tls://127.")  # the scheduler itself is not on loopback
        assert _bound_hosts(c.scheduler.http_server) == {"127.0.0.1"}
        port = c.scheduler_info["services"]["dashboard"]
        ip = _non_loopback_ip()
        if ip is not None:  # from another machine's point of view: nothing answers
            with pytest.raises(ConnectionRefusedError), socket.create_connection((ip, port), timeout=5):
                pass
        # the link goes through the Jupyter server's authenticated proxy
        assert c.dashboard_path == f"proxy/{port}/status"
        assert c.dashboard_link == f"http://127.0.0.1:{port}/status"  # no Jupyter known
        monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/alice/")
        c.proxy_prefix = "/user/alice/"
        assert c.dashboard_link == c.model()["dashboard_link"] == f"/user/alice/proxy/{port}/status"
        assert f"href='/user/alice/proxy/{port}/status'" in c._repr_html_()
        # every worker's dashboard is on loopback too
        assert "--dashboard-address 127.0.0.1:0" in c.job_script()
    assert offsite["submitted"] == []


def test_a_kernel_under_jupyterhub_links_through_its_proxy(offsite: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/bob/")
    with BackfillSLURMCluster() as c:
        assert c.dashboard_link == f"/user/bob/proxy/{c.scheduler_info['services']['dashboard']}/status"


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        ({"scheduler_options": {"dashboard_address": "0.0.0.0:8787"}}, "scheduler-options.dashboard_address: '0.0.0.0:8787' would listen beyond loopback"),
        ({"scheduler_options": {"dashboard_address": "192.0.2.2:0"}}, "scheduler-options.dashboard_address: '192.0.2.2:0' would listen beyond loopback"),
        ({"worker_extra_args": ["--dashboard-address", ":0"]}, None),
        ({"worker_extra_args": ["--dashboard-address", "0.0.0.0:0"]}, "worker-extra-args --dashboard-address: '0.0.0.0:0' would listen beyond loopback"),
    ],
)
def test_a_dashboard_beyond_loopback_is_refused(offsite: dict[str, object], kwargs: dict[str, object], needle: str | None) -> None:
    if needle is None:  # no host given: loopback, the port kept
        with BackfillSLURMCluster(**kwargs) as c:
            assert "--dashboard-address 127.0.0.1:0" in c.job_script()
        return
    with pytest.raises(ValueError) as err:
        BackfillSLURMCluster(**kwargs)
    assert needle in str(err.value)
    assert offsite["submitted"] == [] and not Path(str(offsite["tls"])).exists()


def test_a_configured_interface_is_where_the_scheduler_listens(offsite: dict[str, object]) -> None:
    """TLS on and an interface named: the scheduler listens on that interface's address
    only, never on 0.0.0.0 (issue #12 will choose addresses across hosts)."""
    with BackfillSLURMCluster(interface="lo") as c:
        assert c.scheduler_address.startswith("tls://127.0.0.1:")
        (listener,) = c.scheduler.listeners
        assert _bound_hosts(listener.tcp_server) == {"127.0.0.1"}
        assert "--interface lo" in c.job_script()


def test_the_scheduler_listens_on_its_route_toward_the_nodes_and_workers_on_theirs(offsite: dict[str, object]) -> None:
    """No loopback special case: the scheduler binds the local address toward the nodes
    slurm.conf declares (192.0.2.50 here: not loopback, never 0.0.0.0), and each worker's
    ``--host`` is worked out on its node toward that address."""
    ours = _non_loopback_ip()
    with BackfillSLURMCluster() as c:
        (listener,) = c.scheduler.listeners
        hosts = _bound_hosts(listener.tcp_server)
        assert "0.0.0.0" not in hosts and len(hosts) == 1
        (host,) = hosts
        assert c.scheduler_address.startswith(f"tls://{host}:")
        if ours is not None:
            assert host == ours
        assert f"--host $({shlex.quote(sys.executable)} -m sandfill.net toward {host})" in c.job_script()
    with BackfillSLURMCluster(scheduler_options={"host": "127.0.0.1"}, worker_extra_args=["--host", "127.0.0.1"]) as c:
        assert c.scheduler_address.startswith("tls://127.0.0.1:")  # the user's host is kept
        assert "sandfill.net" not in c.job_script() and "--host 127.0.0.1" in c.job_script()
    assert offsite["submitted"] == []


def test_no_known_node_address_is_a_clear_error(offsite: dict[str, object], tmp_path: Path) -> None:
    conf = tmp_path / "empty.conf"
    conf.write_text("ClusterName=t\n")
    with pytest.raises(ValueError, match=r"declares no node .*scheduler-options.host"):
        BackfillSLURMCluster(slurm_conf=str(conf))
    assert offsite["submitted"] == [] and not Path(str(offsite["tls"])).exists()


def test_the_tls_staging_directory_is_owner_only(offsite: dict[str, object]) -> None:
    tls = Path(str(offsite["tls"]))
    tls.mkdir(mode=0o755)
    tls.chmod(0o755)  # left loose by an older version or a umask
    with BackfillSLURMCluster() as c:
        assert (tls.stat().st_mode & 0o777) == 0o700
        staged = [p for p in tls.iterdir() if p.name.endswith(".key") or ".key." in p.name]
        assert staged and all((p.stat().st_mode & 0o077) == 0 for p in staged), staged
        assert str(tls) in c.job_script()


@pytest.mark.slurm
def test_queue_queries_do_not_grow_with_the_number_of_workers(dask_cfg: dict[str, object], slurm: TestSlurm) -> None:
    """slurmctld's queue queries over a cluster's life (start, compute, close), counted by
    sdiag, for 1 worker job and for 12: the keeper's one shared poller answers for all of them
    and no worker job asks Slurm for its own end (which cost one query per job: 11 more)."""

    def life(n: int) -> int:
        before = queue_rpcs(slurm.sdiag_rpcs_sync())
        with BackfillSLURMCluster(min_walltime="00:05:00", max_walltime="00:10:00") as cluster, Client(cluster) as client:
            cluster.scale(n)
            client.wait_for_workers(n, timeout=120)
            assert sum(client.gather(client.map(lambda x: x + 1, range(100)))) == 5050
            t_end = time.monotonic() + 25  # the same steady stretch for both sizes

            wait_until("a steady stretch", lambda: time.monotonic() >= t_end, timeout=40, interval=1)
        return queue_rpcs(slurm.sdiag_rpcs_sync()) - before

    one, twelve = life(1), life(12)
    print(f"queue queries over a cluster's life: {one} with 1 worker job, {twelve} with 12")
    assert twelve <= one + 5, f"queue queries grew with the workers: {one} for 1 worker job, {twelve} for 12"


def test_under_a_hub_the_cluster_reads_the_sandfill_service(offsite: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> None:
    """A server job has SANDFILL_SERVICE_URL and its token: its clusters' job states come from
    the hub's one Slurm view; outside a hub, from this process's own poller."""
    from sandfill.slurm import QueuePoller
    from sandfill.slurm.remote import RemotePoller
    from sandfill.slurm.view import ServiceSchedule

    monkeypatch.setenv("SANDFILL_SERVICE_URL", "http://127.0.0.1:9/services/sandfill/")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "server-token")
    with BackfillSLURMCluster() as c:
        remote = c.poller
        assert isinstance(remote, RemotePoller) and remote.url == "http://127.0.0.1:9/services/sandfill/"
        assert c.keeper.cluster.poller is remote
        assert isinstance(c.planner.schedule, ServiceSchedule) and c.planner.schedule.service is remote  # the gaps too
    remote.close()
    monkeypatch.delenv("SANDFILL_SERVICE_URL")
    with BackfillSLURMCluster() as c:
        assert type(c.poller) is QueuePoller and c.poller is QueuePoller.shared(c.slurm_conf) and c.planner.schedule is c.slurm
    assert offsite["submitted"] == []
