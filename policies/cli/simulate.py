"""``sandfill policy simulate``: replay a workload (an SWF trace, a sacct file or the live
cluster's own history) under one policy, or two to compare them."""

from __future__ import annotations

import argparse
import sys

from sandfill.policies.cli import CLIError, add_node_features_arg, load_or_error
from sandfill.policies.document.model import Policy
from sandfill.policies.sim.simulator import SimConfig
from sandfill.policies.sim.workload import Workload


def register(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("simulate", help="replay a workload under a policy (and compare)")
    s.add_argument("policy", help="policy YAML")
    s.add_argument("--vs", metavar="OTHER_POLICY", help="a second policy to compare with")
    s.add_argument("--report", metavar="OUT.html", help="write a self-contained HTML report")
    s.add_argument("--load", type=float, default=1.0, help="scale arrival rate (1.2 = 20%% busier)")
    add_workload_args(s)
    s.add_argument("--starve-after", type=int, default=86400,
                   help="wait in seconds counted as starvation (default 86400)")
    s.set_defaults(func=cmd_simulate)


def add_workload_args(s: argparse.ArgumentParser) -> None:
    """The workload and how it is simulated: what ``simulate``, ``sweep`` and ``recommend``
    read (:func:`load_workload` takes them)."""
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("--trace", help="SWF trace (.swf or .swf.gz)")
    src.add_argument("--sacct-file", "--sacct-history", dest="sacct_file",
                     help="output of sacct -P --format=... or sacct --json")
    src.add_argument("--sacct", action="store_true",
                     help="run sacct on the live cluster ($SLURM_CONF / --slurm-conf)")
    s.add_argument("--start", help="with --sacct: sacct --starttime (default now-7days)")
    s.add_argument("--end", help="with --sacct: sacct --endtime (default now)")
    s.add_argument("--slurm-conf", metavar="PATH", help="with --sacct: the cluster's slurm.conf")
    s.add_argument("--backfill", choices=("conservative", "easy", "none"), default="conservative")
    s.add_argument("--use-trace-partitions", action="store_true",
                   help="put jobs in the tier named by the trace's partition field")
    s.add_argument("--nodes", type=int, help="nodes (default: from the trace header)")
    s.add_argument("--cpus-per-node", type=int, help="CPUs per node (default: from the trace)")
    add_node_features_arg(s, "with --sacct the live cluster's; else node1..nodeN, no features")
    s.add_argument("--alloc", choices=("node", "cpu"),
                   help="allocate whole nodes or CPUs (default: node for SWF, cpu for sacct)")
    s.add_argument("--no-accounting", action="store_true",
                   help="simulate without slurmdbd (no age/QOS factors, no QOS caps)")
    s.add_argument("--limit", type=int, help="use only the first N jobs")
    s.add_argument("--short-limit", type=int, default=3600,
                   help="requested seconds up to which a job counts as short (default 3600)")


def _live_sacct(args: argparse.Namespace) -> Workload:
    """The live cluster's own history (``sacct -P``) as a workload."""
    from sandfill.policies.sim.sacct import workload_from_sacct_text
    from sandfill.slurm.commands import Runner
    from sandfill.slurm.sacct import history_argv

    if (args.start or args.end) and not args.sacct:
        raise CLIError("--start/--end go with --sacct")
    runner = Runner(args.slurm_conf)
    res = runner(history_argv(args.start, args.end))
    if res.returncode != 0:
        raise CLIError(f"sacct failed: {res.output}")
    print(f"# sacct: {max(0, len(res.stdout.splitlines()) - 1)} allocation record(s)",
          file=sys.stderr)
    return workload_from_sacct_text(res.stdout, "sacct (live)")


def cmd_simulate(args: argparse.Namespace) -> int:
    policies = []
    for path in [args.policy] + ([args.vs] if args.vs else []):
        policy, err = load_or_error(path)
        if err is not None:
            print(str(err), file=sys.stderr)
            return 1
        policies.append(policy)
    workload, alloc = load_workload(args)
    simulate(args, policies, workload, alloc)
    return 0


def load_workload(args: argparse.Namespace) -> tuple[Workload, str]:
    """The workload the arguments name (``--trace``, ``--sacct``, ``--sacct-file``), its
    machine size settled (from the trace, the live cluster or ``--nodes``) and scaled by
    ``--load``; and how jobs are allocated (``node`` for SWF, ``cpu`` for sacct)."""
    try:
        if args.trace:
            from sandfill.policies.sim.trace import read_swf

            workload = read_swf(args.trace, limit=args.limit)
            alloc = args.alloc or "node"
        else:
            if args.sacct:
                workload = _live_sacct(args)
            else:
                from sandfill.policies.sim.sacct import read_sacct

                workload = read_sacct(args.sacct_file)
            if args.limit:
                workload = workload.head(args.limit)
            alloc = args.alloc or "cpu"
    except OSError as exc:
        raise CLIError(f"cannot read workload: {exc}") from None
    if args.load <= 0:
        raise CLIError("--load must be positive")
    if args.sacct and not (args.nodes and args.cpus_per_node):
        from sandfill.policies.live.current import cluster_shape
        from sandfill.slurm.commands import Runner

        shape, _ = cluster_shape(Runner(args.slurm_conf))
        args.nodes = args.nodes or shape.nodes
        args.cpus_per_node = args.cpus_per_node or shape.cpus_per_node
        args.live_machine = shape.machine
    args.nodes = args.nodes or workload.nodes
    if not args.nodes:
        raise CLIError("the workload does not say the machine size: give --nodes")
    if not workload.jobs:
        raise CLIError("the workload has no job that ran")
    return workload.scaled(args.load), alloc


def sim_config(args: argparse.Namespace, workload: Workload, alloc: str) -> SimConfig:
    """The simulator's settings from the workload flags (``simulate``, ``sweep``, ``recommend``)."""
    from sandfill.policies.document.nodesets import parse_machine

    try:
        machine = parse_machine(args.node_features)
    except ValueError as exc:
        raise CLIError(f"--node-features: {exc}") from None
    if machine and len(machine) != args.nodes:
        raise CLIError(f"--node-features lists {len(machine)} nodes, but {args.nodes} are simulated")
    live = getattr(args, "live_machine", ())
    machine = machine or (live if len(live) == args.nodes else ())  # not when --nodes differs
    return SimConfig(
        nodes=args.nodes,
        cpus_per_node=args.cpus_per_node or workload.cpus_per_node or 1,
        backfill=args.backfill,
        alloc=alloc,  # type: ignore[arg-type]
        use_trace_partitions=args.use_trace_partitions,
        accounting=not args.no_accounting,
        machine=machine,
    )


def simulate(args: argparse.Namespace, policies: list[Policy], workload: Workload,
             alloc: str) -> None:
    """Simulate ``workload`` under each policy; print the metrics table (the second policy
    compared with the first), and write the report when asked."""
    from sandfill.policies.sim.metrics import fit_warning, format_table, job_counts, summarize
    from sandfill.policies.sim.simulator import simulate as run
    from sandfill.policies.sim.simulator import stderr_progress

    cfg = sim_config(args, workload, alloc)
    results = []
    for policy in policies:
        try:
            res = run(policy, workload, cfg, progress=stderr_progress(policy.name))
        except ValueError as exc:  # what the simulator cannot model (node sets on this machine)
            raise CLIError(f"policy {policy.name!r}: {exc}") from None
        met = summarize(res, short_limit=args.short_limit, starve_after=args.starve_after)
        results.append((res, met))
        print(f"# {policy.name}: {res.events} events, {res.passes} backfill passes, "
              f"{res.wall_seconds:.2f}s", file=sys.stderr)
    for res, _ in results:
        counts = job_counts(res)
        print("\n".join(counts.lines()))
        warning = fit_warning(res, counts)
        if warning:
            print(warning)
    print()
    print(format_table(results[0][1], results[1][1] if len(results) > 1 else None))
    if args.report:
        from sandfill.policies.sim.report import write_report

        write_report(args.report, results)
        print(f"report: {args.report}")
    if workload.source.endswith((".swf", ".swf.gz")):
        from sandfill.policies.sim.trace import PWA_CITATION

        print(f"\nTrace from the Parallel Workloads Archive ({PWA_CITATION})"
              + (f"; thanks to {workload.acknowledge}." if workload.acknowledge else "."))
