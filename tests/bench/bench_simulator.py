"""Benchmark of the policy simulator on an LLNL Atlas trace (run on demand:
``.venv/bin/python tests/bench/bench_simulator.py [--trace SWF] [--jobs 3000] [--load 2.0]``; pytest does not collect bench_*.py).

Prints jobs/s for conservative and EASY backfill over the whole trace (the shipped first 8000
jobs by default; docs/benchmarks.md's figures are for the full log, given with --trace), the peak resident
memory, and the speed ratio against a naive baseline measured side by side in the same run:
a per-event full re-plan (at every submit/end, sort the whole queue by priority, rebuild the
availability profile and plan every pending job; no bf_interval batching, no
bf_max_job_test bound, no early exit) on a prefix of the trace.

Trace: Parallel Workloads Archive (Feitelson, Tsafrir, Krakov, J. Parallel Distrib. Comput.
74(10), 2014); LLNL Atlas log courtesy of Moe Jette, LLNL.
"""

from __future__ import annotations

import argparse
import heapq
import math
import resource
import time
import tracemalloc
from pathlib import Path

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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="The policy simulator on the full LLNL Atlas trace, and against a naive "
        "per-event re-plan on a prefix of it (side by side in one run).",
    )
    ap.add_argument("--trace", type=Path, default=ATLAS, help="an SWF trace, .gz or not (default: the shipped Atlas prefix)")
    ap.add_argument("--jobs", type=_positive_int, default=3000, help="jobs in the prefix the naive baseline replays (default 3000)")
    ap.add_argument("--load", type=_positive_float, default=2.0, help="load factor of that prefix (default 2.0)")
    return ap.parse_args(argv)


def _positive_int(value: str) -> int:
    n = int(value) if value.isdigit() else 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {value!r}")
    return n


def _positive_float(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        x = -1.0
    if not 0 < x < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number above 0, got {value!r}")
    return x


def main() -> None:
    args = parse_args()
    t0 = time.perf_counter()
    wl = read_swf(args.trace)
    read_s = time.perf_counter() - t0
    pol = policy_from_mapping(POLICY)
    print(f"trace: {wl.source}: {len(wl) + wl.skipped} records, {len(wl)} jobs replayed "
          f"({wl.skipped} never ran), read in {read_s:.2f}s")
    rows = []
    for mode in ("conservative", "easy"):
        cfg = SimConfig(nodes=wl.nodes, cpus_per_node=wl.cpus_per_node, backfill=mode)
        t = time.perf_counter()
        res = simulate(pol, wl, cfg)
        el = time.perf_counter() - t
        rows.append((mode, el, len(wl) / el, res.events, res.passes))
        print(f"{mode:12s} full trace: {el:6.2f}s  {len(wl) / el:9.0f} jobs/s  "
              f"{res.events} events, {res.passes} backfill passes")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS (whole process, incl. trace): {rss:.0f} MB")

    tracemalloc.start()
    simulate(pol, wl, SimConfig(nodes=wl.nodes, cpus_per_node=wl.cpus_per_node))
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    print(f"peak traced allocations during a conservative run: {peak:.0f} MB")

    t = time.perf_counter()
    busy = simulate(pol, wl.scaled(1.5), SimConfig(nodes=wl.nodes, cpus_per_node=8))
    el = time.perf_counter() - t
    print(f"conservative full trace at --load 1.5 (queues form): {el:.2f}s "
          f"{len(wl) / el:.0f} jobs/s, {busy.passes} backfill passes")

    n, load = args.jobs, args.load
    prefix = wl.head(n).scaled(load)
    cfg = SimConfig(nodes=wl.nodes, cpus_per_node=wl.cpus_per_node)
    t = time.perf_counter()
    simulate(pol, prefix, cfg)
    fast = time.perf_counter() - t
    t = time.perf_counter()
    naive_conservative(prefix.jobs, wl.nodes, wl.cpus_per_node, 7 * 86400, 1000, 1000)
    slow = time.perf_counter() - t
    print(f"prefix of {n} jobs at --load {load}, conservative: simulator {fast:.2f}s ({n / fast:.0f} jobs/s), "
          f"naive per-event re-plan {slow:.2f}s ({n / slow:.0f} jobs/s): "
          f"{slow / fast:.1f}x faster")


if __name__ == "__main__":
    main()
