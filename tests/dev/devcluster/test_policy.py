"""The devcluster's policy fragment: node sets resolve against the devcluster's own nodes."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandfill.dev.devcluster import nodeclasses
from sandfill.dev.devcluster.policy import policy_fragment
from sandfill.policies.document.render import RenderError

ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())
GPU_EXAMPLE = str(ROOT / "policies" / "examples" / "gpu.yaml")


def test_the_gpu_example_on_the_hosts_shape_puts_the_gpu_partition_on_gpu1() -> None:
    specs = nodeclasses.nodes_of(nodeclasses.DEFAULT_HOSTS)
    text = policy_fragment(GPU_EXAMPLE, nodes=nodeclasses.hostlist(specs), machine=specs)
    assert "PartitionName=gpu Nodes=gpu1 " in text
    assert "PartitionName=batch Nodes=cpu[1-2],bigmem1,gpu1 " in text


def test_a_feature_set_the_nodes_lack_is_refused_naming_the_tier() -> None:
    specs = nodeclasses.uniform(4, cpus=8, memory_mb=8000)  # the single-host shape: no features
    with pytest.raises(RenderError, match="tier 'gpu': features gpu matches none"):
        policy_fragment(GPU_EXAMPLE, nodes=nodeclasses.hostlist(specs), machine=specs)


def test_the_default_policy_fragment_is_as_before() -> None:
    specs = nodeclasses.uniform(4, cpus=8, memory_mb=8000)
    assert policy_fragment(None, nodes="node[1-4]", machine=specs) == policy_fragment(None, nodes="node[1-4]")
