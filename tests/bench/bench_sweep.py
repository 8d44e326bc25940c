"""Benchmark of ``sandfill policy sweep`` (run on demand:
``.venv/bin/python tests/bench/bench_sweep.py [--trace SWF] [--jobs N] [--workers 2]``;
pytest does not collect bench_*.py).

A sweep of 108 variants of a two-tier policy (the short tier's max_walltime x 3, its
priority_tier x 2, the age weight x 3, bf_interval x 2, loads 1.0/1.5/2.0 -- 36 policies at
three loads) on the shipped Atlas slice (the first 8,000 jobs), run twice in the same
process: one after another (``workers=0``) and on a LocalCluster of ``--workers`` worker
processes. Prints both wall times, the speed-up, and checks that both runs gave the same
figures for every variant.

Trace: Parallel Workloads Archive (Feitelson, Tsafrir, Krakov, J. Parallel Distrib. Comput.
74(10), 2014); LLNL Atlas log courtesy of Moe Jette, LLNL.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from sandfill.policies.document.load import policy_from_mapping
from sandfill.policies.lab.run import SimSettings, run_variants
from sandfill.policies.lab.spec import expand, read_spec
from sandfill.policies.sim.simulator import SimConfig
from sandfill.policies.sim.trace import read_swf

ATLAS = Path(__file__).resolve().parents[2] / "policies" / "traces" / "LLNL-Atlas-2006-2.1-cln.first8000.swf.gz"
POLICY = {
    "name": "atlas",
    "tiers": {"short": {"max_walltime": "1:00:00", "priority_tier": 10, "priority_job_factor": 100},
              "batch": {"max_walltime": "10-00:00:00", "priority_job_factor": 10}},
    "roles": {"default": "batch"},
    "priority": {"type": "multifactor", "weights": {"age": 1000, "job_size": 100, "partition": 1000}},
    "scheduler": {"backfill": {"window": "10-00:00:00"}},
}
SPEC = {
    "knobs": {"tiers.short.max_walltime": ["30:00", "1:00:00", "2:00:00"],
              "tiers.short.priority_tier": [1, 10],
              "priority.weights.age": {"from": 0, "to": 4000, "steps": 3},
              "scheduler.backfill.interval": [30, 120]},
    "loads": [1.0, 1.5, 2.0],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trace", default=str(ATLAS))
    ap.add_argument("--jobs", type=int, help="only the first N jobs")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    wl = read_swf(args.trace, limit=args.jobs)
    base = policy_from_mapping(POLICY)
    knobs, loads = read_spec(SPEC, base)
    variants = expand(knobs, loads, base)
    settings = SimSettings(SimConfig(nodes=wl.nodes, cpus_per_node=wl.cpus_per_node))
    print(f"{len(variants)} variants, {len(wl)} jobs, {os.cpu_count()} cores, "
          f"load average before: {os.getloadavg()[0]:.2f}")
    t0 = time.perf_counter()
    serial = run_variants(variants, wl, settings, workers=0)
    t_serial = time.perf_counter() - t0
    t0 = time.perf_counter()
    parallel = run_variants(variants, wl, settings, workers=args.workers)
    t_parallel = time.perf_counter() - t0
    same = all({k: v for k, v in serial[n].items() if k not in ("worker", "sim_seconds")}
               == {k: v for k, v in parallel[n].items() if k not in ("worker", "sim_seconds")}
               for n in serial)
    sim = sum(r["sim_seconds"] for r in serial.values())
    print(f"one after another: {t_serial:.1f} s ({sim:.1f} s inside simulate)")
    sim_par = sum(r["sim_seconds"] for r in parallel.values())
    print(f"LocalCluster, {args.workers} worker processes: {t_parallel:.1f} s (cluster start-up "
          f"included; {sim_par:.1f} s inside simulate, summed over the workers: "
          f"{sim_par / sim:.2f}x the serial run's, what sharing the cores cost)")
    print(f"speed-up: {t_serial / t_parallel:.2f}x; same figures for every variant: {same}; "
          f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
