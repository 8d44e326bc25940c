"""Benchmark of the policy simulator against today's engine as it was at a recorded commit,
both run in the same process (run on demand; pytest does not collect bench_*.py)::

    .venv/bin/python tests/bench/bench_simulator.py [--trace ATLAS_SWF] [--other SWF ...]

The baseline engine (policies/sim/availability.py, backfill.py, simulator.py at
``--baseline``, by default the commit before the speed-ups) is read with ``git show`` into a
temporary package, so the tree holds one engine. For each run it prints both wall times, the
ratio, jobs/s, and whether the two schedules are identical (sha256 of every job's start and
run segment, as tests/policies/sim/test_simulator_fingerprint.py checks on the shipped slice). Runs:
Atlas conservative and EASY at load 1.0 and 1.5, each ``--other`` trace conservative at load
1.0, then peak memory (tracemalloc during one Atlas conservative run at load 1.5, and the
process's peak RSS), then issue #16's speed goals, each with its figure, met or not.
``--repeat N`` runs each engine N times per row, alternating, and counts each one's best
(the box is shared). Optionally (``--naive-jobs N``) the old naive per-event re-plan baseline
on a prefix.

Trace: Parallel Workloads Archive (Feitelson, Tsafrir, Krakov, J. Parallel Distrib. Comput.
74(10), 2014); LLNL Atlas log courtesy of Moe Jette, LLNL. The repository ships the first 8000
jobs (the default); pass the whole log with --trace for docs/benchmarks.md's figures.
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import importlib
import math
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from types import ModuleType

from sandfill.policies.document.load import policy_from_mapping
from sandfill.policies.sim.availability import Availability
from sandfill.policies.sim.simulator import SimConfig, simulate
from sandfill.policies.sim.trace import read_swf

# the first 8000 jobs of the LLNL Atlas log ship with the repository (policies/traces, with the
# archive's citation); --trace takes the full log (LLNL-Atlas-2006-2.1-cln.swf.gz) from the archive
ATLAS = Path(__file__).resolve().parents[2] / "policies" / "traces" / "LLNL-Atlas-2006-2.1-cln.first8000.swf.gz"
POLICY = {
    "name": "atlas-single",
    "tiers": {"batch": {"max_walltime": "10-00:00:00"}},
    "roles": {"default": "batch"},
    "priority": {"type": "multifactor", "weights": {"age": 1000, "job_size": 1000}},
    "scheduler": {"backfill": {"window": "10-00:00:00"}},
}


def naive_conservative(jobs, nodes: int, cpn: int, max_age: int, w_age: int, w_size: int):
    """Per-event full re-plan, conservative backfill (the baseline)."""
    ev = [(j.submit, 1, i) for i, j in enumerate(jobs)]
    heapq.heapify(ev)
    units = [math.ceil(j.cpus / cpn) for j in jobs]
    limit = [min(j.time_limit or 864000, 864000) for j in jobs]
    free = nodes
    running: dict[int, int] = {}
    pending: list[int] = []
    start = [-1] * len(jobs)
    while ev:
        t = ev[0][0]
        while ev and ev[0][0] == t:
            _, kind, i = heapq.heappop(ev)
            if kind == 0:
                free += units[i]
                del running[i]
            elif units[i] <= nodes:
                pending.append(i)

        def prio(i: int, t: int = t) -> float:
            age = min(t - jobs[i].submit, max_age) / max_age
            return -(w_age * age + w_size * units[i] / nodes)

        pending.sort(key=lambda i: (prio(i), jobs[i].submit, i))
        prof = Availability(t, nodes, free, [(e, units[r]) for r, e in running.items()])
        still = []
        for i in pending:
            s = prof.earliest_fit(units[i], limit[i], t + 864000)
            if s == t:
                free -= units[i]
                start[i] = t
                end = t + min(jobs[i].run_time, limit[i])
                running[i] = t + limit[i]
                heapq.heappush(ev, (end, 0, i))
                prof.reserve(t, t + limit[i], units[i])
            else:
                if s is not None:
                    prof.reserve(s, s + limit[i], units[i])
                still.append(i)
        pending = still
    return start


BASELINE = "8cc022f91c6156f1a507e513e673ba0ce0b14335"  # main before the engine's speed-ups
ROOT = Path(__file__).resolve().parents[2]
ENGINE = ("availability", "backfill", "simulator")


def baseline_engine(commit: str) -> ModuleType:
    """The engine's modules at ``commit`` as a temporary package (its simulator module)."""
    pkg = "_sandfill_baseline_" + commit[:12]
    where = Path(tempfile.mkdtemp(prefix="sandfill-bench-")) / pkg
    where.mkdir()
    (where / "__init__.py").write_text("")
    for mod in ENGINE:
        out = subprocess.run(["git", "show", f"{commit}:policies/sim/{mod}.py"], cwd=ROOT,
                             capture_output=True, text=True)
        if out.returncode:
            raise SystemExit(f"cannot read policies/sim/{mod}.py at {commit!r}: "
                             f"{out.stderr.strip()}")
        src = out.stdout
        for other in ENGINE:
            src = src.replace(f"sandfill.policies.sim.{other}", f"{pkg}.{other}")
        (where / f"{mod}.py").write_text(src)
    sys.path.insert(0, str(where.parent))
    return importlib.import_module(f"{pkg}.simulator")


def schedule_sha(res) -> str:
    ids = [j.id for j in res.workload.jobs]
    starts = sorted(zip(ids, res.start, strict=True))
    segs = sorted((ids[s.job], s.start, s.end, s.units, s.outcome, s.by) for s in res.segments)
    return hashlib.sha256(repr((starts, segs)).encode()).hexdigest()


