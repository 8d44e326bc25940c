"""Node sets read back from a live cluster's partitions (no Slurm needed: a LiveState)."""

from __future__ import annotations

from typing import Any

from sandfill.policies.document.load import policy_from_mapping
from sandfill.policies.document.model import MachineNode
from sandfill.policies.live.fragment import fragment_nodes, metadata, read_metadata, render_fragment
from sandfill.policies.live.readback import live_mapping, node_set
from sandfill.policies.live.state import LiveState

HOSTS = (MachineNode("cpu1", 8, ("cpu",)), MachineNode("cpu2", 8, ("cpu",)),
         MachineNode("bigmem1", 8, ("bigmem",)), MachineNode("gpu1", 8, ("gpu",)))
ALL = "cpu[1-2],bigmem1,gpu1"
GPU = {"tiers": {"batch": {"max_walltime": "1:00:00"},
                 "gpu": {"max_walltime": "1:00:00", "nodes": {"features": ["gpu"]}},
                 "two": {"max_walltime": "1:00:00", "nodes": {"list": "cpu[1-2]"}}},
       "roles": {"default": "batch"}}


def _state(parts: dict[str, str], nodes: tuple[MachineNode, ...] = HOSTS) -> LiveState:
    rows = [{"PartitionName": p, "Nodes": n, "MaxTime": "01:00:00", "Default": "YES" if i == 0 else "NO"}
            for i, (p, n) in enumerate(parts.items())]
    return LiveState("", "", "", {}, rows, {}, nodes)


def test_the_fragment_keeps_the_cluster_nodes_and_each_set_as_written() -> None:
    p = policy_from_mapping(GPU)
    text = render_fragment(p, nodes=ALL, accounting=False, machine=HOSTS)
    meta = read_metadata(text)
    assert meta is not None
    assert meta["nodes"] == ALL
    assert meta["node_sets"] == {"gpu": {"features": ["gpu"]}, "two": {"list": "cpu[1-2]"}}
    assert fragment_nodes(text) == ALL  # the partitions' lists differ; the metadata says
    # a policy without node sets writes the metadata it always did
    plain = policy_from_mapping({"tiers": {"batch": {"max_walltime": "1:00:00"}}, "roles": {"default": "batch"}})
    assert "nodes" not in metadata(plain, ALL)


def test_a_live_cluster_reads_back_its_node_sets_and_equals_the_policy() -> None:
    p = policy_from_mapping(GPU)
    meta = read_metadata(render_fragment(p, nodes=ALL, accounting=False, machine=HOSTS))
    state = _state({"batch": ALL, "gpu": "gpu1", "two": "cpu[1-2]"})
    mapping, _notes = live_mapping(state, meta)
    assert mapping["tiers"]["gpu"]["nodes"] == {"features": ["gpu"]}
    assert mapping["tiers"]["two"]["nodes"] == {"list": "cpu[1-2]"}
    assert "nodes" not in mapping["tiers"]["batch"]
    mapping["name"] = p.name
    assert policy_from_mapping(mapping).tiers == p.tiers


def test_nodes_that_differ_from_the_set_read_back_as_the_list_slurm_has() -> None:
    meta: dict[str, Any] = {"nodes": ALL, "node_sets": {"gpu": {"features": ["gpu"]}}}
    state = _state({"batch": ALL, "gpu": "cpu1"})  # someone changed the partition by hand
    assert node_set(state, "cpu1", "gpu", meta) == {"list": "cpu1"}


def test_partitions_without_metadata() -> None:
    uniform = _state({"a": "cpu[1-2],bigmem1,gpu1", "b": "cpu1,cpu2,bigmem1,gpu1"})
    assert node_set(uniform, "cpu[1-2],bigmem1,gpu1", "a", {}) is None  # every node
    assert node_set(uniform, "cpu1,cpu2,bigmem1,gpu1", "b", {}) is None
    split = _state({"a": ALL, "b": "gpu1"})
    assert node_set(split, "gpu1", "b", {}) == {"list": "gpu1"}
    shared = _state({"a": "node[1-2]", "b": "node[1-2]"}, nodes=())
    assert node_set(shared, "node[1-2]", "a", {}) is None  # one list for all: as before
