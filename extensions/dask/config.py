"""dask.config for sandfill's Dask side: one packaged YAML, one resolution helper."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

import dask
from dask.utils import parse_timedelta

CONFIG_NAME = "sandfill"
_YAML = Path(__file__).with_name("sandfill.yaml")


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
    """A duration setting in seconds ("90s", "00:05:00", 300)."""
    v = setting(key, value, config_name)
    if isinstance(v, str) and ":" in v:
        from sandfill.units import parse_slurm_time

        d = parse_slurm_time(v)
        if d is None:
            raise ValueError(f"jobqueue.{config_name}.{key}: cannot read {v!r} as a duration")
        return float(d)
    out = parse_timedelta(v)
    if out is None:
        raise ValueError(f"jobqueue.{config_name}.{key}: a duration is required, got {v!r}")
    return float(out)