def compare(label: str, wl, load: float, mode: str, old: ModuleType, repeat: int = 1) -> dict:
    """Runs with the baseline and the current engine, side by side (``repeat`` times each,
    alternating; the best wall time of each counts: the box is shared)."""
    pol = policy_from_mapping(POLICY)
    shape = {"nodes": wl.nodes, "cpus_per_node": wl.cpus_per_node or 1, "backfill": mode}
    work = wl.scaled(load)
    t_old = t_new = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        before = old.simulate(pol, work, old.SimConfig(**shape))
        t_old = min(t_old, time.perf_counter() - t)
        t = time.perf_counter()
        after = simulate(pol, work, SimConfig(**shape))
        t_new = min(t_new, time.perf_counter() - t)
    same = schedule_sha(before) == schedule_sha(after)
    print(f"{label:28s} load {load:3.1f} {mode:12s} baseline {t_old:7.2f}s  now {t_new:6.2f}s  "
          f"{t_old / t_new:5.1f}x  {len(wl) / t_new:9.0f} jobs/s  {after.passes} passes  "
          f"schedule {'identical' if same else 'DIFFERENT'}", flush=True)
    return {"label": label, "load": load, "mode": mode, "old": t_old, "new": t_new,
            "same": same, "jobs": len(wl)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="The policy simulator against the engine of a recorded commit (side by "
        "side in one run): Atlas at load 1.0 and 1.5, other traces at 1.0, peak memory, and "
        "the speed goals met or not.",
    )
    ap.add_argument("--trace", type=Path, default=ATLAS,
                    help="the Atlas SWF trace, .gz or not (default: the shipped first 8000 jobs)")
    ap.add_argument("--other", type=Path, action="append", default=[],
                    help="another SWF trace to compare conservative at load 1.0 (repeatable)")
    ap.add_argument("--baseline", default=BASELINE,
                    help=f"the commit whose engine is the baseline (default {BASELINE[:9]})")
    ap.add_argument("--naive-jobs", type=_whole, default=0,
                    help="also time the naive per-event re-plan on this many jobs (default 0: skip)")
    ap.add_argument("--load", type=_positive_float, default=2.0,
                    help="load factor of the naive baseline's prefix (default 2.0)")
    ap.add_argument("--repeat", type=_whole, default=1,
                    help="runs of each engine per row, the best counting (default 1)")
    return ap.parse_args(argv)


def _whole(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"must be a whole number, got {value!r}")
    return int(value)


def _positive_float(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        x = -1.0
    if not 0 < x < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number above 0, got {value!r}")
    return x


def _memory(wl) -> float:
    pol = policy_from_mapping(POLICY)
    tracemalloc.start()
    simulate(pol, wl.scaled(1.5), SimConfig(nodes=wl.nodes, cpus_per_node=wl.cpus_per_node))
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak traced allocations during a conservative run at load 1.5: {peak:.0f} MB; "
          f"peak RSS of the whole process (both engines, all traces): {rss:.0f} MB")
    return rss


def goals(rows: list[dict], others: list[dict], rss: float) -> list[str]:
    """The issue's speed goals, each with its figure and whether it is met."""
    def row(load: float, mode: str) -> dict:
        return next(r for r in rows if r["load"] == load and r["mode"] == mode)

    cons, easy = row(1.5, "conservative"), row(1.0, "easy")
    out = [_goal("Atlas load 1.5 conservative >= 15x", cons["old"] / cons["new"], 15, "x"),
           _goal("EASY at Atlas load 1.0 >= 200,000 jobs/s", easy["jobs"] / easy["new"],
                 200_000, " jobs/s")]
    if others:  # the busiest: the one the baseline replays at the fewest jobs/s
        busy = min(others, key=lambda r: r["jobs"] / r["old"])
        out.append(_goal(f"busiest other trace ({busy['label']}) load 1.0 conservative >= 5x",
                         busy["old"] / busy["new"], 5, "x"))
    out.append(f"goal peak memory < 500 MB: {rss:.0f} MB RSS: {'met' if rss < 500 else 'NOT met'}")
    return out


def _goal(name: str, value: float, target: float, unit: str) -> str:
    return f"goal {name}: {value:,.1f}{unit}: {'met' if value >= target else 'NOT met'}"


def _naive(wl, n: int, load: float) -> None:
    prefix = wl.head(n).scaled(load)
    cfg = SimConfig(nodes=wl.nodes, cpus_per_node=wl.cpus_per_node)
    t = time.perf_counter()
    simulate(policy_from_mapping(POLICY), prefix, cfg)
    fast = time.perf_counter() - t
    t = time.perf_counter()
    naive_conservative(prefix.jobs, wl.nodes, wl.cpus_per_node, 7 * 86400, 1000, 1000)
    slow = time.perf_counter() - t
    print(f"prefix of {n} jobs at --load {load}, conservative: simulator {fast:.2f}s, naive "
          f"per-event re-plan {slow:.2f}s: {slow / fast:.1f}x faster")


def main() -> None:
    args = parse_args()
    old = baseline_engine(args.baseline)
    wl = read_swf(args.trace)
    print(f"trace: {wl.source}: {len(wl)} jobs replayed ({wl.skipped} never ran); baseline "
          f"engine of {args.baseline[:9]}")
    rows = [compare(args.trace.name, wl, load, mode, old, args.repeat)
            for load in (1.0, 1.5) for mode in ("conservative", "easy")]
    others = [compare(path.name, read_swf(path), 1.0, "conservative", old, args.repeat)
              for path in args.other]
    rss = _memory(wl)
    for line in goals(rows, others, rss):
        print(line)
    if args.naive_jobs:
        _naive(wl, args.naive_jobs, args.load)
    if not all(r["same"] for r in rows + others):
        raise SystemExit("a schedule differs from the baseline engine's")


if __name__ == "__main__":
    main()
