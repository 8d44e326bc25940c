"""dask.config for sandfill's Dask side: one packaged YAML, one resolution helper.

Durations and memory are read by :mod:`sandfill.units`, so ``"2:00"`` is two minutes and
``"4G"`` is 4096 MiB here as everywhere else in sandfill."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

import dask
from sandfill.units import parse_duration, parse_memory

CONFIG_NAME = "sandfill"
_YAML = Path(__file__).with_name("sandfill.yaml")

#: the most workers a remote client (the widget, a kernel attached by name) may ask for
MAX_REMOTE_WORKERS = 1000


def _load_defaults() -> None:
    with open(_YAML) as f:
        defaults = yaml.safe_load(f)
    dask.config.update_defaults(defaults)


_load_defaults()


def setting(key: str, value: Any = None, config_name: str = CONFIG_NAME) -> Any:
    """kwarg → dask config (``jobqueue.<config_name>.<key>``) → packaged default."""
    if value is not None:
        return value
    return dask.config.get(f"jobqueue.{config_name}.{key}")


def seconds(key: str, value: Any = None, config_name: str = CONFIG_NAME) -> float:
    """A duration setting in seconds, in Slurm's syntax (``"05:00"``, ``"1:00:00"``; a bare
    number is minutes) or a friendly one (``"90s"``, ``"2h"``). Raises ValueError naming
    ``jobqueue.<config_name>.<key>`` and the value."""
    return float(parse_duration(setting(key, value, config_name), key=f"jobqueue.{config_name}.{key}"))


def memory_mib(key: str, value: Any = None, config_name: str = CONFIG_NAME) -> int:
    """A memory setting in MiB, as Slurm reads it (``"4G"`` = ``"4GiB"`` = 4096; a bare
    number is MiB). Raises ValueError naming ``jobqueue.<config_name>.<key>`` and the value."""
    return parse_memory(setting(key, value, config_name), key=f"jobqueue.{config_name}.{key}")

