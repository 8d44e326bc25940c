"""Live health: ``sandfill policy health`` reads the cluster's accounting (``sacct``) for the
last day and week (or any ``--days``) and sets beside it what the simulator predicts for the
live policy on the same jobs.

Per window (:func:`window_health`):

* **waits by tier** (median, p95, max of start - submit, every job that started), the tier
  found from the job's partition; next to the simulator's waits for the live policy on the
  same jobs (:func:`sandfill.policies.gate.simulate_history`);
* **backfill share of starts**: sacct 22.05 has no "backfilled" column, but slurmctld
  records in the job's ``Flags`` which scheduler started it (``SchedBackfill``,
  ``SchedMain``, ``SchedSubmit``); the share is SchedBackfill over the starts with any of
  the three;
* **notebook time-to-start**: queue wait of the jobs named ``jupyterhub-*`` or in the
  policy's ``notebooks`` tier (the time until the server answers is not in accounting);
* **Dask workers**: jobs named ``sandfill-worker*`` or in the ``dask-workers`` tier; their
  core-hours (CPUs x elapsed) and the share of them started by backfill (in gaps). The delay
  they caused to reserved jobs is NOT in accounting (sacct keeps no reservations or planned
  starts): it is given as the simulator's estimate, the other jobs' mean and max wait with
  the workers minus without them, and labelled so.

Accounting that cannot be read (slurmdbd down, accounting off) is :class:`HealthUnavailable`:
no figure is made from an empty answer. A window where no job started has no wait figures
(``None``), never zeros. The same figures are a bokeh report (:func:`render_health`) and
Prometheus text exposition (:func:`prometheus_text`).
"""

from __future__ import annotations

import dataclasses
import html
import json
from dataclasses import dataclass

import numpy as np

from sandfill.policies.document.model import ClusterShape, Policy
from sandfill.policies.gate import simulate_history, window
from sandfill.policies.sim.metrics import human_seconds, summarize
from sandfill.policies.sim.sacct import workload_from_sacct_text
from sandfill.policies.sim.simulator import SimResult
from sandfill.policies.sim.workload import Workload
from sandfill.slurm.commands import Runner, SlurmCommandError
from sandfill.slurm.sacct import AccountedJob, accounting_argv, parse_accounting

NOTEBOOK_PREFIX = "jupyterhub-"
WORKER_PREFIX = "sandfill-worker"


class HealthUnavailable(RuntimeError):
    """The accounting cannot be read: the message says why (no figures are made)."""


@dataclass(frozen=True)
class Waits:
    jobs: int
    median: float
    p95: float
    max: float

    @staticmethod
    def of(values: list[float] | np.ndarray) -> Waits | None:
        a = np.asarray(values, dtype=float)
        if not len(a):
            return None
        return Waits(len(a), float(np.median(a)), float(np.percentile(a, 95)), float(a.max()))


@dataclass(frozen=True)
class Workers:
    jobs: int
    core_hours: float
    backfill_core_hours: float  # of those, in jobs the backfill scheduler started (gaps)
    sim_delay_mean: float | None  # simulated: other jobs' mean wait with minus without (s)
    sim_delay_max: float | None  # the same for the max wait
    measured_delay: str = ("not measurable from accounting: sacct records no reservations "
                           "or planned starts")


@dataclass(frozen=True)
class WindowHealth:
    days: int
    jobs: int  # allocations sacct returned
    started: int
    tiers: dict[str, Waits]  # real, per tier
    predicted: dict[str, Waits]  # the simulator's, live policy, same jobs
    backfill_starts: int
    flagged_starts: int  # starts with a SchedBackfill/SchedMain/SchedSubmit flag
    notebooks: Waits | None
    workers: Workers
    # partitions of started jobs the live policy has no tier for (the simulator puts their
    # jobs in the tier their request maps to, so they appear under another name there)
    other_partitions: tuple[str, ...] = ()

    @property
    def backfill_share(self) -> float | None:
        return self.backfill_starts / self.flagged_starts if self.flagged_starts else None


