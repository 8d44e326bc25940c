"""Per-tier node sets in the policy file: by feature or by host list, checked and resolved."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sandfill.policies.document.errors import PolicyError
from sandfill.policies.document.load import load_policy, policy_from_mapping, policy_to_mapping
from sandfill.policies.document.model import ClusterShape, MachineNode, NodeSet
from sandfill.policies.document.nodesets import expand_list, parse_machine, resolve, set_size

ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())
GPU_EXAMPLE = ROOT / "policies" / "examples" / "gpu.yaml"

#: the devcluster's --hosts shape (sandfill.dev.devcluster.nodeclasses.DEFAULT_HOSTS)
HOSTS = (MachineNode("cpu1", 8, ("cpu",)), MachineNode("cpu2", 8, ("cpu",)),
         MachineNode("bigmem1", 8, ("bigmem",)), MachineNode("gpu1", 8, ("gpu",)))


def _policy(nodes: Any) -> dict[str, Any]:
    return {
        "tiers": {"batch": {"max_walltime": "1:00:00"},
                  "gpu": {"max_walltime": "1:00:00", "nodes": nodes}},
        "roles": {"default": "batch"},
    }


def test_a_tier_names_its_nodes_by_feature_or_by_list() -> None:
    p = policy_from_mapping(_policy({"features": ["gpu"]}))
    assert p.tier("gpu").nodes == NodeSet(features=("gpu",))
    assert p.tier("batch").nodes is None  # left out: every node, as before
    q = policy_from_mapping(_policy({"list": "cpu[1-2],gpu1"}))
    assert q.tier("gpu").nodes == NodeSet(list_="cpu[1-2],gpu1")


def test_a_node_set_round_trips_through_the_mapping() -> None:
    for nodes in ({"features": ["gpu", "a100"]}, {"list": "gpu[01-02]"}):
        p = policy_from_mapping(_policy(nodes))
        m = policy_to_mapping(p)
        assert m["tiers"]["gpu"]["nodes"] == nodes
        assert "nodes" not in m["tiers"]["batch"]  # no node set, no key
        assert policy_from_mapping(m) == p


@pytest.mark.parametrize(("nodes", "path", "words"), [
    ({"features": ["g pu"]}, "tiers.gpu.nodes.features.0", "'g pu'"),
    ({"features": []}, "tiers.gpu.nodes.features", "at least 1"),
    ({"list": "cpu[1-"}, "tiers.gpu.nodes.list", "'cpu[1-'"),
    ({"list": "cpu[3-1]"}, "tiers.gpu.nodes.list", "runs backwards"),
    ({"list": "gpu1;rm"}, "tiers.gpu.nodes.list", "'gpu1;rm'"),
    ({"list": "a b"}, "tiers.gpu.nodes.list", "'a b'"),
    ({"list": 7}, "tiers.gpu.nodes.list", "7"),
    ({}, "tiers.gpu.nodes", "exactly one"),
    ({"features": ["gpu"], "list": "gpu1"}, "tiers.gpu.nodes", "exactly one"),
    ({"lst": "gpu1"}, "tiers.gpu.nodes.lst", "did you mean 'list'"),
])
def test_a_bad_node_set_is_refused_naming_the_tier_and_value(nodes: Any, path: str, words: str) -> None:
    with pytest.raises(PolicyError) as err:
        policy_from_mapping(_policy(nodes))
    (problem,) = err.value.problems
    assert problem.path == path
    assert words in str(problem)


def test_tiers_sharing_a_partition_must_share_its_node_set() -> None:
    m = _policy({"features": ["gpu"]})
    m["tiers"]["gpu2"] = {"partition": "gpu", "max_walltime": "1:00:00"}
    with pytest.raises(PolicyError) as err:
        policy_from_mapping(m)
    assert "nodes" in str(err.value) and "tiers.gpu2.partition" in str(err.value)


def test_a_set_that_matches_no_node_of_a_known_machine_is_an_error() -> None:
    shape = ClusterShape(4, 8, HOSTS)
    for nodes, value in (({"features": ["a100"]}, "['a100']"), ({"list": "gpu[7-8]"}, "'gpu[7-8]'")):
        with pytest.raises(PolicyError) as err:
            policy_from_mapping(_policy(nodes), shape=shape)
        (problem,) = err.value.problems
        assert problem.path == "tiers.gpu.nodes"
        assert value in str(problem) and "matches none of the cluster's nodes" in str(problem)
    # the same sets are fine while the machine is not known, and a matching one always is
    policy_from_mapping(_policy({"features": ["a100"]}), shape=ClusterShape(4, 8))
    policy_from_mapping(_policy({"features": ["gpu"]}), shape=shape)


def test_resolve_and_size() -> None:
    assert resolve(NodeSet(features=("gpu",)), HOSTS) == ["gpu1"]
    assert resolve(NodeSet(features=("cpu", "gpu")), HOSTS) == []  # every feature is needed
    assert resolve(NodeSet(list_="gpu1,cpu[1-2],nosuch9"), HOSTS) == ["cpu1", "cpu2", "gpu1"]
    p = policy_from_mapping(_policy({"list": "node[1-2]"}))
    assert set_size(p.tier("gpu"), (), 4) == 2 and set_size(p.tier("batch"), (), 4) == 4
    f = policy_from_mapping(_policy({"features": ["gpu"]}))
    assert set_size(f.tier("gpu"), HOSTS, 4) == 1
    with pytest.raises(ValueError, match="'gpu'.*features gpu"):
        set_size(f.tier("gpu"), (), 4)


def test_host_lists_and_machine_specs() -> None:
    assert expand_list("gpu[01-02],cpu1") == ["gpu01", "gpu02", "cpu1"]
    with pytest.raises(ValueError, match="range 1-1000000"):
        expand_list("n[1-1000000]")
    assert parse_machine(["cpu[1-2]=cpu", "gpu1=gpu+a100", "plain1"]) == (
        MachineNode("cpu1", 0, ("cpu",)), MachineNode("cpu2", 0, ("cpu",)),
        MachineNode("gpu1", 0, ("gpu", "a100")), MachineNode("plain1", 0, ()))
    with pytest.raises(ValueError, match="'gpu1=g;x'"):
        parse_machine(["gpu1=g;x"])
    with pytest.raises(ValueError, match=r"'cpu\[2-1\]=cpu'"):
        parse_machine(["cpu[2-1]=cpu"])


def test_the_gpu_example_policy_loads() -> None:
    p = load_policy(GPU_EXAMPLE, shape=ClusterShape(4, 8, HOSTS))
    assert p.tier("gpu").nodes == NodeSet(features=("gpu",))
    assert [t.name for t in p.tiers if t.nodes is None] == ["interactive", "batch"]
