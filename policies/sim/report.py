"""Self-contained HTML report of one or two simulated policies (bokeh, INLINE resources).

Contents: the metrics table (side by side with the change when comparing), wait-time
distributions (empirical CDF on a log axis) per job class for each policy, queue length and
utilization over time, and the Parallel Workloads Archive citation when the workload came
from it.
"""

from __future__ import annotations

import html
import os

import numpy as np
from bokeh.embed import file_html
from bokeh.layouts import column, row
from bokeh.models import Div
from bokeh.palettes import Category10
from bokeh.plotting import figure
from bokeh.resources import INLINE

from sandfill.policies.sim.metrics import Metrics, class_masks, comparison_rows, job_arrays
from sandfill.policies.sim.simulator import SimResult
from sandfill.policies.sim.trace import PWA_CITATION

MAX_POINTS = 2000


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
    if not results or len(results) > 2:
        raise ValueError("a report shows one or two policies")
    first = results[0][0]
    wl = first.workload
    cfg = first.config
    intro = (
        f"<h1>{html.escape(title)}</h1><p>Workload <b>{html.escape(wl.source or 'jobs')}</b>: "
        f"{first.n_jobs} jobs ({wl.skipped} skipped: never ran); machine {cfg.nodes} nodes x "
        f"{cfg.cpus_per_node} CPUs, allocation by {cfg.alloc}; backfill "
        f"<b>{cfg.backfill}</b>. Policies: "
        + ", ".join(f"<b>{html.escape(r.policy.name)}</b>" for r, _ in results)
        + ".</p>"
    )
    parts = [Div(text=intro, width=1000), Div(text=_table_html(results), width=1000)]
    parts.append(row(*[_wait_cdf(r, m) for r, m in results]))
    parts.append(_timeline(results, "queue", "pending jobs"))
    parts.append(_timeline(results, "busy", "utilization"))
    parts.append(Div(text=_citation(first), width=1000))
    return file_html(column(*parts), INLINE, title)


def _table_html(results: list[tuple[SimResult, Metrics]]) -> str:
    a = results[0][1]
    b = results[1][1] if len(results) > 1 else None
    head = ["class", "metric", a.policy] + ([b.policy, "change"] if b else [])
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
        for r in comparison_rows(a, b)
    )
    note = (
        f"<p>short = requested time &le; {a.short_limit}s; large = more than {a.large_cpus} "
        f"CPUs; starved = waited more than {a.starve_after}s; bounded slowdown with "
        "&tau; = 10 s.</p>"
    )
    return (
        "<h2>Metrics</h2><table border='1' cellpadding='3' style='border-collapse:collapse'>"
        f"<thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>{note}"
    )


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
    colors = Category10[10]
    for i, (name, m) in enumerate(masks.items()):
        w = np.sort(a["wait"][m]) + 1.0
        if len(w) == 0:
            continue
        y = np.arange(1, len(w) + 1) / len(w)
        idx = _downsample_idx(len(w))
        p.line(w[idx], y[idx], legend_label=name, color=colors[i % 10], line_width=2)
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
    colors = Category10[10]
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
        p.step(x, y, legend_label=r.policy.name, color=colors[i % 10], mode="after")
    return p


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
