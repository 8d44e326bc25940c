"""One vocabulary for time and memory, the way Slurm writes them.

Every place that reads a duration or an amount of memory from a person -- the spawn form,
the hub's site file, the policy file, the Dask settings (``jobqueue.sandfill.*``), the lab
REST API and the CLIs -- reads it here, so ``"2:00"`` means the same everywhere.

Durations (:func:`parse_duration`) follow ``sbatch --time``:

* ``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH``, ``D-HH:MM``, ``D-HH:MM:SS`` -- so ``"2:00"`` is
  **two minutes**, as in Slurm;
* a bare whole number means minutes, as in Slurm (``30`` is half an hour);
* friendly forms: a number and a unit, ``45s``, ``90m``, ``90min``, ``1.5h``, ``2 hours``,
  ``1d``.

Memory (:func:`parse_memory`) follows ``sbatch --mem``: ``K``/``M``/``G``/``T`` are KiB, MiB,
GiB and TiB (``4G``, ``4GB`` and ``4GiB`` are all 4096 MiB), and a bare number means MiB.

A value that is not one of these raises :class:`UnitError`, whose text has one wording
wherever it appears: ``"<key>: '<value>' is not a duration (use …)"``.

Slurm's *output* is read by :func:`parse_slurm_time` (``UNLIMITED`` and ``N/A`` become None)
and :func:`parse_timestamp`; :func:`format_duration` writes ``[D-]HH:MM:SS``.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from typing import Any

DURATION_FORMS = "MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS, or 90m, 2h, 1d; a bare number is minutes"
MEMORY_FORMS = "512M, 4G or 1T; a bare number is MiB"

MAX_SECONDS = 366 * 86400  # anything longer is a typo
MAX_MIB = 1024**3  # 1 EiB

_CLOCK = re.compile(r"(?:(?P<d>[0-9]{1,3})-)?(?P<a>[0-9]{1,6})(?::(?P<b>[0-9]{1,2}))?(?::(?P<c>[0-9]{1,2}))?")
_FRIENDLY = re.compile(
    r"(?P<n>[0-9]{1,7}(?:\.[0-9]{1,6})?)\s*"
    r"(?P<u>s|sec|secs|seconds?|m|min|mins|minutes?|h|hr|hrs|hours?|d|days?)",
    re.IGNORECASE,
)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_MEMORY = re.compile(r"(?P<n>[0-9]{1,10}(?:\.[0-9]{1,6})?)\s*(?P<u>[kmgt]?)(?:i?b)?", re.IGNORECASE)
_MIB_PER = {"k": 1 / 1024, "": 1, "m": 1, "g": 1024, "t": 1024**2}
_NOT_SET = {"", "UNLIMITED", "INFINITE", "NOT_SET", "N/A", "NONE", "INVALID", "PARTITION_LIMIT"}


class UnitError(ValueError):
    """A value that is not a duration or an amount of memory (or is out of range).

    ``str()`` is ``"<key>: <problem>"`` when a key is known, else just the problem, so that
    schema validators (which add the key path themselves) give the same wording."""

    def __init__(self, problem: str, key: str | None = None) -> None:
        self.problem = problem
        self.key = key
        super().__init__(f"{key}: {problem}" if key else problem)


def _err(value: Any, what: str, forms: str, key: str | None) -> UnitError:
    return UnitError(f"{value!r} is not {what} (use {forms})", key)


# ---- durations ------------------------------------------------------------------------------


def parse_duration(value: Any, *, key: str | None = None, positive: bool = False) -> int:
    """A duration a person wrote (see the module docstring) → whole seconds.

    ``positive`` refuses zero. Raises :class:`UnitError` naming ``key`` and the value."""
    if isinstance(value, Duration):
        seconds = value.seconds
    elif isinstance(value, bool) or not isinstance(value, int | str):
        raise _err(value, "a duration", DURATION_FORMS, key)
    elif isinstance(value, int):
        seconds = value * 60
    else:
        seconds = _parse_duration_text(value, key)
    if seconds < 0:
        raise UnitError(f"{value!r} cannot be negative", key)
    if positive and seconds == 0:
        raise UnitError(f"{value!r} must be longer than zero", key)
    if seconds > MAX_SECONDS:
        raise UnitError(f"{value!r} is longer than a year", key)
    return seconds


def _parse_duration_text(value: str, key: str | None) -> int:
    text = value.strip(" \t")  # a newline or other control character is refused
    m = _FRIENDLY.fullmatch(text)
    if m:
        unit = m["u"][0].lower()
        return round(float(m["n"]) * _UNIT_SECONDS[unit])
    m = _CLOCK.fullmatch(text)
    if not m:
        raise _err(value, "a duration", DURATION_FORMS, key)
    d, a, b, c = m["d"], int(m["a"]), m["b"], m["c"]
    rest = [int(x) for x in (b, c) if x is not None]
    if d is not None:  # D-HH, D-HH:MM, D-HH:MM:SS
        hh, mm, ss = ([a, *rest] + [0, 0])[:3]
        if hh > 23 or mm > 59 or ss > 59:
            raise UnitError(f"{value!r} is not a duration (hours go up to 23, minutes and seconds to 59)", key)
        return ((int(d) * 24 + hh) * 60 + mm) * 60 + ss
    if not rest:  # MM
        return a * 60
    if any(x > 59 for x in rest):
        raise UnitError(f"{value!r} is not a duration (minutes and seconds go up to 59)", key)
    if len(rest) == 1:  # MM:SS
        return a * 60 + rest[0]
    return (a * 60 + rest[0]) * 60 + rest[1]  # HH:MM:SS


def parse_slurm_time(text: str) -> int | None:
    """A time limit as Slurm prints it (``[D-]HH:MM:SS``, ``MM:SS``, ``MM``) → seconds;
    None for ``UNLIMITED``, ``N/A``, ``NOT_SET`` and other non-values."""
    text = text.strip()
    if text.upper() in _NOT_SET:
        return None
    try:
        return _parse_duration_text(text, None)
    except UnitError:
        return None


def format_duration(seconds: float) -> str:
    """Seconds → Slurm's ``[D-]HH:MM:SS`` (whole seconds, rounded down)."""
    seconds = max(0, int(seconds))
    d, rem = divmod(seconds, 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    return f"{d}-{h:02d}:{m:02d}:{s:02d}" if d else f"{h:02d}:{m:02d}:{s:02d}"


def slurm_minutes(seconds: float) -> int:
    """Seconds → whole minutes, rounded up (Slurm's resolution for time limits)."""
    return max(0, math.ceil(seconds / 60))


def describe_duration(seconds: float) -> str:
    """Seconds → words for people: ``"2 minutes"``, ``"1 hour 30 minutes"``, ``"2 days"``."""
    seconds = max(0, int(seconds))
    parts = []
    for name, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        n, seconds = divmod(seconds, size)
        if n:
            parts.append(f"{n} {name}{'' if n == 1 else 's'}")
    return " ".join(parts[:2]) if parts else "0 seconds"


@dataclass(frozen=True, order=True, slots=True)
class Duration:
    """A non-negative duration in whole seconds (a typed value for models)."""

    seconds: int

    def __post_init__(self) -> None:
        if not isinstance(self.seconds, int) or isinstance(self.seconds, bool):
            raise TypeError("Duration.seconds must be an int")
        if self.seconds < 0:
            raise ValueError("a duration cannot be negative")

    @classmethod
    def parse(cls, value: Any, *, key: str | None = None) -> Duration:
        return value if isinstance(value, Duration) else cls(parse_duration(value, key=key))

    @classmethod
    def minutes(cls, n: float) -> Duration:
        return cls(round(n * 60))

    @classmethod
    def hours(cls, n: float) -> Duration:
        return cls(round(n * 3600))

    def slurm(self) -> str:
        """Slurm's ``[D-]HH:MM:SS`` form (MaxTime, MaxWall, ``sbatch --time``)."""
        return format_duration(self.seconds)

    def whole_minutes(self) -> int:
        return slurm_minutes(self.seconds)

    def __str__(self) -> str:
        return self.slurm()


# ---- memory ---------------------------------------------------------------------------------


def parse_memory(value: Any, *, key: str | None = None, positive: bool = True) -> int:
    """An amount of memory a person wrote → whole MiB (rounded up). Raises
    :class:`UnitError` naming ``key`` and the value."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _err(value, "an amount of memory", MEMORY_FORMS, key)
    if isinstance(value, int):
        mib = value
    else:
        m = _MEMORY.fullmatch(value.strip(" \t"))
        if not m:
            raise _err(value, "an amount of memory", MEMORY_FORMS, key)
        mib = math.ceil(float(m["n"]) * _MIB_PER[m["u"].lower()])
    if mib < 0 or (positive and mib == 0):
        raise UnitError(f"{value!r} must be more than zero", key)
    if mib > MAX_MIB:
        raise UnitError(f"{value!r} is too large", key)
    return mib


def format_memory(mib: int) -> str:
    """MiB → Slurm's ``--mem`` form: ``4G`` when whole GiB, else ``4000M``."""
    return f"{mib // 1024}G" if mib and mib % 1024 == 0 else f"{mib}M"


def describe_memory(mib: float) -> str:
    """MiB → words for people: ``"4 GiB"``, ``"1.5 GiB"``, ``"512 MiB"``."""
    for name, size in (("TiB", 1024**2), ("GiB", 1024)):
        if mib >= size:
            return f"{mib / size:.3g} {name}"
    return f"{int(mib)} MiB"


# ---- Slurm timestamps -----------------------------------------------------------------------


def parse_timestamp(text: str) -> float | None:
    """Slurm's local ``YYYY-MM-DDTHH:MM:SS`` → epoch seconds; None for ``N/A``,
    ``Unknown``, ``None`` and anything else that is not a time."""
    text = text.strip()
    if not text or not text[0].isdigit():
        return None
    try:
        return time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None
