"""``sinfo``: nodes and partitions with their free CPUs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, TypedDict

from sandfill.slurm.states import check_node_name
from sandfill.units import parse_slurm_time

PARTITIONS_FORMAT = "%R|%a|%l|%c|%D|%C|%m"


def parse_cpus(text: str) -> tuple[int, int, int, int]:
    """Split sinfo's ``%C`` ("A/I/O/T": allocated/idle/other/total CPUs) into four ints;
    ValueError when ``text`` is not four integers separated by ``/``."""
    parts = text.strip().split("/")
    if len(parts) != 4:
        raise ValueError(f"not an A/I/O/T CPU count: {text!r}")
    a, i, o, t = (int(x) for x in parts)
    return a, i, o, t


#: one line per node and partition: name, partition, state, CPUs (A/I/O/T), memory, free
#: memory (MiB) and the partition's time limit
NODES_FORMAT = "%N|%P|%t|%C|%m|%e|%l"

#: node states (``%t``, flags stripped) in which a node can take a new job
USABLE_NODE_STATES = frozenset({"idle", "mix", "alloc", "plnd", "comp"})


class SinfoNode(TypedDict):
    node: str
    partition: str  # the default partition's trailing "*" removed
    state: str  # %t as Slurm prints it, e.g. "mix", "idle*", "drain"
    alloc: int
    idle: int
    other: int
    total: int
    memory: int | None  # MiB on the node
    free_memory: int | None  # MiB free (None: Slurm does not know)
    time_limit: int | None  # the partition's MaxTime in seconds (None: unlimited or not asked)


def nodes_argv(partition: str | None = None, node: str | None = None) -> list[str]:
    """Every node (of ``partition``; or only ``node``), one line per node and partition, in
    :data:`NODES_FORMAT`; ValueError when ``node`` is not one plain node name."""
    argv = ["sinfo", "-h", "-N", "-o", NODES_FORMAT]
    if partition:
        argv += ["-p", partition]
    if node is not None:
        argv += ["-n", check_node_name(node)]
    return argv


def node_usable(state: str) -> bool:
    """Can a node in sinfo state ``state`` (``%t``, e.g. ``"mix*"``) take a new job?"""
    return state.rstrip("*~#$@") in USABLE_NODE_STATES


def parse_sinfo_nodes(stdout: str) -> list[SinfoNode]:
    """Parse :func:`nodes_argv` output (:data:`NODES_FORMAT`). The fields after ``%m`` (free
    memory, time limit) may be absent; lines with fewer than five fields, or whose CPU counts
    are not four numbers, are skipped."""
    rows: list[SinfoNode] = []
    for line in stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) < 5:
            continue
        node, part, state, cpus, mem, free_mem, limit = (parts + ["", ""])[:7]
        try:
            a, i, o, t = parse_cpus(cpus)
        except ValueError:
            continue  # one garbled line costs that line only
        rows.append(
            SinfoNode(
                node=node,
                partition=part.rstrip("*"),
                state=state,
                alloc=a,
                idle=i,
                other=o,
                total=t,
                memory=_leading_int(mem),
                free_memory=int(free_mem) if free_mem.strip().isdigit() else None,
                time_limit=parse_slurm_time(limit) if limit.strip() else None,
            )
        )
    return rows


def node_states(rows: list[SinfoNode]) -> dict[str, str]:
    """Node name → short state (``idle``, ``mix``, ``down*``, …) of :func:`parse_sinfo_nodes` rows."""
    return {r["node"]: r["state"] for r in rows}


def node_cpus(rows: list[SinfoNode]) -> dict[str, int]:
    """Node name → CPUs of :func:`parse_sinfo_nodes` rows, in sinfo's order (a node listed
    once per partition appears once)."""
    return {r["node"]: r["total"] for r in rows}


@dataclass(frozen=True)
class PartitionInfo:
    name: str
    up: bool
    max_time_s: int | None  # None: unlimited
    cpus_per_node: int
    nodes: int
    cpus_alloc: int
    cpus_idle: int
    cpus_total: int
    memory_mb: int | None  # per node

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def partitions_argv() -> list[str]:
    """Every partition, one line each, in :data:`PARTITIONS_FORMAT`."""
    return ["sinfo", "-h", "-o", PARTITIONS_FORMAT]


def _leading_int(text: str) -> int | None:
    m = re.match(r"\d+", text.strip())
    return int(m.group()) if m else None


def parse_partitions(stdout: str) -> dict[str, PartitionInfo]:
    """Parse :func:`partitions_argv` output (``%R|%a|%l|%c|%D|%C|%m``) by partition name;
    lines that do not have that shape are skipped."""
    out: dict[str, PartitionInfo] = {}
    for line in stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 7:
            continue
        name, avail, limit, cpus, nodes, cstate, mem = parts
        try:
            a, i, _o, t = parse_cpus(cstate)
        except ValueError:
            continue
        out[name] = PartitionInfo(
            name=name,
            up=avail.strip().lower() == "up",
            max_time_s=parse_slurm_time(limit),
            cpus_per_node=_leading_int(cpus) or 1,
            nodes=_leading_int(nodes) or 0,
            cpus_alloc=a,
            cpus_idle=i,
            cpus_total=t,
            memory_mb=_leading_int(mem),
        )
    return out
