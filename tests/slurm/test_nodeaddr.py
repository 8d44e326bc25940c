"""sandfill.slurm.nodeaddr: each node's address as slurm.conf declares it."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandfill.slurm.nodeaddr import NodeAddrError, node_addresses, parse_node_addresses


def test_nodeaddr_lists_match_names_and_a_name_without_one_is_its_own_address() -> None:
    text = (
        "NodeName=DEFAULT CPUs=8\n"
        "NodeName=cpu[1-2] NodeHostname=h NodeAddr=198.18.5.2,198.18.5.3 Port=[17001-17002] CPUs=8\n"
        "nodename=gpu1 nodeaddr=198.18.5.5 Gres=gpu:2  # a comment NodeAddr=1.2.3.4\n"
        "NodeName=login1 CPUs=4\n"
        "PartitionName=batch Nodes=ALL\n"
    )
    assert parse_node_addresses(text) == {"cpu1": "198.18.5.2", "cpu2": "198.18.5.3", "gpu1": "198.18.5.5", "login1": "login1"}


def test_included_files_count_and_a_file_without_nodes_is_named(tmp_path: Path) -> None:
    conf = tmp_path / "slurm.conf"
    (tmp_path / "nodes.conf").write_text("NodeName=n[01-02] NodeAddr=10.0.0.[11-12]\n")
    conf.write_text("ClusterName=t\nInclude nodes.conf\n")
    assert node_addresses(conf) == {"n01": "10.0.0.11", "n02": "10.0.0.12"}
    (tmp_path / "nodes.conf").write_text("# none\n")
    with pytest.raises(NodeAddrError, match=f"{conf} declares no node"):
        node_addresses(conf)
    with pytest.raises(NodeAddrError, match="cannot read .*missing.conf"):
        node_addresses(tmp_path / "missing.conf")