@dataclass(frozen=True)
class Health:
    policy: str
    windows: list[WindowHealth]

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self) | {"backfill_share": {
            str(w.days): w.backfill_share for w in self.windows}}, indent=1)


def read_accounting(runner: Runner, days: int) -> str:
    """``sacct`` text for the last ``days`` days; :class:`HealthUnavailable` when it fails."""
    argv = accounting_argv(window(days))
    try:
        return runner(argv).checked().stdout
    except SlurmCommandError as exc:
        raise HealthUnavailable(f"cannot read the accounting (`{' '.join(argv)}`): {exc}") from None


def tier_names(policy: Policy | None) -> dict[str, str]:
    """Partition → tier name (the partition itself when no tier of the policy has it)."""
    return {t.partition: t.name for t in policy.tiers} if policy else {}


def _role_tier(policy: Policy | None, role: str) -> str | None:
    return dict(policy.roles).get(role) if policy else None


def is_notebook(j: AccountedJob, tier: str, policy: Policy | None) -> bool:
    return j.name.startswith(NOTEBOOK_PREFIX) or tier == _role_tier(policy, "notebooks")


def is_worker(j: AccountedJob, tier: str, policy: Policy | None) -> bool:
    return j.name.startswith(WORKER_PREFIX) or tier == _role_tier(policy, "dask-workers")


def _sim_waits(result: SimResult) -> dict[str, Waits]:
    out = {}
    for c in summarize(result).classes:
        if c.name.startswith("tier:") and c.jobs:
            out[c.name[5:]] = Waits(c.jobs, c.median_wait, c.p95_wait, c.max_wait)
    return out


def _others_waits(result: SimResult, skip: set[int]) -> np.ndarray:
    """Simulated waits of the started jobs whose workload id is not in ``skip``."""
    ids = [j.id for j in result.workload.jobs]
    return np.asarray([s - sub for i, (s, sub) in enumerate(zip(result.start, result.submit,
                                                                 strict=True))
                       if s >= 0 and ids[i] not in skip], dtype=float)


def _worker_delay(policy: Policy, wl: Workload, shape: ClusterShape, with_workers: SimResult,
                  worker_ids: set[int]) -> tuple[float | None, float | None]:
    """The simulator's delay of the other jobs caused by the workers (mean, max; seconds)."""
    if not worker_ids or not policy:
        return None, None
    rest = dataclasses.replace(wl, jobs=tuple(j for j in wl.jobs if j.id not in worker_ids))
    if not rest.jobs:
        return None, None
    a = _others_waits(with_workers, worker_ids)
    b = _others_waits(simulate_history(policy, rest, shape), set())
    if not len(a) or not len(b):
        return None, None
    return float(a.mean() - b.mean()), float(a.max() - b.max())


def window_health(text: str, days: int, policy: Policy | None, shape: ClusterShape) -> WindowHealth:
    """The figures of one window from its ``sacct`` text (see the module)."""
    jobs = parse_accounting(text)
    names = tier_names(policy)
    started = [j for j in jobs if j.start is not None]
    by_tier: dict[str, list[float]] = {}
    nb: list[float] = []
    workers = [j for j in started if is_worker(j, names.get(j.row.partition or "", ""), policy)]
    for j in started:
        tier = names.get(j.row.partition or "", j.row.partition or "?")
        wait = max(0, j.start - j.row.submit)  # type: ignore[operator]
        by_tier.setdefault(tier, []).append(wait)
        if is_notebook(j, tier, policy):
            nb.append(wait)
    wl = workload_from_sacct_text(text, f"sacct, last {days} day(s)")
    predicted: dict[str, Waits] = {}
    delay: tuple[float | None, float | None] = (None, None)
    if policy is not None and wl.jobs:
        sim = simulate_history(policy, wl, shape)
        predicted = _sim_waits(sim)
        delay = _worker_delay(policy, wl, shape, sim, {j.row.job_id for j in workers})
    core_h = [j.row.cpus * j.row.run / 3600 for j in workers]
    bf_h = sum(h for h, j in zip(core_h, workers, strict=True) if j.how == "backfill")
    return WindowHealth(
        days, len(jobs), len(started),
        {t: w for t, v in by_tier.items() if (w := Waits.of(v)) is not None}, predicted,
        sum(1 for j in started if j.how == "backfill"), sum(1 for j in started if j.how),
        Waits.of(nb), Workers(len(workers), sum(core_h), bf_h, *delay),
        tuple(sorted(set(by_tier) - set(names.values()))) if policy is not None else ())


