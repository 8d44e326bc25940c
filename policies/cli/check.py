"""``sandfill policy check|render``: validate a policy file, render it to Slurm settings."""

from __future__ import annotations

import argparse
import shlex
import sys

from sandfill.policies.cli import CLIError, add_node_features_arg, load_or_error
from sandfill.policies.document.errors import PolicyError
from sandfill.policies.document.load import node_set_problems, policy_warnings
from sandfill.policies.document.model import ClusterShape, Policy
from sandfill.policies.document.nodesets import parse_machine
from sandfill.policies.document.render import render_sacctmgr, render_slurm_conf


def register(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("check", help="validate a policy file (exit 0 valid, 1 invalid)")
    c.add_argument("file", help="policy YAML")
    c.add_argument("--nodes", type=int, help="nodes in the cluster (enables size checks)")
    c.add_argument("--cpus-per-node", type=int, help="CPUs per node (with --nodes)")
    c.add_argument("--no-accounting", action="store_true", help="the cluster has no slurmdbd")
    add_node_features_arg(c, "none: node sets are not checked against nodes")
    c.set_defaults(func=cmd_check)

    r = sub.add_parser("render", help="print the slurm.conf fragment and sacctmgr commands")
    r.add_argument("file", help="policy YAML")
    r.add_argument("--nodes", default=None,
                   help="Slurm node list (default: the --node-features nodes, else node[1-4])")
    add_node_features_arg(r, "none: a tier chosen by feature cannot be rendered")
    r.add_argument("--no-accounting", action="store_true", help="the cluster has no slurmdbd")
    r.set_defaults(func=cmd_render)


def cmd_check(args: argparse.Namespace) -> int:
    shape = None
    if args.nodes is not None or args.cpus_per_node is not None:
        if args.nodes is None or args.cpus_per_node is None:
            raise CLIError("--nodes and --cpus-per-node go together")
        shape = ClusterShape(args.nodes, args.cpus_per_node)
    policy, err = load_or_error(args.file, shape)
    if err is None and policy is not None:
        err = _node_set_error(args, policy)
    if err is not None:
        print(f"{args.file}: INVALID ({len(err.problems)} problem(s))")
        for p in err.problems:
            print(f"  error: {p}")
        return 1
    warnings = policy_warnings(policy, accounting=not args.no_accounting)
    for w in warnings:
        print(f"  warning: {w}")
    print(f"{args.file}: OK (policy {policy.name!r}, {len(policy.tiers)} tiers"
          f"{f', {len(warnings)} warning(s)' if warnings else ''})")
    return 0


def _node_set_error(args: argparse.Namespace, policy: Policy) -> PolicyError | None:
    """The node sets that match none of the ``--node-features`` nodes, as one error."""
    try:
        machine = parse_machine(args.node_features)
    except ValueError as exc:
        raise CLIError(f"--node-features: {exc}") from None
    problems = node_set_problems(policy, ClusterShape(len(machine), 0, machine)) if machine else []
    return PolicyError(problems, args.file) if problems else None


def cmd_render(args: argparse.Namespace) -> int:
    policy, err = load_or_error(args.file)
    if err is not None:
        print(str(err), file=sys.stderr)
        return 1
    accounting = not args.no_accounting
    try:
        machine = parse_machine(args.node_features)
        nodes = args.nodes or (",".join(n.name for n in machine) if machine else "node[1-4]")
        text = render_slurm_conf(policy, nodes=nodes, accounting=accounting, machine=machine)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    print(text, end="")
    if accounting:
        print("\n# sacctmgr commands (QOS per tier):")
        for argv in render_sacctmgr(policy):
            print(shlex.join(argv))
    for w in policy_warnings(policy, accounting=accounting):
        print(f"# warning: {w}")
    return 0
