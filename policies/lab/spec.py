"""The sweep spec: which policy knobs take which values, at which loads.

A spec is YAML, validated by pydantic (:class:`SpecDoc`) and then against the base policy::

    knobs:                                   # dotted key paths of the policy file
      tiers.burst.max_walltime: ["30:00", "1:00:00", "2:00:00"]   # a list of values
      priority.weights.age: {from: 0, to: 4000, steps: 5}        # or a range (inclusive)
      scheduler.backfill.interval: {from: 30, to: 120, step: 30}
    loads: [1.0, 1.5]                        # arrival-rate factors (default [1.0])

The variants are the grid: every combination of the knobs' values, at every load. A knob
that is not one of :data:`TIER_KNOBS`, :data:`QOS_KNOBS`, :data:`GLOBAL_KNOBS` (or names a
tier the base policy lacks), a bad range, a value of the wrong kind, or a combination the
policy file refuses is a :class:`SpecError` naming the knob and the value -- raised by
:func:`expand`, before any simulation starts.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, StrictFloat, StrictInt, ValidationError

from sandfill import units
from sandfill.policies.document.errors import PolicyError
from sandfill.policies.document.load import policy_from_mapping, policy_to_mapping
from sandfill.policies.document.model import Policy
from sandfill.schema import Problem, SchemaError, Strict, validate
from sandfill.schema import problems as pydantic_problems
from sandfill.units import Duration

Kind = Literal["duration", "int", "bool"]
TIER_KNOBS: dict[str, Kind] = {
    "max_walltime": "duration", "default_walltime": "duration", "max_nodes": "int",
    "max_cpus_per_job": "int", "priority_tier": "int", "priority_job_factor": "int",
}
QOS_KNOBS: dict[str, Kind] = {"priority": "int", "max_jobs_per_user": "int", "max_cpus_per_user": "int"}
GLOBAL_KNOBS: dict[str, Kind] = {
    **{f"priority.weights.{w}": "int" for w in ("age", "job_size", "partition", "qos", "fairshare")},
    "priority.max_age": "duration", "priority.favor_small": "bool",
    **{f"scheduler.backfill.{k}": "int" for k in (
        "interval", "resolution", "max_job_test", "max_job_user", "max_job_start")},
    "scheduler.backfill.window": "duration", "scheduler.backfill.continue": "bool",
}
MAX_VARIANTS = 5000


class SpecError(SchemaError):
    """A sweep spec (or a recommender's search space) is invalid; nothing has run."""

    kind = "sweep spec"


class RangeDoc(Strict):
    """``{from, to, steps}`` (evenly spaced, both ends included) or ``{from, to, step}``."""

    start: StrictInt | StrictFloat | str = Field(alias="from")
    to: StrictInt | StrictFloat | str
    steps: Annotated[StrictInt, Field(ge=2, le=1000)] | None = None
    step: StrictInt | StrictFloat | str | None = None


class SpecDoc(Strict):
    knobs: Annotated[dict[str, Any], Field(min_length=1)]  # each read by resolve_knob
    loads: Annotated[list[Annotated[float, Field(gt=0, le=100)]], Field(min_length=1)] = [1.0]


@dataclass(frozen=True, slots=True)
class Knob:
    path: str  # as written in the spec
    keys: tuple[str, ...]  # the key path in the policy mapping
    kind: Kind
    values: tuple[Any, ...]  # seconds for durations


@dataclass(frozen=True, slots=True)
class Variant:
    """One point of the grid: its name, knob settings (as written), load and policy."""

    name: str
    settings: tuple[tuple[str, Any], ...]
    load: float
    policy: Policy


def read_spec(data: Any, base: Policy, *, source: str | None = None) -> tuple[list[Knob], list[float]]:
    """The spec's knobs (resolved against ``base``) and loads, or :class:`SpecError`."""
    if not isinstance(data, Mapping):
        raise SpecError([Problem("", "the spec must be a mapping with knobs: and loads:", data, True)], source)
    doc = validate(SpecDoc, data, source=source, error=SpecError)
    knobs, problems = [], []
    for path, values in doc.knobs.items():
        try:
            knobs.append(resolve_knob(path, values, base))
        except ValueError as exc:
            problems.append(Problem(f"knobs.{path}", str(exc)))
    if problems:
        raise SpecError(problems, source)
    return knobs, list(doc.loads)


def resolve_knob(path: str, values: Any, base: Policy) -> Knob:
    """One knob of a spec: its key path in ``base`` and its values (a list, or a range)."""
    keys, kind = knob_keys(path, base)
    if isinstance(values, Mapping):
        try:
            values = RangeDoc.model_validate(values)
        except ValidationError as exc:
            raise ValueError("bad range: " + "; ".join(str(p) for p in pydantic_problems(RangeDoc, exc))) from None
    elif not isinstance(values, list | RangeDoc) or not values:
        raise ValueError(f"takes a list of values or a range {{from, to, steps}} or {{from, to, step}} "
                         f"(got {values!r})")
    if isinstance(values, RangeDoc):
        got = _range(values, kind)
    else:
        got = tuple(_value(v, kind) for v in values)
    if len(set(got)) != len(got):
        raise ValueError(f"lists a value twice: {list(values)!r}")
    return Knob(path, keys, kind, got)


def knob_keys(path: str, base: Policy) -> tuple[tuple[str, ...], Kind]:
    """The key path of ``path`` in the policy mapping and the kind of its values."""
    if path in GLOBAL_KNOBS:
        return tuple(path.split(".")), GLOBAL_KNOBS[path]
    if path.startswith("tiers."):
        for tier in base.tiers:
            head = f"tiers.{tier.name}."
            if not path.startswith(head):
                continue
            rest = path[len(head):]
            if rest in TIER_KNOBS:
                return ("tiers", tier.name, rest), TIER_KNOBS[rest]
            if rest.startswith("qos.") and rest[4:] in QOS_KNOBS:
                return ("tiers", tier.name, "qos", rest[4:]), QOS_KNOBS[rest[4:]]
            raise ValueError(f"unknown knob {path!r}: a tier's knobs are {', '.join(TIER_KNOBS)}"
                             f", qos.{', qos.'.join(QOS_KNOBS)}")
        names = ", ".join(t.name for t in base.tiers)
        raise ValueError(f"unknown knob {path!r}: the base policy's tiers are {names}")
    raise ValueError(f"unknown knob {path!r}: knobs are tiers.<tier>.<{'|'.join(TIER_KNOBS)}>, "
                     f"tiers.<tier>.qos.<{'|'.join(QOS_KNOBS)}>, {', '.join(GLOBAL_KNOBS)}")


def _value(v: Any, kind: Kind) -> Any:
    if kind == "duration":
        return units.parse_duration(v, positive=True)
    if kind == "bool":
        if not isinstance(v, bool):
            raise ValueError(f"{v!r} is not true or false")
        return v
    if v is None:
        return None  # no cap (the optional QOS and tier caps)
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"{v!r} is not a whole number")
    return v


