"""The HTML report."""

from __future__ import annotations

from sandfill.policies.document.load import load_policy
from sandfill.policies.sim.metrics import summarize
from sandfill.policies.sim.report import write_report
from sandfill.policies.sim.simulator import SimConfig, simulate


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
