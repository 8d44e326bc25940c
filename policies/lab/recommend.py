"""``sandfill policy recommend``: search for a policy that meets the admin's goals.

The search is **grid refinement**, starting from the current policy: round 1 simulates the
grid of the search knobs (the goals file's ``search.knobs``, else :func:`default_knobs`:
the shortest tier's ``max_walltime`` from half to twice today's, and the age and partition
priority weights from 0 to twice today's, three values each) plus the current policy
itself; each later round narrows every numeric knob to the neighbours of the best value so
far (same number of points), the other knobs fixed at their best. Candidates are ranked by
how far they miss the goals (the sum of each goal's shortfall, in units of its bound), then
by their worst margin (the larger the safer). An implicit goal: no more jobs rejected than
under the current policy (a limit that turns jobs away would "shorten" waits).

Against overfitting the history is split by submit time: the search sees only the earlier
part (``1 - holdout``); the three best candidates are then simulated on the held-out later
part (starting from an empty machine, as the earlier part does), relative goals measured
against the current policy on that same part. The recommendation is the best-ranked
candidate that meets every goal on both parts; if none does, the one that misses least on
the held-out part, and the report says so. Contradictory goals are reported before any
search (absolute bounds) or right after the current policy is simulated (relative ones).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sandfill import units
from sandfill.policies.document.errors import PolicyError
from sandfill.policies.document.model import Policy
from sandfill.policies.lab.goals import Goals, Limit, contradictions, slack
from sandfill.policies.lab.run import Row, SimSettings, dask_client, run_variants
from sandfill.policies.lab.spec import Knob, RangeDoc, Variant, resolve_knob, show, variant_policy
from sandfill.policies.sim.workload import Workload

TOP = 3
NO_MORE_REJECTED = Limit("rejected", "at_most", 0.0, True, "+0% (implicit: reject no job the current policy runs)")


@dataclass(frozen=True, slots=True)
class Candidate:
    policy: Policy
    settings: tuple[tuple[str, Any], ...]  # () for the current policy
    train: Row
    hold: Row | None = None


@dataclass(slots=True)
class Recommendation:
    base: Policy
    goals: Goals
    contradiction: list[str] = field(default_factory=list)
    best: Candidate | None = None
    current: Candidate | None = None
    met: bool = False
    tried: int = 0
    split: str = ""

    def summary(self) -> str:
        if self.contradiction:
            return "the goals contradict each other:\n" + "\n".join(f"  - {c}" for c in self.contradiction)
        assert self.best is not None and self.current is not None
        lines = [f"search: grid refinement from {self.base.name}, {self.goals.rounds} round(s), "
                 f"{self.tried} variant(s) simulated on the earlier part; {self.split}"]
        lines.append("goals met on both parts: yes" if self.met else
                     "nothing tried meets every goal on the held-out part: printing the closest policy")
        same = ("none changed (the current policy already does best)" if self.met else
                "none changed (nothing tried came closer to the goals than the current policy)")
        lines.append("settings: " + (", ".join(f"{k}={v}" for k, v in self.best.settings) or same))
        lines += _figures_table(self)
        return "\n".join(lines)

    def policy_file(self) -> str:
        from sandfill.policies.lab.results import policy_yaml

        assert self.best is not None
        head = ["recommended by `sandfill policy recommend` (check with `sandfill policy check`)",
                *self.summary().splitlines()]
        return policy_yaml(self.best.policy, head)


def _figures_table(r: Recommendation) -> list[str]:
    assert r.best is not None and r.current is not None and r.best.hold and r.current.hold
    head = ("goal", "earlier: current", "recommended", "held-out: current", "recommended",
            "held-out bound", "met")
    rows = [head]
    for lim in (*r.goals.limits, NO_MORE_REJECTED):
        b_tr, b_ho = r.current.train, r.current.hold
        ok = slack(lim, r.best.hold, b_ho) >= 0 and slack(lim, r.best.train, b_tr) >= 0
        rows.append((str(lim), _fmt(lim, b_tr), _fmt(lim, r.best.train), _fmt(lim, b_ho),
                     _fmt(lim, r.best.hold), _fmt(lim, {lim.metric: lim.resolve(b_ho)}),
                     "yes" if ok else "NO"))
    widths = [max(len(x[i]) for x in rows) for i in range(len(head))]
    return ["  ".join(c.ljust(w) for c, w in zip(x, widths, strict=True)).rstrip() for x in rows]


def _fmt(lim: Limit, row: Row) -> str:
    v = float(row.get(lim.metric) or 0.0)
    if lim.metric == "utilization":
        return f"{v:.1%}"
    if lim.metric.endswith("_wait"):
        return units.format_duration(round(v))
    return f"{v:g}"


def split(workload: Workload, holdout: float, last: int | None = None) -> tuple[Workload, Workload, str]:
    """The earlier and the later (held-out) part of ``workload``, by submit time: the last
    ``holdout`` of its span, or its last ``last`` seconds when given."""
    jobs = workload.jobs
    if len(jobs) < 20:
        raise ValueError(f"the history has {len(jobs)} jobs: too few to hold part of it out (20 at least)")
    t0, t1 = jobs[0].submit, jobs[-1].submit
    cut = t1 - last if last is not None else t0 + (t1 - t0) * (1 - holdout)
    k = next((i for i, j in enumerate(jobs) if j.submit > cut), len(jobs))
    if min(k, len(jobs) - k) < 10:
        what = f"holdout_last {units.format_duration(last)}" if last is not None else f"holdout {holdout:g}"
        raise ValueError(f"{what} leaves {k} and {len(jobs) - k} jobs: each part needs 10")
    part = lambda js, what: Workload(js, workload.nodes, workload.cpus_per_node,  # noqa: E731
                                     f"{workload.source} ({what})", workload.acknowledge)
    when = units.describe_duration(max(0, cut - t0))
    return (part(jobs[:k], "earlier part"), part(jobs[k:], "held-out later part"),
            f"held out: the jobs submitted after {when} into the history ({len(jobs) - k} of {len(jobs)})")


def default_knobs(base: Policy) -> tuple[Knob, ...]:
    """Three knobs of three values each, around the current policy."""
    short = min((t for t in base.tiers if t.name != dict(base.roles).get("notebooks")),
                key=lambda t: t.max_walltime)
    mw = short.max_walltime.seconds
    w = base.priority.weights
    spaces: dict[str, dict[str, Any]] = {
        f"tiers.{short.name}.max_walltime": {"from": f"{max(60, mw // 2)}s", "to": f"{2 * mw}s"},
        "priority.weights.age": {"from": 0, "to": 2 * max(w.age, 1000)},
        "priority.weights.partition": {"from": 0, "to": 2 * max(w.partition, 1000)},
    }
    return tuple(resolve_knob(path, RangeDoc.model_validate({**r, "steps": 3}), base)
                 for path, r in spaces.items())


def refine(knob: Knob, best: Any) -> Knob:
    """The knob narrowed to the neighbours of ``best`` (same number of points), or fixed
    at ``best`` when its values are not numbers."""
    values = sorted(v for v in knob.values if isinstance(v, int) and not isinstance(v, bool))
    numeric = isinstance(best, int) and not isinstance(best, bool)
    if len(values) != len(knob.values) or len(values) < 2 or not numeric:
        return replace(knob, values=(best,))
    n = len(values)
    values = sorted({*values, best})
    i = values.index(best)
    lo, hi = values[max(0, i - 1)], values[min(len(values) - 1, i + 1)]
    grain = 60 if knob.kind == "duration" else 1
    pts = [round((lo + (hi - lo) * j / (n - 1)) / grain) * grain for j in range(n)]
    return replace(knob, values=tuple(dict.fromkeys(pts)))


Evaluate = Callable[[Sequence[Variant], Workload], dict[str, Row]]


def recommend(base: Policy, goals: Goals, workload: Workload, settings: SimSettings, *,
              scheduler: str | None = None, workers: int = 2) -> Recommendation:
    """Search (see the module docstring); the variants run as :func:`run_variants` runs them."""
    out = Recommendation(base, goals)
    out.contradiction = contradictions(goals.limits)
    if out.contradiction:
        return out
    train, hold, out.split = split(workload, goals.holdout, goals.holdout_last)
    settings = replace(settings, short_limit=goals.short_limit)
    with dask_client(scheduler, workers) as client:
        def evaluate(vs: Sequence[Variant], wl: Workload) -> dict[str, Row]:
            return run_variants(vs, wl, settings, workers=workers, client=client)

        current = Variant("current", (), 1.0, base)
        b_train = _ok(evaluate([current], train)["current"])
        out.contradiction = contradictions(goals.limits, b_train)
        if out.contradiction:
            return out
        ranked = _search(base, goals, evaluate, train, b_train, out)
        b_hold = _ok(evaluate([current], hold)["current"])
        out.current = Candidate(base, (), b_train, b_hold)
        top = ranked[:TOP]
        held = evaluate([Variant(f"top{i}", c.settings, 1.0, c.policy) for i, c in enumerate(top)], hold)
        top = [replace(c, hold=held[f"top{i}"]) for i, c in enumerate(top)]
    limits = (*goals.limits, NO_MORE_REJECTED)
    meets = [c for c in top if _miss(limits, c.train, b_train) == 0 and _miss(limits, c.hold, b_hold) == 0]
    best = meets[0] if meets else min(top, key=lambda c: _miss(limits, c.hold, b_hold))
    out.met = bool(meets)
    name = f"{base.name[:52]}-recommended"
    out.best = replace(best, policy=replace(best.policy, name=name))
    return out


def _search(base: Policy, goals: Goals, evaluate: Evaluate, train: Workload, b_train: Row,
            out: Recommendation) -> list[Candidate]:
    """Every candidate tried on the earlier part, best first."""
    limits = (*goals.limits, NO_MORE_REJECTED)
    knobs = list(goals.knobs or default_knobs(base))
    tried: dict[tuple, Candidate] = {(): Candidate(base, (), b_train)}
    for rnd in range(goals.rounds):
        fresh = []
        for combo in itertools.product(*(k.values for k in knobs)):
            settings = tuple((k.path, show(k, v)) for k, v in zip(knobs, combo, strict=True))
            if settings in tried or any(s[0] == settings for s in fresh):
                continue
            try:
                policy = variant_policy(base, knobs, combo, f"{base.name[:40]}-r{rnd}-{len(fresh)}")
            except PolicyError:
                continue  # a combination the policy file refuses is not a candidate
            fresh.append((settings, Variant(f"r{rnd}-{len(fresh)}", settings, 1.0, policy)))
        rows = evaluate([v for _, v in fresh], train) if fresh else {}
        out.tried += len(fresh)
        for settings, v in fresh:
            if not rows[v.name].get("error"):  # a variant whose simulation failed is no candidate
                tried[settings] = Candidate(v.policy, settings, rows[v.name])
        ranked = sorted(tried.values(), key=lambda c: _rank(limits, c.train, b_train))
        best = dict(ranked[0].settings) if ranked[0].settings else None
        knobs = [refine(k, _raw(k, best[k.path]) if best else _current(k, base)) for k in knobs]
    return sorted(tried.values(), key=lambda c: _rank(limits, c.train, b_train))


def _ok(row: Row) -> Row:
    if row.get("error"):
        raise ValueError(f"simulating the current policy failed: {row['error']}")
    return row


def _rank(limits: Sequence[Limit], row: Row, baseline: Row) -> tuple[float, float]:
    slacks = [slack(lim, row, baseline) for lim in limits]
    return sum(max(0.0, -s) for s in slacks), -min(slacks)


def _miss(limits: Sequence[Limit], row: Row, baseline: Row) -> float:
    if row.get("error"):
        return float("inf")
    return sum(max(0.0, -slack(lim, row, baseline)) for lim in limits)


def _raw(knob: Knob, shown: Any) -> Any:
    return units.parse_duration(shown) if knob.kind == "duration" and shown is not None else shown


def _current(knob: Knob, base: Policy) -> Any:
    """The base policy's value of ``knob`` (refinement centres there when nothing beat it)."""
    from sandfill.policies.document.load import policy_to_mapping

    node: Any = policy_to_mapping(base)
    for key in knob.keys:
        node = node.get(key) if isinstance(node, dict) else None
    return _raw(knob, node) if node is not None else None