def _range(r: RangeDoc, kind: Kind) -> tuple[Any, ...]:
    if kind == "bool":
        raise ValueError("true/false knobs take a list, not a range")
    lo, hi = (_number(x, kind) for x in (r.start, r.to))
    if hi < lo:
        raise ValueError(f"range runs backwards: from {r.start!r} to {r.to!r}")
    if (r.steps is None) == (r.step is None):
        raise ValueError("a range gives exactly one of steps (how many values) or step (their spacing)")
    if r.steps is not None:
        got = [lo + (hi - lo) * i / (r.steps - 1) for i in range(r.steps)]
    else:
        step = _number(r.step, kind)
        if step <= 0:
            raise ValueError(f"step must be positive (got {r.step!r})")
        got = [lo + step * i for i in range(int((hi - lo) // step) + 1)]
    values = tuple(dict.fromkeys(round(x) for x in got))
    if len(values) > MAX_VARIANTS:
        raise ValueError(f"range gives {len(values)} values (at most {MAX_VARIANTS})")
    return values


def _number(v: Any, kind: Kind) -> float:
    if kind == "duration":
        return units.parse_duration(v)
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"{v!r} is not a number")
    return v


def expand(knobs: list[Knob], loads: list[float], base: Policy, *, source: str | None = None) -> list[Variant]:
    """Every combination of the knobs' values at every load, each policy validated; a
    combination the policy file refuses is a :class:`SpecError` naming its settings."""
    twice = sorted({f"{x:g}" for x in loads if loads.count(x) > 1})
    if twice:
        raise SpecError([Problem("loads", f"lists {', '.join(twice)} more than once", loads, True)], source)
    combos = list(itertools.product(*(k.values for k in knobs)))
    total = len(combos) * len(loads)
    if total > MAX_VARIANTS:
        raise SpecError([Problem("knobs", f"the grid has {total} variants (at most {MAX_VARIANTS})")], source)
    out: list[Variant] = []
    problems: list[Problem] = []
    for i, combo in enumerate(combos):
        name = f"{base.name}-v{i + 1:04d}"
        try:
            policy = variant_policy(base, knobs, combo, name)
        except PolicyError as exc:
            where = ", ".join(f"{k.path}={show(k, v)}" for k, v in zip(knobs, combo, strict=True))
            problems += [Problem(f"knobs ({where})", str(p)) for p in exc.problems]
            continue
        settings = tuple((k.path, show(k, v)) for k, v in zip(knobs, combo, strict=True))
        out += [Variant(name if len(loads) == 1 else f"{name}-load{load:g}", settings, load, policy)
                for load in loads]
    if problems:
        raise SpecError(problems[:20], source)
    return out


def variant_policy(base: Policy, knobs: list[Knob], combo: tuple[Any, ...], name: str) -> Policy:
    """``base`` with each knob set to its value in ``combo`` (validated as a policy file)."""
    m = policy_to_mapping(base)
    for knob, value in zip(knobs, combo, strict=True):
        node = m
        for key in knob.keys[:-1]:
            node = node.setdefault(key, {})
        node[knob.keys[-1]] = Duration(value).slurm() if knob.kind == "duration" else value
    m["name"] = name
    return policy_from_mapping(m, default_name=name)


def show(knob: Knob, value: Any) -> Any:
    """A knob's value as a person writes it (durations in Slurm's form)."""
    return Duration(value).slurm() if knob.kind == "duration" and value is not None else value
