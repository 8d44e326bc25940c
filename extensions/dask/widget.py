"""The notebook view of a backfill cluster: every worker job, with Scale and Adapt.

It reads the same model as the lab panel (``BackfillSLURMCluster.model()``), either from a
cluster object in this process or, for a cluster the lab extension manages, from its
scheduler over the Dask comm (``sandfill.dask.connect``)."""

from __future__ import annotations

import html
import threading
import time
from typing import Any, Protocol

from sandfill.dask.config import max_workers
from sandfill.dask.model import summary
from sandfill.units import format_duration


class Source(Protocol):
    def model(self) -> dict[str, Any]: ...
    def scale(self, n: int) -> None: ...
    def adapt(self, minimum: int, maximum: int) -> None: ...


class _Cluster(Protocol):
    def model(self) -> dict[str, Any]: ...
    def scale(self, n: int) -> Any: ...
    def adapt(self, minimum: int, maximum: int) -> Any: ...


class LocalSource:
    """The widget's view of a cluster object in this process."""

    def __init__(self, cluster: _Cluster) -> None:
        self.cluster = cluster

    def model(self) -> dict[str, Any]:
        return self.cluster.model()

    def scale(self, n: int) -> None:
        self.cluster.scale(n)

    def adapt(self, minimum: int, maximum: int) -> None:
        self.cluster.adapt(minimum=minimum, maximum=maximum)


STATE_COLOURS = {
    "pending": "#b26b00",
    "running": "#1a7f37",
    "retiring": "#6f42c1",
    "ended": "#57606a",
    "unknown": "#cf222e",
}


def _rel(t: float | None, now: float) -> str:
    if t is None:
        return ""
    d = t - now
    if d <= 0:
        return "now"
    return f"in {format_duration(d)}"


def jobs_table_html(model: dict[str, Any]) -> str:
    """The job table as HTML (also used by tests)."""
    now = model.get("now") or time.time()
    rows = []
    for j in model.get("jobs", []):
        st = j["state"]
        detail = ""
        if st == "pending":
            detail = " · ".join(x for x in (j.get("reason_text") or j.get("reason") or "", _rel(j.get("estimated_start"), now)) if x)
        elif st in {"running", "retiring"} and j.get("time_left") is not None:
            detail = f"{format_duration(j['time_left'])} left"
        elif st == "ended":
            detail = j.get("ended_why") or ""
        rows.append(
            "<tr class='sandfill-job' data-state='{st}'><td>{jid}</td>"
            "<td><span style='color:{c};font-weight:600'>{st}</span></td><td>{detail}</td>"
            "<td>{node}</td><td>{wall}</td><td>{workers}</td></tr>".format(
                st=html.escape(st),
                jid=html.escape(j.get("job_id") or "—"),
                c=STATE_COLOURS.get(st, "#000"),
                detail=html.escape(detail),
                node=html.escape(j.get("node") or ""),
                wall=html.escape(j.get("walltime") or ""),
                workers=html.escape(", ".join(j.get("workers") or [])),
            )
        )
    counts = {k: v for k, v in summary(j["state"] for j in model.get("jobs", [])).items() if v}
    line = f"{model.get('workers', 0)} workers · " + " · ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    t = model.get("target") or {}
    target = f"scale {t.get('n')}" if t.get("mode") == "scale" else f"adapt {t.get('minimum')}–{t.get('maximum') or '∞'}"
    extra = ""
    if model.get("waiting_reason"):
        extra += f"<div>{html.escape(model['waiting_reason'])}</div>"
    if model.get("last_error"):
        extra += f"<div style='color:#cf222e'>{html.escape(model['last_error'])}</div>"
    for owed in model.get("cancels_owed") or []:
        extra += (f"<div style='color:#cf222e'>job {html.escape(str(owed.get('job_id')))}: scancel "
                  f"failed ({html.escape(str(owed.get('error')))}); trying again</div>")
    return (
        f"<div class='sandfill-cluster-view'><b>{html.escape(str(model.get('name', '')))}</b> — {html.escape(line)} "
        f"(target: {html.escape(target)}) <a href='{html.escape(model.get('dashboard_link') or '')}' target='_blank'>dashboard</a>{extra}"
        "<table><thead><tr><th>job</th><th>state</th><th>why / when</th><th>node</th><th>walltime</th><th>workers</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


class ClusterWidget:
    """An ipywidgets box: the job table, refreshed every ``interval`` s, and Scale/Adapt."""

    def __init__(self, source: Source, interval: float = 2.0) -> None:
        import ipywidgets as w

        self.source = source
        self.interval = interval
        self.table = w.HTML(jobs_table_html(source.model()))
        cap = max_workers()  # the same cap as the lab's REST API and the scheduler's handlers
        self.n = w.BoundedIntText(value=0, min=0, max=cap, description="Workers", layout=w.Layout(width="170px"))
        self.lo = w.BoundedIntText(value=0, min=0, max=cap, description="Min", layout=w.Layout(width="150px"))
        self.hi = w.BoundedIntText(value=4, min=0, max=cap, description="Max", layout=w.Layout(width="150px"))
        self.scale_button = scale = w.Button(description="Scale")
        self.adapt_button = adapt = w.Button(description="Adapt")
        self.error = w.HTML("")
        for part, name in ((self.n, "n"), (self.lo, "min"), (self.hi, "max"), (scale, "scale"), (adapt, "adapt"), (self.error, "error")):
            part.add_class(f"sandfill-widget-{name}")  # stable hooks for the browser tests
        scale.on_click(lambda _: self._act(lambda: self.source.scale(self.n.value)))
        adapt.on_click(lambda _: self._act(lambda: self.source.adapt(self.lo.value, self.hi.value)))
        self.box = w.VBox([self.table, w.HBox([self.n, scale]), w.HBox([self.lo, self.hi, adapt]), self.error])
        self._stop = threading.Event()
        threading.Thread(target=self._refresh_loop, daemon=True).start()

    def _act(self, fn: Any) -> None:
        try:
            fn()
            self.error.value = ""
        except Exception as exc:  # shown to the user, not swallowed
            self.error.value = f"<span style='color:#cf222e'>{html.escape(str(exc))}</span>"
        self.refresh()

    def refresh(self) -> None:
        try:
            self.table.value = jobs_table_html(self.source.model())
        except Exception as exc:
            self.error.value = f"<span style='color:#cf222e'>cannot read the cluster: {html.escape(str(exc))}</span>"

    def _refresh_loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.refresh()

    def close(self) -> None:
        self._stop.set()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.box._repr_mimebundle_(**kwargs)
