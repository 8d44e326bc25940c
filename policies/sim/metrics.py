"""Metrics of a simulated schedule, per job class, and a side-by-side comparison.

Classes: ``all``; ``short``/``long`` by requested (granted-to-plan) time against
``short_limit``; ``small``/``large`` by CPUs against ``large_cpus``; and ``tier:<name>``.
Per class: jobs, mean/median/p95/max wait, mean bounded slowdown
(``max(1, (wait + run) / max(run, tau))``, tau = 10 s) and jobs waiting longer than
``starve_after`` (starvation). Utilization is allocated unit-seconds over capacity x span.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sandfill.policies.sim.simulator import SimResult

TAU = 10


@dataclass(frozen=True, slots=True)
class ClassStats:
    name: str
    jobs: int
    mean_wait: float
    median_wait: float
    p95_wait: float
    max_wait: float
    mean_bsld: float
    starved: int


@dataclass(frozen=True, slots=True)
class Metrics:
    policy: str
    classes: tuple[ClassStats, ...]
    utilization: float
    jobs: int
    rejected: int
    preempted: int
    held: int
    short_limit: int
    large_cpus: int
    starve_after: int

    def by_name(self) -> dict[str, ClassStats]:
        return {c.name: c for c in self.classes}


def job_arrays(result: SimResult) -> dict[str, np.ndarray]:
    """Per started job: wait, run, requested limit, CPUs, tier index (numpy arrays)."""
    start = np.asarray(result.start, dtype=np.int64)
    ok = start >= 0
    if result.rejected:
        ok[np.asarray(result.rejected)] = False
    submit = np.asarray(result.submit, dtype=np.int64)
    end = np.asarray(result.end, dtype=np.int64)
    return {
        "wait": (start - submit)[ok].astype(float),
        "run": np.maximum(end - start, 0)[ok].astype(float),
        "limit": np.asarray(result.job_limit, dtype=np.int64)[ok],
        "cpus": np.asarray(result.job_cpus, dtype=np.int64)[ok],
        "tier": np.asarray(result.job_tier, dtype=np.int64)[ok],
    }


def class_masks(
    result: SimResult, arrays: dict[str, np.ndarray], short_limit: int, large_cpus: int
) -> dict[str, np.ndarray]:
    n = len(arrays["wait"])
    masks = {
        "all": np.ones(n, dtype=bool),
        "short": arrays["limit"] <= short_limit,
        "long": arrays["limit"] > short_limit,
        "small": arrays["cpus"] <= large_cpus,
        "large": arrays["cpus"] > large_cpus,
    }
    for i, name in enumerate(result.tier_names):
        masks[f"tier:{name}"] = arrays["tier"] == i
    return masks


def summarize(
    result: SimResult,
    *,
    short_limit: int = 3600,
    large_cpus: int | None = None,
    starve_after: int = 24 * 3600,
) -> Metrics:
    cfg = result.config
    if large_cpus is None:
        large_cpus = max(cfg.cpus_per_node, cfg.nodes * cfg.cpus_per_node // 16)
    a = job_arrays(result)
    wait, run = a["wait"], a["run"]
    bsld = np.maximum(1.0, (wait + run) / np.maximum(run, TAU))
    classes = []
    for name, m in class_masks(result, a, short_limit, large_cpus).items():
        w = wait[m]
        if len(w) == 0:
            classes.append(ClassStats(name, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0))
            continue
        classes.append(
            ClassStats(
                name=name,
                jobs=int(len(w)),
                mean_wait=float(w.mean()),
                median_wait=float(np.median(w)),
                p95_wait=float(np.percentile(w, 95)),
                max_wait=float(w.max()),
                mean_bsld=float(bsld[m].mean()),
                starved=int((w > starve_after).sum()),
            )
        )
    busy = sum((s.end - s.start) * s.units for s in result.segments)
    if result.segments:
        t0 = min(result.submit)
        t1 = max(s.end for s in result.segments)
        util = busy / (result.capacity * max(1, t1 - t0))
    else:
        util = 0.0
    return Metrics(
        policy=result.policy.name,
        classes=tuple(classes),
        utilization=util,
        jobs=len(wait),
        rejected=len(result.rejected),
        preempted=sum(1 for p in result.preemptions if p),
        held=len(result.held),
        short_limit=short_limit,
        large_cpus=large_cpus,
        starve_after=starve_after,
    )


FIELDS = ("jobs", "mean_wait", "median_wait", "p95_wait", "max_wait", "mean_bsld", "starved")


def comparison_rows(a: Metrics, b: Metrics | None = None) -> list[list[str]]:
    """Rows ``[class, metric, A, (B, change)]`` for a text or HTML table."""
    rows: list[list[str]] = []
    am = a.by_name()
    bm = b.by_name() if b else {}
    names = list(am) + [n for n in bm if n not in am]
    for name in names:
        ca, cb = am.get(name), bm.get(name)
        for f in FIELDS:
            va = getattr(ca, f) if ca else 0
            row = [name, f, _fmt(f, va) if ca else "-"]
            if b is not None:
                vb = getattr(cb, f) if cb else 0
                row += [_fmt(f, vb) if cb else "-", _change(va, vb) if ca and cb else ""]
            rows.append(row)
    row = ["all", "utilization", f"{a.utilization:.1%}"]
    if b is not None:
        row += [f"{b.utilization:.1%}", _change(a.utilization, b.utilization)]
    rows.append(row)
    return rows


def format_table(a: Metrics, b: Metrics | None = None) -> str:
    head = ["class", "metric", a.policy]
    if b is not None:
        head += [b.policy + (" (vs)" if b.policy == a.policy else ""), "change"]
    rows = [head, *comparison_rows(a, b)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(field: str, v: float) -> str:
    if field in ("jobs", "starved"):
        return str(int(v))
    if field == "mean_bsld":
        return f"{v:.2f}"
    return human_seconds(v)


def _change(a: float, b: float) -> str:
    if a == b:
        return "="
    if a == 0:
        return f"+{b:g}" if b > a else f"{b - a:g}"
    return f"{(b - a) / abs(a):+.0%}"


def human_seconds(v: float) -> str:
    v = float(v)
    if v < 120:
        return f"{v:.0f}s"
    if v < 7200:
        return f"{v / 60:.1f}m"
    if v < 172800:
        return f"{v / 3600:.1f}h"
    return f"{v / 86400:.1f}d"
