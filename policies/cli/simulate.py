"""``sandfill policy check|render|simulate``: registered through the ``sandfill.cli`` entry
point group (``policy = "sandfill.policies.cli.simulate:register"``)."""

from __future__ import annotations

import argparse
import shlex
import sys

from sandfill.policies.document.errors import PolicyError
from sandfill.policies.document.load import load_policy, policy_warnings
from sandfill.policies.document.model import ClusterShape


def _cli_error(msg: str) -> Exception:
    from sandfill.cli import CLIError

    return CLIError(msg)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("policy", help="admin scheduling policy: check, render, simulate")
    sub = p.add_subparsers(dest="policy_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])

    c = sub.add_parser("check", help="validate a policy file (exit 0 valid, 1 invalid)")
    c.add_argument("file", help="policy YAML")
    c.add_argument("--nodes", type=int, help="nodes in the cluster (enables size checks)")
    c.add_argument("--cpus-per-node", type=int, help="CPUs per node (with --nodes)")
    c.add_argument("--no-accounting", action="store_true", help="the cluster has no slurmdbd")
    c.set_defaults(func=cmd_check)

    r = sub.add_parser("render", help="print the slurm.conf fragment and sacctmgr commands")
    r.add_argument("file", help="policy YAML")
    r.add_argument("--nodes", default="node[1-4]", help="Slurm node list (default node[1-4])")
    r.add_argument("--no-accounting", action="store_true", help="the cluster has no slurmdbd")
    r.set_defaults(func=cmd_render)

    s = sub.add_parser("simulate", help="replay a workload under a policy (and compare)")
    s.add_argument("policy", help="policy YAML")
    s.add_argument("--vs", metavar="OTHER_POLICY", help="a second policy to compare with")
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("--trace", help="SWF trace (.swf or .swf.gz)")
    src.add_argument("--sacct-file", help="output of sacct -P --format=... or sacct --json")
    src.add_argument("--sacct", action="store_true",
                     help="run sacct on the live cluster ($SLURM_CONF / --slurm-conf)")
    s.add_argument("--start", help="with --sacct: sacct --starttime (default now-7days)")
    s.add_argument("--end", help="with --sacct: sacct --endtime (default now)")
    s.add_argument("--slurm-conf", metavar="PATH", help="with --sacct: the cluster's slurm.conf")
    s.add_argument("--report", metavar="OUT.html", help="write a self-contained HTML report")
    s.add_argument("--load", type=float, default=1.0, help="scale arrival rate (1.2 = 20%% busier)")
    s.add_argument("--backfill", choices=("conservative", "easy", "none"), default="conservative")
    s.add_argument("--use-trace-partitions", action="store_true",
                   help="put jobs in the tier named by the trace's partition field")
    s.add_argument("--nodes", type=int, help="nodes (default: from the trace header)")
    s.add_argument("--cpus-per-node", type=int, help="CPUs per node (default: from the trace)")
    s.add_argument("--alloc", choices=("node", "cpu"),
                   help="allocate whole nodes or CPUs (default: node for SWF, cpu for sacct)")
    s.add_argument("--no-accounting", action="store_true",
                   help="simulate without slurmdbd (no age/QOS factors, no QOS caps)")
    s.add_argument("--limit", type=int, help="replay only the first N jobs")
    s.add_argument("--short-limit", type=int, default=3600,
                   help="requested seconds up to which a job counts as short (default 3600)")
    s.add_argument("--starve-after", type=int, default=86400,
                   help="wait in seconds counted as starvation (default 86400)")
    s.set_defaults(func=cmd_simulate)

    from sandfill.policies.cli.live import register_live, register_replay

    register_live(sub)
    register_replay(sub)


def _load(path: str, shape: ClusterShape | None = None):
    try:
        return load_policy(path, shape=shape), None
    except PolicyError as exc:
        return None, exc


def cmd_check(args: argparse.Namespace) -> int:
    shape = None
    if args.nodes is not None or args.cpus_per_node is not None:
        if args.nodes is None or args.cpus_per_node is None:
            raise _cli_error("--nodes and --cpus-per-node go together")
        shape = ClusterShape(args.nodes, args.cpus_per_node)
    policy, err = _load(args.file, shape)
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


def cmd_render(args: argparse.Namespace) -> int:
    from sandfill.policies.document.render import render_sacctmgr, render_slurm_conf

    policy, err = _load(args.file)
    if err is not None:
        print(str(err), file=sys.stderr)
        return 1
    accounting = not args.no_accounting
    try:
        text = render_slurm_conf(policy, nodes=args.nodes, accounting=accounting)
    except ValueError as exc:
        raise _cli_error(str(exc)) from None
    print(text, end="")
    if accounting:
        print("\n# sacctmgr commands (QOS per tier):")
        for argv in render_sacctmgr(policy):
            print(shlex.join(argv))
    for w in policy_warnings(policy, accounting=accounting):
        print(f"# warning: {w}")
    return 0


def _live_sacct(args: argparse.Namespace):
    """The live cluster's own history (``sacct -P``) as a workload."""
    from sandfill.policies.sim.sacct import sacct_argv, workload_from_sacct_text
    from sandfill.slurm.commands import Runner

    if (args.start or args.end) and not args.sacct:
        raise _cli_error("--start/--end go with --sacct")
    runner = Runner(args.slurm_conf)
    res = runner(sacct_argv(args.start, args.end))
    if res.returncode != 0:
        raise _cli_error(f"sacct failed: {res.output}")
    print(f"# sacct: {max(0, len(res.stdout.splitlines()) - 1)} allocation record(s)",
          file=sys.stderr)
    return workload_from_sacct_text(res.stdout, "sacct (live)")


def cmd_simulate(args: argparse.Namespace) -> int:
    from sandfill.policies.sim.metrics import format_table, summarize
    from sandfill.policies.sim.simulator import SimConfig, simulate, stderr_progress

    policies = []
    for path in [args.policy] + ([args.vs] if args.vs else []):
        policy, err = _load(path)
        if err is not None:
            print(str(err), file=sys.stderr)
            return 1
        policies.append(policy)
    try:
        if args.trace:
            from sandfill.policies.sim.trace import read_swf

            workload = read_swf(args.trace, limit=args.limit)
            alloc = args.alloc or "node"
        elif args.sacct:
            workload = _live_sacct(args)
            if args.limit:
                workload = workload.head(args.limit)
            alloc = args.alloc or "cpu"
        else:
            from sandfill.policies.sim.sacct import read_sacct

            workload = read_sacct(args.sacct_file)
            if args.limit:
                workload = workload.head(args.limit)
            alloc = args.alloc or "cpu"
    except OSError as exc:
        raise _cli_error(f"cannot read workload: {exc}") from None
    if args.load <= 0:
        raise _cli_error("--load must be positive")
    if args.sacct and not (args.nodes and args.cpus_per_node):
        from sandfill.policies.live.current import cluster_shape
        from sandfill.slurm.commands import Runner

        shape, _ = cluster_shape(Runner(args.slurm_conf))
        args.nodes = args.nodes or shape.nodes
        args.cpus_per_node = args.cpus_per_node or shape.cpus_per_node
    nodes = args.nodes or workload.nodes
    cpn = args.cpus_per_node or workload.cpus_per_node or 1
    if not nodes:
        raise _cli_error("the workload does not say the machine size: give --nodes")
    if not workload.jobs:
        raise _cli_error("the workload has no job that ran")
    workload = workload.scaled(args.load)
    cfg = SimConfig(
        nodes=nodes,
        cpus_per_node=cpn,
        backfill=args.backfill,
        alloc=alloc,
        use_trace_partitions=args.use_trace_partitions,
        accounting=not args.no_accounting,
    )
    results = []
    for policy in policies:
        res = simulate(policy, workload, cfg, progress=stderr_progress(policy.name))
        met = summarize(res, short_limit=args.short_limit, starve_after=args.starve_after)
        results.append((res, met))
        print(
            f"# {policy.name}: {res.n_jobs} jobs ({len(res.rejected)} rejected), "
            f"{res.events} events, {res.passes} backfill passes, {res.wall_seconds:.2f}s",
            file=sys.stderr,
        )
    print(format_table(results[0][1], results[1][1] if len(results) > 1 else None))
    if args.report:
        from sandfill.policies.sim.report import write_report

        write_report(args.report, results)
        print(f"report: {args.report}")
    if workload.source.endswith((".swf", ".swf.gz")):
        from sandfill.policies.sim.trace import PWA_CITATION

        print(f"\nTrace from the Parallel Workloads Archive ({PWA_CITATION})"
              + (f"; thanks to {workload.acknowledge}." if workload.acknowledge else "."))
    return 0
