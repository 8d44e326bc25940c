"""Self-contained HTML report of one or two simulated policies (bokeh, INLINE resources).

Contents: where every job went (skipped, rejected with the reasons, simulated: the CLI's
count) and a warning when the policy does not fit the machine; when comparing, the policy
diff first; the metrics table (side by side with the change, green when better and red when worse;
classes with no job left out), wait-time distributions (empirical CDF on a log axis) per job class for each policy, queue length and
utilization over time, and the Parallel Workloads Archive citation when the workload came
from it.
"""

from __future__ import annotations

import html
import os

import numpy as np
from bokeh.embed import file_html
from bokeh.layouts import column, row
from bokeh.models import Column, Div
from bokeh.palettes import Category10
from bokeh.plotting import figure
from bokeh.resources import INLINE

from sandfill.policies.document.compare import diff_policies
from sandfill.policies.document.model import Policy
from sandfill.policies.sim.metrics import (
    Metrics,
    Row,
    class_masks,
    compared,
    fit_warning,
    job_arrays,
    job_counts,
)
from sandfill.policies.sim.simulator import SimResult
from sandfill.policies.sim.trace import PWA_CITATION

MAX_POINTS = 2000
BETTER = "#1a7f37"  # green
WORSE = "#cf222e"  # red
DASHES: tuple[str | tuple[int, ...], ...] = (
    "solid", "dashed", "dotted", "dotdash", "dashdot", (10, 3), (2, 6), (10, 3, 2, 3, 2, 3))
MARKERS = ("circle", "square", "triangle", "diamond", "inverted_triangle", "x", "plus", "star")


def write_report(
    path: str | os.PathLike[str],
    results: list[tuple[SimResult, Metrics]],
    *,
    title: str = "sandfill policy simulation",
) -> str:
    """Write the report to ``path`` and return the path."""
    text = render_report(results, title=title)
    path = os.fspath(path)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path


def render_report(results: list[tuple[SimResult, Metrics]], *, title: str) -> str:
    return file_html(report_layout(results, title=title), INLINE, title)


def report_layout(results: list[tuple[SimResult, Metrics]], *, title: str) -> Column:
    """The report's bokeh layout, top to bottom: the workload and machine, the policy diff
    when comparing, the jobs' count (and the misfit warning), the metrics, the plots, the
    data's citation."""
    if not results or len(results) > 2:
        raise ValueError("a report shows one or two policies")
    first = results[0][0]
    wl = first.workload
    cfg = first.config
    intro = (
        f"<h1>{html.escape(title)}</h1><p>Workload <b>{html.escape(wl.source or 'jobs')}</b>; "
        f"machine {cfg.nodes} nodes x {cfg.cpus_per_node} CPUs, allocation by {cfg.alloc}; "
        f"backfill <b>{cfg.backfill}</b>. Policies: "
        + ", ".join(f"<b>{html.escape(r.policy.name)}</b>" for r, _ in results)
        + ".</p>"
    )
    parts = [Div(text=intro, width=1000)]
    if len(results) == 2:
        parts.append(Div(text=_diff_html(results[0][0].policy, results[1][0].policy), width=1000))
    parts.append(Div(text=_counts_html(results), width=1000))
    parts.append(Div(text=_table_html(results), width=1000))
    parts.append(row(*[_wait_cdf(r, m) for r, m in results]))
    parts.append(_timeline(results, "queue", "pending jobs"))
    parts.append(_timeline(results, "busy", "utilization"))
    parts.append(Div(text=_citation(first), width=1000))
    return column(*parts)


def _counts_html(results: list[tuple[SimResult, Metrics]]) -> str:
    """Each policy's count of the jobs (skipped, rejected, simulated) with the reasons, and
    the warning when the policy does not fit the machine: the same words as the CLI's."""
    out = []
    for res, _ in results:
        counts = job_counts(res)
        head, *reasons = counts.lines()
        items = "".join(f"<li>{html.escape(r.strip())}</li>" for r in reasons)
        out.append(f"<p class='counts'>{html.escape(head)}</p>" + (f"<ul>{items}</ul>" if items else ""))
        warning = fit_warning(res, counts)
        if warning:
            out.append(f"<p class='warning' style='color:{WORSE};font-weight:bold'>"
                       f"{html.escape(warning)}</p>")
    return "<h2>Jobs</h2>" + "".join(out)


def _diff_html(a: Policy, b: Policy) -> str:
    """What differs between the two policies (as ``policy diff`` shows it)."""
    changes = diff_policies(a, b)
    if not changes:
        return f"<h2>Policy diff</h2><p>{html.escape(b.name)} takes the same effect as " \
               f"{html.escape(a.name)}.</p>"
    lines = "\n".join(html.escape(str(c)) for c in changes)
    return (f"<h2>Policy diff: {html.escape(a.name)} &rarr; {html.escape(b.name)}</h2>"
            f"<pre class='diff'>{lines}</pre>")


