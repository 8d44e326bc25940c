"""The schedule fingerprint of the shipped Atlas slice: the engine must reproduce, exactly,
every job's start (and every run segment) that the engine of commit ``baseline`` recorded in
``data/atlas_fingerprint.json``, under conservative and EASY backfill at load 1.0, 1.5 and 3.0,
plus a few configurations that take the engine's other paths (priority tiers, QOS caps and
bf_max_job_user/bf_max_job_start, CPU allocation with node-sized floor reservations and
thread timing).

The data file was written once, before the engine was sped up, with
``python tests/policies/sim/test_simulator_fingerprint.py --record`` run on that commit; it is not to be
re-recorded from a later engine (that would make the check vacuous).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sandfill.policies.document.load import policy_from_mapping
from sandfill.policies.sim.simulator import SimConfig, SimResult, simulate
from sandfill.policies.sim.trace import read_swf
from sandfill.policies.sim.workload import Workload

ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())  # the checkout
ATLAS = ROOT / "policies" / "traces" / "LLNL-Atlas-2006-2.1-cln.first8000.swf.gz"
DATA = Path(__file__).parent / "data" / "atlas_fingerprint.json"

_PRIO = {"type": "multifactor", "weights": {"age": 1000, "job_size": 1000}}
SINGLE = {
    "name": "atlas-single",
    "tiers": {"batch": {"max_walltime": "10-00:00:00"}},
    "roles": {"default": "batch"},
    "priority": _PRIO,
    "scheduler": {"backfill": {"window": "10-00:00:00"}},
}
TIERS = {
    "name": "short-tier",
    "tiers": {
        "debug": {"max_walltime": "30:00", "priority_tier": 10, "priority_job_factor": 1000},
        "batch": {"max_walltime": "10-00:00:00", "priority_job_factor": 1},
    },
    "roles": {"default": "batch"},
    "priority": {"type": "multifactor",
                 "weights": {"age": 1000, "job_size": 100, "partition": 10000}},
    "scheduler": {"backfill": {"window": "10-00:00:00"}},
}
CAPS = {
    "name": "qos-caps",
    "tiers": {
        "short": {"max_walltime": "4:00:00", "qos": {"max_jobs_per_user": 4}},
        "batch": {"max_walltime": "10-00:00:00", "qos": {"max_cpus_per_user": 2048}},
    },
    "roles": {"default": "batch"},
    "priority": _PRIO,
    "scheduler": {"backfill": {"window": "2-00:00:00", "max_job_user": 20,
                               "max_job_start": 30, "max_job_test": 200}},
}
POLICIES = {"single": SINGLE, "tiers": TIERS, "caps": CAPS}
NODE = {"nodes": 1152, "cpus_per_node": 8}
SLURMLIKE = {"nodes": 1152, "cpus_per_node": 8, "alloc": "cpu", "node_reservations": True,
             "floor_reservations": True, "bf_timing": "thread", "sched_delay": 3,
             "release_delay": 2}

#: name -> (policy, jobs of the slice, load, config)
CASES: dict[str, tuple[str, int, float, dict[str, Any]]] = {
    "single-conservative-1.0": ("single", 8000, 1.0, {**NODE, "backfill": "conservative"}),
    "single-easy-1.0": ("single", 8000, 1.0, {**NODE, "backfill": "easy"}),
    "single-conservative-1.5": ("single", 8000, 1.5, {**NODE, "backfill": "conservative"}),
    "single-easy-1.5": ("single", 8000, 1.5, {**NODE, "backfill": "easy"}),
    "single-conservative-3.0": ("single", 8000, 3.0, {**NODE, "backfill": "conservative"}),
    "single-easy-3.0": ("single", 8000, 3.0, {**NODE, "backfill": "easy"}),
    "tiers-conservative-1.5": ("tiers", 4000, 1.5, {**NODE, "backfill": "conservative"}),
    "caps-conservative-2.0": ("caps", 3000, 2.0, {**NODE, "backfill": "conservative"}),
    "caps-easy-2.0": ("caps", 3000, 2.0, {**NODE, "backfill": "easy"}),
    "slurmlike-conservative-1.5": ("single", 3000, 1.5,
                                   {**SLURMLIKE, "backfill": "conservative"}),
}


def run_case(atlas: Workload, name: str) -> SimResult:
    policy, n, load, cfg = CASES[name]
    return simulate(policy_from_mapping(POLICIES[policy]), atlas.head(n).scaled(load),
                    SimConfig(**cfg))


def fingerprint(res: SimResult) -> dict[str, Any]:
    """sha256 of the sorted (job id, first start) pairs and of every run segment."""
    ids = [j.id for j in res.workload.jobs]
    starts = sorted(zip(ids, res.start, strict=True))
    segs = sorted((ids[s.job], s.start, s.end, s.units, s.outcome, s.by) for s in res.segments)
    return {
        "starts_sha256": hashlib.sha256(repr(starts).encode()).hexdigest(),
        "segments_sha256": hashlib.sha256(repr(segs).encode()).hexdigest(),
        "started": sum(s >= 0 for s in res.start),
        "segments": len(res.segments),
        "passes": res.passes,
    }


@pytest.fixture(scope="module")
def recorded() -> dict[str, Any]:
    return json.loads(DATA.read_text())


@pytest.mark.parametrize("name", list(CASES))
def test_engine_reproduces_recorded_schedule(atlas: Workload, recorded: dict, name: str) -> None:
    assert fingerprint(run_case(atlas, name)) == recorded["cases"][name]


def test_fingerprint_tells_schedules_apart(atlas: Workload, recorded: dict) -> None:
    """The check has teeth: one job started a second later gives another fingerprint, and the
    recorded cases are all different schedules."""
    res = run_case(atlas, "caps-easy-2.0")
    res.start[len(res.start) // 2] += 1
    assert fingerprint(res)["starts_sha256"] != recorded["cases"]["caps-easy-2.0"]["starts_sha256"]
    shas = [c["starts_sha256"] for c in recorded["cases"].values()]
    assert len(set(shas)) == len(shas)


def _record() -> None:
    atlas = read_swf(ATLAS)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout.strip()
    cases = {name: fingerprint(run_case(atlas, name)) for name in CASES}
    DATA.parent.mkdir(exist_ok=True)
    DATA.write_text(json.dumps({"baseline": head, "cases": cases}, indent=1) + "\n")
    print(f"recorded {len(cases)} fingerprints from the engine of {head} in {DATA}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="Record the Atlas schedule fingerprints "
                                 "(only from the baseline engine, once).")
    ap.add_argument("--record", action="store_true", help="write data/atlas_fingerprint.json")
    if ap.parse_args().record:
        _record()
    else:
        ap.print_help()
