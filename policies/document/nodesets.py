"""Per-tier node sets: check a node list's syntax, resolve a set against a known machine.

A tier's ``nodes:`` names its partition's nodes by feature (``{features: [gpu]}``: the nodes
that carry every listed feature) or by a Slurm host list (``{list: "cpu[1-2],gpu1"}``,
expanded by :func:`sandfill.slurm.hostlist.expand_hostlist`). Without ``nodes:`` a tier
covers every node of the cluster. A feature set can only become a ``Nodes=`` list once the
machine's nodes and their features are known (``scontrol show nodes`` on a live cluster).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sandfill.policies.document.model import MachineNode, NodeSet, Policy, Tier
from sandfill.slurm.hostlist import expand_hostlist

# one node name as slurm.conf writes one (letters, digits, '_', '-', '.'), with [ranges]
_PIECE = r"[A-Za-z0-9_.-]*(\[[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*\][A-Za-z0-9_.-]*)*"
_HOSTLIST = re.compile(rf"{_PIECE}(,{_PIECE})*")
_NODE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
MAX_NODES = 100_000


def expand_list(expr: str) -> list[str]:
    """The node names of host list ``expr``; ValueError naming ``expr`` when it is not one
    (bad brackets, a range running backwards, an empty or odd name)."""
    if not isinstance(expr, str) or not expr or len(expr) > 1024 or not _HOSTLIST.fullmatch(expr):
        raise ValueError(f"{expr!r} is not a Slurm host list such as gpu1 or cpu[1-2],bigmem1")
    for lo, hi in re.findall(r"([0-9]+)-([0-9]+)", expr):
        if int(hi) < int(lo):
            raise ValueError(f"{expr!r}: the range {lo}-{hi} runs backwards")
        if int(hi) - int(lo) >= MAX_NODES:
            raise ValueError(f"{expr!r}: the range {lo}-{hi} is larger than {MAX_NODES} nodes")
    names = expand_hostlist(expr)
    bad = [n for n in names if not _NODE_NAME.fullmatch(n)]
    if not names or bad:
        raise ValueError(f"{expr!r} is not a Slurm host list: {bad[0] if bad else 'no names'!r}")
    return names


def resolve(nodes: NodeSet, machine: Sequence[MachineNode]) -> list[str]:
    """The machine's nodes in ``nodes``, in the machine's order (a listed node the machine
    does not have is left out)."""
    if nodes.features is not None:
        want = set(nodes.features)
        return [n.name for n in machine if want <= set(n.features)]
    listed = set(expand_list(nodes.list_ or ""))
    return [n.name for n in machine if n.name in listed]


def set_size(tier: Tier, machine: Sequence[MachineNode], total: int) -> int:
    """Nodes the tier's partition covers: ``total`` without a set; a list's own length when
    the machine is not known (at most ``total``); else the resolved count."""
    if tier.nodes is None:
        return total
    if machine:
        return len(resolve(tier.nodes, machine))
    if tier.nodes.features is not None:
        raise ValueError(f"tier {tier.name!r} selects nodes by {tier.nodes.describe()}: "
                         "the machine's nodes and features are needed to size it")
    return min(total, len(expand_list(tier.nodes.list_ or "")))


def empty_sets(policy: Policy, machine: Sequence[MachineNode]) -> list[tuple[Tier, str]]:
    """Tiers whose node set matches none of the machine's nodes, with why."""
    out: list[tuple[Tier, str]] = []
    names = ", ".join(n.name for n in machine)
    for t in policy.tiers:
        if t.nodes is not None and machine and not resolve(t.nodes, machine):
            out.append((t, f"{t.nodes.describe()} matches none of the cluster's nodes ({names})"))
    return out


def parse_machine(specs: Sequence[str]) -> tuple[MachineNode, ...]:
    """``NODELIST=FEATURE[+FEATURE…]`` items (``cpu[1-2]=cpu``, ``gpu1=gpu+a100``; no ``=``:
    nodes without features) as machine nodes; ValueError naming the bad item."""
    out: list[MachineNode] = []
    for spec in specs:
        expr, _, feats = spec.partition("=")
        features = tuple(f for f in feats.split("+") if f)
        bad = [f for f in features if not _NODE_NAME.fullmatch(f)]
        if bad:
            raise ValueError(f"{spec!r}: {bad[0]!r} is not a node feature name")
        try:
            out += [MachineNode(name, 0, features) for name in expand_list(expr)]
        except ValueError as exc:
            raise ValueError(f"{spec!r}: {exc}") from None
    return tuple(out)