def read_windows(runner: Runner, days: list[int]) -> list[tuple[int, str]]:
    """``(days, sacct text)`` per window; :class:`HealthUnavailable` at the first failure."""
    return [(d, read_accounting(runner, d)) for d in days]


def health(texts: list[tuple[int, str]], policy: Policy | None, shape: ClusterShape) -> Health:
    """Every window's figures from :func:`read_windows`' texts."""
    return Health(policy.name if policy else "(live settings: not a valid policy)",
                  [window_health(t, d, policy, shape) for d, t in texts])


# ---- text ----------------------------------------------------------------------------------


def _w(w: Waits | None) -> str:
    if w is None:
        return "no job started"
    return (f"{w.jobs} job(s): median {human_seconds(w.median)}, p95 {human_seconds(w.p95)}, "
            f"max {human_seconds(w.max)}")


def _delay(v: float | None) -> str:
    return "-" if v is None else ("+" if v >= 0 else "-") + human_seconds(abs(v))


def window_lines(w: WindowHealth) -> list[str]:
    out = [f"last {w.days} day(s): {w.jobs} allocation(s) in accounting, {w.started} started"]
    if not w.started:
        return out + ["  no job started in this window: no wait figures"]
    out.append("  waits by tier (sacct | simulator, live policy, same jobs):")
    for tier in sorted(set(w.tiers) | set(w.predicted)):
        out.append(f"    {tier:<14} {_w(w.tiers.get(tier))}  |  {_w(w.predicted.get(tier))}")
    if w.other_partitions:
        out.append(f"    (no tier of the live policy for partition(s) {', '.join(w.other_partitions)}"
                   ": the simulator puts those jobs in the tier their request maps to)")
    share = w.backfill_share
    out.append("  backfill share of starts: " + (
        "no start flags recorded" if share is None else
        f"{share:.0%} ({w.backfill_starts} of {w.flagged_starts}; sacct Flags SchedBackfill)"))
    out.append(f"  notebook time-to-start (queue wait): {_w(w.notebooks)}")
    k = w.workers
    out.append(f"  Dask workers: {k.jobs} job(s), {k.core_hours:.3g} core-hours, "
               f"{k.backfill_core_hours:.3g} of them started by backfill (in gaps)")
    out.append(f"  delay they caused to reserved jobs: {k.measured_delay}; simulated: other "
               f"jobs' mean wait {_delay(k.sim_delay_mean)}, max {_delay(k.sim_delay_max)}")
    return out


def health_text(h: Health) -> str:
    lines = [f"policy health of the live policy {h.policy!r}"]
    for w in h.windows:
        lines += window_lines(w)
    return "\n".join(lines)


# ---- Prometheus ----------------------------------------------------------------------------


