"""``sinfo``: nodes and partitions with their free CPUs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

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


def parse_sinfo_nodes(stdout: str) -> list[dict[str, str | int]]:
    """Parse ``sinfo -h -N -o '%N|%P|%t|%C|%m'`` (CPUs as alloc/idle/other/total)."""
    rows: list[dict[str, str | int]] = []
    for line in stdout.splitlines():
        parts = line.split("|")
        if len(parts) < 5:
            continue
        node, part, state, cpus, mem = parts[:5]
        a, i, o, t = parse_cpus(cpus)
        rows.append(
            {"node": node, "partition": part.rstrip("*"), "state": state, "alloc": a, "idle": i, "other": o, "total": t, "memory": mem}
        )
    return rows


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
