"""The SWF trace reader."""

from __future__ import annotations

import gzip

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


def test_skipped_jobs_are_counted_per_reason(tmp_path) -> None:
    from sandfill.policies.sim.trace import NEVER_RAN, NO_PROCS

    path = tmp_path / "t.swf"
    path.write_text(SWF + "4 12 -1 30 -1 -1 -1 -1 -1 -1 1 7 -1 -1 -1 1 -1 -1\n"
                    "5 13 -1 -1 4 -1 -1 4 -1 -1 5 7 -1 -1 -1 1 -1 -1\n")
    w = read_swf(path)
    assert w.skipped == 3 and len(w) == 2
    assert dict(w.skip_reasons) == {NEVER_RAN: 2, NO_PROCS: 1}
    assert w.head(1).skip_reasons == w.scaled(2).skip_reasons == w.skip_reasons
