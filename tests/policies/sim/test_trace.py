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
