"""``sandfill devcluster up --hosts`` on a real Slurm (marked ``slurm``: run under the live
lock). The nodes have distinct addresses, none 127.0.0.1, and register idle; a job on each
node sees its node's own address; a ``--gres=gpu:1`` job runs on the GPU node with its GPU;
``down`` leaves no namespace, veth, bridge or process. The boot time is printed."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandfill.cli import main
from sandfill.dev.devcluster import DevCluster, daemons, netns
from sandfill.dev.testing import TestSlurm
from sandfill.slurm import scontrol
from sandfill.slurm.commands import wait_until

pytestmark = pytest.mark.slurm
TEST_POLICY = Path(__file__).parents[2] / "data" / "devcluster-policy.yaml"


@pytest.fixture(scope="module")
def hosts() -> Iterator[DevCluster]:
    root = Path(tempfile.mkdtemp(prefix="sandfill-hosts-", dir="/tmp"))
    root.chmod(0o755)
    c = DevCluster(root)
    t0 = time.monotonic()
    try:
        c.up(hosts=True, policy=TEST_POLICY, log=lambda *_: None)
        print(f"\n--hosts devcluster booted in {time.monotonic() - t0:.1f} s", file=sys.stderr)
        yield c
    finally:
        c.down(log=lambda *_: None)
        if not c.layout.network.exists() and not c.daemons():  # all stopped: its files can go
            shutil.rmtree(root, ignore_errors=True)


def _scontrol_nodes(c: DevCluster) -> dict[str, dict[str, str]]:
    # (sandfill.slurm.scontrol has no `show nodes` argv yet; its parser reads the lines)
    out = c.runner().check(["scontrol", "show", "nodes", "--oneliner"])
    rows = [scontrol.parse_key_values(line) for line in out.splitlines() if line.strip()]
    return {r["NodeName"]: r for r in rows}


def _run_on(slurm: TestSlurm, out: Path, args: list[str], script: str) -> str:
    jid = slurm.submit_sync(script, [*args, "-t", "1", "-o", str(out)])
    final = wait_until("the job to end", lambda: (s := slurm.squeue_sync([jid]).get(jid)) and s.ended and s, timeout=60)
    assert final.state == "COMPLETED", (final, out.read_text() if out.exists() else "")
    return out.read_text()


def test_nodes_have_distinct_addresses_none_loopback_and_are_idle(hosts: DevCluster, capsys: pytest.CaptureFixture[str]) -> None:
    nodes = wait_until("all nodes idle", lambda: (n := _scontrol_nodes(hosts)) and all(r["State"] == "IDLE" for r in n.values()) and n)
    addrs = {name: r["NodeAddr"] for name, r in nodes.items()}
    assert sorted(addrs) == ["bigmem1", "cpu1", "cpu2", "gpu1"]
    assert len(set(addrs.values())) == 4 and "127.0.0.1" not in addrs.values()
    assert nodes["gpu1"]["Gres"] == "gpu:2" and nodes["bigmem1"]["AvailableFeatures"] == "bigmem"
    assert main(["devcluster", "status", "--json", "--state-dir", str(hosts.layout.root)]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["shape"] == "hosts" and {n["name"]: n["address"] for n in st["nodes"]} == addrs
    assert st["head_addr"] not in addrs.values() and st["head_addr"] != "127.0.0.1"


def test_a_job_on_each_node_sees_its_own_address(hosts: DevCluster, tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    slurm = TestSlurm(hosts.slurm_conf)
    addrs = {name: r["NodeAddr"] for name, r in _scontrol_nodes(hosts).items()}
    for node, addr in addrs.items():
        seen = _run_on(slurm, tmp_path / f"{node}.out", ["-w", node, "-p", "batch"], "#!/bin/sh\n/usr/sbin/ip -4 -o addr show\n")
        mine = {f.split("/")[0] for line in seen.splitlines() if " inet " in line for f in line.split()[3:4]}
        assert mine == {"127.0.0.1", addr}, (node, seen)


def test_steps_cross_hosts_from_a_job_and_from_the_head(hosts: DevCluster, tmp_path: Path) -> None:
    """srun inside a 2-node job (node to node) and srun on the head (head to node)."""
    tmp_path.chmod(0o755)
    slurm = TestSlurm(hosts.slurm_conf)
    addrs = {name: r["NodeAddr"] for name, r in _scontrol_nodes(hosts).items()}
    script = "#!/bin/sh\nsrun --ntasks-per-node=1 /usr/sbin/ip -4 -o addr show dev eth0\n"
    seen = _run_on(slurm, tmp_path / "two.out", ["-N", "2", "-w", "cpu[1-2]", "-p", "batch"], script)
    assert {line.split()[3].split("/")[0] for line in seen.splitlines()} == {addrs["cpu1"], addrs["cpu2"]}
    res = hosts.runner().check(["srun", "-w", "bigmem1", "-p", "batch", "-t", "1", "/usr/sbin/ip", "-4", "-o", "addr", "show", "dev", "eth0"])
    assert res.split()[3].split("/")[0] == addrs["bigmem1"]


def test_a_gpu_job_runs_on_the_gpu_node_with_its_gpu(hosts: DevCluster, tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    slurm = TestSlurm(hosts.slurm_conf)
    script = "#!/bin/sh\necho node=$SLURMD_NODENAME gpus=$SLURM_JOB_GPUS cuda=$CUDA_VISIBLE_DEVICES\n"
    seen = _run_on(slurm, tmp_path / "gpu.out", ["--gres=gpu:1", "-p", "batch"], script)
    assert seen.split() == ["node=gpu1", "gpus=0", "cuda=0"], seen


def test_down_leaves_no_namespace_veth_bridge_or_process(hosts: DevCluster) -> None:
    net = netns.load(hosts.layout.network)
    assert net is not None
    ds = hosts.daemons()
    assert {d.name for d in ds} >= {f"slurmd-{n}" for n in net.nodes}
    assert all(netns.pids_in(net.namespace(n)) for n in net.nodes)  # each slurmd in its namespace
    assert hosts.down(log=lambda *_: None) is True
    assert not any(daemons.is_alive(d) for d in ds)
    assert not {net.namespace(n) for n in net.nodes} & netns.namespaces()
    assert not {net.bridge, *(net.veth(n) for n in net.nodes)} & netns.links()
    assert not hosts.layout.network.exists() and not hosts.layout.pids.exists()
