"""``sandfill policy simulate`` of the GPU example policy: ``--node-features`` gives the machine."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sandfill.cli import main

ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())
GPU_EXAMPLE = str(ROOT / "policies" / "examples" / "gpu.yaml")
FEATURES = ["--node-features", "cpu[1-2]=cpu", "--node-features", "bigmem1=bigmem",
            "--node-features", "gpu1=gpu"]
HEADER = "JobID|User|Partition|Submit|Start|End|ElapsedRaw|TimelimitRaw|NCPUS|NNodes\n"


def _history(tmp_path: Path) -> Path:
    """Three 1-h GPU jobs of 8 CPUs, all at once (sacct -P)."""
    rows = [f"{i}|a|gpu|2024-01-01T00:00:00|2024-01-01T00:00:05|2024-01-01T01:00:05|3600|60|8|1\n"
            for i in range(1, 4)]
    f = tmp_path / "s.txt"
    f.write_text(HEADER + "".join(rows))
    return f


def test_simulate_the_gpu_example_on_unlike_nodes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["policy", "simulate", GPU_EXAMPLE, "--sacct-file", str(_history(tmp_path)),
            "--use-trace-partitions", "--nodes", "4", "--cpus-per-node", "8"]
    assert main([*args, *FEATURES]) == 0
    out = capsys.readouterr().out
    # one at a time on gpu1 (0, 1 h and 2 h of waiting) while three nodes sit idle
    assert re.search(r"tier:gpu\s+max_wait\s+2\.0h", out), out
    assert re.search(r"all\s+utilization\s+25\.0%", out), out
    # a machine without the gpu feature: the node set matches nothing, said so
    assert main([*args, "--node-features", "node[1-4]=cpu"]) == 2
    assert "tier 'gpu': features gpu matches none" in capsys.readouterr().err
    assert main([*args, "--node-features", "gpu1=gpu"]) == 2
    assert "--node-features lists 1 nodes, but 4 are simulated" in capsys.readouterr().err
