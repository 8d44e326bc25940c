"""Validated documents (the policy file, the hub's site file) on pydantic 2.

:func:`validate` turns a parsed YAML mapping into a frozen model, or raises
:class:`SchemaError` listing *every* problem, each with its dotted key path, the value and
what is allowed -- and, for a misspelt key, a "did you mean". :data:`DurationSeconds` and
:data:`MemoryMiB` are the unit-bearing field types, read by :mod:`sandfill.units`.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from dataclasses import dataclass, replace
from typing import Annotated, Any, TypeVar, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError
from pydantic.fields import FieldInfo

from sandfill import units

M = TypeVar("M", bound=BaseModel)

# The one rule for every name that reaches slurm.conf, sacctmgr or an #SBATCH line
# (partition, QOS, account, tier, role and policy names; user names have their own rule,
# sandfill.slurm.states.USER_NAME): Slurm's own charset --
# ASCII letters, digits, '_', '-' and '.' -- not starting with '-' or '.' (an option, a
# hidden file), 1 to 64 characters. Always matched with ``fullmatch`` (``$`` would let a
# trailing newline through): no whitespace, '#', '=', ',', ':' or control character can
# reach a config line or split one argument into two.
SLURM_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
SLURM_NAME_RULE = "ASCII letters, digits, '_', '-' and '.', not starting with '-' or '.', at most 64"


class Strict(BaseModel):
    """Base for document models: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _duration(value: Any) -> int:
    return units.parse_duration(value)


def _positive_duration(value: Any) -> int:
    return units.parse_duration(value, positive=True)


def _memory(value: Any) -> int:
    return units.parse_memory(value)


def check_slurm_name(value: Any) -> str:
    """``value`` when it is a Slurm name (:data:`SLURM_NAME`), else ValueError naming it."""
    if not isinstance(value, str) or not SLURM_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not a Slurm name ({SLURM_NAME_RULE})")
    return value


DurationSeconds = Annotated[int, BeforeValidator(_duration)]
"""A duration in whole seconds, written as :mod:`sandfill.units` reads durations."""
PositiveDuration = Annotated[int, BeforeValidator(_positive_duration)]
"""A duration longer than zero, in whole seconds (zero is refused in sandfill.units' words)."""
MemoryMiB = Annotated[int, BeforeValidator(_memory)]
"""An amount of memory in MiB, written as :mod:`sandfill.units` reads memory."""
SlurmName = Annotated[str, BeforeValidator(check_slurm_name)]
"""A name that may reach slurm.conf, sacctmgr or ``#SBATCH`` (full match of :data:`SLURM_NAME`)."""


#: a generic resource's name as Slurm's gres.conf and ``--gres`` write it (``gpu``, ``mps``)
GRES_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
_GRES = re.compile(rf"(?P<name>{GRES_NAME.pattern}):(?P<count>[0-9]{{1,4}})")


@dataclass(frozen=True, slots=True)
class Gres:
    """A request for ``count`` units of one generic resource: ``#SBATCH --gres=<name>:<count>``."""

    name: str
    count: int

    def __str__(self) -> str:
        return f"{self.name}:{self.count}"


def parse_gres(value: Any) -> Gres:
    """``"gpu:2"`` → ``Gres("gpu", 2)``; ValueError naming the value for anything else (a
    type, ``gpu:a100:1``, is not something a user chooses here: the partition says which)."""
    match = _GRES.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{value!r} is not a GRES request such as 'gpu:1' (name:count)")
    return Gres(match["name"], int(match["count"]))


def unit_of(field: FieldInfo) -> str | None:
    """``"duration"`` or ``"memory"`` for a model field of one of the unit-bearing types
    above (how a tool shows its value in words), else None."""
    for meta in field.metadata:
        if meta in (get_args(DurationSeconds)[1], get_args(PositiveDuration)[1]):
            return "duration"
        if meta == get_args(MemoryMiB)[1]:
            return "memory"
    return None


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a document: where (dotted key path), what, and the value."""

    path: str
    message: str
    value: Any = None
    has_value: bool = False

    def __str__(self) -> str:
        where = self.path or "<top>"
        if not self.has_value:
            return f"{where}: {self.message}"
        return f"{where}: {self.message} (got {self.value!r})"


class Invalid(ValueError):
    """Raised by a model validator for cross-checks: each problem sits at a key path
    *relative to the model* (``"default_walltime"``, ``""`` for the model itself), so a
    validator can report several problems at once, each where it belongs."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems))


class SchemaError(ValueError):
    """A document is invalid; ``problems`` lists every problem found."""

    kind = "document"

    def __init__(self, problems: list[Problem], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        head = f"invalid {self.kind}{f' {source}' if source else ''}: {len(self.problems)} problem(s)"
        super().__init__("\n".join([head, *(f"  - {p}" for p in self.problems)]))


def validate(model: type[M], data: Any, *, source: str | None = None, error: type[SchemaError] = SchemaError) -> M:
    """``model.model_validate(data)``, with pydantic's errors turned into :class:`Problem`s."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(problems(model, exc), source) from None


def problems(model: type[BaseModel], exc: ValidationError) -> list[Problem]:
    out: list[Problem] = []
    for e in exc.errors(include_url=False):
        loc = tuple(e["loc"])
        path = ".".join(str(p) for p in loc)
        kind = e["type"]
        if kind == "extra_forbidden":
            msg = "unknown key"
            known = _fields_at(model, loc[:-1])
            close = difflib.get_close_matches(str(loc[-1]), known, n=1) if known else []
            if close:
                msg += f"; did you mean {close[0]!r}?"
            elif known:
                msg += f"; expected one of {', '.join(sorted(known))}"
            out.append(Problem(path, msg))
            continue
        if kind == "missing":
            out.append(Problem(path, "is required"))
            continue
        error = (e.get("ctx") or {}).get("error")
        if isinstance(error, Invalid):
            out += [replace(p, path=".".join(x for x in (path, p.path) if x)) for p in error.problems]
            continue
        msg = str(e["msg"])
        for prefix in ("Value error, ", "Assertion failed, "):
            if msg.startswith(prefix):
                msg = msg[len(prefix) :]
        ctx_value = e.get("input")
        out.append(Problem(path, msg, ctx_value, has_value=kind not in {"value_error"}))
    return out


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names of the model found by walking ``loc`` from ``model``."""
    t: Any = model
    for part in loc:
        t = _unwrap(t)
        if isinstance(t, type) and issubclass(t, BaseModel):
            field = t.model_fields.get(str(part))
            if field is None:
                field = next((f for f in t.model_fields.values() if f.alias == part), None)
            if field is None:
                return []
            t = field.annotation
        elif get_origin(t) in (dict, typing.Mapping) and get_args(t):
            t = get_args(t)[-1]
        elif get_origin(t) in (list, tuple) and get_args(t):
            t = get_args(t)[0]
        else:
            return []
    t = _unwrap(t)
    if isinstance(t, type) and issubclass(t, BaseModel):
        return [f.alias or name for name, f in t.model_fields.items()]
    return []


def _unwrap(t: Any) -> Any:
    """``X | None`` → ``X``; ``Annotated[X, …]`` → ``X``."""
    while True:
        origin = get_origin(t)
        if origin is Annotated:
            t = get_args(t)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in get_args(t) if a is not type(None)]
            if len(args) != 1:
                return t
            t = args[0]
        else:
            return t
