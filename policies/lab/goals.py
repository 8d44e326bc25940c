"""The recommender's goals file, validated (pydantic) and checked for contradictions.

::

    short_limit: "1:00:00"      # jobs requesting up to this are "short" (default 1 h)
    holdout: 0.25               # the latest quarter of the history (by submit time) is held out
    # holdout_last: "14d"       # or: the jobs submitted in the history's last 14 days
    goals:                      # metric: {at_most: BOUND} and/or {at_least: BOUND}
      short.p95_wait: {at_most: "10:00"}    # an absolute duration (a bare number = minutes)
      long.mean_wait: {at_most: "+5%"}      # signed percent: relative to the current policy
      all.max_wait: {at_most: "+0%"}        # no worse than today
      utilization: {at_least: "-2%"}        # an absolute fraction (0.6) or signed percent
    search:                     # optional: the space searched (sweep-spec knobs), and rounds
      knobs: {tiers.short.max_walltime: {from: "30:00", to: "4:00:00", steps: 4}}
      rounds: 2

Metrics are ``<class>.<field>`` (classes ``all``, ``short``, ``long``, ``small``, ``large``,
``tier:<name>``; fields ``mean_wait``, ``median_wait``, ``p95_wait``, ``max_wait``,
``mean_bsld``, ``starved``) or ``utilization``. Goals that cannot all hold -- a lower bound
above an upper one on a metric, a class's max wait held above the whole machine's, a
utilization above 100 %, a wait below zero -- are a contradiction, found as soon as the
bounds are known (absolute ones at once, relative ones once the current policy is simulated).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Annotated, Any

from pydantic import Field, StrictFloat, StrictInt, model_validator

from sandfill import units
from sandfill.policies.document.model import Policy
from sandfill.policies.lab.run import FIELDS, Row
from sandfill.policies.lab.spec import Knob, SpecError, expand, resolve_knob
from sandfill.schema import (
    DurationSeconds,
    PositiveDuration,
    Problem,
    SchemaError,
    Strict,
    validate,
)

RELATIVE = re.compile(r"([+-]\d+(?:\.\d+)?)\s*%")
WAITS = ("mean_wait", "median_wait", "p95_wait", "max_wait")
Bound = StrictInt | StrictFloat | str


class GoalsError(SchemaError):
    kind = "goals file"


class BoundDoc(Strict):
    at_most: Bound | None = None
    at_least: Bound | None = None

    @model_validator(mode="after")
    def _one(self) -> BoundDoc:
        if self.at_most is None and self.at_least is None:
            raise ValueError("give at_most, at_least or both")
        return self


class SearchDoc(Strict):
    knobs: dict[str, Any] | None = None  # each read by spec.resolve_knob
    rounds: Annotated[StrictInt, Field(ge=1, le=6)] = 2


class GoalsDoc(Strict):
    short_limit: DurationSeconds = 3600
    holdout: Annotated[float, Field(gt=0, lt=1)] | None = None
    holdout_last: PositiveDuration | None = None
    goals: Annotated[dict[str, BoundDoc], Field(min_length=1)]
    search: SearchDoc | None = None

    @model_validator(mode="after")
    def _one_holdout(self) -> GoalsDoc:
        if self.holdout is not None and self.holdout_last is not None:
            raise ValueError("give holdout (a fraction) or holdout_last (a duration), not both")
        return self


@dataclass(frozen=True, slots=True)
class Limit:
    """One bound on one metric: absolute (``relative`` False) or a fraction of the current
    policy's figure (``+0.05`` = 5 % worse allowed)."""

    metric: str
    op: str  # "at_most" | "at_least"
    value: float
    relative: bool
    text: str

    def resolve(self, baseline: Row) -> float:
        if not self.relative:
            return self.value
        base = float(baseline.get(self.metric) or 0.0)
        return base * (1 + self.value)

    def __str__(self) -> str:
        return f"{self.metric} {self.op.replace('_', ' ')} {self.text}"


@dataclass(frozen=True, slots=True)
class Goals:
    limits: tuple[Limit, ...]
    short_limit: int
    holdout: float  # the fraction of the history's span held out ...
    holdout_last: int | None  # ... or its last this many seconds
    knobs: tuple[Knob, ...] | None
    rounds: int


