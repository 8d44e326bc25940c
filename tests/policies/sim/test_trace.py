"""SWF and sacct readers, and the HTML report."""

from __future__ import annotations

import gzip
import json

from sandfill.policies.document.load import load_policy
from sandfill.policies.sim.metrics import summarize
from sandfill.policies.sim.report import write_report
from sandfill.policies.sim.sacct import read_sacct
from sandfill.policies.sim.simulator import SimConfig, simulate
from sandfill.policies.sim.trace import read_swf

SWF = """; MaxNodes: 4
; MaxProcs: 32
; Acknowledge: Someone
; Partition: 1 batch
1 0 -1 100 8 -1 -1 8 600 -1 1 7 -1 -1 -1 1 -1 -1
2 5 -1 0 -1 -1 -1 -1 -1 -1 5 7 -1 -1 -1 1 -1 -1
3 9 -1 50 16 -1 -1 16 -1 -1 1 8 -1 -1 -1 1 -1 -1
"""


def test_read_swf_plain_and_gz(tmp_path) -> None:
    plain = tmp_path / "t.swf"
    plain.write_text(SWF)
    gz = tmp_path / "t.swf.gz"
    with gzip.open(gz, "wt") as fh:
        fh.write(SWF)
    for path in (plain, gz):
        w = read_swf(path)
        assert (w.nodes, w.cpus_per_node, w.skipped, len(w)) == (4, 8, 1, 2)
        assert w.jobs[0].time_limit == 600 and w.jobs[0].partition == "batch"
        assert w.jobs[1].time_limit is None and w.jobs[1].user == "8"
        assert w.acknowledge == "Someone"


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


def test_report_has_bokeh_roots_and_citation(tmp_path, atlas) -> None:
    wl = atlas.head(1500).scaled(2.0)
    cfg = SimConfig(nodes=1152, cpus_per_node=8)
    pol = load_policy()
    res = simulate(pol, wl, cfg)
    res2 = simulate(pol, wl, SimConfig(nodes=1152, cpus_per_node=8, backfill="easy"))
    out = write_report(tmp_path / "r.html", [(res, summarize(res)), (res2, summarize(res2))])
    text = open(out, encoding="utf-8").read()
    assert text.startswith("<!DOCTYPE html>")
    assert "data-root-id" in text  # bokeh plot roots
    assert "Bokeh.embed" in text or "embed_items" in text
    assert "cdn.bokeh.org" not in text  # INLINE resources: reads offline
    assert "Parallel Workloads Archive" in text and "Feitelson" in text
    assert "Moe Jette" in text
    assert "<table" in text and "mean_wait" in text
