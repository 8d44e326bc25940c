"""Slurm's host list syntax (``node[1-3,7]``)."""

from __future__ import annotations

import re


def expand_hostlist(expr: str) -> list[str]:
    """Expand Slurm's host list syntax: ``node[1-3,7],gpu[01-02]`` → names."""
    out: list[str] = []
    i, n = 0, len(expr)
    while i < n:
        j = i
        depth = 0
        while j < n and (expr[j] != "," or depth):
            depth += expr[j] == "["
            depth -= expr[j] == "]"
            j += 1
        part = expr[i:j]
        i = j + 1
        if not part:
            continue
        m = re.match(r"^(?P<pre>[^\[]*)\[(?P<rng>[^\]]+)\](?P<post>.*)$", part)
        if not m:
            out.append(part)
            continue
        for r in m.group("rng").split(","):
            lo, _, hi = r.partition("-")
            width = len(lo)
            for k in range(int(lo), int(hi or lo) + 1):
                out.extend(f"{m.group('pre')}{k:0{width}d}{rest}" for rest in expand_hostlist(m.group("post")) or [""])
    return out
