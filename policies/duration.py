"""A span of time in whole seconds, parsed from the forms admins write.

Accepted forms:

* Slurm time strings: ``"MM"``, ``"MM:SS"``, ``"HH:MM:SS"``, ``"D-HH"``, ``"D-HH:MM"``,
  ``"D-HH:MM:SS"`` (as in ``slurm.conf`` MaxTime and ``sbatch --time``);
* a number with a unit suffix: ``"45s"``, ``"90m"``, ``"2h"``, ``"1.5h"``, ``"2d"``;
* a bare integer, which means **minutes** -- the Slurm convention (``MaxTime=30`` is 30 min).

``UNLIMITED``/``INFINITE`` are refused: every limit in a policy is finite so it can be
simulated and checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
_SUFFIX = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d)\s*$", re.IGNORECASE)
_SLURM = re.compile(r"^\s*(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?\s*$")


@dataclass(frozen=True, order=True, slots=True)
class Duration:
    """A non-negative duration in whole seconds."""

    seconds: int

    def __post_init__(self) -> None:
        if not isinstance(self.seconds, int) or isinstance(self.seconds, bool):
            raise TypeError("Duration.seconds must be an int")
        if self.seconds < 0:
            raise ValueError("a duration cannot be negative")

    @classmethod
    def parse(cls, value: object) -> Duration:
        """Parse ``value`` (see the module docstring); raise ``ValueError`` if it is not one."""
        if isinstance(value, Duration):
            return value
        if isinstance(value, bool):
            raise ValueError("expected a duration, got a boolean")
        if isinstance(value, int):
            if value < 0:
                raise ValueError("a duration cannot be negative")
            return cls(value * 60)
        if not isinstance(value, str):
            raise ValueError(f"expected a duration, got {type(value).__name__}")
        text = value.strip()
        if text.upper() in {"UNLIMITED", "INFINITE", "NONE", ""}:
            raise ValueError("limits must be finite (UNLIMITED is not supported)")
        m = _SUFFIX.match(text)
        if m:
            return cls(round(float(m.group(1)) * _UNITS[m.group(2).lower()]))
        m = _SLURM.match(text)
        if not m:
            raise ValueError(
                f"{value!r} is not a duration (use e.g. '30:00', '8:00:00', '1-00:00:00', "
                "'90m', '2h' or an integer number of minutes)"
            )
        days, a, b, c = m.groups()
        parts = [int(a)] + [int(x) for x in (b, c) if x is not None]
        if days is not None:
            # D-HH, D-HH:MM, D-HH:MM:SS
            hh, mm, ss = (parts + [0, 0])[:3]
            return cls(int(days) * 86400 + hh * 3600 + mm * 60 + ss)
        if len(parts) == 1:  # MM
            return cls(parts[0] * 60)
        if len(parts) == 2:  # MM:SS
            return cls(parts[0] * 60 + parts[1])
        hh, mm, ss = parts  # HH:MM:SS
        return cls(hh * 3600 + mm * 60 + ss)

    @classmethod
    def minutes(cls, n: float) -> Duration:
        return cls(round(n * 60))

    @classmethod
    def hours(cls, n: float) -> Duration:
        return cls(round(n * 3600))

    def slurm(self) -> str:
        """Slurm's ``[D-]HH:MM:SS`` form (MaxTime, MaxWall, sbatch ``--time``)."""
        d, rest = divmod(self.seconds, 86400)
        h, rest = divmod(rest, 3600)
        m, s = divmod(rest, 60)
        core = f"{h:02d}:{m:02d}:{s:02d}"
        return f"{d}-{core}" if d else core

    def whole_minutes(self) -> int:
        """Minutes, rounded up (Slurm's resolution for time limits)."""
        return -(-self.seconds // 60)

    def __str__(self) -> str:
        return self.slurm()
