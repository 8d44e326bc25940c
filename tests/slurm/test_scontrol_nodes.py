"""``scontrol show nodes -o``: each node's name, CPUs and features (node sets resolve by them)."""

from __future__ import annotations

from sandfill.slurm import scontrol

# two lines as Slurm 22.05 prints them on the devcluster's --hosts shape (shortened)
NODES = (
    "NodeName=cpu1 Arch=x86_64 CoresPerSocket=1 CPUAlloc=0 CPUEfctv=8 CPUTot=8 CPULoad=0.00 "
    "AvailableFeatures=cpu ActiveFeatures=cpu Gres=(null) NodeAddr=198.18.7.2 "
    "NodeHostName=cpu1 Version=22.05.8 OS=Linux 5.15.0 #1 SMP RealMemory=8000 State=IDLE\n"
    "NodeName=gpu1 Arch=x86_64 CoresPerSocket=1 CPUAlloc=0 CPUEfctv=8 CPUTot=8 CPULoad=0.00 "
    "AvailableFeatures=gpu,a100 ActiveFeatures=gpu,a100 Gres=gpu:2 NodeAddr=198.18.7.5 State=IDLE\n"
    "NodeName=node3 CPUTot=4 AvailableFeatures=(null) ActiveFeatures=(null) State=IDLE\n"
    "garbage line\n"
)


def test_show_nodes_argv() -> None:
    assert scontrol.show_nodes_argv() == ["scontrol", "show", "nodes", "-o"]


def test_parse_nodes_reads_names_cpus_and_features() -> None:
    assert scontrol.parse_nodes(NODES) == [
        ("cpu1", 8, ("cpu",)),
        ("gpu1", 8, ("gpu", "a100")),
        ("node3", 4, ()),
    ]
