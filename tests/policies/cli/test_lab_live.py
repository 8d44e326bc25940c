"""``policy sweep`` and ``policy recommend`` on the devcluster's own accounting (``--sacct``):
two bursts of jobs, one after the other, read back from slurmdbd."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import pytest

from sandfill.cli import main
from sandfill.dev.testing import TestSlurm, sleep_script
from sandfill.policies.sim.sacct import workload_from_sacct_text
from sandfill.slurm.commands import Runner, wait_until
from sandfill.slurm.sacct import history_argv

pytestmark = pytest.mark.slurm
BASE = Path(__file__).parents[2] / "data" / "devcluster-policy.yaml"


def _burst(client: TestSlurm, n: int) -> list[str]:
    jobs = [client.submit_sync(sleep_script(1 + i % 2), ["-n", str(1 + i % 4), "-t", "2", "-o", "/dev/null"])
            for i in range(n)]
    wait_until("the burst to finish", lambda: all(s.ended for s in client.squeue_sync(jobs).values()),
               timeout=120)
    return jobs


def test_sweep_and_recommend_from_live_sacct(conf: str, client: TestSlurm, tmp_path: Path, capsys) -> None:
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - 1))
    jobs = _burst(client, 12) + _burst(client, 12)  # the second burst is the held-out later part
    runner = Runner(conf)

    def recorded() -> bool:  # slurmdbd writes a job's end a moment after squeue drops it
        wl = workload_from_sacct_text(runner.check(history_argv(since)))
        return len({str(j.id) for j in wl.jobs} & set(jobs)) == len(jobs)

    wait_until("sacct to record both bursts", recorded, timeout=60)
    live = ["--sacct", "--start", since, "--slurm-conf", conf]
    spec = tmp_path / "spec.yaml"
    spec.write_text("knobs: {scheduler.backfill.interval: [30, 60], tiers.burst.priority_tier: [1, 50]}\n")
    out = tmp_path / "r.csv"
    rc = main(["policy", "sweep", str(BASE), "--spec", str(spec), *live, "--workers", "2", "--out", str(out)])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert "allocation record(s)" in cap.err and "4 variants of devcluster-tests" in cap.err
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4 and all(int(r["all.jobs"]) >= len(jobs) for r in rows)
    goals = tmp_path / "goals.yaml"
    goals.write_text("holdout: 0.5\ngoals: {all.max_wait: {at_most: '+0%'}}\n"
                     "search: {knobs: {scheduler.backfill.interval: [30, 60]}, rounds: 1}\n")
    rc = main(["policy", "recommend", str(BASE), "--goals", str(goals), *live, "--workers", "0"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert "goals met on both parts: yes" in cap.err
    best = tmp_path / "best.yaml"
    best.write_text(cap.out)
    assert main(["policy", "check", str(best)]) == 0
    rc = main(["policy", "diff", str(best), "--slurm-conf", conf])  # against the live policy
    cap = capsys.readouterr()
    assert rc in (0, 1), cap.err  # 0: no change, 1: a diff; 2 would be a file diff refuses
