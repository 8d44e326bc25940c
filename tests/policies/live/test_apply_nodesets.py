"""apply / show / diff of tiers with node sets on real devclusters (marked ``slurm``): a
tier restricted to one node of the private single-host cluster, then restored; the GPU
example policy on a ``--hosts`` cluster of unlike nodes, its feature set resolved there."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandfill.cli import main
from sandfill.dev.devcluster import DevCluster
from sandfill.dev.testing import TestSlurm, booted_devcluster
from sandfill.policies.document.load import load_policy
from sandfill.slurm import scontrol
from sandfill.slurm.commands import Runner, wait_until
from sandfill.slurm.hostlist import expand_hostlist

pytestmark = pytest.mark.slurm
DATA = Path(__file__).parent / "data"
SHORT = DATA / "short-tier.yaml"
ONE_NODE = DATA / "one-node-tier.yaml"
ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())
GPU_EXAMPLE = ROOT / "policies" / "examples" / "gpu.yaml"
BASE_POLICY = ROOT / "tests" / "data" / "devcluster-policy.yaml"


def _apply(conf: str, path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    rc = main(["policy", "apply", str(path), "--slurm-conf", conf, "--yes"])
    out = capsys.readouterr()
    assert rc == 0, out.out + out.err
    return out.out


def _partition_nodes(conf: str) -> dict[str, str]:
    text = Runner(conf).check(scontrol.show_partitions_argv())
    return {p["PartitionName"]: p["Nodes"] for p in scontrol.parse_partitions(text)}


def _shows_back(conf: str, path: Path, tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``policy show`` reads ``path``'s policy back whole and ``policy diff`` finds nothing."""
    shown = tmp / "live.yaml"
    assert main(["policy", "show", "--slurm-conf", conf, "-o", str(shown)]) == 0
    capsys.readouterr()
    assert load_policy(shown) == load_policy(path)
    assert main(["policy", "diff", str(path), "--slurm-conf", conf]) == 0
    assert capsys.readouterr().out == ""


def _show(conf: str, path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    assert main(["policy", "show", "--slurm-conf", conf, "-o", str(path)]) == 0
    capsys.readouterr()
    return path


def test_a_tier_restricted_to_one_node_is_applied_read_back_and_restored(
        conf: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before, nodes_before = _show(conf, tmp_path / "before.yaml", capsys), _partition_nodes(conf)
    assert set(nodes_before.values()) == {"node[1-4]"}
    _apply(conf, SHORT, capsys)  # the same tiers without the node set
    assert main(["policy", "diff", str(ONE_NODE), "--slurm-conf", conf]) == 1
    assert "+ tiers.short.nodes: {list: node2}" in capsys.readouterr().out.splitlines()
    out = _apply(conf, ONE_NODE, capsys)
    assert "verified" in out and "tier short: nodes node2 -> Nodes=node2" in out
    assert _partition_nodes(conf) == {"interactive": "node[1-4]", "short": "node2", "batch": "node[1-4]"}
    _shows_back(conf, ONE_NODE, tmp_path, capsys)
    _apply(conf, before, capsys)  # restore what was in force: every partition on every node
    assert _partition_nodes(conf) == nodes_before
    assert load_policy(_show(conf, tmp_path / "after.yaml", capsys)) == load_policy(before)


@pytest.fixture(scope="module")
def hosts() -> Iterator[DevCluster]:
    with booted_devcluster("sandfill-policy-hosts-", hosts=True, policy=BASE_POLICY) as cluster:
        yield cluster


def test_the_gpu_example_puts_its_gpu_tier_on_the_gpu_node_of_unlike_hosts(
        hosts: DevCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = str(hosts.slurm_conf)
    out = _apply(conf, GPU_EXAMPLE, capsys)
    assert "verified" in out and "tier gpu: features gpu -> Nodes=gpu1" in out
    nodes = _partition_nodes(conf)
    assert nodes["gpu"] == "gpu1"
    every = {"cpu1", "cpu2", "bigmem1", "gpu1"}
    assert set(expand_hostlist(nodes["interactive"])) == set(expand_hostlist(nodes["batch"])) == every
    _shows_back(conf, GPU_EXAMPLE, tmp_path, capsys)  # read back as features: [gpu]
    tmp_path.chmod(0o755)
    out = tmp_path / "gpu.out"
    slurm = TestSlurm(conf)
    jid = slurm.submit_sync("#!/bin/sh\necho node=$SLURMD_NODENAME cuda=$CUDA_VISIBLE_DEVICES\n",
                            ["-p", "gpu", "--gres=gpu:1", "-t", "1", "-o", str(out)])
    final = wait_until("the GPU job to end",
                       lambda: (s := slurm.squeue_sync([jid]).get(jid)) and s.ended and s, timeout=60)
    assert final.state == "COMPLETED", (final, out.read_text() if out.exists() else "")
    assert out.read_text().split() == ["node=gpu1", "cuda=0"]
