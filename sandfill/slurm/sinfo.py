"""``sinfo``: nodes and partitions with their free CPUs."""

from __future__ import annotations


def parse_sinfo_nodes(stdout: str) -> list[dict[str, str | int]]:
    """Parse ``sinfo -h -N -o '%N|%P|%t|%C|%m'`` (CPUs as alloc/idle/other/total)."""
    rows: list[dict[str, str | int]] = []
    for line in stdout.splitlines():
        parts = line.split("|")
        if len(parts) < 5:
            continue
        node, part, state, cpus, mem = parts[:5]
        a, i, o, t = (int(x) for x in cpus.split("/"))
        rows.append(
            {"node": node, "partition": part.rstrip("*"), "state": state, "alloc": a, "idle": i, "other": o, "total": t, "memory": mem}
        )
    return rows
