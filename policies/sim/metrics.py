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


@dataclass(frozen=True, slots=True)
class JobCounts:
    """Where each job of the workload went, with the reasons: the one count the CLI and the
    report both open with. ``read`` = ``skipped`` + ``rejected`` + ``simulated``."""

    policy: str
    source: str
    skipped: tuple[tuple[str, int], ...]  # by the reader: (why, how many)
    rejected: tuple[tuple[str, int], ...]  # by the policy: (why, how many)
    simulated: int
    started: int

    @property
    def n_skipped(self) -> int:
        return sum(n for _, n in self.skipped)

    @property
    def n_rejected(self) -> int:
        return sum(n for _, n in self.rejected)

    @property
    def read(self) -> int:
        return self.n_skipped + self.n_rejected + self.simulated

    def lines(self) -> list[str]:
        """The count in plain words: a headline, then one line per reason."""
        head = (f"{self.read:,} jobs in {self.source or 'the workload'}: {self.n_skipped:,} "
                f"skipped, {self.n_rejected:,} rejected by policy {self.policy}, "
                f"{self.simulated:,} simulated")
        if self.started != self.simulated:
            head += f" ({self.simulated - self.started:,} never started)"
        out = [head + "."]
        out += [f"  skipped  {n:>7,}: {why}" for why, n in self.skipped]
        out += [f"  rejected {n:>7,}: {why}" for why, n in self.rejected]
        return out


def job_counts(result: SimResult) -> JobCounts:
    """The workload's jobs counted by what became of them (see :class:`JobCounts`)."""
    from sandfill.policies.sim.prepare import rejection_reasons

    wl = result.workload
    skipped = wl.skip_reasons or ((("never ran", wl.skipped),) if wl.skipped else ())
    rejected = set(result.rejected)
    started = sum(1 for i, s in enumerate(result.start) if s >= 0 and i not in rejected)
    return JobCounts(
        policy=result.policy.name,
        source=wl.source,
        skipped=tuple(skipped),
        rejected=tuple(rejection_reasons(result).most_common()),
        simulated=result.n_jobs - len(rejected),
        started=started,
    )


SIZE_REASONS = ("ask more nodes", "ask more CPUs", "are larger than the machine")


def fit_warning(result: SimResult, counts: JobCounts, share: float = 0.1) -> str | None:
    """A warning when at least ``share`` of the jobs are too large for the policy on this
    machine, saying how to scale one to the other; None when the policy fits."""
    from sandfill.policies.sim.prepare import largest_job

    too_big = sum(n for why, n in counts.rejected if why.startswith(SIZE_REASONS))
    total = counts.n_rejected + counts.simulated
    if not total or too_big < share * total:
        return None
    cfg = result.config
    nodes, cpus = largest_job(result.policy)
    own = f"{nodes or cfg.nodes} nodes" + (f", {cpus} CPUs" if cpus else "")
    hint = f"--nodes {nodes}" if nodes else ""
    if nodes and cpus and cpus % nodes == 0:
        hint += f" --cpus-per-node {cpus // nodes}"
    fixes = [f"simulate the policy's own cluster ({hint}: the jobs that fit it)"] if hint else []
    fixes.append(f"scale the policy to the trace's own shape (tiers' max_nodes up to {cfg.nodes}"
                 f", max_cpus_per_job up to {cfg.nodes * cfg.cpus_per_node})")
    return (f"warning: policy {result.policy.name} does not fit this machine: {too_big:,} of "
            f"{total:,} jobs ({too_big / total:.0%}) are too large for it (its largest job: "
            f"{own}; the machine: {cfg.nodes:,} nodes x {cfg.cpus_per_node} CPUs). "
            + _sentence("; or ".join(fixes)))


FIELDS = ("jobs", "mean_wait", "median_wait", "p95_wait", "max_wait", "mean_bsld", "starved")
HIGHER_IS_BETTER = frozenset({"utilization"})
NEUTRAL = frozenset({"jobs"})  # a class's size is neither better nor worse


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the comparison: ``cells`` = class, metric, A, (B, change); ``verdict`` =
    "better", "worse" or "" (same, neutral, or no second policy) for B against A."""

    cells: list[str]
    verdict: str = ""


def verdict(field: str, a: float, b: float) -> str:
    """Whether ``b`` is better or worse than ``a`` for ``field`` (waits, slowdown and
    starvation: lower is better; utilization: higher; a class's job count: neither)."""
    if field in NEUTRAL or a == b:
        return ""
    return "better" if (b > a) == (field in HIGHER_IS_BETTER) else "worse"


def compared(a: Metrics, b: Metrics | None = None) -> list[Row]:
    """The comparison's rows; a class with no job on either side is left out."""
    rows: list[Row] = []
    am = {n: c for n, c in a.by_name().items() if c.jobs}
    bm = {n: c for n, c in b.by_name().items() if c.jobs} if b else {}
    for name in list(am) + [n for n in bm if n not in am]:
        ca, cb = am.get(name), bm.get(name)
        for f in FIELDS:
            va = getattr(ca, f) if ca else 0
            cells = [name, f, _fmt(f, va) if ca else "-"]
            if b is None:
                rows.append(Row(cells))
                continue
            vb = getattr(cb, f) if cb else 0
            both = ca is not None and cb is not None
            cells += [_fmt(f, vb) if cb else "-", _change(va, vb) if both else ""]
            rows.append(Row(cells, verdict(f, va, vb) if both else ""))
    cells = ["all", "utilization", percent(a.utilization)]
    if b is None:
        return [*rows, Row(cells)]
    cells += [percent(b.utilization), _change(a.utilization, b.utilization)]
    return [*rows, Row(cells, verdict("utilization", a.utilization, b.utilization))]


def comparison_rows(a: Metrics, b: Metrics | None = None) -> list[list[str]]:
    """Rows ``[class, metric, A, (B, change)]`` for a text or HTML table."""
    return [r.cells for r in compared(a, b)]


def format_table(a: Metrics, b: Metrics | None = None) -> str:
    head = ["class", "metric", a.policy]
    if b is not None:
        head += [b.policy + (" (vs)" if b.policy == a.policy else ""), "change"]
    rows = [head] + [r.cells[:-1] + [f"{r.cells[-1]} ({r.verdict})"] if r.verdict else r.cells
                     for r in compared(a, b)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


def percent(u: float) -> str:
    """A share as a percentage, with the digits a small one needs (never "0.0%" for a
    machine that did run something)."""
    if 0 < u < 0.001:
        return f"{u * 100:.2g}%"
    return f"{u:.1%}"


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
