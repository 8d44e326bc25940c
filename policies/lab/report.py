"""The sweep's bokeh report (self-contained HTML, INLINE resources).

One plot per load: short-job p95 wait (x) against long-job mean wait (y), coloured by
utilization; the Pareto front's points are large and outlined, the others small. Hovering
a point shows its knob settings and figures; tapping it opens its policy file. Below, the
front's variants as a table of links to their policy files.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence

from bokeh.embed import file_html
from bokeh.layouts import column
from bokeh.models import (
    ColorBar,
    ColumnDataSource,
    Div,
    HoverTool,
    LinearColorMapper,
    OpenURL,
    TapTool,
)
from bokeh.palettes import Viridis256
from bokeh.plotting import figure
from bokeh.resources import INLINE

from sandfill.policies.lab.run import Row

HOUR = 3600.0


def write_report(path: str | os.PathLike[str], rows: Sequence[Row], knobs: Sequence[str], *,
                 table_dir: str | os.PathLike[str] = ".", title: str = "sandfill policy sweep",
                 note: str = "") -> str:
    """Write the report to ``path`` and return the path. The rows' ``policy_file`` are
    relative to ``table_dir``; the report links to them relative to itself."""
    path = os.fspath(path)
    here = os.path.dirname(os.path.abspath(path))
    rows = [dict(r, policy_file=os.path.relpath(os.path.join(os.path.abspath(table_dir), r["policy_file"]),
                                                here)) for r in rows]
    parts = [Div(text=f"<h1>{html.escape(title)}</h1><p>{len(rows)} variants; knobs: "
                      f"{html.escape(', '.join(knobs))}. {html.escape(note)}</p>", width=1000)]
    bad = [r for r in rows if r.get("error")]
    rows = [r for r in rows if not r.get("error")]
    if bad:
        parts.append(Div(text="<p><b>Failed variants</b> (not plotted): " + "; ".join(
            html.escape(f"{r['variant']}: {r['error']}") for r in bad) + "</p>", width=1000))
    for load in sorted({r["load"] for r in rows}):
        parts.append(_plot([r for r in rows if r["load"] == load], knobs, load))
    parts.append(Div(text=_front_table(rows, knobs), width=1000))
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(file_html(column(*parts), INLINE, title))
    return path


def _plot(rows: Sequence[Row], knobs: Sequence[str], load: float) -> figure:
    data = {
        "x": [r["short.p95_wait"] / HOUR for r in rows],
        "y": [r["long.mean_wait"] / HOUR for r in rows],
        "util": [r["utilization"] for r in rows],
        "name": [r["policy"] for r in rows],
        "url": [r["policy_file"] for r in rows],
        "size": [14 if r["pareto"] else 7 for r in rows],
        "line": ["black" if r["pareto"] else None for r in rows],
        "settings": [", ".join(f"{k}={r.get(k)}" for k in knobs) for r in rows],
        "front": ["yes" if r["pareto"] else "no" for r in rows],
    }
    src = ColumnDataSource(data)
    lo, hi = min(data["util"], default=0), max(data["util"], default=1)
    cmap = LinearColorMapper(palette=Viridis256, low=lo, high=hi if hi > lo else lo + 1e-6)
    p = figure(width=900, height=500, tools="pan,wheel_zoom,box_zoom,reset,tap",
               title=f"load {load:g}: short-job p95 wait vs long-job mean wait (colour: utilization)",
               x_axis_label="short jobs: p95 wait (h)", y_axis_label="long jobs: mean wait (h)")
    p.scatter("x", "y", source=src, size="size", line_color="line", line_width=2,
              fill_color={"field": "util", "transform": cmap}, fill_alpha=0.9)
    p.add_layout(ColorBar(color_mapper=cmap, title="utilization"), "right")
    p.add_tools(HoverTool(tooltips=[("variant", "@name"), ("knobs", "@settings"),
                                    ("short p95 wait", "@x{0.00} h"),
                                    ("long mean wait", "@y{0.00} h"),
                                    ("utilization", "@util{0.0%}"), ("Pareto front", "@front"),
                                    ("policy file", "@url")]))
    p.select_one(TapTool).callback = OpenURL(url="@url")
    return p


def _front_table(rows: Sequence[Row], knobs: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in
                   ["load", "variant", *knobs, "short p95 wait (h)", "long mean wait (h)", "utilization"])
    body = []
    for r in sorted((r for r in rows if r["pareto"]), key=lambda r: (r["load"], r["short.p95_wait"])):
        cells = [f"{r['load']:g}", f"<a href=\"{html.escape(r['policy_file'])}\">{html.escape(r['policy'])}</a>",
                 *(html.escape(str(r.get(k))) for k in knobs),
                 f"{r['short.p95_wait'] / HOUR:.2f}", f"{r['long.mean_wait'] / HOUR:.2f}",
                 f"{r['utilization']:.1%}"]
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return (f"<h2>Pareto front</h2><table class=\"front\" border=\"1\" cellpadding=\"3\"><tr>{head}</tr>"
            + "".join(body) + "</table>")
