"""The embedded devcluster is a real Slurm: these tests talk to it."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

from sandfill.dev.devcluster import DevCluster, daemons
from sandfill.dev.devcluster.accounting import run_sacctmgr
from sandfill.dev.devcluster.daemons import processes_using
from sandfill.dev.testing import TestSlurm, booted_devcluster, sleep_script
from sandfill.slurm import sacctmgr, sinfo
from sandfill.slurm.commands import wait_until

pytestmark = pytest.mark.slurm


def _sinfo(c: DevCluster) -> dict[str, str]:
    return sinfo.node_states(sinfo.parse_sinfo_nodes(c.runner().check(sinfo.nodes_argv("batch"))))


def test_up_lists_idle_nodes(devcluster: DevCluster) -> None:
    nodes = wait_until("all nodes idle", lambda: (s := _sinfo(devcluster)) and all(v == "idle" for v in s.values()) and s)
    assert sorted(nodes) == ["node1", "node2", "node3", "node4"]
    st = devcluster.status()
    names = {d["name"] for d in st["daemons"]}
    assert {"munged", "mariadbd", "slurmdbd", "slurmctld", "slurmd-node1", "slurmd-node4"} <= names
    assert all(d["alive"] for d in st["daemons"])


def test_two_node_job_runs_on_distinct_nodes_and_is_accounted(devcluster: DevCluster, slurm: TestSlurm, tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    out = tmp_path / "out.txt"
    script = "#!/bin/sh\nsrun --ntasks-per-node=1 printenv SLURMD_NODENAME\n"
    jid = slurm.submit_sync(script, ["-N", "2", "--ntasks-per-node=1", "-p", "batch", "-t", "1", "-o", str(out)])
    final = wait_until("the job to end", lambda: (s := slurm.squeue_sync([jid]).get(jid)) and s.ended and s, timeout=60)
    assert final.state == "COMPLETED"
    nodes = out.read_text().split()
    assert len(nodes) == 2 and len(set(nodes)) == 2, nodes
    acct = wait_until(
        "sacct to record the job's end",
        lambda: (a := slurm.sacct_final_sync([jid]).get(jid)) and a.ended and a.nodes and "[" in a.nodes and a,
        timeout=60,
    )
    # slurmdbd first records the batch host and fills in the allocation a moment later
    assert acct.state == "COMPLETED"
    assert acct.nodes == f"node[{'-'.join(sorted(n[4:] for n in nodes))}]" or "," in acct.nodes


def test_qos_per_user_cpu_cap_holds_job_with_qos_reason(devcluster: DevCluster, slurm: TestSlurm) -> None:
    runner = devcluster.runner()
    runner.run(sacctmgr.add_qos_argv("capped"))
    runner.check(sacctmgr.modify_qos_argv("capped", ["MaxTRESPerUser=cpu=2"]))
    run_sacctmgr(runner, ["modify", "user", "root", "set", "qos+=capped"])
    first = slurm.submit_sync(sleep_script(300), ["-c", "2", "--qos=capped", "-p", "batch", "-t", "5"])
    second = slurm.submit_sync(sleep_script(300), ["-c", "1", "--qos=capped", "-p", "batch", "-t", "5"])
    wait_until("first job running", lambda: slurm.squeue_sync([first])[first].running)
    st = wait_until(
        "second job held by the QOS",
        lambda: (s := slurm.squeue_sync([second])[second]) and s.reason and s.reason.startswith("QOSMax") and s,
        timeout=30,
    )
    assert st.pending and st.reason == "QOSMaxCpuPerUserLimit"


def test_up_twice_second_cluster_and_down_leaves_nothing(devcluster: DevCluster) -> None:
    root = Path(tempfile.mkdtemp(prefix="sandfill-second-", dir="/tmp"))
    root.chmod(0o755)
    second = DevCluster(root)
    messages: list[str] = []
    try:
        assert second.up(nodes=2, cpus=4, log=messages.append) is True
        assert second.up(nodes=2, cpus=4, log=messages.append) is False  # harmless no-op
        assert "already running" in messages[-1]
        # distinct ports from the first cluster, both answer
        a, b = devcluster.info(), second.info()
        assert a and b and not (set(_ports(a.ports)) & set(_ports(b.ports)))
        assert sorted(_sinfo(second)) == ["node1", "node2"]
        assert sorted(_sinfo(devcluster)) == ["node1", "node2", "node3", "node4"]
        # a running job on the second cluster must not survive `down`
        client = TestSlurm(second.slurm_conf)
        jid = client.submit_sync(sleep_script(600), ["-c", "1", "-t", "10"])
        wait_until("job running", lambda: client.squeue_sync([jid])[jid].running)
        pids = [d.pid for d in second.daemons()]
    finally:
        second.down(log=messages.append)
    assert not processes_using(root)
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    # the first cluster is untouched
    assert _sinfo(devcluster)


def _ports(p: dict[str, object]) -> list[int]:
    out: list[int] = []
    for v in p.values():
        out.extend(v if isinstance(v, list | tuple) else [v])  # type: ignore[arg-type]
    return out


def test_cli_env_and_status(devcluster: DevCluster, capsys: pytest.CaptureFixture[str]) -> None:
    from sandfill.cli import main

    assert main(["devcluster", "--state-dir", str(devcluster.layout.root), "env"]) == 0
    assert f"export SLURM_CONF={devcluster.slurm_conf}" in capsys.readouterr().out
    assert main(["devcluster", "--state-dir", str(devcluster.layout.root), "status"]) == 0
    out = capsys.readouterr().out
    assert "slurmctld" in out and "running" in out and "PARTITION" in out


def _alive(pid: int) -> bool:
    st = daemons.proc_stat(pid)
    return st is not None and st.state != "Z"


def _job_pids(c: DevCluster, slurm: TestSlurm, tmp: Path) -> tuple[str, list[int]]:
    """A running job whose shell and its background ``sleep`` wrote their PIDs."""
    out = tmp / "job-pids.txt"
    script = f"#!/bin/sh\nsleep 600 &\necho $$ $! > {out}.tmp\nmv {out}.tmp {out}\nwait\n"
    jid = slurm.submit_sync(script, ["-c", "1", "-t", "10", "-o", "/dev/null"])
    wait_until("the job to write its PIDs", out.exists, timeout=60)
    return jid, [int(p) for p in out.read_text().split()]


def test_down_stops_its_daemons_and_jobs_but_not_a_bystander(tmp_path: Path) -> None:
    """A process with this cluster's SLURM_CONF in its environment, its cwd in the state
    directory and a file there open survives `down`; the daemons and the job do not."""
    tmp_path.chmod(0o755)
    with booted_devcluster("sandfill-down-", nodes=1, cpus=2) as c:
        root = c.layout.root
        with open(root / "log" / "bystander.out", "wb") as held:
            bystander = subprocess.Popen(
                ["sleep", "600"], cwd=root, stdout=held, start_new_session=True,
                env={**os.environ, **c.env()},
            )
        try:
            assert bystander.pid in processes_using(root)  # what the old `down` killed
            _, job = _job_pids(c, TestSlurm(c.slurm_conf), tmp_path)
            ds = c.daemons()
            below = {p.pid for d in ds for p in daemons.descendants(d)}
            assert set(job) <= below and bystander.pid not in below
            assert c.down(log=lambda *_: None) is True
            assert bystander.poll() is None, "down killed a process it did not start"
            assert not [d.name for d in ds if daemons.is_alive(d)]
            assert not [pid for pid in job if _alive(pid)], "the job's processes outlived down"
        finally:
            bystander.kill()  # by its PID: the test started it
            bystander.wait(10)


def test_kill_node_kills_that_nodes_jobs_only(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    with booted_devcluster("sandfill-killnode-", nodes=2, cpus=1) as c:
        slurm = TestSlurm(c.slurm_conf)
        (tmp_path / "a").mkdir(mode=0o755)
        (tmp_path / "b").mkdir(mode=0o755)
        ja, pids_a = _job_pids(c, slurm, tmp_path / "a")
        jb, pids_b = _job_pids(c, slurm, tmp_path / "b")
        nodes = {j: s.nodes for j, s in slurm.squeue_sync([ja, jb]).items()}
        assert sorted(nodes.values()) == ["node1", "node2"], nodes
        victims = pids_a if nodes[ja] == "node1" else pids_b
        survivors = pids_b if nodes[ja] == "node1" else pids_a
        assert c.kill_node("node1") >= len(victims)
        assert not [p for p in victims if _alive(p)]
        assert all(_alive(p) for p in survivors)
        assert not daemons.is_alive(next(d for d in c.daemons() if d.name == "slurmd-node1"))


def test_three_devclusters_booted_at_once_all_come_up() -> None:
    """Booted in parallel threads they share nothing: MariaDB's tmpdir is in each state
    directory (they collided in /tmp), and the ports are claimed, never handed out twice."""
    roots = [Path(tempfile.mkdtemp(prefix=f"sandfill-par{i}-", dir="/tmp")) for i in range(3)]
    clusters = [DevCluster(r / "dc") for r in roots]
    errors: dict[int, BaseException] = {}

    def boot(i: int) -> None:
        try:
            clusters[i].up(nodes=1, cpus=2, timeout=240, log=lambda *_: None)
        except BaseException as exc:  # reported below, with which cluster
            errors[i] = exc

    threads = [threading.Thread(target=boot, args=(i,), daemon=True) for i in range(3)]
    started: list[daemons.Daemon] = []
    try:
        for r in roots:
            r.chmod(0o755)
        for t in threads:
            t.start()
        for t in threads:
            t.join(600)
        assert not [t for t in threads if t.is_alive()], "a boot did not finish in 10 minutes"
        assert errors == {}, {i: str(e)[-1500:] for i, e in errors.items()}
        assert all(c.is_running() and sorted(_sinfo(c)) == ["node1"] for c in clusters)
        ports = [set(_ports(c.info().ports)) for c in clusters if c.info()]  # type: ignore[union-attr]
        assert len(ports) == 3 and not (ports[0] & ports[1] or ports[0] & ports[2] or ports[1] & ports[2])
    finally:
        for t in threads:
            t.join(600)  # a boot still under way stops what it started on failure
        for c, r in zip(clusters, roots, strict=True):
            started += c.daemons()
            c.down(log=lambda *_: None)
            shutil.rmtree(r, ignore_errors=True)
    assert len(started) == 3 * 5 and not [d.name for d in started if daemons.is_alive(d)]


def test_a_user_cannot_see_another_users_job() -> None:
    """PrivateData (the devcluster's default): as A (sudo -u), squeue shows A's job and not
    B's; root sees both."""
    from sandfill.dev.accounts import create_accounts, remove_accounts

    users = ["sfh5-ada", "sfh5-bob"]
    create_accounts(users)
    try:
        with booted_devcluster("sandfill-private-", nodes=1, cpus=2, users=users) as c:
            assert "\nPrivateData=jobs,usage,users\n" in c.slurm_conf.read_text()
            as_user = {u: TestSlurm(c.slurm_conf, prefix=["sudo", "-u", u, "env", f"SLURM_CONF={c.slurm_conf}"]) for u in users}
            args = ["-c", "1", "-t", "5", "-o", "/dev/null", "--chdir=/tmp"]
            ids = {u: as_user[u].submit_sync(sleep_script(300), args) for u in users}
            root = TestSlurm(c.slurm_conf)
            wait_until("root to see both jobs", lambda: set(root.user_job_ids_sync(users, "all")) == set(ids.values()), timeout=30)
            ada, bob = users
            assert as_user[ada].user_job_ids_sync([ada, bob], "all") == [ids[ada]]
            assert as_user[ada].user_job_ids_sync([bob], "all") == []
            assert as_user[bob].user_job_ids_sync([ada, bob], "all") == [ids[bob]]
            root.cancel_sync(ids.values())
    finally:
        wait_until("the test accounts removed", lambda: (remove_accounts(users), True)[1], timeout=30)
