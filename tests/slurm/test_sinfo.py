"""``sandfill.slurm.sinfo`` on output recorded from Slurm 22.05.8 (Debian 12)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandfill.slurm.sinfo import (
    node_cpus,
    node_states,
    node_usable,
    nodes_argv,
    parse_cpus,
    parse_partitions,
    parse_sinfo_nodes,
)

DATA = Path(__file__).parent / "data"


def test_sinfo_nodes() -> None:
    rows = parse_sinfo_nodes((DATA / "sinfo_nodes.txt").read_text())
    node1 = [r for r in rows if r["node"] == "node1" and r["partition"] == "batch"][0]
    assert (node1["alloc"], node1["idle"], node1["total"]) == (1, 7, 8)


def test_cpus_split() -> None:
    assert parse_cpus("3/29/0/32") == (3, 29, 0, 32)
    for bad in ("3/29/32", "a/b/c/d", ""):
        with pytest.raises(ValueError):
            parse_cpus(bad)


def test_partitions() -> None:
    parts = parse_partitions((DATA / "sinfo_partitions.txt").read_text())
    assert list(parts) == ["interactive", "burst", "batch"]
    b = parts["burst"]
    assert b.up and b.max_time_s == 3600 and b.cpus_per_node == 8 and b.nodes == 4
    assert (b.cpus_alloc, b.cpus_idle, b.cpus_total, b.memory_mb) == (3, 29, 32, 16000)
    assert parts["batch"].max_time_s == 2 * 86400 and parts["interactive"].max_time_s == 8 * 3600
    assert parse_partitions("batch|up|1:00:00|8|4|x/y|16000\n") == {}


def test_node_states_and_cpus_once_per_node() -> None:
    """A node in three partitions is listed three times; the per-node views name it once."""
    rows = parse_sinfo_nodes((DATA / "sinfo_nodes.txt").read_text())
    assert len(rows) > 4
    assert node_states(rows) == {"node1": "mix", "node2": "plnd", "node3": "plnd", "node4": "plnd"}
    assert node_cpus(rows) == {"node1": 8, "node2": 8, "node3": 8, "node4": 8}


def test_nodes_with_free_memory_and_partition_limit() -> None:
    """The full :data:`NODES_FORMAT` (what the Dask gap planner reads): free memory, limit."""
    rows = parse_sinfo_nodes((DATA / "sinfo_nodes_burst.txt").read_text())
    assert [r["node"] for r in rows] == ["node1", "node2", "node3", "node4"]
    r = rows[0]
    assert (r["partition"], r["state"], r["alloc"], r["idle"], r["total"]) == ("burst", "mix", 6, 2, 8)
    assert (r["memory"], r["free_memory"], r["time_limit"]) == (16000, 22525, 3600)
    assert nodes_argv("burst")[-2:] == ["-p", "burst"] and "-p" not in nodes_argv()
    assert node_usable("mix") and node_usable("idle*") and node_usable("plnd")
    assert not node_usable("drain") and not node_usable("down*")


def test_one_node() -> None:
    assert nodes_argv(node="node2")[-2:] == ["-n", "node2"]
    for bad in ("node[1-4]", "-t", "node1,node2"):
        with pytest.raises(ValueError, match="not a node name"):
            nodes_argv(node=bad)
    rows = parse_sinfo_nodes((DATA / "sinfo_nodes_burst.txt").read_text())
    assert node_states([r for r in rows if r["node"] == "node1"]) == {"node1": "mix"}


@pytest.mark.parametrize("bad", ["node9|batch|idle|x/y/z/w|16000", "node9|batch|idle||16000", "node9|batch|idle|1/2/3|16000"])
def test_sinfo_nodes_one_garbled_line_spoils_only_itself(bad: str) -> None:
    good = (DATA / "sinfo_nodes.txt").read_text()
    rows = parse_sinfo_nodes(f"{bad}\n{good}")
    assert rows == parse_sinfo_nodes(good)
