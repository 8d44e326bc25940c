"""A site's own history (sacct -P or --json) as the simulator's workload."""

from __future__ import annotations

import json

from sandfill.policies.sim.sacct import read_sacct


def test_read_sacct_parsable(tmp_path) -> None:
    f = tmp_path / "sacct.txt"
    f.write_text(
        "JobID|User|Partition|Submit|Start|End|Elapsed|Timelimit|NCPUS|NNodes|State\n"
        "10|ann|burst|2024-01-01T00:00:00|2024-01-01T00:00:30|2024-01-01T00:10:30|00:10:00|"
        "01:00:00|4|1|COMPLETED\n"
        "10.batch|ann||2024-01-01T00:00:00|2024-01-01T00:00:30|2024-01-01T00:10:30|00:10:00|"
        "|4|1|COMPLETED\n"
        "11|bob|batch|2024-01-01T00:01:00|Unknown|Unknown|00:00:00|2-00:00:00|8|1|CANCELLED\n"
        "12|bob|batch|2024-01-01T00:02:00|2024-01-01T00:02:00|2024-01-01T00:03:00|00:01:00|"
        "30|8|1|TIMEOUT\n"
    )
    w = read_sacct(f)
    assert len(w) == 2 and w.skipped == 1
    a, b = w.jobs
    assert (a.id, a.submit, a.run_time, a.time_limit, a.cpus, a.partition) == (
        10, 0, 600, 3600, 4, "burst")
    assert (b.id, b.submit, b.time_limit) == (12, 120, 1800)


def test_read_sacct_json(tmp_path) -> None:
    data = {"jobs": [
        {"job_id": 5, "user": "ann", "partition": "batch", "allocation_nodes": 1,
         "required": {"CPUs": 2},
         "time": {"submission": 1000, "start": 1010, "elapsed": 300, "limit": 60}},
        {"job_id": 6, "user": "ann", "partition": "batch", "allocation_nodes": 0,
         "required": {"CPUs": 2},
         "time": {"submission": 1100, "start": 0, "elapsed": 0, "limit": 60}},
    ]}
    f = tmp_path / "sacct.json"
    f.write_text(json.dumps(data))
    w = read_sacct(f)
    assert len(w) == 1 and w.skipped == 1
    assert (w.jobs[0].run_time, w.jobs[0].time_limit, w.jobs[0].cpus) == (300, 3600, 2)
