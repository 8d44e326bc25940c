"""The policy the devcluster's slurm.conf is rendered from: a policy file of ``policies/``
(the shipped default when none is given), so the policy is the single source of the
partitions, priorities, backfill knobs and QOS caps."""

from __future__ import annotations

from collections.abc import Sequence

from sandfill.dev.devcluster.nodeclasses import NodeSpec
from sandfill.policies.document.load import load_policy
from sandfill.policies.document.model import MachineNode
from sandfill.policies.document.render import render_sacctmgr
from sandfill.policies.live.fragment import render_fragment


def policy_fragment(policy_path: str | None, *, nodes: str, machine: Sequence[NodeSpec] = ()) -> str:
    """The fragment on the cluster's ``nodes``; ``machine``: its nodes with their features,
    which tiers with node sets resolve against (a feature set needs them)."""
    # with the sandfill metadata line, so `sandfill policy show/diff` read it back whole
    known = tuple(MachineNode(n.name, n.cpus, n.features) for n in machine)
    return render_fragment(load_policy(policy_path), nodes=nodes, accounting=True, machine=known)


def policy_sacctmgr(policy_path: str | None) -> list[list[str]]:
    out = []
    for argv in render_sacctmgr(load_policy(policy_path)):
        args = list(argv)
        while args and args[0] in {"sacctmgr", "-i", "--immediate"}:
            args.pop(0)  # the devcluster adds its own `sacctmgr -i`
        out.append(args)
    return out
