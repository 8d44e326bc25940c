"""``sandfill policy show|diff|apply|history|rollback|health|replay``: the live cluster's side of
the CLI.

Which Slurm is live: ``--slurm-conf PATH``, else ``$SLURM_CONF``, else
``/etc/slurm/slurm.conf``. Exit status: ``diff`` 0 equal / 1 different; ``apply`` and
``rollback`` 0 applied (or nothing to do) / 1 invalid policy, refused (not confirmed, the
history unreadable) or failed apply (the previous state restored) / 3 applied but some
settings wait for a slurmctld restart; ``health`` 0 / 2 when accounting cannot be read; 2 for
usage errors and a cluster that cannot be asked.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from sandfill.policies.cli import CLIError
from sandfill.policies.document.errors import PolicyError
from sandfill.policies.document.load import load_policy, policy_warnings
from sandfill.policies.live.fragment import FragmentError
from sandfill.slurm.commands import Runner, SlurmCommandError

if TYPE_CHECKING:
    from collections.abc import Callable

    from sandfill.policies.document.model import ClusterShape, Policy
    from sandfill.policies.live.apply import Applier, ApplyResult
    from sandfill.policies.live.current import LivePolicy
    from sandfill.policies.live.history import History, Record

EXIT_RESTART = 3


def _target(p: argparse.ArgumentParser, *, fragment: bool = True) -> None:
    p.add_argument("--slurm-conf", metavar="PATH",
                   help="slurm.conf of the cluster (default: $SLURM_CONF)")
    if fragment:
        p.add_argument("--fragment", metavar="PATH",
                       help="the policy file slurm.conf includes (default: found from its "
                            "Include line)")


def register(sub: argparse._SubParsersAction) -> None:
    _register_live(sub)
    _register_health(sub)
    _register_replay(sub)


def _register_live(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("show", help="print the live cluster's policy as a policy file")
    _target(s)
    s.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    s.set_defaults(func=cmd_show)

    d = sub.add_parser("diff", help="what applying FILE would change (exit 1 if anything)")
    d.add_argument("file", help="policy YAML")
    _target(d)
    d.set_defaults(func=cmd_diff)

    a = sub.add_parser("apply", help="apply FILE to the live cluster (verified, rolled back "
                                     "on failure, recorded in the history)")
    a.add_argument("file", help="policy YAML")
    _target(a)
    a.add_argument("--nodes", metavar="NODELIST",
                   help="the cluster's nodes: the partitions of tiers without a node set "
                        "(default: as in the current fragment, else every node)")
    a.add_argument("--yes", action="store_true",
                   help="apply without asking (required when stdin is not a terminal)")
    a.add_argument("--no-simulate", action="store_true",
                   help="skip the simulation of FILE against the live policy on the recent "
                        "sacct history (recorded in the history)")
    a.add_argument("--history-days", type=_days, default=7, metavar="N",
                   help="days of sacct history the gate simulates (default 7)")
    a.set_defaults(func=cmd_apply)

    h = sub.add_parser("history", help="list applied policies (newest last)")
    _target(h)
    h.add_argument("--show", type=int, metavar="ID", help="print one record in full")
    h.set_defaults(func=cmd_history)

    r = sub.add_parser("rollback", help="re-apply an earlier policy from the history")
    r.add_argument("id", nargs="?", type=int,
                   help="record to go back to (default: the one before the policy in force)")
    _target(r)
    r.add_argument("--nodes", metavar="NODELIST", help="as for apply")
    r.set_defaults(func=cmd_rollback)


# ---------------------------------------------------------------------------------------------


def _context(args: argparse.Namespace) -> tuple[Runner, Path]:
    from sandfill.policies.live.current import locate_fragment, slurm_conf_path

    conf = slurm_conf_path(args.slurm_conf)
    if not conf.exists():
        raise CLIError(f"{conf} does not exist: set SLURM_CONF or give --slurm-conf")
    try:
        fragment = locate_fragment(conf, getattr(args, "fragment", None))
    except FragmentError as exc:
        raise CLIError(str(exc)) from None
    return Runner(str(conf)), fragment


def _read(runner: Runner, fragment: Path) -> LivePolicy:
    from sandfill.policies.live.current import read_policy

    try:
        return read_policy(runner, fragment)
    except SlurmCommandError as exc:
        raise CLIError(f"cannot read the live cluster: {exc}") from None


def cmd_show(args: argparse.Namespace) -> int:
    runner, fragment = _context(args)
    live = _read(runner, fragment)
    head = [
        f"# Live policy of {runner.slurm_conf}, read "
        f"{datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"# (scontrol show config / partition, sacctmgr show qos; fragment {fragment}).",
        "# Check it with `sandfill policy check`, change it, `sandfill policy diff`/`apply` it.",
    ]
    head += [f"# note: {n}" for n in live.notes]
    head += [f"# warning: {w}" for w in _history_of(fragment).warnings]
    if live.error is not None:
        head += [f"# warning: {p}" for p in live.error.problems]
    text = "\n".join(head) + "\n" + yaml.safe_dump(live.mapping, sort_keys=False)
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}")
    else:
        print(text, end="")
    return 0


def _history_of(fragment: Path) -> History:
    """The fragment's history, read (so its ``warnings`` name any unreadable record)."""
    from sandfill.policies.live.history import History

    hist = History(fragment)
    hist.records()
    return hist


