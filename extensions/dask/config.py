"""dask.config for sandfill's Dask side: one packaged YAML, one resolution helper.

Durations and memory are read by :mod:`sandfill.units`, so ``"2:00"`` is two minutes and
``"4G"`` is 4096 MiB here as everywhere else in sandfill."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import yaml

import dask
from sandfill.units import parse_duration, parse_memory

CONFIG_NAME = "sandfill"
_YAML = Path(__file__).with_name("sandfill.yaml")

#: the admin's switch that lets clusters run without TLS (read from the system config only)
ALLOW_INSECURE = "jobqueue.sandfill.allow-insecure"


def _load_defaults() -> None:
    with open(_YAML) as f:
        defaults = yaml.safe_load(f)
    dask.config.update_defaults(defaults)


#: distributed's own dashboard link: the scheduler's host and port, which a browser outside
#: the node cannot reach (sandfill's dashboards bind loopback only)
STOCK_DASHBOARD_LINK = "{scheme}://{host}:{port}/status"
#: under JupyterHub: the dashboard through the Jupyter server's authenticated proxy
PROXY_DASHBOARD_LINK = "{JUPYTERHUB_SERVICE_PREFIX}proxy/{port}/status"


def proxy_dashboard_link() -> None:
    """Under JupyterHub (``JUPYTERHUB_SERVICE_PREFIX`` set, as in every kernel of a server the
    hub started) point ``distributed.dashboard.link`` at the server's proxy, so a notebook's
    ``Client`` links ``/user/<name>/proxy/<port>/status``, not ``127.0.0.1:<port>``. A link
    the user or the admin set is kept."""
    if os.environ.get("JUPYTERHUB_SERVICE_PREFIX") and dask.config.get("distributed.dashboard.link", None) in (None, STOCK_DASHBOARD_LINK):
        dask.config.set({"distributed.dashboard.link": PROXY_DASHBOARD_LINK})


_load_defaults()
proxy_dashboard_link()


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



def max_workers() -> int:
    """The most workers one cluster may be asked for, by the lab's REST API, the widget or a
    kernel attached by name (``sandfill.lab.max-workers``): one cap for every entry point."""
    return int(dask.config.get("sandfill.lab.max-workers"))


def worker_count(name: str, value: Any) -> int:
    """``value`` as a worker count from 0 to :func:`max_workers`; raises ValueError naming
    ``name`` and the value (floats, strings and booleans are refused)."""
    hi = max_workers()
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= hi:
        raise ValueError(f"{name}: must be a whole number from 0 to {hi}, not {value!r}")
    return value


def system_config_paths() -> list[str]:
    """Where the admin's dask config lives: ``$DASK_ROOT_CONFIG`` (default ``/etc/dask``) and
    ``{sys.prefix}/etc/dask``; never the user's ``~/.config/dask`` or ``DASK_*`` variables."""
    return [os.environ.get("DASK_ROOT_CONFIG", "/etc/dask"), os.path.join(sys.prefix, "etc", "dask")]


def admin_allows_insecure() -> bool:
    """True only when the system dask config (:func:`system_config_paths`) sets
    ``jobqueue.sandfill.allow-insecure: true``; the user's own settings are not read."""
    cfg = dask.config.collect(paths=system_config_paths(), env={})
    return dask.config.get(ALLOW_INSECURE, default=False, config=cfg) is True


def refuse_insecure(what: str) -> None:
    """Raise ValueError naming ``what`` (the setting that turns TLS off) unless the admin
    allows clusters without TLS: anyone who can reach such a scheduler runs code as the user."""
    if admin_allows_insecure():
        return
    raise ValueError(
        f"{what} would start a scheduler without TLS, which anyone who can reach it may use to run "
        f"code as you; refused (an admin may allow it with {ALLOW_INSECURE}: true in the system "
        f"dask config: {' or '.join(system_config_paths())})"
    )
