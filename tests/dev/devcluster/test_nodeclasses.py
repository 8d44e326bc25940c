"""``sandfill.dev.devcluster.nodeclasses``: the ``--hosts`` shape's default classes, their
node names and node list, and the classes file / flags refused with the bad key named."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandfill.dev.devcluster import nodeclasses
from sandfill.dev.devcluster.nodeclasses import DEFAULT_HOSTS, NodeClassesError
from sandfill.slurm.hostlist import expand_hostlist


def test_the_default_is_two_cpu_a_bigmem_and_a_gpu_node() -> None:
    nodes = nodeclasses.nodes_of(DEFAULT_HOSTS)
    assert [n.name for n in nodes] == ["cpu1", "cpu2", "bigmem1", "gpu1"]
    assert {n.name: n.features for n in nodes} == {"cpu1": ("cpu",), "cpu2": ("cpu",), "bigmem1": ("bigmem",), "gpu1": ("gpu",)}
    assert {n.name: n.gpus for n in nodes}["gpu1"] == 2 and sum(n.gpus for n in nodes) == 2
    assert all(n.cpus == 8 for n in nodes)
    bigmem = next(n for n in nodes if n.node_class == "bigmem")
    assert bigmem.memory_mb > max(n.memory_mb for n in nodes if n.node_class != "bigmem")
    expr = nodeclasses.hostlist(nodes)
    assert expr == "cpu[1-2],bigmem1,gpu1"
    assert expand_hostlist(expr) == [n.name for n in nodes]  # the one hostlist reader reads it back


def test_the_single_host_shape_keeps_node1_to_n() -> None:
    nodes = nodeclasses.uniform(4, cpus=8, memory_mb=16000)
    assert [n.name for n in nodes] == ["node1", "node2", "node3", "node4"]
    assert nodeclasses.hostlist(nodes) == "node[1-4]" and not any(n.features or n.gpus for n in nodes)
    assert nodeclasses.hostlist(nodeclasses.uniform(1, cpus=1, memory_mb=1)) == "node1"


def test_a_classes_file_is_read_with_units_and_features(tmp_path: Path) -> None:
    f = tmp_path / "classes.yaml"
    f.write_text("classes:\n  - {name: gpu, count: 2, cpus: 4, memory: 2G, gpus: 1, features: [gpu, a100]}\n")
    nodes = nodeclasses.nodes_of(nodeclasses.load(f))
    assert [(n.name, n.cpus, n.memory_mb, n.gpus, n.features) for n in nodes] == [
        ("gpu1", 4, 2048, 1, ("gpu", "a100")),
        ("gpu2", 4, 2048, 1, ("gpu", "a100")),
    ]


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("classes:\n  - {name: cpu, count: 1, cpsu: 8}\n", "classes.0.cpsu: unknown key; did you mean 'cpus'?"),
        ("classes:\n  - {name: cpu, count: 0}\n", "classes.0.count"),
        ("classes:\n  - {name: Cpu1, count: 1}\n", "classes.0.name: 'Cpu1' is not a node class name"),
        ("classes:\n  - {name: cpu, count: 1, memory: lots}\n", "classes.0.memory"),
        ("classes:\n  - {name: gpu, count: 1, features: ['a b']}\n", "classes.0.features.0"),
        ("classes:\n  - {name: cpu, count: 1}\n  - {name: cpu, count: 2}\n", "classes.1.name: class 'cpu' is declared twice"),
        ("classes:\n  - {name: cpu, count: 40}\n  - {name: gpu, count: 40}\n", "classes: 80 nodes in all; at most 64"),
        ("classes: []\n", "classes"),
        ("nodes: 3\n", "nodes: unknown key"),
        ("classes: [\n", "not YAML"),
    ],
)
def test_a_bad_classes_file_names_the_bad_key(tmp_path: Path, text: str, named: str) -> None:
    f = tmp_path / "classes.yaml"
    f.write_text(text)
    with pytest.raises(NodeClassesError) as err:
        nodeclasses.load(f)
    assert named in str(err.value) and str(f) in str(err.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(NodeClassesError, match="(?s)missing.yaml.*cannot read the file: No such file"):
        nodeclasses.load(tmp_path / "missing.yaml")


def test_flags_declare_classes_and_bad_ones_are_named() -> None:
    classes = nodeclasses.from_flags(["name=cpu,count=3,cpus=4", "name=gpu,count=1,gpus=2,features=gpu+a100"])
    nodes = nodeclasses.nodes_of(classes)
    assert nodeclasses.hostlist(nodes) == "cpu[1-3],gpu1"
    assert nodes[-1].features == ("gpu", "a100") and nodes[-1].gpus == 2
    with pytest.raises(NodeClassesError, match="classes.0.gpus"):
        nodeclasses.from_flags(["name=gpu,count=1,gpus=many"])
    with pytest.raises(NodeClassesError, match="expected KEY=VALUE.*'count'"):
        nodeclasses.from_flags(["name=cpu,count"])
