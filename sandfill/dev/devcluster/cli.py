"""``sandfill devcluster up | down | status | env``."""

from __future__ import annotations

import argparse
import json
import shlex

from sandfill.cli import CLIError
from sandfill.dev.devcluster import nodeclasses
from sandfill.dev.devcluster.cluster import DevCluster, DevClusterError, default_state_dir
from sandfill.dev.devcluster.nodeclasses import NodeClasses, NodeClassesError
from sandfill.slurm.states import is_user_name


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "devcluster",
        help="the embedded real Slurm cluster (on loopback, or one network namespace per node with --hosts)",
        description="Boot, inspect and stop a real multi-node Slurm cluster on this host.",
    )
    state_help = f"where the cluster keeps everything (default: {default_state_dir()})"
    p.add_argument("--state-dir", default=None, help=state_help)
    # the same flag after the action (`devcluster up --state-dir X`); SUPPRESS keeps the
    # subparser from overwriting a value given before the action with its own default
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--state-dir", dest="state_dir", default=argparse.SUPPRESS, help=state_help)
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    up = sub.add_parser("up", parents=[common], help="boot the cluster (a no-op when it runs)")
    up.add_argument("--nodes", type=_positive("--nodes"), default=4, help="number of slurmd nodes (default 4)")
    up.add_argument("--cpus", type=_positive("--cpus"), default=8, help="CPUs per node (default 8)")
    up.add_argument("--memory-mb", type=_positive("--memory-mb"), default=16000, help="memory per node in MB")
    up.add_argument("--policy", default=None, help="policy file to render slurm.conf from (default: the shipped policy)")
    up.add_argument("--users", default="", help="comma-separated users to add to accounting")
    up.add_argument(
        "--shared-queue", dest="private_data", action="store_false",
        help="let every user see every job (default: PrivateData=jobs,usage,users, each user sees their own)",
    )
    up.add_argument(
        "--hosts", action="store_true",
        help="the site shape: the head on a private bridge, one network namespace (own address) per node "
        "(default nodes: 2 x cpu, 1 x bigmem, 1 x gpu with gpu:2)",
    )
    classes = up.add_mutually_exclusive_group()
    classes.add_argument("--node-classes", metavar="FILE", default=None, help="YAML file of node classes (with --hosts)")
    classes.add_argument(
        "--node-class", metavar="SPEC", action="append", default=None,
        help="a node class, e.g. name=gpu,count=1,cpus=8,memory=8G,gpus=2,features=gpu+a100 (repeat; with --hosts)",
    )
    up.set_defaults(func=_up)

    down = sub.add_parser("down", parents=[common], help="cancel all jobs and stop every daemon it started")
    down.set_defaults(func=_down)

    status = sub.add_parser("status", parents=[common], help="daemons with PIDs, and sinfo")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=_status)

    env = sub.add_parser("env", parents=[common], help="print the shell exports for this cluster")
    env.set_defaults(func=_env)


def _positive(flag: str):  # type: ignore[no-untyped-def]
    def parse(value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be a whole number, got {value!r}") from None
        if n < 1:
            raise argparse.ArgumentTypeError(f"{flag} must be at least 1, got {n}")
        return n

    return parse


def _cluster(args: argparse.Namespace) -> DevCluster:
    return DevCluster(args.state_dir)


def _up(args: argparse.Namespace) -> int:
    users = [u for u in args.users.split(",") if u]
    for u in users:
        if not is_user_name(u):  # the one user-name rule (sandfill.slurm.states)
            raise CLIError(f"--users: {u!r} is not a valid user name")
    c = _cluster(args)
    try:
        classes = _node_classes(args)
        c.up(
            nodes=args.nodes, cpus=args.cpus, memory_mb=args.memory_mb, policy=args.policy, users=users,
            private_data=args.private_data, hosts=args.hosts, node_classes=classes,
        )
    except (DevClusterError, NodeClassesError) as exc:
        raise CLIError(str(exc)) from None
    print(f"export SLURM_CONF={shlex.quote(str(c.slurm_conf))}")
    return 0


def _node_classes(args: argparse.Namespace) -> NodeClasses | None:
    if args.node_classes:
        return nodeclasses.load(args.node_classes)
    if args.node_class:
        return nodeclasses.from_flags(args.node_class)
    return None


def _down(args: argparse.Namespace) -> int:
    _cluster(args).down()
    return 0


def _status(args: argparse.Namespace) -> int:
    st = _cluster(args).status()
    if args.json:
        print(json.dumps(st, indent=1))
        return 0 if st["daemons"] else 1
    if not st["daemons"]:
        print(f"no devcluster in {st['state_dir']}")
        return 1
    print(f"devcluster in {st['state_dir']}")
    for d in st["daemons"]:  # type: ignore[union-attr]
        print(f"  {d['name']:<14} pid {d['pid']:<8} {'running' if d['alive'] else 'NOT RUNNING'}")
    if st.get("shape") == "hosts":
        print(f"  head at {st['head_addr']}; nodes: " + ", ".join(f"{n['name']} {n['address']}" for n in st["nodes"]))  # type: ignore[union-attr]
    if st["sinfo"]:
        print()
        print(st["sinfo"], end="")
    return 0


def _env(args: argparse.Namespace) -> int:
    c = _cluster(args)
    for k, v in c.env().items():
        print(f"export {k}={shlex.quote(v)}")
    return 0