def prometheus_text(h: Health) -> str:
    """The figures as Prometheus text exposition (a private registry; nothing is served)."""
    from prometheus_client import CollectorRegistry, Gauge, generate_latest

    reg = CollectorRegistry()
    wait = Gauge("sandfill_job_wait_seconds", "Queue wait by tier: start - submit",
                 ["window_days", "tier", "stat", "source"], registry=reg)
    share = Gauge("sandfill_backfill_start_share", "Share of starts by the backfill "
                  "scheduler (sacct Flags)", ["window_days"], registry=reg)
    nb = Gauge("sandfill_notebook_start_seconds", "Notebook jobs' queue wait",
               ["window_days", "stat"], registry=reg)
    core = Gauge("sandfill_dask_worker_core_hours", "Core-hours of Dask worker jobs",
                 ["window_days", "started_by"], registry=reg)
    delay = Gauge("sandfill_dask_worker_delay_seconds", "Simulated change of the other jobs' "
                  "wait caused by the workers", ["window_days", "stat"], registry=reg)
    for w in h.windows:
        d = str(w.days)
        for source, tiers in (("accounting", w.tiers), ("simulated", w.predicted)):
            for tier, ws in tiers.items():
                for stat in ("median", "p95", "max"):
                    wait.labels(d, tier, stat, source).set(getattr(ws, stat))
        if w.backfill_share is not None:
            share.labels(d).set(w.backfill_share)
        if w.notebooks is not None:
            for stat in ("median", "p95", "max"):
                nb.labels(d, stat).set(getattr(w.notebooks, stat))
        core.labels(d, "any").set(w.workers.core_hours)
        core.labels(d, "backfill").set(w.workers.backfill_core_hours)
        for stat, v in (("mean", w.workers.sim_delay_mean), ("max", w.workers.sim_delay_max)):
            if v is not None:
                delay.labels(d, stat).set(v)
    return generate_latest(reg).decode()


# ---- bokeh ---------------------------------------------------------------------------------


def _wait_figure(w: WindowHealth):  # noqa: ANN202 - a bokeh figure
    from bokeh.models import ColumnDataSource, FactorRange
    from bokeh.plotting import figure

    tiers = sorted(set(w.tiers) | set(w.predicted))
    kinds = [("accounting", "median"), ("accounting", "p95"), ("simulated", "median"), ("simulated", "p95")]
    x = [(t, f"{src} {stat}") for t in tiers for src, stat in kinds]
    top = [getattr((w.tiers if src == "accounting" else w.predicted).get(t), stat, float("nan"))
           for t in tiers for src, stat in kinds]
    color = ["#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78"] * len(tiers)
    src = ColumnDataSource({"x": x, "top": top, "color": color})
    fig = figure(x_range=FactorRange(*x), height=320, width=max(420, 110 * len(tiers) + 120),
                 title=f"waits by tier, last {w.days} day(s): sacct against the simulator",
                 y_axis_label="wait (s)", tools="hover,save", tooltips=[("", "@x"), ("wait s", "@top{0}")])
    fig.vbar(x="x", top="top", width=0.85, color="color", source=src)
    fig.xaxis.major_label_orientation = 1.0
    return fig


def _summary_figure(h: Health):  # noqa: ANN202
    from bokeh.plotting import figure

    ws = [w for w in h.windows if w.started]
    names = [f"{w.days}d" for w in ws]
    fig = figure(x_range=names, height=260, width=420, tools="save",
                 title="backfill share of starts, and Dask worker core-hours in gaps")
    fig.vbar(x=names, top=[w.backfill_share or 0.0 for w in ws], width=0.5, color="#2ca02c",
             legend_label="backfill share of starts")
    fig.scatter(x=names, y=[w.workers.backfill_core_hours / w.workers.core_hours
                            if w.workers.core_hours else float("nan") for w in ws],
                size=12, marker="diamond", color="#9467bd",
                legend_label="workers' core-hours share in gaps")
    fig.y_range.start, fig.y_range.end = 0, 1
    return fig


def render_health(h: Health) -> str:
    """A self-contained HTML page (bokeh, INLINE resources) of :class:`Health`; a window where
    nothing started shows its sentence, not a plot of zeros."""
    from bokeh.embed import file_html
    from bokeh.layouts import column
    from bokeh.models import Div
    from bokeh.resources import INLINE

    parts: list = [Div(text=f"<h2>sandfill policy health: {html.escape(h.policy)}</h2>")]
    for w in h.windows:
        parts.append(Div(text="<pre>" + html.escape("\n".join(window_lines(w))) + "</pre>",
                         width=900))
        if w.started:
            parts.append(_wait_figure(w))
    if any(w.started for w in h.windows):
        parts.append(_summary_figure(h))
    return file_html(column(*parts), INLINE, "sandfill policy health")
