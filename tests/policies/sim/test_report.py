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


def _atlas_default(atlas, nodes: int = 1152):
    """The admin's first try: the default (4-node) policy on Atlas jobs."""
    wl = atlas.head(1500)
    res = simulate(load_policy(), wl, SimConfig(nodes=nodes, cpus_per_node=8))
    return res, summarize(res)


def _divs(results) -> list[str]:
    from bokeh.models import Div

    from sandfill.policies.sim.report import report_layout

    return [d.text for d in report_layout(results, title="t").children if isinstance(d, Div)]


def test_report_opens_with_the_cli_count_its_reasons_and_the_misfit_warning(atlas) -> None:
    from sandfill.policies.sim.metrics import job_counts

    res, met = _atlas_default(atlas)
    divs = _divs([(res, met)])
    counts = job_counts(res)
    head = counts.lines()[0]
    assert counts.n_rejected == len(res.rejected) > 0
    assert f"{counts.n_rejected:,} rejected by policy default" in head
    top, table = divs[1], divs[2]
    assert "<h2>Jobs</h2>" in top and "<h2>Metrics</h2>" in table
    assert head in top and "ask more nodes than any tier allows (max_nodes 4)" in top
    assert "does not fit this machine" in top and "--nodes 4 --cpus-per-node 8" in top
    assert "tier:interactive" not in table  # no job in it: left out
    assert "tier:batch" in table and "0.0%" not in table


def test_vs_report_opens_with_the_policy_diff_and_coloured_deltas(atlas) -> None:
    from sandfill.policies.document.load import policy_from_mapping, policy_to_mapping

    wl = atlas.head(1500)
    base = load_policy()
    m = policy_to_mapping(base)
    m["name"] = "wide"
    m["tiers"]["batch"].update(max_nodes=1152, max_cpus_per_job=9216)
    wide = policy_from_mapping(m)
    cfg = SimConfig(nodes=1152, cpus_per_node=8)
    a, b = simulate(base, wl, cfg), simulate(wide, wl, cfg)
    divs = _divs([(a, summarize(a)), (b, summarize(b))])
    assert "<h2>Policy diff: default &rarr; wide</h2>" in divs[1]  # first after the title
    assert "~ tiers.batch.max_nodes: 4 -&gt; 1152" in divs[1]
    assert "<h2>Jobs</h2>" in divs[2]
    table = divs[3]
    assert "<h2>Metrics</h2>" in table
    # the wide policy runs the big jobs: utilization up and the small jobs' waits down
    assert "class='better' style='color:#1a7f37" in _all_rows(table)["utilization"]
    assert "class='better'" in _all_rows(table)["mean_wait"]
    assert "class=" not in _all_rows(table)["jobs"]  # a class's size is neither
    # the other way round, the same changes are worse
    back = _all_rows(_divs([(b, summarize(b)), (a, summarize(a))])[3])
    assert "class='worse' style='color:#cf222e" in back["utilization"]
    assert "class='worse'" in back["mean_wait"]


def _all_rows(table: str) -> dict[str, str]:
    """The HTML rows of class ``all`` by metric."""
    return {r.split("</td>")[1].removeprefix("<td>"): r for r in table.split("<tr>")[2:]
            if r.startswith("<td>all</td>")}


def test_plot_lines_differ_in_dash_and_marker_not_only_colour(atlas) -> None:
    from bokeh.models import GlyphRenderer
    from bokeh.plotting import figure

    from sandfill.policies.sim.report import report_layout

    res, met = _atlas_default(atlas, nodes=4)
    res2 = simulate(load_policy(), atlas.head(1500),
                    SimConfig(nodes=4, cpus_per_node=8, backfill="easy"))
    layout = report_layout([(res, met), (res2, summarize(res2))], title="t")
    glyphs = [r.glyph for r in layout.select({"type": GlyphRenderer})]
    lines = [g for g in glyphs if type(g).__name__ in ("Line", "Step")]
    marks = [g for g in glyphs if type(g).__name__ == "Scatter"]
    assert len(lines) == len(marks) >= 6  # CDF classes per policy, two policies per timeline
    styles = {(g.line_color, str(g.line_dash)) for g in lines}
    assert len({d for _, d in styles}) >= 3 and len({c for c, _ in styles}) >= 3
    assert len({str(g.marker) for g in marks}) >= 3
    for plot in layout.select({"type": figure}):  # within a plot: no two lines alike
        own = [r.glyph for r in plot.renderers if type(r.glyph).__name__ in ("Line", "Step")]
        assert len({g.line_color for g in own}) == len({str(g.line_dash) for g in own}) == len(own)