def read_goals(data: Any, base: Policy, *, source: str | None = None) -> Goals:
    """The goals (bounds parsed, metric names checked against ``base``), or
    :class:`GoalsError` naming each bad entry. Contradictions are :func:`contradictions`'."""
    if not isinstance(data, Mapping):
        raise GoalsError([Problem("", "the goals file must be a mapping with goals:", data, True)], source)
    doc = validate(GoalsDoc, data, source=source, error=GoalsError)
    limits, problems = [], []
    for metric, bound in doc.goals.items():
        for op in ("at_most", "at_least"):
            value = getattr(bound, op)
            if value is None:
                continue
            try:
                limits.append(_limit(metric, op, value, base))
            except ValueError as exc:
                problems.append(Problem(f"goals.{metric}.{op}", str(exc), value, True))
    knobs = None
    if doc.search is not None and doc.search.knobs is not None:
        knobs = []
        for path, values in doc.search.knobs.items():
            try:
                knobs.append(resolve_knob(path, values, base))
            except ValueError as exc:
                problems.append(Problem(f"search.knobs.{path}", str(exc)))
    if knobs and not problems:
        try:  # every combination of the admin's own grid must be a valid policy
            expand(knobs, [1.0], base)
        except SpecError as exc:
            problems += [replace(p, path=f"search.{p.path}") for p in exc.problems]
    if problems:
        raise GoalsError(problems, source)
    return Goals(tuple(limits), doc.short_limit, 0.25 if doc.holdout is None else doc.holdout,
                 doc.holdout_last, tuple(knobs) if knobs else None,
                 doc.search.rounds if doc.search else 2)


def _limit(metric: str, op: str, value: Any, base: Policy) -> Limit:
    field = _metric_field(metric, base)
    text = str(value)
    m = RELATIVE.fullmatch(value.strip()) if isinstance(value, str) else None
    if m:
        return Limit(metric, op, float(m[1]) / 100, True, text)
    if field in WAITS:
        return Limit(metric, op, float(units.parse_duration(value)), False, units.format_duration(
            units.parse_duration(value)))
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("is neither a number nor a signed percent such as '+5%'")
    if value < 0:
        raise ValueError("cannot be negative")
    return Limit(metric, op, float(value), False, text)


def _metric_field(metric: str, base: Policy) -> str:
    if metric == "utilization":
        return metric
    cls, _, field = metric.rpartition(".")
    classes = ["all", "short", "long", "small", "large", *(f"tier:{t.name}" for t in base.tiers)]
    if cls not in classes or field not in FIELDS or field == "jobs":
        raise ValueError(f"unknown metric {metric!r}: use utilization or <class>.<field> with class "
                         f"one of {', '.join(classes)} and field one of {', '.join(FIELDS[1:])}")
    return field


def contradictions(limits: tuple[Limit, ...], baseline: Row | None = None) -> list[str]:
    """Why these bounds cannot all hold (with ``baseline``, relative bounds are resolved
    against it; without, only absolute ones -- or pairs of relative ones -- are compared)."""
    out = []
    for lim in limits:
        if lim.op == "at_most" and lim.relative and lim.value < -1:
            out.append(f"{lim} asks for a figure below zero")
        if lim.metric == "utilization" and lim.op == "at_least" and not lim.relative and lim.value > 1:
            out.append(f"{lim}: utilization cannot exceed 100 %")
    for hi in (x for x in limits if x.op == "at_most"):
        for lo in (x for x in limits if x.op == "at_least"):
            if not _comparable(hi, lo, baseline):
                continue
            same = lo.metric == hi.metric
            within = hi.metric == "all.max_wait" and lo.metric.endswith(".max_wait")
            if (same or within) and _value(lo, baseline) > _value(hi, baseline):
                why = "" if same else f" ({lo.metric.split('.')[0]} jobs are among all jobs)"
                out.append(f"{lo} contradicts {hi}{why}")
    return out


def _comparable(a: Limit, b: Limit, baseline: Row | None) -> bool:
    return baseline is not None or (a.relative == b.relative and (not a.relative or a.metric == b.metric))


def _value(lim: Limit, baseline: Row | None) -> float:
    return lim.resolve(baseline) if baseline is not None else lim.value


def slack(lim: Limit, row: Row, baseline: Row) -> float:
    """How far ``row`` is inside the bound (negative: outside), in units of the bound."""
    bound = lim.resolve(baseline)
    value = float(row.get(lim.metric) or 0.0)
    floor = 0.01 if lim.metric == "utilization" else 60.0 if lim.metric.endswith(WAITS) else 1.0
    scale = max(abs(bound), floor)
    return (bound - value) / scale if lim.op == "at_most" else (value - bound) / scale
