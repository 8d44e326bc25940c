"""The policy the devcluster's slurm.conf is rendered from: a policy file of ``policies/``
(the shipped default when none is given), so the policy is the single source of the
partitions, priorities, backfill knobs and QOS caps."""

from __future__ import annotations

from sandfill.policies.document.load import load_policy
from sandfill.policies.document.render import render_sacctmgr
from sandfill.policies.live.fragment import render_fragment


def policy_fragment(policy_path: str | None, *, nodes: str) -> str:
    # with the sandfill metadata line, so `sandfill policy show/diff` read it back whole
    return render_fragment(load_policy(policy_path), nodes=nodes, accounting=True)


def policy_sacctmgr(policy_path: str | None) -> list[list[str]]:
    out = []
    for argv in render_sacctmgr(load_policy(policy_path)):
        args = list(argv)
        while args and args[0] in {"sacctmgr", "-i", "--immediate"}:
            args.pop(0)  # the devcluster adds its own `sacctmgr -i`
        out.append(args)
    return out
