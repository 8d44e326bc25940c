"""``sandfill policy …``: registered through the ``sandfill.cli`` entry point group
(``policy = "sandfill.policies.cli:register"``).

The subcommands sit in four modules, one per room of the package: :mod:`.check`
(``check``, ``render``: the document), :mod:`.simulate` (``simulate``: the simulation),
:mod:`.live` (``show``, ``diff``, ``apply`` with its simulation gate, ``history``,
``rollback``, ``replay``, ``health``: the live cluster) and :mod:`.lab` (``sweep``,
``recommend``: the policy lab).
"""

from __future__ import annotations

import argparse

from sandfill.cli import CLIError
from sandfill.policies.document.errors import PolicyError
from sandfill.policies.document.load import load_policy
from sandfill.policies.document.model import ClusterShape, Policy


def register(subparsers: argparse._SubParsersAction) -> None:
    from sandfill.policies.cli import check, lab, live, simulate

    p = subparsers.add_parser("policy", help="admin scheduling policy: check, render, simulate")
    sub = p.add_subparsers(dest="policy_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])
    check.register(sub)
    simulate.register(sub)
    live.register(sub)
    lab.register(sub)  # sweep, recommend: the policy lab


def load_or_error(path: str, shape: ClusterShape | None = None) -> tuple[Policy | None, PolicyError | None]:
    """The policy in ``path``, or the error that says why it is invalid."""
    try:
        return load_policy(path, shape=shape), None
    except PolicyError as exc:
        return None, exc


def add_node_features_arg(parser: argparse.ArgumentParser, default: str) -> None:
    """``--node-features NODELIST=FEAT[+FEAT]`` (repeatable): the machine's nodes and their
    features, which tiers with node sets resolve against (parsed by
    :func:`sandfill.policies.document.nodesets.parse_machine`)."""
    parser.add_argument("--node-features", action="append", default=[], metavar="NODELIST=FEAT[+FEAT]",
                        help="the cluster's nodes and their features, e.g. cpu[1-2]=cpu gpu1=gpu "
                             f"(repeatable), for tiers with node sets (default: {default})")


__all__ = ["CLIError", "add_node_features_arg", "load_or_error", "register"]
