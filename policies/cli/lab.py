"""``sandfill policy sweep`` and ``sandfill policy recommend``: the policy lab
(:mod:`sandfill.policies.lab`) on the command line."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from sandfill.policies.cli import CLIError, load_or_error
from sandfill.policies.cli.simulate import add_workload_args
from sandfill.policies.document.model import Policy
from sandfill.policies.lab.run import SchedulerUnreachable, SimSettings
from sandfill.policies.lab.spec import SpecError
from sandfill.policies.sim.workload import Workload


def register(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("sweep", help="simulate a grid of policy variants in parallel on Dask")
    s.add_argument("policy", help="base policy YAML")
    s.add_argument("--spec", required=True, help="sweep spec YAML (knobs: and loads:)")
    s.add_argument("--load", type=float, nargs="+", metavar="LOAD",
                   help="arrival-rate factors (instead of the spec's loads:)")
    s.add_argument("--out", default="results.csv",
                   help="results table: .csv, or .parquet with pyarrow (default results.csv); "
                        "the variants' policy files go to <stem>-policies/ next to it")
    s.add_argument("--report", metavar="OUT.html", help="write the bokeh Pareto report")
    _common(s)
    s.set_defaults(func=cmd_sweep)
    r = sub.add_parser("recommend", help="search for a policy that meets goals (held-out check)")
    r.add_argument("policy", help="the current policy YAML (the search starts there)")
    r.add_argument("--goals", required=True, help="goals YAML (see sandfill.policies.lab.goals)")
    r.add_argument("--out", metavar="BEST.yaml", help="also write the recommended policy here")
    r.add_argument("--load", type=float, default=1.0, help="scale arrival rate")
    _common(r)
    r.set_defaults(func=cmd_recommend)


def _common(s: argparse.ArgumentParser) -> None:
    add_workload_args(s)
    s.add_argument("--scheduler", metavar="ADDRESS",
                   help="an existing Dask scheduler (e.g. a BackfillSLURMCluster's) instead of "
                        "a LocalCluster")
    s.add_argument("--workers", type=int, default=os.cpu_count() or 2,
                   help="LocalCluster worker processes (default: one per core; 0 = run the "
                        "variants one after another in this process)")


def _policy(path: str) -> Policy:
    policy, err = load_or_error(path)
    if err is not None:
        raise CLIError(str(err))
    assert policy is not None
    return policy


def _yaml(path: str, what: str) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except OSError as exc:
        raise CLIError(f"cannot read the {what} {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise CLIError(f"the {what} {path} is not valid YAML: {exc}") from None


def _workload(args: argparse.Namespace) -> tuple[Workload, SimSettings]:
    """The workload at its own load (each variant scales it) and the shared settings."""
    from sandfill.policies.cli.simulate import load_workload, sim_config

    wargs = argparse.Namespace(**{**vars(args), "load": 1.0})
    workload, alloc = load_workload(wargs)
    settings = SimSettings(sim_config(wargs, workload, alloc), short_limit=args.short_limit)
    return workload, settings


def _check_outputs(*paths: str | None) -> None:
    """Refuse, before any work, an output whose folder is missing (nothing is written)."""
    for path in (p for p in paths if p):
        folder = Path(path).resolve().parent
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise CLIError(f"cannot write {path}: {folder} is not a writable folder")


def _check_scale(args: argparse.Namespace) -> None:
    if args.workers < 0:
        raise CLIError(f"--workers must be 0 or more (got {args.workers})")
    loads = args.load if isinstance(args.load, list) else [args.load]
    for load in (x for x in loads if x is not None):
        if not 0 < load <= 100:
            raise CLIError(f"--load must be positive and at most 100 (got {load:g})")


def cmd_sweep(args: argparse.Namespace) -> int:
    from sandfill.policies.lab.results import Journal, parquet_ok, write_results
    from sandfill.policies.lab.run import TextBar, run_variants
    from sandfill.policies.lab.spec import expand, read_spec

    base = _policy(args.policy)
    _check_scale(args)
    _check_outputs(args.out, args.report)
    if str(args.out).endswith(".parquet") and not parquet_ok():
        raise CLIError(f"--out {args.out}: Parquet needs pyarrow, which is not installed; use .csv")
    try:
        knobs, loads = read_spec(_yaml(args.spec, "sweep spec"), base, source=args.spec)
        variants = expand(knobs, args.load or loads, base, source=args.spec)
    except SpecError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    workload, settings = _workload(args)
    print(f"# sweep: {len(variants)} variants of {base.name} on {len(workload)} jobs "
          f"({'scheduler ' + args.scheduler if args.scheduler else f'{args.workers} local workers'})",
          file=sys.stderr)
    journal = Journal(args.out, variants, f"{settings!r} {workload.source} {len(workload)}")
    done = journal.load()
    todo = [v for v in variants if v.name not in done]
    if done:
        print(f"# resuming: {len(done)} of {len(variants)} variants already done ({journal.path})",
              file=sys.stderr)
    bar = TextBar(len(todo))
    try:
        rows = run_variants(todo, workload, settings, scheduler=args.scheduler, workers=args.workers,
                            progress=bar.update, on_row=journal.append) if todo else {}
    except SchedulerUnreachable as exc:
        raise CLIError(str(exc)) from None
    except KeyboardInterrupt:
        print(f"\ninterrupted: {len(journal.load())} of {len(variants)} variants are done and kept in "
              f"{journal.path}; the same command again computes only the rest", file=sys.stderr)
        return 130
    table = write_results(variants, {**done, **rows}, args.out)
    journal.remove()
    print(f"results: {args.out} ({len(table)} rows, {sum(r['pareto'] for r in table)} on the "
          f"Pareto front); policy files in {Path(args.out).stem}-policies/")
    if args.report:
        from sandfill.policies.lab.report import write_report

        write_report(args.report, table, [k.path for k in knobs],
                     table_dir=Path(args.out).resolve().parent,
                     note=f"Workload {workload.source}: {len(workload)} jobs.")
        print(f"report: {args.report}")
    errors = [r for r in table if r.get("error")]
    for r in errors:
        print(f"variant {r['variant']} failed: {r['error']}", file=sys.stderr)
    return 1 if errors else 0


def cmd_recommend(args: argparse.Namespace) -> int:
    from sandfill.policies.lab.goals import GoalsError, read_goals
    from sandfill.policies.lab.recommend import recommend

    base = _policy(args.policy)
    _check_scale(args)
    _check_outputs(args.out)
    try:
        goals = read_goals(_yaml(args.goals, "goals file"), base, source=args.goals)
    except (GoalsError, SpecError) as exc:
        print(str(exc), file=sys.stderr)
        return 1
    workload, settings = _workload(args)
    if args.load != 1.0:
        workload = workload.scaled(args.load)
    try:
        found = recommend(base, goals, workload, settings, scheduler=args.scheduler,
                          workers=args.workers)
    except (ValueError, SchedulerUnreachable) as exc:  # too little history to split; no scheduler
        raise CLIError(str(exc)) from None
    print(found.summary(), file=sys.stderr)
    if found.contradiction:
        return 1
    text = found.policy_file()
    print(text, end="")
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"# written to {args.out}", file=sys.stderr)
    return 0 if found.met else 3