def _shape(runner: Runner) -> ClusterShape:
    """The live cluster's shape (nodes x CPUs per node), from ``sinfo``."""
    from sandfill.policies.live.current import cluster_shape

    try:
        return cluster_shape(runner)[0]
    except (SlurmCommandError, FragmentError) as exc:
        raise CLIError(f"cannot read the live cluster: {exc}") from None


def _load_checked(path: str, runner: Runner, shape: ClusterShape | None = None) -> Policy | None:
    """The policy in ``path``, validated against the live cluster's shape."""
    shape = shape or _shape(runner)
    try:
        return load_policy(path, shape=shape)
    except PolicyError as exc:
        print(str(exc), file=sys.stderr)
        return None


def _days(text: str) -> int:
    """``--history-days``: a whole number of days >= 1 (argparse names the bad value)."""
    from sandfill.policies.gate import window

    try:
        value = int(text)
        window(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a whole number of days >= 1, not {text!r}") from None
    return value


def _print_diff(live: LivePolicy, wanted: Policy) -> int | None:
    """Print the changes from the live policy to ``wanted``; their number (None: the live
    settings are not a valid policy, which is said)."""
    from sandfill.policies.document.compare import diff_policies

    if live.policy is None:
        print(f"the live cluster's settings are not a valid policy:\n{live.error}")
        return None
    changes = diff_policies(live.policy, wanted, accounting=live.state.accounting)
    for c in changes:
        note = f"    (needs {c.needs_restart})" if c.needs_restart else ""
        print(f"{c}{note}")
    return len(changes)


def cmd_diff(args: argparse.Namespace) -> int:
    runner, fragment = _context(args)
    wanted = _load_checked(args.file, runner)
    if wanted is None:
        return 2
    n = _print_diff(_read(runner, fragment), wanted)
    return 1 if n is None or n else 0


def _do_apply(args: argparse.Namespace, runner: Runner, fragment: Path,
              run: Callable[[Applier], ApplyResult], policy: Policy | None = None,
              simulation: str = "") -> int:
    """Run an apply or a rollback and say what is in force afterwards, in words that match
    it: "not applied" only when nothing was changed, "FAILED" with whether the previous
    configuration is back when a change was undone."""
    from sandfill.policies.live.apply import Applier, ApplyFailed, ApplyRefused

    if policy is not None:
        for w in policy_warnings(policy, accounting=True):
            print(f"warning: {w}", file=sys.stderr)
    applier = Applier(runner, fragment, nodes=args.nodes, log=lambda m: print(f"  {m}"),
                      simulation=simulation)
    try:
        res = run(applier)
    except ApplyFailed as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    except ApplyRefused as exc:
        print(f"not applied: {exc}", file=sys.stderr)
        return 1
    assert res.policy is not None
    name = res.policy.name
    if res.unchanged:
        print(f"policy {name!r} is already in force: nothing to change")
        return 0
    for c in res.changes:
        print(c)
    rec = res.record
    assert rec is not None
    if res.restart_pending:
        print(f"applied as record {rec.id}, but these settings take effect only after a "
              "slurmctld restart:")
        for c in res.restart_pending:
            print(f"  {c}  [{c.needs_restart}]")
        return EXIT_RESTART
    print(f"applied policy {name!r} ({len(res.changes)} change(s)); verified; "
          f"history record {rec.id}")
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    """The gate first (the diff, the simulated effect, the question), then the apply."""
    runner, fragment = _context(args)
    shape = _shape(runner)
    policy = _load_checked(args.file, runner, shape)
    if policy is None:
        print("not applied: the policy file is invalid (nothing was changed)", file=sys.stderr)
        return 1
    live = _read(runner, fragment)
    print(f"policy diff (live -> {args.file}):")
    n = _print_diff(live, policy)
    if n == 0:
        print("  none: the policy is the live one")
    simulation = ("not simulated (no policy change)" if n == 0
                  else _gate_simulation(args, runner, live, policy, shape))
    if simulation is None:
        return 1
    refused = _confirm(args)
    if refused is not None:
        print(f"not applied: {refused} (nothing was changed)", file=sys.stderr)
        return 1
    action = f"apply {Path(args.file).absolute()}"
    return _do_apply(args, runner, fragment, lambda a: a.apply(policy, action=action), policy,
                     simulation)


def _gate_simulation(args: argparse.Namespace, runner: Runner, live: LivePolicy,
                     policy: Policy, shape: ClusterShape) -> str | None:
    """Print the simulated effect of ``policy`` against the live one on the recent history;
    the history record's note (None: the history cannot be read, which is said)."""
    from sandfill.policies.gate import (
        HistoryUnavailable,
        effect_table,
        read_history,
        simulated_effect,
    )

    if args.no_simulate:
        print("not simulated (--no-simulate)")
        return "not simulated (--no-simulate)"
    days = args.history_days
    try:
        workload = read_history(runner, days)
    except HistoryUnavailable as exc:
        print(f"not applied: {exc}; give --no-simulate to apply without the simulation "
              "(nothing was changed)", file=sys.stderr)
        return None
    try:
        effect = simulated_effect(live.policy, policy, workload, shape, days)
    except ValueError as exc:  # what the simulator cannot model (see sandfill.policies.sim.nodesets)
        print(f"not applied: the simulation cannot run: {exc}; give --no-simulate to apply "
              "without it (nothing was changed)", file=sys.stderr)
        return None
    if effect is None:
        note = f"no job ran in the last {days} day(s): nothing to simulate"
        print(note)
        return note
    print(effect_table(effect))
    return effect.note


def _confirm(args: argparse.Namespace) -> str | None:
    from sandfill.policies.gate import confirmation

    def ask(question: str) -> str:
        print(question, end="", flush=True)
        line = sys.stdin.readline()
        if not line:
            raise EOFError
        return line

    return confirmation(yes=args.yes, tty=sys.stdin.isatty(), ask=ask)


def _history_warnings(hist: History) -> None:
    for w in hist.warnings:
        print(f"warning: {w}", file=sys.stderr)


def cmd_history(args: argparse.Namespace) -> int:
    from sandfill.policies.live.history import History, in_force

    _runner, fragment = _context(args)
    hist = History(fragment)
    recs = hist.records()
    _history_warnings(hist)
    if args.show is not None:
        rec = next((r for r in recs if r.id == args.show), None)
        if rec is None:
            raise CLIError(f"no history record {args.show} in {hist.dir}")
        _print_record(rec)
        return 0
    if not recs:
        print(f"no policy applied yet (history in {hist.dir})")
        return 0
    cur = in_force(recs)
    for r in recs:
        mark = "*" if cur is not None and r.id == cur.id else " "
        gate = f"  [{r.simulation}]" if r.simulation else ""
        print(f"{mark}{r.id:4d}  {r.when}  {r.who:<10} {r.status:<16} "
              f"{r.policy.get('name', '?')!s:<16} {len(r.changes):3d} change(s)  {r.action}"
              f"{gate}")
    return 0


def _print_record(rec: Record) -> None:
    print(f"record {rec.id}: {rec.action}\n  when: {rec.when}\n  who: {rec.who}\n"
          f"  status: {rec.status}")
    if rec.message:
        print(f"  message: {rec.message}")
    if rec.simulation:
        print(f"  simulation: {rec.simulation}")
    print("  changes:" + ("" if rec.changes else " none"))
    for c in rec.changes:
        print(f"    {c}")
    print("  policy:")
    print("    " + yaml.safe_dump(rec.policy, sort_keys=False).replace("\n", "\n    "))


def cmd_rollback(args: argparse.Namespace) -> int:
    """The target is chosen under the apply's lock (:meth:`Applier.rollback`)."""
    runner, fragment = _context(args)
    return _do_apply(args, runner, fragment, lambda a: a.rollback(args.id))


def _register_health(sub: argparse._SubParsersAction) -> None:
    h = sub.add_parser("health", help="the live cluster's waits, backfill share, notebook "
                                      "starts and Dask workers from sacct, beside the "
                                      "simulator's prediction for the live policy")
    h.add_argument("--days", type=_days, action="append", metavar="N",
                   help="a window of the last N days (repeatable; default: --days 1 --days 7)")
    h.add_argument("--report", metavar="OUT.html", help="write the figures as a bokeh HTML page")
    h.add_argument("--json", action="store_true", help="print the figures as JSON")
    h.add_argument("--metrics", metavar="FILE",
                   help="write the figures as Prometheus text exposition ('-': stdout)")
    _target(h)
    h.set_defaults(func=cmd_health)


def cmd_health(args: argparse.Namespace) -> int:
    """Exit 0 with the figures; 2 (and no figure, no file) when accounting cannot be read."""
    from sandfill.policies.health import (
        HealthUnavailable,
        health,
        health_text,
        prometheus_text,
        read_windows,
        render_health,
    )

    runner, fragment = _context(args)
    try:  # accounting first: without it there is nothing to show
        texts = read_windows(runner, sorted(set(args.days or [1, 7])))
    except HealthUnavailable as exc:
        raise CLIError(f"{exc}\nno health figures without accounting: is slurmdbd up "
                       "(`sacctmgr show cluster`)?") from None
    figures = health(texts, _read(runner, fragment).policy, _shape(runner))
    print(figures.to_json() if args.json else health_text(figures))
    if args.metrics:
        text = prometheus_text(figures)
        if args.metrics == "-":
            print(text, end="")
        else:
            Path(args.metrics).write_text(text)
            print(f"metrics: {args.metrics}", file=sys.stderr)
    if args.report:
        Path(args.report).write_text(render_health(figures), encoding="utf-8")
        print(f"report: {args.report}", file=sys.stderr)
    return 0


def _register_replay(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("replay", help="run a time-compressed trace slice on the live "
                                      "(dev)cluster and compare starts with the simulator")
    r.add_argument("policy", help="policy YAML (must be the one in force: see `policy diff`)")
    r.add_argument("--trace", required=True, help="SWF trace (.swf or .swf.gz)")
    r.add_argument("--slice", required=True, metavar="START:COUNT",
                   help="jobs START..START+COUNT-1 of the trace (jobs that ran)")
    r.add_argument("--compress", type=float, default=500.0,
                   help="divide submit offsets, run and requested times by F (default 500)")
    r.add_argument("--cpu-scale", type=float,
                   help="processors x this (default: cluster CPUs / trace CPUs)")
    r.add_argument("--release-delay", type=int, default=1,
                   help="seconds a finished job keeps its CPUs in the simulator (default 1)")
    r.add_argument("--dry-run", action="store_true",
                   help="only prepare and simulate the slice; submit nothing")
    _target(r, fragment=True)
    r.set_defaults(func=cmd_replay)


def cmd_replay(args: argparse.Namespace) -> int:
    from sandfill.policies.document.compare import diff_policies
    from sandfill.policies.replay import batch_sched_delay, compare, prepare, run_live
    from sandfill.policies.sim.simulator import simulate
    from sandfill.policies.sim.trace import PWA_CITATION, read_swf

    try:
        start_s, count_s = args.slice.split(":")
        start, count = int(start_s), int(count_s)
    except ValueError:
        raise CLIError("--slice must be START:COUNT (two integers)") from None
    runner, fragment = _context(args)
    shape = _shape(runner)
    policy = _load_checked(args.policy, runner, shape)
    if policy is None:
        return 2
    live = _read(runner, fragment)
    if live.policy is None or diff_policies(live.policy, policy,
                                            accounting=live.state.accounting):
        raise CLIError(f"{args.policy} is not the policy in force: `sandfill policy diff` "
                         "it, then `sandfill policy apply` it first")
    workload = read_swf(args.trace, limit=start + count)
    try:
        plan = prepare(policy, workload, start=start, count=count, compress=args.compress,
                       nodes=shape.nodes, cpus_per_node=shape.cpus_per_node,
                       cpu_scale=args.cpu_scale, sched_delay=batch_sched_delay(runner),
                       release_delay=args.release_delay)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    sim = simulate(policy, plan.workload(), plan.config)
    span = max(sim.end) if sim.end else 0
    print(f"# slice {start}:{count} of {workload.source}: {len(plan.jobs)} jobs "
          f"({plan.dropped} no tier admits), compress x{args.compress:g}, CPUs x"
          f"{plan.cpu_scale:.4g}; simulated makespan {span} s")
    if args.dry_run:
        return 0
    try:
        run = run_live(plan, runner, progress=lambda m: print(f"  {m}", file=sys.stderr))
    except (RuntimeError, TimeoutError, SlurmCommandError) as exc:
        raise CLIError(str(exc)) from None
    fid = compare(plan, run)
    off = run.off_plan(plan)
    print(f"submission lag max {max(run.submit_lag):.2f} s; {len(off)} job(s) submitted or run "
          "otherwise than planned (simulated as sacct recorded them)")
    print(fid.summary())
    print(fid.histogram())
    print(f"\nTrace from the Parallel Workloads Archive ({PWA_CITATION})"
          + (f"; thanks to {workload.acknowledge}." if workload.acknowledge else "."))
    return 0
