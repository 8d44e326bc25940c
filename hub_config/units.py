"""Unit-bearing values (walltime, memory) as strict parsers and traitlets types.

The parsers accept only a small, explicit syntax and reject everything else with a message
that quotes the value: they are the gate between user text and the batch script.
"""

from __future__ import annotations

import re
from typing import Any

from traitlets import TraitError, TraitType

# [D-]HH:MM[:SS]  or  H h / M min  or plain minutes
_CLOCK = re.compile(r"^(?:(?P<d>\d{1,2})-)?(?P<h>\d{1,3}):(?P<m>\d{2})(?::(?P<s>\d{2}))?$")
_HOURS = re.compile(r"^(?P<n>\d{1,4}(?:\.\d{1,2})?)\s*(?P<u>h|hours?|m|min|minutes?)$", re.I)
_MEMORY = re.compile(r"^(?P<n>\d{1,7}(?:\.\d{1,3})?)\s*(?P<u>[kmgt]?)(?:i?b)?$", re.I)
_MEM_FACTOR = {"": 1, "m": 1, "k": 1 / 1024, "g": 1024, "t": 1024 * 1024}

MAX_SECONDS = 366 * 86400
MAX_MB = 1024 * 1024 * 1024  # 1 PB: anything larger is a typo


def parse_walltime(value: Any) -> int:
    """``"02:00:00"``, ``"2:00"`` (H:MM), ``"1-00:00:00"``, ``"2h"``, ``"90min"`` or an
    integer number of seconds → seconds (> 0)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int):
        seconds = value
    else:
        text = str(value).strip()
        m = _CLOCK.match(text)
        if m:
            if int(m["m"]) > 59 or int(m["s"] or 0) > 59:
                raise ValueError(f"{value!r} is not a duration (minutes and seconds go up to 59)")
            seconds = ((int(m["d"] or 0) * 24 + int(m["h"])) * 60 + int(m["m"])) * 60 + int(m["s"] or 0)
        elif (m := _HOURS.match(text)) is not None:
            n = float(m["n"])
            seconds = int(n * 3600) if m["u"].lower().startswith("h") else int(n * 60)
        else:
            raise ValueError(f"{value!r} is not a duration (use HH:MM:SS, e.g. 02:00:00)")
    if seconds <= 0:
        raise ValueError(f"{value!r} must be longer than zero")
    if seconds > MAX_SECONDS:
        raise ValueError(f"{value!r} is longer than a year")
    return seconds


def parse_memory_mb(value: Any) -> int:
    """``"2G"``, ``"2GB"``, ``"2048M"``, ``"512"`` (MB) or an integer (MB) → MB (> 0)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not an amount of memory")
    if isinstance(value, int):
        mb = value
    else:
        text = str(value).strip()
        m = _MEMORY.match(text)
        if not m:
            raise ValueError(f"{value!r} is not an amount of memory (use e.g. 4G or 4096M)")
        mb = int(float(m["n"]) * _MEM_FACTOR[m["u"].lower()])
    if mb <= 0:
        raise ValueError(f"{value!r} must be more than zero")
    if mb > MAX_MB:
        raise ValueError(f"{value!r} is too large")
    return mb


def format_walltime(seconds: int) -> str:
    """Seconds → Slurm's ``[D-]HH:MM:SS``."""
    d, rem = divmod(int(seconds), 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    return f"{d}-{h:02d}:{m:02d}:{s:02d}" if d else f"{h:02d}:{m:02d}:{s:02d}"


def format_memory(mb: int) -> str:
    return f"{mb // 1024}G" if mb % 1024 == 0 else f"{mb}M"


class Walltime(TraitType[int, Any]):
    """A duration in seconds; accepts ``HH:MM:SS``, ``2h``, ``90min`` or seconds."""

    default_value = 0
    info_text = "a duration (HH:MM:SS, 2h, 90min or seconds)"

    def validate(self, obj: Any, value: Any) -> int:
        try:
            return parse_walltime(value)
        except ValueError as exc:
            raise TraitError(f"{self.name}: {exc}") from None


class MemoryMB(TraitType[int, Any]):
    """An amount of memory in MB; accepts ``4G``, ``4096M`` or MB."""

    default_value = 0
    info_text = "an amount of memory (4G, 4096M or MB)"

    def validate(self, obj: Any, value: Any) -> int:
        try:
            return parse_memory_mb(value)
        except ValueError as exc:
            raise TraitError(f"{self.name}: {exc}") from None
