"""``sandfill policy render`` of a policy with node sets: ``--node-features`` gives the machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandfill.cli import main

ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())
GPU_EXAMPLE = str(ROOT / "policies" / "examples" / "gpu.yaml")
FEATURES = ["--node-features", "cpu[1-2]=cpu", "--node-features", "bigmem1=bigmem",
            "--node-features", "gpu1=gpu"]


def test_render_resolves_features_given_on_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "render", GPU_EXAMPLE, *FEATURES]) == 0
    out = capsys.readouterr().out
    assert "PartitionName=gpu Nodes=gpu1 " in out
    assert "PartitionName=batch Nodes=cpu1,cpu2,bigmem1,gpu1 " in out


@pytest.mark.parametrize(("extra", "words"), [
    ([], "tier 'gpu' selects features gpu"),
    (["--node-features", "gpu1=g;x"], "'gpu1=g;x'"),
])
def test_render_without_or_with_bad_features_is_refused(
        capsys: pytest.CaptureFixture[str], extra: list[str], words: str) -> None:
    assert main(["policy", "render", GPU_EXAMPLE, *extra]) == 2
    out = capsys.readouterr()
    assert words in out.err
    assert "PartitionName" not in out.out


def test_check_tells_a_node_set_that_matches_no_given_node(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "check", GPU_EXAMPLE, *FEATURES]) == 0
    assert "OK" in capsys.readouterr().out
    assert main(["policy", "check", GPU_EXAMPLE, "--node-features", "node[1-4]=cpu"]) == 1
    out = capsys.readouterr().out
    assert "INVALID (1 problem(s))" in out
    assert "tiers.gpu.nodes: features gpu matches none of the cluster's nodes" in out
    assert main(["policy", "check", GPU_EXAMPLE, "--node-features", "x[2-1]"]) == 2
    assert "--node-features: 'x[2-1]'" in capsys.readouterr().err