def _table_html(results: list[tuple[SimResult, Metrics]]) -> str:
    a = results[0][1]
    b = results[1][1] if len(results) > 1 else None
    head = ["class", "metric", a.policy] + ([b.policy, "change"] if b else [])
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join(_row_html(r) for r in compared(a, b))
    note = (
        f"<p>short = requested time &le; {a.short_limit}s; large = more than {a.large_cpus} "
        f"CPUs; starved = waited more than {a.starve_after}s; bounded slowdown with "
        "&tau; = 10 s. Classes with no job are left out."
        + (f" Change: <span style='color:{BETTER}'>better</span> / "
           f"<span style='color:{WORSE}'>worse</span> for {html.escape(b.policy)} (lower waits,"
           " slowdown and starvation, higher utilization)." if b else "")
        + "</p>"
    )
    return (
        "<h2>Metrics</h2><table border='1' cellpadding='3' style='border-collapse:collapse'>"
        f"<thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>{note}"
    )


def _row_html(r: Row) -> str:
    tds = [f"<td>{html.escape(c)}</td>" for c in r.cells]
    if r.verdict:
        color = BETTER if r.verdict == "better" else WORSE
        tds[-1] = (f"<td class='{r.verdict}' style='color:{color};font-weight:bold' "
                   f"title='{r.verdict}'>{html.escape(r.cells[-1])}</td>")
    return "<tr>" + "".join(tds) + "</tr>"


def _wait_cdf(result: SimResult, metrics: Metrics):
    a = job_arrays(result)
    masks = class_masks(result, a, metrics.short_limit, metrics.large_cpus)
    p = figure(
        title=f"Wait time CDF per class: {result.policy.name}",
        x_axis_type="log",
        width=500,
        height=350,
        x_axis_label="wait (s, +1)",
        y_axis_label="fraction of jobs",
    )
    for i, (name, m) in enumerate(masks.items()):  # i: a class looks the same in each plot
        if not m.any():
            continue  # empty classes are left out
        w = np.sort(a["wait"][m]) + 1.0
        y = np.arange(1, len(w) + 1) / len(w)
        idx = _downsample_idx(len(w))
        _line(p, i, name, w[idx], y[idx])
    p.legend.location = "bottom_right"
    p.legend.click_policy = "hide"
    return p


def _timeline(results: list[tuple[SimResult, Metrics]], what: str, label: str):
    p = figure(
        title=f"{label.capitalize()} over time",
        width=1000,
        height=280,
        x_axis_label="days since first submit",
        y_axis_label=label,
    )
    for i, (r, _m) in enumerate(results):
        t = np.frombuffer(r.timeline_t, dtype=np.int64) if len(r.timeline_t) else np.zeros(0)
        if not len(t):
            continue
        t0 = min(r.submit) if r.submit else 0
        if what == "queue":
            y = np.frombuffer(r.timeline_queue, dtype=np.int64).astype(float)
        else:
            y = np.frombuffer(r.timeline_busy, dtype=np.int64) / r.capacity
        x, y = _bucket((t - t0) / 86400.0, y)
        _line(p, i, r.policy.name, x, y, step=True)
    return p


def _line(p, i: int, label: str, x: np.ndarray, y: np.ndarray, *, step: bool = False) -> None:
    """Line ``i`` of a plot: its own colour, dash pattern and marker (a dozen markers along
    it), so lines stay apart in grey print and for colour-blind readers."""
    style = {"legend_label": label, "color": Category10[10][i % 10],
             "line_dash": list(d) if isinstance(d := DASHES[i % len(DASHES)], tuple) else d, "line_width": 2}
    if step:
        p.step(x, y, mode="after", **style)
    else:
        p.line(x, y, **style)
    at = np.unique(np.linspace(0, len(x) - 1, min(len(x), 12)).astype(int))
    p.scatter(x[at], y[at], marker=MARKERS[i % len(MARKERS)], size=8, legend_label=label,
              color=style["color"], fill_alpha=0.6)


def _bucket(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """At most MAX_POINTS points: the mean of y over equal spans of x."""
    if len(x) <= MAX_POINTS:
        return x, y
    edges = np.linspace(x[0], x[-1], MAX_POINTS + 1)
    which = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, MAX_POINTS - 1)
    sums = np.bincount(which, weights=y, minlength=MAX_POINTS)
    counts = np.bincount(which, minlength=MAX_POINTS)
    keep = counts > 0
    return edges[:-1][keep], sums[keep] / counts[keep]


def _downsample_idx(n: int) -> np.ndarray:
    if n <= MAX_POINTS:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, MAX_POINTS).astype(int))


def _citation(result: SimResult) -> str:
    wl = result.workload
    text = (
        "<h2>Data</h2><p>Workload traces from the Parallel Workloads Archive: "
        f"{html.escape(PWA_CITATION)}.</p>"
    )
    if wl.acknowledge:
        text += f"<p>Trace {html.escape(wl.source)} courtesy of {html.escape(wl.acknowledge)}.</p>"
    return text
