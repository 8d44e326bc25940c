"""The rendered ``Nodes=`` of tiers with node sets (and of the GPU example policy)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandfill.policies.document.load import load_policy, policy_from_mapping
from sandfill.policies.document.model import MachineNode
from sandfill.policies.document.render import RenderError, render_slurm_conf

ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())
GPU_EXAMPLE = ROOT / "policies" / "examples" / "gpu.yaml"
HOSTS = (MachineNode("cpu1", 8, ("cpu",)), MachineNode("cpu2", 8, ("cpu",)),
         MachineNode("bigmem1", 8, ("bigmem",)), MachineNode("gpu1", 8, ("gpu",)))
ALL = "cpu[1-2],bigmem1,gpu1"


def _nodes_of(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if line.startswith("PartitionName="):
            kv = dict(tok.split("=", 1) for tok in line.split())
            out[kv["PartitionName"]] = kv["Nodes"]
    return out


def test_the_gpu_tier_gets_the_gpu_nodes_and_the_others_every_node() -> None:
    text = render_slurm_conf(load_policy(GPU_EXAMPLE), nodes=ALL, accounting=True, machine=HOSTS)
    assert _nodes_of(text) == {"interactive": ALL, "gpu": "gpu1", "batch": ALL}


def test_a_listed_set_is_written_as_given_or_as_the_machine_has_it() -> None:
    p = policy_from_mapping({"tiers": {"batch": {"max_walltime": "1:00:00"},
                                       "big": {"max_walltime": "1:00:00",
                                               "nodes": {"list": "bigmem1,gpu[1-2]"}}},
                             "roles": {"default": "batch"}})
    assert _nodes_of(render_slurm_conf(p, nodes=ALL, accounting=False))["big"] == "bigmem1,gpu[1-2]"
    with_machine = render_slurm_conf(p, nodes=ALL, accounting=False, machine=HOSTS)
    assert _nodes_of(with_machine)["big"] == "bigmem1,gpu1"  # gpu2 is not in the machine


def test_a_feature_set_without_the_machine_is_refused_naming_the_tier() -> None:
    with pytest.raises(RenderError, match="tier 'gpu' selects features gpu"):
        render_slurm_conf(load_policy(GPU_EXAMPLE), nodes=ALL, accounting=True)
    p = policy_from_mapping({"tiers": {"batch": {"max_walltime": "1:00:00"},
                                       "x": {"max_walltime": "1:00:00", "nodes": {"features": ["fpga"]}}},
                             "roles": {"default": "batch"}})
    with pytest.raises(RenderError, match="tier 'x': features fpga matches none"):
        render_slurm_conf(p, nodes=ALL, accounting=True, machine=HOSTS)

